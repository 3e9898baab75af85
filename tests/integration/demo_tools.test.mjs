// The demo brain's own tools: "demo approve" calls pretend_delete, which
// the default policy asks about (it is not read-only) and which touches
// nothing; "demo sleep" calls sleep, which a stop cancels half way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { api, newSession, startServer, until, waitIdle } from './lib/server.mjs';

let srv;

before(async () => {
  srv = await startServer({ env: { CHATPLANE_DEMO_DELAY_MS: '5' } });
});

after(async () => {
  await srv?.stop();
  srv?.cleanup();
});

async function pendingOf(sid) {
  return until(async () => {
    const r = await api(srv.url, 'GET', `/api/sessions/${sid}/approvals?status=pending`);
    return r.body.approvals.length ? r.body.approvals[0] : null;
  });
}

async function lastAnswer(sid) {
  const r = await api(srv.url, 'GET', `/api/sessions/${sid}/messages`);
  return r.body.messages.filter((m) => m.role === 'assistant').at(-1).content;
}

test('demo approve asks before pretend_delete; approved, it says what it pretended to delete', async () => {
  const s = await newSession(srv.url);
  assert.equal((await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'demo approve' })).status, 202);
  const a = await pendingOf(s.id);
  assert.deepEqual([a.server, a.tool, a.arguments, a.reason], ['builtin', 'pretend_delete', { path: 'notes/old-draft.txt' }, 'the tool is not marked read-only']);
  const d = await api(srv.url, 'POST', `/api/sessions/${s.id}/approvals/${a.id}`, { decision: 'approve' });
  assert.equal(d.status, 200, d.text);
  const done = await waitIdle(srv.url, s.id);
  assert.equal(done.last_run.stop_reason, 'completed');
  const tools = (await api(srv.url, 'GET', `/api/sessions/${s.id}/tools`)).body.tool_executions;
  assert.deepEqual(tools.map((t) => [t.tool, t.status, t.result]), [['pretend_delete', 'ok', 'deleted notes/old-draft.txt (pretend)']]);
  assert.equal(await lastAnswer(s.id), 'Done: deleted notes/old-draft.txt (pretend). Nothing was really touched.');
});

test('demo approve denied: the call does not run and the answer says why', async () => {
  const s = await newSession(srv.url);
  await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'demo approve' });
  const a = await pendingOf(s.id);
  const d = await api(srv.url, 'POST', `/api/sessions/${s.id}/approvals/${a.id}`, { decision: 'deny', reason: 'keep it' });
  assert.equal(d.status, 200, d.text);
  const done = await waitIdle(srv.url, s.id);
  assert.equal(done.last_run.stop_reason, 'completed');
  const tools = (await api(srv.url, 'GET', `/api/sessions/${s.id}/tools`)).body.tool_executions;
  assert.deepEqual(tools.map((t) => [t.tool, t.status, t.error]), [['pretend_delete', 'denied', 'denied by local: keep it']]);
  assert.equal(await lastAnswer(s.id), 'I did not delete it: The user denied this call: keep it. Do not retry it; answer without it or ask the user.');
});

test('demo sleep runs the read-only sleep unasked, and a stop cancels it half way', async () => {
  const s = await newSession(srv.url);
  const started = Date.now();
  await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'demo sleep' });
  const running = await until(async () => {
    const r = await api(srv.url, 'GET', `/api/sessions/${s.id}/tools`);
    return r.body.tool_executions.find((t) => t.status === 'running');
  });
  assert.deepEqual([running.tool, running.arguments], ['sleep', { seconds: 5 }]);
  // The loop goes on while it sleeps: the server answers at once.
  assert.equal((await api(srv.url, 'GET', '/api/info')).status, 200);
  assert.equal((await api(srv.url, 'POST', `/api/sessions/${s.id}/stop`, {})).status, 202);
  const done = await waitIdle(srv.url, s.id);
  assert.ok(Date.now() - started < 4500, 'stopped before the sleep ended');
  assert.equal(done.last_run.stop_reason, 'user_stopped');
  const tools = (await api(srv.url, 'GET', `/api/sessions/${s.id}/tools`)).body.tool_executions;
  assert.deepEqual(tools.map((t) => [t.tool, t.status]), [['sleep', 'cancelled']]);
  const approvals = (await api(srv.url, 'GET', `/api/sessions/${s.id}/approvals`)).body.approvals;
  assert.deepEqual(approvals, [], 'a read-only tool is not asked');
});

test('the sleep tool tells the model its bounds', async () => {
  // Its refusals of other values are tested in tests/engine/test_toolset.c.
  const info = (await api(srv.url, 'GET', '/api/info')).body;
  assert.ok(info.tools.some((t) => t.name === 'sleep' && /1 to 30/.test(t.description)));
});
