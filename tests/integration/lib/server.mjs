// Helpers for the HTTP integration tests: start the real `chatplane serve`
// on a free loopback port with a temporary SQLite database, talk to it with
// fetch and raw http requests, and stop it.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

const root = path.resolve(import.meta.dirname, '..', '..', '..');
export const binary = path.resolve(root, process.env.CHATPLANE_BIN || 'build/chatplane');

// Starts a server. opts: config (object written as the config file), env
// (extra environment), args (extra flags), dir (reuse a directory, keeping
// its database), db (a database URL instead of the directory's SQLite
// file), listen (default 127.0.0.1:0), nofile (the open file limit).
// Resolves to {url, port, dir, lines, proc, stop(signal), exited}.
export async function startServer(opts = {}) {
  const dir = opts.dir || mkdtempSync(path.join(tmpdir(), 'chatplane-http-'));
  const args = ['serve', '--listen', opts.listen || '127.0.0.1:0', '--db',
    opts.db || `sqlite:${path.join(dir, 'chat.db')}`, ...(opts.args || [])];
  if (opts.config) {
    const file = path.join(dir, 'config.json');
    writeFileSync(file, JSON.stringify(opts.config));
    args.push('--config', file);
  }
  const env = { ...process.env, CHATPLANE_DEMO_DELAY_MS: '1', ...(opts.env || {}) };
  delete env.CHATPLANE_LLM_URL;
  delete env.OPENAI_BASE_URL;
  delete env.CHATPLANE_CONFIG;
  // nofile: the server runs under `ulimit -n nofile` (through sh, which
  // execs it, so proc.pid is the server's).
  const proc = opts.nofile
    ? spawn('sh', ['-c', `ulimit -n ${Number(opts.nofile)} && exec "$0" "$@"`, binary, ...args],
      { env, stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(binary, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = [];
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const rl = createInterface({ input: proc.stderr });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line:\n${lines.join('\n')}`)), 10000);
    rl.on('line', (line) => {
      lines.push(line);
      const m = /^level=info msg="listening" url=http:\/\/127\.0\.0\.1:(\d+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${lines.join('\n')}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  let stopped = false;
  return {
    url,
    port,
    dir,
    lines,
    proc,
    exited,
    // Sends signal (SIGTERM by default) and resolves to the exit status.
    async stop(signal = 'SIGTERM') {
      if (!stopped) {
        stopped = true;
        proc.kill(signal);
      }
      return exited;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Runs a command of the binary to its end; resolves to {code, stdout, stderr}.
export function runBinary(args, env = {}) {
  return new Promise((resolve) => {
    const proc = spawn(binary, args, { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    proc.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

// fetch with a JSON body; resolves to {status, headers, body (parsed JSON
// or null), text}.
export async function api(base, method, p, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    if (!Object.keys(init.headers).some((h) => h.toLowerCase() === 'content-type'))
      init.headers['Content-Type'] = 'application/json';
  }
  const r = await fetch(base + p, init);
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, body: json, text };
}

// A raw HTTP/1.1 request; resolves to {status, headers, body (Buffer)}.
// The body is read to its end.
export function raw(port, method, p, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// How many whole responses text holds: interim 1xx heads are skipped, a
// response to HEAD ends with its head, any other needs a Content-Length
// and that many bytes of body. Counting stops at the first response whose
// end cannot be told before the connection closes (a chunked body, say).
function wholeResponses(text, head) {
  let n = 0;
  let pos = 0;
  for (;;) {
    const at = text.indexOf('\r\n\r\n', pos);
    if (at < 0) return n;
    const top = text.slice(pos, at);
    const status = /^HTTP\/1\.[01] (\d{3}) /.exec(top);
    if (!status) return n;
    pos = at + 4;
    if (status[1][0] === '1') continue;
    if (!head) {
      const len = /\r\ncontent-length: *(\d+)/i.exec(top);
      if (!len) return n;
      pos += Number(len[1]);
      if (pos > text.length) return n;
    }
    n++;
  }
}

// Sends raw request bytes on a fresh connection and reads while it
// writes; resolves to {status, head, body, text, ms} once the server ends
// the connection, or as soon as `responses` whole responses were read
// from a connection the server keeps open. A server that answers before
// the whole request is sent and then closes may make the write fail with
// EPIPE or ECONNRESET; that is the end of the exchange once a status line
// was read, and an error before it.
export function rawExchange(port, bytes, { timeoutMs = 10000, responses = 1 } = {}) {
  const isHead = bytes.subarray(0, 5).toString('latin1') === 'HEAD ';
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    let settled = false;
    const finish = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3}) /.exec(text);
      if (!m) return reject(err || new Error(`no status line in ${JSON.stringify(text.slice(0, 200))}`));
      const at = text.indexOf('\r\n\r\n');
      const head = at < 0 ? text : text.slice(0, at);
      const body = at < 0 ? '' : Buffer.concat(chunks).subarray(Buffer.byteLength(text.slice(0, at + 4), 'latin1')).toString();
      resolve({ status: Number(m[1]), head, body, text, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish(new Error('no answer in time')), timeoutMs);
    sock.on('data', (c) => {
      chunks.push(c);
      if (wholeResponses(Buffer.concat(chunks).toString('latin1'), isHead) >= responses) finish();
    });
    sock.on('end', () => finish());
    sock.on('close', () => finish());
    sock.on('error', finish);
    sock.write(bytes);
  });
}

// Sends a large chunked body piece by piece, stopping once the server
// answers, as a client does that reads while it writes; resolves to
// {status, headers, body (Buffer)}.
export function chunkedUpload(port, p, total, headers = {}) {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: p, agent: false,
      headers: { 'Transfer-Encoding': 'chunked', ...headers } }, (res) => {
      answered = true;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', (e) => { if (!answered) reject(e); });
    const piece = Buffer.alloc(16384, 'a');
    let sent = 0;
    const pump = () => {
      while (!answered && sent < total) {
        sent += piece.length;
        if (!req.write(piece)) return req.once('drain', () => setTimeout(pump, 1));
      }
      if (!answered) req.end();
    };
    req.write('{"title":"');
    pump();
  });
}

// Opens an SSE response with a raw request and collects its bytes until
// done(text) is true or the response ends; resolves to {status, headers,
// text, ended}. The connection is closed when it resolves.
export function sse(port, p, { headers = {}, method = 'GET', body, done = () => false, timeoutMs = 20000 } = {}) {
  return new Promise((resolve, reject) => {
    let text = '';
    let settled = false;
    const req = http.request({ host: '127.0.0.1', port, method, path: p, agent: false,
      headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      const finish = (ended) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, text, ended });
        req.destroy();
      };
      res.setEncoding('utf8');
      res.on('data', (c) => {
        text += c;
        if (done(text)) finish(false);
      });
      res.on('end', () => finish(true));
      res.on('error', () => finish(true));
    });
    const timer = setTimeout(() => {
      if (!settled) {
        settled = true;
        req.destroy();
        reject(new Error(`SSE timed out; got:\n${text.slice(-2000)}`));
      }
    }, timeoutMs);
    req.on('error', (e) => { if (!settled) { settled = true; clearTimeout(timer); reject(e); } });
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// Splits SSE text into events {id, event, data} (comments and retry lines
// left out), as framed by the server.
export function parseFrames(text) {
  const out = [];
  for (const block of text.split('\n\n')) {
    if (!block) continue;
    const ev = {};
    for (const line of block.split('\n')) {
      const i = line.indexOf(': ');
      if (i < 0) continue;
      const k = line.slice(0, i);
      const v = line.slice(i + 2);
      if (k === 'id') ev.id = Number(v);
      else if (k === 'event') ev.event = v;
      else if (k === 'data') ev.data = JSON.parse(v);
    }
    if (ev.event) out.push(ev);
  }
  return out;
}

// Polls fn until it returns a truthy value; throws after timeoutMs.
export async function until(fn, timeoutMs = 10000, stepMs = 20) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Creates a session; resolves to its object.
export async function newSession(base, body = {}) {
  const r = await api(base, 'POST', '/api/sessions', body);
  if (r.status !== 201) throw new Error(`create session: ${r.status} ${r.text}`);
  return r.body;
}

// Waits until the session is idle again; resolves to the session.
export async function waitIdle(base, id, timeoutMs = 20000) {
  return until(async () => {
    const r = await api(base, 'GET', `/api/sessions/${id}`);
    return r.body && r.body.status === 'idle' && r.body.last_run && r.body.last_run.status === 'stopped' ? r.body : null;
  }, timeoutMs, 25);
}
