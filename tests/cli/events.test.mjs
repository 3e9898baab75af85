// `chatplane events`: the stored events of a session as JSON lines, the
// same text `ask --json` printed as the run went; --after; --follow while
// another process writes to the same database.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, test } from 'node:test';

import { binary, jsonLines, run, workspace } from './helpers.mjs';

let ws;
beforeEach(() => {
  ws = workspace();
});
afterEach(() => ws.cleanup());

const env = () => ({ ...ws.env, CHATPLANE_DEMO_DELAY_MS: '0' });
const lines = (text) => text.split('\n').filter((l) => l !== '');

// Runs `ask --json`; resolves to its output lines and session id.
async function askJson(args) {
  const r = await run(['ask', '--json', ...args], { env: env() });
  assert.ok([0, 3].includes(r.code), r.stderr);
  const out = lines(r.stdout);
  return { out, session: JSON.parse(out[0]).session_id };
}

// The lines of events that the store keeps for good: token events may be
// dropped once the run's assistant messages are stored (docs/events.md).
const kept = (ls) => ls.filter((l) => JSON.parse(l).type !== 'token');

// Checks that printed equals what ask printed, allowing dropped tokens.
function assertSameEvents(printed, asked) {
  assert.deepEqual(kept(printed), kept(asked));
  const all = new Set(asked);
  for (const l of printed) assert.ok(all.has(l), `not printed by ask: ${l}`);
  const seqs = printed.map((l) => JSON.parse(l).seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
}

describe('events', () => {
  test('prints the events of the run exactly as stored, in seq order', async () => {
    const { out, session } = await askJson(['what is 6*7?']);
    const r = await run(['events', session], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.ok(r.stdout.endsWith('\n'));
    assertSameEvents(lines(r.stdout), out);
    assert.equal(JSON.parse(lines(r.stdout).at(-1)).type, 'run_stopped');
  });

  test('two runs of one session come out as one log', async () => {
    const first = await askJson(['what is 6*7?']);
    const second = await run(['ask', '--json', '--session', first.session, 'demo loop'], { env: env() });
    const r = await run(['events', first.session], { env: env() });
    assertSameEvents(lines(r.stdout), [...first.out, ...lines(second.stdout)]);
  });

  test('--after N prints only the events with a greater seq', async () => {
    const { out, session } = await askJson(['what is 6*7?']);
    const r = await run(['events', session, '--after', '5'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const printed = lines(r.stdout);
    assert.equal(JSON.parse(printed[0]).seq, 6);
    assertSameEvents(printed, out.filter((l) => JSON.parse(l).seq > 5));
    const none = await run(['events', `--after=${out.length}`, session], { env: env() });
    assert.equal(none.code, 0);
    assert.equal(none.stdout, '');
  });

  test('an unknown session exits 1 naming it', async () => {
    await askJson(['hello']);
    const r = await run(['events', 'ses_nope'], { env: env() });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "chatplane events: no session 'ses_nope'\n");
  });

  test('a database file that does not exist is not created', async () => {
    const r = await run(['events', 'ses_x'], { env: { CHATPLANE_DB: `sqlite:${ws.dir}/missing.db` } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^chatplane events: no database at .*missing\.db; /);
    const again = await run(['sessions'], { env: { CHATPLANE_DB: `sqlite:${ws.dir}/missing.db` } });
    assert.equal(again.code, 1);
    assert.equal(existsSync(`${ws.dir}/missing.db`), false);
  });
});

describe('events --follow', () => {
  // Starts `events SESSION --follow`; lines arrive in follower.lines.
  function follow(session) {
    const child = spawn(binary, ['events', session, '--follow'], {
      env: { PATH: process.env.PATH, ...env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const f = { child, lines: [], stderr: '', waiters: [] };
    child.stderr.on('data', (d) => (f.stderr += d));
    createInterface({ input: child.stdout }).on('line', (l) => {
      f.lines.push(l);
      f.waiters = f.waiters.filter((w) => !w());
    });
    f.exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    // Resolves once pred(lines) holds; fails after ms.
    f.until = (pred, ms = 10000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out; got ${f.lines.length} lines; ${f.stderr}`)), ms);
        const check = () => {
          if (!pred(f.lines)) return false;
          clearTimeout(timer);
          resolve();
          return true;
        };
        if (!check()) f.waiters.push(check);
      });
    return f;
  }

  test('prints the old events, then the new ones another process writes; SIGTERM exits 0', async () => {
    const first = await askJson(['hello']);
    const f = follow(first.session);
    await f.until((ls) => ls.length === first.out.length);
    assertSameEvents(f.lines, first.out);

    const second = await run(['ask', '--json', '--session', first.session, 'what is 6*7?'], { env: env() });
    assert.equal(second.code, 0, second.stderr);
    const added = lines(second.stdout);
    await f.until((ls) => ls.some((l) => l === added.at(-1)));
    assertSameEvents(f.lines.slice(first.out.length), added);

    f.child.kill('SIGTERM');
    assert.deepEqual(await f.exited, { code: 0, signal: null });
    assert.equal(f.stderr, '');
  });

  test('SIGINT exits 0 too', async () => {
    const { out, session } = await askJson(['hello']);
    const f = follow(session);
    await f.until((ls) => ls.length === out.length);
    f.child.kill('SIGINT');
    assert.deepEqual(await f.exited, { code: 0, signal: null });
  });

  test('exits 0 when the reader of its output goes away', async () => {
    const { out, session } = await askJson(['hello']);
    const f = follow(session);
    await f.until((ls) => ls.length === out.length);
    f.child.stdout.destroy();
    const t0 = Date.now();
    assert.deepEqual(await f.exited, { code: 0, signal: null });
    assert.ok(Date.now() - t0 < 3000);
  });
});
