// Steering a run from the page: a chat deleted elsewhere, Stop and Escape
// in the composer (a narrow screen too), what the composer says during a
// run, the meters between budget events, the word for going on, and the
// spend when prices are configured.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { useStack, openPage, tid, send, waitStopped, newChat, openSessionId, api } from './lib.mjs';

const LONG_TEXT = 'This answer takes its time. '.repeat(40);

async function used(page, dim) {
  return Number(await page.locator(tid(`budget-${dim}`)).getAttribute('data-used'));
}

function overlaps(a, b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

describe('steering a run', () => {
  let browser, stack;

  useStack((b, s) => { browser = b; stack = s; });

  test('a chat deleted elsewhere leaves the list, another opens, and a notice says so', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const first = await newChat(page);
    const second = await newChat(page);
    assert.equal(await openSessionId(page), second);
    assert.equal((await api(stack.url, 'DELETE', `/api/sessions/${second}`)).status, 204);
    const notice = page.locator(tid('chat-notice'));
    await notice.waitFor({ timeout: 10000 });
    assert.equal(await notice.textContent(), 'This chat was deleted.');
    assert.equal(await notice.getAttribute('role'), 'status');
    await page.waitForFunction((id) => location.hash === `#/sessions/${id}`, first);
    await page.locator(`${tid('session-item')}[data-session-id="${second}"]`).waitFor({ state: 'detached' });
    assert.equal(await page.locator('#conn-notice').isHidden(), true);

    // The last chat deleted: the empty state, and sending makes a new chat.
    assert.equal((await api(stack.url, 'DELETE', `/api/sessions/${first}`)).status, 204);
    await page.waitForFunction(() => location.hash === '');
    await page.locator('#empty-state h2').waitFor();
    assert.equal(await notice.textContent(), 'This chat was deleted.');
    assert.equal(await page.locator(tid('session-item')).count(), 0);
    assert.equal(await page.locator('#toasts > *').count(), 0, 'no raw error');
    await stack.mock.script([{ text: 'Fresh start.' }]);
    await send(page, 'again');
    await waitStopped(page, 'completed');
    assert.equal(await notice.isHidden(), true);
    p.assertClean(/404/);
    await p.close();
  });

  test('sending into a chat deleted elsewhere shows the notice, not a raw error, and keeps the text', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    // The chat's stream is cut off from its start, so only the send can
    // find out: cut off after the chat opened, a stream that had connected
    // already saw the deletion itself.
    await page.route('**/events?**', (route) => route.abort());
    const id = await newChat(page);
    assert.equal((await api(stack.url, 'DELETE', `/api/sessions/${id}`)).status, 204);
    await send(page, 'are you there?');
    const notice = page.locator(tid('chat-notice'));
    await notice.waitFor();
    assert.equal(await notice.textContent(), 'This chat was deleted.');
    assert.equal(await page.locator(tid('message-input')).inputValue(), 'are you there?');
    assert.equal(await page.locator('#toasts > *').count(), 0, 'no raw error');
    await page.locator(`${tid('session-item')}[data-session-id="${id}"]`).waitFor({ state: 'detached' });
    assert.notEqual(await page.evaluate(() => location.hash), `#/sessions/${id}`);
    p.assertClean(/404|ERR_FAILED/);
    await p.close();
  });

  test('a chat opened while the page is still loading stays open and is not fetched again', async () => {
    // The page's first list of chats is held back until the new chat has
    // been deleted, so the page finishes loading after both.
    await api(stack.url, 'POST', '/api/sessions', {});
    const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    const page = await context.newPage();
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    await page.route('**/api/sessions?limit=50', async (route) => {
      await held;
      await route.continue();
    });
    const fetched = [];
    page.on('request', (r) => {
      const path = new URL(r.url()).pathname;
      if (r.method() === 'GET' && /^\/api\/sessions\/[^/]+$/.test(path)) fetched.push(path);
    });
    await page.route('**/events?**', (route) => route.abort());
    await page.goto(stack.url + '/');
    const id = await newChat(page);
    assert.equal((await api(stack.url, 'DELETE', `/api/sessions/${id}`)).status, 204);
    const listed = page.waitForResponse((r) => new URL(r.url()).search === '?limit=50');
    release();
    await page.unroute('**/api/sessions?limit=50');
    await listed;
    await send(page, 'still there?');
    const notice = page.locator(tid('chat-notice'));
    await notice.waitFor();
    assert.equal(await notice.textContent(), 'This chat was deleted.');
    assert.equal(await page.locator(tid('message-input')).inputValue(), 'still there?');
    assert.deepEqual(fetched.filter((p) => p === `/api/sessions/${id}`), [`/api/sessions/${id}`]);
    await context.close();
  });

  test('on a narrow screen the Chat tab has Stop, sending during a run is explained in the composer, and Escape stops', async () => {
    await stack.mock.script([{ text: LONG_TEXT, piece_chars: 5, delay_ms: 50 }]);
    const chat = (await api(stack.url, 'POST', '/api/sessions', {})).body;
    const p = await openPage(browser, `${stack.url}/#/sessions/${chat.id}`, { viewport: { width: 390, height: 844 } });
    const { page } = p;
    await page.locator('#empty-state h2').waitFor();
    await send(page, 'write a lot');
    await page.locator(`${tid('message')}[data-role="assistant"].streaming`).waitFor();
    const stop = page.locator(tid('composer-stop'));
    assert.equal(await stop.isVisible(), true);
    assert.equal(await page.locator(tid('send-button')).isVisible(), false);

    // A message sent during the run stays in the box; the composer's own
    // hint says why, inside its own row: nothing covers the composer.
    await send(page, 'one more thing');
    assert.equal(await page.locator(tid('message-input')).inputValue(), 'one more thing');
    const hint = page.locator('#composer-hint');
    assert.equal(await hint.isVisible(), true);
    assert.equal(await hint.textContent(), 'A run is going: wait for it, or Stop it (Escape, with the box empty)');
    assert.equal(await page.locator('#toasts > *').count(), 0);
    const boxes = await Promise.all(['#composer-hint', '#message-input', '#composer-stop'].map((s) => page.locator(s).boundingBox()));
    assert.equal(overlaps(boxes[0], boxes[1]), false, 'hint and text box');
    assert.equal(overlaps(boxes[0], boxes[2]), false, 'hint and Stop');
    assert.ok(boxes[0].y + boxes[0].height <= 844, 'the hint is on screen');

    // Escape with text typed leaves the run alone; in an empty box it stops.
    await page.locator(tid('message-input')).press('Escape');
    assert.equal(await page.locator(`${tid('message')}[data-role="assistant"].streaming`).count(), 1);
    await page.locator(tid('message-input')).fill('');
    await page.locator(tid('message-input')).press('Escape');
    await page.locator(`${tid('run-note')}[data-tone="neutral"]`).waitFor();
    assert.equal(await stop.isVisible(), false);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'message-input');
    p.assertClean();
    await p.close();
  });

  test('the Stop in the composer stops the run and keeps the focus in the message box', async () => {
    await stack.mock.script([{ text: LONG_TEXT, piece_chars: 5, delay_ms: 50 }]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    await send(page, 'write a lot');
    await page.locator(`${tid('message')}[data-role="assistant"].streaming`).waitFor();
    await page.locator(tid('composer-stop')).click();
    await waitStopped(page, 'user_stopped');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'message-input');
    p.assertClean();
    await p.close();
  });

  test('the meters move with the run: steps and tokens while the first answer streams, tokens kept after a stop', async () => {
    await stack.mock.script([{ text: LONG_TEXT, piece_chars: 5, delay_ms: 50 }]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const id = await newChat(page);
    await send(page, 'write a lot');
    await page.locator(`${tid('message')}[data-role="assistant"].streaming`).waitFor();
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="budget-tokens"]').getAttribute('data-used')) >= 3);
    assert.equal(await used(page, 'steps'), 1);
    assert.equal(await page.locator(`${tid('budget-steps')} .meter-value`).textContent(), '1 / 10');
    await page.locator(tid('stop-button')).click();
    await waitStopped(page, 'user_stopped');
    const run = (await api(stack.url, 'GET', `/api/sessions/${id}/runs`)).body.runs[0];
    assert.ok(run.usage.tokens > 0, `the stopped step counted ${run.usage.tokens} tokens`);
    assert.equal(await used(page, 'tokens'), run.usage.tokens);
    assert.equal(await used(page, 'steps'), 1);
    p.assertClean();
    await p.close();
  });

  test('the run button names going on with the stopped run\'s own word (Retry after the model kept failing)', async () => {
    await stack.mock.script([{ status: 503 }, { status: 502 }, { status: 500 }]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    await page.locator(tid('mode-select')).selectOption('quick');
    await page.locator(`${tid('budget-steps')}[data-limit="3"]`).waitFor();
    assert.equal(await page.locator('#model-badge').getAttribute('data-tone'), 'good');
    await send(page, 'down');
    await waitStopped(page, 'max_retries');
    // The endpoint kept failing: the model badge says so until a run gets through.
    assert.equal(await page.locator('#model-badge').getAttribute('data-tone'), 'bad');
    assert.match(await page.locator('#model-badge').getAttribute('title'), /^The model endpoint failed on the last run: /);
    const action = page.locator(tid('action-button'));
    assert.equal(await action.textContent(), 'Retry');
    assert.equal(await page.locator('#run-label').textContent(), 'Retry');
    // A step budget stop offers Continue, and the button says Continue.
    await stack.mock.reset();
    await stack.mock.script([
      { tool_calls: [{ name: 'calc', arguments: { expression: '1+2' } }] },
      { tool_calls: [{ name: 'calc', arguments: { expression: '2+3' } }] },
      { text: 'Wrapped up.' },
    ]);
    await send(page, 'three steps');
    await waitStopped(page, 'max_steps');
    assert.equal(await page.locator('#model-badge').getAttribute('data-tone'), 'good');
    assert.equal(await page.locator(`${tid('action-button')}[data-kind="continue"]`).textContent(), 'Continue');
    assert.equal(await page.locator('#run-label').textContent(), 'Continue');
    p.assertClean();
    await p.close();
  });
});

describe('spend with prices configured', () => {
  let browser, stack;

  useStack((b, s) => { browser = b; stack = s; }, { config: { llm: { price_per_mtok: { input: 3, output: 15 } } } }, { reset: false });

  test('the cost meter shows the spend without a cost limit', async () => {
    await stack.mock.script([{ text: 'Priced.', usage: { prompt_tokens: 1000, completion_tokens: 1000, total_tokens: 2000 } }]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const id = await newChat(page);
    await send(page, 'how much?');
    await waitStopped(page, 'completed');
    const run = (await api(stack.url, 'GET', `/api/sessions/${id}/runs`)).body.runs[0];
    assert.equal(run.limits.cost_usd, null);
    assert.ok(Math.abs(run.usage.cost_usd - 0.018) < 1e-9, String(run.usage.cost_usd));
    const cost = page.locator(tid('budget-cost_usd'));
    assert.equal(await cost.getAttribute('data-used'), String(run.usage.cost_usd));
    assert.equal(await cost.locator('.meter-value').textContent(), '$0.018 / ∞');
    p.assertClean();
    await p.close();
  });
});
