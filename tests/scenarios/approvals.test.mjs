// `chatplane ask` and approvals (docs/cli.md, ask): --approve all and none
// decide every request, and without a terminal and without the flag a
// request is denied so a script never waits. The mock model asks for calc,
// which a config rule makes an asked call.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { ask, ofType, startMock, stopped, workspace } from './lib.mjs';

let mock;

before(async () => {
  mock = await startMock();
});
after(() => mock.stop());
beforeEach(async () => {
  await mock.reset();
});

const config = { approvals: { rules: [{ tool: 'calc', action: 'ask' }] } };

async function run(args) {
  await mock.script([
    { tool_calls: [{ name: 'calc', arguments: { expression: '6*7' } }] },
    { text: 'Answered.' },
  ]);
  const ws = workspace(config);
  try {
    const env = { ...ws.env, CHATPLANE_LLM_URL: mock.url, CHATPLANE_LLM_MODEL: 'mock-1' };
    return await ask([...args, 'what is 6*7?'], { env });
  } finally {
    ws.cleanup();
  }
}

// The tool message of the model's second request.
async function toolMessage() {
  const reqs = await mock.requests();
  assert.equal(reqs.length, 2);
  return reqs[1].body.messages.find((m) => m.role === 'tool').content;
}

describe('ask and approvals', () => {
  test('--approve all approves the call, decided by local', async () => {
    const r = await run(['--approve', 'all']);
    assert.equal(r.code, 0, r.stderr);
    const [requested] = ofType(r.events, 'approval_requested');
    assert.equal(requested.tool, 'calc');
    assert.equal(requested.reason, 'rule calc');
    const [decided] = ofType(r.events, 'approval_decided');
    assert.deepEqual([decided.approval_id, decided.decision, decided.decided_by, decided.reason, decided.remember],
      [requested.approval_id, 'approved', 'local', null, 'once']);
    const [fin] = ofType(r.events, 'tool_finished');
    assert.deepEqual([fin.status, fin.result], ['ok', '42']);
    assert.equal(await toolMessage(), '42');
    assert.equal(stopped(r.events).reason, 'completed');
  });

  test('--approve none denies it', async () => {
    const r = await run(['--approve', 'none']);
    assert.equal(r.code, 0, r.stderr);
    const [decided] = ofType(r.events, 'approval_decided');
    assert.deepEqual([decided.decision, decided.decided_by, decided.reason], ['denied', 'local', 'ask --approve none']);
    const [fin] = ofType(r.events, 'tool_finished');
    assert.deepEqual([fin.status, fin.error], ['denied', 'denied by local: ask --approve none']);
    assert.equal(await toolMessage(),
      'The user denied this call: ask --approve none. Do not retry it; answer without it or ask the user.');
  });

  test('without a terminal and without --approve the request is denied at once', async () => {
    const r = await run([]);
    assert.equal(r.code, 0, r.stderr);
    const [decided] = ofType(r.events, 'approval_decided');
    assert.deepEqual([decided.decision, decided.decided_by, decided.reason],
      ['denied', 'local', 'no one to approve in a non-interactive ask']);
    const [fin] = ofType(r.events, 'tool_finished');
    assert.equal(fin.error, 'denied by local: no one to approve in a non-interactive ask');
  });

  test('--approve takes all or none only', async () => {
    const ws = workspace(config);
    try {
      const r = await ask(['--approve', 'some', 'hi'], { env: ws.env });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--approve: 'some' is not all or none/);
    } finally {
      ws.cleanup();
    }
  });
});
