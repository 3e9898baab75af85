// A database disk that fills while 20 runs stream, and then has room again
// (docs/runs.md, Interrupted runs): every run stream ends within a few
// seconds with a comment saying why, every session is released once
// writes work again (each earlier run then has exactly one run_stopped,
// `interrupted` with the write's detail), and a new run in each session
// starts and completes. The database sits on a small tmpfs of its own,
// filled with a file and emptied by removing it; mounting one needs root,
// so elsewhere the test is skipped.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { api, newSession, parseFrames, sleep, startServer, until, waitIdle } from './lib/server.mjs';

const RUNS = 20;
const UNRECORDED = ': the database refused a write, so the run stopped; its run_stopped event '
  + 'is stored and sent on the session\'s stream once the database takes writes again\n\n';

let mnt = null;
let mounted = false;
let srv = null;
let why = null;

before(() => {
  mnt = mkdtempSync(path.join(tmpdir(), 'chatplane-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt], { stdio: 'pipe' });
    mounted = true;
  } catch (e) {
    why = `cannot mount a tmpfs here (${String(e.stderr || e.message).trim()})`;
  }
});

after(async () => {
  if (srv) {
    await srv.stop('SIGKILL');
    srv.cleanup();
  }
  if (mounted) execFileSync('umount', ['-l', mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

// Opens a run stream (POST …/runs with Accept: text/event-stream) and keeps
// what it received; `ended` resolves to the time the response ended.
function runStream(port, sessionId, message) {
  const st = { text: '', status: 0, endedAt: 0 };
  st.ended = new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', agent: false,
      path: `/api/sessions/${sessionId}/runs`,
      headers: { Accept: 'text/event-stream', 'Content-Type': 'application/json' } }, (res) => {
      st.status = res.statusCode;
      res.setEncoding('utf8');
      res.on('data', (c) => { st.text += c; });
      const done = () => { st.endedAt = Date.now(); resolve(st.endedAt); };
      res.on('end', done);
      res.on('error', done);
    });
    req.on('error', reject);
    req.end(JSON.stringify({ message }));
  });
  st.frames = () => parseFrames(st.text);
  return st;
}

// Fills the file system of dir with one file; returns its path.
function fill(dir) {
  const file = path.join(dir, 'filler');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if (e.code !== 'ENOSPC') throw e;
  }
  // The last few bytes a whole chunk no longer fit in.
  try {
    for (;;) writeSync(fd, chunk, 0, 512);
  } catch (e) {
    if (e.code !== 'ENOSPC') throw e;
  }
  closeSync(fd);
  return file;
}

test('a full disk ends the run streams, and the sessions take new runs once it has room', async (t) => {
  if (!mounted) {
    t.skip(why);
    return;
  }
  // 100 ms per streamed piece: a plain answer streams for several seconds.
  srv = await startServer({ db: `sqlite:${path.join(mnt, 'chat.db')}`,
    env: { CHATPLANE_DEMO_DELAY_MS: '100' } });
  const sessions = [];
  for (let i = 0; i < RUNS; i++) sessions.push({ id: (await newSession(srv.url)).id });
  sessions.forEach((s, k) => { s.stream = runStream(srv.port, s.id, `hello number ${k}`); });
  for (const s of sessions) {
    await until(() => s.stream.frames().some((f) => f.event === 'token'), 10000);
    s.run = s.stream.frames().find((f) => f.event === 'run_started').data.run_id;
  }

  const filler = fill(mnt);
  const filledAt = Date.now();
  const ends = await Promise.race([Promise.all(sessions.map((s) => s.stream.ended)),
    sleep(10000).then(() => {
      const open = sessions.filter((s) => !s.stream.endedAt).length;
      throw new Error(`${open} of ${RUNS} run streams still open 10 s after the disk filled`);
    })]);
  const slowest = Math.max(...ends) - filledAt;
  assert.ok(slowest < 5000, `the last run stream ended ${slowest} ms after the disk filled`);
  for (const s of sessions) {
    assert.equal(s.stream.status, 200);
    const frames = s.stream.frames();
    assert.ok(!frames.some((f) => f.event === 'run_stopped'), `${s.id}: no run_stopped could be stored`);
    assert.ok(s.stream.text.endsWith(UNRECORDED), `${s.id} ended with: ${s.stream.text.slice(-300)}`);
  }

  // While the disk is full the session still holds its run, as the
  // database says: a new run is refused, a stop answers with the run.
  const busy = await api(srv.url, 'POST', `/api/sessions/${sessions[0].id}/runs`, { message: 'again' });
  assert.equal(busy.status, 409, busy.text);
  assert.equal(busy.body.error.code, 'run_active');
  const stop = await api(srv.url, 'POST', `/api/sessions/${sessions[0].id}/stop`);
  assert.equal(stop.status, 202, stop.text);
  assert.equal(stop.body.id, sessions[0].run);
  assert.equal(stop.body.stop_reason, 'interrupted');

  unlinkSync(filler);
  for (const s of sessions) {
    const idle = await waitIdle(srv.url, s.id, 15000);
    assert.equal(idle.last_run.id, s.run);
    assert.equal(idle.last_run.stop_reason, 'interrupted');
    assert.match(idle.last_run.stop_detail, /^the database refused a write/);
    const none = await api(srv.url, 'POST', `/api/sessions/${s.id}/stop`);
    assert.equal(none.status, 409, none.text);
    assert.equal(none.body.error.code, 'no_active_run');
  }

  for (const s of sessions) s.next = runStream(srv.port, s.id, 'what is 6*7?');
  let checked = 0;
  for (const s of sessions) {
    await s.next.ended;
    assert.equal(s.next.status, 200, s.next.text);
    const last = s.next.frames().at(-1);
    assert.equal(last.event, 'run_stopped', s.next.text.slice(-300));
    assert.equal(last.data.reason, 'completed');
    const ev = await api(srv.url, 'GET', `/api/sessions/${s.id}/events?after=0`, undefined,
      { Accept: 'application/json' });
    assert.equal(ev.status, 200, ev.text);
    const events = ev.body.events;
    events.forEach((e, k) => assert.equal(e.seq, k + 1, `${s.id}: seq at ${k}`));
    for (const run of [s.run, last.data.run_id]) {
      const mine = events.filter((e) => e.run_id === run);
      const count = (type) => mine.filter((e) => e.type === type).length;
      assert.equal(count('run_started'), 1, `${run}: run_started`);
      assert.equal(count('run_stopped'), 1, `${run}: run_stopped`);
      assert.equal(mine.filter((e) => e.type === 'message' && e.role === 'user').length, 1,
        `${run}: user message`);
      assert.equal(mine.at(-1).type, 'run_stopped', `${run}: run_stopped is its last event`);
      checked += mine.length;
    }
    const first = events.find((e) => e.type === 'run_stopped' && e.run_id === s.run);
    assert.equal(first.reason, 'interrupted');
    assert.match(first.detail, /^the database refused a write/);
  }
  t.diagnostic(`${RUNS * 2} runs, ${checked} events checked; streams ended ${slowest} ms after the disk filled`);
  assert.deepEqual(await srv.stop('SIGTERM'), { code: 0, signal: null });
});
