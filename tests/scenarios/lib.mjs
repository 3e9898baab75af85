// Helpers for the engine scenario tests: the project's mock model server
// and `chatplane ask --json` runs against it, each with a fresh database.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

const root = path.resolve(import.meta.dirname, '..', '..');
export const binary = path.join(root, process.env.CHATPLANE_BIN || 'build/chatplane');

// Starts the mock model server; resolves to {url, script, requests, stop}.
export async function startMock() {
  const child = spawn(process.execPath, [path.join(root, 'tests/mock-llm/server.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const rl = createInterface({ input: child.stdout });
  const port = await new Promise((resolve, reject) => {
    rl.once('line', (line) => {
      const m = /^listening (\d+)$/.exec(line);
      m ? resolve(Number(m[1])) : reject(new Error(`mock said: ${line}`));
    });
    child.once('exit', (code) => reject(new Error(`mock exited with ${code}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  const post = async (p, body) => {
    const r = await fetch(base + p, { method: 'POST', body: JSON.stringify(body ?? {}) });
    if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`);
    return r.json().catch(() => null);
  };
  return {
    url: `${base}/v1`,
    reset: () => post('/__reset'),
    script: (responses) => post('/__script', responses),
    // The ids GET /v1/models lists from now on (until reset).
    setModels: (ids) => post('/__models', ids),
    requests: async () => (await fetch(base + '/__requests')).json(),
    stop: () => child.kill('SIGTERM'),
  };
}

// A fresh directory with a database URL and an optional config file.
export function workspace(config) {
  const dir = mkdtempSync(path.join(tmpdir(), 'chatplane-scenario-'));
  const env = { CHATPLANE_DB: `sqlite:${path.join(dir, 'chat.db')}` };
  if (config) {
    const file = path.join(dir, 'config.json');
    writeFileSync(file, JSON.stringify(config));
    env.CHATPLANE_CONFIG = file;
  }
  return { dir, env, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

// Runs `chatplane ask --json ...args`; resolves to {code, events, stderr}.
// opts.signal sends SIGINT once an event of type opts.signal.after arrives.
export function ask(args, { env = {}, signalAfter, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['ask', '--json', ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const events = [];
    let stderr = '';
    let signalled = false;
    child.stderr.on('data', (d) => (stderr += d));
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.trim()) return;
      const ev = JSON.parse(line);
      events.push(ev);
      if (signalAfter && !signalled && signalAfter(ev, events)) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    child.on('error', reject);
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
    child.on('close', (code) => resolve({ code, events, stderr }));
  });
}

export const types = (events) => events.map((e) => e.type);
export const ofType = (events, type) => events.filter((e) => e.type === type);
export const stopped = (events) => events.find((e) => e.type === 'run_stopped');
