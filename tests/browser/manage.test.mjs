// Managing chats on the page (docs/page.md, Managing chats): editing a sent
// message forks the chat and opens the fork, which links back; export
// downloads Markdown and JSON, also with authentication on; delete asks
// first; rename in place with the server's errors; other tabs follow a
// rename and a delete; the copy buttons of messages and code blocks; a new
// chat listed once whatever a poll of the list does meanwhile; axe on
// every new control.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { useStack, launchBrowser, openPage, tid, send, waitStopped, newChat, axeViolations, api, openSessionId } from './lib.mjs';
import { startMock } from '../scenarios/lib.mjs';
import { runBinary, startServer } from '../integration/lib/server.mjs';

const messagesOf = (page) => page.locator(tid('message')).evaluateAll((els) => els.map((e) => [e.getAttribute('data-role'), e.querySelector('.bubble-body').textContent]));

async function apiMessages(url, id) {
  const r = await api(url, 'GET', `/api/sessions/${id}/messages`);
  return r.body.messages.map((m) => [m.role, m.content]);
}

async function checkAxe(t, page, state) {
  await page.emulateMedia({ reducedMotion: 'reduce' });
  const v = await axeViolations(page);
  t.diagnostic(`axe ${state}: ${v.length} rules`);
  assert.deepEqual(v.map((x) => `${x.id} (${x.impact}): ${x.help}: ${x.targets.slice(0, 6).join(', ')}`), [], `axe violations in the ${state} state`);
}

// Two exchanges in a new chat: "one" answered "A1", "two" answered "A2".
async function twoExchanges(stack, page) {
  const id = await newChat(page);
  await stack.mock.script([{ text: 'A1' }, { text: 'A2' }]);
  await send(page, 'one');
  await waitStopped(page, 'completed');
  await send(page, 'two');
  await page.locator(tid('message')).filter({ hasText: 'A2' }).waitFor();
  await waitStopped(page, 'completed');
  return id;
}

async function download(page, which) {
  const [dl] = await Promise.all([page.waitForEvent('download'), (async () => {
    await page.locator(tid('export-session')).click();
    await page.locator(tid(which)).click();
  })()]);
  const file = await dl.path();
  return { name: dl.suggestedFilename(), text: readFileSync(file, 'utf8') };
}

describe('managing chats', () => {
  let browser, stack;

  useStack((b, s) => { browser = b; stack = s; });

  test('edit forks before the message, opens the fork, which links back; the source is unchanged', async (t) => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const source = await twoExchanges(stack, page);
    const users = page.locator(`${tid('message')}[data-role="user"]`);
    assert.equal(await page.locator(tid('edit-message')).count(), 2, 'one Edit per sent message');
    assert.equal(await page.locator(`${tid('message')}[data-role="assistant"] ${tid('edit-message')}`).count(), 0);

    // Escape cancels: the message is back as it was, the focus on Edit.
    await users.nth(0).locator(tid('edit-message')).click();
    const box = page.locator(tid('edit-input'));
    assert.equal(await box.inputValue(), 'one');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'edit-input');
    assert.equal(await users.nth(0).locator('.bubble').isVisible(), false);
    await box.fill('changed my mind');
    await checkAxe(t, page, 'edit box');
    await box.press('Escape');
    assert.equal(await page.locator(tid('edit-form')).count(), 0);
    assert.equal(await users.nth(0).locator('.bubble').isVisible(), true);
    assert.equal(await users.nth(0).locator('.bubble-body').textContent(), 'one');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'edit-message');

    // An empty text gets the server's reason and the box stays.
    await users.nth(1).locator(tid('edit-message')).click();
    await box.fill('   ');
    await box.press('Enter');
    await page.locator(tid('edit-error')).waitFor();
    assert.equal(await page.locator(tid('edit-error')).textContent(), 'message must be a non-empty string');
    assert.equal(await box.getAttribute('aria-invalid'), 'true');
    assert.equal(await openSessionId(page), source);

    // Saving forks before "two" with the new text and opens the fork, which
    // runs at once on the history before it.
    await stack.mock.script([{ text: 'A3' }]);
    const forked = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith(`/api/sessions/${source}/fork`));
    await box.fill('TWO');
    await page.locator(tid('edit-save')).click();
    const answer = await (await forked).json();
    assert.equal(answer.forked_from.session_id, source);
    await page.waitForFunction((want) => location.hash === want, `#/sessions/${answer.id}`);
    await page.locator(tid('message')).filter({ hasText: 'A3' }).waitFor();
    await waitStopped(page, 'completed');
    assert.deepEqual(await messagesOf(page), [['user', 'one'], ['assistant', 'A1'], ['user', 'TWO'], ['assistant', 'A3']]);
    const reqs = await stack.mock.requests();
    assert.deepEqual(reqs.at(-1).body.messages.filter((m) => m.role !== 'system').map((m) => [m.role, m.content]),
      [['user', 'one'], ['assistant', 'A1'], ['user', 'TWO']]);
    const link = page.locator(tid('forked-from'));
    await link.filter({ hasText: /^Forked from one$/ }).waitFor();
    assert.equal(await link.getAttribute('href'), `#/sessions/${source}`);
    await checkAxe(t, page, 'forked chat');
    await page.emulateMedia({ colorScheme: 'dark' });
    await checkAxe(t, page, 'forked chat, dark');
    await page.emulateMedia({ colorScheme: 'light' });

    // The link opens the source, which is as it was.
    await link.click();
    await page.waitForFunction((want) => location.hash === want, `#/sessions/${source}`);
    await page.locator(`${tid('session-item')}[aria-current="page"][data-session-id="${source}"]`).waitFor({ state: 'attached' });
    await page.locator(tid('message')).filter({ hasText: 'A2' }).waitFor();
    assert.deepEqual(await messagesOf(page), [['user', 'one'], ['assistant', 'A1'], ['user', 'two'], ['assistant', 'A2']]);
    assert.equal(await link.isVisible(), false, 'the source was not forked');
    assert.deepEqual(await apiMessages(stack.url, source), [['user', 'one'], ['assistant', 'A1'], ['user', 'two'], ['assistant', 'A2']]);
    // The refused empty edit is logged by the browser as a failed request.
    p.assertClean(/status of 400 \(Bad Request\)/);
    await p.close();
  });

  test('export downloads the chat as Markdown and as JSON, exactly as the API answers', async (t) => {
    await stack.mock.script([
      { tool_calls: [{ name: 'calc', arguments: { expression: '6*7' } }] },
      { text: 'It is **42**.\n\n```\nprint(42)\n```' },
    ]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const id = await newChat(page);
    await send(page, 'compute');
    await waitStopped(page, 'completed');

    await page.locator(tid('export-session')).click();
    assert.equal(await page.locator(tid('export-session')).getAttribute('aria-expanded'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'export-markdown');
    await checkAxe(t, page, 'export choices');
    // Escape closes the choices and gives the focus back.
    await page.keyboard.press('Escape');
    assert.equal(await page.locator(tid('export-markdown')).isVisible(), false);
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'export-session');

    for (const [which, format, ext] of [['export-markdown', 'markdown', 'md'], ['export-json', 'json', 'json']]) {
      const got = await download(page, which);
      const want = await api(stack.url, 'GET', `/api/sessions/${id}/export?format=${format}`);
      assert.equal(want.status, 200);
      assert.equal(got.name, `${id}.${ext}`);
      assert.equal(got.text, want.text, `the ${format} file is the API's answer`);
    }
    const md = (await download(page, 'export-markdown')).text;
    assert.match(md, /compute/);
    assert.match(md, /print\(42\)/);
    const json = JSON.parse((await download(page, 'export-json')).text);
    assert.deepEqual(Object.keys(json).sort(), ['messages', 'runs', 'session', 'tool_executions']);
    assert.equal(json.session.id, id);
    p.assertClean();
    await p.close();
  });

  test('delete asks first: Escape and Cancel keep the chat, Delete removes it and opens the next', async (t) => {
    const made = [];
    for (const title of ['oldest', 'middle', 'newest']) made.push((await api(stack.url, 'POST', '/api/sessions', { title })).body.id);
    const [oldest, middle] = made;
    const p = await openPage(browser, `${stack.url}/#/sessions/${middle}`);
    const { page } = p;
    await page.locator(`${tid('session-item')}[aria-current="page"][data-session-id="${middle}"]`).waitFor({ state: 'attached' });
    const dialog = page.locator(tid('delete-dialog'));

    await page.locator(tid('delete-session')).click();
    await dialog.waitFor();
    assert.equal(await dialog.getAttribute('role'), 'alertdialog');
    assert.match(await dialog.textContent(), /“middle” will be deleted/);
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'cancel-delete');
    await checkAxe(t, page, 'delete confirmation');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'delete-session');
    await page.locator(tid('delete-session')).click();
    await page.locator(tid('cancel-delete')).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal((await api(stack.url, 'GET', `/api/sessions/${middle}`)).status, 200, 'still there');

    await page.locator(tid('delete-session')).click();
    await page.locator(tid('confirm-delete')).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.waitForFunction((want) => location.hash === want, `#/sessions/${oldest}`);
    await page.locator(`${tid('session-item')}[aria-current="page"][data-session-id="${oldest}"]`).waitFor({ state: 'attached' });
    assert.equal((await api(stack.url, 'GET', `/api/sessions/${middle}`)).status, 404);
    assert.equal(await page.locator(`${tid('session-item')}[data-session-id="${middle}"]`).count(), 0);
    await page.locator('#chat-title').filter({ hasText: /^oldest$/ }).waitFor();
    p.assertClean();
    await p.close();
  });

  test('rename in place: Enter saves, Escape cancels, the server\'s errors show', async (t) => {
    const id = (await api(stack.url, 'POST', '/api/sessions', { title: 'Before' })).body.id;
    const p = await openPage(browser, `${stack.url}/#/sessions/${id}`);
    const { page } = p;
    const item = page.locator(`${tid('session-item')}[aria-current="page"][data-session-id="${id}"]`);
    await item.waitFor({ state: 'attached' });
    const title = page.locator('#chat-title');
    const input = page.locator(tid('rename-input'));
    const error = page.locator(tid('rename-error'));

    await page.locator(tid('rename-session')).click();
    assert.equal(await input.inputValue(), 'Before');
    assert.equal(await title.isVisible(), false);
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'rename-input');
    await input.fill('Not kept');
    await input.press('Escape');
    assert.equal(await input.count(), 0);
    assert.equal(await title.textContent(), 'Before');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'rename-session');

    await page.locator(tid('rename-session')).click();
    await input.fill('');
    await input.press('Enter');
    await error.waitFor();
    assert.equal(await error.textContent(), 'title must not be empty');
    assert.equal(await input.getAttribute('aria-invalid'), 'true');
    await checkAxe(t, page, 'rename with an error');
    await input.fill('x'.repeat(201));
    await input.press('Enter');
    await page.locator(tid('rename-error')).filter({ hasText: 'at most' }).waitFor();
    assert.equal(await error.textContent(), 'title must be at most 200 characters');
    assert.equal((await api(stack.url, 'GET', `/api/sessions/${id}`)).body.title, 'Before');

    await input.fill('After');
    await input.press('Enter');
    await input.waitFor({ state: 'detached' });
    // The header and the list are redrawn on the next frame.
    await title.filter({ hasText: /^After$/ }).waitFor();
    await item.locator('.session-title').filter({ hasText: /^After$/ }).waitFor();
    assert.equal((await api(stack.url, 'GET', `/api/sessions/${id}`)).body.title, 'After');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'rename-session');
    // A refused PATCH is logged by the browser as a failed request.
    p.assertClean(/status of 400 \(Bad Request\)/);
    await p.close();
  });

  test('a new chat is listed once, also when a poll of the list answers while it is being made', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    // A finished run, so that the page polls and catches up.
    await newChat(page);
    await stack.mock.script([{ text: 'hi' }]);
    await send(page, 'hello');
    await waitStopped(page, 'completed');
    // The server makes the next chat, then the page polls the list (which
    // holds it now) and shows it, and only then hears back from its own
    // request.
    await page.route((url) => url.pathname === '/api/sessions', async (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      const res = await route.fetch();
      const { id } = await res.json();
      await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
      await page.locator(`${tid('session-item')}[data-session-id="${id}"]`).waitFor({ state: 'attached' });
      await route.fulfill({ response: res });
    });
    const id = await newChat(page);
    assert.equal(await page.locator(`${tid('session-item')}[data-session-id="${id}"]`).count(), 1);
    p.assertClean();
    await p.close();
  });

  test('another tab follows a rename and a delete without a reload', async (t) => {
    const t0 = Date.now();
    const lap = (what) => t.diagnostic(`${what} at ${Date.now() - t0} ms`);
    const a = (await api(stack.url, 'POST', '/api/sessions', { title: 'Shared' })).body.id;
    const b = (await api(stack.url, 'POST', '/api/sessions', { title: 'Other' })).body.id;
    const one = await openPage(browser, `${stack.url}/#/sessions/${a}`);
    // The second tab: the same browser context, so the same owner.
    const two = await one.context.newPage();
    await two.goto(`${stack.url}/#/sessions/${a}`);
    for (const page of [one.page, two]) await page.locator(`${tid('session-item')}[aria-current="page"][data-session-id="${a}"]`).waitFor({ state: 'attached' });
    // The second tab can no longer read the list (the poll) nor the chat
    // (what it asks when its event stream ends), so what it shows from now
    // on came from the first tab.
    await two.route('**/api/sessions?*', (route) => route.abort());
    await two.route(`**/api/sessions/${a}`, (route) => route.abort());
    // Headless, both tabs count as visible; the one acted in is in front.
    await one.page.bringToFront();

    await one.page.locator(tid('rename-session')).click();
    await one.page.locator(tid('rename-input')).fill('Renamed here');
    await one.page.locator(tid('rename-input')).press('Enter');
    await two.locator('#chat-title').filter({ hasText: 'Renamed here' }).waitFor({ timeout: 3000 });
    lap('renamed');
    await two.locator(`${tid('session-item')}[data-session-id="${a}"] .session-title`).filter({ hasText: /^Renamed here$/ }).waitFor({ timeout: 3000 });

    await one.page.locator(tid('delete-session')).click();
    lap('asked');
    await one.page.locator(tid('confirm-delete')).click();
    lap('confirmed');
    await two.locator(tid('chat-notice')).filter({ hasText: 'This chat was deleted.' }).waitFor({ timeout: 3000 });
    await two.waitForFunction((want) => location.hash === want, `#/sessions/${b}`);
    lap('deleted');
    await two.locator(`${tid('session-item')}[data-session-id="${a}"]`).waitFor({ state: 'detached', timeout: 3000 });

    // A rename made elsewhere (another browser: the API) shows when the tab
    // becomes visible again, which reads the open chat (the list is still
    // not read).
    await api(stack.url, 'PATCH', `/api/sessions/${b}`, { title: 'Renamed elsewhere' });
    await two.bringToFront();
    await two.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
    await two.locator('#chat-title').filter({ hasText: 'Renamed elsewhere' }).waitFor({ timeout: 3000 });
    lap('caught up');
    one.assertClean();
    await one.close();
  });

  test('copy buttons copy a message and a code block exactly, by keyboard too', async (t) => {
    const answer = 'Run this:\n\n```js\nconst x = 1;\nconsole.log(x);\n```\n\nThen `x` is **1**.';
    await stack.mock.script([{ text: answer }, { text: 'Another answer.' }]);
    const p = await openPage(browser, stack.url + '/', { permissions: ['clipboard-read', 'clipboard-write'] });
    const { page } = p;
    await newChat(page);
    await send(page, 'show me\n  some code');
    await waitStopped(page, 'completed');
    const clip = () => page.evaluate(() => navigator.clipboard.readText());
    const user = page.locator(`${tid('message')}[data-role="user"]`);
    const reply = page.locator(`${tid('message')}[data-role="assistant"]`);

    await user.locator(tid('copy-message')).click();
    await user.locator(`${tid('copy-message')}.copied`).waitFor();
    assert.equal(await clip(), 'show me\n  some code');
    assert.equal(await user.locator(tid('copy-message')).getAttribute('aria-label'), 'Copy message');
    assert.equal(await user.locator(`${tid('copy-message')} .copy-word`).textContent(), 'Copied');

    await reply.locator(tid('copy-message')).focus();
    await page.keyboard.press('Enter');
    await reply.locator(`${tid('copy-message')}.copied`).waitFor();
    assert.equal(await clip(), answer);

    const code = reply.locator(tid('copy-code'));
    assert.equal(await code.count(), 1);
    assert.equal(await code.getAttribute('aria-label'), 'Copy code');
    await code.focus();
    await page.keyboard.press('Space');
    await reply.locator(`${tid('copy-code')}.copied`).waitFor();
    assert.equal(await clip(), 'const x = 1;\nconsole.log(x);');
    assert.equal(await code.locator('.copy-word').textContent(), 'Copied');
    // The feedback is brief.
    await reply.locator(`${tid('copy-code')}:not(.copied)`).waitFor({ timeout: 3000 });
    assert.equal(await code.locator('.copy-word').textContent(), 'Copy');
    await checkAxe(t, page, 'message and code copy buttons');
    await page.emulateMedia({ colorScheme: 'dark' });
    await checkAxe(t, page, 'message and code copy buttons, dark');

    // An answer a regenerate replaced still copies, collapsed as it is.
    await page.locator(tid('regenerate-button')).click();
    const earlier = page.locator(`${tid('message')}[data-superseded="true"]`);
    await earlier.waitFor();
    await waitStopped(page, 'completed');
    await earlier.locator(tid('copy-message')).click();
    await earlier.locator(`${tid('copy-message')}.copied`).waitFor();
    assert.equal(await clip(), answer);
    p.assertClean();
    await p.close();
  });
});

describe('export with authentication', () => {
  let browser, mock, srv, dir;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'chatplane-browser-manage-'));
    browser = await launchBrowser();
    mock = await startMock();
    const webRoot = process.env.CHATPLANE_WEB_ROOT ? ['--web-root', process.env.CHATPLANE_WEB_ROOT] : [];
    srv = await startServer({ dir, args: webRoot, config: { llm: { base_url: mock.url, model: 'mock-model' } } });
  });

  after(async () => {
    await browser?.close();
    await srv?.stop();
    mock?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the download carries the signed-in session, and matches the API', async () => {
    const made = await runBinary(['token', 'create', 'alice', '--db', `sqlite:${path.join(dir, 'chat.db')}`]);
    assert.equal(made.code, 0, made.stderr);
    const token = made.stdout.trim().split('\n').pop();
    const auth = { Authorization: `Bearer ${token}` };
    const id = (await api(srv.url, 'POST', '/api/sessions', { title: 'Secret' }, auth)).body.id;
    assert.equal((await api(srv.url, 'GET', `/api/sessions/${id}/export`)).status, 401, 'the export needs the token');

    const p = await openPage(browser, `${srv.url}/#/sessions/${id}`);
    const { page } = p;
    await page.locator(tid('login-form')).waitFor();
    await page.locator('#login-token').fill(token);
    await page.keyboard.press('Enter');
    await page.locator(tid('login-form')).waitFor({ state: 'hidden' });
    await page.locator(`${tid('session-item')}[aria-current="page"][data-session-id="${id}"]`).waitFor({ state: 'attached' });
    for (const [which, format] of [['export-markdown', 'markdown'], ['export-json', 'json']]) {
      const got = await download(page, which);
      const want = await api(srv.url, 'GET', `/api/sessions/${id}/export?format=${format}`, undefined, auth);
      assert.equal(want.status, 200);
      assert.equal(got.text, want.text);
    }
    p.assertClean(/status of 401 \(Unauthorized\)/);
    await p.close();
  });
});
