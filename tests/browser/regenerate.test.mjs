// Regenerate on the page: the button under the last answer of an idle chat
// answers the last user message again; the replaced answer stays, collapsed
// as "Earlier answer", also after a reload.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { useStack, openPage, tid, send, waitStopped, newChat } from './lib.mjs';

describe('regenerate', () => {
  let browser, stack;

  useStack((b, s) => { browser = b; stack = s; }, {}, { reset: false });

  test('the last answer is replaced in place and kept as an earlier answer', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await newChat(page);
    await stack.mock.script([{ text: 'First answer.' }, { text: 'Second answer.' }]);
    await send(page, 'hello');
    await waitStopped(page, 'completed');
    const button = page.locator(tid('regenerate-button'));
    await button.waitFor();
    await button.click();
    await page.locator(`${tid('message')}[data-superseded="true"]`).waitFor();
    await page.locator(`${tid('message')}[data-role="assistant"]:not([data-superseded])`).filter({ hasText: 'Second answer.' }).waitFor();
    await waitStopped(page, 'completed');
    const shape = async () => page.locator(tid('message')).evaluateAll((els) => els.map((e) => [e.getAttribute('data-role'), e.getAttribute('data-superseded') === 'true', e.textContent.replace(/\s+/g, ' ').trim()]));
    assert.deepEqual(await shape(), [['user', false, 'hello'], ['assistant', true, 'Earlier answerFirst answer.'], ['assistant', false, 'Second answer.']]);
    // The earlier answer is collapsed; the button is under the new one.
    assert.equal(await page.locator(`${tid('message')}[data-superseded="true"] details`).getAttribute('open'), null);
    assert.equal(await button.count(), 1);
    // The model answered the question again without the first answer.
    const reqs = await stack.mock.requests();
    assert.deepEqual(reqs.at(-1).body.messages.filter((m) => m.role !== 'system').map((m) => [m.role, m.content]), [['user', 'hello']]);
    // A reload shows the same.
    await page.reload();
    await page.locator(`${tid('message')}[data-superseded="true"]`).waitFor();
    assert.deepEqual(await shape(), [['user', false, 'hello'], ['assistant', true, 'Earlier answerFirst answer.'], ['assistant', false, 'Second answer.']]);
    p.assertClean();
    await p.close();
  });
});
