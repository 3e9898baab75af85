// Limits that keep one client from taking the server: open event streams
// per session and per token, the streams of a revoked token, and the caps
// on the request line and the headers.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { api, runBinary, sse, startServer, until } from './lib/server.mjs';

// Opens an event stream and keeps it open; resolves once its head arrived
// to {status, text(), ended(), close()}, or to the error answer.
function openStream(port, p, headers = {}) {
  return new Promise((resolve, reject) => {
    let text = '';
    let ended = false;
    const req = http.request({ host: '127.0.0.1', port, path: p, agent: false,
      headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      res.setEncoding('utf8');
      const s = { status: res.statusCode, headers: res.headers, text: () => text, ended: () => ended, close: () => req.destroy() };
      res.on('data', (c) => {
        text += c;
        if (res.statusCode === 200 && text.includes('\n\n')) resolve(s);
      });
      res.on('end', () => { ended = true; if (res.statusCode !== 200) resolve(s); });
      res.on('error', () => { ended = true; });
    });
    req.on('error', (e) => { ended = true; reject(e); });
    req.end();
  });
}

// Sends bytes on a fresh connection; resolves to what came back.
function rawBytes(port, bytes) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    sock.on('data', (c) => chunks.push(c));
    sock.on('end', () => resolve(Buffer.concat(chunks).toString()));
    sock.on('error', (e) => (chunks.length ? resolve(Buffer.concat(chunks).toString()) : reject(e)));
    sock.write(bytes);
  });
}

describe('stream limits and revoked tokens', () => {
  let srv;
  const tok = {};
  const auth = (t) => ({ Authorization: `Bearer ${t}` });
  before(async () => {
    srv = await startServer({ config: { limits: { subscribers_per_session: 2, subscribers_per_token: 3 } } });
    const db = `sqlite:${path.join(srv.dir, 'chat.db')}`;
    for (const name of ['alice', 'bob']) {
      const r = await runBinary(['token', 'create', name, '--db', db]);
      assert.equal(r.code, 0, r.stderr);
      tok[name] = r.stdout.trimEnd().split('\n').at(-1);
    }
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
  });

  const session = async (t) => {
    const r = await api(srv.url, 'POST', '/api/sessions', {}, auth(t));
    assert.equal(r.status, 201, r.text);
    return r.body.id;
  };

  test('a session holds at most limits.subscribers_per_session streams, a token at most limits.subscribers_per_token', async () => {
    const [s1, s2, s3] = [await session(tok.alice), await session(tok.alice), await session(tok.alice)];
    const open = [];
    for (let i = 0; i < 2; i++) open.push(await openStream(srv.port, `/api/sessions/${s1}/events`, auth(tok.alice)));
    for (const s of open) assert.equal(s.status, 200);
    const third = await openStream(srv.port, `/api/sessions/${s1}/events`, auth(tok.alice));
    assert.equal(third.status, 429);
    assert.equal(third.headers['retry-after'], '5');
    assert.deepEqual(JSON.parse(third.text()), { error: { code: 'too_many_subscribers',
      message: 'this session or this token already has its limit of open event streams' } });
    open.push(await openStream(srv.port, `/api/sessions/${s2}/events`, auth(tok.alice)));
    assert.equal(open[2].status, 200);
    // The token has its 3: another session of alice's is refused too, a
    // run stream included, and that run never starts.
    assert.equal((await openStream(srv.port, `/api/sessions/${s3}/events`, auth(tok.alice))).status, 429);
    const run = await sse(srv.port, `/api/sessions/${s3}/runs`, { method: 'POST', headers: { ...auth(tok.alice), 'Content-Type': 'application/json' },
      body: JSON.stringify({ message: 'hi' }) });
    assert.equal(run.status, 429);
    assert.equal(JSON.parse(run.text).error.code, 'too_many_subscribers');
    assert.deepEqual((await api(srv.url, 'GET', `/api/sessions/${s3}/runs`, undefined, auth(tok.alice))).body, { runs: [] });
    // Another token has its own count.
    const b = await openStream(srv.port, `/api/sessions/${await session(tok.bob)}/events`, auth(tok.bob));
    assert.equal(b.status, 200);
    b.close();
    // A closed stream frees its place.
    open.shift().close();
    const again = await until(async () => {
      const s = await openStream(srv.port, `/api/sessions/${s3}/events`, auth(tok.alice));
      if (s.status === 200) return s;
      return null;
    }, 5000, 50);
    open.push(again);
    for (const s of open) s.close();
  });

  test("a revoked token's open streams end within a couple of seconds", async () => {
    const s = await session(tok.bob);
    const stream = await openStream(srv.port, `/api/sessions/${s}/events`, auth(tok.bob));
    assert.equal(stream.status, 200);
    const r = await runBinary(['token', 'revoke', 'bob', '--db', `sqlite:${path.join(srv.dir, 'chat.db')}`]);
    assert.equal(r.code, 0);
    const t0 = Date.now();
    await until(() => stream.ended(), 5000, 20);
    assert.ok(Date.now() - t0 < 3000);
    // The server logs the count once the streams are ended, so the line may
    // reach stderr a moment after the stream's end reaches the client.
    const line = 'level=info msg="ended the event streams of a revoked token" token=bob streams=1';
    await until(() => srv.lines.includes(line), 2000, 10).catch(() => {});
    assert.ok(srv.lines.includes(line), srv.lines.slice(-5).join('\n'));
  });
});

describe('request limits', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
  });

  const refused = (text) => {
    assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.ok(text.endsWith('{"error":{"code":"bad_request","message":"the request could not be read as HTTP"}}'), text);
  };

  test('a request line or headers over 64 KiB, or a request that is no HTTP, is refused with a JSON 400', async () => {
    refused(await rawBytes(srv.port, `GET /api/info?${'a'.repeat(70000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
    refused(await rawBytes(srv.port, `GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(70000)}\r\n\r\n`));
    let many = '';
    for (let i = 0; i < 9000; i++) many += `X-${i}: 1\r\n`;
    refused(await rawBytes(srv.port, `GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n${many}\r\n`));
    refused(await rawBytes(srv.port, 'NOT HTTP AT ALL\r\n\r\n'));
    // Well under the limits, the same request is answered.
    const ok = await api(srv.url, 'GET', `/api/sessions?limit=1&x=${'a'.repeat(8000)}`);
    assert.equal(ok.status, 200);
  });
});
