// The event stream (docs/events.md): exact framing, replay after
// Last-Event-ID or `after`, reconnects of a real EventSource during and
// after a run with no gap and no duplicate, and the idle ping.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { EventSource } from 'eventsource';

import { startMock } from '../scenarios/lib.mjs';
import { api, newSession, parseFrames, raw, rawExchange, sse, startServer, until, waitIdle } from './lib/server.mjs';

const FRAME = /id: (\d+)\nevent: ([a-z_]+)\ndata: ([^\n]*)\n\n/gy;

// Checks text byte for byte against the framing of docs/events.md; returns the
// frames' [id, type, data text].
function strictFrames(text, prefix = 'retry: 2000\n\n') {
  assert.ok(text.startsWith(prefix), JSON.stringify(text.slice(0, 40)));
  const out = [];
  let pos = prefix.length;
  FRAME.lastIndex = pos;
  let m;
  while ((m = FRAME.exec(text)) !== null) {
    out.push([Number(m[1]), m[2], m[3]]);
    pos = FRAME.lastIndex;
  }
  assert.equal(pos, text.length, `unframed bytes: ${JSON.stringify(text.slice(pos, pos + 80))}`);
  for (const [id, type, data] of out) {
    const ev = JSON.parse(data);
    assert.equal(ev.seq, id);
    assert.equal(ev.type, type);
  }
  return out;
}

// A session with one finished run; resolves to {id, n} (n events).
async function finishedSession(url) {
  const s = await newSession(url);
  await api(url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'what is 6*7?' });
  const done = await waitIdle(url, s.id);
  return { id: s.id, n: done.last_seq };
}

// Collects an EventSource's events into an array of {id, type, seq}.
function collect(es, out, types = ['message', 'run_started', 'status', 'token', 'tool_started',
  'tool_progress', 'tool_finished', 'budget', 'guardrail', 'error', 'run_stopped']) {
  for (const t of types) {
    es.addEventListener(t, (e) => {
      // EventSource's own connection errors share the name "error".
      if (e.data === undefined) return;
      const d = JSON.parse(e.data);
      out.push({ id: Number(e.lastEventId), type: t, seq: d.seq });
    });
  }
}

// A fetch for EventSource whose first response breaks off after `bytes`
// bytes, as a dropped network connection would (the EventSource then
// reconnects by itself); each request's Last-Event-ID and time go to
// `requests`.
function dropOnce(requests, bytes = 1500) {
  let cut = false;
  return async (input, init) => {
    requests.push({ lastEventId: init.headers['Last-Event-ID'] ?? null, at: Date.now() });
    const res = await fetch(input, init);
    if (cut) return res;
    cut = true;
    const reader = res.body.getReader();
    let seen = 0;
    const body = new ReadableStream({
      async pull(controller) {
        const { value, done } = await reader.read();
        if (done) return controller.close();
        if (seen + value.length >= bytes) {
          controller.enqueue(value.subarray(0, bytes - seen));
          await reader.cancel();
          controller.error(new Error('connection dropped'));
          return;
        }
        seen += value.length;
        controller.enqueue(value);
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
}

// Starts a run in a new session of the server at url while an EventSource
// follows the session's stream through dropOnce, and waits for the run's
// end to reach it. Resolves to {requests, events, done, runStarted}.
async function runWithDroppedStream(url, message) {
  const s = await newSession(url);
  const requests = [];
  const events = [];
  const es = new EventSource(`${url}/api/sessions/${s.id}/events`, { fetch: dropOnce(requests) });
  collect(es, events);
  await new Promise((resolve) => es.addEventListener('open', resolve, { once: true }));
  const runStarted = Date.now();
  await api(url, 'POST', `/api/sessions/${s.id}/runs`, { message });
  const done = await waitIdle(url, s.id, 60000);
  await until(() => events.some((e) => e.type === 'run_stopped'), 10000);
  es.close();
  return { requests, events, done, runStarted };
}

// Follows an event stream with a raw request until its run_stopped: the
// frames received so far are in .frames (a frame cut by the chunking is
// left for the next read), and .done resolves when the stream ends.
function follow(port, p) {
  const st = { frames: [] };
  st.done = sse(port, p, {
    done: (text) => {
      st.frames = parseFrames(text.slice(0, text.lastIndexOf('\n\n') + 2));
      return st.frames.some((f) => f.event === 'run_stopped');
    },
    timeoutMs: 30000,
  });
  return st;
}

function assertConsecutive(events, from, to) {
  assert.deepEqual(events.map((e) => e.id), Array.from({ length: to - from + 1 }, (_, i) => from + i));
  for (const e of events) assert.equal(e.id, e.seq);
}

// The mock model and a server that calls it, both ended after test t;
// config adds keys beside the model's. Resolves to {mock, srv}.
async function serverWithMock(t, config = {}) {
  const mock = await startMock();
  const srv = await startServer({ config: { llm: { base_url: mock.url, model: 'mock-model' }, ...config } });
  t.after(async () => {
    await srv.stop();
    srv.cleanup();
    mock.stop();
  });
  return { mock, srv };
}

describe('event stream', () => {
  let srv;
  before(async () => {
    srv = await startServer({ env: { CHATPLANE_DEMO_DELAY_MS: '20' } });
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
  });

  test('framing byte for byte, and the same stored JSON as the JSON replay', async () => {
    const { id, n } = await finishedSession(srv.url);
    const res = await sse(srv.port, `/api/sessions/${id}/events`, { done: (t) => t.includes('event: run_stopped') });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/event-stream');
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(res.headers['x-accel-buffering'], 'no');
    const frames = strictFrames(res.text);
    assert.deepEqual(frames.map((f) => f[0]), Array.from({ length: n }, (_, i) => i + 1));
    const json = await raw(srv.port, 'GET', `/api/sessions/${id}/events`, { headers: { Accept: 'application/json' } });
    assert.equal(json.status, 200);
    assert.equal(json.body.toString(), `{"events":[${frames.map((f) => f[2]).join(',')}]}`);
  });

  test('replay starts after Last-Event-ID, else after the `after` parameter', async () => {
    const { id, n } = await finishedSession(srv.url);
    const done = (t) => t.includes('event: run_stopped');
    let res = await sse(srv.port, `/api/sessions/${id}/events?after=3`, { done });
    assert.deepEqual(strictFrames(res.text).map((f) => f[0]), Array.from({ length: n - 3 }, (_, i) => i + 4));
    res = await sse(srv.port, `/api/sessions/${id}/events?after=1`, { done, headers: { 'Last-Event-ID': String(n - 2) } });
    assert.deepEqual(strictFrames(res.text).map((f) => f[0]), [n - 1, n]);
    // Nothing after the last event: only the retry line until something happens.
    res = await sse(srv.port, `/api/sessions/${id}/events`, { headers: { 'Last-Event-ID': String(n) }, done: (t) => t.length >= 13 });
    assert.equal(res.text, 'retry: 2000\n\n');
  });

  test('live events follow the replay with no gap and no duplicate', async () => {
    const s = await newSession(srv.url);
    const streams = [0, 1, 2].map(() => sse(srv.port, `/api/sessions/${s.id}/events`, {
      done: (t) => t.includes('event: run_stopped'),
    }));
    await until(async () => (await api(srv.url, 'GET', '/metrics')).text.includes('chatplane_sse_subscribers 3'));
    await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'what is 7*8?' });
    const done = await waitIdle(srv.url, s.id);
    for (const st of await Promise.all(streams)) {
      assert.deepEqual(strictFrames(st.text).map((f) => f[0]), Array.from({ length: done.last_seq }, (_, i) => i + 1));
    }
  });

  test('EventSource reconnecting with Last-Event-ID during a run misses nothing', async (t) => {
    // Slow tokens, so the run outlasts the 2 s reconnect delay.
    const srv = await startServer({ env: { CHATPLANE_DEMO_DELAY_MS: '150' } });
    t.after(async () => {
      await srv.stop();
      srv.cleanup();
    });
    const { requests, events, done, runStarted } = await runWithDroppedStream(srv.url, 'demo long');
    assert.equal(requests.length, 2);
    assert.equal(requests[0].lastEventId, null);
    assert.ok(Number(requests[1].lastEventId) > 0);
    const endedAt = Date.parse(done.last_run.ended_at);
    assert.ok(requests[1].at < endedAt, `reconnected ${requests[1].at - runStarted} ms after the start, run ended ${endedAt - runStarted} ms after`);
    assertConsecutive(events, 1, done.last_seq);
  });

  test('a reconnect during a fast answer gets every event, the newest from the tail', async (t) => {
    // The reconnect, two seconds after the drop, misses about a hundred
    // events, more than the live stream's tail of 8: the replay reads the
    // tables, then what the token journal holds that they do not have yet
    // (docs/storage.md), then the tail, and the stream has no gap and no
    // duplicate. (Without the journal's read it would still pass, later:
    // the replay would read the tables again until a transaction or the
    // writer's idle moment stores those events. The next test is the one
    // that tells the two apart.)
    const { mock, srv: fast } = await serverWithMock(t);
    await mock.script([{ text: 'x'.repeat(250), piece_chars: 1, delay_ms: 20 }]);
    const { requests, events, done, runStarted } = await runWithDroppedStream(fast.url, 'go');
    assert.equal(requests.length, 2);
    // The drop came within the first events; the reconnect two seconds
    // later, about a hundred tokens on, and well before the answer's end.
    const resumedAfter = Number(requests[1].lastEventId);
    assert.ok(resumedAfter > 0 && resumedAfter < 20, `resumed after ${resumedAfter}`);
    assert.ok(requests[1].at - runStarted >= 1900, `reconnected after ${requests[1].at - runStarted} ms`);
    assert.ok(Date.parse(done.last_run.ended_at) - requests[1].at > 1000, 'the answer was still streaming');
    assertConsecutive(events, 1, done.last_seq);
  });

  test('a reconnect gets the events the token journal holds at once', async (t) => {
    // With store.journal_idle_ms at a minute, the answer's tokens stay in
    // the token journal until the run's end stores them. A stream that
    // resumes mid-answer further back than the tail's 8 events reads the
    // tables, then the journal, then the tail (docs/storage.md). Without
    // the journal's read it would get nothing past the stored events until
    // the run's end: 20 tokens, 600 ms, after the moment it is checked.
    const { mock, srv: held } = await serverWithMock(t, { store: { journal_idle_ms: 60000 } });
    await mock.script([{ text: 'x'.repeat(40), piece_chars: 1, delay_ms: 30 }]);
    const s = await newSession(held.url);
    const watch = follow(held.port, `/api/sessions/${s.id}/events`);
    await until(async () => (await api(held.url, 'GET', '/metrics')).text.includes('chatplane_sse_subscribers 1'));
    await api(held.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'go' });
    const tokens = (st) => st.frames.filter((f) => f.event === 'token');
    await until(() => tokens(watch).length >= 20, 10000, 5);
    const first = tokens(watch)[0].id;
    const seen = watch.frames.at(-1).id;
    assert.ok(seen - first > 8, `only ${seen - first} events past the first token`);
    const resumed = follow(held.port, `/api/sessions/${s.id}/events?after=${first}`);
    await until(() => resumed.frames.some((f) => f.id >= seen), 10000, 5);
    const live = tokens(watch).length;
    assert.ok(live <= 35, `the resumed stream caught up only when the first had ${live} of 40 tokens`);
    assert.ok(!watch.frames.some((f) => f.event === 'run_stopped'), 'caught up only after the run');
    await Promise.all([watch.done, resumed.done]);
    const done = await waitIdle(held.url, s.id);
    assert.equal(tokens(watch).length, 40);
    assert.equal(done.last_run.stop_reason, 'completed');
    assertConsecutive(watch.frames.map((f) => ({ id: f.id, seq: f.data.seq })), 1, done.last_seq);
    assertConsecutive(resumed.frames.map((f) => ({ id: f.id, seq: f.data.seq })), first + 1, done.last_seq);
  });

  test('frames of every size keep their order and framing, chunked and over HTTP/1.0', async (t) => {
    // A burst of small tokens around one of 1.5 KiB and one over 4 KiB
    // (which the server sends by reference rather than copying it), then
    // the answer's message: every frame comes whole and in order. Node's
    // parser judges the chunked coding; HTTP/1.0 gets the frames unchunked,
    // up to the close that ends the run's stream.
    const { mock, srv: burst } = await serverWithMock(t);
    const pieces = ['a', 'b', 'c'.repeat(1500), 'd', 'e', 'f'.repeat(5000), 'g', 'h'.repeat(900), 'i'];
    const script = { chunks: [{ role: 'assistant', content: '' }, ...pieces.map((content) => ({ content }))] };
    await mock.script([script, script]);
    const post = JSON.stringify({ message: 'go' });
    const stored = async (id) => {
      const res = await raw(burst.port, 'GET', `/api/sessions/${id}/events`, { headers: { Accept: 'application/json' } });
      return JSON.parse(res.body.toString()).events;
    };
    const check = (text, events) => {
      const frames = strictFrames(text, '');
      assert.deepEqual(frames.map((f) => f[0]), events.map((e) => e.seq));
      assert.deepEqual(frames.map((f) => JSON.parse(f[2])), events);
      const tokens = frames.filter((f) => f[1] === 'token').map((f) => JSON.parse(f[2]).text);
      assert.deepEqual(tokens, pieces);
    };

    const s1 = await newSession(burst.url);
    const chunked = await sse(burst.port, `/api/sessions/${s1.id}/runs`, {
      method: 'POST', body: post, headers: { 'Content-Type': 'application/json' },
    });
    assert.equal(chunked.status, 200);
    assert.equal(chunked.ended, true);
    assert.equal(chunked.headers['transfer-encoding'], 'chunked');
    check(chunked.text.replace(/^retry: 2000\n\n/, ''), await stored(s1.id));

    const s2 = await newSession(burst.url);
    const old = await rawExchange(burst.port, Buffer.from(
      `POST /api/sessions/${s2.id}/runs HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${post.length}\r\n\r\n${post}`));
    assert.equal(old.status, 200, old.text.slice(0, 400));
    assert.doesNotMatch(old.head, /transfer-encoding/i);
    check(old.body.replace(/^retry: 2000\n\n/, ''), await stored(s2.id));
  });

  test('EventSource picking up after a run with Last-Event-ID gets exactly the rest', async () => {
    const s = await newSession(srv.url);
    const first = [];
    const es1 = new EventSource(`${srv.url}/api/sessions/${s.id}/events`);
    collect(es1, first);
    await new Promise((resolve) => es1.addEventListener('open', resolve, { once: true }));
    await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'hello' });
    await until(() => first.length >= 5);
    es1.close();
    const last = first.at(-1).id;
    const done = await waitIdle(srv.url, s.id);
    const rest = [];
    const es2 = new EventSource(`${srv.url}/api/sessions/${s.id}/events`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, 'Last-Event-ID': String(last) } }),
    });
    collect(es2, rest);
    await until(() => rest.some((e) => e.type === 'run_stopped'));
    es2.close();
    assertConsecutive([...first, ...rest], 1, done.last_seq);
  });

  test('closing a stream never stops the run', async () => {
    const s = await newSession(srv.url);
    const res = await sse(srv.port, `/api/sessions/${s.id}/runs`, {
      method: 'POST', body: JSON.stringify({ message: 'hello' }),
      headers: { 'Content-Type': 'application/json' }, done: (t) => t.includes('event: token'),
    });
    assert.equal(res.ended, false);
    const done = await waitIdle(srv.url, s.id);
    assert.equal(done.last_run.stop_reason, 'completed');
  });
});

describe('long replays', () => {
  test('more than a page of events, from the tail, from the store, and after a restart', { timeout: 90000 }, async () => {
    let srv = await startServer();
    try {
      const s = await newSession(srv.url);
      let n = 0;
      let runs = 0;
      while (n <= 1100) {
        await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'demo long' });
        n = (await waitIdle(srv.url, s.id)).last_seq;
        runs++;
      }
      const all = Array.from({ length: n }, (_, i) => i + 1);
      const upTo = (last) => (t) => t.includes(`id: ${last}\n`) && t.endsWith('\n\n');
      // Older than the tail: two pages from the store, then the tail.
      let res = await sse(srv.port, `/api/sessions/${s.id}/events`, { done: upTo(n) });
      assert.deepEqual(strictFrames(res.text).map((f) => f[0]), all);
      // Inside the tail.
      res = await sse(srv.port, `/api/sessions/${s.id}/events?after=${n - 10}`, { done: upTo(n) });
      assert.deepEqual(strictFrames(res.text).map((f) => f[0]), all.slice(n - 10));

      // After a restart the tail is empty: everything comes from the store,
      // and the same stream goes on live.
      await srv.stop();
      srv = await startServer({ dir: srv.dir });
      const live = sse(srv.port, `/api/sessions/${s.id}/events?after=5`, {
        done: (t) => t.split('event: run_stopped\n').length - 1 === runs + 1 && t.endsWith('\n\n'),
        timeoutMs: 30000,
      });
      await until(async () => /^chatplane_sse_subscribers 1$/m.test((await api(srv.url, 'GET', '/metrics')).text));
      await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'what is 1+1?' });
      const m = (await waitIdle(srv.url, s.id)).last_seq;
      res = await live;
      assert.deepEqual(strictFrames(res.text).map((f) => f[0]), Array.from({ length: m - 5 }, (_, i) => i + 6));
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });
});
