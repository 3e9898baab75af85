// MCP scenarios: the real binary (`chatplane ask --json`) with real MCP
// servers as tool sources — @modelcontextprotocol/server-everything,
// @modelcontextprotocol/server-filesystem and the project's misbehaving
// server (tests/mcp/misbehaving-server.mjs) — and the mock model asking for
// their tools. Every test also checks that no server process outlives ask.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, beforeEach, describe, test } from 'node:test';

import { ask, binary, ofType, startMock, stopped, workspace } from './lib.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const misbehavingScript = path.join(root, 'tests', 'mcp', 'misbehaving-server.mjs');

let mock;

before(async () => {
  assert.ok(existsSync(bin('mcp-server-everything')), 'npm ci installs the MCP reference servers');
  mock = await startMock();
});
after(() => mock.stop());
beforeEach(async () => {
  await mock.reset();
});

// A unique word put on a server's command line, to find its process later.
const newMarker = () => `mcp-marker-${randomUUID()}`;

const everything = (marker) => ({ command: bin('mcp-server-everything'), args: ['stdio', marker] });
const filesystem = (dir) => ({ command: bin('mcp-server-filesystem'), args: [dir] });
const misbehaving = (mode, marker, extra = {}) => ({
  command: process.execPath,
  args: [misbehavingScript, mode, '--marker', marker],
  ...extra,
});

// The pids of live processes whose command line contains marker (what
// `pgrep -f marker` prints, read from /proc so no tool is needed).
function processesWith(marker) {
  const pids = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // A zombie has ended already; only its parent's wait is missing.
      if (cmdline.includes(marker) && !/^\d+ \(.*\) Z/.test(stat)) pids.push(Number(pid));
    } catch {
      // It ended while we looked.
    }
  }
  return pids;
}

async function waitGone(marker, ms = 3000) {
  const end = Date.now() + ms;
  while (processesWith(marker).length && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  return processesWith(marker);
}

// Runs one turn with the mcpServers that makeServers(dir) returns (it may be
// async; dir is the test's own directory). Asserts that no process carrying
// one of the markers is left once ask has exited; inspect(dir, result) runs
// before the directory is removed.
async function run(message, makeServers, { markers = [], signalAfter, inspect, extraEnv = {} } = {}) {
  const ws = workspace();
  try {
    const config = { mcpServers: await makeServers(ws.dir), approvals: { rules: [{ tool: '*', action: 'allow' }] } };
    const file = path.join(ws.dir, 'config.json');
    writeFileSync(file, JSON.stringify(config));
    const env = { ...ws.env, CHATPLANE_CONFIG: file, CHATPLANE_LLM_URL: mock.url, CHATPLANE_LLM_MODEL: 'mock-1', ...extraEnv };
    const r = await ask([message], { env, signalAfter });
    for (const m of [...markers, ws.dir]) {
      assert.deepEqual(processesWith(m), [], `no process with ${m} outlives ask`);
    }
    if (inspect) inspect(ws.dir, r);
    return r;
  } finally {
    ws.cleanup();
  }
}

// These tests are about tool servers, not approvals: every tool call is
// allowed by a rule, as a configuration that trusts its servers would.
const allowAll = { rules: [{ tool: '*', action: 'allow' }] };

const toolCall = (name, args, id) => ({ tool_calls: [{ name, arguments: args, ...(id ? { id } : {}) }] });
const finished = (r) => ofType(r.events, 'tool_finished');

describe('server-everything', () => {
  test('a tool result that echoes part of the model key is masked before it is stored or shown', async () => {
    const marker = newMarker();
    const key = 'sk-live-S3CR3Tk3y0123456789abcd';
    // 22 of the key's 30 characters, cut at both ends.
    await mock.script([toolCall('everything__echo', { message: `key was ${key.slice(4, 26)}!` }, 'call_k'), { text: 'done' }]);
    const r = await run('echo the key', () => ({ everything: everything(marker) }), {
      markers: [marker],
      extraEnv: { CHATPLANE_LLM_API_KEY: key },
    });
    assert.equal(r.code, 0, r.stderr);
    const [fin] = finished(r);
    assert.equal(fin.result, 'Echo: key was [redacted]!');
    // What the model got back as the tool's answer is the masked text too.
    const second = (await mock.requests())[1];
    const toolMsg = second.body.messages.find((m) => m.role === 'tool');
    assert.equal(toolMsg.content, 'Echo: key was [redacted]!');
    // No event after the call carries 8 characters of the key.
    const later = r.events.filter((e) => e.type !== 'tool_started' && !(e.type === 'message' && e.role === 'assistant'));
    const text = JSON.stringify(later);
    for (let i = 0; i + 8 <= key.length; i++) assert.ok(!text.includes(key.slice(i, i + 8)), `fragment ${key.slice(i, i + 8)}`);
  });

  test('echo: the model sees server__tool names and the result comes back', async () => {
    const marker = newMarker();
    await mock.script([toolCall('everything__echo', { message: 'hi there' }, 'call_e'), { text: 'It said hi.' }]);
    const r = await run('echo something', () => ({ everything: everything(marker) }), { markers: [marker] });
    assert.equal(r.code, 0, r.stderr);
    const started = ofType(r.events, 'tool_started')[0];
    assert.deepEqual([started.server, started.tool], ['everything', 'echo']);
    assert.deepEqual(started.arguments, { message: 'hi there' });
    const [fin] = finished(r);
    assert.equal(fin.execution_id, started.execution_id);
    assert.deepEqual([fin.server, fin.tool, fin.status, fin.result, fin.error], ['everything', 'echo', 'ok', 'Echo: hi there', null]);
    assert.equal(stopped(r.events).reason, 'completed');

    const [first, second] = await mock.requests();
    const names = first.body.tools.map((t) => t.function.name);
    for (const n of ['calc', 'clock', 'everything__echo', 'everything__get-sum', 'everything__trigger-long-running-operation']) {
      assert.ok(names.includes(n), `${n} is offered`);
    }
    const echo = first.body.tools.find((t) => t.function.name === 'everything__echo').function;
    assert.equal(echo.description, 'Echoes back the input string');
    assert.deepEqual(echo.parameters.required, ['message']);
    assert.deepEqual(second.body.messages.at(-1), { role: 'tool', tool_call_id: 'call_e', content: 'Echo: hi there' });
  });

  test('get-sum', async () => {
    const marker = newMarker();
    await mock.script([toolCall('everything__get-sum', { a: 2, b: 3 }), { text: 'Five.' }]);
    const r = await run('add', () => ({ everything: everything(marker) }), { markers: [marker] });
    assert.equal(r.code, 0, r.stderr);
    const [fin] = finished(r);
    assert.deepEqual([fin.tool, fin.status, fin.result], ['get-sum', 'ok', 'The sum of 2 and 3 is 5.']);
  });

  test('progress of trigger-long-running-operation becomes tool_progress events', async () => {
    const marker = newMarker();
    await mock.script([toolCall('everything__trigger-long-running-operation', { duration: 2, steps: 4 }), { text: 'Done.' }]);
    const r = await run('run long', () => ({ everything: everything(marker) }), { markers: [marker] });
    assert.equal(r.code, 0, r.stderr);
    const started = ofType(r.events, 'tool_started')[0];
    const progress = ofType(r.events, 'tool_progress');
    assert.deepEqual(progress.map((p) => [p.progress, p.total]), [[1, 4], [2, 4], [3, 4], [4, 4]]);
    assert.ok(progress.every((p) => p.execution_id === started.execution_id));
    // Between the tool's start and its end.
    const seq = (e) => e.seq;
    assert.ok(seq(progress[0]) > seq(started) && seq(progress[3]) < seq(finished(r)[0]));
    assert.match(finished(r)[0].result, /^Long running operation completed\. Duration: 2 seconds, Steps: 4\.$/);
    assert.ok(finished(r)[0].duration_ms >= 1900);
  });

  test('Ctrl-C during a long operation cancels the call and stops the run', async () => {
    const marker = newMarker();
    await mock.script([toolCall('everything__trigger-long-running-operation', { duration: 30, steps: 30 })]);
    const t0 = Date.now();
    const r = await run('run long', () => ({ everything: everything(marker) }), {
      markers: [marker],
      signalAfter: (ev) => ev.type === 'tool_progress',
    });
    assert.equal(r.code, 4, r.stderr);
    assert.ok(Date.now() - t0 < 15000, 'ask did not wait for the operation');
    const [fin] = finished(r);
    assert.deepEqual([fin.status, fin.error], ['cancelled', 'cancelled: the run stopped']);
    assert.equal(stopped(r.events).reason, 'user_stopped');
  });
});

describe('server-filesystem', () => {
  test('reading outside its directory is a tool error with the server\'s message', async () => {
    await mock.script([
      toolCall('fs__read_text_file', { path: '/etc/hostname' }),
      { text: 'Could not read it.' },
    ]);
    const r = await run('read a file', (dir) => {
      mkdirSync(path.join(dir, 'files'));
      return { fs: filesystem(path.join(dir, 'files')) };
    });
    assert.equal(r.code, 0, r.stderr);
    const [fin] = finished(r);
    assert.deepEqual([fin.server, fin.tool, fin.status], ['fs', 'read_text_file', 'error']);
    assert.match(fin.error, /^Access denied - path outside allowed directories: \/etc\/hostname not in /);
    assert.equal(fin.result, fin.error);
  });

  test('reading inside its directory works', async () => {
    const r = await run('read a file', async (dir) => {
      mkdirSync(path.join(dir, 'files'));
      const file = path.join(dir, 'files', 'note.txt');
      writeFileSync(file, 'a note\n');
      // The path is only known now; the model is scripted here.
      await mock.script([toolCall('fs__read_text_file', { path: file }), { text: 'It says: a note.' }]);
      return { fs: filesystem(path.join(dir, 'files')) };
    });
    assert.equal(r.code, 0, r.stderr);
    const [fin] = finished(r);
    assert.deepEqual([fin.status, fin.result], ['ok', 'a note\n']);
  });
});

describe('failures', () => {
  test('a server that cannot start leaves --json stderr empty; the other server still works', async () => {
    const marker = newMarker();
    await mock.script([toolCall('everything__echo', { message: 'still here' }), { text: 'ok' }]);
    const r = await run('echo', () => ({
      broken: { command: 'chatplane-no-such-mcp-server' },
      everything: everything(marker),
    }), { markers: [marker] });
    assert.equal(r.code, 0, r.stderr);
    // Logged without --json (tests/cli); with it, stdout is the only output.
    assert.equal(r.stderr, '');
    assert.equal(finished(r)[0].result, 'Echo: still here');
    const [req] = await mock.requests();
    assert.ok(!req.body.tools.some((t) => t.function.name.startsWith('broken__')));
  });

  test('timeout_seconds on a server that never answers: status timeout, cancellation sent', async () => {
    const marker = newMarker();
    await mock.script([toolCall('slow__echo', { message: 'x' }), { text: 'It timed out.' }]);
    let log = '';
    const r = await run('echo', (dir) => ({
      slow: misbehaving('never-answer', marker, { timeout_seconds: 1, env: { MISBEHAVING_LOG: path.join(dir, 'server.log') } }),
    }), { markers: [marker], inspect: (dir) => (log = readFileSync(path.join(dir, 'server.log'), 'utf8')) });
    assert.equal(r.code, 0, r.stderr);
    const [fin] = finished(r);
    assert.deepEqual([fin.status, fin.error, fin.result], ['timeout', 'timed out after 1 s', 'timed out after 1 s']);
    assert.ok(fin.duration_ms >= 950 && fin.duration_ms < 3000, `took ${fin.duration_ms} ms`);
    assert.equal(log, 'cancelled 3: timed out after 1 s\n');
  });

  test('Ctrl-C sends notifications/cancelled to the server', async () => {
    const marker = newMarker();
    await mock.script([toolCall('mis__slow_progress', { steps: 50, ms: 100 })]);
    let log = '';
    const r = await run('go', (dir) => ({
      mis: misbehaving('normal', marker, { env: { MISBEHAVING_LOG: path.join(dir, 'server.log') } }),
    }), {
      markers: [marker],
      signalAfter: (ev) => ev.type === 'tool_progress',
      inspect: (dir) => (log = readFileSync(path.join(dir, 'server.log'), 'utf8')),
    });
    assert.equal(r.code, 4, r.stderr);
    assert.equal(finished(r)[0].status, 'cancelled');
    assert.equal(log, 'cancelled 3: the run stopped\n');
  });

  test('a server that crashes mid-call: the call fails with how it ended', async () => {
    const marker = newMarker();
    await mock.script([toolCall('c__echo', { message: 'boom' }), { text: 'It crashed.' }]);
    const r = await run('crash', () => ({ c: misbehaving('crash-mid-call', marker) }), { markers: [marker] });
    assert.equal(r.code, 0, r.stderr);
    const [fin] = finished(r);
    assert.deepEqual([fin.status, fin.error], ['error', "the MCP server 'c' exited (status 1) during the call"]);
  });

  test('a crash during a read-only call: the server is started again and the call repeated once', async () => {
    const marker = newMarker();
    const dir = mkdtempSync(path.join(tmpdir(), 'chatplane-crash-once-'));
    try {
      await mock.script([toolCall('c__echo', { message: 'twice' }), { text: 'It answered.' }]);
      const r = await run('echo', () => ({ c: misbehaving('crash-once', marker, { env: { MISBEHAVING_STATE: path.join(dir, 'state') } }) }), { markers: [marker] });
      assert.equal(r.code, 0, r.stderr);
      const repairs = ofType(r.events, 'repair');
      assert.deepEqual(repairs.map((e) => [e.playbook, e.action, e.outcome]), [
        ['tool_server_crashed', 'restart_tool_server', 'ok'], ['tool_server_crashed', 'retry_tool_call', 'ok']]);
      assert.equal(repairs[0].detail, "the tool server c ended during c__echo (the MCP server 'c' exited (status 1) during the call); started it again");
      assert.deepEqual(repairs[0].evidence, { server: 'c', tool: 'c__echo', error: "the MCP server 'c' exited (status 1) during the call" });
      assert.equal(repairs[1].detail, 'c__echo only reads, so it was called again');
      // One execution, which succeeded on the new connection.
      assert.equal(ofType(r.events, 'tool_started').length, 1);
      assert.deepEqual(finished(r).map((f) => [f.status, f.result]), [['ok', 'Echo: twice']]);
      const types = r.events.map((e) => e.type);
      assert.ok(types.indexOf('repair') > types.indexOf('tool_started') && types.indexOf('repair') < types.indexOf('tool_finished'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a crash during a call that is not read-only: the server is started again, the call is not repeated', async () => {
    const marker = newMarker();
    await mock.script([toolCall('c__crash', {}), { text: 'It crashed.' }]);
    const r = await run('crash', () => ({ c: misbehaving('normal', marker) }), { markers: [marker] });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(ofType(r.events, 'repair').map((e) => [e.action, e.outcome]), [['restart_tool_server', 'ok']]);
    assert.deepEqual(finished(r).map((f) => [f.status, f.error]), [['error', "the MCP server 'c' exited (status 1) during the call"]]);
  });

  test('a server that crashed and cannot start again: repeated failures diagnosed as the server down, with a restart action', async () => {
    const marker = newMarker();
    const dir = mkdtempSync(path.join(tmpdir(), 'chatplane-down-'));
    const flag = path.join(dir, 'started');
    // The first process crashes on its call; every later start exits 3.
    const script = `test -f '${flag}' && { echo 'cannot start again' >&2; exit 3; }; touch '${flag}'; exec '${process.execPath}' '${misbehavingScript}' crash-mid-call --marker ${marker}`;
    try {
      const call = toolCall('d__echo', { message: 'x' });
      await mock.script([call, call, call, call, { text: 'unused' }]);
      const r = await run('go', () => ({ d: { command: 'sh', args: ['-c', script] } }), { markers: [marker] });
      assert.equal(r.code, 3, r.stderr);
      const s = stopped(r.events);
      assert.equal(s.reason, 'repeated_failures');
      assert.equal(s.diagnosis.playbook, 'tool_server_down');
      assert.match(s.diagnosis.summary, /^d has been down since \d{4}-\d\d-\d\d \d\d:\d\d UTC: exited \(status 3\) during start-up$/);
      assert.deepEqual([s.diagnosis.evidence.server, s.diagnosis.evidence.error], ['d', 'exited (status 3) during start-up']);
      assert.deepEqual(s.actions.at(-1), { kind: 'restart_tool_server', server: 'd', label: 'Restart d' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a crashed server is restarted for the next call', async () => {
    const marker = newMarker();
    await mock.script([toolCall('c__crash', {}), toolCall('c__echo', { message: 'again' }), { text: 'Back.' }]);
    const r = await run('crash', () => ({ c: misbehaving('normal', marker) }), { markers: [marker] });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(finished(r).map((f) => [f.tool, f.status]), [['crash', 'error'], ['echo', 'ok']]);
    assert.equal(finished(r)[1].result, 'Echo: again');
  });

  test('a line over the cap fails that call only', async () => {
    const marker = newMarker();
    await mock.script([toolCall('h__echo', { message: 'a' }), toolCall('h__echo', { message: 'b' }), { text: 'ok' }]);
    const r = await run('huge', () => ({ h: misbehaving('huge-line', marker) }), { markers: [marker] });
    assert.equal(r.code, 0, r.stderr);
    const [one, two] = finished(r);
    assert.equal(one.status, 'error');
    assert.match(one.error, /^the MCP server 'h' sent a message of 5242953 bytes, more than the 4194304 bytes allowed$/);
    assert.deepEqual([two.status, two.result], ['ok', 'Echo: b']);
  });
});

describe('misbehaving but usable', () => {
  for (const mode of ['garbage-lines', 'out-of-order', 'notifications-before-initialize', 'paginate']) {
    test(`${mode}: tools are listed and calls work`, async () => {
      const marker = newMarker();
      await mock.script([toolCall('m__echo', { message: mode }), { text: 'ok' }]);
      const r = await run('go', () => ({ m: misbehaving(mode, marker) }), { markers: [marker] });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual([finished(r)[0].status, finished(r)[0].result], ['ok', `Echo: ${mode}`]);
      const [req] = await mock.requests();
      const names = req.body.tools.map((t) => t.function.name).filter((n) => n.startsWith('m__'));
      assert.deepEqual(names, ['m__echo', 'm__pid', 'm__env', 'm__crash', 'm__hang', 'm__freeze', 'm__slow_progress', 'm__huge', 'm__fail']);
    });
  }

  test('slow-progress: progress messages reach the timeline', async () => {
    const marker = newMarker();
    await mock.script([toolCall('m__echo', { message: 'p' }), { text: 'ok' }]);
    const r = await run('go', () => ({ m: misbehaving('slow-progress', marker) }), { markers: [marker] });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(ofType(r.events, 'tool_progress').map((p) => [p.progress, p.total, p.message]), [
      [1, 4, 'step 1'], [2, 4, 'step 2'], [3, 4, 'step 3'], [4, 4, 'step 4'],
    ]);
  });

  test('a JSON-RPC error is a tool error', async () => {
    const marker = newMarker();
    await mock.script([toolCall('m__fail', {}), { text: 'ok' }]);
    const r = await run('go', () => ({ m: misbehaving('normal', marker) }), { markers: [marker] });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([finished(r)[0].status, finished(r)[0].error], ['error', 'JSON-RPC error -32602: Invalid params: nothing is valid here']);
  });
});

describe('processes and configuration', () => {
  test('servers die with chatplane even when it is killed outright', async () => {
    const marker = newMarker();
    await mock.script([toolCall('everything__trigger-long-running-operation', { duration: 30, steps: 30 })]);
    const ws = workspace();
    try {
      const file = path.join(ws.dir, 'config.json');
      writeFileSync(file, JSON.stringify({ mcpServers: { everything: everything(marker) }, approvals: allowAll }));
      const child = spawn(binary, ['ask', '--json', 'go'], {
        env: { PATH: process.env.PATH, ...ws.env, CHATPLANE_CONFIG: file, CHATPLANE_LLM_URL: mock.url },
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      await new Promise((resolve) => {
        createInterface({ input: child.stdout }).on('line', (line) => {
          if (JSON.parse(line).type === 'tool_progress') resolve();
        });
      });
      assert.equal(processesWith(marker).length, 1);
      child.kill('SIGKILL');
      assert.deepEqual(await waitGone(marker), [], 'the server got SIGKILL from the kernel');
    } finally {
      ws.cleanup();
    }
  });

  test('a malformed mcpServers entry is an error naming the key', async () => {
    const ws = workspace({ mcpServers: { fs: { command: ['npx'] } } });
    try {
      const r = await ask(['hi'], { env: ws.env });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /config key 'mcpServers\.fs\.command' must be a non-empty string/);
    } finally {
      ws.cleanup();
    }
    const ws2 = workspace({ mcpServers: { fs: { command: 'x', argz: [] } } });
    try {
      const r = await ask(['hi'], { env: ws2.env });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /unknown config key 'mcpServers\.fs\.argz'/);
    } finally {
      ws2.cleanup();
    }
  });
});
