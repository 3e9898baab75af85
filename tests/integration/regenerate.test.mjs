// POST /api/sessions/{id}/runs with {"regenerate": true}: the last user
// message answered again, in place. The previous answer, its tool calls and
// results are marked superseded (a superseded event lists them before
// run_started), stay in the log and the API, and no model request sees
// them again.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { api, newSession, startServer, waitIdle } from './lib/server.mjs';
import { startMock } from '../scenarios/lib.mjs';

let srv, mock;

before(async () => {
  mock = await startMock();
  srv = await startServer({ config: { llm: { base_url: mock.url, model: 'mock-model' } } });
});
after(async () => {
  await srv?.stop();
  srv?.cleanup();
  mock?.stop();
});

const events = async (id) => (await api(srv.url, 'GET', `/api/sessions/${id}/events?after=0`, undefined, { Accept: 'application/json' })).body.events;
const messages = async (id) => (await api(srv.url, 'GET', `/api/sessions/${id}/messages`)).body.messages;

test('the answer after the last user message is superseded, and the new one is made without it', async () => {
  const sid = (await newSession(srv.url)).id;
  await mock.script([
    { tool_calls: [{ name: 'calc', arguments: { expression: '6*7' } }] },
    { text: 'It is 42.' },
    { text: 'Forty-two.' },
    { text: 'You said thanks.' },
  ]);
  assert.equal((await api(srv.url, 'POST', `/api/sessions/${sid}/runs`, { message: 'what is 6*7?' })).status, 202);
  await waitIdle(srv.url, sid);
  const before = await messages(sid);
  assert.deepEqual(before.map((m) => [m.role, m.superseded]), [['user', false], ['assistant', false], ['tool', false], ['assistant', false]]);

  const r = await api(srv.url, 'POST', `/api/sessions/${sid}/runs`, { regenerate: true });
  assert.equal(r.status, 202, r.text);
  const done = await waitIdle(srv.url, sid);
  assert.equal(done.last_run.id, r.body.id);
  assert.equal(done.last_run.stop_reason, 'completed');

  const after = await messages(sid);
  assert.deepEqual(after.map((m) => [m.role, m.content, m.superseded]), [
    ['user', 'what is 6*7?', false], ['assistant', '', true], ['tool', '42', true],
    ['assistant', 'It is 42.', true], ['assistant', 'Forty-two.', false]]);
  const evs = (await events(sid)).filter((e) => e.run_id === r.body.id);
  assert.deepEqual(evs.slice(0, 2).map((e) => e.type), ['superseded', 'run_started']);
  assert.deepEqual(evs[0].message_ids, before.slice(1).map((m) => m.id));
  // The regenerate's model request: the user message, without the old answer.
  let reqs = await mock.requests();
  const regen = reqs[2].body.messages.filter((m) => m.role !== 'system');
  assert.deepEqual(regen.map((m) => [m.role, m.content]), [['user', 'what is 6*7?']]);

  // A later run sees the new answer, never the superseded one.
  assert.equal((await api(srv.url, 'POST', `/api/sessions/${sid}/runs`, { message: 'thanks' })).status, 202);
  await waitIdle(srv.url, sid);
  reqs = await mock.requests();
  const later = reqs[3].body.messages.filter((m) => m.role !== 'system');
  assert.deepEqual(later.map((m) => [m.role, m.content]), [['user', 'what is 6*7?'], ['assistant', 'Forty-two.'], ['user', 'thanks']]);
});

test('errors: nothing to regenerate, a message with regenerate, neither, regenerate not true', async () => {
  const sid = (await newSession(srv.url)).id;
  let r = await api(srv.url, 'POST', `/api/sessions/${sid}/runs`, { regenerate: true });
  assert.equal(r.status, 409);
  assert.deepEqual(r.body.error, { code: 'nothing_to_regenerate', message: `session ${sid} has no user message to answer again` });
  r = await api(srv.url, 'POST', `/api/sessions/${sid}/runs`, { regenerate: true, message: 'hi' });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.message, 'give a message or regenerate, not both');
  r = await api(srv.url, 'POST', `/api/sessions/${sid}/runs`, {});
  assert.equal(r.status, 400);
  assert.equal(r.body.error.message, 'message must be a non-empty string');
  r = await api(srv.url, 'POST', `/api/sessions/${sid}/runs`, { regenerate: false });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.message, 'regenerate must be true');
});
