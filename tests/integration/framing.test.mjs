// How a request says where it ends: the checks the server makes before
// evhttp reads a body (duplicate Host, Content-Length and
// Transfer-Encoding rules, chunk framing, a declared body over the limit),
// the same rules on pipelined requests, error messages that stay UTF-8,
// and HEAD on every kind of route.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { api, newSession, rawExchange, sse } from './lib/server.mjs';
import { startServer } from './lib/server.mjs';

const head = (lines) => Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
const post = (extra, body = '') =>
  Buffer.concat([head(['POST /api/sessions HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', ...extra]),
    Buffer.from(body, 'latin1')]);

function assertRefused(r, status, code, message) {
  assert.equal(r.status, status, r.text);
  assert.match(r.head, /\r\nContent-Type: application\/json\r\n/);
  assert.match(r.head, /\r\nConnection: close\r\n/);
  const e = JSON.parse(r.body).error;
  assert.equal(e.code, code);
  if (message instanceof RegExp) assert.match(e.message, message);
  else assert.equal(e.message, message);
}

describe('request framing', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => {
    await srv.stop();
    srv.cleanup();
  });

  test('two Host headers are refused, loopback first or not, so the open-mode host check cannot be passed', async () => {
    for (const hosts of [['127.0.0.1', 'evil.example'], ['evil.example', '127.0.0.1'], ['127.0.0.1', '127.0.0.1']]) {
      const r = await rawExchange(srv.port, head(['GET /api/sessions HTTP/1.1', ...hosts.map((h) => `Host: ${h}`)]));
      assertRefused(r, 400, 'bad_request', 'the request has 2 Host headers; exactly one is allowed');
    }
    // The same rule on a pipelined request, which the check on raw bytes
    // does not see: evhttp's parsed headers are checked too.
    const r = await rawExchange(srv.port, Buffer.concat([
      head(['GET /healthz HTTP/1.1', 'Host: 127.0.0.1']),
      head(['GET /api/sessions HTTP/1.1', 'Host: 127.0.0.1', 'Host: evil.example'])]), { responses: 2 });
    assert.equal(r.status, 200);
    assert.match(r.text, /HTTP\/1\.1 400 Bad Request[\s\S]*"the request has 2 Host headers; exactly one is allowed"/);
    assert.doesNotMatch(r.text, /"sessions"/);
  });

  test('Content-Length: two differing values, a sign or other non-digits are 400', async () => {
    let r = await rawExchange(srv.port, post(['Content-Length: 2', 'Content-Length: 5'], '{}abc'));
    assertRefused(r, 400, 'bad_request', 'the request has Content-Length headers that differ');
    for (const v of ['+2', '-2', '2 ', '0x2', '2,2', '']) {
      r = await rawExchange(srv.port, post([`Content-Length: ${v}`], '{}'));
      if (v === '2 ') {
        // Trailing spaces are not part of a header's value.
        assert.equal(r.status, 201, r.text);
        continue;
      }
      assertRefused(r, 400, 'bad_request', `Content-Length must be digits only, not "${v.trim()}"`);
    }
    // Two equal values say one thing and are read as one.
    r = await rawExchange(srv.port, post(['Content-Length: 2', 'Content-Length: 2', 'Connection: close'], '{}'));
    assert.equal(r.status, 201, r.text);
  });

  test('a Transfer-Encoding other than chunked is 501, chunked next to Content-Length is 400', async () => {
    let r = await rawExchange(srv.port, post(['Transfer-Encoding: gzip'], '{}'));
    assertRefused(r, 501, 'not_implemented', 'Transfer-Encoding "gzip" is not supported; only chunked is');
    r = await rawExchange(srv.port, post(['Transfer-Encoding: gzip, chunked'], '2\r\n{}\r\n0\r\n\r\n'));
    assertRefused(r, 501, 'not_implemented', 'Transfer-Encoding "gzip, chunked" is not supported; only chunked is');
    r = await rawExchange(srv.port, post(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], '0\r\n\r\n'));
    assertRefused(r, 501, 'not_implemented', /more than one Transfer-Encoding header/);
    r = await rawExchange(srv.port, post(['Transfer-Encoding: chunked', 'Content-Length: 7'], '2\r\n{}\r\n0\r\n\r\n'));
    assertRefused(r, 400, 'bad_request', 'the request has both Transfer-Encoding and Content-Length');
    r = await rawExchange(srv.port, post(['Transfer-Encoding: Chunked', 'Connection: close'], '2\r\n{}\r\n0\r\n\r\n'));
    assert.equal(r.status, 201, r.text);
  });

  test('a malformed chunk size is 400 naming the problem, not 413', async () => {
    const cases = [
      ['zz\r\n{}\r\n0\r\n\r\n', "a chunk size must be hex digits, not 'z'"],
      ['-2\r\n{}\r\n0\r\n\r\n', "a chunk size must be hex digits, not '-'"],
      ['+2\r\n{}\r\n0\r\n\r\n', "a chunk size must be hex digits, not '+'"],
      ['2;ext=1\r\n{}\r\n0\r\n\r\n', "chunk extensions are not accepted after a size, not ';'"],
      ['2\r\n{}xx\r\n0\r\n\r\n', "a chunk's data must be followed by CRLF, not 'x'"],
    ];
    for (const [body, what] of cases) {
      const r = await rawExchange(srv.port, post(['Transfer-Encoding: chunked'], body));
      assertRefused(r, 400, 'bad_request', `the chunked body is malformed: ${what}`);
    }
    // A size that is split across two writes is read as one.
    const r = await rawExchange(srv.port, post(['Transfer-Encoding: chunked', 'Connection: close'], '0002\r\n{}\r\n0\r\n\r\n'));
    assert.equal(r.status, 201, r.text);
  });

  test('a declared body over the limit is 413 at once, with or without Expect: 100-continue', async () => {
    const large = 'the request is larger than the server accepts';
    let r = await rawExchange(srv.port, post(['Content-Length: 99999999999999999999']), { timeoutMs: 5000 });
    assertRefused(r, 413, 'payload_too_large', large);
    assert.ok(r.ms < 2000, `answered after ${r.ms} ms`);
    r = await rawExchange(srv.port, post(['Content-Length: 5000000', 'Expect: 100-continue']), { timeoutMs: 5000 });
    assertRefused(r, 413, 'payload_too_large', large);
    assert.doesNotMatch(r.text, /100 Continue/);
    assert.ok(r.ms < 2000, `answered after ${r.ms} ms`);
    r = await rawExchange(srv.port, post(['Transfer-Encoding: chunked'], 'ffffffffff\r\n'), { timeoutMs: 5000 });
    assertRefused(r, 413, 'payload_too_large', large);
    // Within the limit, Expect: 100-continue still gets its 100.
    r = await rawExchange(srv.port, post(['Content-Length: 2', 'Expect: 100-continue', 'Connection: close'], '{}'));
    assert.equal(r.status, 201, r.text);
  });

  test('every error keeps its message when the request holds bytes that are not UTF-8', async () => {
    const s = await newSession(srv.url);
    const cases = [
      [head(['GET /api/sessions/%FF%FE HTTP/1.1', 'Host: 127.0.0.1']), 404, 'no session \uFFFD\uFFFD'],
      [head(['GET /api/sessions/%C0%AF HTTP/1.1', 'Host: 127.0.0.1']), 404, 'no session \uFFFD\uFFFD'],
      [head([`GET /api/sessions/${s.id}/runs/%E2%82 HTTP/1.1`, 'Host: 127.0.0.1']), 404, /^no route for GET /],
      [Buffer.concat([Buffer.from('GET /api/x'), Buffer.from([0xff, 0xc3]), Buffer.from(' HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')]),
        404, 'no route for GET /api/x\uFFFD\uFFFD'],
      [Buffer.concat([Buffer.from('POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nContent-Type: text/\xc3', 'latin1'),
        Buffer.from('\r\n\r\n{}')]), 415, 'the body must be sent as application/json, not text/\uFFFD'],
    ];
    for (const [bytes, status, message] of cases) {
      const r = await rawExchange(srv.port, bytes);
      assert.equal(r.status, status, r.text);
      const e = JSON.parse(r.body).error;
      if (message instanceof RegExp) assert.match(e.message, message);
      else assert.equal(e.message, message);
    }
    // A field name cut after 64 bytes in the middle of a character.
    const key = 'a'.repeat(63) + '\u00e9';
    const r = await api(srv.url, 'POST', '/api/sessions', JSON.stringify({ [key]: 1 }));
    assert.equal(r.status, 400);
    assert.equal(r.body.error.message, `unknown field '${'a'.repeat(63)}\uFFFD'`);
  });

  test('HEAD sends headers only on every kind of route, and never opens an event stream', async () => {
    const s = await newSession(srv.url);
    const metric = async () => Number(/^chatplane_sse_subscribers (\S+)$/m.exec((await api(srv.url, 'GET', '/metrics')).text)[1]);
    const before = await metric();
    for (const [p, type, accept] of [
      [`/api/sessions/${s.id}/events`, 'text/event-stream', 'text/event-stream'],
      [`/api/sessions/${s.id}/events`, 'application/json', 'application/json'],
      [`/api/sessions/${s.id}`, 'application/json', '*/*'],
      ['/healthz', 'application/json', '*/*'],
      ['/', 'text/html; charset=utf-8', '*/*'],
    ]) {
      const r = await rawExchange(srv.port, head([`HEAD ${p} HTTP/1.1`, 'Host: 127.0.0.1', `Accept: ${accept}`, 'Connection: close']),
        { timeoutMs: 3000 });
      assert.equal(r.status, 200, `${p}: ${r.text}`);
      assert.match(r.head, new RegExp(`\\r\\nContent-Type: ${type.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\r\\n`, 'i'));
      assert.equal(r.body, '', `${p} sent a body`);
    }
    assert.equal(await metric(), before);
    const r = await rawExchange(srv.port, head(['HEAD /api/sessions/nope/events HTTP/1.1', 'Host: 127.0.0.1', 'Accept: text/event-stream']));
    assert.equal(r.status, 404);
    assert.equal(r.body, '');
    // GET still streams.
    const g = await sse(srv.port, `/api/sessions/${s.id}/events`, { done: (t) => t.includes('retry:') });
    assert.equal(g.status, 200);
  });
});
