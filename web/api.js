// The HTTP API of docs/api.md, as the page uses it. Every call sends
// and expects JSON; an error answer becomes an ApiError carrying the
// answer's status, code and message (docs/api.md, Errors). A 401 also tells the page to show
// the login form.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let unauthorized = () => {};

export function onUnauthorized(fn) {
  unauthorized = fn;
}

export async function api(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached.');
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) throw failure(res, data);
  return data;
}

// The ApiError for an error answer whose body (parsed, or null) is data;
// a 401 also shows the login form.
function failure(res, data) {
  if (res.status === 401) unauthorized();
  const e = data && data.error;
  return new ApiError(res.status, (e && e.code) || `http_${res.status}`, (e && e.message) || `The server answered ${res.status}.`);
}

const sid = (id) => encodeURIComponent(id);

export const getInfo = () => api('GET', '/api/info');
export const getHealth = () => api('GET', '/api/health');
export const restartServer = (name) => api('POST', `/api/mcp/${encodeURIComponent(name)}/restart`);
export const getUsage = () => api('GET', '/api/usage');
export const listModes = () => api('GET', '/api/modes');
export const listSessions = () => api('GET', '/api/sessions?limit=50');
// A page of chats older than before (null: the newest), only those holding
// the text q when q is not empty.
export const pageSessions = (q, before, limit) => api('GET', `/api/sessions?limit=${limit}${
  q ? `&q=${encodeURIComponent(q)}` : ''}${before ? `&before=${sid(before)}` : ''}`);
export const createSession = (body) => api('POST', '/api/sessions', body);
export const getSession = (id) => api('GET', `/api/sessions/${sid(id)}`);
export const patchSession = (id, body) => api('PATCH', `/api/sessions/${sid(id)}`, body);
export const getMessages = (id) => api('GET', `/api/sessions/${sid(id)}/messages`);
export const getTools = (id) => api('GET', `/api/sessions/${sid(id)}/tools`);
export const getRuns = (id) => api('GET', `/api/sessions/${sid(id)}/runs`);
export const regenerateRun = (id) => api('POST', `/api/sessions/${sid(id)}/runs`, { regenerate: true });
export const startRun = (id, message, mode) => api('POST', `/api/sessions/${sid(id)}/runs`, mode ? { message, mode } : { message });
export const stopRun = (id) => api('POST', `/api/sessions/${sid(id)}/stop`, {});
export const continueRun = (id, mode) => api('POST', `/api/sessions/${sid(id)}/continue`, mode ? { mode } : {});
export const getApprovals = (id, status) => api('GET', `/api/sessions/${sid(id)}/approvals${status ? `?status=${status}` : ''}`);
export const decideApproval = (id, approvalId, body) => api('POST', `/api/sessions/${sid(id)}/approvals/${sid(approvalId)}`, body);
export const getInputs = (id, status) => api('GET', `/api/sessions/${sid(id)}/inputs${status ? `?status=${status}` : ''}`);
export const answerInput = (id, inputId, body) => api('POST', `/api/sessions/${sid(id)}/inputs/${sid(inputId)}`, body);
export const login = (token) => api('POST', '/api/login', { token });
export const logout = () => api('POST', '/api/logout');
export const eventsUrl = (id, after) => `/api/sessions/${sid(id)}/events?after=${after}`;

// Chats: fork (the page's "edit" of a sent message), delete, export.
export const forkSession = (id, body) => api('POST', `/api/sessions/${sid(id)}/fork`, body);
export const deleteSession = (id) => api('DELETE', `/api/sessions/${sid(id)}`);

// A file the server sends as an attachment, read with the same credentials
// as every other call (the session cookie), so it works when
// authentication is on. Resolves to {blob, filename}; an error answer
// becomes an ApiError like api()'s.
export async function getFile(path, fallbackName) {
  let res;
  try {
    res = await fetch(path, { credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached.');
  }
  if (!res.ok) {
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    throw failure(res, data);
  }
  const m = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') || '');
  return { blob: await res.blob(), filename: m ? m[1] : fallbackName };
}

export const exportSession = (id, format) => getFile(`/api/sessions/${sid(id)}/export?format=${encodeURIComponent(format)}`, `${id}.${format === 'json' ? 'json' : 'md'}`);
