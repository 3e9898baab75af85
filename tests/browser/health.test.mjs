// The server's health in the header: the dot's state follows GET
// /api/health, and the panel it opens lists the model, the tool servers and
// the store with their state and last error; Escape closes it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { useStack, startStack, openPage, tid, send, waitStopped, newChat, axeViolations } from './lib.mjs';

describe('health indicator', () => {
  let browser, stack;

  useStack((b, s) => { browser = b; stack = s; }, { config: { mcpServers: { files: { command: '/nonexistent/mcp-files', args: [] } } } }, { reset: false });

  test('a failed tool server and a refused key show amber, and the panel says why', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const dot = page.locator(tid('health-indicator'));
    // The tool server that cannot start degrades the server from the start.
    await page.locator(`${tid('health-indicator')}[data-state="degraded"]`).waitFor();
    assert.equal(await dot.locator('.health-label').textContent(), 'Degraded');
    assert.equal(await dot.getAttribute('aria-expanded'), 'false');

    await newChat(page);
    await stack.mock.script([{ status: 401, body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } } }]);
    await send(page, 'hello');
    await waitStopped(page, 'llm_error');
    // The why-idle panel names the cause.
    assert.equal(await page.locator(`${tid('diagnosis')}[data-playbook="model_auth"]`).textContent(), 'The model endpoint rejected the API key (HTTP 401)');

    await dot.click();
    const panel = page.locator(tid('health-panel'));
    await panel.waitFor();
    assert.equal(await dot.getAttribute('aria-expanded'), 'true');
    const llm = panel.locator(`${tid('health-llm')}[data-state="down"]`);
    await llm.waitFor();
    assert.equal(await llm.getAttribute('data-name'), 'primary');
    const lines = await llm.locator('.health-line').allTextContents();
    assert.equal(lines[0], 'openai · mock-model');
    assert.equal(lines[1], '1 request in 5 min, 1 failed');
    assert.match(lines[2], /^Last error: HTTP 401 .*Incorrect API key provided$/);
    const files = panel.locator(tid('health-mcp'));
    assert.equal(await files.getAttribute('data-name'), 'files');
    assert.equal(await files.getAttribute('data-state'), 'failed');
    assert.match((await files.locator('.health-line').allTextContents())[1], /^Last error: .*(nonexistent|No such file)/);
    assert.equal(await panel.locator(tid('health-store')).getAttribute('data-state'), 'ok');
    assert.equal(await panel.locator(tid('health-runs')).textContent(), '0 runs active; stopped in the last hour: llm_error 1');
    // Every provider is down: the server is down.
    await page.locator(`${tid('health-indicator')}[data-state="down"]`).waitFor();
    // The open panel passes axe.
    await page.emulateMedia({ reducedMotion: 'reduce' });
    const v = await axeViolations(page);
    assert.deepEqual(v.map((x) => `${x.id}: ${x.targets.join(', ')}`), []);

    // Restart: the server is asked to start again (it cannot: it is still
    // missing), and the panel counts the restart.
    await files.locator(tid('restart-server')).click();
    await page.waitForFunction(() => {
      const row = document.querySelector('[data-testid="health-mcp"][data-name="files"]');
      return row && row.textContent.includes('restarted 1 time');
    });
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'restart-server');
    assert.equal(await panel.locator(`${tid('health-mcp')} ${tid('restart-server')}`).textContent(), 'Restart files');

    await page.keyboard.press('Escape');
    assert.equal(await panel.isHidden(), true);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'health-indicator');
    p.assertClean();
    await p.close();
  });

  test('repairs show between the messages: a tool server that crashed is restarted and the read-only call made again', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'chatplane-repair-'));
    const script = path.resolve(import.meta.dirname, '..', 'mcp', 'misbehaving-server.mjs');
    const own = await startStack({ config: {
      mcpServers: { m: { command: process.execPath, args: [script, 'crash-once'], env: { MISBEHAVING_STATE: path.join(dir, 'state') } } },
      approvals: { rules: [{ tool: '*', action: 'allow' }] },
    } });
    try {
      const p = await openPage(browser, own.url + '/');
      const { page } = p;
      await newChat(page);
      await own.mock.script([{ tool_calls: [{ name: 'm__echo', arguments: { message: 'hi' } }] }, { text: 'It echoed.' }]);
      await send(page, 'echo hi');
      await waitStopped(page, 'completed');
      const notes = page.locator(tid('repair-note'));
      assert.deepEqual(await notes.evaluateAll((els) => els.map((e) => [e.getAttribute('data-action'), e.getAttribute('data-outcome')])),
        [['restart_tool_server', 'ok'], ['retry_tool_call', 'ok']]);
      assert.equal(await notes.nth(1).textContent(), 'Called the tool again: m__echo only reads, so it was called again');
      // Between the user's message and the answer.
      const order = await page.locator(`${tid('message-list')} > li`).evaluateAll((els) => els.map((e) => e.getAttribute('data-testid') + ':' + (e.getAttribute('data-role') || '')));
      assert.deepEqual(order.filter((x) => x !== 'tool-call-note:' && x !== 'null:'), ['message:user', 'repair-note:', 'repair-note:', 'message:assistant']);
      p.assertClean();
      await p.close();
    } finally {
      await own.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
