// Budgets per owner and period (docs/owner-budgets.md) against the real
// server and the mock model: many runs of one owner at once against a
// small budget never use more than it, the runs that do not fit stop with
// owner_budget and a detail naming the owner, the amounts and the reset
// time; GET /api/usage for the owner, another owner and an admin; a budget
// changed while the server runs applies to the next call.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startMock } from '../scenarios/lib.mjs';
import { api, runBinary, startServer, until } from './lib/server.mjs';

const LIMIT = 5000;
// Each answer uses all the completion tokens its call was allowed
// (usage_within_max caps the 5000 reported), as a long answer does, so
// the owner's use comes close to what the calls reserved.
const ANSWER = {
  text: 'ok',
  first_delay_ms: 150,
  usage: { prompt_tokens: 20, completion_tokens: 5000, total_tokens: 5020 },
  usage_within_max: true,
};
const RECOVERY = 'Your budget for this period is used up. Wait until it resets, or ask an ' +
  'administrator to raise it with chatplane token budget.';

const bearer = (t) => ({ Authorization: `Bearer ${t}` });

// The next UTC midnight, as a detail (to the second) and as the API shows
// it (milliseconds).
function tomorrow() {
  const now = new Date();
  const t = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  const iso = new Date(t).toISOString();
  return { detail: iso.replace('.000Z', 'Z'), api: iso };
}

describe('owner budgets', () => {
  let dir, srv, mock, alice, bob, ops;
  const db = () => `sqlite:${path.join(dir, 'chat.db')}`;

  async function token(name, ...extra) {
    const r = await runBinary(['token', 'create', name, ...extra, '--db', db()]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trimEnd().split('\n').at(-1);
  }

  async function usage(t, query = '') {
    const r = await api(srv.url, 'GET', `/api/usage${query}`, undefined, bearer(t));
    return r;
  }

  // Starts a run in a new session of the token's owner; resolves to the
  // session id.
  async function startRun(t) {
    const s = await api(srv.url, 'POST', '/api/sessions', {}, bearer(t));
    assert.equal(s.status, 201, s.text);
    const r = await api(srv.url, 'POST', `/api/sessions/${s.body.id}/runs`, { message: 'hi' }, bearer(t));
    assert.equal(r.status, 202, r.text);
    return s.body.id;
  }

  async function stoppedRun(t, id) {
    return until(async () => {
      const r = await api(srv.url, 'GET', `/api/sessions/${id}`, undefined, bearer(t));
      return r.body && r.body.status === 'idle' && r.body.last_run?.status === 'stopped' ? r.body.last_run : null;
    }, 30000, 25);
  }

  // Alice's one budget once nothing is held any more.
  async function settled() {
    return until(async () => {
      const r = await usage(alice);
      assert.equal(r.status, 200, r.text);
      return r.body.budgets[0].reserved === 0 ? r.body.budgets[0] : null;
    }, 10000, 25);
  }

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'chatplane-owner-budgets-'));
    mock = await startMock();
    alice = await token('alice', '--budget', `tokens=${LIMIT}/day`);
    bob = await token('bob');
    ops = await token('ops', '--admin');
    srv = await startServer({
      dir,
      // A run's own budget of 1500 tokens lets a call (its prompt counted)
      // hold at most 1500 of the owner's 5000, so a few calls of one owner
      // fit at once and the rest must wait for what they used.
      config: { llm: { base_url: mock.url, model: 'mock-model' }, modes: { standard: { tokens: 1500 } } },
    });
  });

  after(async () => {
    // A clean exit: under the sanitizers a leak or an error fails it.
    if (srv) assert.equal((await srv.stop()).code, 0);
    if (mock) mock.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('many runs of one owner at once never use more than the budget', async () => {
    const N = 12;
    await mock.script(Array.from({ length: 3 * N }, () => ANSWER));
    const ids = await Promise.all(Array.from({ length: N }, () => startRun(alice)));
    const runs = await Promise.all(ids.map((id) => stoppedRun(alice, id)));
    const reset = tomorrow();
    const detail = new RegExp(`^alice used (\\d+) of ${LIMIT} tokens` +
      `(?: \\((\\d+) tokens? more held by calls in flight\\))? this day; it resets at ${reset.detail}$`);
    let completed = 0, stopped = 0, used = 0;
    for (const run of runs) {
      if (run.stop_reason === 'completed') {
        completed++;
        used += run.usage.tokens;
        continue;
      }
      assert.equal(run.stop_reason, 'owner_budget', JSON.stringify(run));
      assert.match(run.stop_detail, detail);
      const [, u, held] = detail.exec(run.stop_detail);
      // What it saw used and held left no room for its prompt.
      assert.ok(Number(u) + Number(held || 0) <= LIMIT, run.stop_detail);
      assert.equal(run.recovery_suggestion, RECOVERY);
      assert.deepEqual(run.actions, []);
      assert.equal(run.stop_tone, 'warn');
      assert.equal(run.usage.tokens, 0);
      stopped++;
    }
    assert.ok(completed >= 2, `completed ${completed}`);
    assert.ok(stopped >= 1, `stopped ${stopped}`);
    // The store counted exactly what the runs used, and that is within
    // the budget: every call reserved no more than the owner had left and
    // used no more than it reserved.
    const b = await settled();
    assert.equal(b.used, used);
    assert.ok(used <= LIMIT, `used ${used} of ${LIMIT}`);
    // Every call the model saw was capped by the run's budget (1500 less
    // its prompt) and by what the owner had left.
    const reqs = await mock.requests();
    assert.equal(reqs.length, completed);
    for (const q of reqs) assert.ok(q.body.max_completion_tokens >= 1 && q.body.max_completion_tokens < 1500);
  });

  test('once the budget is used up a run stops before its model call, naming what was used', async () => {
    await mock.reset();
    await mock.script(Array.from({ length: 10 }, () => ANSWER));
    // Runs one after another until one does not fit.
    let run;
    for (let i = 0; i < 10; i++) {
      run = await stoppedRun(alice, await startRun(alice));
      if (run.stop_reason !== 'completed') break;
    }
    assert.equal(run.stop_reason, 'owner_budget');
    const b = await settled();
    assert.equal(run.stop_detail,
      `alice used ${b.used} of ${LIMIT} tokens this day; it resets at ${tomorrow().detail}`);
    assert.deepEqual(run.diagnosis, {
      playbook: 'owner_budget',
      summary: `The owner's budget for the period is used up: ${run.stop_detail}`,
      evidence: { dimension: 'tokens', period: 'day', limit: LIMIT, used: b.used, reserved: 0, resets_at: tomorrow().api, owner: 'alice' },
    });
    const calls = (await mock.requests()).length;
    // A run that stops this way never reached the model.
    const again = await stoppedRun(alice, await startRun(alice));
    assert.equal(again.stop_reason, 'owner_budget');
    assert.equal(again.stop_detail, run.stop_detail);
    assert.equal((await mock.requests()).length, calls);
    // The metric shows what the last check read.
    const m = await (await fetch(`${srv.url}/metrics`)).text();
    assert.ok(m.includes(`chatplane_owner_budget_used{owner="alice",dimension="tokens",period="day"} ${b.used}\n`), m);
    assert.ok(m.includes('chatplane_runs_stopped_total{reason="owner_budget"} '), m);
  });

  test('GET /api/usage: own budgets, another owner\'s for an admin only, every owner\'s', async () => {
    const b = await settled();
    const mine = {
      owner: 'alice',
      budgets: [{ dimension: 'tokens', period: 'day', limit: LIMIT, used: b.used, reserved: 0, resets_at: tomorrow().api }],
    };
    let r = await usage(alice);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, mine);
    assert.equal(r.text, JSON.stringify(mine));
    r = await usage(alice, '?owner=alice');
    assert.deepEqual(r.body, mine);
    r = await usage(bob);
    assert.deepEqual(r.body, { owner: 'bob', budgets: [] });
    r = await usage(bob, '?owner=alice');
    assert.equal(r.status, 403);
    assert.deepEqual(r.body, { error: { code: 'forbidden', message: 'only an admin token may read another owner\'s usage' } });
    r = await usage(bob, '?owner=*');
    assert.equal(r.status, 403);
    r = await usage(ops, '?owner=alice');
    assert.deepEqual(r.body, mine);
    r = await usage(ops, '?owner=*');
    assert.deepEqual(r.body, { owners: [mine] });
    r = await usage(ops, '?owner=a%20b');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.message, 'owner must be a token name (letters, digits and . _ @ -) or *');
    r = await api(srv.url, 'GET', '/api/usage');
    assert.equal(r.status, 401);
  });

  test('a server killed during a call gives the call\'s hold back when it starts again', async () => {
    await mock.reset();
    // A budget of its own, since the day's is used up.
    const set = await runBinary(['token', 'budget', 'alice', 'tokens=100000/month', '--db', db()]);
    assert.equal(set.code, 0, set.stderr);
    // The call never answers: its hold stays while the server lives.
    await mock.script([{ first_delay_ms: 60000, text: 'late' }]);
    const id = await startRun(alice);
    const held = await until(async () => {
      const b = (await usage(alice)).body.budgets[0];
      return b.reserved > 0 ? b : null;
    }, 10000, 25);
    assert.equal(held.reserved, 1500);
    await srv.stop('SIGKILL');
    srv = await startServer({
      dir,
      config: { llm: { base_url: mock.url, model: 'mock-model' }, modes: { standard: { tokens: 1500 } } },
    });
    const b = (await usage(alice)).body.budgets[0];
    assert.deepEqual(b, { ...held, reserved: 0 });
    assert.equal(b.used, 0);
    const run = (await api(srv.url, 'GET', `/api/sessions/${id}`, undefined, bearer(alice))).body.last_run;
    assert.equal(run.stop_reason, 'interrupted');
    assert.ok(srv.lines.includes('level=info msg="Gave back the budget holds of stopped runs." holds=1'), srv.lines.join('\n'));
  });

  test('a budget changed while the server runs counts from the next call', async () => {
    await mock.reset();
    await mock.script([ANSWER, ANSWER]);
    // Cleared: alice runs again, and bob, who never had a budget, too.
    let r = await runBinary(['token', 'budget', 'alice', 'none', '--db', db()]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await stoppedRun(alice, await startRun(alice))).stop_reason, 'completed');
    assert.equal((await stoppedRun(bob, await startRun(bob))).stop_reason, 'completed');
    assert.deepEqual((await usage(alice)).body, { owner: 'alice', budgets: [] });
    // A cost budget without a price counts nothing, so it never stops a
    // run; a tokens budget of 10 a week (usage of its own, per dimension
    // and period) has no room for a prompt.
    r = await runBinary(['token', 'budget', 'alice', 'tokens=10/week', 'cost_usd=5/month', '--db', db()]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'token \'alice\' has the budgets tokens=10/week cost_usd=5/month\n');
    const run = await stoppedRun(alice, await startRun(alice));
    assert.equal(run.stop_reason, 'owner_budget');
    assert.match(run.stop_detail, /^alice used 0 of 10 tokens this week; it resets at \d{4}-\d\d-\d\dT00:00:00Z$/);
  });
});
