// Notifications in a real browser: while the tab is hidden, a run that ends
// or starts waiting for the person changes the tab's title and icon until
// the tab is seen again, and shows a browser notification when the person
// allowed them. The tab is hidden by overriding document.visibilityState
// (a headless page is always visible), and window.Notification is replaced
// before the page loads by one that records what it is asked.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { useStack, tid, send, waitStopped, newChat, api } from './lib.mjs';

// Runs in the page before its scripts: a Notification that records, and
// the tab hidden from the start when asked.
function fakeNotifications({ permission, answer, hidden }) {
  if (hidden) Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
  window.__notes = [];
  window.__asked = 0;
  class FakeNotification {
    constructor(title, options = {}) {
      window.__notes.push({ title, body: options.body, tag: options.tag });
    }

    close() {}

    static async requestPermission() {
      window.__asked++;
      FakeNotification.permission = answer;
      return answer;
    }
  }
  FakeNotification.permission = permission;
  window.Notification = FakeNotification;
}

async function open(browser, url, permission, answer = permission, hidden = false) {
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
  await context.addInitScript(fakeNotifications, { permission, answer, hidden });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  return { page, errors, close: () => context.close() };
}

function setHidden(page, hidden) {
  return page.evaluate((h) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

const favicon = (page) => page.locator('link[rel="icon"]').getAttribute('href');
const notes = (page) => page.evaluate(() => window.__notes);

// A chat with one run done while the tab is seen, so the server has named
// it ("hello there") before the run under test.
async function namedChat(page, stack) {
  const id = await newChat(page);
  await stack.mock.script([{ text: 'Hello.' }]);
  await send(page, 'hello there');
  await waitStopped(page, 'completed');
  await page.waitForFunction(() => document.title === 'hello there · chatplane');
  return id;
}

describe('notifications', () => {
  let browser, stack;

  useStack((b, s) => { browser = b; stack = s; }, { config: { approvals: { rules: [{ tool: 'calc', action: 'ask' }] } } });

  test('a run that ends in a hidden tab: the title, the icon and a notification say so until the tab is seen', async () => {
    const { page, errors, close } = await open(browser, stack.url + '/', 'granted');
    const id = await namedChat(page, stack);
    // Seen, the run's end changed nothing.
    assert.deepEqual(await notes(page), []);
    assert.equal(await favicon(page), 'favicon.svg');
    // Allowed already: no button to ask.
    assert.equal(await page.locator(tid('notify-button')).isHidden(), true);

    await setHidden(page, true);
    await stack.mock.script([{ text: 'Again.' }]);
    await send(page, 'once more');
    await waitStopped(page, 'completed');
    await page.waitForFunction(() => document.title.startsWith('✓'));
    const run = (await api(stack.url, 'GET', `/api/sessions/${id}/runs`)).body.runs[0];
    assert.equal(await page.title(), '✓ Done — hello there');
    assert.equal(await favicon(page), 'favicon-done.svg');
    assert.equal(run.stop_detail, 'answered in 1 step with 0 tool calls');
    assert.deepEqual(await notes(page), [{ title: '✓ Done — hello there', body: 'Finished: answered in 1 step with 0 tool calls', tag: `chatplane-${id}` }]);

    await setHidden(page, false);
    assert.equal(await page.title(), 'hello there · chatplane');
    assert.equal(await favicon(page), 'favicon.svg');
    assert.equal((await notes(page)).length, 1);
    assert.deepEqual(errors, []);
    await close();
  });

  test('a run that waits for an approval in a hidden tab says it needs the person; seen again, the page\'s own title returns', async () => {
    const { page, errors, close } = await open(browser, stack.url + '/', 'granted');
    const id = await namedChat(page, stack);
    await setHidden(page, true);
    await stack.mock.script([{ tool_calls: [{ name: 'calc', arguments: { expression: '6*7' } }] }, { text: 'It is 42.' }]);
    await send(page, 'compute 6*7');
    await page.locator(`${tid('approval-card')}[data-status="pending"]`).waitFor({ timeout: 10000 });
    await page.waitForFunction(() => document.title.startsWith('⏸'));
    assert.equal(await page.title(), '⏸ Needs you — hello there');
    assert.equal(await favicon(page), 'favicon-wait.svg');
    assert.deepEqual(await notes(page), [{ title: '⏸ Needs you — hello there', body: 'calc waits for your approval', tag: `chatplane-${id}` }]);

    await setHidden(page, false);
    assert.equal(await page.title(), '(Approval needed) hello there · chatplane');
    assert.equal(await favicon(page), 'favicon.svg');
    await page.locator(tid('approve-button')).click();
    await waitStopped(page, 'completed');
    assert.equal(await page.title(), 'hello there · chatplane');
    assert.equal((await notes(page)).length, 1);
    assert.deepEqual(errors, []);
    await close();
  });

  test('a stop for another reason says Stopped, with the reason in the notification', async () => {
    const { page, errors, close } = await open(browser, stack.url + '/', 'granted');
    await namedChat(page, stack);
    await setHidden(page, true);
    // A call that fails the same way each time (clock's answer changes
    // with the second, so a repeat of a good one is not always a loop).
    const bad = { tool_calls: [{ name: 'clock', arguments: { timezone: 'Nowhere/Else' } }] };
    await stack.mock.script([bad, bad, bad, bad]);
    await send(page, 'keep asking the time');
    await waitStopped(page, 'repeated_failures');
    await page.waitForFunction(() => document.title.startsWith('■'));
    assert.equal(await page.title(), '■ Stopped — hello there');
    assert.equal(await favicon(page), 'favicon-stopped.svg');
    const [note] = await notes(page);
    assert.equal(note.title, '■ Stopped — hello there');
    assert.match(note.body, /^Tools kept failing: /);
    await setHidden(page, false);
    assert.equal(await favicon(page), 'favicon.svg');
    assert.deepEqual(errors, []);
    await close();
  });

  test('without permission: never asked on load, no notification but the title; the header button asks, and then they come', async () => {
    const { page, errors, close } = await open(browser, stack.url + '/', 'default', 'granted');
    await namedChat(page, stack);
    assert.equal(await page.evaluate(() => window.__asked), 0);
    const button = page.locator(tid('notify-button'));
    assert.equal(await button.isVisible(), true);
    assert.equal(await button.textContent(), 'Notify me');

    await setHidden(page, true);
    await stack.mock.script([{ text: 'Quietly.' }]);
    await send(page, 'no notification yet');
    await waitStopped(page, 'completed');
    await page.waitForFunction(() => document.title.startsWith('✓'));
    assert.equal(await page.title(), '✓ Done — hello there');
    assert.deepEqual(await notes(page), []);
    await setHidden(page, false);

    await button.click();
    await button.waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => window.__asked), 1);
    await setHidden(page, true);
    await stack.mock.script([{ text: 'Loudly.' }]);
    await send(page, 'now with one');
    await waitStopped(page, 'completed');
    await page.waitForFunction(() => window.__notes.length === 1);
    assert.equal((await notes(page))[0].title, '✓ Done — hello there');
    assert.deepEqual(errors, []);
    await close();
  });

  test('a chat opened in a hidden tab while it waits: the replayed request is no news, the run\'s end is', async () => {
    const { body: chat } = await api(stack.url, 'POST', '/api/sessions', {});
    await stack.mock.script([{ tool_calls: [{ name: 'calc', arguments: { expression: '6*7' } }] }, { text: 'It is 42.' }]);
    assert.equal((await api(stack.url, 'POST', `/api/sessions/${chat.id}/runs`, { message: 'compute 6*7' })).status, 202);
    let pending = [];
    for (let i = 0; i < 100 && !pending.length; i++) {
      pending = (await api(stack.url, 'GET', `/api/sessions/${chat.id}/approvals?status=pending`)).body.approvals;
      if (!pending.length) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(pending.length, 1);

    const { page, errors, close } = await open(browser, `${stack.url}/#/sessions/${chat.id}`, 'granted', 'granted', true);
    await page.locator(`${tid('approval-card')}[data-status="pending"]`).waitFor({ timeout: 10000 });
    await page.waitForFunction(() => document.title.startsWith('(Approval needed)'));
    assert.deepEqual(await notes(page), []);
    assert.equal(await favicon(page), 'favicon.svg');

    assert.equal((await api(stack.url, 'POST', `/api/sessions/${chat.id}/approvals/${pending[0].id}`, { decision: 'approve' })).status, 200);
    await waitStopped(page, 'completed');
    await page.waitForFunction(() => document.title.startsWith('✓'));
    assert.equal(await page.title(), '✓ Done — compute 6*7');
    assert.deepEqual((await notes(page)).map((n) => n.title), ['✓ Done — compute 6*7']);
    assert.deepEqual(errors, []);
    await close();
  });

  test('notifications refused: no button, no notification', async () => {
    const { page, errors, close } = await open(browser, stack.url + '/', 'denied');
    await namedChat(page, stack);
    assert.equal(await page.locator(tid('notify-button')).isHidden(), true);
    await setHidden(page, true);
    await stack.mock.script([{ text: 'Quietly.' }]);
    await send(page, 'no notification');
    await waitStopped(page, 'completed');
    await page.waitForFunction(() => document.title.startsWith('✓'));
    assert.deepEqual(await notes(page), []);
    assert.equal(await page.evaluate(() => window.__asked), 0);
    assert.deepEqual(errors, []);
    await close();
  });
});
