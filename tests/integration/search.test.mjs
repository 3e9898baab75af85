// Finding sessions with GET /api/sessions?q= against the real server
// (docs/api.md, Sessions): title and message text, ASCII case folded,
// literal wildcards, paging with limit and before, the plain list for an
// empty q, 400 for a q too long or not UTF-8, and another owner's sessions
// never found, not even through before=.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { api, runBinary, sleep, startServer, until, waitIdle } from './lib/server.mjs';

const ids = (r) => r.body.sessions.map((s) => s.id);
const q = (text, rest = '') => `/api/sessions?q=${encodeURIComponent(text)}${rest}`;

describe('GET /api/sessions?q=', () => {
  let srv;
  const made = {};

  before(async () => {
    srv = await startServer();
    const create = async (title) => {
      const r = await api(srv.url, 'POST', '/api/sessions', title ? { title } : {});
      assert.equal(r.status, 201, r.text);
      return r.body.id;
    };
    made.trip = await create('Trip to Lisbon');
    made.okapi = await create();
    const run = await api(srv.url, 'POST', `/api/sessions/${made.okapi}/runs`, { message: 'Where does the Okapi live?' });
    assert.equal(run.status, 202, run.text);
    await waitIdle(srv.url, made.okapi);
    made.percent = await create('100% sure');
    made.zeros = await create('1000 sure');
    made.pages = [];
    for (let i = 0; i < 5; i++) made.pages.push(await create(`walrus ${i}`));
  });

  // The server exits cleanly, so the sanitizer build catches a leak here.
  after(async () => {
    assert.equal((await srv.stop()).code, 0);
    srv.cleanup();
  });

  test('finds titles and message text, folding A-Z only', async () => {
    for (const text of ['lisbon', 'LISBON', 'to Lis']) {
      const r = await api(srv.url, 'GET', q(text));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(ids(r), [made.trip], text);
    }
    // The user's message, and the demo brain's answer to it.
    assert.deepEqual(ids(await api(srv.url, 'GET', q('okapi LIVE'))), [made.okapi]);
    assert.deepEqual(ids(await api(srv.url, 'GET', q('demo brain'))), [made.okapi]);
    assert.deepEqual(ids(await api(srv.url, 'GET', q('no such thing'))), []);
    // What is found is the session object, as the plain list has it.
    const found = await api(srv.url, 'GET', q('Lisbon'));
    const one = await api(srv.url, 'GET', `/api/sessions/${made.trip}`);
    assert.deepEqual(found.body.sessions[0], one.body);
  });

  test('+ in the query string is a space, %2B a plus sign', async () => {
    const plus = (await api(srv.url, 'POST', '/api/sessions', { title: 'one+two' })).body.id;
    const space = (await api(srv.url, 'POST', '/api/sessions', { title: 'one two' })).body.id;
    assert.deepEqual(ids(await api(srv.url, 'GET', '/api/sessions?q=one+two')), [space]);
    assert.deepEqual(ids(await api(srv.url, 'GET', '/api/sessions?q=one%2Btwo')), [plus]);
    for (const id of [plus, space]) assert.equal((await api(srv.url, 'DELETE', `/api/sessions/${id}`)).status, 204);
  });

  test('% and _ in q are plain text', async () => {
    assert.deepEqual(ids(await api(srv.url, 'GET', q('0% s'))), [made.percent]);
    assert.deepEqual(ids(await api(srv.url, 'GET', q('%'))), [made.percent]);
    assert.deepEqual(ids(await api(srv.url, 'GET', q('1_0'))), []);
  });

  test('pages with limit and before like the plain list', async () => {
    const p = made.pages;
    assert.deepEqual(ids(await api(srv.url, 'GET', q('WALRUS', '&limit=2'))), [p[4], p[3]]);
    assert.deepEqual(ids(await api(srv.url, 'GET', q('walrus', `&limit=2&before=${p[3]}`))), [p[2], p[1]]);
    assert.deepEqual(ids(await api(srv.url, 'GET', q('walrus', `&limit=2&before=${p[1]}`))), [p[0]]);
    // A cursor that is not a match pages from where it stands.
    assert.deepEqual(ids(await api(srv.url, 'GET', q('walrus', `&before=${made.trip}`))), []);
    assert.deepEqual(ids(await api(srv.url, 'GET', q('lisbon', `&before=${p[0]}`))), [made.trip]);
    const bad = await api(srv.url, 'GET', q('walrus', '&limit=0'));
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /limit/);
  });

  test('an empty q is the plain list', async () => {
    const all = await api(srv.url, 'GET', '/api/sessions');
    const empty = await api(srv.url, 'GET', '/api/sessions?q=');
    assert.equal(empty.status, 200);
    assert.equal(empty.text, all.text);
    assert.equal(all.body.sessions.length, 9);
  });

  test('a q too long or not UTF-8 is 400 naming q', async () => {
    const ok = await api(srv.url, 'GET', q('x'.repeat(200)));
    assert.equal(ok.status, 200, ok.text);
    const long = await api(srv.url, 'GET', q('x'.repeat(201)));
    assert.equal(long.status, 400);
    assert.deepEqual(long.body, { error: { code: 'bad_request', message: 'q must be at most 200 bytes, got 201' } });
    // 67 three-byte characters are 201 bytes: the cap counts bytes.
    const wide = await api(srv.url, 'GET', q('€'.repeat(67)));
    assert.equal(wide.status, 400);
    assert.equal(wide.body.error.message, 'q must be at most 200 bytes, got 201');
    const latin1 = await api(srv.url, 'GET', '/api/sessions?q=%E9t%E9');
    assert.equal(latin1.status, 400);
    assert.deepEqual(latin1.body, { error: { code: 'bad_request', message: 'q must be UTF-8 text' } });
  });

  test('a deleted session is not found', async () => {
    const r = await api(srv.url, 'POST', '/api/sessions', { title: 'short-lived capybara' });
    assert.deepEqual(ids(await api(srv.url, 'GET', q('capybara'))), [r.body.id]);
    assert.equal((await api(srv.url, 'DELETE', `/api/sessions/${r.body.id}`)).status, 204);
    assert.deepEqual(ids(await api(srv.url, 'GET', q('capybara'))), []);
  });
});

describe('GET /api/sessions?q= with owners', () => {
  test("another owner's sessions are never found, not even as before=", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'chatplane-search-'));
    const token = async (name) => {
      const r = await runBinary(['token', 'create', name, '--db', `sqlite:${path.join(dir, 'chat.db')}`]);
      assert.equal(r.code, 0, r.stderr);
      return { Authorization: `Bearer ${r.stdout.trimEnd().split('\n').at(-1)}` };
    };
    const alice = await token('alice');
    const bob = await token('bob');
    const srv = await startServer({ dir });
    try {
      const create = async (who, title) => (await api(srv.url, 'POST', '/api/sessions', { title }, who)).body.id;
      const b1 = await create(bob, 'shared word heron');
      const a1 = await create(alice, 'alice heron');
      const b2 = await create(bob, 'bob heron');
      assert.deepEqual(ids(await api(srv.url, 'GET', q('heron'), undefined, alice)), [a1]);
      assert.deepEqual(ids(await api(srv.url, 'GET', q('heron'), undefined, bob)), [b2, b1]);
      const unknown = await api(srv.url, 'GET', q('heron', '&before=ses_0000000000000000000000000'), undefined, alice);
      assert.deepEqual(unknown.body, { sessions: [] });
      for (const id of [b1, b2]) {
        const r = await api(srv.url, 'GET', q('heron', `&before=${id}`), undefined, alice);
        assert.equal(r.status, unknown.status);
        assert.equal(r.text, unknown.text);
      }
      assert.equal((await api(srv.url, 'GET', q('heron'))).status, 401);
      assert.equal((await srv.stop()).code, 0);
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });
});

// Messages are indexed a moment after they are stored (every 200 ms once
// no run has started for 100 ms, off the event log): found before, and
// found the same once indexed.
describe('GET /api/sessions?q= while the index catches up', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => {
    assert.equal((await srv.stop()).code, 0);
    srv.cleanup();
  });

  test('a message is found before and after the index takes it', async () => {
    const id = (await api(srv.url, 'POST', '/api/sessions', {})).body.id;
    const run = await api(srv.url, 'POST', `/api/sessions/${id}/runs`, { message: 'What do capybaras eat?' });
    assert.equal(run.status, 202, run.text);
    assert.deepEqual(ids(await api(srv.url, 'GET', q('CAPYBARAS eat'))), [id]);
    await waitIdle(srv.url, id);
    await new Promise((r) => setTimeout(r, 700));
    assert.deepEqual(ids(await api(srv.url, 'GET', q('capybaras eat'))), [id]);
    assert.deepEqual(ids(await api(srv.url, 'GET', q('do capybaras'))), [id]);
  });
});

// The index's jobs hold back while runs are starting, but no longer than
// about a second after the index last caught up (docs/storage.md, Search):
// under starts every few tens of milliseconds messages are still indexed,
// and once the starts stop every stored message is, exactly once, and so
// is every session's title (set by its first run; an empty title is not
// indexed).
describe('the search index while runs keep starting', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => {
    assert.equal((await srv.stop()).code, 0);
    srv.cleanup();
  });

  const indexed = async () =>
    Number(/^chatplane_search_indexed_total (\S+)$/m.exec((await api(srv.url, 'GET', '/metrics')).text)[1]);

  test('messages are indexed during the starts and all of them and the titles after', async () => {
    const base = await indexed();
    const made = [];
    let seenAt = null;
    let longestGap = 0;
    let last = Date.now();
    const t0 = last;
    while (Date.now() - t0 < 2500) {
      const id = (await api(srv.url, 'POST', '/api/sessions', {})).body.id;
      const run = await api(srv.url, 'POST', `/api/sessions/${id}/runs`, { message: `okapi ${made.length}` });
      assert.equal(run.status, 202, run.text);
      const now = Date.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      made.push(id);
      if (seenAt === null && (await indexed()) > base) seenAt = now - t0;
      await sleep(20);
    }
    // Starts came at least every 100 ms, so only the one-second limit let
    // the index run meanwhile (a slower machine is not judged on it).
    if (longestGap < 100) assert.ok(seenAt !== null && seenAt >= 900, `indexed at ${seenAt} ms`);
    else assert.ok(seenAt !== null, 'nothing indexed while runs kept starting');
    let stored = 0;
    for (const id of made) {
      await waitIdle(srv.url, id);
      stored += (await api(srv.url, 'GET', `/api/sessions/${id}/messages`)).body.messages.length;
    }
    assert.ok(stored >= 2 * made.length, `${stored} messages for ${made.length} runs`);
    const texts = stored + made.length;
    await until(async () => (await indexed()) - base >= texts, 5000);
    await sleep(400);
    assert.equal((await indexed()) - base, texts);
    // No commit had to checkpoint the WAL itself (docs/storage.md,
    // Checkpoints); both kinds are always shown.
    const text = (await api(srv.url, 'GET', '/metrics')).text;
    assert.match(text, /^chatplane_sqlite_checkpoints_total\{kind="background"\} \d+$/m);
    assert.match(text, /^chatplane_sqlite_checkpoints_total\{kind="fallback"\} 0$/m);
  });
});
