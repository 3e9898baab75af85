// `chatplane token` and owner budgets (docs/cli.md, docs/owner-budgets.md):
// create with --budget (repeatable), budget NAME B... and none, list
// showing each token's budgets, and the exact errors of bad input.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';

import { run, workspace } from './helpers.mjs';

let ws;
beforeEach(() => {
  ws = workspace();
});
afterEach(() => ws.cleanup());

const token = (...args) => run(['token', ...args], { env: ws.env });
const TIME = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z';

// The rows of `token list` as [name, admin, revoked, budgets].
async function list() {
  const r = await token('list');
  assert.equal(r.code, 0, r.stderr);
  const [header, ...rows] = r.stdout.trimEnd().split('\n');
  assert.match(header, /^NAME +ADMIN +CREATED +REVOKED +BUDGETS$/);
  return rows.map((l) => {
    const m = new RegExp(`^(\\S+) +(yes|no) +${TIME} +(-|${TIME}) +(.*)$`).exec(l);
    assert.ok(m, l);
    return [m[1], m[2], m[3] === '-' ? '-' : 'revoked', m[4]];
  });
}

describe('token budgets', () => {
  test('create with budgets, change them, clear them; list shows them', async () => {
    let r = await token('create', 'alice', '--budget', 'cost_usd=20/day', '--budget=tokens=2000000/month');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^created token 'alice'; it is shown only this once, keep it now:\ncpt_[0-9a-f]{64}\n$/);
    r = await token('create', 'ops', '--admin');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await list(), [
      ['alice', 'no', '-', 'cost_usd=20/day tokens=2000000/month'],
      ['ops', 'yes', '-', '-'],
    ]);

    r = await token('budget', 'alice', 'cost_usd=50.25/week');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "token 'alice' has the budgets cost_usd=50.25/week\n");
    r = await token('budget', 'ops', 'tokens=100/day', 'cost_usd=0.5/month');
    assert.equal(r.stdout, "token 'ops' has the budgets tokens=100/day cost_usd=0.5/month\n");
    assert.deepEqual(await list(), [
      ['alice', 'no', '-', 'cost_usd=50.25/week'],
      ['ops', 'yes', '-', 'cost_usd=0.5/month tokens=100/day'],
    ]);

    r = await token('budget', 'alice', 'none');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "token 'alice' has no budgets now\n");
    assert.deepEqual((await list())[0], ['alice', 'no', '-', '-']);
  });

  test('bad input gets an error that names the problem', async () => {
    let r = await token('create', 'alice');
    assert.equal(r.code, 0, r.stderr);
    const cases = [
      [['create', 'bob', '--budget', 'tokens=5/year'], 2,
        "chatplane token: budget 'tokens=5/year' names an unknown period; use day, week or month\n"],
      [['create', 'bob', '--budget', 'steps=5/day'], 2,
        "chatplane token: budget 'steps=5/day' names an unknown dimension; use tokens or cost_usd\n"],
      [['create', 'bob', '--budget', 'tokens=1.5/day'], 2,
        "chatplane token: budget 'tokens=1.5/day' needs a whole number of tokens from 1 to 10^15\n"],
      [['create', 'bob', '--budget', 'cost_usd=20'], 2,
        "chatplane token: budget 'cost_usd=20' must read DIMENSION=AMOUNT/PERIOD, as in cost_usd=20/day\n"],
      [['create', 'bob', '--budget'], 2,
        'chatplane token: --budget needs a value, as in --budget cost_usd=20/day\n'],
      [['create', 'bob', '--budget', 'tokens=1/day', '--budget', 'tokens=2/day'], 2,
        'chatplane token: a tokens budget per day is given twice; give one per dimension and period\n'],
      [['list', '--budget', 'tokens=1/day'], 2,
        'chatplane token: --budget goes with create; use budget NAME BUDGET... to change them\n'],
      [['budget', 'alice'], 2, 'chatplane token: budget needs the budgets (cost_usd=20/day ...) or none\n'],
      [['budget'], 2, 'chatplane token: budget needs a token NAME\n'],
      [['budget', 'carol', 'none'], 1, "chatplane token: no active token named 'carol'\n"],
      [['budget', 'alice', 'none', 'tokens=1/day'], 2,
        'chatplane token: none clears every budget and goes alone\n'],
    ];
    for (const [args, code, stderr] of cases) {
      r = await token(...args);
      assert.equal(r.stderr, stderr, args.join(' '));
      assert.equal(r.code, code, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
    // Nothing was made or changed.
    assert.deepEqual(await list(), [['alice', 'no', '-', '-']]);
    // A revoked token's budgets cannot be set.
    r = await token('revoke', 'alice');
    assert.equal(r.code, 0, r.stderr);
    r = await token('budget', 'alice', 'tokens=1/day');
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "chatplane token: no active token named 'alice'\n");
  });
});
