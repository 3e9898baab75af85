// Remote MCP servers over Streamable HTTP: the real binary (`chatplane ask
// --json`) and the mock model, with an SDK server (tests/mcp/http-server.mjs)
// on 127.0.0.1 as the peer.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, beforeEach, describe, test } from 'node:test';

import { api, startServer as startChatplane, until } from '../integration/lib/server.mjs';
import { ask, ofType, startMock, stopped, workspace } from './lib.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
const serverScript = path.join(root, 'tests', 'mcp', 'http-server.mjs');

// One mock model for the file, emptied before each test.
let mock;
before(async () => void (mock = await startMock()));
beforeEach(() => mock.reset());
after(() => mock.stop());

// Starts the SDK server with args; resolves to {url, log, forget, stop}.
async function startServer(args = []) {
  const child = spawn(process.execPath, [serverScript, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) => {
      const m = /^listening (\d+)$/.exec(line);
      m ? resolve(Number(m[1])) : reject(new Error(`server said: ${line}`));
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  return {
    base,
    url: `${base}/mcp`,
    hook: (name) => fetch(`${base}/__${name}`, { method: 'POST' }),
    log: async () => (await fetch(`${base}/__log`)).json(),
    forget: () => fetch(`${base}/__forget`, { method: 'POST' }),
    forgetBeforeCall: () => fetch(`${base}/__forget-before-call`, { method: 'POST' }),
    stop: () => child.kill('SIGTERM'),
  };
}

// One turn of ask with mcpServers; extraEnv adds to its environment.
async function run(message, mcpServers, { signalAfter, extraEnv = {} } = {}) {
  const ws = workspace();
  try {
    const file = path.join(ws.dir, 'config.json');
    writeFileSync(file, JSON.stringify({ mcpServers, approvals: allowAll }));
    const env = { ...ws.env, CHATPLANE_CONFIG: file, CHATPLANE_LLM_URL: mock.url, CHATPLANE_LLM_MODEL: 'mock-1', ...extraEnv };
    return await ask([message], { env, signalAfter });
  } finally {
    ws.cleanup();
  }
}

// These tests are about the transport, not approvals: every tool call is
// allowed by a rule, as a configuration that trusts its servers would.
const allowAll = { rules: [{ tool: '*', action: 'allow' }] };

const toolCall = (name, args, id) => ({ tool_calls: [{ name, arguments: args, ...(id ? { id } : {}) }] });
const finished = (r) => ofType(r.events, 'tool_finished');

describe('Streamable HTTP', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.stop());

  test('tools are listed and called; the session and version go on every later request', async () => {
    await mock.script([toolCall('remote__echo', { message: 'hi there' }, 'call_e'), { text: 'It said hi.' }]);
    const r = await run('echo', { remote: { url: srv.url } });
    assert.equal(r.code, 0, r.stderr);
    const [fin] = finished(r);
    assert.deepEqual([fin.server, fin.tool, fin.status, fin.result], ['remote', 'echo', 'ok', 'Echo: hi there']);
    const [first] = await mock.requests();
    const names = first.body.tools.map((t) => t.function.name);
    assert.ok(names.includes('remote__echo') && names.includes('remote__slow'), names.join(','));

    const log = (await srv.log()).filter((l) => l.http);
    const init = log.find((l) => l.method === 'initialize');
    assert.deepEqual([init.session, init.version, init.accept], [null, null, 'application/json, text/event-stream']);
    const later = log.slice(log.indexOf(init) + 1).filter((l) => l.http === 'POST');
    assert.deepEqual(later.map((l) => l.method), ['notifications/initialized', 'tools/list', 'tools/call']);
    const sid = later[0].session;
    assert.match(sid, /^[0-9a-f-]{36}$/);
    for (const l of later) assert.deepEqual([l.session, l.version], [sid, '2025-11-25']);
    // The session is ended when ask exits.
    assert.deepEqual(log.at(-1), { ...log.at(-1), http: 'DELETE', session: sid });
  });

  test('progress arrives on the SSE answer before the result', async () => {
    await mock.script([toolCall('remote__slow', { steps: 3, ms: 400 }), { text: 'Done.' }]);
    const r = await run('count', { remote: { url: srv.url } });
    assert.equal(r.code, 0, r.stderr);
    const progress = ofType(r.events, 'tool_progress');
    assert.deepEqual(progress.map((p) => [p.progress, p.total]), [[1, 3], [2, 3], [3, 3]]);
    assert.deepEqual([finished(r)[0].status, finished(r)[0].result], ['ok', 'counted 3']);
  });

  test('a stop cancels the call on the server', async () => {
    await mock.script([toolCall('remote__slow', { steps: 100, ms: 100 })]);
    const t0 = Date.now();
    const r = await run('count', { remote: { url: srv.url } }, { signalAfter: (ev) => ev.type === 'tool_progress' });
    assert.equal(r.code, 4, r.stderr);
    assert.ok(Date.now() - t0 < 8000, 'ask did not wait for the operation');
    const [fin] = finished(r);
    assert.deepEqual([fin.status, fin.error], ['cancelled', 'cancelled: the run stopped']);
    assert.equal(stopped(r.events).reason, 'user_stopped');
    // ask sends the notice before it ends the session, and has its answer
    // before it exits: both are on the server's log already, in that order.
    const log = (await srv.log()).filter((l) => l.http);
    const cancel = log.findIndex((l) => l.method === 'notifications/cancelled');
    assert.ok(cancel >= 0, 'no notifications/cancelled');
    const end = log.findIndex((l, i) => i > cancel && l.http === 'DELETE' && l.session === log[cancel].session);
    assert.ok(end > cancel, 'the session was not ended after the notice');
  });

  test('a server that forgot the session (404): initialize again and send the call once more', async () => {
    await mock.script([toolCall('remote__echo', { message: 'one' }, 'call_1'), { text: 'Done.' }]);
    const before = (await srv.log()).length;
    // The server forgets its sessions when the call arrives.
    await srv.forgetBeforeCall();
    const r = await run('echo', { remote: { url: srv.url } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(finished(r).map((f) => [f.status, f.result]), [['ok', 'Echo: one']]);
    const posts = (await srv.log()).slice(before).filter((l) => l.http === 'POST').map((l) => l.method);
    const handshake = ['initialize', 'notifications/initialized', 'tools/list'];
    assert.deepEqual(posts, [...handshake, 'tools/call', ...handshake, 'tools/call']);
  });

  test('an answer stream cut before the response fails the call with a clear error', async () => {
    await mock.script([toolCall('remote__slow', { steps: 30, ms: 100 }, 'call_1'), { text: 'Done.' }]);
    let forgot = false;
    const r = await run('count', { remote: { url: srv.url } }, {
      signalAfter: (ev) => {
        if (ev.type === 'tool_progress' && !forgot) {
          forgot = true;
          srv.forget();
        }
        return false;
      },
    });
    assert.equal(r.code, 0, r.stderr);
    const [fin] = finished(r);
    assert.equal(fin.status, 'error');
    assert.match(fin.error, /^JSON-RPC error -32000: the MCP server 'remote' ended its answer at http:\/\/127\.0\.0\.1:\d+\/mcp before the response$/);
  });
});

// chatplane serve with mcpServers; resolves once fn(info body) is truthy,
// to {s, info}; the caller stops s.
async function serveUntil(mcpServers, fn) {
  const s = await startChatplane({ config: { mcpServers } });
  try {
    const info = await until(async () => {
      const r = await api(s.url, 'GET', '/api/info');
      return fn(r.body) ? r : null;
    });
    return { s, info };
  } catch (e) {
    await s.stop();
    s.cleanup();
    throw e;
  }
}

async function stopServe(s) {
  await s.stop();
  s.cleanup();
}

describe('resuming an answer stream', () => {
  test('a stream the server closes early is resumed with the last event id, after its retry delay', async () => {
    const srv = await startServer(['--resumable', '--retry', '450']);
    try {
      await mock.script([toolCall('remote__slow', { steps: 5, ms: 300, cutAt: 2 }), { text: 'Done.' }]);
      const r = await run('count', { remote: { url: srv.url } });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual([finished(r)[0].status, finished(r)[0].result], ['ok', 'counted 5']);
      // Shown progress is paced, so the last steps may be merged; the
      // first three are not.
      const progress = ofType(r.events, 'tool_progress').map((p) => p.progress);
      assert.deepEqual(progress.slice(0, 3), [1, 2, 3], progress.join(','));

      const log = await srv.log();
      const cut = log.find((l) => l.cut);
      const resumes = log.filter((l) => l.http === 'GET' && l.lastEventId);
      assert.equal(resumes.length, 1, JSON.stringify(log));
      const [resume] = resumes;
      // Step 3 was sent while no stream was open: it came with the replay.
      assert.ok(log.find((l) => l.progress === 3).at < resume.at, JSON.stringify(log));
      const sid = log.find((l) => l.method === 'tools/call').session;
      // The id of an event of the call's own stream (not the GET stream's).
      assert.match(resume.lastEventId, /^[0-9a-f-]{36}\|\d{8}$/);
      assert.deepEqual([resume.path, resume.accept, resume.session, resume.version], ['/mcp', 'text/event-stream', sid, '2025-11-25']);
      // The server's retry field (450 ms), not the default of a second.
      const waited = resume.at - cut.cut;
      assert.ok(waited >= 430 && waited < 950, `resumed after ${waited} ms`);
    } finally {
      srv.stop();
    }
  });

  test('resumes that bring nothing are given up after 5 attempts, failing the call', async () => {
    const srv = await startServer(['--resumable', '--retry', '100']);
    try {
      await srv.hook('empty-resume');
      await mock.script([toolCall('remote__slow', { steps: 3, ms: 100, cutAt: 1 }), { text: 'Done.' }]);
      const r = await run('count', { remote: { url: srv.url } });
      assert.equal(r.code, 0, r.stderr);
      const [fin] = finished(r);
      assert.equal(fin.status, 'error');
      assert.match(
        fin.error,
        /^JSON-RPC error -32000: the MCP server 'remote' ended its answer at http:\/\/127\.0\.0\.1:\d+\/mcp before the response; 5 attempts to resume it brought nothing$/,
      );
      const resumes = (await srv.log()).filter((l) => l.http === 'GET' && l.lastEventId);
      assert.equal(resumes.length, 5);
      assert.equal(new Set(resumes.map((l) => l.lastEventId)).size, 1, 'always from the same event');
    } finally {
      srv.stop();
    }
  });
});

describe('a resume refused', () => {
  test('fails the call at once, with the status and body', async () => {
    const srv = await startServer(['--resumable', '--retry', '100']);
    try {
      await srv.hook('refuse-resume');
      await mock.script([toolCall('remote__slow', { steps: 3, ms: 100, cutAt: 1 }), { text: 'Done.' }]);
      const r = await run('count', { remote: { url: srv.url } });
      assert.equal(r.code, 0, r.stderr);
      const [fin] = finished(r);
      assert.equal(fin.status, 'error');
      assert.equal(
        fin.error,
        `JSON-RPC error -32000: the MCP server 'remote' could not resume its answer: answered HTTP 409 at ${srv.url}: stream busy`,
      );
      assert.equal((await srv.log()).filter((l) => l.http === 'GET' && l.lastEventId).length, 1);
    } finally {
      srv.stop();
    }
  });
});

describe('the GET stream', () => {
  test('opened after the handshake; tools/list_changed on it lists the tools again', async () => {
    const srv = await startServer();
    const { s } = await serveUntil({ remote: { url: srv.url } }, (b) => b.servers[0].tools === 2);
    try {
      await srv.hook('add-tool');
      await until(async () => (await api(s.url, 'GET', '/api/info')).body.servers[0].tools === 3);
      const log = (await srv.log()).filter((l) => l.http);
      const init = log.findIndex((l) => l.method === 'initialize');
      const gets = log.filter((l) => l.http === 'GET');
      assert.equal(gets.length, 1);
      assert.ok(log.indexOf(gets[0]) > init);
      const sid = log.find((l) => l.method === 'tools/list').session;
      assert.deepEqual([gets[0].accept, gets[0].session, gets[0].version, gets[0].lastEventId], ['text/event-stream', sid, '2025-11-25', null]);
      // The tools were listed again, on the same session.
      const lists = log.filter((l) => l.method === 'tools/list');
      assert.deepEqual(lists.map((l) => l.session), [sid, sid]);
    } finally {
      await stopServe(s);
      srv.stop();
    }
  });

  test('a server without one (405) works as before, and is not asked again', async () => {
    const srv = await startServer(['--no-get']);
    const { s } = await serveUntil({ remote: { url: srv.url } }, (b) => b.servers[0].status === 'ready');
    try {
      // Longer than the first delay of a reopening.
      await new Promise((r) => setTimeout(r, 1300));
      const gets = (await srv.log()).filter((l) => l.http === 'GET');
      assert.equal(gets.length, 1);
      assert.ok(!s.lines.some((l) => l.includes('event stream')), s.lines.join('\n'));
      assert.equal((await api(s.url, 'GET', '/api/info')).body.servers[0].status, 'ready');
    } finally {
      await stopServe(s);
      srv.stop();
    }
  });
});

describe('HTTP+SSE (type "sse")', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.stop());

  test('messages are POSTed to the endpoint the stream names; answers and progress come on the stream', async () => {
    await mock.script([toolCall('remote__slow', { steps: 2, ms: 100 }), { text: 'Done.' }]);
    const before = (await srv.log()).length;
    const r = await run('count', { remote: { url: `${srv.base}/sse`, type: 'sse' } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(ofType(r.events, 'tool_progress').map((p) => [p.progress, p.total]), [[1, 2], [2, 2]]);
    assert.deepEqual([finished(r)[0].status, finished(r)[0].result], ['ok', 'counted 2']);
    const log = (await srv.log()).slice(before).filter((l) => l.http);
    assert.deepEqual(log[0], { ...log[0], http: 'GET', path: '/sse', accept: 'text/event-stream' });
    const posts = log.filter((l) => l.http === 'POST');
    assert.deepEqual(posts.map((l) => l.method), ['initialize', 'notifications/initialized', 'tools/list', 'tools/call']);
    for (const p of posts) assert.deepEqual([p.path, p.session, p.version], ['/messages', null, null]);
    // No other GET, and no DELETE: the session ends with its stream.
    assert.deepEqual(log.map((l) => l.http).filter((m) => m !== 'POST'), ['GET']);
  });

  test('/api/info shows the transport "sse"', async () => {
    const { s, info } = await serveUntil({ old: { url: `${srv.base}/sse`, type: 'sse' } }, (b) => b.servers[0].status === 'ready');
    await stopServe(s);
    assert.deepEqual(info.body.servers, [{ name: 'old', status: 'ready', error: null, tools: 2, transport: 'sse', restarts: 0, last_error: null, down_since: null }]);
  });

  test('a POST refused for a forgotten session (404): a new stream, and the call sent once more', async () => {
    await mock.script([toolCall('remote__echo', { message: 'again' }), { text: 'Done.' }]);
    const before = (await srv.log()).length;
    await srv.forgetBeforeCall();
    const r = await run('echo', { remote: { url: `${srv.base}/sse`, type: 'sse' } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(finished(r).map((f) => [f.status, f.result]), [['ok', 'Echo: again']]);
    const log = (await srv.log()).slice(before).filter((l) => l.http);
    const handshake = ['GET /sse', 'POST initialize', 'POST notifications/initialized', 'POST tools/list'];
    assert.deepEqual(
      log.map((l) => `${l.http} ${l.method ?? l.path}`),
      [...handshake, 'POST tools/call', ...handshake, 'POST tools/call'],
    );
  });

  test('the end of the event stream ends the connection', async () => {
    const { s } = await serveUntil({ old: { url: `${srv.base}/sse`, type: 'sse' } }, (b) => b.servers[0].status === 'ready');
    try {
      await srv.forget();
      const line = `level=warn msg="mcp server ended" server=old how="closed its event stream at ${srv.base}/sse"`;
      await until(() => s.lines.includes(line));
      assert.equal((await api(s.url, 'GET', '/api/info')).body.servers[0].status, 'restarting');
    } finally {
      await stopServe(s);
    }
  });

  test('an endpoint on another origin is refused, naming both', async () => {
    const { s, info } = await serveUntil({ bad: { url: `${srv.base}/bad-sse`, type: 'sse' } }, (b) => b.servers[0].status === 'failed');
    await stopServe(s);
    assert.equal(
      info.body.servers[0].error,
      `sent an endpoint that cannot be used: http://evil.example:9/messages is not on the origin of the event stream ${srv.base}/bad-sse during start-up`,
    );
  });
});

describe('Streamable HTTP with JSON answers', () => {
  test('a JSON answer is read as one message', async () => {
    const srv = await startServer(['--json']);
    try {
      await mock.script([toolCall('remote__echo', { message: 'json' }), { text: 'ok' }]);
      const r = await run('echo', { remote: { url: srv.url } });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(finished(r)[0].result, 'Echo: json');
    } finally {
      srv.stop();
    }
  });
});

describe('headers and authorization', () => {
  const token = 'tok-S3CR3T-http-header-0042';
  let srv;
  before(async () => {
    srv = await startServer(['--token', token]);
  });
  after(() => srv.stop());

  test('a header from the environment is sent and never shown', async () => {
    await mock.script([toolCall('remote__echo', { message: 'with auth' }), { text: 'ok' }]);
    const r = await run('echo', { remote: { url: srv.url, headers: { Authorization: 'Bearer ${MCP_TOKEN}' } } }, {
      extraEnv: { MCP_TOKEN: token },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(finished(r)[0].result, 'Echo: with auth');
    assert.ok((await srv.log()).every((l) => l.auth === `Bearer ${token}`));
    assert.ok(!JSON.stringify(r.events).includes(token.slice(4, 16)), 'not in the events');
  });

  test('a wrong token: 401 makes the server unauthorized, with the challenge in its error', async () => {
    await mock.script([toolCall('remote__echo', { message: 'x' }), { text: 'no' }]);
    const r = await run('echo', { remote: { url: srv.url, headers: { Authorization: 'Bearer wrong-token-123456' } } });
    assert.equal(r.code, 0, r.stderr);
    const [fin] = finished(r);
    // The server never listed its tools.
    assert.deepEqual([fin.status, fin.error], ['error', "unknown tool 'remote__echo'"]);
    assert.ok(!JSON.stringify(r.events).includes('wrong-token-123456'));
  });

  test('/api/info shows the server unauthorized, its transport, and no header value', async () => {
    const s = await startChatplane({
      config: { mcpServers: { remote: { url: srv.url, headers: { Authorization: 'Bearer wrong-token-123456' } } } },
    });
    try {
      const info = await until(async () => {
        const r = await api(s.url, 'GET', '/api/info');
        return r.body.servers[0].status === 'unauthorized' ? r : null;
      });
      const refused = 'refused the request: HTTP 401 Unauthorized (WWW-Authenticate: Bearer realm="http-test", error="invalid_token") during start-up';
      const { down_since: since, ...server } = info.body.servers[0];
      assert.equal(info.body.servers.length, 1);
      assert.deepEqual(server, { name: 'remote', status: 'unauthorized', error: refused, tools: 0, transport: 'http', restarts: 0, last_error: refused });
      assert.match(since, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(!info.text.includes('wrong-token'));
      // The log has the failure, with the challenge and without the header.
      assert.ok(s.lines.some((l) => l.includes('msg="mcp server failed to start" server=remote')), s.lines.join('\n'));
      assert.ok(!s.lines.join('\n').includes('wrong-token'));
    } finally {
      await s.stop();
      s.cleanup();
    }
  });

  test('an unset variable is a start-up error naming it', async () => {
    const r = await run('echo', { remote: { url: srv.url, headers: { Authorization: 'Bearer ${MCP_NOT_SET}' } } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /config key 'mcpServers\.remote\.headers\.Authorization' names the environment variable 'MCP_NOT_SET', which is not set/);
  });
});

describe('TLS', () => {
  test('tls_verify: false is a warning in the log, with the URL shown without its query', async () => {
    const s = await startChatplane({
      config: { mcpServers: { insecure: { url: 'https://127.0.0.1:1/mcp?key=s3cr3t-query-value', tls_verify: false } } },
    });
    try {
      const info = await until(async () => {
        const r = await api(s.url, 'GET', '/api/info');
        return r.body.servers[0].status === 'failed' ? r : null;
      });
      assert.match(info.body.servers[0].error, /^could not be reached at https:\/\/127\.0\.0\.1:1\/mcp: Couldn't connect to server during start-up$/);
      assert.ok(s.lines.includes('level=warn msg="mcp server certificate not verified" server=insecure url=https://127.0.0.1:1/mcp'), s.lines.join('\n'));
      assert.ok(!s.lines.join('\n').includes('s3cr3t-query-value'));
    } finally {
      await s.stop();
      s.cleanup();
    }
  });
});
