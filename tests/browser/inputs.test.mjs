// Questions of tool servers in a real browser, with the real
// @modelcontextprotocol/server-everything: its trigger-elicitation-request
// tool asks for a form, which the page builds from the schema under the
// conversation, with the focus on it and the status and tab title saying
// the run waits for the person. Filling it in (by keyboard alone) sends
// the answer the tool then reports; a refused answer shows the reason;
// Decline sends none; a reload shows the pending form again.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { useStack, openPage, tid, send, waitStopped, newChat, axeViolations } from './lib.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
const everything = path.join(root, 'node_modules', '.bin', 'mcp-server-everything');
const card = (status) => `${tid('input-card')}[data-status="${status}"]`;
const ASK = [
  { tool_calls: [{ name: 'everything__trigger-elicitation-request', arguments: {} }] },
  { text: 'Thanks for the answer.' },
];

describe('questions of tool servers', () => {
  let browser, stack;

  useStack((b, s) => { browser = b; stack = s; }, {
    config: {
      mcpServers: { everything: { command: everything, args: ['stdio'] } },
      approvals: { rules: [{ tool: '*', action: 'allow' }] },
    },
  });

  // The tool's result as the timeline stores it.
  const toolResult = async (page) => {
    const sid = await page.evaluate(() => new URLSearchParams(location.search).get('session') || location.hash.replace(/^#/, ''));
    const r = await fetch(`${stack.url}/api/sessions/${sid}/tools`).then((x) => x.json());
    return r.tool_executions[0].result;
  };

  test('the form is built from the schema with the focus on it; submitting sends the answer to the tool', async () => {
    await stack.mock.script(ASK);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    await send(page, 'ask me');

    const pending = page.locator(card('pending'));
    await pending.waitFor({ timeout: 15000 });
    assert.equal(await pending.locator(tid('input-message')).textContent(), 'Please provide inputs for the following fields:');
    await page.waitForFunction(() => document.activeElement && document.activeElement.getAttribute('data-testid') === 'input-card');
    await page.locator(`${tid('status-indicator')}[data-status="waiting_for_input"]`).waitFor();
    assert.equal(await page.locator('#status-label').textContent(), 'Waiting for you');
    await page.waitForFunction(() => document.title.startsWith('(Input needed) '));
    // One control per property, of the property's kind, with its default.
    const name = pending.locator(tid('input-field-name'));
    assert.equal(await name.getAttribute('type'), 'text');
    assert.equal(await name.evaluate((e) => e.required), true);
    assert.equal(await pending.locator(tid('input-field-check')).getAttribute('type'), 'checkbox');
    assert.equal(await pending.locator(tid('input-field-email')).getAttribute('type'), 'email');
    assert.equal(await pending.locator(tid('input-field-birthdate')).getAttribute('type'), 'date');
    assert.equal(await pending.locator(tid('input-field-integer')).inputValue(), '42');
    assert.equal(await pending.locator(tid('input-field-firstLine')).inputValue(), 'It was a dark and stormy night.');
    assert.deepEqual(await pending.locator(`${tid('input-field-titledSingleSelectEnum')} option`).evaluateAll((os) => os.map((o) => [o.value, o.textContent])),
      [['', '—'], ['hero-1', 'Superman'], ['hero-2', 'Green Lantern'], ['hero-3', 'Wonder Woman']]);
    assert.equal(await pending.locator(tid('input-field-titledSingleSelectEnum')).inputValue(), 'hero-1');
    assert.equal(await pending.locator(`${tid('input-field-untitledMultipleSelectEnum')} input[type="checkbox"]`).count(), 5);
    assert.equal(await page.locator('label[for]', { hasText: 'String (required)' }).count(), 1);
    assert.deepEqual(await axeViolations(page), [], 'the form passes axe');

    // A refused answer shows why, and the form stays.
    await pending.locator(tid('input-field-integer')).fill('500');
    await pending.locator(tid('input-submit')).click();
    const error = pending.locator(tid('input-error'));
    await error.waitFor();
    assert.equal(await error.textContent(), 'content.integer must be at most 100');
    assert.deepEqual(await axeViolations(page), [], 'the form with its error passes axe');
    // By keyboard: the card has the focus; Tab reaches the name first.
    await pending.focus();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'input-field-name');
    await page.keyboard.type('Ada Lovelace');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'input-field-check');
    await page.keyboard.press('Space');
    await pending.locator(tid('input-field-integer')).fill('7');
    await pending.locator(tid('input-field-name')).press('Enter');

    const answered = page.locator(card('accepted'));
    await answered.waitFor();
    assert.equal(await answered.locator(tid('input-outcome')).textContent(), 'Answered by local');
    assert.equal(await answered.locator(tid('input-submit')).count(), 0);
    await waitStopped(page, 'completed');
    assert.ok(!(await page.title()).startsWith('(Input needed)'));
    const req = (await stack.mock.requests())[1];
    const tool = req.body.messages.find((m) => m.role === 'tool').content;
    assert.match(tool, /- Name: Ada Lovelace/);
    assert.match(tool, /- Agreed to terms: true/);
    assert.match(tool, /- Favorite Integer: 7/);
    // The refused answer's 400 is logged by the browser, nothing else.
    p.assertClean(/status of 400/);
    await p.close();
  });

  test('Decline sends no answer; a reload while waiting shows the form again', async () => {
    await stack.mock.script(ASK);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    await send(page, 'ask me');
    await page.locator(card('pending')).waitFor({ timeout: 15000 });
    await page.reload();
    const pending = page.locator(card('pending'));
    await pending.waitFor({ timeout: 10000 });
    await page.locator(`${tid('status-indicator')}[data-status="waiting_for_input"]`).waitFor();
    await page.waitForFunction(() => document.title.startsWith('(Input needed) '));
    await pending.locator(tid('input-decline')).click();
    const declined = page.locator(card('declined'));
    await declined.waitFor();
    assert.equal(await declined.locator(tid('input-outcome')).textContent(), 'Declined by local');
    await waitStopped(page, 'completed');
    const tool = (await stack.mock.requests())[1].body.messages.find((m) => m.role === 'tool').content;
    assert.match(tool, /User declined to provide the requested information/);
    p.assertClean();
    await p.close();
  });
});
