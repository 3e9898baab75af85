// PostgreSQL stopped (fast, then immediate) and started again while many
// runs stream on two instances and more runs are being started: the event
// log writer writes its batches again once it has reconnected, so the log
// still rebuilds every conversation. For every run the store knows, the log
// holds its user message, exactly one run_started and exactly one
// run_stopped (its last event); every stored message has its message
// event; and every session's seqs run 1, 2, 3… without a gap.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { api, newSession, sleep, until } from '../integration/lib/server.mjs';
import { startCluster, startInstances, storedEvents, waitHealthy } from './lib.mjs';

const STREAMING = 16; // sessions whose runs stream across each restart
const STARTING = 6; // sessions whose runs are started while it restarts

let pg;
let a, b;

before(async () => {
  pg = await startCluster({ durable: true });
  [a, b] = await startInstances(2, pg.url, { orphanTimeout: 3, delayMs: 50 });
});

after(async () => {
  for (const x of [a, b]) if (x) await x.stop('SIGKILL');
  for (const x of [a, b]) if (x) x.cleanup();
  if (pg) await pg.stop();
});

// POSTs a run until the answer is no longer 503 (the database is back);
// resolves to the statuses seen.
async function startThroughOutage(owner, sessionId, deadline) {
  const seen = [];
  while (Date.now() < deadline) {
    let status = 'error';
    try {
      status = (await api(owner.url, 'POST', `/api/sessions/${sessionId}/runs`, { message: 'hello again' })).status;
    } catch { /* the instance answers again shortly */ }
    seen.push(status);
    if (status === 202 || status === 409) return seen;
    await sleep(30);
  }
  return seen;
}

async function allIdle(sessions) {
  for (const s of sessions) {
    await until(async () => {
      const r = await api(s.owner.url, 'GET', `/api/sessions/${s.id}`);
      return r.status === 200 && r.body.status === 'idle';
    }, 60000, 50);
  }
}

// Checks the log of one session against its stored runs and messages;
// returns the number of events checked.
async function checkSession(s) {
  const events = await storedEvents(a.url, s.id);
  assert.ok(events.length < 1000, `${s.id}: more events than one page`);
  events.forEach((e, i) => assert.equal(e.seq, i + 1, `${s.id}: seq at ${i}`));
  const runs = (await api(b.url, 'GET', `/api/sessions/${s.id}/runs`)).body.runs;
  const messages = (await api(b.url, 'GET', `/api/sessions/${s.id}/messages`)).body.messages;
  assert.ok(runs.length >= s.minRuns, `${s.id}: ${runs.length} runs`);
  for (const run of runs) {
    assert.equal(run.status, 'stopped', `${run.id}: ${run.status}`);
    const mine = events.filter((e) => e.run_id === run.id);
    const count = (type) => mine.filter((e) => e.type === type).length;
    assert.equal(count('run_started'), 1, `${run.id}: run_started events`);
    assert.equal(count('run_stopped'), 1, `${run.id}: run_stopped events`);
    assert.equal(mine.at(-1).type, 'run_stopped', `${run.id}: run_stopped is its last event`);
    assert.equal(mine.at(-1).reason, run.stop_reason, `${run.id}: reason`);
    const users = mine.filter((e) => e.type === 'message' && e.role === 'user');
    assert.equal(users.length, 1, `${run.id}: user message events`);
    assert.ok(mine.indexOf(users[0]) < mine.findIndex((e) => e.type === 'run_started'),
      `${run.id}: the user message comes before run_started`);
  }
  const logged = new Set(events.filter((e) => e.type === 'message').map((e) => e.message_id));
  for (const m of messages) assert.ok(logged.has(m.id), `${s.id}: message ${m.id} (${m.role}) has no event`);
  return events.length;
}

test('PostgreSQL restarted (fast, then immediate) during runs: every run logged whole, once', async (t) => {
  const streaming = [];
  const starting = [];
  for (let i = 0; i < STREAMING; i++) {
    const owner = i % 2 ? b : a;
    streaming.push({ id: (await newSession(owner.url)).id, owner, minRuns: 0 });
  }
  for (let i = 0; i < STARTING; i++) {
    const owner = i % 2 ? b : a;
    starting.push({ id: (await newSession(owner.url)).id, owner, minRuns: 0 });
  }

  const outcomes = [];
  for (const mode of ['fast', 'immediate']) {
    for (const s of streaming) {
      const r = await api(s.owner.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'hello' });
      assert.equal(r.status, 202, r.text);
      s.minRuns++;
    }
    // Let the runs stream (each streams for about three seconds).
    await sleep(400);
    const deadline = Date.now() + 30000;
    // The starts begin while the server is stopping or down.
    const starts = sleep(300).then(() =>
      Promise.all(starting.map((s) => startThroughOutage(s.owner, s.id, deadline))));
    await pg.restart(1, mode);
    await waitHealthy(a.url);
    await waitHealthy(b.url);
    for (const [k, seen] of (await starts).entries()) {
      outcomes.push(`${mode}: ${seen.filter((x) => x !== seen.at(-1)).length} refused, then ${seen.at(-1)}`);
      if (seen.at(-1) === 202) starting[k].minRuns++;
    }
    await allIdle([...streaming, ...starting]);
  }

  let events = 0;
  let runs = 0;
  for (const s of [...streaming, ...starting]) {
    events += await checkSession(s);
    runs += (await api(a.url, 'GET', `/api/sessions/${s.id}/runs`)).body.runs.length;
  }
  t.diagnostic(`${runs} runs in ${streaming.length + starting.length} sessions, ${events} events checked`);
  t.diagnostic(`starts during the restarts: ${outcomes.join('; ')}`);
  for (const x of [a, b]) assert.deepEqual(await x.stop('SIGTERM'), { code: 0, signal: null });
});
