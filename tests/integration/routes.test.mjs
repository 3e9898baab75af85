// Every route without runs, and every error code of docs/api.md that needs
// no run, against the real server.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { api, chunkedUpload, newSession, raw, rawExchange, runBinary, startServer } from './lib/server.mjs';

const SECURITY = {
  'content-security-policy': "default-src 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

function assertError(r, status, code, message) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.deepEqual(Object.keys(r.body), ['error']);
  assert.deepEqual(Object.keys(r.body.error), ['code', 'message']);
  assert.equal(r.body.error.code, code);
  if (message instanceof RegExp) assert.match(r.body.error.message, message);
  else if (message !== undefined) assert.equal(r.body.error.message, message);
}

describe('routes', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    const st = await srv.stop();
    assert.equal(st.code, 0);
    srv.cleanup();
  });

  test("GET /api/info names the demo brain, the built-in tools, the demo brain's own too, and no auth", async () => {
    const r = await api(srv.url, 'GET', '/api/info');
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body), ['version', 'llm', 'tools', 'servers', 'auth']);
    assert.deepEqual(r.body.servers, [], 'no MCP server is configured');
    assert.match(r.body.version, /^\d+\.\d+\.\d+/);
    assert.deepEqual(r.body.llm, { provider: 'demo', model: 'demo' });
    assert.deepEqual(r.body.tools.map((t) => [t.name, t.server]), [['calc', 'builtin'], ['clock', 'builtin'], ['pretend_delete', 'builtin'], ['sleep', 'builtin']]);
    for (const t of r.body.tools) assert.deepEqual(Object.keys(t), ['name', 'server', 'description']);
    assert.equal(r.body.auth, false);
    for (const [k, v] of Object.entries(SECURITY)) assert.equal(r.headers.get(k), v, k);
  });

  test('the start-up log names the demo brain and the migration', () => {
    assert.ok(srv.lines.includes('level=info msg="migration applied" version=1 name=init'), srv.lines.join('\n'));
    assert.ok(srv.lines.includes('level=info msg="migration applied" version=2 name=time_functions'), srv.lines.join('\n'));
    assert.ok(srv.lines.includes('level=info msg="migration applied" version=3 name=recent_reads'), srv.lines.join('\n'));
    assert.ok(srv.lines.some((l) => l.startsWith('level=info msg="using the demo brain: no llm.base_url configured"')));
  });

  test('request ids: a sane incoming X-Request-Id is echoed, others replaced', async () => {
    let r = await api(srv.url, 'GET', '/api/info', undefined, { 'X-Request-Id': 'abc-123.x_y' });
    assert.equal(r.headers.get('x-request-id'), 'abc-123.x_y');
    r = await api(srv.url, 'GET', '/api/info', undefined, { 'X-Request-Id': 'bad id with spaces' });
    assert.match(r.headers.get('x-request-id'), /^[0-9a-f]{16}$/);
    r = await api(srv.url, 'GET', '/api/info', undefined, { 'X-Request-Id': 'x'.repeat(65) });
    assert.match(r.headers.get('x-request-id'), /^[0-9a-f]{16}$/);
    r = await api(srv.url, 'GET', '/api/info');
    assert.match(r.headers.get('x-request-id'), /^[0-9a-f]{16}$/);
  });

  test('each request is one access log line on stderr', async () => {
    await api(srv.url, 'GET', '/api/sessions?limit=3', undefined, { 'X-Request-Id': 'log-check-1' });
    const line = srv.lines.find((l) => l.endsWith('request_id=log-check-1'));
    assert.ok(line, srv.lines.slice(-5).join('\n'));
    assert.match(line, /^level=info msg="request" method=GET path=\/api\/sessions status=200 duration_ms=\d+\.\d request_id=log-check-1$/);
  });

  test('--log-level warn keeps only the listening line of a quiet server; a bad level stops the start', async () => {
    const quiet = await startServer({ args: ['--log-level', 'warn'] });
    try {
      const r = await api(quiet.url, 'GET', '/api/sessions', undefined, { 'X-Request-Id': 'quiet-1' });
      assert.equal(r.status, 200);
      // A request the server answered after the first was logged, if at all.
      await api(quiet.url, 'GET', '/api/info');
      assert.deepEqual(quiet.lines.filter((l) => !l.startsWith('level=warn')),
        [`level=info msg="listening" url=http://127.0.0.1:${quiet.port}`]);
      assert.equal(quiet.lines.filter((l) => l.includes('msg="request"')).length, 0);
    } finally {
      await quiet.stop();
      quiet.cleanup();
    }
    const bad = await runBinary(['serve', '--listen', '127.0.0.1:0', '--db', 'sqlite::memory:'],
      { CHATPLANE_LOG_LEVEL: 'loud' });
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, "chatplane serve: log.level must be debug, info, warn or error, not 'loud'\n");
  });

  test('sessions: create, get, list newest first with limit and before, patch, delete', async () => {
    const a = await newSession(srv.url, { title: 'first' });
    assert.deepEqual(Object.keys(a), ['id', 'title', 'mode', 'status', 'active_run_id', 'last_seq',
      'created_at', 'updated_at', 'forked_from', 'last_run', 'queued_run_id']);
    assert.equal(a.queued_run_id, null);
    assert.equal(a.title, 'first');
    assert.equal(a.mode, 'standard');
    assert.equal(a.status, 'idle');
    assert.equal(a.active_run_id, null);
    assert.equal(a.last_seq, 0);
    assert.equal(a.last_run, null);
    assert.match(a.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    await new Promise((r) => setTimeout(r, 5));
    const b = await newSession(srv.url, { mode: 'quick' });
    assert.equal(b.title, 'New chat');
    assert.equal(b.mode, 'quick');
    await new Promise((r) => setTimeout(r, 5));
    const c = await newSession(srv.url);
    assert.equal(c.title, 'New chat');

    let r = await api(srv.url, 'GET', `/api/sessions/${b.id}`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, b);

    r = await api(srv.url, 'GET', '/api/sessions?limit=2');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.sessions.map((s) => s.id), [c.id, b.id]);
    r = await api(srv.url, 'GET', `/api/sessions?limit=2&before=${b.id}`);
    assert.deepEqual(r.body.sessions.map((s) => s.id).slice(0, 1), [a.id]);

    r = await api(srv.url, 'PATCH', `/api/sessions/${a.id}`, { title: 'renamed', mode: 'deep' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.title, 'renamed');
    assert.equal(r.body.mode, 'deep');
    r = await api(srv.url, 'GET', `/api/sessions/${a.id}`);
    assert.equal(r.body.title, 'renamed');

    r = await api(srv.url, 'DELETE', `/api/sessions/${c.id}`);
    assert.equal(r.status, 204);
    assert.equal(r.text, '');
    r = await api(srv.url, 'GET', `/api/sessions/${c.id}`);
    assertError(r, 404, 'not_found', `no session ${c.id}`);
    r = await api(srv.url, 'DELETE', `/api/sessions/${c.id}`);
    assertError(r, 404, 'not_found');
  });

  test('a session\'s messages, tools and runs start empty; unknown sessions are 404', async () => {
    const s = await newSession(srv.url);
    for (const [p, key] of [['messages', 'messages'], ['tools', 'tool_executions'], ['runs', 'runs']]) {
      let r = await api(srv.url, 'GET', `/api/sessions/${s.id}/${p}`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { [key]: [] });
      r = await api(srv.url, 'GET', `/api/sessions/nope/${p}`);
      assertError(r, 404, 'not_found', 'no session nope');
    }
    let r = await api(srv.url, 'GET', `/api/sessions/${s.id}/events`, undefined, { Accept: 'application/json' });
    assert.deepEqual(r.body, { events: [] });
    r = await api(srv.url, 'GET', '/api/sessions/nope/events', undefined, { Accept: 'application/json' });
    assertError(r, 404, 'not_found');
    r = await api(srv.url, 'GET', '/api/sessions/nope/events');
    assertError(r, 404, 'not_found');
    r = await api(srv.url, 'GET', '/api/runs/nope');
    assertError(r, 404, 'not_found', 'no run nope');
  });

  test('modes: list, update, and reject bad values', async () => {
    let r = await api(srv.url, 'GET', '/api/modes');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.modes.map((m) => m.name), ['quick', 'standard', 'deep']);
    assert.deepEqual(r.body.modes[0].limits, { steps: 3, seconds: 30, tokens: 8000, tool_calls: 3, retries: 1, cost_usd: null });
    assert.deepEqual(r.body.modes[1].guard, { loop_warn: 3, loop_stop: 4, fail_warn: 2, fail_stop: 3, stale_steps: 4 });
    r = await api(srv.url, 'PUT', '/api/modes/quick', { limits: { steps: 5 }, description: 'quick, a bit longer' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.name, 'quick');
    assert.equal(r.body.description, 'quick, a bit longer');
    assert.equal(r.body.limits.steps, 5);
    assert.equal(r.body.limits.seconds, 30);
    r = await api(srv.url, 'GET', '/api/modes');
    assert.equal(r.body.modes[0].limits.steps, 5);
    r = await api(srv.url, 'PUT', '/api/modes/quick', { limits: { steps: -1 } });
    assertError(r, 400, 'bad_request', /limits\.steps/);
    r = await api(srv.url, 'PUT', '/api/modes/quick', { guard: { loop_warn: 9, loop_stop: 4 } });
    assertError(r, 400, 'bad_request', /guard\.loop_warn|guard\.loop_stop/);
    r = await api(srv.url, 'PUT', '/api/modes/quick', { limit: {} });
    assertError(r, 400, 'bad_request', "unknown field 'limit'");
    r = await api(srv.url, 'PUT', '/api/modes/huge', { limits: { steps: 1 } });
    assertError(r, 404, 'not_found', 'no mode huge');
    r = await api(srv.url, 'GET', '/api/modes');
    assert.equal(r.body.modes[0].limits.steps, 5);
    assert.equal(r.body.modes[0].guard.loop_warn, 3);
  });

  test('healthz and metrics', async () => {
    let r = await api(srv.url, 'GET', '/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'ok' });
    r = await api(srv.url, 'GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    for (const name of ['chatplane_runs_active', 'chatplane_runs_started_total', 'chatplane_runs_stopped_total',
      'chatplane_events_total', 'chatplane_sse_subscribers', 'chatplane_tool_calls_total',
      'chatplane_tool_duration_seconds', 'chatplane_llm_first_token_seconds', 'chatplane_llm_tokens_total',
      'chatplane_store_commit_seconds', 'chatplane_http_requests_total']) {
      assert.match(r.text, new RegExp(`^# TYPE ${name} (counter|gauge|histogram)$`, 'm'), name);
    }
    assert.match(r.text, /^chatplane_http_requests_total\{code="200"\} \d+$/m);
    assert.match(r.text, /^chatplane_store_commit_seconds_bucket\{le="\+Inf"\} [1-9]\d*$/m);
  });

  test('404 for unknown API paths, 405 with Allow for a known path', async () => {
    let r = await api(srv.url, 'GET', '/api/nothing');
    assertError(r, 404, 'not_found', 'no route for GET /api/nothing');
    r = await api(srv.url, 'PUT', '/api/sessions', {});
    assertError(r, 405, 'method_not_allowed');
    assert.equal(r.headers.get('allow'), 'POST, GET, HEAD');
    r = await api(srv.url, 'POST', '/api/sessions/x', {});
    assertError(r, 405, 'method_not_allowed');
    assert.equal(r.headers.get('allow'), 'GET, HEAD, PATCH, DELETE');
    r = await api(srv.url, 'GET', '/api/sessions/x/runs');
    assertError(r, 404, 'not_found');
    r = await api(srv.url, 'DELETE', '/api/sessions/x/runs');
    assertError(r, 405, 'method_not_allowed');
    assert.equal(r.headers.get('allow'), 'GET, HEAD, POST');
    r = await api(srv.url, 'GET', '/api/brain/stream');
    assertError(r, 405, 'method_not_allowed');
    assert.equal(r.headers.get('allow'), 'POST');
    r = await api(srv.url, 'GET', '/metrics', undefined, {});
    assert.equal(r.status, 200);
    r = await api(srv.url, 'POST', '/healthz', {});
    assertError(r, 405, 'method_not_allowed');
    r = await api(srv.url, 'DELETE', '/');
    assertError(r, 405, 'method_not_allowed');
    assert.equal(r.headers.get('allow'), 'GET, HEAD');
  });

  test('415 for a body that is not JSON', async () => {
    let r = await api(srv.url, 'POST', '/api/sessions', '{"title":"x"}', { 'Content-Type': 'text/plain' });
    assertError(r, 415, 'unsupported_media_type', 'the body must be sent as application/json, not text/plain');
    r = await api(srv.url, 'POST', '/api/sessions', '{"title":"x"}', { 'Content-Type': 'application/json; charset=utf-8' });
    assert.equal(r.status, 201);
    const res = await raw(srv.port, 'POST', '/api/sessions', { body: '{}', headers: { 'Content-Length': '2' } });
    assert.equal(res.status, 415);
    assert.equal(JSON.parse(res.body).error.code, 'unsupported_media_type');
  });

  test('413 as JSON for a body over limits.body_bytes, with Content-Length or chunked', async () => {
    // The server answers before the body is all sent and then closes: the
    // client reads while it writes, and a write that fails after the
    // answer arrived (EPIPE, ECONNRESET) ends the exchange (rawExchange).
    const big = '{"title":"' + 'a'.repeat(2 * 1024 * 1024) + '"}';
    const expected = { error: { code: 'payload_too_large', message: 'the request is larger than the server accepts' } };
    let r = await rawExchange(srv.port, Buffer.from('POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n'
      + `Content-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n${big}`));
    assert.equal(r.status, 413);
    assert.match(r.head, /\r\nContent-Type: application\/json\r\n/);
    assert.deepEqual(JSON.parse(r.body), expected);
    const piece = `4000\r\n${'a'.repeat(0x4000)}\r\n`;
    r = await rawExchange(srv.port, Buffer.from('POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n'
      + 'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' + piece.repeat(256) + '0\r\n\r\n'));
    assert.equal(r.status, 413);
    assert.deepEqual(JSON.parse(r.body), expected);
    r = await chunkedUpload(srv.port, '/api/sessions', 4 * 1024 * 1024, { 'Content-Type': 'application/json' });
    assert.equal(r.status, 413);
    assert.equal(JSON.parse(r.body).error.code, 'payload_too_large');
  });

  test('400 invalid_json names line and column; bad_request names the field', async () => {
    const s = await newSession(srv.url);
    let r = await api(srv.url, 'POST', '/api/sessions', '{\n  "title": }');
    assertError(r, 400, 'invalid_json', /^invalid JSON at line 2, column 12: /);
    r = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: '' });
    assertError(r, 400, 'bad_request', 'message must be a non-empty string');
    r = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, {});
    assertError(r, 400, 'bad_request', 'message must be a non-empty string');
    r = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'x'.repeat(65537) });
    assertError(r, 400, 'bad_request', 'message must be at most 65536 bytes');
    r = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'hi', mode: 'huge' });
    assertError(r, 400, 'bad_request', "mode 'huge' is not one of quick, standard, deep");
    r = await api(srv.url, 'POST', '/api/sessions', { title: 'x'.repeat(201) });
    assertError(r, 400, 'bad_request', 'title must be at most 200 characters');
    r = await api(srv.url, 'POST', '/api/sessions', { foo: 1 });
    assertError(r, 400, 'bad_request', "unknown field 'foo'");
    r = await api(srv.url, 'POST', '/api/sessions', [1, 2]);
    assertError(r, 400, 'bad_request', 'the body must be a JSON object');
    r = await api(srv.url, 'PATCH', `/api/sessions/${s.id}`, { title: 7 });
    assertError(r, 400, 'bad_request', 'title must be a string');
    r = await api(srv.url, 'GET', '/api/sessions?limit=0');
    assertError(r, 400, 'bad_request', 'limit must be an integer from 1 to 200');
    r = await api(srv.url, 'GET', '/api/sessions?limit=201');
    assertError(r, 400, 'bad_request', 'limit must be an integer from 1 to 200');
    r = await api(srv.url, 'GET', `/api/sessions/${s.id}/events?after=x`, undefined, { Accept: 'application/json' });
    assertError(r, 400, 'bad_request', 'after must be a non-negative integer');
    r = await api(srv.url, 'GET', `/api/sessions/${s.id}/events`, undefined, { 'Last-Event-ID': '-3' });
    assertError(r, 400, 'bad_request', 'Last-Event-ID must be a non-negative integer');
    r = await api(srv.url, 'POST', `/api/sessions/${s.id}/stop`, { now: true });
    assertError(r, 400, 'bad_request', "unknown field 'now'");
    r = await api(srv.url, 'POST', '/api/brain/stream', { message: 'x', session_id: 5 });
    assertError(r, 400, 'bad_request', 'session_id must be a non-empty string of at most 64 bytes');
  });

  test('a request with bad input never changes state', async () => {
    const s = await newSession(srv.url, { title: 'keep me' });
    const snapshot = async () => JSON.stringify([
      (await api(srv.url, 'GET', '/api/sessions?limit=200')).body,
      (await api(srv.url, 'GET', `/api/sessions/${s.id}/runs`)).body,
      (await api(srv.url, 'GET', `/api/sessions/${s.id}/messages`)).body,
      (await api(srv.url, 'GET', `/api/sessions/${s.id}/events`, undefined, { Accept: 'application/json' })).body,
      (await api(srv.url, 'GET', '/api/modes')).body,
    ]);
    const before = await snapshot();
    const bad = [
      ['POST', '/api/sessions', { title: '' }],
      ['POST', '/api/sessions', { mode: 'huge' }],
      ['POST', '/api/sessions', '{"title":'],
      ['PATCH', `/api/sessions/${s.id}`, { title: 'x'.repeat(201) }],
      ['PATCH', `/api/sessions/${s.id}`, { title: 'ok', mode: 'huge' }],
      ['PATCH', `/api/sessions/${s.id}`, { title: 'ok', extra: true }],
      ['POST', `/api/sessions/${s.id}/runs`, { message: 'hi', mode: 'nope' }],
      ['POST', `/api/sessions/${s.id}/runs`, { message: 42 }],
      ['POST', `/api/sessions/${s.id}/continue`, { mode: 1 }],
      ['PUT', '/api/modes/standard', { limits: { steps: 'ten' } }],
      ['PUT', '/api/modes/standard', { guard: { fail_warn: 5, fail_stop: 3 } }],
      ['POST', '/api/brain/stream', { session_id: s.id }],
      ['POST', '/api/brain/unified/consult/stream', { message: 'x', mode: 'huge' }],
    ];
    for (const [m, p, body] of bad) {
      const r = await api(srv.url, m, p, body);
      assert.equal(r.status, 400, `${m} ${p}: ${r.text}`);
    }
    assert.equal(await snapshot(), before);
  });

  test('HEAD answers like GET without a body', async () => {
    const r = await raw(srv.port, 'HEAD', '/api/info');
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 0);
  });

  test('GET / answers the built-in page and its files, with ETags; unknown files 404', async () => {
    let r = await api(srv.url, 'GET', '/');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(r.text, /<script type="module" src="app.js"><\/script>/);
    // The page runs under default-src 'self': no inline script or style.
    assert.doesNotMatch(r.text, /<script(?![^>]*\bsrc=)|<style|style=/);
    for (const [k, v] of Object.entries(SECURITY)) assert.equal(r.headers.get(k), v, k);
    const etag = r.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{16}"$/);
    r = await raw(srv.port, 'GET', '/', { headers: { 'If-None-Match': etag } });
    assert.equal(r.status, 304);
    assert.equal(r.body.length, 0);
    r = await api(srv.url, 'GET', '/app.js');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/javascript; charset=utf-8');
    for (const [k, v] of Object.entries(SECURITY)) assert.equal(r.headers.get(k), v, k);
    r = await api(srv.url, 'GET', '/app.css');
    assert.equal(r.headers.get('content-type'), 'text/css; charset=utf-8');
    r = await api(srv.url, 'GET', '/nope.js');
    assertError(r, 404, 'not_found');
    r = await api(srv.url, 'GET', '/../Makefile');
    assert.equal(r.status, 404);
  });
});

describe('serving files from --web-root', () => {
  let srv;
  before(async () => {
    const tmp = await startServer();
    await tmp.stop();
    const web = path.join(tmp.dir, 'web');
    mkdirSync(path.join(web, 'sub'), { recursive: true });
    writeFileSync(path.join(web, 'index.html'), '<!doctype html><p>index</p>');
    writeFileSync(path.join(web, 'app.js'), 'export const x = 1;\n');
    writeFileSync(path.join(web, 'sub', 'style.css'), 'p { color: red }\n');
    writeFileSync(path.join(tmp.dir, 'secret.txt'), 'secret');
    srv = await startServer({ dir: tmp.dir, args: ['--web-root', web] });
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
  });

  test('files with content types by extension', async () => {
    let r = await api(srv.url, 'GET', '/');
    assert.equal(r.text, '<!doctype html><p>index</p>');
    assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
    r = await api(srv.url, 'GET', '/app.js');
    assert.equal(r.text, 'export const x = 1;\n');
    assert.equal(r.headers.get('content-type'), 'text/javascript; charset=utf-8');
    r = await api(srv.url, 'GET', '/sub/style.css');
    assert.equal(r.headers.get('content-type'), 'text/css; charset=utf-8');
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
  });

  test('no directory traversal, no missing files', async () => {
    for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/sub/..%2f..%2fsecret.txt', '/missing.js', '/sub', '/.hidden']) {
      const r = await raw(srv.port, 'GET', p);
      assert.equal(r.status, 404, p);
      assert.equal(JSON.parse(r.body).error.code, 'not_found');
    }
  });
});

describe('start-up errors', () => {
  test('a non-loopback address is refused without --insecure-no-auth', async () => {
    const r = await runBinary(['serve', '--listen', '0.0.0.0:0', '--db', 'sqlite::memory:']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0:0: it is not a loopback address .*--insecure-no-auth/);
  });

  test('an address in use is an error naming it', async () => {
    const srv = await startServer();
    try {
      const r = await runBinary(['serve', '--listen', `127.0.0.1:${srv.port}`, '--db', `sqlite:${path.join(srv.dir, 'other.db')}`]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${srv.port}: Address already in use`));
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });
});
