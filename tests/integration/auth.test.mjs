// Authentication and isolation (docs/security.md) against the real
// server: every route of docs/api.md, walked from one table, with no
// token (401), another owner's token (404, or 403 for admin-only) and the
// right token (success); tokens made and revoked while the server runs;
// the login cookie and the Origin rules; the open loopback server.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { api, raw, runBinary, sse, startServer, until } from './lib/server.mjs';

// Makes a token with the real command; resolves to the token, read from
// the last line of stdout as docs/cli.md promises.
async function makeToken(dir, name, admin = false) {
  const r = await runBinary(['token', 'create', name, ...(admin ? ['--admin'] : []), '--db', `sqlite:${path.join(dir, 'chat.db')}`]);
  assert.equal(r.code, 0, r.stderr);
  const token = r.stdout.trimEnd().split('\n').at(-1);
  assert.match(token, /^cpt_[0-9a-f]{64}$/);
  return token;
}

async function revokeToken(dir, name) {
  const r = await runBinary(['token', 'revoke', name, '--db', `sqlite:${path.join(dir, 'chat.db')}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `revoked token '${name}'\n`);
}

const bearer = (t) => (t ? { Authorization: `Bearer ${t}` } : {});

function assertError(r, status, code) {
  assert.equal(r.status, status, `${r.status} ${r.text}`);
  assert.deepEqual(Object.keys(r.body), ['error']);
  assert.equal(r.body.error.code, code, r.text);
}

async function waitIdle(url, id, token) {
  return until(async () => {
    const r = await api(url, 'GET', `/api/sessions/${id}`, undefined, bearer(token));
    return r.body && r.body.status === 'idle' && r.body.last_run && r.body.last_run.status === 'stopped' ? r.body : null;
  }, 20000, 25);
}

async function newSession(url, token, body = {}) {
  const r = await api(url, 'POST', '/api/sessions', body, bearer(token));
  assert.equal(r.status, 201, r.text);
  return r.body;
}

// One request of the walk: JSON routes through fetch, streams through a raw
// request that stops at the first blank line (or at run_stopped for a run
// stream) so an answered stream does not keep the test waiting.
async function call(srv, route, c, token) {
  const p = route.path(c);
  const headers = { ...bearer(token), ...(route.headers || {}) };
  if (!route.sse) return api(srv.url, route.method, p, route.body, headers);
  const body = route.body === undefined ? undefined : JSON.stringify(route.body);
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const untilDone = route.runStream ? (t) => t.includes('event: run_stopped') : (t) => t.includes('\n\n');
  const r = await sse(srv.port, p, { method: route.method, headers, body, done: untilDone });
  let json = null;
  try { json = JSON.parse(r.text); } catch { /* a stream */ }
  return { status: r.status, body: json, text: r.text, headers: r.headers };
}

// Every route of docs/api.md but /api/login, which is open by design, and
// the page, /healthz and /metrics, which are outside /api/. owned: another
// owner gets 404. admin: a non-admin token gets 403. ok: the status of a
// success; then(): waits for what the success started.
const ROUTES = [
  { name: 'GET /api/info', method: 'GET', path: () => '/api/info', ok: 200 },
  { name: 'POST /api/sessions', method: 'POST', path: () => '/api/sessions', body: {}, ok: 201 },
  { name: 'GET /api/sessions', method: 'GET', path: () => '/api/sessions?limit=50', ok: 200 },
  { name: 'GET /api/sessions/{id}', method: 'GET', path: (c) => `/api/sessions/${c.S}`, owned: true, ok: 200 },
  { name: 'PATCH /api/sessions/{id}', method: 'PATCH', path: (c) => `/api/sessions/${c.S}`, body: { title: 'renamed' }, owned: true, ok: 200 },
  { name: 'GET /api/sessions/{id}/messages', method: 'GET', path: (c) => `/api/sessions/${c.S}/messages`, owned: true, ok: 200 },
  { name: 'GET /api/sessions/{id}/tools', method: 'GET', path: (c) => `/api/sessions/${c.S}/tools?run_id=${c.R}`, owned: true, ok: 200 },
  { name: 'GET /api/sessions/{id}/runs', method: 'GET', path: (c) => `/api/sessions/${c.S}/runs`, owned: true, ok: 200 },
  { name: 'GET /api/sessions/{id}/export', method: 'GET', path: (c) => `/api/sessions/${c.S}/export?format=json`, owned: true, ok: 200 },
  { name: 'POST /api/sessions/{id}/fork', method: 'POST', path: (c) => `/api/sessions/${c.S}/fork`, body: {}, owned: true, ok: 201 },
  { name: 'GET /api/sessions/{id}/events (JSON)', method: 'GET', path: (c) => `/api/sessions/${c.S}/events?after=0`, headers: { Accept: 'application/json' }, owned: true, ok: 200 },
  { name: 'GET /api/sessions/{id}/events (SSE)', method: 'GET', path: (c) => `/api/sessions/${c.S}/events`, sse: true, owned: true, ok: 200 },
  { name: 'GET /api/sessions/{id}/events (SSE replay)', method: 'GET', path: (c) => `/api/sessions/${c.S}/events`, headers: { 'Last-Event-ID': '1' }, sse: true, owned: true, ok: 200 },
  { name: 'GET /api/runs/{id}', method: 'GET', path: (c) => `/api/runs/${c.R}`, owned: true, ok: 200 },
  { name: 'GET /api/sessions/{id}/approvals', method: 'GET', path: (c) => `/api/sessions/${c.S}/approvals?status=pending`, owned: true, ok: 200 },
  // No call of these sessions waits for approval: the right token gets as
  // far as looking the approval up (tests/integration/approvals.test.mjs
  // decides real ones).
  { name: 'POST /api/sessions/{id}/approvals/{approval_id}', method: 'POST', path: (c) => `/api/sessions/${c.S}/approvals/apr_none`, body: { decision: 'approve' }, owned: true, ok: 404 },
  { name: 'POST /api/sessions/{id}/runs', method: 'POST', path: (c) => `/api/sessions/${c.runs}/runs`, body: { message: 'what is 1+2?' }, owned: true, ok: 202, then: (srv, c, t) => waitIdle(srv.url, c.runs, t) },
  { name: 'POST /api/sessions/{id}/runs (SSE)', method: 'POST', path: (c) => `/api/sessions/${c.stream}/runs`, body: { message: 'what is 2+2?' }, sse: true, runStream: true, owned: true, ok: 200 },
  { name: 'POST /api/sessions/{id}/continue', method: 'POST', path: (c) => `/api/sessions/${c.cont}/continue`, body: { mode: 'quick' }, owned: true, ok: 202, then: (srv, c, t) => waitIdle(srv.url, c.cont, t) },
  { name: 'POST /api/sessions/{id}/stop', method: 'POST', path: (c) => `/api/sessions/${c.stop}/stop`, owned: true, ok: 202, then: (srv, c, t) => waitIdle(srv.url, c.stop, t) },
  { name: 'POST /api/brain/stream', method: 'POST', path: () => '/api/brain/stream', body: (c) => ({ session_id: c.S, message: 'what is 3+3?' }), sse: true, runStream: true, owned: true, ok: 200 },
  { name: 'POST /api/brain/unified/consult/stream', method: 'POST', path: () => '/api/brain/unified/consult/stream', body: (c) => ({ session_id: c.S, message: 'what is 4+4?' }), sse: true, runStream: true, owned: true, ok: 200 },
  { name: 'GET /api/modes', method: 'GET', path: () => '/api/modes', ok: 200 },
  { name: 'GET /api/health', method: 'GET', path: () => '/api/health', ok: 200 },
  // No tool server is configured here: the admin passes the check and
  // learns that there is none.
  { name: 'POST /api/mcp/{name}/restart', method: 'POST', path: () => '/api/mcp/files/restart', admin: true, ok: 404 },
  { name: 'GET /api/usage', method: 'GET', path: () => '/api/usage', ok: 200 },
  { name: 'GET /api/usage (another owner)', method: 'GET', path: () => '/api/usage?owner=ops', admin: true, ok: 200 },
  { name: 'PUT /api/modes/{name}', method: 'PUT', path: () => '/api/modes/quick', body: { description: 'Quick answers.' }, admin: true, ok: 200 },
  { name: 'DELETE /api/sessions/{id}', method: 'DELETE', path: (c) => `/api/sessions/${c.del}`, owned: true, ok: 204 },
  { name: 'POST /api/logout', method: 'POST', path: () => '/api/logout', ok: 204 },
];

describe('authorization of every route', () => {
  let srv;
  let dir;
  const tok = {};
  const c = {};
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'chatplane-auth-'));
    tok.alice = await makeToken(dir, 'alice');
    tok.bob = await makeToken(dir, 'bob');
    tok.root = await makeToken(dir, 'root', true);
    srv = await startServer({ dir, env: { CHATPLANE_DEMO_DELAY_MS: '20' } });
    assert.ok(srv.lines.includes('level=info msg="authentication is on" tokens=3'), srv.lines.join('\n'));
    // alice's sessions: S with a finished run R; one each for the routes
    // that start, continue, stop and delete.
    c.S = (await newSession(srv.url, tok.alice, { title: 'alice main' })).id;
    const r = await api(srv.url, 'POST', `/api/sessions/${c.S}/runs`, { message: 'what is 6*7?' }, bearer(tok.alice));
    assert.equal(r.status, 202, r.text);
    c.R = r.body.id;
    await waitIdle(srv.url, c.S, tok.alice);
    for (const k of ['runs', 'stream', 'cont', 'stop', 'del']) c[k] = (await newSession(srv.url, tok.alice)).id;
    const loop = await api(srv.url, 'POST', `/api/sessions/${c.cont}/runs`, { message: 'demo loop', mode: 'quick' }, bearer(tok.alice));
    assert.equal(loop.status, 202);
    await waitIdle(srv.url, c.cont, tok.alice);
  });
  after(async () => {
    const st = await srv.stop();
    assert.equal(st.code, 0);
    rmSync(dir, { recursive: true, force: true });
  });

  const resolved = (route) => ({ ...route, body: typeof route.body === 'function' ? route.body(c) : route.body });

  test('the table covers every route of docs/api.md under /api/ but login', () => {
    const names = new Set(ROUTES.map((r) => r.name.replace(/ \(.*\)$/, '')));
    assert.deepEqual([...names].sort(), [
      'DELETE /api/sessions/{id}', 'GET /api/health', 'GET /api/info', 'GET /api/modes', 'GET /api/runs/{id}', 'GET /api/sessions',
      'GET /api/sessions/{id}', 'GET /api/sessions/{id}/approvals', 'GET /api/sessions/{id}/events', 'GET /api/sessions/{id}/export', 'GET /api/sessions/{id}/messages',
      'GET /api/sessions/{id}/runs', 'GET /api/sessions/{id}/tools', 'GET /api/usage', 'PATCH /api/sessions/{id}',
      'POST /api/brain/stream', 'POST /api/brain/unified/consult/stream', 'POST /api/logout', 'POST /api/mcp/{name}/restart', 'POST /api/sessions',
      'POST /api/sessions/{id}/approvals/{approval_id}', 'POST /api/sessions/{id}/continue', 'POST /api/sessions/{id}/fork', 'POST /api/sessions/{id}/runs', 'POST /api/sessions/{id}/stop',
      'PUT /api/modes/{name}',
    ]);
  });

  test('no token: 401 unauthorized on every route, and the same with a wrong or malformed one', async () => {
    for (const route of ROUTES) {
      for (const t of [undefined, 'cpt_' + '0'.repeat(64)]) {
        const r = await call(srv, resolved(route), c, t);
        assertError(r, 401, 'unauthorized');
        assert.equal(r.headers.get ? r.headers.get('www-authenticate') : r.headers['www-authenticate'], 'Bearer realm="chatplane"');
      }
    }
    const odd = await api(srv.url, 'GET', '/api/info', undefined, { Authorization: 'Basic YWxpY2U6eA==' });
    assertError(odd, 401, 'unauthorized');
    const cookie = await api(srv.url, 'GET', '/api/info', undefined, { Cookie: 'chatplane_session=nope' });
    assertError(cookie, 401, 'unauthorized');
  });

  test("another owner's token: 404 on every route of alice's sessions and runs, 403 on admin-only ones", async () => {
    for (const route of ROUTES.filter((x) => x.owned || x.admin)) {
      const r = await call(srv, resolved(route), c, tok.bob);
      if (route.admin) assertError(r, 403, 'forbidden');
      else assertError(r, 404, 'not_found');
    }
    // Nothing bob did reached alice's session.
    const s = await api(srv.url, 'GET', `/api/sessions/${c.S}`, undefined, bearer(tok.alice));
    assert.equal(s.body.title, 'alice main');
    assert.equal(s.body.last_run.id, c.R);
    const list = await api(srv.url, 'GET', '/api/sessions', undefined, bearer(tok.bob));
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.sessions, []);
  });

  test('the right token: success on every route (the admin token for admin-only ones)', async () => {
    // stop needs a run to stop: a plain answer takes about a second here.
    const run = await api(srv.url, 'POST', `/api/sessions/${c.stop}/runs`, { message: 'hello there' }, bearer(tok.alice));
    assert.equal(run.status, 202);
    for (const route of ROUTES) {
      const t = route.admin ? tok.root : tok.alice;
      const r = await call(srv, resolved(route), c, t);
      assert.equal(r.status, route.ok, `${route.name}: ${r.status} ${r.text.slice(0, 300)}`);
      if (route.runStream) assert.match(r.text, /event: run_stopped/, route.name);
      if (route.then) await route.then(srv, c, t);
    }
    const info = await api(srv.url, 'GET', '/api/info', undefined, bearer(tok.alice));
    assert.equal(info.body.auth, true);
    const stopped = await api(srv.url, 'GET', `/api/sessions/${c.stop}`, undefined, bearer(tok.alice));
    assert.equal(stopped.body.last_run.stop_reason, 'user_stopped');
  });

  test('sessions belong to the token that made them; a session made by the seed route too', async () => {
    const mine = await newSession(srv.url, tok.bob, { title: 'bob' });
    const brain = await sse(srv.port, '/api/brain/stream', { method: 'POST', headers: { ...bearer(tok.bob), 'Content-Type': 'application/json' },
      body: JSON.stringify({ message: 'what is 5*5?' }), done: (t) => t.includes('event: run_stopped') });
    assert.equal(brain.status, 200);
    const bobs = (await api(srv.url, 'GET', '/api/sessions', undefined, bearer(tok.bob))).body.sessions.map((s) => s.id);
    assert.equal(bobs.length, 2);
    assert.ok(bobs.includes(mine.id));
    const alices = (await api(srv.url, 'GET', '/api/sessions', undefined, bearer(tok.alice))).body.sessions.map((s) => s.id);
    for (const id of bobs) assert.ok(!alices.includes(id));
    // The admin token owns its own sessions like any other: admin is
    // about modes, not about reading others' chats.
    assertError(await api(srv.url, 'GET', `/api/sessions/${mine.id}`, undefined, bearer(tok.root)), 404, 'not_found');
  });

  test('outside /api/ and POST /api/login need no token', async () => {
    for (const p of ['/', '/healthz', '/metrics']) {
      const r = await raw(srv.port, 'GET', p);
      assert.equal(r.status, 200, p);
    }
    const r = await api(srv.url, 'POST', '/api/login', { token: 'cpt_wrong' });
    assertError(r, 401, 'unauthorized');
  });

  test('a token made while the server runs works at once; a revoked one stops at once', async () => {
    const carol = await makeToken(dir, 'carol');
    const mine = await newSession(srv.url, carol);
    assert.equal((await api(srv.url, 'GET', `/api/sessions/${mine.id}`, undefined, bearer(carol))).status, 200);
    await revokeToken(dir, 'carol');
    assertError(await api(srv.url, 'GET', `/api/sessions/${mine.id}`, undefined, bearer(carol)), 401, 'unauthorized');
    assertError(await api(srv.url, 'GET', '/api/info', undefined, bearer(carol)), 401, 'unauthorized');
    const again = await runBinary(['token', 'create', 'carol', '--db', `sqlite:${path.join(dir, 'chat.db')}`]);
    assert.equal(again.code, 1);
    assert.equal(again.stderr, "chatplane token: a token named 'carol' already exists (a revoked token keeps its name)\n");
  });

  test('login sets an HttpOnly SameSite=Strict cookie (Secure behind HTTPS) that authenticates; logout clears it', async () => {
    const r = await api(srv.url, 'POST', '/api/login', { token: tok.alice });
    assert.equal(r.status, 204, r.text);
    assert.equal(r.headers.get('set-cookie'), `chatplane_session=${tok.alice}; Path=/; HttpOnly; SameSite=Strict`);
    const https = await api(srv.url, 'POST', '/api/login', { token: tok.alice }, { 'X-Forwarded-Proto': 'https' });
    assert.equal(https.headers.get('set-cookie'), `chatplane_session=${tok.alice}; Path=/; HttpOnly; SameSite=Strict; Secure`);
    const cookie = { Cookie: `chatplane_session=${tok.alice}` };
    const get = await api(srv.url, 'GET', `/api/sessions/${c.S}`, undefined, cookie);
    assert.equal(get.status, 200);
    const stream = await sse(srv.port, `/api/sessions/${c.S}/events`, { headers: cookie, done: (t) => t.includes('\n\n') });
    assert.equal(stream.status, 200);
    const out = await api(srv.url, 'POST', '/api/logout', undefined, { ...cookie, Origin: srv.url });
    assert.equal(out.status, 204);
    assert.equal(out.headers.get('set-cookie'), 'chatplane_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0');
  });

  test('a change made with the cookie must carry an Origin naming this server', async () => {
    const cookie = { Cookie: `chatplane_session=${tok.alice}` };
    assertError(await api(srv.url, 'POST', '/api/sessions', {}, cookie), 403, 'forbidden');
    assertError(await api(srv.url, 'POST', '/api/sessions', {}, { ...cookie, Origin: 'http://evil.example' }), 403, 'forbidden');
    assertError(await api(srv.url, 'PATCH', `/api/sessions/${c.S}`, { title: 'x' }, { ...cookie, Origin: 'null' }), 403, 'forbidden');
    const ok = await api(srv.url, 'POST', '/api/sessions', {}, { ...cookie, Origin: srv.url });
    assert.equal(ok.status, 201, ok.text);
    // A bearer token is no ambient credential: no Origin needed, but a
    // foreign one is still refused.
    assert.equal((await api(srv.url, 'POST', '/api/sessions', {}, bearer(tok.alice))).status, 201);
    assertError(await api(srv.url, 'POST', '/api/sessions', {}, { ...bearer(tok.alice), Origin: 'http://evil.example' }), 403, 'forbidden');
    // Login itself is refused from another origin (login CSRF).
    assertError(await api(srv.url, 'POST', '/api/login', { token: tok.alice }, { Origin: 'http://evil.example' }), 403, 'forbidden');
  });
});

describe('chatplane token', () => {
  test('usage errors exit 2, a missing token or database exits 1, each with its message', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'chatplane-auth-'));
    try {
      const db = `sqlite:${path.join(dir, 'chat.db')}`;
      const cases = [
        [['token'], 2, 'chatplane token: a subcommand is needed; use create NAME, list, revoke NAME or budget NAME BUDGET...\n'],
        [['token', 'make', 'x'], 2, "chatplane token: unknown subcommand 'make'; use create NAME, list, revoke NAME or budget NAME BUDGET...\n"],
        [['token', 'create', '--db', db], 2, 'chatplane token: create needs a token NAME\n'],
        [['token', 'create', 'a', 'b', '--db', db], 2, 'chatplane token: create takes no more arguments\n'],
        [['token', 'create', 'a b', '--db', db], 2, "chatplane token: token name 'a b' must be 1 to 64 characters of letters, digits and . _ @ -\n"],
        [['token', 'list', '--admin', '--db', db], 2, 'chatplane token: --admin goes with create\n'],
        [['token', 'list', '--db', db], 1, `chatplane token: no database at ${path.join(dir, 'chat.db')}; give --db or run 'chatplane migrate' to create one\n`],
      ];
      for (const [args, code, stderr] of cases) {
        const r = await runBinary(args);
        assert.equal(r.code, code, args.join(' '));
        assert.equal(r.stderr, stderr);
        assert.equal(r.stdout, '');
      }
      // create makes the database when there is none yet.
      const made = await runBinary(['token', 'create', 'ops', '--admin', '--db', db]);
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stdout, /^created admin token 'ops'; it is shown only this once, keep it now:\ncpt_[0-9a-f]{64}\n$/);
      const gone = await runBinary(['token', 'revoke', 'nobody', '--db', db]);
      assert.equal(gone.code, 1);
      assert.equal(gone.stderr, "chatplane token: no active token named 'nobody'\n");
      const list = await runBinary(['token', 'list', '--db', db]);
      assert.match(list.stdout, /^NAME  ADMIN  CREATED                   REVOKED                   BUDGETS\nops   yes    \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  - {25}-\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('authentication turns on and off with the tokens', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
  });

  test('open on loopback without tokens, on within a second of the first token, open again when all are revoked', async () => {
    assert.ok(srv.lines.includes('level=info msg="authentication is off until a token is created" tokens=0'));
    let r = await api(srv.url, 'GET', '/api/info');
    assert.equal(r.status, 200);
    assert.equal(r.body.auth, false);
    const s = await newSession(srv.url, undefined);
    const t = await makeToken(srv.dir, 'first');
    // The token works at once; requests without one are refused within a second.
    r = await api(srv.url, 'GET', '/api/info', undefined, bearer(t));
    assert.equal(r.status, 200);
    assert.equal(r.body.auth, true);
    const t0 = Date.now();
    await until(async () => (await api(srv.url, 'GET', '/api/info')).status === 401, 3000, 20);
    assert.ok(Date.now() - t0 < 1500);
    // A session made while the server was open has no owner: no token's.
    assertError(await api(srv.url, 'GET', `/api/sessions/${s.id}`, undefined, bearer(t)), 404, 'not_found');
    // With its last token revoked a loopback server is open again: a
    // revoked token is then neither needed nor looked at.
    await revokeToken(srv.dir, 'first');
    r = await api(srv.url, 'GET', '/api/info', undefined, bearer(t));
    assert.equal(r.status, 200);
    assert.equal(r.body.auth, false);
    assert.equal((await api(srv.url, 'GET', '/api/info')).status, 200);
    assert.equal((await api(srv.url, 'GET', `/api/sessions/${s.id}`)).status, 200);
  });

  test('the open server answers only requests for a loopback host name, and refuses cross-site changes', async () => {
    const r = await raw(srv.port, 'GET', '/api/info', { headers: { Host: 'rebound.example:8080' } });
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).error.code, 'forbidden');
    for (const host of ['localhost', `127.0.0.1:${srv.port}`, `localhost:${srv.port}`]) {
      const ok = await raw(srv.port, 'GET', '/api/info', { headers: { Host: host } });
      assert.equal(ok.status, 200, host);
    }
    // The page itself is no API: it loads under any name.
    assert.equal((await raw(srv.port, 'GET', '/', { headers: { Host: 'rebound.example' } })).status, 200);
    assertError(await api(srv.url, 'POST', '/api/sessions', {}, { Origin: 'http://evil.example' }), 403, 'forbidden');
    assert.equal((await api(srv.url, 'POST', '/api/sessions', {}, { Origin: srv.url })).status, 201);
  });

  test('a non-loopback address needs a token or --insecure-no-auth', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'chatplane-auth-'));
    try {
      const db = `sqlite:${path.join(dir, 'chat.db')}`;
      const r = await runBinary(['serve', '--listen', '0.0.0.0:0', '--db', db]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0:0: it is not a loopback address and no API token exists; create one with 'chatplane token create NAME', listen on 127\.0\.0\.1, or pass --insecure-no-auth/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
