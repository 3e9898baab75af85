// POST /api/sessions/{id}/fork against the real server and the mock model:
// the history copied exactly (new ids, no runs), the source unchanged, the
// new log starting with one message event per copied message, a run at
// once with a message whose model request sees only the copied history,
// and the errors.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { api, newSession, startServer, waitIdle } from './lib/server.mjs';
import { startMock } from '../scenarios/lib.mjs';

let srv, mock, src, msgs;

before(async () => {
  mock = await startMock();
  srv = await startServer({ config: { llm: { base_url: mock.url, model: 'mock-model' } } });
  src = (await newSession(srv.url, { title: 'Source' })).id;
  await mock.script([
    { tool_calls: [{ name: 'calc', arguments: { expression: '6*7' } }] },
    { text: 'It is 42.' },
    { text: 'Hello to you.' },
  ]);
  for (const message of ['what is 6*7?', 'hello']) {
    assert.equal((await api(srv.url, 'POST', `/api/sessions/${src}/runs`, { message })).status, 202);
    await waitIdle(srv.url, src);
  }
  msgs = (await api(srv.url, 'GET', `/api/sessions/${src}/messages`)).body.messages;
  assert.deepEqual(msgs.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant', 'user', 'assistant']);
});
after(async () => {
  await srv?.stop();
  srv?.cleanup();
  mock?.stop();
});

const strip = ({ id, session_id, run_id, ...rest }) => rest;

async function events(id) {
  return (await api(srv.url, 'GET', `/api/sessions/${id}/events?after=0`, undefined, { Accept: 'application/json' })).body.events;
}

test('without a message: every message copied under new ids, forked_from set, the source unchanged', async () => {
  const before = await events(src);
  const r = await api(srv.url, 'POST', `/api/sessions/${src}/fork`, {});
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.title, 'Source');
  assert.equal(r.body.mode, 'standard');
  assert.deepEqual(r.body.forked_from, { session_id: src, message_id: null });
  assert.equal(r.body.last_run, null);
  assert.equal('run' in r.body, false);
  const copied = (await api(srv.url, 'GET', `/api/sessions/${r.body.id}/messages`)).body.messages;
  assert.deepEqual(copied.map(strip), msgs.map(strip));
  assert.ok(copied.every((m, i) => m.id !== msgs[i].id && m.session_id === r.body.id && m.run_id === null));
  const evs = await events(r.body.id);
  assert.deepEqual(evs.map((e) => [e.seq, e.type, e.message_id, e.content]), copied.map((m, i) => [i + 1, 'message', m.id, m.content]));
  assert.equal(r.body.last_seq, copied.length);
  assert.deepEqual(await events(src), before);
  assert.deepEqual((await api(srv.url, 'GET', `/api/sessions/${src}`)).body.forked_from, null);
});

test('before a user message, with a message and a title: the run starts at once on the history before it', async () => {
  const second = msgs[4];
  await mock.script([{ text: 'Forked answer.' }]);
  const r = await api(srv.url, 'POST', `/api/sessions/${src}/fork`, { message_id: second.id, message: 'hi instead', title: 'Edited' });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.title, 'Edited');
  assert.deepEqual(r.body.forked_from, { session_id: src, message_id: second.id });
  assert.equal(r.body.run.session_id, r.body.id);
  // The session as read once the run started: that run is its last, and
  // its active one unless it has ended already (a quick answer can).
  assert.equal(r.body.last_run.id, r.body.run.id);
  if (r.body.active_run_id !== null) assert.equal(r.body.active_run_id, r.body.run.id);
  else assert.equal(r.body.last_run.status, 'stopped');
  const done = await waitIdle(srv.url, r.body.id);
  assert.equal(done.last_run.stop_reason, 'completed');
  const got = (await api(srv.url, 'GET', `/api/sessions/${r.body.id}/messages`)).body.messages;
  assert.deepEqual(got.map((m) => [m.role, m.content]), [
    ...msgs.slice(0, 4).map((m) => [m.role, m.content]), ['user', 'hi instead'], ['assistant', 'Forked answer.']]);
  // The model saw the copied history and the new message, not what came after the fork point.
  const reqs = await mock.requests();
  const sent = reqs[reqs.length - 1].body.messages.filter((m) => m.role !== 'system').map((m) => [m.role, m.content ?? null]);
  assert.deepEqual(sent.map((x) => x[0]), ['user', 'assistant', 'tool', 'assistant', 'user']);
  assert.deepEqual(sent[4], ['user', 'hi instead']);
  assert.ok(!JSON.stringify(sent).includes('hello'));
});

test('errors: not a user message, no such message, no such session, a bad body', async () => {
  let r = await api(srv.url, 'POST', `/api/sessions/${src}/fork`, { message_id: msgs[1].id });
  assert.equal(r.status, 400);
  assert.deepEqual(r.body.error, { code: 'bad_request', message: `message_id: ${msgs[1].id} is not a user message of session ${src}` });
  r = await api(srv.url, 'POST', `/api/sessions/${src}/fork`, { message_id: 'msg_nope' });
  assert.equal(r.status, 400);
  r = await api(srv.url, 'POST', '/api/sessions/ses_nope/fork', {});
  assert.equal(r.status, 404);
  assert.equal(r.body.error.code, 'not_found');
  r = await api(srv.url, 'POST', `/api/sessions/${src}/fork`, { message_id: 7 });
  assert.equal(r.status, 400);
  assert.match(r.body.error.message, /^message_id must be/);
});
