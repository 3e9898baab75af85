// Time-outs: a client that stops sending its request is dropped after 30 s,
// while an event stream whose client sends nothing stays open with pings.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';

import { newSession, sse, startServer } from './lib/server.mjs';

describe('time-outs', () => {
  test('a slow sender is dropped after 30 s; an SSE stream outlives it', { timeout: 60000 }, async (t) => {
    const srv = await startServer();
    t.after(async () => {
      await srv.stop();
      srv.cleanup();
    });
    const s = await newSession(srv.url);
    const stream = sse(srv.port, `/api/sessions/${s.id}/events`, {
      done: (x) => x.split(': ping\n\n').length - 1 >= 2, timeoutMs: 50000,
    });
    const t0 = Date.now();
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
    assert.ok(Date.now() - t0 >= 30000);
  });
});
