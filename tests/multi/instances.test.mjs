// Several `chatplane serve` processes on one throwaway PostgreSQL: any
// instance serves any session. Runs stream to subscribers of every
// instance, stops and mode changes reach the instance that owns the run,
// the database allows one active run per session, and the runs of an
// instance that died are interrupted by another one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { api, newSession, sleep, until, waitIdle } from '../integration/lib/server.mjs';
import { assertSameAsStore, follow, startCluster, startInstances, storedEvents } from './lib.mjs';

const ORPHAN_TIMEOUT_S = 3;

describe('several instances on one PostgreSQL', () => {
  let pg;
  let a, b, c;
  const subs = [];

  before(async () => {
    pg = await startCluster();
    [a, b, c] = await startInstances(3, pg.url, { orphanTimeout: ORPHAN_TIMEOUT_S, delayMs: 50 });
  });

  after(async () => {
    for (const s of subs) s.close();
    for (const x of [a, b, c]) if (x) await x.stop('SIGKILL');
    for (const x of [a, b, c]) if (x) x.cleanup();
    if (pg) await pg.stop();
  });

  const watch = (inst, sid) => {
    const s = follow(inst.port, sid);
    subs.push(s);
    return s;
  };

  test('a run on A streams to subscribers on A, B and C in seq order without gaps', async () => {
    const ses = await newSession(a.url);
    const onA = watch(a, ses.id), onB = watch(b, ses.id), onC = watch(c, ses.id);
    await sleep(200);
    const r = await api(a.url, 'POST', `/api/sessions/${ses.id}/runs`, { message: 'hello' });
    assert.equal(r.status, 202, r.text);
    // The demo answer streams for about 4 s, longer than the orphan time-out:
    // A's heartbeats keep the others from taking the run.
    const stopped = await onB.stopped(r.body.id);
    assert.equal(stopped.data.reason, 'completed');
    await onA.stopped(r.body.id);
    await onC.stopped(r.body.id);
    const stored = await storedEvents(c.url, ses.id);
    assert.ok(stored.length > 20, `only ${stored.length} events`);
    assertSameAsStore(onA, stored, 'A');
    assertSameAsStore(onB, stored, 'B');
    assertSameAsStore(onC, stored, 'C');
    assert.ok(onB.events.some((e) => e.event === 'token'), 'B saw the tokens as they came');
  });

  test('runs of one session on different instances reach every subscriber in order', async () => {
    const ses = await newSession(b.url);
    const onA = watch(a, ses.id), onB = watch(b, ses.id), onC = watch(c, ses.id);
    await sleep(200);
    const runs = [];
    for (const inst of [a, b, a, c]) {
      const r = await api(inst.url, 'POST', `/api/sessions/${ses.id}/runs`, { message: 'what is 6*7?' });
      assert.equal(r.status, 202, r.text);
      runs.push(r.body.id);
      await onC.stopped(r.body.id);
      await waitIdle(a.url, ses.id);
    }
    for (const s of [onA, onB]) await s.stopped(runs[runs.length - 1]);
    const stored = await storedEvents(a.url, ses.id);
    assertSameAsStore(onA, stored, 'A');
    assertSameAsStore(onB, stored, 'B');
    assertSameAsStore(onC, stored, 'C');
    const ends = stored.filter((e) => e.type === 'run_stopped').map((e) => [e.run_id, e.reason]);
    assert.deepEqual(ends, runs.map((id) => [id, 'completed']));
    // A's event log remembered where its first run left the session; B's
    // run moved it on, so A's first write of its second run was refused and
    // written again (docs/storage.md, Round trips on PostgreSQL), and the
    // store above has every event once, in order.
    const again = a.lines.filter((l) => l.includes('writing it again') && l.includes('moved on'));
    assert.ok(again.length >= 1, a.lines.join('\n'));
    assert.ok(again.every((l) => l.includes(ses.id)), again.join('\n'));
  });

  test('a late subscriber on another instance replays the store, then follows live', async () => {
    const ses = await newSession(a.url);
    const r = await api(a.url, 'POST', `/api/sessions/${ses.id}/runs`, { message: 'hello' });
    assert.equal(r.status, 202, r.text);
    const early = watch(b, ses.id);
    await early.until((evs) => evs.filter((e) => e.event === 'token').length >= 5);
    const late = watch(c, ses.id);
    await late.until((evs) => evs.filter((e) => e.event === 'token').length >= 10);
    await early.stopped(r.body.id);
    await late.stopped(r.body.id);
    const stored = await storedEvents(b.url, ses.id);
    assertSameAsStore(early, stored, 'early');
    assertSameAsStore(late, stored, 'late');
  });

  test('a stop sent to B stops the run A owns within a second', async () => {
    const ses = await newSession(a.url);
    const onA = watch(a, ses.id);
    const r = await api(a.url, 'POST', `/api/sessions/${ses.id}/runs`, { message: 'hello' });
    assert.equal(r.status, 202, r.text);
    await onA.until((evs) => evs.some((e) => e.event === 'token'));
    const t0 = Date.now();
    const stop = await api(b.url, 'POST', `/api/sessions/${ses.id}/stop`, {});
    const elapsed = Date.now() - t0;
    assert.equal(stop.status, 202, stop.text);
    assert.equal(stop.body.id, r.body.id);
    assert.equal(stop.body.status, 'stopped');
    assert.equal(stop.body.stop_reason, 'user_stopped');
    assert.ok(elapsed < 1000, `the stop took ${elapsed} ms`);
    const ev = await onA.stopped(r.body.id);
    assert.equal(ev.data.reason, 'user_stopped');
    assert.match(ev.data.detail, /^stopped on request after 1 step$/);
    const s = await api(c.url, 'GET', `/api/sessions/${ses.id}`);
    assert.equal(s.body.status, 'idle');
    assert.equal(s.body.active_run_id, null);
    // With no run anywhere, a stop is refused by every instance alike.
    const again = await api(b.url, 'POST', `/api/sessions/${ses.id}/stop`, {});
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'no_active_run');
  });

  test('a mode change sent to C changes the limits of the run A owns', async () => {
    const ses = await newSession(a.url);
    const onB = watch(b, ses.id);
    const r = await api(a.url, 'POST', `/api/sessions/${ses.id}/runs`, { message: 'hello' });
    assert.equal(r.status, 202, r.text);
    await onB.until((evs) => evs.some((e) => e.event === 'token'));
    const p = await api(c.url, 'PATCH', `/api/sessions/${ses.id}`, { mode: 'quick' });
    assert.equal(p.status, 200, p.text);
    const budget = await onB.until((evs) => evs.find((e) => e.event === 'budget' &&
      e.data.limits.steps === 3), 2000);
    assert.deepEqual(budget.data.limits,
      { steps: 3, seconds: 30, tokens: 8000, tool_calls: 3, retries: 1, cost_usd: null });
    await api(b.url, 'POST', `/api/sessions/${ses.id}/stop`, {});
    await onB.stopped(r.body.id);
  });

  test('a mode edited on B applies on A and C too', async () => {
    const put = await api(b.url, 'PUT', '/api/modes/deep', { limits: { steps: 33 }, description: 'edited on B' });
    assert.equal(put.status, 200, put.text);
    for (const inst of [a, c]) {
      const deep = await until(async () => {
        const r = await api(inst.url, 'GET', '/api/modes');
        const m = r.body.modes.find((x) => x.name === 'deep');
        return m.limits.steps === 33 ? m : null;
      }, 2000);
      assert.deepEqual(deep, put.body);
    }
  });

  test('a session deleted on B while A runs it: the run stops first, then it is gone everywhere', async () => {
    const ses = await newSession(a.url);
    const onA = watch(a, ses.id), onC = watch(c, ses.id);
    const r = await api(a.url, 'POST', `/api/sessions/${ses.id}/runs`, { message: 'hello' });
    assert.equal(r.status, 202, r.text);
    await onA.until((evs) => evs.some((e) => e.event === 'token'));
    const del = await api(b.url, 'DELETE', `/api/sessions/${ses.id}`);
    assert.equal(del.status, 204, del.text);
    const ev = await onA.stopped(r.body.id, 2000);
    assert.equal(ev.data.reason, 'user_stopped');
    for (const inst of [a, b, c])
      assert.equal((await api(inst.url, 'GET', `/api/sessions/${ses.id}`)).status, 404);
    // The streams on the other instances end; reopened, they find no session.
    for (const s of [onA, onC]) await s.until(() => s.statuses.includes(404), 2000);
    assert.deepEqual(onA.statuses.slice(0, 2), [200, 404]);
    assert.deepEqual(onC.statuses.slice(0, 2), [200, 404]);
    assert.ok(!a.lines.some((l) => l.includes('could not be written')), 'A wrote the end of its run');
  });

  test('two runs started at once on A and B for one session: one wins, the other gets 409', async () => {
    for (let i = 0; i < 5; i++) {
      const ses = await newSession(c.url);
      const [ra, rb] = await Promise.all([
        api(a.url, 'POST', `/api/sessions/${ses.id}/runs`, { message: 'hello' }),
        api(b.url, 'POST', `/api/sessions/${ses.id}/runs`, { message: 'hello' }),
      ]);
      assert.deepEqual([ra.status, rb.status].sort(), [202, 409], `${ra.text} ${rb.text}`);
      const lost = ra.status === 409 ? ra : rb;
      assert.equal(lost.body.error.code, 'run_active');
      const won = ra.status === 202 ? ra : rb;
      const s = await api(c.url, 'GET', `/api/sessions/${ses.id}`);
      assert.equal(s.body.active_run_id, won.body.id);
      const runs = await api(c.url, 'GET', `/api/sessions/${ses.id}/runs`);
      assert.equal(runs.body.runs.length, 1);
      await api(c.url, 'POST', `/api/sessions/${ses.id}/stop`, {});
      await waitIdle(c.url, ses.id);
    }
  });

  test('SIGKILL of A mid-run: B interrupts the run and B\'s subscribers see it', async () => {
    const ses = await newSession(a.url);
    const onB = watch(b, ses.id), onC = watch(c, ses.id);
    const r = await api(a.url, 'POST', `/api/sessions/${ses.id}/runs`, { message: 'hello' });
    assert.equal(r.status, 202, r.text);
    await onB.until((evs) => evs.filter((e) => e.event === 'token').length >= 3);
    const t0 = Date.now();
    await a.stop('SIGKILL');
    const ev = await onB.stopped(r.body.id, (ORPHAN_TIMEOUT_S + 10) * 1000);
    const elapsed = Date.now() - t0;
    assert.equal(ev.data.reason, 'interrupted');
    assert.ok(elapsed < (ORPHAN_TIMEOUT_S + 3) * 1000, `interrupted after ${elapsed} ms`);
    assert.ok(elapsed >= (ORPHAN_TIMEOUT_S - 1) * 1000, `interrupted after only ${elapsed} ms`);
    await onC.stopped(r.body.id);
    const stored = await storedEvents(b.url, ses.id);
    assertSameAsStore(onB, stored, 'B');
    assertSameAsStore(onC, stored, 'C');
    assert.equal(stored.filter((e) => e.type === 'run_stopped').length, 1);
    // The text streamed before the crash is kept as a partial message.
    const partial = stored.find((e) => e.type === 'message' && e.partial);
    const text = stored.filter((e) => e.type === 'token').map((e) => e.text).join('');
    assert.ok(text.startsWith('This is the'), text);
    assert.equal(partial && partial.content, text);
    assert.equal(partial.seq, stored.length - 1);
    const s = await api(b.url, 'GET', `/api/sessions/${ses.id}`);
    assert.equal(s.body.status, 'idle');
    assert.equal(s.body.last_run.stop_reason, 'interrupted');
    // The session takes a new run on a live instance.
    const next = await api(c.url, 'POST', `/api/sessions/${ses.id}/runs`, { message: 'what is 2+2?' });
    assert.equal(next.status, 202, next.text);
    const done = await onB.stopped(next.body.id);
    assert.equal(done.data.reason, 'completed');
  });

  test('the live instances shut down cleanly on SIGTERM', async () => {
    for (const x of [b, c]) assert.deepEqual(await x.stop('SIGTERM'), { code: 0, signal: null });
  });
});
