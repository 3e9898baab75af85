// --web-root: only regular files inside the directory are served; a FIFO
// never blocks the server, a symbolic link out of the root is refused, and
// a root that does not exist stops the start with a message naming it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { api, raw, runBinary, startServer } from './lib/server.mjs';

describe('--web-root', () => {
  let srv;
  let top;
  before(async () => {
    top = mkdtempSync(path.join(tmpdir(), 'chatplane-webroot-'));
    const root = path.join(top, 'root');
    mkdirSync(path.join(root, 'sub'), { recursive: true });
    writeFileSync(path.join(root, 'index.html'), '<p>page</p>');
    writeFileSync(path.join(root, 'sub', 'a.js'), 'let a;');
    writeFileSync(path.join(top, 'secret.txt'), 'secret');
    execFileSync('mkfifo', [path.join(root, 'pipe.html')]);
    symlinkSync(path.join(top, 'secret.txt'), path.join(root, 'out.txt'));
    symlinkSync('..', path.join(root, 'sub', 'up'));
    symlinkSync(top, path.join(root, 'escape'));
    symlinkSync('index.html', path.join(root, 'same.html'));
    srv = await startServer({ args: ['--web-root', root] });
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
    rmSync(top, { recursive: true, force: true });
  });

  test('a FIFO is not a file: 404 at once, and the server keeps answering', async () => {
    const t0 = Date.now();
    const r = await raw(srv.port, 'GET', '/pipe.html');
    assert.equal(r.status, 404);
    assert.deepEqual(JSON.parse(r.body), { error: { code: 'not_found', message: 'no file /pipe.html' } });
    assert.ok(Date.now() - t0 < 2000);
    assert.equal((await api(srv.url, 'GET', '/healthz')).status, 200);
  });

  test('a symbolic link is followed only to a target inside the root', async () => {
    for (const p of ['/out.txt', '/escape/secret.txt']) {
      const r = await raw(srv.port, 'GET', p);
      assert.equal(r.status, 404, p);
      assert.equal(JSON.parse(r.body).error.message, `no file ${p}`);
    }
    // Out and back in: the real path is what counts.
    let r = await raw(srv.port, 'GET', '/escape/root/index.html');
    assert.equal(r.status, 200);
    r = await raw(srv.port, 'GET', '/same.html');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), '<p>page</p>');
    r = await raw(srv.port, 'GET', '/sub/up/index.html');
    assert.equal(r.status, 200);
    r = await raw(srv.port, 'GET', '/sub/a.js');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8');
    r = await raw(srv.port, 'GET', '/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    r = await raw(srv.port, 'GET', '/sub');
    assert.equal(r.status, 404);
  });

  test('a web root that does not exist, or is a file, stops the start naming it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'chatplane-webroot-db-'));
    try {
      for (const [root, why] of [[path.join(dir, 'nonexistent'), 'No such file or directory'],
        [path.join(top, 'secret.txt'), 'it is not a directory']]) {
        const r = await runBinary(['serve', '--listen', '127.0.0.1:0', '--db', `sqlite:${path.join(dir, 'c.db')}`, '--web-root', root]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, new RegExp(`level=error msg="cannot start" error="cannot serve the web root ${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${why}"`));
        assert.doesNotMatch(r.stderr, /listening/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
