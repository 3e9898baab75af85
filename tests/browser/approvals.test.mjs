// Tool approvals in a real browser: a calc call that a config rule asks
// about shows a card at the end of the conversation, with the focus on it,
// the status and the tab title saying the run waits for the person. The
// card approves (the call runs, the run completes), denies with a reason
// (the timeline shows the denial, the run goes on), remembers an approval
// for the run (a second call is not asked), works by keyboard alone, and
// comes back after a reload.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { useStack, openPage, tid, send, waitStopped, newChat, api } from './lib.mjs';

const card = (status) => `${tid('approval-card')}[data-status="${status}"]`;

describe('tool approvals', () => {
  let browser, stack;

  useStack((b, s) => { browser = b; stack = s; }, { config: { approvals: { rules: [{ tool: 'calc', action: 'ask' }] } } });

  test('the card shows the call with the focus on it; approving runs the call and completes the run', async () => {
    await stack.mock.script([
      { tool_calls: [{ name: 'calc', arguments: { expression: '6*7' } }] },
      { text: 'It is 42.' },
    ]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    await send(page, 'compute 6*7');

    const pending = page.locator(card('pending'));
    await pending.waitFor({ timeout: 10000 });
    assert.equal(await pending.locator(tid('approval-tool')).textContent(), 'calc');
    assert.equal(await pending.locator(tid('approval-server')).textContent(), 'builtin');
    assert.equal(await pending.locator(tid('approval-arguments')).textContent(), '{\n  "expression": "6*7"\n}');
    assert.equal(await pending.locator(tid('approval-reason')).textContent(), 'Asked because rule calc.');
    assert.deepEqual(await pending.locator(`${tid('remember-select')} option`).evaluateAll((os) => os.map((o) => o.value)), ['once', 'run', 'session']);
    await page.waitForFunction(() => document.activeElement && document.activeElement.getAttribute('data-testid') === 'approval-card');
    await page.locator(`${tid('status-indicator')}[data-status="waiting_for_approval"]`).waitFor();
    assert.equal(await page.locator('#status-label').textContent(), 'Waiting for you');
    await page.waitForFunction(() => document.title.startsWith('(Approval needed) '));
    // Nothing ran yet; the timeline says what waits and leads to the card.
    assert.equal(await page.locator(tid('tool-execution')).count(), 0);
    const notice = page.locator(tid('approval-notice'));
    assert.equal(await notice.locator('strong').textContent(), 'calc waits for your approval');
    await notice.locator('button').click();
    await page.waitForFunction(() => document.activeElement && document.activeElement.getAttribute('data-testid') === 'approval-card');

    await pending.locator(tid('approve-button')).click();
    const decided = page.locator(card('approved'));
    await decided.waitFor();
    assert.equal(await decided.locator(tid('approve-button')).count(), 0);
    assert.equal(await decided.locator(tid('approval-decision')).textContent(), 'Approved by local');
    await notice.waitFor({ state: 'detached' });
    await waitStopped(page, 'completed');
    assert.equal(await page.locator(tid('tool-execution')).getAttribute('data-status'), 'ok');
    assert.equal(await page.locator(`${tid('message')}[data-role="assistant"]`).last().textContent(), 'It is 42.');
    assert.ok(!(await page.title()).startsWith('(Approval needed)'));
    p.assertClean();
    await p.close();
  });

  test('denying with a reason shows the denial in the timeline and the run goes on', async () => {
    await stack.mock.script([
      { tool_calls: [{ name: 'calc', arguments: { expression: '1/0' } }] },
      { text: 'I will not compute it.' },
    ]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    await send(page, 'compute 1/0');
    const pending = page.locator(card('pending'));
    await pending.waitFor({ timeout: 10000 });
    await pending.locator(tid('deny-reason')).fill('not now');
    await pending.locator(tid('deny-button')).click();
    const decided = page.locator(card('denied'));
    await decided.waitFor();
    assert.equal(await decided.locator(tid('approval-decision')).textContent(), 'Denied by local: not now');
    await waitStopped(page, 'completed');
    const row = page.locator(tid('tool-execution'));
    assert.equal(await row.getAttribute('data-status'), 'denied');
    assert.equal(await row.locator('.tool-status .sr-only').textContent(), 'denied');
    await row.locator('.tool-head').click();
    assert.match(await row.locator(tid('tool-details')).textContent(), /denied by local: not now/);
    assert.equal(await page.locator(`${tid('message')}[data-role="assistant"]`).last().textContent(), 'I will not compute it.');
    p.assertClean();
    await p.close();
  });

  test('remembered for the run, a second call of the tool is not asked; keyboard alone decides', async () => {
    await stack.mock.script([
      { tool_calls: [{ name: 'calc', arguments: { expression: '2+2' } }] },
      { tool_calls: [{ name: 'calc', arguments: { expression: '3+3' } }] },
      { text: 'Both done.' },
    ]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    await send(page, 'compute twice');
    await page.locator(card('pending')).waitFor({ timeout: 10000 });
    await page.waitForFunction(() => document.activeElement && document.activeElement.getAttribute('data-testid') === 'approval-card');
    // From the card: Tab to the remember select, pick "run" with the
    // arrow keys, then Tab on to Approve and press Enter.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'remember-select');
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.locator(tid('remember-select')).inputValue(), 'run');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'deny-reason');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'approve-button');
    await page.keyboard.press('Enter');
    await waitStopped(page, 'completed');
    assert.deepEqual(await page.locator(tid('tool-execution')).evaluateAll((es) => es.map((e) => e.getAttribute('data-status'))), ['ok', 'ok']);
    // One card only: the second call was answered by the remembered choice.
    assert.equal(await page.locator(tid('approval-card')).count(), 1);
    assert.equal(await page.locator(card('approved')).count(), 1);
    p.assertClean();
    await p.close();
  });

  test('a reload while the run waits shows the pending card again', async () => {
    await stack.mock.script([
      { tool_calls: [{ name: 'calc', arguments: { expression: '7*6' } }] },
      { text: 'Done.' },
    ]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const id = await newChat(page);
    await send(page, 'compute 7*6');
    await page.locator(card('pending')).waitFor({ timeout: 10000 });
    await page.reload();
    const pending = page.locator(card('pending'));
    await pending.waitFor({ timeout: 10000 });
    assert.equal(await pending.locator(tid('approval-arguments')).textContent(), '{\n  "expression": "7*6"\n}');
    await page.locator(`${tid('status-indicator')}[data-status="waiting_for_approval"]`).waitFor();
    const listed = await api(stack.url, 'GET', `/api/sessions/${id}/approvals?status=pending`);
    assert.equal(listed.body.approvals.length, 1);
    await pending.locator(tid('approve-button')).click();
    await waitStopped(page, 'completed');
    p.assertClean();
    await p.close();
  });
});
