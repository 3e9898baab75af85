// The tool timeline grouped by run in a real browser: one group per run,
// the newest first and open with its mode, stop reason and usage, earlier
// ones closed until opened; a run that starts moves the groups live; a call
// waiting for approval shows in its own run's group; a reload groups the
// same; and at 1360×860 the timeline has room for about eight calls.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { useStack, openPage, tid, send, waitStopped, newChat, api } from './lib.mjs';

const grouping = new Intl.NumberFormat('en-US');

// A run's usage as its header says it, from the run object of the API.
function usageText(u) {
  const n = (v, one, many) => `${grouping.format(v)} ${v === 1 ? one : many}`;
  return [n(u.steps, 'step', 'steps'), n(u.tokens, 'token', 'tokens'), n(u.tool_calls, 'tool call', 'tool calls'), `${(Math.round(u.seconds * 10) / 10).toFixed(1)} s`].join(' · ');
}

// The groups as the page shows them, top to bottom.
function groups(page) {
  return page.locator(tid('timeline-run')).evaluateAll((els) => els.map((e) => {
    const text = (id) => {
      const x = e.querySelector(`[data-testid="${id}"]`);
      return x ? x.textContent : null;
    };
    return {
      id: e.getAttribute('data-run-id'),
      state: e.getAttribute('data-state'),
      title: e.querySelector('.run-title').textContent,
      mode: text('run-mode'),
      status: text('run-state'),
      usage: text('run-usage'),
      expanded: e.querySelector('[data-testid="run-toggle"]').getAttribute('aria-expanded'),
      calls: e.querySelectorAll('[data-testid="tool-execution"]').length,
      listHidden: e.querySelector('.run-items').hidden,
    };
  }));
}

async function runsOf(base, id) {
  return (await api(base, 'GET', `/api/sessions/${id}/runs`)).body.runs;
}

describe('the timeline grouped by run', () => {
  let browser, stack;

  useStack((b, s) => { browser = b; stack = s; });

  // Two runs: a loop the guardrail stops (standard mode), then a quick
  // answer with one call (quick mode).
  async function twoRuns(page) {
    const id = await newChat(page);
    const same = { tool_calls: [{ name: 'calc', arguments: { expression: '(3+4)*2' } }] };
    await stack.mock.script([same, same, same, same]);
    await send(page, 'keep checking');
    await waitStopped(page, 'loop_detected');
    await page.locator(tid('mode-select')).selectOption('quick');
    await stack.mock.script([{ tool_calls: [{ name: 'clock', arguments: { timezone: 'UTC' } }] }, { text: 'Noon somewhere.' }]);
    await send(page, 'what time is it?');
    await waitStopped(page, 'completed');
    return id;
  }

  test('two runs make two groups: the newest open with its mode, stop reason and usage, the older closed until opened', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const id = await twoRuns(page);
    const [second, first] = await runsOf(stack.url, id);
    assert.equal(first.stop_reason, 'loop_detected');
    const tools = (await api(stack.url, 'GET', `/api/sessions/${id}/tools`)).body.tool_executions;
    const firstCalls = tools.filter((t) => t.run_id === first.id).length;
    assert.ok(firstCalls >= 3, `${firstCalls} calls in the loop`);

    const want = [
      { id: second.id, state: 'stopped', title: 'Run 2', mode: 'quick', status: 'Finished', usage: usageText(second.usage), expanded: 'true', calls: 1, listHidden: false },
      { id: first.id, state: 'stopped', title: 'Run 1', mode: 'standard', status: 'Stopped a loop', usage: usageText(first.usage), expanded: 'false', calls: 0, listHidden: true },
    ];
    assert.deepEqual(await groups(page), want);
    assert.match(want[0].usage, /^2 steps · [\d,]+ tokens · 1 tool call · \d+\.\d s$/);
    assert.equal(await page.locator(`${tid('timeline-run')}[data-run-id="${first.id}"]`).getAttribute('data-reason'), 'loop_detected');
    assert.equal(await page.locator('#timeline-count').textContent(), `${firstCalls + 1} calls · 2 runs`);
    // The newest run's call is the clock call.
    assert.equal(await page.locator(`${tid('timeline-run')}[data-run-id="${second.id}"] ${tid('tool-execution')}`).getAttribute('data-tool'), 'clock');

    // Opening the older run shows its calls (and the guardrail's stop), and
    // the focus stays on its header.
    const older = page.locator(`${tid('timeline-run')}[data-run-id="${first.id}"]`);
    await older.locator(tid('run-toggle')).click();
    assert.equal(await older.locator(tid('run-toggle')).getAttribute('aria-expanded'), 'true');
    assert.equal(await older.locator(tid('tool-execution')).count(), firstCalls);
    assert.deepEqual(await older.locator(tid('tool-execution')).evaluateAll((es) => es.map((e) => e.getAttribute('data-execution-id'))),
      tools.filter((t) => t.run_id === first.id).map((t) => t.id));
    assert.match(await older.locator(tid('guardrail-notice')).last().textContent(), /^Loop stop /);
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'run-toggle');
    // An execution in it opens and copies as before.
    await older.locator(`${tid('tool-execution')} .tool-head`).first().click();
    assert.match(await older.locator(tid('tool-details')).textContent(), /"expression": "\(3\+4\)\*2"/);
    assert.equal(await older.locator(tid('copy-button')).count(), 1);
    // Closing the newest run hides its call; by keyboard it opens again.
    const newest = page.locator(`${tid('timeline-run')}[data-run-id="${second.id}"]`);
    await newest.locator(tid('run-toggle')).click();
    assert.equal(await newest.locator(tid('tool-execution')).count(), 0);
    assert.equal(await newest.locator('.run-items').evaluate((e) => e.hidden), true);
    await newest.locator(tid('run-toggle')).focus();
    await page.keyboard.press('Enter');
    assert.equal(await newest.locator(tid('tool-execution')).count(), 1);

    // A reload groups the same, from the API instead of events: the newest
    // open, the older closed.
    await page.reload();
    await page.locator(`${tid('timeline-run')}[data-run-id="${first.id}"]`).waitFor();
    await page.locator(`${tid('timeline-run')}[data-run-id="${second.id}"] ${tid('tool-execution')}`).waitFor();
    assert.deepEqual(await groups(page), want);
    p.assertClean();
    await p.close();
  });

  test('a run that starts goes on top, open and running; the run before closes unless the person opened it', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const id = await twoRuns(page);
    const [second, first] = await runsOf(stack.url, id);
    // The person opens the oldest run; the newest is open by itself.
    await page.locator(`${tid('timeline-run')}[data-run-id="${first.id}"] ${tid('run-toggle')}`).click();

    await stack.mock.script([
      { tool_calls: [{ name: 'calc', arguments: { expression: '2+2' } }] },
      { text: 'Four, said slowly. '.repeat(12), piece_chars: 4, delay_ms: 40 },
    ]);
    // The focus is on the newest run's call when the next run starts
    // (from elsewhere): that run closes and the focus goes to its header.
    await page.locator(`${tid('timeline-run')}[data-run-id="${second.id}"] .tool-head`).click();
    assert.equal((await api(stack.url, 'POST', `/api/sessions/${id}/runs`, { message: 'and 2+2?' })).status, 202);
    await page.locator(`${tid('timeline-run')}:first-child[data-state="running"]`).waitFor({ timeout: 10000 });
    await page.waitForFunction((run) => document.activeElement.closest('[data-testid="timeline-run"]')?.getAttribute('data-run-id') === run, second.id);
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'run-toggle');
    const third = (await runsOf(stack.url, id))[0];
    let now = await groups(page);
    assert.deepEqual(now.map((g) => [g.id, g.title, g.expanded]), [[third.id, 'Run 3', 'true'], [second.id, 'Run 2', 'false'], [first.id, 'Run 1', 'true']]);
    assert.deepEqual([now[0].state, now[0].status, now[0].mode], ['running', 'Running', 'quick']);
    await page.locator(`${tid('timeline-run')}[data-run-id="${third.id}"] ${tid('tool-execution')}[data-status="ok"]`).waitFor();

    await waitStopped(page, 'completed');
    const done = (await runsOf(stack.url, id))[0];
    now = await groups(page);
    assert.deepEqual(now[0], { id: third.id, state: 'stopped', title: 'Run 3', mode: 'quick', status: 'Finished', usage: usageText(done.usage), expanded: 'true', calls: 1, listHidden: false });
    assert.deepEqual(now.slice(1).map((g) => [g.id, g.expanded]), [[second.id, 'false'], [first.id, 'true']]);
    p.assertClean();
    await p.close();
  });

  test('at 1360×860 the timeline shows at least eight calls of a stopped run, and scrolls on its own', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    const zones = ['UTC', 'Asia/Tokyo', 'Europe/Paris', 'America/New_York', 'Europe/Berlin'];
    await stack.mock.script([...zones.map((z, k) => ({ tool_calls: [{ name: 'calc', arguments: { expression: `${k}*7` } }, { name: 'clock', arguments: { timezone: z } }] })), { text: 'Done.' }]);
    await send(page, 'many calls');
    await waitStopped(page, 'completed');
    // The why-idle card shows (the column's tallest state) and the run's
    // ten calls are more than fit: the timeline scrolls, the column not.
    const seen = await page.evaluate(() => {
      const sc = document.querySelector('#timeline-scroll');
      const box = sc.getBoundingClientRect();
      // The run's header sticks at the top, over the calls scrolled under it.
      const top = Math.max(box.top, document.querySelector('.run-heading').getBoundingClientRect().bottom);
      const rows = [...document.querySelectorAll('[data-testid="tool-execution"]')]
        .filter((e) => {
          const r = e.getBoundingClientRect();
          return r.top >= top - 1 && r.bottom <= box.bottom + 1;
        });
      const col = document.querySelector('#panel-control');
      const head = document.querySelector('.run-heading').getBoundingClientRect();
      return { header: head.top >= box.top - 1 && head.bottom <= box.bottom, rows: rows.length, scrolls: sc.scrollHeight > sc.clientHeight, column: col.scrollHeight - col.clientHeight, last: rows.at(-1)?.getAttribute('data-execution-id') };
    });
    assert.ok(seen.rows >= 8, `${seen.rows} calls in sight`);
    assert.ok(seen.header, 'the run header in sight above them');
    assert.equal(seen.scrolls, true);
    assert.ok(seen.column <= 1, `the column overflows by ${seen.column} px`);
    // Following the run, the timeline ends at its last call.
    assert.equal(seen.last, await page.locator(tid('tool-execution')).last().getAttribute('data-execution-id'));
    p.assertClean();
    await p.close();
  });
});

describe('approvals in the grouped timeline', () => {
  let browser, stack;

  useStack((b, s) => { browser = b; stack = s; }, { config: { approvals: { rules: [{ tool: 'calc', action: 'ask' }] } } }, { reset: false });

  test('a call waiting for approval shows in its own run, which says it waits; after a reload too', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const id = await newChat(page);
    await stack.mock.script([{ tool_calls: [{ name: 'clock', arguments: { timezone: 'UTC' } }] }, { text: 'It is noon.' }]);
    await send(page, 'what time is it?');
    await waitStopped(page, 'completed');

    await stack.mock.script([{ tool_calls: [{ name: 'calc', arguments: { expression: '6*7' } }] }, { text: 'It is 42.' }]);
    await send(page, 'compute 6*7');
    await page.locator(`${tid('approval-card')}[data-status="pending"]`).waitFor({ timeout: 10000 });
    const [second, first] = await runsOf(stack.url, id);
    const check = async () => {
      const g = page.locator(`${tid('timeline-run')}[data-run-id="${second.id}"]`);
      await g.locator(tid('approval-notice')).waitFor();
      assert.equal(await g.locator(`${tid('approval-notice')} strong`).textContent(), 'calc waits for your approval');
      assert.equal(await g.getAttribute('data-state'), 'waiting');
      assert.equal(await g.locator(tid('run-state')).textContent(), 'Waiting for your approval');
      assert.equal(await page.locator(tid('approval-notice')).count(), 1);
      // The earlier run, closed, holds neither the notice nor calls.
      const old = page.locator(`${tid('timeline-run')}[data-run-id="${first.id}"]`);
      assert.equal(await old.locator(tid('run-toggle')).getAttribute('aria-expanded'), 'false');
      await old.locator(tid('run-toggle')).click();
      assert.equal(await old.locator(tid('approval-notice')).count(), 0);
      assert.equal(await old.locator(tid('tool-execution')).getAttribute('data-tool'), 'clock');
    };
    await check();
    await page.reload();
    await page.locator(`${tid('approval-card')}[data-status="pending"]`).waitFor();
    await check();

    await page.locator(tid('approve-button')).click();
    await waitStopped(page, 'completed');
    const g = page.locator(`${tid('timeline-run')}[data-run-id="${second.id}"]`);
    assert.equal(await g.locator(tid('approval-notice')).count(), 0);
    assert.equal(await g.locator(tid('tool-execution')).getAttribute('data-status'), 'ok');
    assert.equal(await g.locator(tid('run-state')).textContent(), 'Finished');
    p.assertClean();
    await p.close();
  });
});
