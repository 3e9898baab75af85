// An MCP server that floods chatplane (the misbehaving server's flood mode:
// 100,000 progress notifications, 100,000 log notifications and 100,000
// stderr lines of 500 bytes during one tools/call). chatplane must show a
// few paced tool_progress events ending with the server's last value, keep
// its database small, and write a bounded log with the drops summed up
// (docs/mcp.md: Progress, Log limits).
import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';

import { api, newSession, startServer, waitIdle } from '../integration/lib/server.mjs';
import { ask, ofType, startMock, stopped, workspace } from './lib.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
const flood = { command: process.execPath, args: [path.join(root, 'tests', 'mcp', 'misbehaving-server.mjs'), 'flood'], timeout_seconds: 120 };
const FLOOD = 100000;
// The limits docs/mcp.md states.
const LOG_BURST = 200;
const LOG_RATE = 20;

let mock;
before(async () => {
  mock = await startMock();
});
after(() => mock.stop());
beforeEach(async () => {
  await mock.reset();
});

// These tests are about floods from a tool server, not approvals: its
// tool is allowed by a rule.
const allowAll = { rules: [{ tool: '*', action: 'allow' }] };

const fileSize = (f) => (existsSync(f) ? statSync(f).size : 0);

test('a progress flood becomes a few paced tool_progress events ending with the last value', async () => {
  await mock.script([{ tool_calls: [{ name: 'f__echo', arguments: { message: 'x' } }] }, { text: 'ok' }]);
  const ws = workspace();
  try {
    const file = path.join(ws.dir, 'config.json');
    writeFileSync(file, JSON.stringify({ mcpServers: { f: flood }, approvals: allowAll }));
    const r = await ask(['flood me'], {
      env: { ...ws.env, CHATPLANE_CONFIG: file, CHATPLANE_LLM_URL: mock.url, CHATPLANE_LLM_MODEL: 'mock-1' },
    });
    assert.equal(r.code, 0, r.stderr.slice(0, 2000));
    assert.equal(stopped(r.events).reason, 'completed');
    const [started] = ofType(r.events, 'tool_started');
    const [fin] = ofType(r.events, 'tool_finished');
    assert.deepEqual([fin.status, fin.result], ['ok', 'Echo: x']);

    const progress = ofType(r.events, 'tool_progress');
    assert.ok(progress.every((p) => p.execution_id === started.execution_id));
    // One at once, at most one per 250 ms after it, and the last one held.
    const most = Math.floor((4 * fin.duration_ms) / 1000) + 2;
    assert.ok(progress.length >= 2 && progress.length <= most,
      `${progress.length} tool_progress events in ${fin.duration_ms} ms (at most ${most})`);
    const shown = (p) => [p.progress, p.total, p.message];
    assert.deepEqual(shown(progress[0]), [1, FLOOD, 'flood 1']);
    assert.deepEqual(shown(progress.at(-1)), [FLOOD, FLOOD, `flood ${FLOOD}`]);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i].progress > progress[i - 1].progress);
    assert.ok(progress[0].seq > started.seq && progress.at(-1).seq < fin.seq, 'progress comes between start and end');
    const others = r.events.length - progress.length;
    assert.ok(others < 25, `${others} events besides tool_progress`);

    // The stored run stays small (100,000 stored events made 42 MB).
    const bytes = fileSize(path.join(ws.dir, 'chat.db')) + fileSize(path.join(ws.dir, 'chat.db-wal'));
    assert.ok(bytes < 1 << 20, `the database holds ${bytes} bytes`);
  } finally {
    ws.cleanup();
  }
});

test('stderr and log notification floods leave a bounded log with the drops summed up', async () => {
  await mock.script([{ tool_calls: [{ name: 'f__echo', arguments: { message: 'x' } }] }, { text: 'ok' }]);
  const t0 = Date.now();
  const srv = await startServer({ config: { llm: { base_url: mock.url, model: 'mock-1' }, mcpServers: { f: flood }, approvals: allowAll } });
  let lines;
  let seconds;
  try {
    const s = await newSession(srv.url);
    const r = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'flood me' });
    assert.equal(r.status, 202, r.text);
    const done = await waitIdle(srv.url, s.id, 60000);
    assert.equal(done.last_run.stop_reason, 'completed');
    const tools = await api(srv.url, 'GET', `/api/sessions/${s.id}/tools`);
    assert.deepEqual(tools.body.tool_executions.map((t) => [t.tool, t.status]), [['echo', 'ok']]);
    const { code } = await srv.stop();
    assert.equal(code, 0);
    seconds = Math.ceil((Date.now() - t0) / 1000);
    lines = srv.lines;
  } finally {
    await srv.stop();
    srv.cleanup();
  }

  const bytes = lines.reduce((n, l) => n + l.length + 1, 0);
  assert.ok(bytes < 1 << 20, `the log has ${bytes} bytes`);

  const summary = /^level=warn msg="mcp server output dropped: over the rate limit" server=f stream=(stderr|messages) dropped=(\d+) seconds=(\d+\.\d)$/;
  for (const [stream, kind] of [['stderr', 'msg="mcp stderr" server=f '], ['messages', 'msg="mcp log" server=f ']]) {
    const written = lines.filter((l) => l.startsWith(`level=info ${kind}`));
    const summaries = lines.map((l) => summary.exec(l)).filter((m) => m && m[1] === stream);
    const dropped = summaries.reduce((n, m) => n + Number(m[2]), 0);
    // Every line is either written or counted in a summary.
    assert.equal(written.length + dropped, FLOOD, `${stream}: ${written.length} written, ${dropped} dropped`);
    assert.ok(written.length <= LOG_BURST + LOG_RATE * seconds, `${stream}: ${written.length} lines in ${seconds} s`);
    assert.ok(summaries.length >= 1 && summaries.length <= 1 + seconds / 10, `${stream}: ${summaries.length} summaries`);
    assert.ok(summaries.every((m) => Number(m[3]) <= 11), `${stream}: a summary covers about 10 s at most`);
  }
  // The lines written are the first ones, as they came, each cut at 1 KiB.
  assert.match(lines.find((l) => l.includes('msg="mcp stderr" server=f ')), /^level=info msg="mcp stderr" server=f line="flood stderr line 000001 e{470}"$/);
  assert.equal(lines.find((l) => l.includes('msg="mcp log" server=f ')), 'level=info msg="mcp log" server=f level="info" data="\\"log record 1\\""');
});
