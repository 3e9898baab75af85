// Budgets per owner on two instances sharing one PostgreSQL
// (docs/owner-budgets.md): runs of one owner started at once on both never
// use more than the owner's budget between them, because each model call
// reserves in a transaction that locks the owner's usage row; the runs
// that do not fit stop with owner_budget, and both instances answer
// GET /api/usage with the same figures.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startMock } from '../scenarios/lib.mjs';
import { api, runBinary, startServer, until } from '../integration/lib/server.mjs';
import { startCluster, waitHealthy } from './lib.mjs';

const LIMIT = 5000;
// Every answer uses all the completion tokens its call was allowed.
const ANSWER = {
  text: 'ok',
  first_delay_ms: 150,
  usage: { prompt_tokens: 20, completion_tokens: 5000, total_tokens: 5020 },
  usage_within_max: true,
};
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

describe('owner budgets on two instances', () => {
  let pg, mock, a, b, alice;

  before(async () => {
    pg = await startCluster();
    mock = await startMock();
    const r = await runBinary(['token', 'create', 'alice', '--budget', `tokens=${LIMIT}/day`, '--db', pg.url]);
    assert.equal(r.code, 0, r.stderr);
    alice = r.stdout.trimEnd().split('\n').at(-1);
    // A run's own 1500 tokens bound what one call holds, so calls of both
    // instances hold parts of the owner's budget at once.
    const config = {
      llm: { base_url: mock.url, model: 'mock-model' },
      modes: { standard: { tokens: 1500 } },
      cluster: { orphan_timeout_seconds: 3 },
    };
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

  async function startRun(inst) {
    const s = await api(inst.url, 'POST', '/api/sessions', {}, bearer(alice));
    assert.equal(s.status, 201, s.text);
    const r = await api(inst.url, 'POST', `/api/sessions/${s.body.id}/runs`, { message: 'hi' }, bearer(alice));
    assert.equal(r.status, 202, r.text);
    return { inst, id: s.body.id };
  }

  const stoppedRun = ({ inst, id }) => until(async () => {
    const r = await api(inst.url, 'GET', `/api/sessions/${id}`, undefined, bearer(alice));
    return r.body && r.body.status === 'idle' && r.body.last_run?.status === 'stopped' ? r.body.last_run : null;
  }, 30000, 25);

  const usage = async (inst) => {
    const r = await api(inst.url, 'GET', '/api/usage', undefined, bearer(alice));
    assert.equal(r.status, 200, r.text);
    return r.body.budgets[0];
  };

  test('runs of one owner on both instances at once stay within its budget', async () => {
    const N = 16;
    // One run on each instance first, whose calls answer slowly, so both
    // instances hold part of the budget while the others start at once.
    const SLOW = { ...ANSWER, first_delay_ms: 1000 };
    await mock.script([SLOW, SLOW, ...Array.from({ length: 2 * N }, () => ANSWER)]);
    const holding = async (amount) => until(async () => (await usage(a)).reserved >= amount, 10000, 10);
    const first = [await startRun(a)];
    await holding(1500);
    first.push(await startRun(b));
    await holding(3000);
    const rest = await Promise.all(Array.from({ length: N - 2 }, (_, i) => startRun(i % 2 ? b : a)));
    const started = [...first, ...rest];
    const runs = await Promise.all(started.map(stoppedRun));
    const now = new Date();
    const reset = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1))
      .toISOString().replace('.000Z', 'Z');
    const detail = new RegExp(`^alice used (\\d+) of ${LIMIT} tokens` +
      `(?: \\((\\d+) tokens? more held by calls in flight\\))? this day; it resets at ${reset}$`);
    let used = 0;
    const byInstance = new Map([[a, 0], [b, 0]]);
    const reasons = { completed: 0, owner_budget: 0 };
    runs.forEach((run, i) => {
      assert.ok(run.stop_reason in reasons, JSON.stringify(run));
      reasons[run.stop_reason]++;
      if (run.stop_reason === 'completed') {
        used += run.usage.tokens;
        byInstance.set(started[i].inst, byInstance.get(started[i].inst) + 1);
      } else {
        assert.match(run.stop_detail, detail);
        assert.equal(run.usage.tokens, 0);
      }
    });
    assert.ok(reasons.completed >= 2, JSON.stringify(reasons));
    assert.ok(reasons.owner_budget >= 1, JSON.stringify(reasons));
    // Both instances ran calls against the one budget: at least the first
    // two, which held their part while the rest started.
    assert.ok(byInstance.get(a) >= 1 && byInstance.get(b) >= 1, JSON.stringify([...byInstance.values()]));
    const onA = await until(async () => {
      const x = await usage(a);
      return x.reserved === 0 ? x : null;
    }, 10000, 25);
    assert.equal(onA.used, used);
    assert.ok(used <= LIMIT, `used ${used} of ${LIMIT}`);
    assert.deepEqual(await usage(b), onA);
  });
});
