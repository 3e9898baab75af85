// Helpers for the multi-instance tests: a throwaway PostgreSQL cluster
// (scripts/pg-test-cluster), several real `chatplane serve` processes on it,
// and event stream subscribers that follow a session like EventSource does
// (reconnecting with Last-Event-ID) and keep every frame they received.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';

import { api, startServer, until } from '../integration/lib/server.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
const clusterScript = path.join(root, 'scripts', 'pg-test-cluster');

function run(cmd, args, env = {}) {
  return new Promise((resolve) => {
    const proc = spawn(cmd, args, { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    proc.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

// Starts a PostgreSQL cluster; resolves to {url, restart(secondsDown, mode),
// stop()}. mode is 'fast' (clients are disconnected, a checkpoint is
// written) or 'immediate' (the server quits as in a crash). durable keeps
// synchronous commit on: without it an immediate stop may lose commits
// the server had already acknowledged. The directory is a direct child of
// the temporary directory, which the cluster's owner (postgres, when the
// tests run as root) can reach.
export async function startCluster({ durable = false } = {}) {
  const dir = path.join(tmpdir(), `chatplane-multi-${process.pid}-${Date.now()}`);
  const r = await run(clusterScript, ['start', dir], durable ? { PG_TEST_DURABLE: '1' } : {});
  if (r.code !== 0) throw new Error(`pg-test-cluster start failed:\n${r.stderr}`);
  return {
    url: r.stdout.trim(),
    async restart(secondsDown = 0, mode = 'fast') {
      const x = await run(clusterScript, ['restart', dir, String(secondsDown), mode]);
      if (x.code !== 0) throw new Error(`pg-test-cluster restart failed:\n${x.stderr}`);
    },
    async stop() {
      await run(clusterScript, ['stop', dir]);
    },
  };
}

// Starts n instances on one database; resolves to their startServer
// handles once each answers /healthz with 200 (it listens to the others).
export async function startInstances(n, db, { orphanTimeout = 3, delayMs = 50 } = {}) {
  const config = { cluster: { orphan_timeout_seconds: orphanTimeout } };
  const env = { CHATPLANE_DEMO_DELAY_MS: String(delayMs) };
  const out = [];
  for (let i = 0; i < n; i++) out.push(await startServer({ db, config, env }));
  for (const s of out) await waitHealthy(s.url);
  return out;
}

export async function waitHealthy(base, timeoutMs = 20000) {
  return until(async () => {
    try {
      return (await api(base, 'GET', '/healthz')).status === 200;
    } catch {
      return false;
    }
  }, timeoutMs, 50);
}

// Follows a session's event stream on one instance. Every frame is kept in
// `events` ({id, event, data}) in the order received, and the status of
// every response in `statuses`; a stream that ends or breaks is opened
// again after 100 ms with Last-Event-ID, as EventSource does. close() stops
// following.
export function follow(port, sessionId) {
  const sub = { events: [], statuses: [], connects: 0, closed: false, req: null };
  let buffer = '';
  const parseBlock = (block) => {
    const ev = {};
    for (const line of block.split('\n')) {
      const i = line.indexOf(': ');
      if (i < 0) continue;
      const k = line.slice(0, i);
      const v = line.slice(i + 2);
      if (k === 'id') ev.id = Number(v);
      else if (k === 'event') ev.event = v;
      else if (k === 'data') ev.data = JSON.parse(v);
    }
    if (ev.event) sub.events.push(ev);
  };
  const connect = () => {
    if (sub.closed) return;
    sub.connects++;
    buffer = '';
    const headers = { Accept: 'text/event-stream' };
    const last = sub.events.length ? sub.events[sub.events.length - 1].id : null;
    if (last !== null) headers['Last-Event-ID'] = String(last);
    const req = http.request({ host: '127.0.0.1', port, path: `/api/sessions/${sessionId}/events`,
      headers, agent: false }, (res) => {
      sub.statuses.push(res.statusCode);
      res.setEncoding('utf8');
      res.on('data', (c) => {
        buffer += c;
        let i;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          parseBlock(buffer.slice(0, i));
          buffer = buffer.slice(i + 2);
        }
      });
      const again = () => { if (!sub.closed) setTimeout(connect, 100); };
      res.on('end', again);
      res.on('error', again);
    });
    req.on('error', () => { if (!sub.closed) setTimeout(connect, 100); });
    req.end();
    sub.req = req;
  };
  sub.close = () => {
    sub.closed = true;
    if (sub.req) sub.req.destroy();
  };
  // Resolves once pred(events) holds.
  sub.until = (pred, timeoutMs = 20000) => until(() => pred(sub.events), timeoutMs, 20);
  // Resolves to the run_stopped event of runId.
  sub.stopped = (runId, timeoutMs = 20000) =>
    sub.until((evs) => evs.find((e) => e.event === 'run_stopped' && e.data.run_id === runId),
      timeoutMs);
  connect();
  return sub;
}

// The session's stored events (at most 1000), as the store has them.
export async function storedEvents(base, sessionId) {
  const r = await api(base, 'GET', `/api/sessions/${sessionId}/events?after=0`, undefined,
    { Accept: 'application/json' });
  assert.equal(r.status, 200, r.text);
  return r.body.events;
}

// Checks that a subscriber received exactly the stored events: seq 1, 2, 3…
// in order, none missing, none twice, each the same JSON.
export function assertSameAsStore(sub, stored, label) {
  const seqs = sub.events.map((e) => e.id);
  assert.deepEqual(seqs, stored.map((e) => e.seq), `${label}: seqs`);
  seqs.forEach((s, i) => assert.equal(s, i + 1, `${label}: seq at ${i}`));
  sub.events.forEach((e, i) => {
    assert.equal(e.event, stored[i].type, `${label}: type of ${e.id}`);
    assert.deepEqual(e.data, stored[i], `${label}: event ${e.id}`);
  });
}
