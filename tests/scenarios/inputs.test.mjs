// Questions in `chatplane ask` (docs/cli.md, Questions) with the mock model
// calling trigger-elicitation-request of the real
// @modelcontextprotocol/server-everything: without a terminal, and with
// --approve none, nobody can answer, so the question is declined at once
// and the tool says so; the run goes on to its answer.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';

import { ask, ofType, startMock, stopped, workspace } from './lib.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
const everything = path.join(root, 'node_modules', '.bin', 'mcp-server-everything');
const TOOL = 'everything__trigger-elicitation-request';

let mock;
before(async () => {
  assert.ok(existsSync(everything), 'npm ci installs @modelcontextprotocol/server-everything');
  mock = await startMock();
});
after(() => mock.stop());
beforeEach(async () => {
  await mock.reset();
  await mock.script([{ tool_calls: [{ name: TOOL, arguments: {}, id: 'call_q' }] }, { text: 'Noted.' }]);
});

async function askWith(args) {
  const ws = workspace();
  try {
    const file = path.join(ws.dir, 'config.json');
    writeFileSync(file, JSON.stringify({
      mcpServers: { everything: { command: everything, args: ['stdio'] } },
      approvals: { rules: [{ tool: '*', action: 'allow' }] },
    }));
    return await ask(args, { env: { ...ws.env, CHATPLANE_CONFIG: file, CHATPLANE_LLM_URL: mock.url, CHATPLANE_LLM_MODEL: 'mock-1' } });
  } finally {
    ws.cleanup();
  }
}

function assertDeclined(r) {
  assert.equal(r.code, 0, r.stderr);
  const [req] = ofType(r.events, 'input_requested');
  assert.equal(req.server, 'everything');
  assert.equal(req.message, 'Please provide inputs for the following fields:');
  const [ans] = ofType(r.events, 'input_answered');
  assert.deepEqual([ans.input_id, ans.action, ans.answered_by, 'content' in ans], [req.input_id, 'decline', 'local', false]);
  const [fin] = ofType(r.events, 'tool_finished');
  assert.equal(fin.status, 'ok');
  assert.match(fin.result, /User declined to provide the requested information/);
  assert.equal(stopped(r.events).reason, 'completed');
  const types = r.events.map((e) => (e.type === 'status' ? `status:${e.status}` : e.type));
  const i = types.indexOf('input_requested');
  assert.deepEqual(types.slice(i, i + 4), ['input_requested', 'status:waiting_for_input', 'input_answered', 'status:tool_running']);
}

describe('questions in ask', () => {
  test('without a terminal the question is declined and the run goes on', async () => {
    assertDeclined(await askWith(['ask me']));
  });

  test('--approve none declines it too', async () => {
    assertDeclined(await askWith(['--approve', 'none', 'ask me']));
  });
});
