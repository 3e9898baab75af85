#!/usr/bin/env node
// long_session: what a run's start and a session read cost as a session
// grows (docs/benchmarks.md, Long sessions). It starts `chatplane serve`
// with the demo brain on a fresh SQLite file, runs RUNS runs one after the
// other in one session (each waits for the previous one to stop), and
// times, at the checkpoints, the answer to POST /api/sessions/{id}/runs
// (202 once the start transaction, with its history read, is done) and to
// GET /api/sessions/{id}. Odd runs ask for a calculation (a tool call and
// its result), even ones send a 200-byte message that the demo brain
// answers with its note of about 300 bytes.
//
//   node bench/long_session.mjs BIN [RUNS]
//
// Prints one line per checkpoint: runs before, then the median and the
// best of the last SAMPLE starts and session reads, in milliseconds.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

const bin = process.argv[2];
const runs = Number(process.argv[3] || 1000);
if (!bin || !(runs > 0)) {
  console.error('usage: node bench/long_session.mjs BIN [RUNS]');
  process.exit(2);
}
const SAMPLE = 10;
const checkpoints = new Set([SAMPLE, 100, 250, 500, 750, runs]);

const dir = mkdtempSync(path.join(tmpdir(), 'chatplane-long-'));
const env = { ...process.env, CHATPLANE_DEMO_DELAY_MS: '0' };
delete env.CHATPLANE_LLM_URL;
delete env.CHATPLANE_CONFIG;
const server = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--db', `sqlite:${path.join(dir, 'chat.db')}`],
  { env, stdio: ['ignore', 'ignore', 'pipe'] });
const port = await new Promise((resolve, reject) => {
  createInterface({ input: server.stderr }).on('line', (l) => {
    const m = /msg="listening" url=http:\/\/127\.0\.0\.1:(\d+)/.exec(l);
    if (m) resolve(Number(m[1]));
  });
  server.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
});
const base = `http://127.0.0.1:${port}`;

// A request, timed; a 409 run_active (the previous run's stored stop can
// be seen a moment before the engine lets the session go) is asked again.
async function call(method, p, body) {
  for (;;) {
    const t0 = process.hrtime.bigint();
    const r = await fetch(base + p, {
      method, headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await r.json();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status === 409 && json.error.code === 'run_active') {
      await new Promise((res) => setTimeout(res, 1));
      continue;
    }
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(json)}`);
    return { ms, json };
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const filler = 'Please tell me about the weather on the coast this week, and what I should pack for a short trip there. '.repeat(2);

try {
  const sid = (await call('POST', '/api/sessions', {})).json.id;
  const starts = [], reads = [];
  console.log('runs before | start p50 | start best | GET session p50 | GET session best');
  for (let i = 0; i < runs; i++) {
    const message = i % 2 ? `what is ${i}*7?` : filler.slice(0, 200);
    const start = await call('POST', `/api/sessions/${sid}/runs`, { message });
    starts.push(start.ms);
    for (;;) {
      const s = await call('GET', `/api/sessions/${sid}`);
      if (s.json.status === 'idle' && s.json.last_run && s.json.last_run.id === start.json.id) {
        reads.push(s.ms);
        break;
      }
    }
    if (checkpoints.has(i + 1)) {
      const st = starts.slice(-SAMPLE), rd = reads.slice(-SAMPLE);
      console.log(`${i + 1 - SAMPLE}-${i} | ${median(st).toFixed(2)} | ${Math.min(...st).toFixed(2)} | ` +
        `${median(rd).toFixed(2)} | ${Math.min(...rd).toFixed(2)}`);
    }
  }
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
