// Helpers for the browser tests: the real server (tests/integration's
// startServer) answering with the mock model server, and Debian's chromium
// driven by playwright-core. `npx playwright install` cannot run here, so
// the browser is the system's.
import { chromium } from 'playwright-core';
import { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

import { startServer, api, until, sleep } from '../integration/lib/server.mjs';
import { startMock } from '../scenarios/lib.mjs';

export { api, until, sleep };

export const CHROMIUM = process.env.CHATPLANE_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// playwright-core gives every launch a fresh, temporary --user-data-dir.
export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

// The mock model and a server that uses it. opts as startServer's, plus
// config merged over {llm: {base_url: <mock>}}.
export async function startStack(opts = {}) {
  const mock = opts.mock || (await startMock());
  const config = { ...(opts.config || {}), llm: { base_url: mock.url, model: 'mock-model', ...((opts.config || {}).llm || {}) } };
  // CHATPLANE_WEB_ROOT serves the page from disk (while changing it);
  // by default the tests get the page built into the binary.
  const args = [...(opts.args || [])];
  if (process.env.CHATPLANE_WEB_ROOT) args.push('--web-root', process.env.CHATPLANE_WEB_ROOT);
  const srv = await startServer({ ...opts, args, config });
  return {
    mock,
    srv,
    url: srv.url,
    async stop() {
      await srv.stop();
      srv.cleanup();
      if (!opts.mock) mock.stop();
    },
  };
}

// The set-up the browser suites share, registered in the describe that
// calls it: a browser and a stack (startStack(opts)) started before the
// suite and both closed after it, and the mock model's script and requests
// reset before each test unless reset is false. set(browser, stack) hands
// them to the suite once they run.
export function useStack(set, opts = {}, { reset = true } = {}) {
  let browser, stack;
  before(async () => {
    browser = await launchBrowser();
    stack = await startStack(opts);
    set(browser, stack);
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });
  if (reset) beforeEach(() => stack.mock.reset());
}

// A new context and page. Console errors and uncaught exceptions are
// collected in `errors`; `assertClean()` fails the test when there are any
// beyond those `allow` matches.
export async function openPage(browser, url, { viewport = { width: 1360, height: 860 }, colorScheme = 'light', permissions = [] } = {}) {
  const context = await browser.newContext({ viewport, colorScheme });
  if (permissions.length) await context.grantPermissions(permissions, { origin: new URL(url).origin });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  const response = await page.goto(url);
  return {
    page,
    context,
    errors,
    response,
    assertClean(allow = null) {
      const bad = allow ? errors.filter((e) => !allow.test(e)) : errors;
      assert.deepEqual(bad, [], 'no console errors');
    },
    close: () => context.close(),
  };
}

export const tid = (id) => `[data-testid="${id}"]`;

// Types a message into the box and sends it with Enter.
export async function send(page, text) {
  await page.locator(tid('message-input')).fill(text);
  await page.locator(tid('message-input')).press('Enter');
}

// Opens a new, empty chat with the "New chat" button; resolves to its id.
// The id is the one the server gave the new chat: the address alone may
// still be changing to the newest older chat the page opened on load.
export async function newChat(page) {
  const created = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/api/sessions');
  await page.locator(tid('new-session')).click();
  const { id } = await (await created).json();
  await page.waitForFunction((want) => location.hash === want, `#/sessions/${encodeURIComponent(id)}`);
  // Open: the list marks it as the current chat once its snapshot is in.
  await page.locator(`${tid('session-item')}[aria-current="page"][data-session-id="${id}"]`).waitFor({ state: 'attached' });
  await page.locator('#empty-state h2').waitFor();
  return id;
}

// Waits until the page shows the session idle after a run: the
// why-idle panel names a stop reason (optionally this one).
export async function waitStopped(page, reason, timeout = 15000) {
  const sel = reason ? `${tid('stop-reason')}[data-reason="${reason}"]` : tid('stop-reason');
  await page.locator(sel).waitFor({ state: 'visible', timeout });
  await page.locator(`${tid('status-indicator')}[data-status="idle"]`).waitFor({ timeout });
}

// The id of the session the page has open (from the URL).
export async function openSessionId(page) {
  await page.waitForFunction(() => /^#\/sessions\//.test(location.hash));
  return page.evaluate(() => decodeURIComponent(location.hash.slice('#/sessions/'.length)));
}

// Records every value the status indicator shows (status and detail), as
// it changes, in window.__statusLog.
export async function recordStatuses(page) {
  await page.evaluate(() => {
    const el = document.querySelector('[data-testid="status-indicator"]');
    window.__statusLog = [];
    const note = () => {
      const s = el.getAttribute('data-status');
      const d = el.querySelector('#status-detail').textContent;
      const last = window.__statusLog[window.__statusLog.length - 1];
      if (!last || last.status !== s || last.detail !== d) window.__statusLog.push({ status: s, detail: d, at: performance.now() });
    };
    new MutationObserver(note).observe(el, { attributes: true, childList: true, subtree: true, characterData: true });
    note();
  });
}

// axe-core (a devDependency) run inside the page. The script is evaluated
// through the debugging protocol, which the page's Content-Security-Policy
// does not govern, so the page needs no inline-script exception for it.
// Resolves to the violations: [{id, impact, help, targets}], none when
// the page passes every rule axe runs by default.
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export async function axeViolations(page) {
  const has = await page.evaluate(() => typeof window.axe === 'object');
  if (!has) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(' ')) }));
  });
}

