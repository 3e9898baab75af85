// Queue and Stop and send on the page: while a run works the composer
// offers both next to its Stop button. A queued message waits at the end of
// the message list, marked pending, until its run starts and answers it;
// Stop and send stops the run (its partial answer kept) and sends at once.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { useStack, openPage, tid, send, waitStopped, newChat, api, until, axeViolations } from './lib.mjs';

// A slow answer: a piece every 150 ms, so the run works for seconds.
const slow = { text: 'one two three four five six seven eight nine ten eleven twelve', piece_chars: 4, delay_ms: 150 };

const shape = (page) => page.locator(tid('message')).evaluateAll((els) => els.map((e) => [e.getAttribute('data-role'), e.getAttribute('data-pending') === 'true', e.querySelector('.bubble')?.textContent.replace(/\s+/g, ' ').trim()]));

describe('queue', () => {
  let browser, stack;

  useStack((b, s) => { browser = b; stack = s; }, {}, { reset: false });

  test('Queue: the buttons show while a run works; the queued message is pending, then answered', async () => {
    await stack.mock.reset();
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const sid = await newChat(page);
    const queueBtn = page.locator(tid('queue-button'));
    const interruptBtn = page.locator(tid('interrupt-button'));
    assert.equal(await queueBtn.isVisible(), false);
    assert.equal(await interruptBtn.isVisible(), false);

    await stack.mock.script([slow, { text: 'The queued answer.' }]);
    await send(page, 'first');
    await page.locator(`${tid('message')}[data-role="assistant"].streaming`).waitFor();
    assert.equal(await queueBtn.isVisible(), true);
    assert.equal(await interruptBtn.isVisible(), true);
    assert.equal(await page.locator(tid('composer-stop')).isVisible(), true);

    // Enter during the run keeps the text in the box, as before.
    await send(page, 'and then?');
    assert.equal(await page.locator(tid('message-input')).inputValue(), 'and then?');
    await queueBtn.click();
    const pending = page.locator(`${tid('message')}[data-pending="true"]`);
    await pending.waitFor();
    assert.equal(await page.locator(tid('message-input')).inputValue(), '');
    assert.equal(await pending.locator('.bubble').textContent(), 'and then?');
    assert.equal(await queueBtn.isDisabled(), true, 'one queued message at a time');
    // The buttons and the pending message pass the accessibility checks.
    const v = await axeViolations(page);
    assert.deepEqual(v.map((x) => `${x.id} (${x.impact}): ${x.help}: ${x.targets.slice(0, 6).join(', ')}`), []);
    // Pending and last, while the first run still streams.
    const during = await shape(page);
    assert.deepEqual(during.at(-1), ['user', true, 'and then?']);
    assert.equal(during.length, 3);

    await page.locator(`${tid('message')}[data-role="assistant"]`).filter({ hasText: 'The queued answer.' }).waitFor({ timeout: 15000 });
    await waitStopped(page, 'completed');
    assert.equal(await pending.count(), 0);
    assert.deepEqual(await shape(page), [
      ['user', false, 'first'], ['assistant', false, slow.text],
      ['user', false, 'and then?'], ['assistant', false, 'The queued answer.']]);
    assert.equal(await queueBtn.isVisible(), false);
    const ses = (await api(stack.url, 'GET', `/api/sessions/${sid}`)).body;
    assert.equal(ses.queued_run_id, null);
    p.assertClean();
    await p.close();
  });

  test('a reload shows the queued message pending; Stop drops it', async () => {
    await stack.mock.reset();
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const sid = await newChat(page);
    await stack.mock.script([{ ...slow, delay_ms: 300 }, { text: 'never asked' }]);
    await send(page, 'first');
    await page.locator(`${tid('message')}[data-role="assistant"].streaming`).waitFor();
    const q = await api(stack.url, 'POST', `/api/sessions/${sid}/runs`, { message: 'queued elsewhere', if_active: 'enqueue' });
    assert.equal(q.status, 202);
    // Sent from elsewhere: it shows from its event.
    await page.locator(`${tid('message')}[data-pending="true"]`).filter({ hasText: 'queued elsewhere' }).waitFor();
    await page.reload();
    await page.locator(`${tid('message')}[data-pending="true"]`).filter({ hasText: 'queued elsewhere' }).waitFor();
    await page.locator(tid('composer-stop')).click();
    await waitStopped(page);
    await until(async () => (await page.locator(`${tid('message')}[data-pending="true"]`).count()) === 0);
    assert.deepEqual((await shape(page)).map((m) => m[0]), ['user', 'assistant']);
    assert.equal((await api(stack.url, 'GET', `/api/runs/${q.body.id}`)).body.stop_reason, 'user_stopped');
    p.assertClean();
    await p.close();
  });

  test('Stop and send: the run stops with its partial answer and the message is answered', async () => {
    await stack.mock.reset();
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    await stack.mock.script([slow, { text: 'Doing that instead.' }]);
    await send(page, 'first');
    await page.locator(`${tid('message')}[data-role="assistant"].streaming`).waitFor();
    await page.locator(tid('message-input')).fill('do this instead');
    await page.locator(tid('interrupt-button')).click();
    await page.locator(`${tid('message')}[data-role="assistant"]`).filter({ hasText: 'Doing that instead.' }).waitFor({ timeout: 15000 });
    await waitStopped(page, 'completed');
    const msgs = await shape(page);
    assert.deepEqual(msgs.map((m) => [m[0], m[1]]), [['user', false], ['assistant', false], ['user', false], ['assistant', false]]);
    assert.equal(msgs[2][2], 'do this instead');
    assert.ok(slow.text.startsWith(msgs[1][2].replace('Stopped before the answer was complete.', '').trim()));
    assert.equal(await page.locator('.partial-note').count(), 1);
    p.assertClean();
    await p.close();
  });
});
