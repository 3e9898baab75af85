// A run queued or an interrupt sent through another instance than the one
// that runs the active run (docs/runs.md, Queue and interrupt): the queue
// is in the shared store, so the owner starts the queued run when its run
// stops; an interrupt reaches the owner as a stop on the control channel;
// a stop on B drops a queue made on A. Two `chatplane serve` on one
// throwaway PostgreSQL and the mock model.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { startMock } from '../scenarios/lib.mjs';
import { api, newSession, startServer, until } from '../integration/lib/server.mjs';
import { startCluster, waitHealthy } from './lib.mjs';

describe('the queue across instances', () => {
  let pg, mock;
  let a, b;

  before(async () => {
    pg = await startCluster();
    mock = await startMock();
    const config = { cluster: { orphan_timeout_seconds: 3 }, llm: { base_url: mock.url, model: 'mock-1' } };
    a = await startServer({ db: pg.url, config });
    b = await startServer({ db: pg.url, config });
    for (const s of [a, b]) await waitHealthy(s.url);
  });

  after(async () => {
    for (const x of [a, b]) if (x) await x.stop('SIGKILL');
    for (const x of [a, b]) if (x) x.cleanup();
    if (mock) mock.stop();
    if (pg) await pg.stop();
  });

  const slow = { text: 'one two three four five six seven eight nine ten', piece_chars: 4, delay_ms: 150 };
  const run = async (srv, id) => (await api(srv.url, 'GET', `/api/runs/${id}`)).body;
  const waitStopped = (srv, id) => until(async () => { const r = await run(srv, id); return r?.status === 'stopped' ? r : null; }, 20000, 25);
  const messages = async (srv, sid) => (await api(srv.url, 'GET', `/api/sessions/${sid}/messages`)).body.messages;

  // Starts a slow run on A and waits until its text streams.
  async function slowOnA(script) {
    await mock.reset();
    await mock.script(script);
    const sid = (await newSession(a.url)).id;
    const r = await api(a.url, 'POST', `/api/sessions/${sid}/runs`, { message: 'first' });
    assert.equal(r.status, 202, r.text);
    await until(async () => (await api(b.url, 'GET', `/api/sessions/${sid}/events?after=0`, undefined, { Accept: 'application/json' }))
      .body.events.some((e) => e.type === 'token'), 20000);
    return { sid, first: r.body.id };
  }

  test('enqueued on B, started by A when its run completes', async () => {
    const { sid, first } = await slowOnA([slow, { text: 'Queued through B.' }]);
    const q = await api(b.url, 'POST', `/api/sessions/${sid}/runs`, { message: 'via B', if_active: 'enqueue' });
    assert.equal(q.status, 202, q.text);
    assert.equal(q.body.status, 'queued');
    assert.equal((await api(a.url, 'GET', `/api/sessions/${sid}`)).body.queued_run_id, q.body.id);
    assert.equal((await run(a, q.body.id)).status, 'queued');
    assert.equal((await api(b.url, 'POST', `/api/sessions/${sid}/runs`, { message: 'again', if_active: 'enqueue' })).body.error.code, 'queue_full');
    const done = await waitStopped(b, q.body.id);
    assert.equal(done.stop_reason, 'completed');
    assert.equal((await run(b, first)).stop_reason, 'completed');
    assert.deepEqual((await messages(b, sid)).map((m) => [m.role, m.content]), [
      ['user', 'first'], ['assistant', slow.text], ['user', 'via B'], ['assistant', 'Queued through B.']]);
    // A started it: the instance whose run stopped.
    await until(() => a.lines.some((l) => l.includes('msg="a queued run started"') && l.includes(`run_id=${q.body.id}`)), 5000);
    assert.equal(b.lines.some((l) => l.includes('msg="a queued run started"') && l.includes(`run_id=${q.body.id}`)), false);
  });

  test('an interrupt on B stops A\'s run (partial text kept) and the new run starts', async () => {
    const { sid, first } = await slowOnA([{ ...slow, delay_ms: 300 }, { text: 'Instead, via B.' }]);
    const q = await api(b.url, 'POST', `/api/sessions/${sid}/runs`, { message: 'stop that', if_active: 'interrupt' });
    assert.equal(q.status, 202, q.text);
    const stopped = await waitStopped(b, first);
    assert.equal(stopped.stop_reason, 'user_stopped');
    assert.equal((await waitStopped(b, q.body.id)).stop_reason, 'completed');
    const ms = await messages(b, sid);
    assert.deepEqual(ms.map((m) => [m.role, m.partial]), [['user', false], ['assistant', true], ['user', false], ['assistant', false]]);
    assert.equal(ms[3].content, 'Instead, via B.');
    await until(() => a.lines.some((l) => l.includes('msg="stop requested through another instance"') && l.includes(`run_id=${first}`)), 5000);
  });

  test('a stop on B drops the queue made on A and stops A\'s run', async () => {
    const { sid, first } = await slowOnA([{ ...slow, delay_ms: 300 }, { text: 'never asked' }]);
    const q = await api(a.url, 'POST', `/api/sessions/${sid}/runs`, { message: 'later', if_active: 'enqueue' });
    assert.equal(q.status, 202, q.text);
    const stop = await api(b.url, 'POST', `/api/sessions/${sid}/stop`, {});
    assert.equal(stop.status, 202, stop.text);
    assert.equal((await waitStopped(a, first)).stop_reason, 'user_stopped');
    const dropped = await run(a, q.body.id);
    assert.equal(dropped.status, 'stopped');
    assert.equal(dropped.stop_detail, 'dropped from the queue by a stop request before it started');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await api(a.url, 'GET', `/api/sessions/${sid}`)).body.queued_run_id, null);
    assert.deepEqual((await messages(a, sid)).filter((m) => m.role === 'user').map((m) => m.content), ['first']);
    assert.equal((await mock.requests()).length, 1);
  });
});
