// The conversation column in a real browser: the empty page, text that
// streams in before the run ends, the status indicator following the run,
// the keyboard, Markdown, and model or tool output that must stay text.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from '../integration/lib/server.mjs';
import { useStack, launchBrowser, openPage, tid, send, waitStopped, openSessionId, recordStatuses, newChat, api, until } from './lib.mjs';

const SECURITY = {
  'content-security-policy': "default-src 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

describe('the conversation', () => {
  let browser, stack;

  useStack((b, s) => { browser = b; stack = s; });

  test('a first visit shows the empty state, the model and the security headers, with no console error', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    for (const [k, v] of Object.entries(SECURITY)) assert.equal(p.response.headers()[k], v, k);
    await page.locator('#empty-state h2').waitFor();
    assert.equal(await page.locator('#empty-state h2').textContent(), 'Start a conversation');
    assert.equal(await page.locator('#model-badge').textContent(), 'mock-model');
    assert.equal(await page.locator(tid('message')).count(), 0);
    assert.equal(await page.locator(tid('session-item')).count(), 0);
    assert.equal(await page.locator(tid('status-indicator')).getAttribute('data-status'), 'idle');
    // Every file the page loaded came with the security headers.
    for (const file of ['/app.js', '/app.css', '/markdown.js', '/favicon.svg']) {
      const r = await fetch(stack.url + file);
      assert.equal(r.status, 200, file);
      for (const [k, v] of Object.entries(SECURITY)) assert.equal(r.headers.get(k), v, `${file} ${k}`);
    }
    p.assertClean();
    await p.close();
  });

  test('text streams in before the run ends, and the status indicator follows the run live', async () => {
    const answer = 'Streaming works: here is a sentence that arrives a few characters at a time. '.repeat(3).trim();
    await stack.mock.script([
      { tool_calls: [{ name: 'calc', arguments: { expression: '2+2' } }], first_delay_ms: 300 },
      { text: answer, piece_chars: 6, delay_ms: 90 },
    ]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    await recordStatuses(page);
    await send(page, 'count for me');

    const user = page.locator(`${tid('message')}[data-role="user"]`);
    await user.waitFor();
    assert.equal(await user.textContent(), 'count for me');
    // While tokens arrive: part of the answer is on the page and the
    // server still says the run is going.
    const streaming = page.locator(`${tid('message')}[data-role="assistant"].streaming`);
    await streaming.waitFor({ timeout: 10000 });
    await page.waitForFunction(() => {
      const m = document.querySelector('[data-testid="message"][data-role="assistant"].streaming');
      return m && m.textContent.length >= 12;
    });
    const partial = await streaming.textContent();
    const id = await openSessionId(page);
    const during = await api(stack.url, 'GET', `/api/sessions/${id}`);
    assert.equal(during.body.status, 'running');
    assert.ok(answer.startsWith(partial) && partial.length < answer.length, `partial text: ${partial}`);
    assert.equal(await page.locator(tid('status-indicator')).getAttribute('data-status'), 'responding');
    assert.match(await page.locator('#status-elapsed').textContent(), /^\d+:\d\d$/);

    await waitStopped(page, 'completed');
    const done = page.locator(`${tid('message')}[data-role="assistant"]`);
    assert.equal(await done.count(), 1);
    assert.equal(await done.textContent(), answer);
    assert.equal(await page.locator('.streaming').count(), 0);

    const log = await page.evaluate(() => window.__statusLog.map((s) => [s.status, s.detail]));
    const statuses = log.map((s) => s[0]);
    assert.equal(statuses[0], 'idle');
    assert.equal(statuses[statuses.length - 1], 'idle');
    for (const s of ['thinking', 'tool_running', 'responding']) assert.ok(statuses.includes(s), `${s} in ${statuses}`);
    assert.ok(statuses.indexOf('thinking') < statuses.indexOf('responding'));
    assert.deepEqual(log.find((s) => s[0] === 'tool_running'), ['tool_running', 'running calc']);
    // The session list shows the chat, titled after the message.
    await page.locator(`${tid('session-item')}[data-session-id="${id}"] .session-title`).filter({ hasText: 'count for me' }).waitFor();
    p.assertClean();
    await p.close();
  });

  test('opening a chat while its run streams shows the text so far and follows it to the end', async () => {
    const answer = 'Joined in the middle, this answer still arrives whole and only once. '.repeat(3).trim();
    await stack.mock.script([{ text: answer, piece_chars: 5, delay_ms: 100 }]);
    const s = (await api(stack.url, 'POST', '/api/sessions', {})).body;
    await api(stack.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'started elsewhere' });
    // Wait until part of the answer is stored, then open the page.
    await until(async () => {
      const r = await api(stack.url, 'GET', `/api/sessions/${s.id}/events`, undefined, { Accept: 'application/json' });
      return r.body.events.filter((e) => e.type === 'token').length >= 4;
    });
    const p = await openPage(browser, `${stack.url}/#/sessions/${s.id}`);
    const { page } = p;
    const streaming = page.locator(`${tid('message')}[data-role="assistant"].streaming`);
    await streaming.waitFor();
    const early = await streaming.textContent();
    assert.ok(early.length >= 20 && answer.startsWith(early), `joined with: ${early}`);
    assert.equal(await page.locator(tid('status-indicator')).getAttribute('data-status'), 'responding');
    await waitStopped(page, 'completed');
    assert.deepEqual(await page.locator(tid('message')).evaluateAll((els) => els.map((e) => [e.getAttribute('data-role'), e.textContent])),
      [['user', 'started elsewhere'], ['assistant', answer]]);
    p.assertClean();
    await p.close();
  });

  test('Enter sends, Shift+Enter starts a new line, and the text is sent as typed', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    const input = page.locator(tid('message-input'));
    await input.click();
    await page.keyboard.type('first line');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('second line');
    assert.equal(await input.inputValue(), 'first line\nsecond line');
    assert.equal(await page.locator(tid('message')).count(), 0);
    await page.keyboard.press('Enter');
    await waitStopped(page, 'completed');
    assert.equal(await input.inputValue(), '');
    const user = page.locator(`${tid('message')}[data-role="user"]`);
    assert.equal(await user.evaluate((e) => e.innerText), 'first line\nsecond line');
    assert.equal(await page.locator(`${tid('message')}[data-role="assistant"]`).textContent(), 'Hello from the mock model.');
    p.assertClean();
    await p.close();
  });

  test('answers are drawn as Markdown, with links that open safely', async () => {
    const md = [
      'Here is **bold**, *italic* and `inline code`.',
      '',
      '- one',
      '- two',
      '',
      '1. first',
      '2. second',
      '',
      '```c',
      'int main(void) { return 0; }',
      '```',
      '',
      'See [the docs](https://example.com/docs) or [this](javascript:alert(1)).',
    ].join('\n');
    await stack.mock.script([{ text: md, piece_chars: 40 }]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    await send(page, 'format something');
    await waitStopped(page, 'completed');
    const body = page.locator(`${tid('message')}[data-role="assistant"] .bubble-body`);
    assert.equal(await body.locator('strong').textContent(), 'bold');
    assert.equal(await body.locator('em').textContent(), 'italic');
    assert.equal(await body.locator('p > code').textContent(), 'inline code');
    assert.deepEqual(await body.locator('ul > li').allTextContents(), ['one', 'two']);
    assert.deepEqual(await body.locator('ol > li').allTextContents(), ['first', 'second']);
    assert.equal(await body.locator('pre > code').textContent(), 'int main(void) { return 0; }');
    const links = body.locator('a');
    assert.equal(await links.count(), 1);
    assert.equal(await links.getAttribute('href'), 'https://example.com/docs');
    assert.equal(await links.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await links.getAttribute('target'), '_blank');
    assert.match(await body.textContent(), /or this\.$/);
    p.assertClean();
    await p.close();
  });

  test('model and tool output with <script> and <img onerror> stays inert text', async () => {
    const evil = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> **done** [x](javascript:window.__pwned=3)';
    await stack.mock.script([
      { tool_calls: [{ name: 'calc', arguments: { expression: '<img src=x onerror="window.__pwned=5">' } }] },
      { tool_calls: [{ name: 'clock', arguments: { timezone: '<script>window.__pwned=4</script>' } }] },
      { text: evil, piece_chars: 7 },
    ]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    await send(page, '<img src=x onerror="window.__pwned=6"> from the user');
    await waitStopped(page, 'completed');

    const assistant = page.locator(`${tid('message')}[data-role="assistant"]`);
    assert.equal(await assistant.textContent(), '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> done x');
    assert.equal(await page.locator(`${tid('message')}[data-role="user"]`).textContent(), '<img src=x onerror="window.__pwned=6"> from the user');
    // Open both executions: arguments and results are shown as text.
    const rows = page.locator(tid('tool-execution'));
    assert.equal(await rows.count(), 2);
    for (let i = 0; i < 2; i++) await rows.nth(i).locator('.tool-head').click();
    const details = page.locator(tid('tool-details'));
    assert.match(await details.nth(0).textContent(), /"expression": "<img src=x onerror=\\"window.__pwned=5\\">"/);
    assert.match(await details.nth(1).textContent(), /unknown time zone '<script>window.__pwned=4<\/script>'/);
    // The guardrail notice quotes the failing tool's output, as text too.
    assert.match(await page.locator(tid('guardrail-notice')).textContent(), /<script>window.__pwned=4<\/script>/);

    await page.waitForTimeout(300);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.equal(await page.locator('main img, main script').count(), 0);
    assert.equal(await page.locator('main a[href^="javascript:"]').count(), 0);
    p.assertClean();
    await p.close();
  });
});

describe('the demo brain', () => {
  let browser, srv;

  before(async () => {
    browser = await launchBrowser();
    srv = await startServer(process.env.CHATPLANE_WEB_ROOT ? { args: ['--web-root', process.env.CHATPLANE_WEB_ROOT] } : {});
  });

  after(async () => {
    await browser?.close();
    if (srv) {
      await srv.stop();
      srv.cleanup();
    }
  });

  test('without a model the page says so, and a suggested question runs through the real engine', async () => {
    const p = await openPage(browser, srv.url + '/');
    const { page } = p;
    await page.locator('#empty-state h2').waitFor();
    assert.equal(await page.locator('#model-badge').textContent(), 'Demo brain');
    assert.match(await page.locator('#empty-state').textContent(), /built-in demo brain answers/);
    await page.locator('#empty-state .chip-button', { hasText: 'What is 6*7?' }).click();
    assert.equal(await page.locator(tid('message-input')).inputValue(), 'What is 6*7?');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'message-input');
    await page.keyboard.press('Enter');
    await waitStopped(page, 'completed');
    assert.equal(await page.locator(`${tid('message')}[data-role="assistant"]`).textContent(), '6*7 = 42.');
    assert.equal(await page.locator(tid('tool-execution')).count(), 1);
    assert.equal(await page.locator(`${tid('tool-execution')} .tool-args`).textContent(), 'expression: 6*7');
    assert.equal(await page.locator(tid('tool-call-note')).textContent(), 'Called calc');
    // The chat was made by the first message, and the address names it.
    const id = await openSessionId(page);
    assert.equal((await api(srv.url, 'GET', `/api/sessions/${id}`)).body.title, 'What is 6*7?');
    p.assertClean();
    await p.close();
  });
});
