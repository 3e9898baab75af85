// `chatplane sessions`: the table of sessions, newest first, stable text
// when not on a terminal and relative times on one.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';

import { binary, jsonLines, run, runPty, screen, shq, workspace } from './helpers.mjs';

let ws;
beforeEach(() => {
  ws = workspace();
});
afterEach(() => ws.cleanup());

const env = () => ({ ...ws.env, CHATPLANE_DEMO_DELAY_MS: '0' });
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

async function ask(args, input) {
  const r = await run(['ask', '--json', ...args], { env: env(), input });
  return jsonLines(r.stdout)[0].session_id;
}

// Splits a table line into its cells at the column starts of the header.
function cells(header, line) {
  const starts = [...header.matchAll(/\S+(?: \S+)*/g)].map((m) => m.index);
  return starts.map((s, i) => line.slice(s, starts[i + 1]).trimEnd());
}

describe('sessions', () => {
  test('a table, newest first, with the last stop reason and RFC 3339 times', async () => {
    const a = await ask(['what is 6*7?']);
    const b = await ask(['--mode', 'quick', 'demo loop']);
    const c = await ask(['hello']);
    await run(['ask', '--session', c, 'demo fail'], { env: env() });
    const r = await run(['sessions'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const [header, ...rows] = r.stdout.trimEnd().split('\n');
    assert.match(header, /^ID {2,}TITLE {2,}MODE {2,}STATUS {2,}LAST STOP {2,}UPDATED$/);
    const table = rows.map((l) => cells(header, l));
    assert.deepEqual(table.map((t) => t.slice(0, 5)), [
      [c, 'hello', 'standard', 'idle', 'repeated_failures'],
      [b, 'demo loop', 'quick', 'idle', 'max_steps'],
      [a, 'what is 6*7?', 'standard', 'idle', 'completed'],
    ]);
    for (const t of table) assert.match(t[5], RFC3339);
    // No control characters and no trailing blanks: plain text for scripts.
    assert.doesNotMatch(r.stdout, /[\x00-\x09\x0b-\x1f]| \n/);
  });

  test('long titles are cut to 40 columns; newlines in titles become spaces', async () => {
    const long = 'a very long question that goes on and on about many things at once';
    await ask([long]);
    await ask(['-'], 'first line\nsecond line');
    const r = await run(['sessions'], { env: env() });
    const [header, ...rows] = r.stdout.trimEnd().split('\n');
    const titles = rows.map((l) => cells(header, l)[1]);
    assert.deepEqual(titles, ['first line second line', `${long.slice(0, 37)}...`]);
    assert.equal(titles[1].length, 40);
  });

  test('an empty database prints nothing on stdout and says so on stderr', async () => {
    const m = await run(['migrate'], { env: env() });
    assert.equal(m.code, 0, m.stderr);
    const r = await run(['sessions'], { env: env() });
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'no sessions yet; start one with: chatplane ask MESSAGE\n');
  });

  test('on a terminal, times are relative', async () => {
    const id = await ask(['hello']);
    const r = await runPty([binary, 'sessions'].map(shq).join(' '), { env: env() });
    assert.equal(r.code, 0, r.output);
    const [header, row] = screen(r.output);
    assert.deepEqual(cells(header, row), [id, 'hello', 'standard', 'idle', 'completed', 'just now']);
  });
});
