// `chatplane ask` run as a user runs it, without a terminal: the answer
// alone on stdout, plain lines on stderr, --json, the exit codes that
// docs/cli.md lists, Ctrl-C, stdin, continuing a session, and usage errors.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';

import { binary, jsonLines, run, shq, startMock, workspace } from './helpers.mjs';

let mock;
let ws;

before(async () => {
  mock = await startMock();
});
after(() => mock.stop());
beforeEach(async () => {
  await mock.reset();
  ws = workspace();
});
afterEach(() => ws.cleanup());

const mockEnv = () => ({ ...ws.env, CHATPLANE_LLM_URL: mock.url, CHATPLANE_LLM_MODEL: 'mock-1' });
const demoEnv = () => ({ ...ws.env, CHATPLANE_DEMO_DELAY_MS: '0' });
const calc = (expression) => ({ name: 'calc', arguments: { expression } });
const noControls = (s) => assert.doesNotMatch(s, /[\x00-\x08\x0b-\x1f\x7f]/, 'no control characters');
const BUDGET = /^budget: steps \d+\/\d+, tokens \d+\/\d+, tool_calls \d+\/\d+, retries \d+\/\d+, seconds \d+\.\d$/;

describe('plain output', () => {
  test('stdout is the answer alone; stderr is plain lines in order', async () => {
    await mock.script([{ tool_calls: [calc('6*7')] }, { text: 'It is 42.' }]);
    const r = await run(['ask', 'what is 6*7?'], { env: mockEnv() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'It is 42.\n');
    noControls(r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.deepEqual(lines.map((l) => l.replace(BUDGET, 'budget')), [
      'status: thinking',
      'budget',
      'status: tool_running (running calc)',
      lines[3],
      'budget',
      'status: thinking',
      'status: responding',
      'budget',
      'stopped: completed: answered in 2 steps with 1 tool call',
      'suggestion: The run finished with an answer. Send a new message to go on.',
    ]);
    assert.match(lines[3], /^tool: calc ok \d+ms$/);
    // The seconds are the run's wall time: under load a run may take
    // longer than 50 ms, so only their form is checked.
    assert.match(lines[7], /^budget: steps 2\/10, tokens 36\/50000, tool_calls 1\/15, retries 0\/3, seconds \d+\.\d$/);
  });

  test('a failing tool names its error on the tool line', async () => {
    await mock.script([{ tool_calls: [calc('1/0')] }, { text: 'Cannot divide by zero.' }]);
    const r = await run(['ask', 'divide'], { env: mockEnv() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^tool: calc error \d+ms: division by zero$/m);
  });

  test('control characters from the model never reach stderr lines', async () => {
    await mock.script([{ status: 401, body: { error: { message: 'bad\u001b[31m key\nreally', type: 'x', code: 'invalid_api_key' } } }]);
    const r = await run(['ask', 'hi'], { env: mockEnv() });
    assert.equal(r.code, 1);
    noControls(r.stderr);
    assert.match(r.stderr, /^error: .*bad \[31m key really$/m);
  });
});

describe('--json', () => {
  test('every event is one JSON line on stdout, and stderr stays empty', async () => {
    await mock.script([{ text: 'Hello there.' }]);
    const r = await run(['ask', '--json', 'hi'], { env: mockEnv() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const events = jsonLines(r.stdout);
    assert.equal(events[0].type, 'message');
    assert.deepEqual([events[0].role, events[0].content], ['user', 'hi']);
    assert.equal(events.at(-1).type, 'run_stopped');
    assert.equal(events.at(-1).reason, 'completed');
    events.forEach((e, i) => assert.equal(e.seq, i + 1));
    const text = events.filter((e) => e.type === 'token').map((e) => e.text).join('');
    assert.equal(text, 'Hello there.');
  });
});

describe('exit codes', () => {
  test('0 when the run completed', async () => {
    const r = await run(['ask', 'what is 6*7?'], { env: demoEnv() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /42/);
  });

  test('3 on a guardrail stop (demo loop)', async () => {
    const r = await run(['ask', 'demo loop'], { env: demoEnv() });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /^guardrail: loop warn: calc was called 3 times with \{"expression":"2\+2"\}$/m);
    assert.match(r.stderr, /^stopped: loop_detected: calc was called 4 times with \{"expression":"2\+2"\}$/m);
    assert.match(r.stderr, /^suggestion: .+/m);
  });

  test('3 on a budget stop (quick mode, max_steps)', async () => {
    await mock.script([
      { tool_calls: [calc('1+1')] },
      { tool_calls: [calc('2+2')] },
      { text: 'What I have: 2 and 4.' },
    ]);
    const r = await run(['ask', '--mode', 'quick', 'keep going'], { env: mockEnv() });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, 'What I have: 2 and 4.\n');
    assert.match(r.stderr, /^stopped: max_steps: used 3 of 3 steps \(wrapped up\)$/m);
  });

  test('4 on Ctrl-C mid-stream, keeping what was streamed', async () => {
    await mock.script([{ text: 'one two three four five six seven eight nine ten eleven twelve', delay_ms: 150 }]);
    let sent = false;
    const r = await run(['ask', 'talk slowly'], {
      env: mockEnv(),
      onOutput: (child, out) => {
        if (!sent && out.stdout.length >= 8) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    assert.ok(sent, 'text arrived before the signal');
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /^status: stopping$/m);
    assert.match(r.stderr, /^stopped: user_stopped: /m);
    assert.ok('one two three four five six seven eight nine ten eleven twelve'.startsWith(r.stdout.trimEnd()));
    assert.ok(r.stdout.length < 40, `stopped early: ${JSON.stringify(r.stdout)}`);
  });

  test('4 on a Ctrl-C that comes before the model said anything', async () => {
    await mock.script([{ text: 'late', first_delay_ms: 5000 }]);
    let sent = false;
    const t0 = Date.now();
    const r = await run(['ask', 'slow start'], {
      env: mockEnv(),
      onOutput: (child, out) => {
        if (!sent && out.stderr.includes('status: thinking')) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    assert.equal(r.code, 4, r.stderr);
    assert.ok(Date.now() - t0 < 4000, 'the model request was aborted');
  });

  test('1 on a model error that is not retried (HTTP 401)', async () => {
    await mock.script([{ status: 401, body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } } }]);
    const r = await run(['ask', 'hi'], { env: mockEnv() });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^stopped: llm_error: HTTP 401 from http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions: Incorrect API key provided$/m);
  });

  test('1 when the database cannot be opened', async () => {
    const r = await run(['ask', '--db', 'sqlite:/nonexistent-dir/x.db', 'hi'], { env: demoEnv() });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^chatplane ask: .*nonexistent-dir/m);
  });

  test('1 when the model endpoint cannot be reached and the retries run out (max_retries)', async () => {
    const env = { ...ws.env, CHATPLANE_LLM_URL: 'http://127.0.0.1:1/v1', CHATPLANE_LLM_MODEL: 'm' };
    const r = await run(['ask', '--mode', 'quick', 'hi'], { env });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^stopped: max_retries: the model endpoint kept failing; used 1 of 1 retry \(last: could not connect to http:\/\/127\.0\.0\.1:1\/v1\/chat\/completions: connection refused\)$/m);
  });
});

describe('logs', () => {
  const broken = () => {
    const file = path.join(ws.dir, 'config.json');
    writeFileSync(file, JSON.stringify({ mcpServers: { broken: { command: 'chatplane-no-such-mcp-server' } } }));
    return { ...mockEnv(), CHATPLANE_CONFIG: file };
  };

  test('--json writes nothing to stderr, not even a warning of a tool server', async () => {
    await mock.script([{ text: 'fine' }]);
    const r = await run(['ask', '--json', 'hi'], { env: broken() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(jsonLines(r.stdout).at(-1).reason, 'completed');
  });

  test('without --json the same warning is logged on stderr', async () => {
    await mock.script([{ text: 'fine' }]);
    const r = await run(['ask', 'hi'], { env: broken() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^level=error msg="mcp server failed to start" server=broken error="command 'chatplane-no-such-mcp-server' not found in PATH"$/m);
  });
});

describe('the model name', () => {
  const noModel = () => ({ ...ws.env, CHATPLANE_LLM_URL: mock.url });

  test('without llm.model the only model the endpoint lists is used', async () => {
    await mock.script([{ text: 'hi' }]);
    const r = await run(['ask', 'hi'], { env: noModel() });
    assert.equal(r.code, 0, r.stderr);
    const [req] = await mock.requests();
    assert.equal(req.body.model, 'mock-model');
  });

  test('several models listed: ask refuses to start, naming the setting', async () => {
    await mock.setModels(['big', 'small']);
    const r = await run(['ask', 'hi'], { env: noModel() });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `chatplane ask: no model name: llm.model (CHATPLANE_LLM_MODEL) is not set and ${mock.url}/models lists 2 models (big, small); set it to the model to use\n`);
    assert.equal((await mock.requests()).length, 0);
  });

  test('no model listed, or no list: refuses to start too', async () => {
    await mock.setModels([]);
    let r = await run(['ask', 'hi'], { env: noModel() });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no model name: llm\.model \(CHATPLANE_LLM_MODEL\) is not set and .*\/v1\/models lists no models/);
    r = await run(['ask', 'hi'], { env: { ...ws.env, CHATPLANE_LLM_URL: 'http://127.0.0.1:1/v1' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot list the models of http:\/\/127\.0\.0\.1:1\/v1\/models: connection refused; set it/);
  });

  test('a model set by llm.model is used without asking the endpoint', async () => {
    await mock.setModels(['big', 'small']);
    await mock.script([{ text: 'hi' }]);
    const r = await run(['ask', 'hi'], { env: mockEnv() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await mock.requests())[0].body.model, 'mock-1');
  });
});

describe('serve start-up', () => {
  test('the start-up log masks the password of the model URL', async () => {
    const password = 'S3cretModelPassw0rd';
    const url = mock.url.replace('http://', `http://user:${password}@`);
    const child = spawn(binary, ['serve', '--listen', '127.0.0.1:0'], {
      env: { PATH: process.env.PATH, ...ws.env, CHATPLANE_LLM_URL: url },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line:\n${stderr}`)), 10000);
      child.stderr.on('data', (d) => {
        stderr += d;
        if (/msg="listening"/.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    const port = new URL(mock.url).port;
    assert.match(stderr, new RegExp(`^level=info msg="using an OpenAI-compatible model" base_url=http://user:\\*\\*\\*@127\\.0\\.0\\.1:${port}/v1 model=mock-model from=endpoint$`, 'm'));
    assert.ok(!stderr.includes(password.slice(0, 8)), stderr);
  });
});

describe('a reader that goes away', () => {
  test('a closed stdout stops the run cleanly instead of leaving it running', async () => {
    // The shell closes the pipe after the first line, as `| head -1` does.
    const cmd = `${shq(binary)} ask --json 'demo long' | head -1 >/dev/null; echo "exit=\${PIPESTATUS[0]}"`;
    const r = spawnSync('bash', ['-c', cmd], {
      env: { PATH: process.env.PATH, ...ws.env, CHATPLANE_DEMO_DELAY_MS: '30' },
      encoding: 'utf8',
      timeout: 30000,
    });
    assert.match(r.stdout, /^exit=4$/m, r.stderr);
    const sessions = await run(['sessions'], { env: ws.env });
    assert.match(sessions.stdout, /user_stopped/);
  });
});

describe('input and sessions', () => {
  test('MESSAGE - reads the message from stdin', async () => {
    await mock.script([{ text: 'Read you.' }]);
    const r = await run(['ask', '-'], { env: mockEnv(), input: 'a message\nover two lines\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Read you.\n');
    const [req] = await mock.requests();
    assert.deepEqual(req.body.messages.at(-1), { role: 'user', content: 'a message\nover two lines' });
  });

  test('--session continues a chat: the second request carries the first turn', async () => {
    await mock.script([{ text: 'First answer.' }, { text: 'Second answer.' }]);
    const first = await run(['ask', '--json', 'first question'], { env: mockEnv() });
    assert.equal(first.code, 0, first.stderr);
    const session = jsonLines(first.stdout)[0].session_id;
    const second = await run(['ask', '--session', session, 'second question'], { env: mockEnv() });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, 'Second answer.\n');
    const reqs = await mock.requests();
    assert.equal(reqs.length, 2);
    const convo = reqs[1].body.messages.filter((m) => m.role !== 'system');
    assert.deepEqual(convo, [
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'First answer.' },
      { role: 'user', content: 'second question' },
    ]);
  });

  test('--session with --mode switches the session to that mode', async () => {
    const first = await run(['ask', '--json', 'hello'], { env: demoEnv() });
    const session = jsonLines(first.stdout)[0].session_id;
    const second = await run(['ask', '--json', `--session=${session}`, '--mode=quick', 'hello again'], { env: demoEnv() });
    assert.equal(second.code, 0, second.stderr);
    const started = jsonLines(second.stdout).find((e) => e.type === 'run_started');
    assert.equal(started.mode, 'quick');
    assert.equal(started.session_id, session);
  });
});

describe('usage errors', () => {
  const cases = [
    [['ask'], /^chatplane ask: a MESSAGE is needed/],
    [['ask', '--bogus', 'hi'], /'--bogus'/],
    [['ask', '--mode'], /^chatplane ask: --mode needs a value$/],
    [['ask', '--mode', 'huge', 'hi'], /^chatplane ask: --mode: no mode 'huge' \(the modes are quick, standard, deep\)$/],
    [['ask', '--session', 'ses_nope', 'hi'], /^chatplane ask: --session: no session 'ses_nope'$/],
    [['ask', '--json=yes', 'hi'], /^chatplane ask: --json takes no value$/],
    [['ask', 'one', 'two'], /^chatplane ask: unexpected argument 'two'/],
    [['ask', '-'], /^chatplane ask: the message must be between 1 and \d+ bytes$/],
    [['ask', '--db'], /--db needs a value/],
    [['events'], /^chatplane events: a SESSION id is needed$/],
    [['events', 'ses_x', '--after', '-3'], /^chatplane events: --after: '-3' is not a whole number >= 0$/],
    [['events', 'ses_x', '--after'], /^chatplane events: --after needs a value$/],
    [['events', 'ses_x', '--tail'], /'--tail'/],
    [['sessions', 'extra'], /^chatplane sessions: unexpected argument 'extra'$/],
    [['frobnicate'], /^chatplane: unknown command 'frobnicate'/],
    [['help', 'frobnicate'], /^chatplane: no command named 'frobnicate'/],
  ];
  for (const [args, message] of cases) {
    test(`${args.join(' ') || '(none)'} exits 2 naming the problem`, async () => {
      const r = await run(args, { env: demoEnv() });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr.trimEnd(), message);
      assert.equal(r.stdout, '');
    });
  }
});

describe('help', () => {
  for (const name of ['ask', 'events', 'sessions']) {
    test(`help ${name} and ${name} --help show usage and examples`, async () => {
      const a = await run(['help', name]);
      const b = await run([name, '--help']);
      assert.equal(a.code, 0);
      assert.equal(b.code, 0);
      assert.equal(a.stdout, b.stdout);
      assert.match(a.stdout, new RegExp(`^Usage: chatplane ${name}`));
      assert.match(a.stdout, /\nExamples:\n {2}chatplane /);
      assert.match(a.stdout, /\nOptions:\n {2}--db VALUE/);
    });
  }

  test('help lists every command', async () => {
    const r = await run(['help']);
    assert.equal(r.code, 0);
    for (const name of ['ask', 'events', 'sessions', 'migrate', 'serve']) {
      assert.match(r.stdout, new RegExp(`^ {2}chatplane ${name}\\b`, 'm'));
    }
  });
});
