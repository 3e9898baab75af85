// The signed-in owner's budgets on the page (docs/owner-budgets.md): the
// usage-display card shows each budget of the owner with what was used,
// the limit and when the period resets, follows a run's use, and stays
// hidden for an owner without budgets.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { launchBrowser, openPage, tid, send, waitStopped, newChat } from './lib.mjs';
import { startMock } from '../scenarios/lib.mjs';
import { runBinary, startServer } from '../integration/lib/server.mjs';

// The next UTC midnight and the Monday after this week, as the card words
// them.
function resets() {
  const now = new Date();
  const day = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
  const monday = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(),
    now.getUTCDate() + 7 - ((now.getUTCDay() + 6) % 7)));
  const words = (d) => `resets ${d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short', timeZone: 'UTC' }).replace(',', '')}, 00:00 UTC`;
  return { day: words(day), dayIso: day.toISOString(), week: words(monday), weekIso: monday.toISOString() };
}

// What the page asked before signing in was refused.
const UNSIGNED = /status of 401 \(Unauthorized\)/;

describe('usage display', () => {
  let browser, mock, srv, dir, alice, bob;

  async function token(name, ...extra) {
    const r = await runBinary(['token', 'create', name, ...extra, '--db', `sqlite:${path.join(dir, 'chat.db')}`]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split('\n').pop();
  }

  async function signIn(t) {
    const p = await openPage(browser, srv.url + '/');
    const form = p.page.locator(tid('login-form'));
    await form.waitFor();
    await p.page.locator('#login-token').fill(t);
    await p.page.keyboard.press('Enter');
    await form.waitFor({ state: 'hidden' });
    await p.page.locator('#model-badge').waitFor();
    return p;
  }

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'chatplane-browser-usage-'));
    alice = await token('alice', '--budget', 'tokens=5000/day', '--budget', 'cost_usd=2/week');
    bob = await token('bob');
    browser = await launchBrowser();
    mock = await startMock();
    const webRoot = process.env.CHATPLANE_WEB_ROOT ? ['--web-root', process.env.CHATPLANE_WEB_ROOT] : [];
    srv = await startServer({ dir, args: webRoot, config: { llm: { base_url: mock.url, model: 'mock-model' } } });
  });

  after(async () => {
    await browser?.close();
    if (srv) await srv.stop();
    mock?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an owner with budgets sees each with its use, limit and reset, and a run\'s use arrives', async () => {
    const p = await signIn(alice);
    const { page } = p;
    const card = page.locator(tid('usage-display'));
    await card.waitFor();
    assert.equal(await card.locator('#usage-heading').textContent(), 'Your budgets');
    assert.equal(await card.locator('#usage-sub').textContent(), 'alice');
    const r = resets();
    // The store lists budgets by dimension: cost_usd, then tokens.
    const meters = card.locator('.meter');
    assert.deepEqual(await meters.evaluateAll((ms) => ms.map((m) => m.getAttribute('data-testid'))),
      ['usage-cost_usd-week', 'usage-tokens-day']);
    const tokens = card.locator(tid('usage-tokens-day'));
    assert.equal(await tokens.locator('.meter-label').textContent(), 'Tokens per day');
    assert.equal(await tokens.locator('.meter-value').textContent(), '0 / 5,000');
    assert.equal(await tokens.getAttribute('data-used'), '0');
    assert.equal(await tokens.getAttribute('data-limit'), '5000');
    assert.equal(await tokens.getAttribute('data-level'), 'ok');
    assert.equal(await tokens.locator(tid('usage-reset')).textContent(), r.day);
    assert.equal(await tokens.locator(tid('usage-reset')).getAttribute('title'), r.dayIso);
    const cost = card.locator(tid('usage-cost_usd-week'));
    assert.equal(await cost.locator('.meter-label').textContent(), 'Cost per week');
    assert.equal(await cost.locator('.meter-value').textContent(), '$0.000 / $2.00');
    assert.equal(await cost.locator(tid('usage-reset')).textContent(), r.week);
    assert.equal(await cost.locator(tid('usage-reset')).getAttribute('title'), r.weekIso);

    // A run's reported use (11 + 7 tokens by default) shows once it ends.
    await newChat(page);
    await send(page, 'hello');
    await waitStopped(page, 'completed');
    await page.locator(`${tid('usage-tokens-day')}[data-used="18"]`).waitFor({ timeout: 10000 });
    assert.equal(await tokens.locator('.meter-value').textContent(), '18 / 5,000');
    assert.equal(await tokens.getAttribute('data-reserved'), '0');
    assert.equal(await tokens.locator('.meter-bar').getAttribute('aria-valuetext'), '18 of 5,000');
    p.assertClean(UNSIGNED);
    await p.close();
  });

  test('an owner over budget sees the meter full and the run\'s stop says why', async () => {
    let r = await runBinary(['token', 'budget', 'alice', 'tokens=18/day', '--db', `sqlite:${path.join(dir, 'chat.db')}`]);
    assert.equal(r.code, 0, r.stderr);
    const p = await signIn(alice);
    const { page } = p;
    const tokens = page.locator(tid('usage-tokens-day'));
    await tokens.waitFor();
    assert.equal(await tokens.getAttribute('data-level'), 'over');
    assert.equal(await tokens.locator('.meter-value').textContent(), '18 / 18');
    await newChat(page);
    await send(page, 'hello again');
    await waitStopped(page, 'owner_budget');
    assert.equal(await page.locator(tid('stop-reason')).getAttribute('data-reason'), 'owner_budget');
    p.assertClean(UNSIGNED);
    await p.close();
    r = await runBinary(['token', 'budget', 'alice', 'none', '--db', `sqlite:${path.join(dir, 'chat.db')}`]);
    assert.equal(r.code, 0, r.stderr);
  });

  test('an owner without budgets sees no card', async () => {
    const p = await signIn(bob);
    const { page } = p;
    // The page asked and got no budgets.
    await page.waitForResponse((x) => new URL(x.url()).pathname === '/api/usage');
    await page.locator(tid('new-session')).waitFor();
    assert.equal(await page.locator(tid('usage-display')).isHidden(), true);
    p.assertClean(UNSIGNED);
    await p.close();
  });
});
