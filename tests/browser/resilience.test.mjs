// The page when things around it change: the server restarts under it, the
// screen is narrow, the theme is dark, the API wants a login; and what a
// keyboard or screen reader user gets.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import path from 'node:path';

import { startServer, runBinary } from '../integration/lib/server.mjs';
import { startMock } from '../scenarios/lib.mjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { useStack, launchBrowser, openPage, tid, send, waitStopped, newChat, api } from './lib.mjs';

// What the browser logs while the server is away.
const DOWN = /ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_CONNECTION_RESET|503/;

describe('a server restart', () => {
  let browser, mock, srv;

  before(async () => {
    browser = await launchBrowser();
    mock = await startMock();
  });

  after(async () => {
    await browser?.close();
    if (srv) {
      await srv.stop();
      srv.cleanup();
    }
    mock?.stop();
  });

  test('the page reconnects after the server restarts and resumes without duplicates', async () => {
    const config = { llm: { base_url: mock.url, model: 'mock-model' } };
    const webRoot = process.env.CHATPLANE_WEB_ROOT ? ['--web-root', process.env.CHATPLANE_WEB_ROOT] : [];
    srv = await startServer({ config, args: webRoot });
    const p = await openPage(browser, srv.url + '/');
    const { page } = p;
    const id = await newChat(page);
    await mock.script([{ tool_calls: [{ name: 'calc', arguments: { expression: '3*3' } }] }, { text: 'Nine.' }]);
    await send(page, 'before the restart');
    await waitStopped(page, 'completed');

    // A slow answer is streaming when the server goes away.
    await mock.script([{ text: 'This answer never finishes. '.repeat(30), piece_chars: 4, delay_ms: 60 }]);
    await send(page, 'during the restart');
    await page.locator(`${tid('message')}[data-role="assistant"].streaming`).waitFor();
    const port = srv.port;
    const dir = srv.dir;
    await srv.stop('SIGKILL');
    await page.locator('#conn-notice').waitFor({ state: 'visible', timeout: 10000 });
    assert.equal((await page.locator('#conn-notice').textContent()).trim(), 'Reconnecting…');

    // Same database, same port: the run that was going is interrupted.
    srv = await startServer({ config, args: webRoot, dir, listen: `127.0.0.1:${port}` });
    await page.locator('#conn-notice').waitFor({ state: 'hidden', timeout: 15000 });
    await waitStopped(page, 'interrupted');
    assert.equal(await page.locator(tid('stop-reason')).textContent(), 'Interrupted');
    assert.deepEqual(await page.locator(tid('action-button')).evaluateAll((els) => els.map((e) => e.getAttribute('data-kind'))), ['continue']);

    await mock.reset();
    await mock.script([{ tool_calls: [{ name: 'calc', arguments: { expression: '4*4' } }] }, { text: 'Sixteen.' }]);
    await send(page, 'after the restart');
    await waitStopped(page, 'completed');

    // Exactly what the server has: each message and execution once.
    const msgs = (await api(srv.url, 'GET', `/api/sessions/${id}/messages`)).body.messages;
    const want = msgs.filter((m) => m.role === 'user' || (m.role === 'assistant' && m.content)).map((m) => [m.role, m.content]);
    const shown = await page.locator(tid('message')).evaluateAll((els) => els.map((e) => [e.getAttribute('data-role'), e.querySelector('.bubble-body > p, .bubble-body').textContent]));
    assert.deepEqual(shown.map((s) => s[0]), want.map((w) => w[0]));
    assert.deepEqual(shown.filter((s) => s[0] === 'user').map((s) => s[1]), ['before the restart', 'during the restart', 'after the restart']);
    assert.equal(shown.filter((s) => s[1].startsWith('Nine.')).length, 1);
    assert.equal(shown.filter((s) => s[1].startsWith('Sixteen.')).length, 1);
    // One timeline group per run, newest first; opened, each shows its
    // executions once.
    const runs = (await api(srv.url, 'GET', `/api/sessions/${id}/runs`)).body.runs;
    assert.deepEqual(await page.locator(tid('timeline-run')).evaluateAll((els) => els.map((e) => e.getAttribute('data-run-id'))), runs.map((r) => r.id));
    const closed = page.locator(`${tid('run-toggle')}[aria-expanded="false"]`);
    while (await closed.count()) await closed.first().click();
    const ids = await page.locator(tid('tool-execution')).evaluateAll((els) => els.map((e) => e.getAttribute('data-execution-id')));
    const tools = (await api(srv.url, 'GET', `/api/sessions/${id}/tools`)).body.tool_executions;
    assert.deepEqual(ids, runs.flatMap((r) => tools.filter((t) => t.run_id === r.id).map((t) => t.id)));
    assert.equal(new Set(ids).size, 2);
    p.assertClean(DOWN);
    await p.close();
  });
});

describe('layout, theme, keyboard and login', () => {
  let browser, stack;

  useStack((b, s) => { browser = b; stack = s; });

  test('on a narrow screen the three columns become tabs', async () => {
    const p = await openPage(browser, stack.url + '/', { viewport: { width: 390, height: 844 } });
    const { page } = p;
    await page.locator('#tab-sessions').click();
    await newChat(page);
    const visible = () => page.evaluate(() => ['panel-sessions', 'panel-chat', 'panel-control'].filter((id) => document.getElementById(id).offsetParent !== null));
    assert.equal(await page.locator('.tabs').isVisible(), true);
    assert.deepEqual(await visible(), ['panel-chat']);
    assert.equal(await page.locator('#tab-chat').getAttribute('aria-selected'), 'true');

    await stack.mock.script([{ text: 'A short answer that streams for a moment. '.repeat(6), piece_chars: 6, delay_ms: 60 }]);
    await send(page, 'hello from a phone');
    // The Control tab shows that a run is going without opening it.
    await page.locator('#tab-dot[data-status="responding"]').waitFor();
    await page.locator('#tab-control').click();
    assert.deepEqual(await visible(), ['panel-control']);
    assert.equal(await page.locator(tid('status-indicator')).isVisible(), true);
    assert.equal(await page.locator(tid('stop-button')).isVisible(), true);
    await waitStopped(page, 'completed');

    // Arrow keys move between tabs, as in any tab list.
    await page.locator('#tab-control').focus();
    await page.keyboard.press('ArrowLeft');
    assert.deepEqual(await visible(), ['panel-chat']);
    await page.keyboard.press('ArrowLeft');
    assert.deepEqual(await visible(), ['panel-sessions']);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-sessions');
    assert.ok((await page.locator(tid('session-item')).count()) >= 1);
    await page.locator(tid('session-item')).first().click();
    assert.deepEqual(await visible(), ['panel-chat']);
    // Nothing wider than the screen.
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true);
    p.assertClean();
    await p.close();
  });

  test('wide screens show the three columns side by side, in light and dark', async () => {
    for (const colorScheme of ['light', 'dark']) {
      const p = await openPage(browser, stack.url + '/', { colorScheme });
      const { page } = p;
      await page.locator(tid('status-indicator')).waitFor();
      assert.equal(await page.locator('.tabs').isVisible(), false);
      const boxes = await page.evaluate(() => ['panel-sessions', 'panel-chat', 'panel-control'].map((id) => document.getElementById(id).getBoundingClientRect().x));
      assert.ok(boxes[0] < boxes[1] && boxes[1] < boxes[2], `columns at ${boxes}`);
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      const [r, g, b] = bg.match(/\d+/g).map(Number);
      const light = (r + g + b) / 3 > 128;
      assert.equal(light, colorScheme === 'light', `${colorScheme} background ${bg}`);
      p.assertClean();
      await p.close();
    }
  });

  test('everything is reachable by keyboard with a visible focus, and status changes are announced', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    const live = page.locator('#live-region');
    assert.equal(await live.getAttribute('aria-live'), 'polite');
    // Tab through the page and note what takes the focus.
    const reached = new Set();
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press('Tab');
      const f = await page.evaluate(() => {
        const e = document.activeElement;
        const style = getComputedStyle(e);
        return { id: e.getAttribute('data-testid') || e.id, outline: style.outlineStyle, width: style.outlineWidth, shadow: style.boxShadow };
      });
      reached.add(f.id);
      if (f.id === 'run-button') assert.notEqual(f.outline, 'none', 'the focused button shows a ring');
    }
    for (const want of ['new-session', 'session-item', 'message-input', 'send-button', 'mode-select']) assert.ok(reached.has(want), `${want} in ${[...reached]}`);

    await page.locator(tid('message-input')).focus();
    await page.keyboard.type('hello');
    await page.keyboard.press('Enter');
    await waitStopped(page, 'completed');
    await page.waitForFunction(() => /Run stopped: Finished/.test(document.getElementById('live-region').textContent));
    p.assertClean();
    await p.close();
  });

  test('the login form shows when the API answers 401, and signing in loads the page', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    let authed = false;
    const unauthorized = { status: 401, contentType: 'application/json', body: '{"error":{"code":"unauthorized","message":"a token is needed"}}' };
    await page.route('**/api/**', (route) => {
      const url = new URL(route.request().url());
      if (url.pathname === '/api/login') {
        const { token } = route.request().postDataJSON();
        if (token === 'right-token') {
          authed = true;
          return route.fulfill({ status: 204 });
        }
        return route.fulfill(unauthorized);
      }
      return authed ? route.continue() : route.fulfill(unauthorized);
    });
    await page.goto(stack.url + '/');
    const form = page.locator(tid('login-form'));
    await form.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'login-token');
    await page.locator('#login-token').fill('wrong-token');
    await page.keyboard.press('Enter');
    await page.locator('#login-error').waitFor();
    assert.equal(await page.locator('#login-error').textContent(), 'That token is not valid.');
    await page.locator('#login-token').fill('right-token');
    await form.locator('button[type="submit"]').click();
    await form.waitFor({ state: 'hidden' });
    await page.locator('#model-badge').waitFor();
    assert.equal(await page.locator('#model-badge').textContent(), 'mock-model');
    // The page behind the dialog is usable again.
    assert.equal(await page.evaluate(() => document.querySelector('.layout').inert), false);
    assert.deepEqual(errors, []);
    await context.close();
  });
});

describe('signing in with a real token', () => {
  let browser, mock, srv, dir, token;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'chatplane-browser-auth-'));
    const made = await runBinary(['token', 'create', 'alice', '--db', `sqlite:${path.join(dir, 'chat.db')}`]);
    if (made.code !== 0) return; // a binary without tokens: the test below says so
    token = made.stdout.trim().split('\n').pop();
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

  test('the form takes a token, the chat and its live events work with the cookie, and Sign out ends it', async (t) => {
    if (!token) return t.skip('this build has no `chatplane token`');
    const p = await openPage(browser, srv.url + '/');
    const { page, context } = p;
    const form = page.locator(tid('login-form'));
    await form.waitFor();
    await page.locator('#login-token').fill('cpt_wrong');
    await page.keyboard.press('Enter');
    await page.locator('#login-error').waitFor();
    await page.locator('#login-token').fill(token);
    await page.keyboard.press('Enter');
    await form.waitFor({ state: 'hidden' });
    const cookie = (await context.cookies()).find((c) => c.name === 'chatplane_session');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    await page.locator('#logout').waitFor();

    await newChat(page);
    await mock.script([{ tool_calls: [{ name: 'calc', arguments: { expression: '5*5' } }] }, { text: 'Twenty-five.', piece_chars: 3, delay_ms: 20 }]);
    await send(page, 'signed in');
    await waitStopped(page, 'completed');
    assert.equal(await page.locator(`${tid('message')}[data-role="assistant"]`).textContent(), 'Twenty-five.');
    assert.equal(await page.locator(tid('tool-execution')).count(), 1);

    await page.locator('#logout').click();
    await form.waitFor();
    await page.reload();
    await form.waitFor();
    assert.equal(await page.locator(tid('message')).count(), 0);
    // Only the page's own 401s, which are how it learns to show the form.
    p.assertClean(/status of 401/);
    await p.close();
  });
});
