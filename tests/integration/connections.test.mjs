// Descriptor exhaustion: under a low open file limit, more connections
// than the server may hold do not make it spin on accept or flood its log,
// and once they close it answers again.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import { api, sleep, startServer, until } from './lib/server.mjs';

// user + system CPU time of a process, in clock ticks.
function cpuTicks(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
}

describe('connections under a low open file limit', () => {
  let srv;
  before(async () => { srv = await startServer({ nofile: 128, config: { limits: { connections: 100 } } }); });
  after(async () => {
    await srv.stop();
    srv.cleanup();
  });

  test('limits.connections is lowered to the open file limit less 64', () => {
    assert.ok(srv.lines.includes('level=info msg="connection limit lowered to fit the open file limit" '
      + 'limits.connections=100 open_file_limit=128 connections=64'), srv.lines.join('\n'));
  });

  test('600 idle connections: low CPU, one log line, then /healthz answers', async () => {
    const socks = [];
    for (let i = 0; i < 600; i++) {
      const s = net.connect(srv.port, '127.0.0.1');
      s.on('error', () => {});
      socks.push(s);
    }
    // Connections past the listen backlog stay half-open in the client's
    // SYN retries; waiting for all of them would take minutes.
    await until(() => srv.lines.some((l) => l.includes('msg="accepting connections paused"')));
    await sleep(500);
    const linesBefore = srv.lines.length;
    const t0 = cpuTicks(srv.proc.pid);
    await sleep(2000);
    const used = cpuTicks(srv.proc.pid) - t0;
    // A spinning loop takes about 200 ticks in 2 s.
    assert.ok(used < 40, `the server used ${used} ticks of CPU in 2 s`);
    assert.ok(srv.lines.length - linesBefore <= 1, srv.lines.slice(linesBefore, linesBefore + 5).join('\n'));
    const paused = srv.lines.filter((l) => l.includes('msg="accepting connections paused"'));
    assert.deepEqual(paused, ['level=warn msg="accepting connections paused" reason="limits.connections reached" '
      + 'connections=64 limit=64 failures=0']);
    for (const s of socks) s.destroy();
    await until(async () => (await api(srv.url, 'GET', '/healthz').catch(() => ({ status: 0 }))).status === 200, 5000);
    // Every connection is counted out again: the cap is free to fill once more.
    const again = [];
    for (let i = 0; i < 60; i++) again.push(net.connect(srv.port, '127.0.0.1').on('error', () => {}));
    await sleep(300);
    assert.equal((await api(srv.url, 'GET', '/healthz')).status, 200);
    for (const s of again) s.destroy();
  });
});
