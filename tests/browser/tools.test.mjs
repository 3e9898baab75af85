// Long tool calls in a real browser: an MCP tool (server-everything's
// trigger-long-running-operation) reporting progress, shown while it runs,
// and one stopped half way, shown cancelled.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { useStack, openPage, tid, send, waitStopped, newChat, recordStatuses } from './lib.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
const everything = path.join(root, 'node_modules', '.bin', 'mcp-server-everything');
const LONG = 'everything__trigger-long-running-operation';

describe('long tool calls', () => {
  let browser, stack;

    // The timeline is under test here, not approvals: the tools run unasked.
  useStack((b, s) => { browser = b; stack = s; }, {
      config: {
        mcpServers: { everything: { command: everything, args: ['stdio'] } },
        approvals: { rules: [{ tool: '*', action: 'allow' }] },
      },
    });

  test('a long call shows its progress while it runs, then its result', async () => {
    await stack.mock.script([
      { tool_calls: [{ name: LONG, arguments: { duration: 2, steps: 4 } }] },
      { text: 'The operation finished.' },
    ]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    await recordStatuses(page);
    await send(page, 'run the long operation');

    const row = page.locator(tid('tool-execution')).first();
    await page.locator(`${tid('tool-execution')}[data-status="running"] ${tid('tool-progress')}`).waitFor({ timeout: 10000 });
    assert.equal(await row.locator('.tool-name').textContent(), 'trigger-long-running-operation');
    assert.equal(await row.locator('.tool-server').textContent(), 'everything');
    assert.match(await row.locator(tid('tool-progress')).textContent(), /[1-4]\/4$/);
    assert.equal(await page.locator(tid('status-indicator')).getAttribute('data-status'), 'tool_running');
    // The meters count the call and its step while it runs, before the
    // budget event that follows its result.
    assert.equal(await page.locator(tid('budget-tool_calls')).getAttribute('data-used'), '1');
    assert.equal(await page.locator(tid('budget-steps')).getAttribute('data-used'), '1');
    // The bar fills as progress arrives.
    const width = () => row.locator(`${tid('tool-progress')} .meter-fill`).evaluate((e) => parseFloat(e.style.width));
    const first = await width();
    await page.waitForFunction(() => {
      const f = document.querySelector('[data-testid="tool-progress"] .meter-fill');
      return f && parseFloat(f.style.width) >= 75;
    }, null, { timeout: 10000 });
    assert.ok(first <= 75, `started at ${first} %`);

    await waitStopped(page, 'completed');
    assert.equal(await row.getAttribute('data-status'), 'ok');
    assert.equal(await row.locator(tid('tool-progress')).count(), 0);
    assert.match(await row.locator('.tool-duration').textContent(), /^\d\.\d s$/);
    const log = await page.evaluate(() => window.__statusLog.map((s) => [s.status, s.detail]));
    assert.ok(log.some(([s, d]) => s === 'tool_running' && d.includes('trigger-long-running-operation')), JSON.stringify(log));
    p.assertClean();
    await p.close();
  });

  test('stopping during a long call marks it cancelled', async () => {
    await stack.mock.script([{ tool_calls: [{ name: LONG, arguments: { duration: 30, steps: 30 } }] }]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    await send(page, 'start something slow');
    await page.locator(tid('tool-progress')).waitFor({ timeout: 10000 });
    await page.locator(tid('stop-button')).click();
    await waitStopped(page, 'user_stopped');
    const row = page.locator(tid('tool-execution')).first();
    assert.equal(await row.getAttribute('data-status'), 'cancelled');
    assert.equal(await row.locator('.tool-status .sr-only').textContent(), 'cancelled');
    p.assertClean();
    await p.close();
  });
});
