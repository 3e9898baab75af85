// Streams under load: a subscriber that stops reading is cut off without
// slowing another one and loses nothing on reconnect; a thousand
// subscribers of one session all receive every event.
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';

import { api, newSession, parseFrames, sse, startServer, until, waitIdle } from './lib/server.mjs';

async function subscribers(url) {
  const m = /^chatplane_sse_subscribers (\d+)$/m.exec((await api(url, 'GET', '/metrics')).text);
  return Number(m[1]);
}

describe('slow subscribers', () => {
  test('a stalled subscriber is cut off, another keeps up, and a reconnect loses nothing', { timeout: 120000 }, async (t) => {
    const srv = await startServer({ config: { limits: { subscriber_buffer_bytes: 1048576, message_bytes: 600000 } } });
    t.after(async () => {
      await srv.stop();
      srv.cleanup();
    });
    const s = await newSession(srv.url);
    const big = 'x'.repeat(500000);

    // The stalled one: its response is paused at once, so the server's
    // output for it only grows.
    let stalledRes;
    const stalledReq = http.request({ host: '127.0.0.1', port: srv.port, path: `/api/sessions/${s.id}/events`,
      agent: false, headers: { Accept: 'text/event-stream' } }, (res) => {
      res.pause();
      stalledRes = res;
    });
    stalledReq.end();
    // The healthy one reads everything as it comes.
    const healthy = { text: '', lastAt: 0 };
    const healthyReq = http.request({ host: '127.0.0.1', port: srv.port, path: `/api/sessions/${s.id}/events`,
      agent: false, headers: { Accept: 'text/event-stream' } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (c) => { healthy.text += c; healthy.lastAt = Date.now(); });
    });
    healthyReq.end();
    await until(async () => stalledRes && (await subscribers(srv.url)) === 2);

    // The kernel takes a few MB into the stalled socket's buffers before
    // the server's own output starts to grow (a few runs of 500 KB on
    // loopback), so the cap only bounds a server that never cuts it off.
    let lastSeq = 0;
    let endedAt = 0;
    for (let i = 0; i < 150 && !srv.lines.some((l) => l.includes('disconnecting a slow event stream subscriber')); i++) {
      const r = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: `${big} ${i}` });
      assert.equal(r.status, 202, r.text);
      const done = await waitIdle(srv.url, s.id);
      lastSeq = done.last_seq;
      endedAt = Date.now();
      // The healthy subscriber has every event promptly after each run.
      await until(() => healthy.text.includes(`id: ${lastSeq}\n`), 3000);
    }
    assert.ok(srv.lines.some((l) => l.includes('disconnecting a slow event stream subscriber')), 'never cut off');
    assert.ok(healthy.lastAt - endedAt < 3000);
    await until(async () => (await subscribers(srv.url)) === 1);

    // The stalled subscriber's connection ends; what it got is whole frames
    // up to some id, and a reconnect from there brings exactly the rest.
    const got = await new Promise((resolve) => {
      let text = '';
      stalledRes.setEncoding('utf8');
      stalledRes.on('data', (c) => { text += c; });
      stalledRes.on('end', () => resolve(text));
      stalledRes.on('error', () => resolve(text));
      stalledRes.on('aborted', () => resolve(text));
      stalledRes.resume();
    });
    const complete = got.slice(0, got.lastIndexOf('\n\n') + 2);
    const frames = parseFrames(complete);
    assert.ok(frames.length > 0);
    assert.deepEqual(frames.map((f) => f.id), frames.map((_, i) => i + 1));
    const lastId = frames.at(-1).id;
    assert.ok(lastId < lastSeq, `${lastId} < ${lastSeq}`);
    const rest = await sse(srv.port, `/api/sessions/${s.id}/events`, {
      headers: { 'Last-Event-ID': String(lastId) }, done: (x) => x.includes(`id: ${lastSeq}\n`) && x.endsWith('\n\n'),
    });
    const restFrames = parseFrames(rest.text);
    assert.deepEqual(restFrames.map((f) => f.id), Array.from({ length: lastSeq - lastId }, (_, i) => lastId + 1 + i));
    const healthyFrames = parseFrames(healthy.text);
    assert.deepEqual(healthyFrames.map((f) => f.id), Array.from({ length: lastSeq }, (_, i) => i + 1));
    healthyReq.destroy();
  });
});

describe('fan-out', () => {
  test('1000 concurrent subscribers of one session all receive every event', { timeout: 120000 }, async (t) => {
    const srv = await startServer();
    t.after(async () => {
      await srv.stop();
      srv.cleanup();
    });
    const s = await newSession(srv.url);
    const N = 1000;
    const streams = [];
    for (let i = 0; i < N; i++) {
      streams.push(sse(srv.port, `/api/sessions/${s.id}/events`, {
        done: (x) => x.includes('event: run_stopped') && x.endsWith('\n\n'), timeoutMs: 60000,
      }));
      if (i % 100 === 99) await until(async () => (await subscribers(srv.url)) === i + 1, 20000);
    }
    await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'what is 12*12?' });
    const done = await waitIdle(srv.url, s.id);
    const results = await Promise.all(streams);
    const want = Array.from({ length: done.last_seq }, (_, i) => i + 1);
    const first = results[0].text;
    for (const r of results) {
      assert.equal(r.status, 200);
      assert.deepEqual(parseFrames(r.text).map((f) => f.id), want);
      assert.equal(r.text, first);
    }
    await until(async () => (await subscribers(srv.url)) === 0, 20000);
  });
});
