// Accessibility checked by axe-core in every state the page reaches in
// these tests: the empty page, a chat with an answer, an expanded tool
// card, two runs in the timeline, a stopped run, a run waiting for an approval and a denied call, the
// login overlay, the narrow layout (each tab) and
// the dark theme. Each check fails with the rules and elements axe names.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { useStack, openPage, tid, send, waitStopped, newChat, axeViolations, api } from './lib.mjs';

// Asserts no violation; the figures also go to the test's diagnostics so a
// run shows how many there were per state.
async function check(t, page, state) {
  // Colours are measured at rest, not half way through a transition.
  await page.emulateMedia({ reducedMotion: 'reduce' });
  const v = await axeViolations(page);
  const nodes = v.reduce((n, x) => n + x.targets.length, 0);
  t.diagnostic(`axe ${state}: ${v.length} rules, ${nodes} nodes`);
  const lines = v.map((x) => `${x.id} (${x.impact}, ${x.targets.length}): ${x.help}: ${x.targets.slice(0, 6).join(', ')}`);
  assert.deepEqual(lines, [], `axe violations in the ${state} state`);
}

const LONG_TEXT = 'This answer takes its time. '.repeat(40);

describe('accessibility (axe-core)', () => {
  let browser, stack;

  // Only clock is asked about, so the other states here run unasked.
  useStack((b, s) => { browser = b; stack = s; }, { config: { approvals: { rules: [{ tool: 'clock', action: 'ask' }] } } });

  for (const colorScheme of ['light', 'dark']) {
    test(`the empty page, a chat with an answer and an expanded tool card pass axe (${colorScheme})`, async (t) => {
      const p = await openPage(browser, stack.url + '/', { colorScheme });
      const { page } = p;
      await newChat(page);
      await check(t, page, `${colorScheme} empty`);

      await stack.mock.script([
        { tool_calls: [{ name: 'calc', arguments: { expression: '6*7' } }] },
        { text: 'The answer is **42**. See [the docs](https://example.com/).\n\n- one\n- two\n\n`code`' },
      ]);
      await send(page, 'compute');
      await waitStopped(page, 'completed');
      await check(t, page, `${colorScheme} chat with answer`);

      await page.locator(`${tid('tool-execution')} .tool-head`).first().click();
      await page.locator(tid('tool-details')).waitFor();
      await check(t, page, `${colorScheme} tool card`);

      // A second run: two run headers in the timeline, the older opened.
      await stack.mock.script([{ text: 'Again.' }]);
      await send(page, 'again');
      await page.locator(`${tid('timeline-run')}:first-child[data-state="stopped"] + ${tid('timeline-run')}`).waitFor();
      await page.locator(`${tid('timeline-run')}:nth-child(2) ${tid('run-toggle')}`).click();
      await page.locator(`${tid('timeline-run')}:nth-child(2) ${tid('tool-execution')}`).waitFor();
      await check(t, page, `${colorScheme} two runs`);
      p.assertClean();
      await p.close();
    });

    test(`a stopped run passes axe, and Stop leaves the focus in the message box (${colorScheme})`, async (t) => {
      await stack.mock.script([{ text: LONG_TEXT, piece_chars: 5, delay_ms: 50 }]);
      const p = await openPage(browser, stack.url + '/', { colorScheme });
      const { page } = p;
      await newChat(page);
      await send(page, 'write a lot');
      await page.locator(`${tid('message')}[data-role="assistant"].streaming`).waitFor();
      await check(t, page, `${colorScheme} running`);
      await page.locator(tid('stop-button')).click();
      await waitStopped(page, 'user_stopped');
      // The Stop button turns disabled: the focus must not fall to the body.
      assert.equal(await page.evaluate(() => document.activeElement.id), 'message-input');
      await check(t, page, `${colorScheme} stopped run`);
      p.assertClean();
      await p.close();
    });
  }

  for (const colorScheme of ['light', 'dark']) {
    test(`a run waiting for an approval and a denied call pass axe (${colorScheme})`, async (t) => {
      await stack.mock.script([
        { tool_calls: [{ name: 'clock', arguments: { timezone: 'Asia/Tokyo' } }] },
        { text: 'No time then.' },
      ]);
      const p = await openPage(browser, stack.url + '/', { colorScheme });
      const { page } = p;
      await newChat(page);
      await send(page, 'what time is it?');
      await page.locator(`${tid('approval-card')}[data-status="pending"]`).waitFor();
      await page.locator(`${tid('status-indicator')}[data-status="waiting_for_approval"]`).waitFor();
      await check(t, page, `${colorScheme} waiting for approval`);
      await page.locator(tid('deny-reason')).fill('not needed');
      await page.locator(tid('deny-button')).click();
      await waitStopped(page, 'completed');
      await page.locator(`${tid('tool-execution')}[data-status="denied"] .tool-head`).click();
      await page.locator(tid('tool-details')).waitFor();
      await check(t, page, `${colorScheme} denied call`);
      p.assertClean();
      await p.close();
    });
  }

  test('the narrow layout passes axe on each tab', async (t) => {
    await stack.mock.script([{ text: 'A short answer.' }]);
    const chat = (await api(stack.url, 'POST', '/api/sessions', {})).body;
    const p = await openPage(browser, `${stack.url}/#/sessions/${chat.id}`, { viewport: { width: 390, height: 844 } });
    const { page } = p;
    await page.locator('#empty-state h2').waitFor();
    await send(page, 'hello from a phone');
    await page.locator(`${tid('message')}[data-role="assistant"]:not(.streaming)`).waitFor();
    await page.locator(`${tid('status-indicator')}[data-status="idle"]`).waitFor({ state: 'attached' });
    await page.locator(`${tid('session-item')}[aria-current="page"][data-status="idle"]`).waitFor({ state: 'attached' });
    for (const tab of ['chat', 'control', 'sessions']) {
      await page.locator(`#tab-${tab}`).click();
      await check(t, page, `narrow ${tab} tab`);
    }
    p.assertClean();
    await p.close();
  });

  test('the login overlay is a modal dialog that keeps the focus, and passes axe', async (t) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const unauthorized = { status: 401, contentType: 'application/json', body: '{"error":{"code":"unauthorized","message":"a token is needed"}}' };
    await page.route('**/api/**', (route) => route.fulfill(unauthorized));
    await page.goto(stack.url + '/');
    const form = page.locator(tid('login-form'));
    await form.waitFor();
    const dialog = page.locator('[role="dialog"]');
    assert.equal(await dialog.count(), 1);
    assert.equal(await dialog.getAttribute('aria-modal'), 'true');
    assert.equal(await dialog.isVisible(), true);
    const label = await dialog.evaluate((d) => document.getElementById(d.getAttribute('aria-labelledby'))?.textContent);
    assert.equal(label, 'Sign in to chatplane');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'login-token');
    // Tab and Shift+Tab cycle inside the dialog.
    const inside = () => page.evaluate(() => !!document.activeElement.closest('[role="dialog"]'));
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      assert.equal(await inside(), true, `focus inside after ${i + 1} Tab`);
    }
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Shift+Tab');
      assert.equal(await inside(), true, `focus inside after ${i + 1} Shift+Tab`);
    }
    // The page behind cannot be reached.
    assert.deepEqual(await page.evaluate(() => ['.skip-link', '.topbar', '.tabs-nav', '.layout'].map((s) => document.querySelector(s).inert)), [true, true, true, true]);
    await check(t, page, 'login overlay');
    await context.close();
  });
});
