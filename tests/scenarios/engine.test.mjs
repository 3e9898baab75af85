// Engine scenarios: the real binary (`chatplane ask --json`) against the
// project's mock model server, asserting the event sequence, the stop
// reason and what was sent to the model.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { ask, ofType, startMock, stopped, types, workspace } from './lib.mjs';
import { api, newSession, startServer, until, waitIdle } from '../integration/lib/server.mjs';

let mock;
let ws;

before(async () => {
  mock = await startMock();
});
after(() => mock.stop());
beforeEach(async () => {
  await mock.reset();
});

// Runs one turn against the mock with an optional config; cleans up after.
async function run(message, { config, args = [], signalAfter } = {}) {
  ws = workspace(config);
  try {
    const env = { ...ws.env, CHATPLANE_LLM_URL: mock.url, CHATPLANE_LLM_MODEL: 'mock-1' };
    return await ask([...args, message], { env, signalAfter });
  } finally {
    ws.cleanup();
  }
}

// The event types with runs of token events folded into one "token*".
function shape(events) {
  const out = [];
  for (const t of types(events)) {
    if (t === 'token' && out[out.length - 1] === 'token*') continue;
    out.push(t === 'token' ? 'token*' : t);
  }
  return out;
}

const calc = (expression, id) => ({ name: 'calc', arguments: { expression }, ...(id ? { id } : {}) });

describe('model turns', () => {
  test('a plain answer streams and completes', async () => {
    await mock.script([{ text: 'Hello there, person.', usage: { prompt_tokens: 30, completion_tokens: 5, total_tokens: 35 } }]);
    const r = await run('hi');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(shape(r.events), [
      'message', 'run_started', 'status', 'status', 'token*', 'message', 'budget', 'run_stopped',
    ]);
    const [user, , thinking, responding] = r.events;
    assert.deepEqual([user.role, user.content], ['user', 'hi']);
    assert.equal(thinking.status, 'thinking');
    assert.equal(responding.status, 'responding');
    const tokens = ofType(r.events, 'token');
    assert.ok(tokens.length >= 4, 'text arrives in pieces');
    const answer = ofType(r.events, 'message')[1];
    assert.equal(answer.role, 'assistant');
    assert.equal(answer.content, 'Hello there, person.');
    assert.equal(tokens.map((t) => t.text).join(''), answer.content);
    assert.ok(tokens.every((t) => t.message_id === answer.message_id));
    const s = stopped(r.events);
    assert.equal(s.reason, 'completed');
    assert.equal(s.wrapped_up, false);
    assert.deepEqual(s.actions, []);
    assert.equal(s.usage.tokens, 35);
    assert.equal(s.usage.steps, 1);
    // seq rises by exactly one from 1.
    r.events.forEach((e, i) => assert.equal(e.seq, i + 1));

    const [req] = await mock.requests();
    assert.equal(req.body.model, 'mock-1');
    assert.equal(req.body.stream, true);
    assert.deepEqual(req.body.stream_options, { include_usage: true });
    assert.deepEqual(req.body.tools.map((t) => t.function.name).sort(), ['calc', 'clock']);
    assert.equal(req.body.messages[0].role, 'system');
    assert.match(req.body.messages[1].content, /^Budget: step 1 of 10, 1[12]\d s, 15 tool calls left\.$/);
    assert.deepEqual(req.body.messages.at(-1), { role: 'user', content: 'hi' });
    assert.ok(req.body.max_completion_tokens > 40000 && req.body.max_completion_tokens < 50000);
  });

  test('a tool turn runs calc and feeds the result back', async () => {
    await mock.script([
      { tool_calls: [calc('6*7', 'call_a')], split_tool_args: 3 },
      { text: '6*7 is 42.' },
    ]);
    const r = await run('what is 6*7?');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(shape(r.events), [
      'message', 'run_started', 'status', 'message', 'budget',
      'tool_started', 'status', 'tool_finished', 'message', 'budget',
      'status', 'status', 'token*', 'message', 'budget', 'run_stopped',
    ]);
    const started = ofType(r.events, 'tool_started')[0];
    assert.deepEqual([started.server, started.tool, started.step], ['builtin', 'calc', 1]);
    assert.deepEqual(started.arguments, { expression: '6*7' });
    const finished = ofType(r.events, 'tool_finished')[0];
    assert.equal(finished.execution_id, started.execution_id);
    assert.deepEqual([finished.status, finished.result, finished.error, finished.truncated], ['ok', '42', null, false]);
    const toolMsg = ofType(r.events, 'message')[2];
    assert.deepEqual([toolMsg.role, toolMsg.tool_call_id, toolMsg.content], ['tool', 'call_a', '42']);
    const assistant = ofType(r.events, 'message')[1];
    assert.equal(assistant.tool_calls[0].function.name, 'calc');
    assert.equal(assistant.tool_calls[0].function.arguments, '{"expression":"6*7"}');
    assert.deepEqual(ofType(r.events, 'status').map((x) => [x.status, x.detail]), [
      ['thinking', null], ['tool_running', 'running calc'], ['thinking', null], ['responding', null],
    ]);

    const reqs = await mock.requests();
    assert.equal(reqs.length, 2);
    const second = reqs[1].body.messages;
    assert.deepEqual(second.at(-1), { role: 'tool', tool_call_id: 'call_a', content: '42' });
    assert.match(second[1].content, /^Budget: step 2 of 10, .* 14 tool calls left\.$/);
    assert.equal(stopped(r.events).usage.tool_calls, 1);
  });

  test('parallel calls run in order and each gets its result', async () => {
    await mock.script([
      { tool_calls: [calc('1+1', 'c1'), calc('2+3', 'c2')], split_tool_args: 2, interleave: true },
      { text: 'Two and five.' },
    ]);
    const r = await run('add things');
    assert.equal(r.code, 0, r.stderr);
    const fin = ofType(r.events, 'tool_finished');
    assert.deepEqual(fin.map((f) => f.result), ['2', '5']);
    const reqs = await mock.requests();
    const tools = reqs[1].body.messages.filter((m) => m.role === 'tool');
    assert.deepEqual(tools, [
      { role: 'tool', tool_call_id: 'c1', content: '2' },
      { role: 'tool', tool_call_id: 'c2', content: '5' },
    ]);
  });

  test('quirks: whole calls in one chunk, missing ids, finish_reason stop with tool calls', async () => {
    await mock.script([
      { tool_calls: [calc('3*3')], whole_tool_calls: true, omit_ids: true, finish_reason: 'stop' },
      { text: 'Nine.' },
    ]);
    const r = await run('square three');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ofType(r.events, 'tool_finished')[0].result, '9');
    const id = ofType(r.events, 'message')[1].tool_calls[0].id;
    assert.ok(id.length > 0, 'an id is made up when the model sent none');
    assert.equal(ofType(r.events, 'message')[2].tool_call_id, id);
  });
});

describe('guardrails', () => {
  test('the 3rd identical call warns and nudges, the 4th stops loop_detected', async () => {
    await mock.script(Array.from({ length: 5 }, () => ({ tool_calls: [calc('2+2')] })));
    const r = await run('loop please');
    assert.equal(r.code, 3, r.stderr);
    const g = ofType(r.events, 'guardrail');
    assert.deepEqual(g.map((x) => [x.check, x.action]), [['loop', 'warn'], ['loop', 'stop']]);
    assert.deepEqual(g[0].evidence, { tool: 'calc', arguments: { expression: '2+2' }, count: 3, result: '4' });
    const s = stopped(r.events);
    assert.equal(s.reason, 'loop_detected');
    assert.equal(s.detail, 'calc was called 4 times with {"expression":"2+2"}');
    assert.deepEqual(s.actions.map((a) => a.kind), ['rephrase', 'continue']);
    const reqs = await mock.requests();
    assert.equal(reqs.length, 4);
    const nudge = reqs[3].body.messages.at(-1);
    assert.equal(nudge.role, 'system');
    assert.match(nudge.content, /^You have called calc with the same arguments 3 times/);
    // A nudge is said once.
    assert.ok(!reqs[2].body.messages.some((m) => /same arguments/.test(m.content ?? '')));
  });

  test('consecutive failures warn at 2 and stop repeated_failures at 3', async () => {
    await mock.script(Array.from({ length: 4 }, (_, i) => ({ tool_calls: [calc(`${i}/0`)] })));
    const r = await run('divide');
    assert.equal(r.code, 3, r.stderr);
    const fin = ofType(r.events, 'tool_finished');
    assert.deepEqual(fin.map((f) => [f.status, f.error]), Array(3).fill(['error', 'division by zero']));
    const g = ofType(r.events, 'guardrail');
    assert.deepEqual(g.map((x) => [x.check, x.action]), [['repeated_failure', 'warn'], ['repeated_failure', 'stop']]);
    assert.equal(stopped(r.events).reason, 'repeated_failures');
  });

  test('an empty turn nudges, a second empty turn stops no_progress', async () => {
    await mock.script([{ text: '' }, { text: '' }]);
    const r = await run('say nothing');
    assert.equal(r.code, 3, r.stderr);
    const g = ofType(r.events, 'guardrail');
    assert.deepEqual(g.map((x) => [x.check, x.action]), [['no_progress', 'warn'], ['no_progress', 'stop']]);
    assert.equal(stopped(r.events).reason, 'no_progress');
    const reqs = await mock.requests();
    assert.match(reqs[1].body.messages.at(-1).content, /empty/);
  });

  test('four steps of only already-seen results stop no_progress', async () => {
    const exprs = ['1+1', '2*1', '4/2', '1*2', '3-1', '6/3'];
    await mock.script(exprs.map((e) => ({ tool_calls: [calc(e)] })));
    const r = await run('twos');
    assert.equal(r.code, 3, r.stderr);
    const s = stopped(r.events);
    assert.equal(s.reason, 'no_progress');
    assert.equal(s.detail, '4 steps in a row produced only results already seen in this run');
    assert.equal(ofType(r.events, 'tool_finished').length, 5);
  });
});

describe('budgets', () => {
  test('the last step of max_steps is a wrap-up without tools', async () => {
    await mock.script([
      { tool_calls: [calc('1+1')] },
      { tool_calls: [calc('2+2')] },
      { text: 'Here is what I have: 2 and 4.' },
    ]);
    const r = await run('keep going', { args: ['--mode', 'quick'] });
    assert.equal(r.code, 3, r.stderr);
    const s = stopped(r.events);
    assert.deepEqual([s.reason, s.wrapped_up, s.detail], ['max_steps', true, 'used 3 of 3 steps']);
    assert.deepEqual(s.actions.map((a) => [a.kind, a.mode]), [['continue', undefined], ['switch_mode', 'standard']]);
    const reqs = await mock.requests();
    assert.equal(reqs.length, 3);
    assert.ok(reqs[1].body.tools);
    assert.equal(reqs[2].body.tools, undefined, 'no tools on the wrap-up step');
    assert.match(reqs[2].body.messages.at(-1).content, /budget for this run is nearly spent/);
  });

  test('more calls than the tool budget: the rest are skipped and the next step wraps up', async () => {
    await mock.script([
      { tool_calls: ['1+1', '2+2', '3+3', '4+4', '5+5'].map((e, i) => calc(e, `k${i}`)) },
      { text: 'Done with what fit.' },
    ]);
    const r = await run('many', { args: ['--mode', 'quick'] });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(ofType(r.events, 'tool_finished').length, 3);
    const toolMsgs = ofType(r.events, 'message').filter((m) => m.role === 'tool');
    assert.deepEqual(toolMsgs.map((m) => m.content), ['2', '4', '6', 'skipped: tool-call budget exhausted', 'skipped: tool-call budget exhausted']);
    const s = stopped(r.events);
    assert.deepEqual([s.reason, s.wrapped_up, s.usage.tool_calls], ['max_tool_calls', true, 3]);
    const reqs = await mock.requests();
    assert.equal(reqs[1].body.tools, undefined);
  });

  test('more than 128 calls in one turn: 128 are kept, the budget runs 3 and skips the rest', async () => {
    const many = Array.from({ length: 131 }, (_, i) => calc(`${i}+1`, `m${i}`));
    await mock.script([{ tool_calls: many }, { text: 'Done with what fit.' }]);
    const r = await run('many', { args: ['--mode', 'quick'] });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(ofType(r.events, 'error').length, 0, 'the turn did not fail');
    const assistant = ofType(r.events, 'message').find((m) => m.role === 'assistant');
    assert.equal(assistant.tool_calls.length, 128);
    assert.equal(assistant.tool_calls[127].id, 'm127');
    const toolMsgs = ofType(r.events, 'message').filter((m) => m.role === 'tool');
    assert.equal(toolMsgs.length, 128);
    assert.deepEqual(toolMsgs.slice(0, 3).map((m) => m.content), ['1', '2', '3']);
    assert.ok(toolMsgs.slice(3).every((m) => m.content === 'skipped: tool-call budget exhausted'));
    assert.deepEqual(toolMsgs.map((m) => m.tool_call_id), assistant.tool_calls.map((c) => c.id));
    const s = stopped(r.events);
    assert.deepEqual([s.reason, s.wrapped_up, s.usage.tool_calls], ['max_tool_calls', true, 3]);
    // The model is told about every call it is shown to have made, no more.
    const reqs = await mock.requests();
    assert.equal(reqs.length, 2);
    assert.equal(reqs[1].body.messages.filter((m) => m.role === 'tool').length, 128);
  });

  test('tokens: a step that would not fit wraps up, and the request caps completion', async () => {
    await mock.script([
      { tool_calls: [calc('1+1')], usage: { prompt_tokens: 2900, completion_tokens: 100, total_tokens: 3000 } },
      { text: 'Short.', usage: { prompt_tokens: 300, completion_tokens: 3, total_tokens: 303 } },
    ]);
    const r = await run('tokens', { config: { modes: { quick: { tokens: 4000 } } }, args: ['--mode', 'quick'] });
    assert.equal(r.code, 3, r.stderr);
    const s = stopped(r.events);
    assert.deepEqual([s.reason, s.wrapped_up, s.usage.tokens], ['max_tokens', true, 3303]);
    const reqs = await mock.requests();
    assert.equal(reqs[1].body.tools, undefined);
    // The tokens left (1000) minus the prompt estimate.
    const cap = reqs[1].body.max_completion_tokens;
    assert.ok(cap > 0 && cap < 1000, `max_completion_tokens ${cap}`);
  });

  test('a 80 % crossing is listed in the budget warnings', async () => {
    await mock.script([
      { tool_calls: [calc('1+1')], usage: { prompt_tokens: 3300, completion_tokens: 10, total_tokens: 3310 } },
      { text: 'ok' },
    ]);
    const r = await run('warn', { config: { modes: { quick: { tokens: 4000 } } }, args: ['--mode', 'quick'] });
    const b = ofType(r.events, 'budget');
    assert.deepEqual(b[0].warnings, ['tokens']);
    assert.equal(b[0].limits.tokens, 4000);
  });

  test('seconds: the hard deadline aborts a stalled model call within a second', async () => {
    await mock.script([{ text: 'never arrives', first_delay_ms: 20000 }]);
    const t0 = Date.now();
    const r = await run('slow', { config: { modes: { quick: { seconds: 2 } } }, args: ['--mode', 'quick'] });
    const elapsed = Date.now() - t0;
    assert.equal(r.code, 3, r.stderr);
    const s = stopped(r.events);
    assert.equal(s.reason, 'max_seconds');
    assert.match(s.detail, /^used 2\.\d of 2 seconds$/);
    assert.ok(elapsed < 6000, `stopped after ${elapsed} ms`);
  });
});

describe('model endpoint faults', () => {
  test('a 503 is retried as the same step and the failed text is discarded', async () => {
    await mock.script([
      { text: 'partial words that will be lost', cut_after: 3 },
      { status: 503 },
      { text: 'Fine now.' },
    ]);
    const r = await run('retry me');
    assert.equal(r.code, 0, r.stderr);
    const errors = ofType(r.events, 'error');
    assert.equal(errors.length, 2);
    assert.ok(errors.every((e) => e.retryable === true));
    const firstTokens = ofType(r.events, 'token').filter((t) => t.message_id === errors[0].message_id);
    assert.ok(firstTokens.length > 0, 'the cut attempt streamed some text');
    const answer = ofType(r.events, 'message').find((m) => m.role === 'assistant');
    assert.equal(answer.content, 'Fine now.');
    assert.notEqual(answer.message_id, errors[0].message_id);
    const retrying = ofType(r.events, 'status').filter((s) => s.status === 'retrying');
    assert.match(retrying[0].detail, /^attempt 2 of 4, waiting \d+\.\d s$/);
    const s = stopped(r.events);
    assert.deepEqual([s.usage.steps, s.usage.retries], [1, 2]);
  });

  test('Retry-After is honoured', async () => {
    await mock.script([{ status: 429, headers: { 'retry-after-ms': '700' }, body: { error: { message: 'slow down', type: 'rate', code: 'rate_limit_exceeded' } } }, { text: 'ok' }]);
    const r = await run('rate');
    assert.equal(r.code, 0, r.stderr);
    const retrying = ofType(r.events, 'status').find((s) => s.status === 'retrying');
    assert.match(retrying.detail, /waiting 0\.7 s$/);
  });

  test('retries run out: max_retries, an error (exit 1)', async () => {
    await mock.script([{ status: 503 }, { status: 502 }, { status: 500 }]);
    const r = await run('down', { args: ['--mode', 'quick'] });
    assert.equal(r.code, 1, r.stderr);
    const s = stopped(r.events);
    assert.equal(s.reason, 'max_retries');
    assert.deepEqual(s.actions.map((a) => a.kind), ['retry']);
    assert.equal(s.usage.retries, 1);
  });

  test('a stream that ends without [DONE] after its finish reason completes, no retry', async () => {
    await mock.script([{ text: 'All there.', no_done: true }, { text: 'never asked for' }]);
    const r = await run('no done');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ofType(r.events, 'error').length, 0);
    assert.equal(stopped(r.events).usage.retries, 0);
    assert.equal(ofType(r.events, 'message')[1].content, 'All there.');
    assert.equal((await mock.requests()).length, 1);
  });

  test('a NUL byte in a chunk ends the run llm_error at once, no retry', async () => {
    await mock.script([
      { chunks: [{ content: 'ok' }, '{"choices":[{"index":0,"delta":{"content":"a\u0000b"}}]}'] },
      { text: 'never asked for' },
    ]);
    const r = await run('nul');
    assert.equal(r.code, 1, r.stderr);
    const s = stopped(r.events);
    assert.equal(s.reason, 'llm_error');
    assert.equal(s.detail, 'the model stream sent a chunk with a NUL byte (at byte 44)');
    const errors = ofType(r.events, 'error');
    assert.deepEqual(errors.map((e) => [e.code, e.retryable]), [['llm_error', false]]);
    assert.equal((await mock.requests()).length, 1);
  });

  test('a 401 that echoes the key in part shows no 8 characters of it anywhere', async () => {
    const key = 'sk-live-S3CR3Tk3y0123456789abcdWXYZ';
    // 31 of the 35 characters, placed where the 1,000-byte limit cuts them.
    const message = `${'x'.repeat(950)} Incorrect API key provided: ${key.slice(0, 31)}`;
    await mock.script([{ status: 401, body: { error: { message, type: 'invalid_request_error', code: 'invalid_api_key' } } }]);
    ws = workspace();
    let r;
    try {
      const env = { ...ws.env, CHATPLANE_LLM_URL: mock.url, CHATPLANE_LLM_MODEL: 'mock-1', CHATPLANE_LLM_API_KEY: key };
      r = await ask(['auth'], { env });
    } finally {
      ws.cleanup();
    }
    assert.equal(r.code, 1);
    const s = stopped(r.events);
    assert.equal(s.reason, 'llm_error');
    assert.match(s.detail, /: x{950} Incorrect API key provided: \[redacted\]$/);
    const all = JSON.stringify(r.events) + r.stderr;
    for (let i = 0; i + 8 <= key.length; i++) {
      assert.ok(!all.includes(key.slice(i, i + 8)), `no fragment ${key.slice(i, i + 8)}`);
    }
    // The key itself still went to the model endpoint.
    const [req] = await mock.requests();
    assert.equal(req.headers.authorization, `Bearer ${key}`);
  });

  test('an error inside the stream is retried', async () => {
    await mock.script([{ text: 'abc', error_in_stream: { message: 'overloaded', type: 'server_error' } }, { text: 'Recovered.' }]);
    const r = await run('stream error');
    assert.equal(r.code, 0, r.stderr);
    assert.match(ofType(r.events, 'error')[0].message, /overloaded/);
  });

  test('a 401 stops the run with llm_error naming the status and message', async () => {
    await mock.script([{ status: 401, body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } } }]);
    const r = await run('auth');
    assert.equal(r.code, 1);
    const s = stopped(r.events);
    assert.equal(s.reason, 'llm_error');
    assert.match(s.detail, /HTTP 401 from http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions: Incorrect API key provided/);
    assert.equal(ofType(r.events, 'error')[0].retryable, false);
  });

  test('a 429 insufficient_quota is not retried', async () => {
    await mock.script([{ status: 429, body: { error: { message: 'You exceeded your quota', type: 'insufficient_quota', code: 'insufficient_quota' } } }]);
    const r = await run('quota');
    assert.equal(stopped(r.events).reason, 'llm_error');
    assert.equal((await mock.requests()).length, 1);
  });
});

describe('stopping', () => {
  test('Ctrl-C during text keeps the partial answer and exits 4', async () => {
    await mock.script([{ text: 'one two three four five six seven eight nine ten eleven twelve', delay_ms: 150 }]);
    const r = await run('talk slowly', { signalAfter: (ev, all) => ofType(all, 'token').length >= 3 });
    assert.equal(r.code, 4, r.stderr);
    const s = stopped(r.events);
    assert.equal(s.reason, 'user_stopped');
    assert.deepEqual(s.actions.map((a) => a.kind), ['continue']);
    const partial = ofType(r.events, 'message').find((m) => m.role === 'assistant');
    assert.equal(partial.partial, true);
    assert.equal(partial.content, ofType(r.events, 'token').map((t) => t.text).join(''));
    assert.ok(ofType(r.events, 'status').some((x) => x.status === 'stopping'));
  });
});

describe('the demo brain', () => {
  async function demo(message, args = []) {
    ws = workspace();
    try {
      return await ask([...args, message], { env: { ...ws.env, CHATPLANE_DEMO_DELAY_MS: '0' } });
    } finally {
      ws.cleanup();
    }
  }

  test('what is 6*7? calls calc and answers 42', async () => {
    const r = await demo('what is 6*7?');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ofType(r.events, 'tool_finished')[0].result, '42');
    const answer = ofType(r.events, 'message').filter((m) => m.role === 'assistant').at(-1);
    assert.match(answer.content, /42/);
  });

  test('demo loop ends loop_detected', async () => {
    const r = await demo('demo loop');
    assert.equal(stopped(r.events).reason, 'loop_detected');
  });

  test('demo fail ends repeated_failures', async () => {
    const r = await demo('demo fail');
    assert.equal(stopped(r.events).reason, 'repeated_failures');
  });

  test('demo long wraps up at the step budget', async () => {
    const r = await demo('demo long');
    const s = stopped(r.events);
    assert.deepEqual([s.reason, s.wrapped_up], ['max_steps', true]);
  });

  test('anything else explains the demo brain', async () => {
    const r = await demo('hello');
    assert.equal(r.code, 0);
    const answer = ofType(r.events, 'message').find((m) => m.role === 'assistant');
    assert.match(answer.content, /demo/i);
  });

  test('the time in a well-known city asks the clock in that city\'s zone', async () => {
    for (const [message, zone] of [['what time is it in Tokyo?', 'Asia/Tokyo'], ['And the time in New York now?', 'America/New_York'], ['time in Europe/Paris', 'Europe/Paris']]) {
      const r = await demo(message);
      assert.equal(r.code, 0, r.stderr);
      const started = ofType(r.events, 'tool_started');
      assert.equal(started.length, 1, message);
      assert.equal(started[0].tool, 'clock');
      assert.deepEqual(started[0].arguments, { timezone: zone }, message);
      const finished = ofType(r.events, 'tool_finished')[0];
      assert.equal(finished.status, 'ok', finished.result);
      const answer = ofType(r.events, 'message').filter((m) => m.role === 'assistant').at(-1);
      assert.equal(answer.content, `It is ${finished.result}.`);
    }
    // Without a place or zone the clock is asked for UTC, as before.
    const r = await demo('what time is it?');
    assert.deepEqual(ofType(r.events, 'tool_started')[0].arguments, {});
  });

  test('a stopped answer, continued, resumes after the text already given', async () => {
    const srv = await startServer({ env: { CHATPLANE_DEMO_DELAY_MS: '40' } });
    try {
      const id = (await newSession(srv.url)).id;
      assert.equal((await api(srv.url, 'POST', `/api/sessions/${id}/runs`, { message: 'hello' })).status, 202);
      const events = async () => (await api(srv.url, 'GET', `/api/sessions/${id}/events`, undefined, { Accept: 'application/json' })).body.events;
      await until(async () => ofType(await events(), 'token').length >= 6);
      assert.equal((await api(srv.url, 'POST', `/api/sessions/${id}/stop`, {})).status, 202);
      await waitIdle(srv.url, id);
      let msgs = (await api(srv.url, 'GET', `/api/sessions/${id}/messages`)).body.messages;
      const partial = msgs.find((m) => m.role === 'assistant');
      assert.equal(partial.partial, true);
      assert.ok(partial.content.length > 0);

      assert.equal((await api(srv.url, 'POST', `/api/sessions/${id}/continue`, {})).status, 202);
      await until(async () => ofType(await events(), 'run_stopped').length === 2, 20000);
      msgs = (await api(srv.url, 'GET', `/api/sessions/${id}/messages`)).body.messages;
      const answers = msgs.filter((m) => m.role === 'assistant');
      assert.equal(answers.length, 2);
      const rest = answers[1].content;
      assert.equal(answers[1].partial, false);
      // The rest starts where the stopped text ended: together they are the
      // whole answer, which a run that was never stopped gives.
      const whole = ofType((await demo('hello')).events, 'message').find((m) => m.role === 'assistant').content;
      assert.equal(partial.content + rest, whole);
      assert.ok(!rest.startsWith(partial.content.slice(0, 20)), rest);
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });
});
