// PostgreSQL restarted under two instances while runs stream and
// subscribers watch: the instances answer /healthz with 503 while they
// cannot listen and /api/health says the store is down, reconnect by themselves, every run ends (completed, or
// interrupted with its reason), and every subscriber ends up with exactly
// the stored events, none missing, none twice.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { api, newSession, sleep, until } from '../integration/lib/server.mjs';
import { assertSameAsStore, follow, startCluster, startInstances, storedEvents, waitHealthy } from './lib.mjs';

let pg;
let a, b;
const subs = [];

before(async () => {
  pg = await startCluster();
  [a, b] = await startInstances(2, pg.url, { orphanTimeout: 3, delayMs: 50 });
});

after(async () => {
  for (const s of subs) s.close();
  for (const x of [a, b]) if (x) await x.stop('SIGKILL');
  for (const x of [a, b]) if (x) x.cleanup();
  if (pg) await pg.stop();
});

test('PostgreSQL restarted under load: everything resumes without a lost or doubled event', async () => {
  const sessions = [];
  for (let i = 0; i < 4; i++) {
    const owner = i % 2 ? b : a;
    const ses = await newSession(owner.url);
    const watchers = [follow(a.port, ses.id), follow(b.port, ses.id)];
    subs.push(...watchers);
    sessions.push({ id: ses.id, owner, watchers });
  }
  await sleep(200);
  for (const s of sessions) {
    const r = await api(s.owner.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'hello' });
    assert.equal(r.status, 202, r.text);
    s.run = r.body.id;
  }
  for (const s of sessions)
    for (const w of s.watchers) await w.until((evs) => evs.some((e) => e.event === 'token'));

  // /healthz of both instances, and the store's state in /api/health,
  // watched while the database restarts.
  const health = new Set();
  const stores = new Set();
  let watching = true;
  const healthLoop = (async () => {
    while (watching) {
      for (const x of [a, b]) {
        try {
          health.add((await api(x.url, 'GET', '/healthz')).status);
          const h = (await api(x.url, 'GET', '/api/health')).body;
          stores.add(`${h.store.backend} ${h.store.state} ${h.status}`);
        } catch {
          health.add('error');
        }
      }
      await sleep(50);
    }
  })();
  await pg.restart(1);
  await waitHealthy(a.url);
  await waitHealthy(b.url);
  watching = false;
  await healthLoop;
  assert.ok(health.has(503), `healthz answered ${[...health]}`);
  // While the database did not answer, the health said the store (and so
  // the server) was down; once it is back, ok.
  assert.ok(stores.has('postgres down down'), `the health said ${[...stores]}`);
  const after = (await api(a.url, 'GET', '/api/health')).body;
  assert.deepEqual([after.store.backend, after.store.state], ['postgres', 'ok']);

  for (const s of sessions)
    for (const w of s.watchers) await w.stopped(s.run, 30000);
  for (const s of sessions) {
    const stored = await storedEvents(a.url, s.id);
    const ends = stored.filter((e) => e.type === 'run_stopped');
    assert.equal(ends.length, 1, `session ${s.id}: ${ends.length} run_stopped events`);
    assert.ok(['completed', 'interrupted'].includes(ends[0].reason), ends[0].reason);
    assert.ok(ends[0].detail.length > 0);
    assert.equal(ends[0].seq, stored.length, 'run_stopped is the last event');
    assertSameAsStore(s.watchers[0], stored, `${s.id} on A`);
    assertSameAsStore(s.watchers[1], stored, `${s.id} on B`);
    const ses = await api(b.url, 'GET', `/api/sessions/${s.id}`);
    assert.equal(ses.body.status, 'idle');
  }

  // Both instances take new runs, which their subscribers on the other
  // instance follow to the end.
  for (const s of sessions) {
    const r = await api(s.owner.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'what is 3*5?' });
    assert.equal(r.status, 202, r.text);
    s.run = r.body.id;
  }
  for (const s of sessions) {
    for (const w of s.watchers) {
      const ev = await w.stopped(s.run);
      assert.equal(ev.data.reason, 'completed');
    }
    const stored = await storedEvents(b.url, s.id);
    assertSameAsStore(s.watchers[0], stored, `${s.id} on A, after`);
    assertSameAsStore(s.watchers[1], stored, `${s.id} on B, after`);
  }
  await until(async () => (await api(a.url, 'GET', '/healthz')).status === 200);
  for (const x of [a, b]) assert.deepEqual(await x.stop('SIGTERM'), { code: 0, signal: null });
});
