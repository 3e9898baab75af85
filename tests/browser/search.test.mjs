// Finding and paging chats on the page (docs/page.md, Chats): the list
// shows 50 chats and "Load more" the rest, typing in the search box
// filters the list through the API, a search pages the same way, clearing
// the box brings the list back, and a found chat renamed or deleted is
// shown so in the results.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';

import { useStack, openPage, tid, api, until } from './lib.mjs';

describe('session search and paging', () => {
  let browser, stack;
  const ids = {};

  useStack((b, s) => { browser = b; stack = s; }, {}, { reset: false });

  before(async () => {
    for (let i = 0; i < 60; i++) {
      const r = await api(stack.url, 'POST', '/api/sessions', { title: `Chat number ${i}` });
      assert.equal(r.status, 201, r.text);
      ids[i] = r.body.id;
    }
    const z = await api(stack.url, 'POST', '/api/sessions', { title: 'Zebra notes' });
    ids.zebra = z.body.id;
  });

  const titles = (page) => page.locator(`${tid('session-item')} .session-title`).allTextContents();

  test('load more shows the chats beyond the first 50, and search filters them', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const items = page.locator(tid('session-item'));
    const more = page.locator(tid('load-more-sessions'));
    await until(async () => (await items.count()) === 50);
    assert.equal((await titles(page))[0], 'Zebra notes');
    await more.waitFor();
    await more.click();
    await until(async () => (await items.count()) === 61);
    assert.ok(await more.isHidden());
    const all = await titles(page);
    assert.equal(all.at(-1), 'Chat number 0');
    assert.equal(new Set(all).size, 61);

    // Typing filters through the API; A-Z case does not matter.
    const search = page.locator(tid('session-search'));
    await search.fill('zEBRA');
    await until(async () => (await items.count()) === 1);
    assert.deepEqual(await titles(page), ['Zebra notes']);
    assert.ok(await more.isHidden());
    await search.fill('number 5');
    await until(async () => (await items.count()) === 11);
    assert.deepEqual(await titles(page), ['Chat number 59', 'Chat number 58', 'Chat number 57',
      'Chat number 56', 'Chat number 55', 'Chat number 54', 'Chat number 53', 'Chat number 52',
      'Chat number 51', 'Chat number 50', 'Chat number 5']);
    await search.fill('no chat has this');
    // The list is busy and the note hidden until the search answers.
    await until(async () => await page.locator('#session-empty').isVisible());
    assert.equal(await items.count(), 0);
    assert.equal(await page.locator('#session-empty').textContent(), 'No chats match “no chat has this”.');

    // A search of more than 50 chats pages too.
    await search.fill('chat number');
    await until(async () => (await items.count()) === 50);
    await more.waitFor();
    await more.click();
    await until(async () => (await items.count()) === 60);
    assert.ok(await more.isHidden());
    assert.equal((await titles(page)).at(-1), 'Chat number 0');

    // A found chat opens like any other.
    await search.fill('zebra');
    await until(async () => (await items.count()) === 1);
    await items.first().click();
    await until(async () => (await page.evaluate(() => location.hash)) === `#/sessions/${ids.zebra}`);

    // Clearing the box (Escape) brings back the list with its older page.
    await search.press('Escape');
    await until(async () => (await items.count()) === 61);
    assert.equal(await search.inputValue(), '');
    assert.ok(await page.locator('#session-empty').isHidden());
    p.assertClean();
    await p.close();
  });

  test('a found chat renamed shows its new title; deleted, it leaves the results', async () => {
    const made = await api(stack.url, 'POST', '/api/sessions', { title: 'Okapi sightings' });
    const id = made.body.id;
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    const items = page.locator(tid('session-item'));
    await items.first().waitFor();
    await page.locator(tid('session-search')).fill('okapi');
    await until(async () => (await items.count()) === 1);
    await items.first().click();
    await until(async () => (await page.evaluate(() => location.hash)) === `#/sessions/${id}`);

    await page.locator(tid('rename-session')).click();
    await page.locator(tid('rename-input')).fill('Okapi sightings, 2026');
    await page.locator(tid('rename-input')).press('Enter');
    await until(async () => (await titles(page)).join() === 'Okapi sightings, 2026');

    await page.locator(tid('delete-session')).click();
    await page.locator(tid('confirm-delete')).click();
    await until(async () => (await items.count()) === 0);
    assert.equal(await page.locator('#session-empty').textContent(), 'No chats match “okapi”.');
    assert.equal((await api(stack.url, 'GET', `/api/sessions/${id}`)).status, 404);
    p.assertClean();
    await p.close();
  });

  test('a search too long for the server says why', async () => {
    const p = await openPage(browser, stack.url + '/');
    const { page } = p;
    await page.locator(tid('session-item')).first().waitFor();
    await page.locator(tid('session-search')).fill('€'.repeat(67));
    const empty = page.locator('#session-empty');
    await until(async () => (await empty.isVisible()) && (await empty.textContent()).startsWith('Search failed'));
    assert.equal(await empty.textContent(), 'Search failed: q must be at most 200 bytes, got 201');
    assert.equal(await page.locator(tid('session-item')).count(), 0);
    p.assertClean(/status of 400/);
    await p.close();
  });
});
