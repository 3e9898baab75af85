// POST /api/sessions/{id}/runs with "if_active": a message sent while a
// run works. enqueue waits behind the active run and starts when it stops;
// interrupt stops the active run (its partial text kept) and then starts;
// reject (the default) answers 409 run_active. At most one run is queued
// per session, and a stop drops it (docs/runs.md, Queue and interrupt).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { api, newSession, parseFrames, sleep, sse, startServer, until } from './lib/server.mjs';
import { startMock } from '../scenarios/lib.mjs';

let srv, mock;

before(async () => {
  mock = await startMock();
  srv = await startServer({ config: { llm: { base_url: mock.url, model: 'mock-model' } } });
});
after(async () => {
  // A clean exit: under the sanitizer build a leak fails it.
  if (srv) assert.deepEqual(await srv.stop(), { code: 0, signal: null });
  srv?.cleanup();
  mock?.stop();
});

const post = (sid, body) => api(srv.url, 'POST', `/api/sessions/${sid}/runs`, body);
const events = async (id) => (await api(srv.url, 'GET', `/api/sessions/${id}/events?after=0`, undefined, { Accept: 'application/json' })).body.events;
const messages = async (id) => (await api(srv.url, 'GET', `/api/sessions/${id}/messages`)).body.messages;
const run = async (id) => (await api(srv.url, 'GET', `/api/runs/${id}`)).body;
const waitStopped = (id) => until(async () => { const r = await run(id); return r?.status === 'stopped' ? r : null; }, 20000, 25);
// A slow answer: one piece every 150 ms, so the run stays active for
// seconds unless it is stopped.
const slow = { text: 'one two three four five six seven eight nine ten', piece_chars: 4, delay_ms: 150 };

// Starts a slow run and waits until its first text arrived.
async function slowRun(sid, message = 'first') {
  const a = await post(sid, { message });
  assert.equal(a.status, 202, a.text);
  await until(async () => (await events(sid)).some((e) => e.type === 'token' && e.run_id === a.body.id));
  return a.body;
}

test('enqueue: 202 with a queued run that starts when the active one stops, its message stored only then', async () => {
  await mock.reset();
  const sid = (await newSession(srv.url)).id;
  await mock.script([slow, { text: 'Second answer.' }]);
  const a = await slowRun(sid);

  const q = await post(sid, { message: 'and then?', if_active: 'enqueue' });
  assert.equal(q.status, 202, q.text);
  assert.equal(q.body.status, 'queued');
  assert.equal(q.body.session_id, sid);
  assert.equal(q.body.mode, 'standard');
  assert.equal(q.body.stop_reason, null);
  assert.equal(q.body.ended_at, null);
  assert.deepEqual(q.body.usage, { steps: 0, seconds: 0, tokens: 0, tool_calls: 0, retries: 0, cost_usd: 0, waiting_seconds: 0 });
  assert.equal(q.body.limits.steps, 10);
  assert.notEqual(q.body.id, a.id);

  // While queued: the session names it, GET /api/runs answers it, and its
  // message is not a message of the session yet.
  const ses = (await api(srv.url, 'GET', `/api/sessions/${sid}`)).body;
  assert.equal(ses.queued_run_id, q.body.id);
  assert.equal(ses.active_run_id, a.id);
  assert.deepEqual(await run(q.body.id), q.body);
  assert.deepEqual((await messages(sid)).map((m) => m.content), ['first']);

  const done = await waitStopped(q.body.id);
  assert.equal(done.stop_reason, 'completed');
  assert.equal((await run(a.id)).stop_reason, 'completed');
  assert.deepEqual((await messages(sid)).map((m) => [m.role, m.content, m.run_id]), [
    ['user', 'first', a.id], ['assistant', 'one two three four five six seven eight nine ten', a.id],
    ['user', 'and then?', q.body.id], ['assistant', 'Second answer.', q.body.id]]);
  const after = (await api(srv.url, 'GET', `/api/sessions/${sid}`)).body;
  assert.equal(after.queued_run_id, null);
  assert.equal(after.status, 'idle');

  // The log: run_queued while A works, A's run_stopped, then B from its
  // user message on.
  const evs = await events(sid);
  const queued = evs.find((e) => e.type === 'run_queued');
  assert.deepEqual({ ...queued, seq: 0, ts: '' }, { type: 'run_queued', seq: 0, session_id: sid, run_id: q.body.id, ts: '', message: 'and then?', mode: null, interrupt: false });
  const order = evs.filter((e) => e.type !== 'token' && e.type !== 'status' && e.type !== 'budget').map((e) => `${e.run_id === a.id ? 'A' : 'B'}:${e.type}`);
  assert.deepEqual(order.slice(order.indexOf('B:run_queued') - 1), ['A:run_started', 'B:run_queued', 'A:message', 'A:run_stopped', 'B:message', 'B:run_started', 'B:message', 'B:run_stopped']);

  // The model never saw the queued message before its run.
  const reqs = await mock.requests();
  assert.equal(reqs.length, 2);
  assert.deepEqual(reqs[0].body.messages.filter((m) => m.role !== 'system').map((m) => m.content), ['first']);
  assert.deepEqual(reqs[1].body.messages.filter((m) => m.role !== 'system').map((m) => m.content),
    ['first', 'one two three four five six seven eight nine ten', 'and then?']);
});

test('enqueue with no active run starts at once; reject is the default and answers run_active', async () => {
  await mock.reset();
  const sid = (await newSession(srv.url)).id;
  await mock.script([slow, { text: 'ok' }]);
  const a = await post(sid, { message: 'first', if_active: 'enqueue' });
  assert.equal(a.status, 202, a.text);
  assert.equal(a.body.status, 'running');
  for (const body of [{ message: 'again' }, { message: 'again', if_active: 'reject' }]) {
    const r = await post(sid, body);
    assert.equal(r.status, 409);
    assert.deepEqual(r.body.error, { code: 'run_active', message: `a run is already active in session ${sid}` });
  }
  assert.equal((await api(srv.url, 'GET', `/api/sessions/${sid}`)).body.queued_run_id, null);
  await api(srv.url, 'POST', `/api/sessions/${sid}/stop`, {});
  await waitStopped(a.body.id);
});

test('queue_full: a second queued run, or an interrupt while one is queued, is refused', async () => {
  await mock.reset();
  const sid = (await newSession(srv.url)).id;
  await mock.script([slow, { text: 'queued answer' }]);
  const a = await slowRun(sid);
  const q = await post(sid, { message: 'second', if_active: 'enqueue' });
  assert.equal(q.status, 202);
  for (const how of ['enqueue', 'interrupt']) {
    const r = await post(sid, { message: 'third', if_active: how });
    assert.equal(r.status, 409, r.text);
    assert.deepEqual(r.body.error, { code: 'queue_full', message: `session ${sid} has a queued run already` });
  }
  // The refused interrupt did not stop the active run.
  assert.equal((await run(a.id)).status, 'running');
  assert.equal((await api(srv.url, 'GET', `/api/sessions/${sid}`)).body.queued_run_id, q.body.id);
  await waitStopped(q.body.id);
  assert.deepEqual((await messages(sid)).filter((m) => m.role === 'user').map((m) => m.content), ['first', 'second']);
});

test('a stop stops the active run and drops the queued run (stopped, user_stopped, never started)', async () => {
  await mock.reset();
  const sid = (await newSession(srv.url)).id;
  await mock.script([slow, { text: 'never asked' }]);
  const a = await slowRun(sid);
  const q = await post(sid, { message: 'later', if_active: 'enqueue' });
  assert.equal(q.status, 202);
  const stop = await api(srv.url, 'POST', `/api/sessions/${sid}/stop`, {});
  assert.equal(stop.status, 202, stop.text);
  assert.equal(stop.body.id, a.id);
  assert.equal(stop.body.stop_reason, 'user_stopped');

  const dropped = await waitStopped(q.body.id);
  assert.equal(dropped.status, 'stopped');
  assert.equal(dropped.stop_reason, 'user_stopped');
  assert.equal(dropped.stop_detail, 'dropped from the queue by a stop request before it started');
  assert.equal(dropped.recovery_suggestion, 'The message was not sent: send it again if you still want it answered.');
  assert.deepEqual(dropped.actions, []);
  assert.equal(dropped.diagnosis, null);
  assert.equal(dropped.started_at, q.body.started_at);
  assert.ok(dropped.ended_at);
  await sleep(300);
  const ses = (await api(srv.url, 'GET', `/api/sessions/${sid}`)).body;
  assert.equal(ses.queued_run_id, null);
  assert.equal(ses.status, 'idle');
  // The dropped run is the session's newest run, so the page says why
  // the message was not answered.
  assert.equal(ses.last_run.id, q.body.id);
  assert.deepEqual((await messages(sid)).filter((m) => m.role === 'user').map((m) => m.content), ['first']);
  const evs = (await events(sid)).filter((e) => e.run_id === q.body.id);
  assert.deepEqual(evs.map((e) => e.type), ['run_queued', 'run_stopped']);
  assert.equal(evs[1].reason, 'user_stopped');
  assert.equal(evs[1].detail, 'dropped from the queue by a stop request before it started');
  // On the instance that runs the active run, its end drops the queue:
  // the dropped run's run_stopped comes right after.
  const all = await events(sid);
  assert.equal(all.findIndex((e) => e.type === 'run_stopped' && e.run_id === q.body.id),
    all.findIndex((e) => e.type === 'run_stopped' && e.run_id === a.id) + 1);
  assert.equal((await mock.requests()).length, 1);
  assert.equal((await api(srv.url, 'GET', `/api/sessions/${sid}/runs`)).body.runs.length, 2);
});

test('interrupt: the active run stops (user_stopped, partial text kept) and the new one starts', async () => {
  await mock.reset();
  const sid = (await newSession(srv.url)).id;
  await mock.script([slow, { text: 'Right away.' }]);
  const a = await slowRun(sid);
  const q = await post(sid, { message: 'do this instead', if_active: 'interrupt' });
  assert.equal(q.status, 202, q.text);
  assert.equal(q.body.status, 'queued');
  const stopped = await waitStopped(a.id);
  assert.equal(stopped.stop_reason, 'user_stopped');
  const done = await waitStopped(q.body.id);
  assert.equal(done.stop_reason, 'completed');
  const ms = await messages(sid);
  assert.deepEqual(ms.map((m) => [m.role, m.run_id, m.partial]), [
    ['user', a.id, false], ['assistant', a.id, true], ['user', q.body.id, false], ['assistant', q.body.id, false]]);
  assert.ok(ms[1].content.length > 0 && 'one two three four five six seven eight nine ten'.startsWith(ms[1].content));
  assert.equal(ms[3].content, 'Right away.');
  const evs = await events(sid);
  assert.equal(evs.find((e) => e.type === 'run_queued').interrupt, true);
  // The new run's model request has the partial answer, then the message.
  const reqs = await mock.requests();
  assert.deepEqual(reqs[1].body.messages.filter((m) => m.role !== 'system').map((m) => m.content),
    ['first', ms[1].content, 'do this instead']);
});

test('the queued run streams with Accept: text/event-stream, from run_queued to its run_stopped', async () => {
  await mock.reset();
  const sid = (await newSession(srv.url)).id;
  await mock.script([slow, { text: 'streamed' }]);
  await slowRun(sid);
  const res = await sse(srv.port, `/api/sessions/${sid}/runs`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ message: 'stream me', if_active: 'interrupt' }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.ended, true);
  const types = parseFrames(res.text).map((e) => e.event).filter((t) => t !== 'token' && t !== 'status' && t !== 'budget');
  assert.deepEqual(types, ['run_queued', 'message', 'run_started', 'message', 'run_stopped']);
});

test('bad if_active: 400 naming the field; a regenerate is never queued', async () => {
  const sid = (await newSession(srv.url)).id;
  let r = await post(sid, { message: 'hi', if_active: 'later' });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.code, 'bad_request');
  assert.match(r.body.error.message, /^if_active must be one of reject, interrupt, enqueue/);
  r = await post(sid, { message: 'hi', if_active: 3 });
  assert.equal(r.status, 400);
  assert.match(r.body.error.message, /^if_active /);
  r = await post(sid, { regenerate: true, if_active: 'enqueue' });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.message, 'if_active must be reject with regenerate: only a message is queued');
  r = await post('ses_missing', { message: 'hi', if_active: 'enqueue' });
  assert.equal(r.status, 404);
});

test('a queued run shows the limits of its mode with the configuration\'s overrides, in the answer and in GET /api/runs', async () => {
  await mock.reset();
  const own = await startServer({ config: { llm: { base_url: mock.url, model: 'mock-model' }, modes: { deep: { steps: 7 } } } });
  try {
    const sid = (await newSession(own.url)).id;
    await mock.script([{ ...slow, delay_ms: 300 }, { text: 'deep enough' }]);
    await api(own.url, 'POST', `/api/sessions/${sid}/runs`, { message: 'first' });
    const q = await api(own.url, 'POST', `/api/sessions/${sid}/runs`, { message: 'go deep', mode: 'deep', if_active: 'enqueue' });
    assert.equal(q.status, 202, q.text);
    assert.equal(q.body.mode, 'deep');
    assert.equal(q.body.limits.steps, 7);
    assert.deepEqual((await api(own.url, 'GET', `/api/runs/${q.body.id}`)).body, q.body);
    await api(own.url, 'POST', `/api/sessions/${sid}/stop`, {});
  } finally {
    await own.stop();
    own.cleanup();
  }
});

test('a restart with a queued run drops it as interrupted, with its run_stopped event', async () => {
  await mock.reset();
  const own = await startServer({ config: { llm: { base_url: mock.url, model: 'mock-model' } } });
  try {
    const sid = (await newSession(own.url)).id;
    await mock.script([{ ...slow, delay_ms: 1000 }]);
    const a = await api(own.url, 'POST', `/api/sessions/${sid}/runs`, { message: 'first' });
    const q = await api(own.url, 'POST', `/api/sessions/${sid}/runs`, { message: 'queued', if_active: 'enqueue' });
    assert.equal(q.body.status, 'queued');
    assert.deepEqual(await own.stop(), { code: 0, signal: null });
    const again = await startServer({ dir: own.dir, config: { llm: { base_url: mock.url, model: 'mock-model' } } });
    try {
      const r = (await api(again.url, 'GET', `/api/runs/${q.body.id}`)).body;
      assert.equal(r.status, 'stopped');
      assert.equal(r.stop_reason, 'interrupted');
      assert.equal(r.stop_detail, 'the server stopped before the queued run could start');
      assert.equal((await api(again.url, 'GET', `/api/runs/${a.body.id}`)).body.stop_reason, 'interrupted');
      const ses = (await api(again.url, 'GET', `/api/sessions/${sid}`)).body;
      assert.equal(ses.queued_run_id, null);
      assert.equal(ses.status, 'idle');
      const evs = (await api(again.url, 'GET', `/api/sessions/${sid}/events?after=0`, undefined, { Accept: 'application/json' })).body.events;
      const last = evs.at(-1);
      assert.equal(last.type, 'run_stopped');
      assert.equal(last.run_id, q.body.id);
      assert.equal(last.reason, 'interrupted');
      await sleep(200);
      assert.equal((await api(again.url, 'GET', `/api/sessions/${sid}/messages`)).body.messages.filter((m) => m.role === 'user').length, 1);
    } finally {
      await again.stop();
    }
  } finally {
    own.cleanup();
  }
});
