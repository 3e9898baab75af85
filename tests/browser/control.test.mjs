// The control plane in a real browser: the tool timeline (expand, collapse,
// copy), the budget meters against the run's own numbers, Run and Stop,
// mode switches before and during a run, and stop reasons with their
// recovery suggestions and actions.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { useStack, openPage, tid, send, waitStopped, newChat, api } from './lib.mjs';

const LONG_TEXT = 'This answer takes its time. '.repeat(40);

async function lastRun(base, id) {
  const r = await api(base, 'GET', `/api/sessions/${id}/runs`);
  return r.body.runs[0];
}

// The meters as the page shows them: {dim: {used, limit, level, text}}.
async function meters(page) {
  return page.evaluate(() => {
    const out = {};
    for (const m of document.querySelectorAll('[data-testid="budget-display"] .meter')) {
      out[m.getAttribute('data-dimension')] = {
        used: Number(m.getAttribute('data-used')),
        limit: m.getAttribute('data-limit') === '' ? null : Number(m.getAttribute('data-limit')),
        level: m.getAttribute('data-level'),
        text: m.querySelector('.meter-value').textContent,
      };
    }
    return out;
  });
}

async function selectMode(page, mode) {
  await page.locator(tid('mode-select')).selectOption(mode);
}

describe('the control plane', () => {
  let browser, stack;

  useStack((b, s) => { browser = b; stack = s; });

  test('the tool timeline lists executions, expands and collapses them, and copies them', async () => {
    await stack.mock.script([
      { tool_calls: [{ name: 'calc', arguments: { expression: '6*7' } }] },
      { tool_calls: [{ name: 'calc', arguments: { expression: '1/0' } }] },
      { text: 'The answer is 42.' },
    ]);
    const p = await openPage(browser, stack.url + '/', { permissions: ['clipboard-read', 'clipboard-write'] });
    const { page } = p;
    const id = await newChat(page);
    await send(page, 'compute');
    await waitStopped(page, 'completed');

    const rows = page.locator(tid('tool-execution'));
    assert.equal(await rows.count(), 2);
    assert.equal(await rows.nth(0).getAttribute('data-status'), 'ok');
    assert.equal(await rows.nth(1).getAttribute('data-status'), 'error');
    assert.equal(await rows.nth(0).locator('.tool-name').textContent(), 'calc');
    assert.equal(await rows.nth(0).locator('.tool-server').textContent(), 'builtin');
    assert.match(await rows.nth(0).locator('.tool-duration').textContent(), /^\d+ ms$/);
    assert.equal(await page.locator('#timeline-count').textContent(), '2 calls');
    assert.equal(await page.locator(tid('tool-details')).count(), 0);

    // Expand the first: arguments pretty-printed, the result as text.
    const head = rows.nth(0).locator('.tool-head');
    await head.click();
    assert.equal(await head.getAttribute('aria-expanded'), 'true');
    const details = rows.nth(0).locator(tid('tool-details'));
    await details.waitFor();
    const pres = await details.locator('pre').allTextContents();
    assert.deepEqual(pres, ['{\n  "expression": "6*7"\n}', '42']);

    await details.locator(tid('copy-button')).click();
    await page.locator(`${tid('copy-button')}.copied`).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, 'builtin/calc (ok)\n\narguments:\n{\n  "expression": "6*7"\n}\n\nresult:\n42');

    // The failed one shows its error; then both collapse again, by click
    // and by keyboard.
    await rows.nth(1).locator('.tool-head').click();
    assert.match(await rows.nth(1).locator(tid('tool-details')).textContent(), /Errordivision by zero/);
    await head.click();
    assert.equal(await rows.nth(0).locator(tid('tool-details')).count(), 0);
    assert.equal(await rows.nth(0).locator('.tool-head').getAttribute('aria-expanded'), 'false');
    await rows.nth(1).locator('.tool-head').focus();
    await page.keyboard.press('Enter');
    assert.equal(await page.locator(tid('tool-details')).count(), 0);

    // The same timeline after a reload, from the API instead of events.
    await page.reload();
    await page.locator(tid('tool-execution')).nth(1).waitFor();
    assert.equal(await openSessionHash(page), id);
    assert.deepEqual(await page.locator(tid('tool-execution')).evaluateAll((els) => els.map((e) => e.getAttribute('data-status'))), ['ok', 'error']);
    p.assertClean();
    await p.close();
  });

  test('the budget meters show the run\'s own numbers, amber past 80 % and red at the limit', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const id = await newChat(page);
    await selectMode(page, 'quick');
    await page.locator(`${tid('budget-steps')}[data-limit="3"]`).waitFor();

    // 7,000 of quick's 8,000 tokens in the first step: the next step is
    // the wrap-up, and the run stops on the token budget.
    await stack.mock.script([
      { tool_calls: [{ name: 'calc', arguments: { expression: '1+1' } }], usage: { prompt_tokens: 6000, completion_tokens: 1000, total_tokens: 7000 } },
      { text: 'Two.' },
    ]);
    await send(page, 'add');
    await waitStopped(page, 'max_tokens');
    let run = await lastRun(stack.url, id);
    let m = await meters(page);
    for (const dim of ['steps', 'tokens', 'tool_calls', 'retries', 'seconds']) {
      assert.equal(m[dim].used, run.usage[dim], `${dim} used`);
      assert.equal(m[dim].limit, run.limits[dim], `${dim} limit`);
    }
    assert.equal(m.cost_usd, undefined); // no price configured: no cost meter
    assert.equal(m.tokens.text, `${run.usage.tokens.toLocaleString('en-US')} / 8,000`);
    assert.equal(m.steps.text, `${run.usage.steps} / 3`);
    assert.equal(m.tokens.level, 'warn');
    assert.equal(m.steps.level, 'ok');
    assert.equal(await page.locator('#budget-sub').textContent(), 'last run · quick');

    // Three steps of three: steps at the limit.
    await stack.mock.script([
      { tool_calls: [{ name: 'calc', arguments: { expression: '1+2' } }] },
      { tool_calls: [{ name: 'calc', arguments: { expression: '2+3' } }] },
      { text: 'Done.' },
    ]);
    await send(page, 'again');
    await waitStopped(page, 'max_steps');
    run = await lastRun(stack.url, id);
    m = await meters(page);
    assert.deepEqual([m.steps.used, m.steps.limit, m.steps.level, m.steps.text], [3, 3, 'over', '3 / 3']);
    assert.equal(m.tool_calls.used, run.usage.tool_calls);
    assert.equal(m.tokens.used, run.usage.tokens);
    assert.equal(m.tokens.level, 'ok');
    // Red and amber are colours a person sees, not only attributes.
    const colour = (dim) => page.locator(`${tid('budget-' + dim)} .meter-fill`).evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.notEqual(await colour('steps'), await colour('tokens'));
    p.assertClean();
    await p.close();
  });

  test('switching mode updates the limits, at once during a run too', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const id = await newChat(page);
    assert.equal(await page.locator(tid('mode-select')).inputValue(), 'standard');
    await selectMode(page, 'deep');
    await page.locator(`${tid('budget-steps')}[data-limit="40"]`).waitFor();
    assert.equal(await page.locator('#budget-sub').textContent(), 'next run · deep');
    assert.equal(await page.locator(tid('budget-tokens')).getAttribute('data-limit'), '400000');
    assert.equal((await api(stack.url, 'GET', `/api/sessions/${id}`)).body.mode, 'deep');

    await stack.mock.script([{ text: LONG_TEXT, piece_chars: 8, delay_ms: 40 }]);
    await send(page, 'take your time');
    await page.locator(`${tid('status-indicator')}[data-status="responding"]`).waitFor();
    assert.equal(await page.locator(tid('budget-steps')).getAttribute('data-limit'), '40');
    await selectMode(page, 'quick');
    // The server replaces the running run's limits and says so.
    await page.locator(`${tid('budget-steps')}[data-limit="3"]`).waitFor({ timeout: 5000 });
    assert.equal(await page.locator(tid('status-indicator')).getAttribute('data-status'), 'responding');
    assert.equal(await page.locator(tid('mode-select')).inputValue(), 'quick');
    assert.equal(await page.locator('#budget-sub').textContent(), 'this run · quick');
    const events = (await api(stack.url, 'GET', `/api/sessions/${id}/events`, undefined, { Accept: 'application/json' })).body.events;
    const budgets = events.filter((e) => e.type === 'budget');
    assert.equal(budgets[budgets.length - 1].limits.steps, 3);
    assert.equal(events.some((e) => e.type === 'run_stopped'), false);
    await page.locator(tid('stop-button')).click();
    await waitStopped(page, 'user_stopped');
    assert.equal(await page.locator(tid('mode-select')).inputValue(), 'quick');
    p.assertClean();
    await p.close();
  });

  test('Run starts a run, Stop stops it, and Continue carries on', async () => {
    await stack.mock.script([{ text: LONG_TEXT, piece_chars: 5, delay_ms: 50 }]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const id = await newChat(page);
    const run = page.locator(tid('run-button'));
    const stop = page.locator(tid('stop-button'));
    assert.equal(await run.isDisabled(), true); // nothing typed, nothing to continue
    assert.equal(await stop.isDisabled(), true);
    await page.locator(tid('message-input')).fill('write a lot');
    assert.equal(await run.isDisabled(), false);
    await run.click();

    await page.locator(`${tid('message')}[data-role="assistant"].streaming`).waitFor();
    assert.equal(await run.isDisabled(), true);
    assert.equal(await stop.isDisabled(), false);
    await stop.click();
    await waitStopped(page, 'user_stopped');
    const api_run = await lastRun(stack.url, id);
    assert.equal(api_run.stop_reason, 'user_stopped');
    assert.equal(await page.locator(tid('stop-reason')).textContent(), 'Stopped by you');
    assert.equal(await page.locator(tid('recovery-suggestion')).textContent(), api_run.recovery_suggestion);
    // The text streamed so far stays, marked as partial.
    const msgs = (await api(stack.url, 'GET', `/api/sessions/${id}/messages`)).body.messages;
    const partial = msgs.find((x) => x.role === 'assistant');
    assert.equal(partial.partial, true);
    const shown = page.locator(`${tid('message')}[data-role="assistant"]`);
    assert.equal(await shown.count(), 1);
    assert.equal(await shown.locator('.bubble-body > p').first().textContent(), partial.content.trim());
    assert.equal(await shown.locator('.partial-note').count(), 1);

    // With nothing typed, Run continues the stopped run.
    assert.equal(await page.locator('#run-label').textContent(), 'Continue');
    assert.equal(await stop.isDisabled(), true);
    await run.click();
    await waitStopped(page, 'completed');
    const runs = (await api(stack.url, 'GET', `/api/sessions/${id}/runs`)).body.runs;
    assert.equal(runs.length, 2);
    assert.equal(runs[0].continues, runs[1].id);
    assert.equal(await page.locator(`${tid('message')}[data-role="assistant"]`).count(), 2);
    assert.equal(await page.locator(`${tid('message')}[data-role="user"]`).count(), 1);
    p.assertClean();
    await p.close();
  });

  test('stop reasons show in words with the diagnosis, the recovery suggestion and the offered actions', async () => {
    // The same call four times with the same outcome: the loop guardrail
    // warns on the third and stops on the fourth.
    const same = { tool_calls: [{ name: 'calc', arguments: { expression: '2+2' } }] };
    await stack.mock.script([same, same, same, same, { text: 'unused' }]);
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const id = await newChat(page);
    await send(page, 'loop please');
    await waitStopped(page, 'loop_detected');
    const run = await lastRun(stack.url, id);
    const panel = page.locator(tid('why-idle-panel'));
    assert.equal(await panel.getAttribute('data-tone'), 'bad');
    assert.equal(run.stop_tone, 'bad');
    assert.equal(await panel.locator(tid('stop-reason')).textContent(), 'Stopped a loop');
    // The diagnosis quotes the detail, so it stands for both, above the
    // suggestion.
    assert.equal(run.diagnosis.playbook, 'loop');
    assert.equal(run.diagnosis.summary, `The model was repeating the same tool call: ${run.stop_detail}`);
    assert.equal(await panel.locator('.stop-detail').count(), 0);
    const diagnosis = panel.locator(tid('diagnosis'));
    assert.equal(await diagnosis.getAttribute('data-playbook'), 'loop');
    assert.equal(await diagnosis.textContent(), run.diagnosis.summary);
    assert.deepEqual(await panel.locator(`${tid('diagnosis')}, ${tid('recovery-suggestion')}`).evaluateAll((els) => els.map((e) => e.getAttribute('data-testid'))), ['diagnosis', 'recovery-suggestion']);
    assert.equal(await panel.locator(tid('recovery-suggestion')).textContent(), run.recovery_suggestion);
    const buttons = panel.locator(tid('action-button'));
    assert.deepEqual(await buttons.evaluateAll((els) => els.map((e) => e.getAttribute('data-kind'))), run.actions.map((a) => a.kind));
    assert.deepEqual(await buttons.allTextContents(), run.actions.map((a) => a.label));
    assert.ok(run.actions.some((a) => a.kind === 'rephrase'));
    const notices = page.locator(tid('guardrail-notice'));
    assert.ok((await notices.count()) >= 1);
    assert.match(await notices.first().textContent(), /^Loop warning/);

    // "Rephrase" puts the last message back in the box, selected.
    await panel.locator(`${tid('action-button')}[data-kind="rephrase"]`).click();
    const focused = await page.evaluate(() => ({ id: document.activeElement.id, value: document.activeElement.value }));
    assert.deepEqual(focused, { id: 'message-input', value: 'loop please' });

    // A budget stop offers the next larger mode; taking it continues there.
    await page.locator(tid('message-input')).fill('');
    await selectMode(page, 'quick');
    await stack.mock.reset();
    await stack.mock.script([
      { tool_calls: [{ name: 'calc', arguments: { expression: '1+2' } }] },
      { tool_calls: [{ name: 'calc', arguments: { expression: '2+3' } }] },
      { text: 'Wrapped up.' },
    ]);
    await send(page, 'three steps');
    await waitStopped(page, 'max_steps');
    assert.equal(await panel.locator(tid('stop-reason')).textContent(), 'Step budget used up');
    assert.equal(await panel.locator('.chip').textContent(), 'wrapped up');
    assert.equal(await panel.getAttribute('data-tone'), 'warn');
    const switchMode = panel.locator(`${tid('action-button')}[data-kind="switch_mode"]`);
    assert.equal(await switchMode.getAttribute('data-mode'), 'standard');
    await switchMode.click();
    await waitStopped(page, 'completed');
    const last = await lastRun(stack.url, id);
    assert.equal(last.mode, 'standard');
    assert.equal(last.limits.steps, 10);
    assert.equal(await page.locator(tid('mode-select')).inputValue(), 'standard');
    assert.equal(await page.locator(tid('budget-steps')).getAttribute('data-limit'), '10');
    p.assertClean();
    await p.close();
  });
});

async function openSessionHash(page) {
  return page.evaluate(() => decodeURIComponent(location.hash.slice('#/sessions/'.length)));
}
