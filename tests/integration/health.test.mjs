// GET /api/health against the real server: the model's five minutes from
// the mock model's answers, a tool server that failed to start, the runs
// stopped in the last hour by reason, and the store. (That it needs a token
// once authentication is on is in auth.test.mjs, with every route.)
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { api, startServer, until } from './lib/server.mjs';
import { startMock } from '../scenarios/lib.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
let srv, mock;

before(async () => {
  mock = await startMock();
  srv = await startServer({
    config: {
      llm: { base_url: mock.url, model: 'mock-model' },
      mcpServers: { broken: { command: '/nonexistent/mcp-server', args: [] } },
    },
  });
});
after(async () => {
  await srv?.stop();
  srv?.cleanup();
  mock?.stop();
});

async function runOnce(message) {
  const s = (await api(srv.url, 'POST', '/api/sessions', {})).body;
  assert.equal((await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message })).status, 202);
  return until(async () => {
    const got = (await api(srv.url, 'GET', `/api/sessions/${s.id}`)).body;
    return got.status === 'idle' && got.last_run ? got.last_run : null;
  }, 10000);
}

test('before any run: the model is unknown, the failed tool server degrades the server', async () => {
  const r = await api(srv.url, 'GET', '/api/health');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.body), ['status', 'checked_at', 'llm', 'mcp', 'store', 'runs']);
  assert.equal(r.body.status, 'degraded');
  assert.match(r.body.checked_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(r.body.llm, [{ name: 'primary', kind: 'openai', model: 'mock-model', state: 'unknown', circuit: 'closed', last_error: null, last_ok_at: null, requests_5m: 0, errors_5m: 0, first_token_ms_p50: null }]);
  assert.equal(r.body.mcp.length, 1);
  const broken = r.body.mcp[0];
  assert.deepEqual([broken.name, broken.transport, broken.state, broken.tools], ['broken', 'stdio', 'failed', 0]);
  assert.match(broken.last_error, /nonexistent|No such file|not found/i);
  assert.deepEqual(Object.keys(r.body.store), ['backend', 'state', 'commit_ms_p99']);
  assert.deepEqual([r.body.store.backend, r.body.store.state], ['sqlite', 'ok']);
  assert.equal(typeof r.body.store.commit_ms_p99, 'number');
  assert.deepEqual(r.body.runs, { active: 0, stopped_1h: {} });
});

test('answers and a refused key: requests, errors, the last error and the stops by reason', async () => {
  await mock.script([{ text: 'Hello there.' }]);
  assert.equal((await runOnce('hi')).stop_reason, 'completed');
  let h = (await api(srv.url, 'GET', '/api/health')).body;
  let p = h.llm[0];
  assert.deepEqual([p.state, p.requests_5m, p.errors_5m, p.last_error], ['ok', 1, 0, null]);
  assert.match(p.last_ok_at, /Z$/);
  assert.equal(typeof p.first_token_ms_p50, 'number');
  assert.deepEqual(h.runs.stopped_1h, { completed: 1 });

  await mock.script([{ status: 401, body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } } }]);
  const stopped = await runOnce('again');
  assert.equal(stopped.stop_reason, 'llm_error');
  assert.equal(stopped.diagnosis.playbook, 'model_auth');
  h = (await api(srv.url, 'GET', '/api/health')).body;
  p = h.llm[0];
  assert.deepEqual([p.state, p.requests_5m, p.errors_5m], ['degraded', 2, 1]);
  assert.match(p.last_error, /HTTP 401 .*Incorrect API key provided/);
  assert.deepEqual(h.runs.stopped_1h, { completed: 1, llm_error: 1 });
  assert.equal(h.status, 'degraded');
});
