// Time-outs: a client that stops sending its request is dropped after 30 s,
// while an event stream whose client sends nothing stays open with a
// ": ping" every 15 s without an event. Both wait in the same 30 s.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';

import { api, newSession, sse, startServer, waitIdle } from './lib/server.mjs';

describe('time-outs', () => {
  test('a slow sender is dropped after 30 s; an SSE stream outlives it', { timeout: 60000 }, async (t) => {
    const srv = await startServer();
    t.after(async () => {
      await srv.stop();
      srv.cleanup();
    });
    // The stream resumes a session whose run has ended, after its last
    // event: nothing to replay, then only pings.
    const s = await newSession(srv.url);
    await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'what is 6*7?' });
    const { last_seq: n } = await waitIdle(srv.url, s.id);
    const pingsAt = [];
    const t0 = Date.now();
    const stream = sse(srv.port, `/api/sessions/${s.id}/events`, {
      headers: { 'Last-Event-ID': String(n) },
      done: (x) => {
        const pings = x.split(': ping\n\n').length - 1;
        while (pingsAt.length < pings) pingsAt.push(Date.now() - t0);
        return pings >= 2;
      },
      timeoutMs: 50000,
    });
    const closedAfter = new Promise((resolve, reject) => {
      const sock = net.connect(srv.port, '127.0.0.1', () => {
        // Half a request line and no more.
        sock.write('POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Le');
      });
      let got = '';
      sock.on('data', (d) => { got += d; });
      sock.on('close', () => resolve({ ms: Date.now() - t0, got }));
      sock.on('error', reject);
    });
    const closed = await closedAfter;
    assert.ok(closed.ms >= 29000 && closed.ms < 36000, `closed after ${closed.ms} ms`);
    const res = await stream;
    assert.equal(res.ended, false);
    assert.equal(res.text, 'retry: 2000\n\n: ping\n\n: ping\n\n');
    assert.ok(pingsAt[0] >= 14500 && pingsAt[0] < 17500, `first ping after ${pingsAt[0]} ms`);
    assert.ok(pingsAt[1] - pingsAt[0] >= 14500 && pingsAt[1] - pingsAt[0] < 17500,
      `second ping ${pingsAt[1] - pingsAt[0]} ms after the first`);
  });
});
