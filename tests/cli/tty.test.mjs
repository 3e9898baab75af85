// `chatplane ask` on a terminal, under a pseudo-terminal made by
// util-linux `script`: the status line redrawn in place, the tool and
// guardrail lines, the end, and a screen on which the answer is intact.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';

import { binary, runPty, screen, shq, startMock, workspace } from './helpers.mjs';

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

const ask = (...args) => [binary, 'ask', ...args].map(shq).join(' ');
const calc = (expression) => ({ name: 'calc', arguments: { expression } });
// A status line as drawn: "\r", the line, then clear to the end of the line.
const STATUS = /\r[^\r\n]*steps \d+\/10 · tools \d+\/15 · tokens \d+\/50000\x1b\[K/;

describe('approvals on a terminal', () => {
  test('a call that needs approval is asked on the terminal; y approves it', async () => {
    await mock.script([{ tool_calls: [calc('6*7')] }, { text: 'The answer is 42.' }]);
    const cfg = workspace({ approvals: { rules: [{ tool: 'calc', action: 'ask' }] } });
    try {
      const env = { ...cfg.env, CHATPLANE_LLM_URL: mock.url, LANG: 'C.UTF-8' };
      const r = await runPty(ask('what is 6*7?'), { env, input: 'y\n' });
      assert.equal(r.code, 0, r.output);
      assert.ok(r.output.includes('approve calc {"expression":"6*7"} ? [y]es/[n]o/[a]lways (rule calc) '), r.output);
      assert.match(r.output, /The answer is 42\./);
      const reqs = await mock.requests();
      assert.equal(reqs[1].body.messages.find((m) => m.role === 'tool').content, '42');
    } finally {
      cfg.cleanup();
    }
  });
});

describe('questions on a terminal', () => {
  test('a tool server\'s question is asked field by field; the answer reaches the tool', async () => {
    const everything = path.resolve(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'mcp-server-everything');
    await mock.script([{ tool_calls: [{ name: 'everything__trigger-elicitation-request', arguments: {} }] }, { text: 'Noted.' }]);
    const cfg = workspace({
      mcpServers: { everything: { command: everything, args: ['stdio'] } },
      approvals: { rules: [{ tool: '*', action: 'allow' }] },
    });
    try {
      const env = { ...cfg.env, CHATPLANE_LLM_URL: mock.url, LANG: 'C.UTF-8' };
      // Name, the terms, then defaults but for the integer: 13 fields.
      const r = await runPty(ask('ask me'), { env, input: 'Ada\ny\n\n\n\n\n7\n\n\n\n\n\n\n' });
      assert.equal(r.code, 0, r.output);
      assert.ok(r.output.includes('Please provide inputs for the following fields:'), r.output);
      assert.ok(r.output.includes('String: Your full, legal name (string, required): '), r.output);
      assert.ok(r.output.includes('Integer: Your favorite integer'), r.output);
      const tool = (await mock.requests())[1].body.messages.find((m) => m.role === 'tool').content;
      assert.match(tool, /- Name: Ada/);
      assert.match(tool, /- Agreed to terms: true/);
      assert.match(tool, /- Favorite Integer: 7/);
      assert.match(tool, /- Favorite Number: 3.14/);
    } finally {
      cfg.cleanup();
    }
  });
});

describe('the terminal view', () => {
  test('status line, tool line, and the end with its suggestion', async () => {
    await mock.script([{ tool_calls: [calc('6*7')] }, { text: 'The answer is 42.', delay_ms: 120 }]);
    const env = { ...ws.env, CHATPLANE_LLM_URL: mock.url, LANG: 'C.UTF-8' };
    const r = await runPty(ask('what is 6*7?'), { env });
    assert.equal(r.code, 0, r.output);
    const out = r.output;
    const uncoloured = out.replace(/\x1b\[[0-9;]*m/g, '');
    assert.match(uncoloured, STATUS);
    assert.match(uncoloured, /\r[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] thinking · \d+\.\ds\/120s · steps/);
    assert.match(uncoloured, /\r[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] running calc · /);
    // The spinner moved: at least two different frames were drawn.
    const frames = new Set([...out.matchAll(/\r(?:\x1b\[36m)?([⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏])/g)].map((m) => m[1]));
    assert.ok(frames.size >= 2, `spinner frames: ${[...frames]}`);
    assert.match(out, /\x1b\[32m/, 'colours are on by default');

    const lines = screen(out);
    assert.ok(lines.includes('The answer is 42.'), lines.join('\n'));
    assert.ok(lines.some((l) => /^✓ calc ok \d+ ms {2}\{"expression":"6\*7"\}$/.test(l)), lines.join('\n'));
    const end = lines.findIndex((l) => l === '■ completed: answered in 2 steps with 1 tool call');
    assert.ok(end > 0, lines.join('\n'));
    assert.match(lines[end + 1], /^ {2}\d+\.\ds\/120s · steps 2\/10 · tools 1\/15 · tokens 36\/50000$/);
    assert.equal(lines[end + 2], '→ The run finished with an answer. Send a new message to go on.');
    assert.match(lines[end + 3], /^ {2}chatplane ask --session ses_[0-9a-f]{24} MESSAGE$/);
    // The status line is gone from the final screen; the tool line comes
    // before the answer, the answer before the end.
    assert.ok(!lines.some((l) => /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/.test(l)), lines.join('\n'));
    assert.ok(lines.findIndex((l) => l.startsWith('✓ calc')) < lines.indexOf('The answer is 42.'));
    assert.ok(lines.indexOf('The answer is 42.') < end);
  });

  test('a guardrail warning and a stop, in ASCII and without colour', async () => {
    const env = { ...ws.env, CHATPLANE_DEMO_DELAY_MS: '5', NO_COLOR: '1', LANG: 'C' };
    const r = await runPty(ask('demo loop'), { env });
    assert.equal(r.code, 3, r.output);
    assert.doesNotMatch(r.output, /\x1b\[[0-9;]*m/, 'NO_COLOR: no colour sequences');
    assert.match(r.output, /\r[|/\\-] [^\r\n]*steps \d+\/10 \| tools \d+\/15 \| tokens \d+\/50000\x1b\[K/);
    const lines = screen(r.output);
    assert.ok(lines.includes('! guardrail loop warn: calc was called 3 times with {"expression":"2+2"}'), lines.join('\n'));
    assert.ok(lines.includes('! guardrail loop stop: calc was called 4 times with {"expression":"2+2"}'), lines.join('\n'));
    assert.ok(lines.includes('# loop_detected: calc was called 4 times with {"expression":"2+2"}'), lines.join('\n'));
    assert.equal(lines.filter((l) => /^\+ calc ok \d+ ms {2}\{"expression":"2\+2"\}$/.test(l)).length, 4);
  });

  test('a budget stop suggests the next larger mode', async () => {
    await mock.script([{ tool_calls: [calc('1+1')] }, { tool_calls: [calc('2+2')] }, { text: 'Done.' }]);
    const env = { ...ws.env, CHATPLANE_LLM_URL: mock.url, NO_COLOR: '1', LANG: 'C.UTF-8' };
    const r = await runPty(ask('--mode', 'quick', 'keep going'), { env });
    assert.equal(r.code, 3, r.output);
    const lines = screen(r.output);
    assert.ok(lines.includes('■ max_steps: used 3 of 3 steps (wrapped up)'), lines.join('\n'));
    assert.ok(lines.some((l) => /^ {2}chatplane ask --session ses_\w+ --mode standard MESSAGE$/.test(l)), lines.join('\n'));
  });

  test('with stdout in a file, the terminal shows the status and the file holds the answer alone', async () => {
    await mock.script([{ text: 'Only this.' }]);
    const file = path.join(ws.dir, 'answer.txt');
    const env = { ...ws.env, CHATPLANE_LLM_URL: mock.url, LANG: 'C.UTF-8' };
    const r = await runPty(`${ask('hi')} > ${shq(file)}`, { env });
    assert.equal(r.code, 0, r.output);
    assert.equal(readFileSync(file, 'utf8'), 'Only this.\n');
    assert.match(r.output, STATUS);
    assert.doesNotMatch(r.output, /Only this/);
  });

  test('model text cannot drive the terminal: controls in the answer are replaced', async () => {
    await mock.script([{ text: 'red\u001b[31m bell\u0007 ok\r\nnext' }]);
    const env = { ...ws.env, CHATPLANE_LLM_URL: mock.url, LANG: 'C.UTF-8', NO_COLOR: '1' };
    const r = await runPty(ask('hi'), { env });
    assert.equal(r.code, 0, r.output);
    const lines = screen(r.output); // throws on any control sequence it does not know
    assert.ok(lines.includes('red\uFFFD[31m bell\uFFFD ok'), lines.join('\n'));
    assert.ok(lines.includes('next'), lines.join('\n'));
  });
});
