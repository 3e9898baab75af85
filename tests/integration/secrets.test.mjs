// Secrets stay secret: the model API key and the API tokens never appear in
// the server's log, in events, in error answers or in /api/info, also when
// the model endpoint echoes the key back in its error messages and when
// requests fail.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startMock } from '../scenarios/lib.mjs';
import { api, raw, runBinary, sse, startServer, until } from './lib/server.mjs';

const KEY = 'sk-secret-7f3a9c1e5b2d8f4a6c0e';

describe('secrets', () => {
  let mock;
  let srv;
  let dir;
  let token;
  let hash;
  const seen = []; // every answer body the tests received

  const get = async (method, p, body, headers = {}) => {
    const r = await api(srv.url, method, p, body, { Authorization: `Bearer ${token}`, ...headers });
    seen.push(`${method} ${p} ${r.status} ${r.text}`);
    return r;
  };

  const waitStopped = async (id) => until(async () => {
    const r = await get('GET', `/api/sessions/${id}`);
    return r.body.status === 'idle' && r.body.last_run && r.body.last_run.status === 'stopped' ? r.body : null;
  }, 20000, 25);

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'chatplane-secrets-'));
    const made = await runBinary(['token', 'create', 'alice', '--db', `sqlite:${path.join(dir, 'chat.db')}`]);
    assert.equal(made.code, 0, made.stderr);
    token = made.stdout.trimEnd().split('\n').at(-1);
    const { createHash } = await import('node:crypto');
    hash = createHash('sha256').update(token).digest('hex');
    mock = await startMock();
    srv = await startServer({
      dir,
      env: { CHATPLANE_LLM_API_KEY: KEY },
      config: { llm: { base_url: mock.url, model: 'mock-model' }, modes: { quick: { retries: 2 } } },
    });
  });
  after(async () => {
    await srv.stop();
    mock.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the key goes to the model endpoint and nowhere else, even when the endpoint echoes it', async () => {
    const echo = { error: { message: `Incorrect API key provided: ${KEY}.`, type: 'invalid_request_error', code: 'invalid_api_key' } };
    // A run the endpoint refuses: llm_error, its detail naming the message.
    await mock.script([{ status: 401, body: echo }]);
    const s1 = (await get('POST', '/api/sessions', {})).body;
    assert.equal((await get('POST', `/api/sessions/${s1.id}/runs`, { message: 'hello' })).status, 202);
    const done1 = await waitStopped(s1.id);
    assert.equal(done1.last_run.stop_reason, 'llm_error');
    assert.equal(done1.last_run.stop_detail,
      `HTTP 401 from ${mock.url}/chat/completions: Incorrect API key provided: [redacted].`);

    // Retryable failures that echo it too, then an answer: error events.
    await mock.script([
      { status: 500, body: { error: { message: `upstream broke for key ${KEY}`, code: KEY } } },
      { error_in_stream: { message: `overloaded (${KEY})`, type: 'server_error' } },
      { text: 'Fine now.' },
    ]);
    const s2 = (await get('POST', '/api/sessions', {})).body;
    assert.equal((await get('POST', `/api/sessions/${s2.id}/runs`, { message: 'again', mode: 'quick' })).status, 202);
    const done2 = await waitStopped(s2.id);
    assert.equal(done2.last_run.stop_reason, 'completed');
    const ev = await get('GET', `/api/sessions/${s2.id}/events?after=0`, undefined, { Accept: 'application/json' });
    const errors = ev.body.events.filter((e) => e.type === 'error');
    assert.equal(errors.length, 2);
    assert.match(errors[0].message, /upstream broke for key \[redacted\]/);
    assert.match(errors[1].message, /overloaded \(\[redacted\]\)/);

    const reqs = await mock.requests();
    assert.ok(reqs.length >= 4);
    for (const r of reqs) assert.equal(r.headers.authorization, `Bearer ${KEY}`);
  });

  test('failing and succeeding requests with and without the token', async () => {
    seen.push((await api(srv.url, 'GET', '/api/info', undefined, { Authorization: `Bearer ${token}x` })).text);
    seen.push((await api(srv.url, 'GET', `/api/info?token=${token}`)).text);
    seen.push((await api(srv.url, 'POST', '/api/login', { token: `${token}0` })).text);
    seen.push((await api(srv.url, 'POST', '/api/login', { token })).text);
    seen.push((await api(srv.url, 'GET', '/api/sessions/nope', undefined, { Cookie: `chatplane_session=${token}` })).text);
    seen.push((await api(srv.url, 'POST', '/api/sessions', {}, { Cookie: `chatplane_session=${token}` })).text);
    seen.push((await get('POST', '/api/sessions', '{"title": 1', {})).text);
    seen.push((await get('PUT', '/api/modes/quick', { description: 'x' })).text);
    const info = await get('GET', '/api/info');
    assert.equal(info.status, 200);
    assert.equal(info.body.auth, true);
    assert.equal(info.body.llm.provider, 'openai');
    const s = (await get('GET', '/api/sessions')).body.sessions;
    for (const x of s) {
      const stream = await sse(srv.port, `/api/sessions/${x.id}/events`, {
        headers: { Authorization: `Bearer ${token}` }, done: (t) => t.includes('event: run_stopped'),
      });
      seen.push(stream.text);
    }
    seen.push((await raw(srv.port, 'GET', '/metrics')).body.toString());
    seen.push((await raw(srv.port, 'GET', '/healthz')).body.toString());
  });

  test('neither the key nor the token nor its hash is in the log, the events, the answers or the token list', async () => {
    const list = await runBinary(['token', 'list', '--db', `sqlite:${path.join(dir, 'chat.db')}`]);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^alice +no +\d{4}-/m);
    await srv.stop();
    const log = srv.lines.join('\n');
    assert.ok(log.includes('msg="request"'), 'the access log is there');
    const places = { log, answers: seen.join('\n'), list: list.stdout };
    for (const [where, text] of Object.entries(places)) {
      for (const [what, secret] of Object.entries({ key: KEY, token, hash, 'token body': token.slice(4) })) {
        assert.ok(!text.includes(secret), `the ${what} appears in the ${where}`);
      }
    }
    assert.ok(places.answers.includes('[redacted]'));
  });
});
