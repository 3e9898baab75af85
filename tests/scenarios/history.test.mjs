// The model context a run starts from, in a session with earlier runs
// (docs/runs.md, Model context): a short session sends its whole history,
// tool calls and results included; a long one is trimmed to
// llm.context_tokens exactly as trimming the whole history would, although
// the run reads only the newest messages.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { ask, startMock, stopped, workspace } from './lib.mjs';

let mock;

before(async () => {
  mock = await startMock();
});
after(() => mock.stop());
beforeEach(async () => {
  await mock.reset();
});

// Runs `ask` in the workspace, in session sid when given; resolves to the
// session id.
async function turn(ws, message, sid) {
  const env = { ...ws.env, CHATPLANE_LLM_URL: mock.url, CHATPLANE_LLM_MODEL: 'mock-1' };
  const r = await ask([...(sid ? ['--session', sid] : []), message], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(stopped(r.events).reason, 'completed');
  return r.events[0].session_id;
}

// The token estimate of a value, as the engine makes it: its compact JSON's
// bytes / 4, rounded up (the texts here are ASCII, where JSON.stringify
// writes what jansson does).
const est = (v) => Math.ceil(Buffer.byteLength(JSON.stringify(v)) / 4);

describe('history', () => {
  test('a short session sends its whole history, tool calls and results included', async () => {
    const ws = workspace();
    try {
      await mock.script([
        { tool_calls: [{ name: 'calc', arguments: { expression: '6*7' }, id: 'call_h1' }] },
        { text: '6*7 is 42.' },
        { text: 'Second answer.' },
        { text: 'Third answer.' },
      ]);
      const sid = await turn(ws, 'what is 6*7?');
      await turn(ws, 'second question', sid);
      await turn(ws, 'third question', sid);
      const reqs = await mock.requests();
      assert.equal(reqs.length, 4);
      const convo = reqs[3].body.messages.filter((m) => m.role !== 'system');
      assert.deepEqual(convo, [
        { role: 'user', content: 'what is 6*7?' },
        {
          role: 'assistant', content: null,
          tool_calls: [{ id: 'call_h1', type: 'function', function: { name: 'calc', arguments: '{"expression":"6*7"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_h1', content: '42' },
        { role: 'assistant', content: '6*7 is 42.' },
        { role: 'user', content: 'second question' },
        { role: 'assistant', content: 'Second answer.' },
        { role: 'user', content: 'third question' },
      ]);
    } finally {
      ws.cleanup();
    }
  });

  test('a long session is trimmed to llm.context_tokens as the whole history would be', async () => {
    const ctx = 1500;
    const ws = workspace({ llm: { context_tokens: ctx } });
    try {
      // 16 turns of 300 bytes each way, about 83 tokens a message: the
      // last run reads the newest 20 of its 31 messages (their estimate
      // covers the 1,500 tokens and its own message's 82), and trimming
      // keeps fewer than that.
      const pad = (s) => (s + ' ' + 'lorem ipsum dolor sit amet '.repeat(12)).slice(0, 300);
      const history = [];
      let sid;
      for (let i = 0; i < 16; i++) {
        const q = pad(`question ${i}`), a = pad(`answer ${i}`);
        await mock.script([{ text: a }]);
        sid = await turn(ws, q, sid);
        history.push({ role: 'user', content: q }, { role: 'assistant', content: a });
      }
      // The last request is the last run's, before its answer.
      history.pop();
      const reqs = await mock.requests();
      const last = reqs.at(-1).body;
      const system = last.messages.filter((m) => m.role === 'system');
      const sent = last.messages.filter((m) => m.role !== 'system');
      // Trimming the whole history: drop the oldest messages while the
      // estimate is over the limit, never the run's own message.
      const fixed = (last.tools ? est(last.tools) : 0) + est(system) + est([]);
      let total = fixed + history.reduce((n, m) => n + est(m), 0);
      let start = 0;
      while (total > ctx && start < history.length - 1) total -= est(history[start++]);
      assert.ok(start > 0 && start < history.length - 2, `kept from ${start}`);
      assert.deepEqual(sent, history.slice(start));
    } finally {
      ws.cleanup();
    }
  });
});
