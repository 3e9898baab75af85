// AG-UI against the real server (docs/protocols.md, AG-UI), judged by the
// real client: @ag-ui/client's HttpAgent runs every case (its own checks of
// the event order must pass) and every event it receives must fit
// @ag-ui/core's schemas. The demo brain and the mock model produce the
// cases: a plain answer, a tool call, a budget stop, a guardrail stop, a
// user stop, a model error, and an approval interrupt resumed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { HttpAgent } from '@ag-ui/client';
import { EventSchemas } from '@ag-ui/core/schemas';

import { api, runBinary, startServer } from '../integration/lib/server.mjs';
import { startMock } from '../scenarios/lib.mjs';

let counter = 0;
const uid = (p) => `${p}-${process.pid}-${++counter}`;

// Runs one AG-UI run with HttpAgent and resolves to {events, result, agent,
// error}; every event is checked against the schemas on the way.
async function runAgent(url, { agent, message, params = {} } = {}) {
  const a = agent || new HttpAgent({ url: `${url}/api/ag-ui`, threadId: uid('thread') });
  if (message !== undefined) a.addMessage({ id: uid('msg'), role: 'user', content: message });
  const events = [];
  let error = null;
  let result = null;
  try {
    result = await a.runAgent({ runId: uid('run'), ...params }, {
      onEvent: ({ event }) => {
        const parsed = EventSchemas.safeParse(event);
        assert.ok(parsed.success, `${event.type} does not fit the schema: ${JSON.stringify(parsed.error?.issues)}`);
        events.push(event);
      },
    });
  } catch (e) {
    error = e;
  }
  return { events, result, agent: a, error };
}

const types = (events) => events.map((e) => e.type);
const customs = (events, name) => events.filter((e) => e.type === 'CUSTOM' && e.name === name).map((e) => e.value);
const last = (events) => events[events.length - 1];

describe('AG-UI with the demo brain', () => {
  let srv;
  before(async () => {
    srv = await startServer({
      config: {
        approvals: { rules: [{ tool: 'calc', action: 'allow' }] },
      },
    });
  });
  after(async () => {
    const st = await srv.stop();
    assert.equal(st.code, 0);
    srv.cleanup();
  });

  test('a plain answer: run started, a step, one text message, the stop, run finished with success', async () => {
    const { events, error, agent } = await runAgent(srv.url, { message: 'hello there' });
    assert.equal(error, null, error && error.stack);
    const t = types(events).filter((x) => x !== 'TEXT_MESSAGE_CONTENT' && x !== 'CUSTOM');
    assert.deepEqual(t, ['RUN_STARTED', 'STEP_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_END',
      'STEP_FINISHED', 'RUN_FINISHED']);
    assert.equal(events[0].threadId, agent.threadId);
    assert.deepEqual(last(events).outcome, { type: 'success' });
    const text = events.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => e.delta).join('');
    assert.match(text, /demo brain/);
    const stop = customs(events, 'chatplane.run_stopped');
    assert.equal(stop.length, 1);
    assert.equal(stop[0].reason, 'completed');
    assert.deepEqual(customs(events, 'chatplane.status').map((s) => s.status), ['thinking', 'responding']);
    assert.equal(customs(events, 'chatplane.budget').length, 1);
    // The agent assembled the assistant message from the events.
    const msgs = agent.messages.filter((m) => m.role === 'assistant');
    assert.equal(msgs.length, 1);
    assert.equal(msgs[0].content, text);
  });

  test('the same thread twice is one session; a second message runs in it with the history', async () => {
    const first = await runAgent(srv.url, { message: 'hello' });
    assert.equal(first.error, null);
    const second = await runAgent(srv.url, { agent: first.agent, message: 'what is 2+3?' });
    assert.equal(second.error, null, second.error && second.error.stack);
    const sid1 = customs(first.events, 'chatplane.run_stopped')[0].session_id;
    const sid2 = customs(second.events, 'chatplane.run_stopped')[0].session_id;
    assert.equal(sid1, sid2);
    const msgs = await api(srv.url, 'GET', `/api/sessions/${sid1}/messages`);
    assert.deepEqual(msgs.body.messages.filter((m) => m.role === 'user').map((m) => m.content), ['hello', 'what is 2+3?']);
  });

  test('a tool call: start, arguments, end, then its result, then the answer', async () => {
    const { events, error, agent } = await runAgent(srv.url, { message: 'what is 6*7?' });
    assert.equal(error, null, error && error.stack);
    const t = types(events).filter((x) => x !== 'TEXT_MESSAGE_CONTENT' && x !== 'CUSTOM');
    assert.deepEqual(t, ['RUN_STARTED', 'STEP_STARTED', 'TOOL_CALL_START', 'TOOL_CALL_ARGS', 'TOOL_CALL_END',
      'TOOL_CALL_RESULT', 'STEP_FINISHED', 'STEP_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_END',
      'STEP_FINISHED', 'RUN_FINISHED']);
    const start = events.find((e) => e.type === 'TOOL_CALL_START');
    assert.equal(start.toolCallName, 'calc');
    assert.equal(events.find((e) => e.type === 'TOOL_CALL_ARGS').delta, '{"expression":"6*7"}');
    const res = events.find((e) => e.type === 'TOOL_CALL_RESULT');
    assert.equal(res.toolCallId, start.toolCallId);
    assert.equal(res.content, '42');
    assert.equal(res.role, 'tool');
    const text = events.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => e.delta).join('');
    assert.equal(text, '6*7 = 42.');
    // The agent's own view: the call, its result, the answer.
    const roles = agent.messages.map((m) => m.role);
    assert.deepEqual(roles, ['user', 'assistant', 'tool', 'assistant']);
    assert.equal(agent.messages[1].toolCalls[0].function.name, 'calc');
  });

  test('a budget stop finishes with success and carries the stop as a custom event', async () => {
    const { events, error } = await runAgent(srv.url, { message: 'demo long', params: { forwardedProps: { mode: 'quick' } } });
    assert.equal(error, null, error && error.stack);
    const stop = customs(events, 'chatplane.run_stopped')[0];
    assert.equal(stop.reason, 'max_steps');
    assert.equal(last(events).type, 'RUN_FINISHED');
    assert.deepEqual(last(events).outcome, { type: 'success' });
    const started = customs(events, 'chatplane.status').filter((s) => s.status === 'thinking').length;
    assert.equal(events.filter((e) => e.type === 'STEP_STARTED').length, started);
    assert.equal(events.filter((e) => e.type === 'STEP_FINISHED').length, started);
    const run = await api(srv.url, 'GET', `/api/sessions/${stop.session_id}`);
    assert.equal(run.body.mode, 'quick');
  });

  test('a guardrail stop finishes with success after a guardrail custom event', async () => {
    const { events, error } = await runAgent(srv.url, { message: 'demo loop' });
    assert.equal(error, null, error && error.stack);
    const g = customs(events, 'chatplane.guardrail');
    assert.deepEqual(g.map((x) => [x.check, x.action]).at(-1), ['loop', 'stop']);
    assert.equal(customs(events, 'chatplane.run_stopped')[0].reason, 'loop_detected');
    assert.deepEqual(last(events).outcome, { type: 'success' });
  });

  test('a user stop (POST …/stop on the thread\'s session) finishes as cancelled', async () => {
    const agent = new HttpAgent({ url: `${srv.url}/api/ag-ui`, threadId: uid('thread') });
    let stopping = null;
    agent.subscribe({
      onCustomEvent: ({ event }) => {
        if (event.name === 'chatplane.status' && event.value.status === 'tool_running' && !stopping)
          stopping = api(srv.url, 'POST', `/api/sessions/${event.value.session_id}/stop`, {});
      },
    });
    const { events, error } = await runAgent(srv.url, { agent, message: 'demo sleep' });
    assert.equal(error, null, error && error.stack);
    assert.equal((await stopping).status, 202);
    assert.equal(customs(events, 'chatplane.run_stopped')[0].reason, 'user_stopped');
    assert.deepEqual(last(events).outcome, { type: 'cancelled' });
  });

  test('an approval ends the stream with an interrupt; resume approves it and streams the rest of the same run', async () => {
    const first = await runAgent(srv.url, { message: 'demo approve' });
    assert.equal(first.error, null, first.error && first.error.stack);
    const fin = last(first.events);
    assert.equal(fin.type, 'RUN_FINISHED');
    assert.equal(fin.outcome.type, 'interrupt');
    const [it] = fin.outcome.interrupts;
    const call = first.events.find((e) => e.type === 'TOOL_CALL_START');
    assert.equal(call.toolCallName, 'pretend_delete');
    assert.match(it.id, /^apr_/);
    assert.equal(it.reason, 'tool_approval');
    assert.equal(it.toolCallId, call.toolCallId);
    assert.equal(it.message, 'Allow the call of pretend_delete? (the tool is not marked read-only)');
    assert.deepEqual(it.responseSchema.required, ['approved']);
    assert.match(it.expiresAt, /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(it.metadata.arguments, { path: 'notes/old-draft.txt' });
    assert.deepEqual(first.agent.pendingInterrupts.map((x) => x.id), [it.id]);
    assert.equal(first.events.filter((e) => e.type === 'TOOL_CALL_RESULT').length, 0);

    const second = await runAgent(srv.url, {
      agent: first.agent,
      params: { resume: [{ interruptId: it.id, status: 'resolved', payload: { approved: true } }] },
    });
    assert.equal(second.error, null, second.error && second.error.stack);
    const t = types(second.events).filter((x) => x !== 'TEXT_MESSAGE_CONTENT' && x !== 'CUSTOM');
    assert.deepEqual(t, ['RUN_STARTED', 'TOOL_CALL_RESULT', 'STEP_STARTED', 'TEXT_MESSAGE_START',
      'TEXT_MESSAGE_END', 'STEP_FINISHED', 'RUN_FINISHED']);
    assert.equal(second.events.find((e) => e.type === 'TOOL_CALL_RESULT').toolCallId, call.toolCallId);
    const text = second.events.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => e.delta).join('');
    assert.equal(text, 'Done: deleted notes/old-draft.txt (pretend). Nothing was really touched.');
    assert.equal(second.agent.messages.at(-1).content, text);
    assert.deepEqual(last(second.events).outcome, { type: 'success' });
    assert.deepEqual(second.agent.pendingInterrupts, []);
    // The interrupt is answered: a second answer finds no run waiting.
    const again = await api(srv.url, 'POST', '/api/ag-ui', { threadId: first.agent.threadId, runId: 'r', messages: [], resume: [{ interruptId: it.id, status: 'resolved', payload: { approved: true } }] });
    assert.equal(again.status, 404);
    assert.equal(again.body.error.message, `no run of thread ${first.agent.threadId} waits for interrupt ${it.id}`);
    // One chatplane run for both AG-UI runs.
    const stops = customs(second.events, 'chatplane.run_stopped');
    assert.equal(stops[0].run_id, customs(first.events, 'chatplane.status')[0].run_id);
  });

  test('resume with approved false denies the call; the answer says so', async () => {
    const first = await runAgent(srv.url, { message: 'demo approve' });
    const [it] = last(first.events).outcome.interrupts;
    const second = await runAgent(srv.url, {
      agent: first.agent,
      params: { resume: [{ interruptId: it.id, status: 'resolved', payload: { approved: false, reason: 'not today' } }] },
    });
    assert.equal(second.error, null, second.error && second.error.stack);
    const res = second.events.find((e) => e.type === 'TOOL_CALL_RESULT');
    assert.match(res.content, /^The user denied this call: not today\./);
    const text = second.events.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => e.delta).join('');
    assert.match(text, /^I did not delete it: /);
  });

  test('bad input is 400 naming the problem, before any stream', async () => {
    const post = (body) => api(srv.url, 'POST', '/api/ag-ui', body);
    let r = await post({ threadId: 'bad thread', runId: 'r', messages: [] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.message, 'threadId must be 1 to 128 characters of [A-Za-z0-9._:-]');
    r = await post({ threadId: 't1', runId: 'r', messages: [{ id: 'a', role: 'assistant', content: 'hi' }] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.message, 'messages must end with a new user message when there is no resume');
    r = await post({ threadId: 't1', runId: 'r', messages: [{ id: 'u', role: 'user', content: 'x' }], forwardedProps: { mode: 'nope' } });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.message, 'forwardedProps.mode: unknown mode "nope"');
    r = await post({ threadId: 't1', runId: 'r', messages: [], resume: [{ interruptId: 'apr_x', status: 'resolved', payload: {} }] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.message, 'resume[0].payload.approved must be a boolean');
    r = await post({ threadId: 't1', runId: 'r', messages: [], resume: [{ interruptId: 'apr_x', status: 'resolved', payload: { approved: true } }] });
    assert.equal(r.status, 404);
    assert.equal(r.body.error.message, 'no run of thread t1 waits for interrupt apr_x');
    r = await post({ threadId: 't1', runId: 'r', messages: [{ id: 'u', role: 'user', content: '' }] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.message, 'the new user message must not be empty');
    r = await post({ threadId: 't1', runId: 'r', messages: [{ id: 'u', role: 'user', content: 'x'.repeat(65537) }] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.message, 'the new user message must be at most 65536 bytes');
    // HttpAgent reports such an answer as a failed run carrying the error.
    const { error } = await runAgent(srv.url, { message: 'hi', params: { forwardedProps: { mode: 'nope' } } });
    assert.equal(error.status, 400);
    assert.deepEqual(error.payload, { error: { code: 'bad_request', message: 'forwardedProps.mode: unknown mode "nope"' } });
  });
});

describe('AG-UI with the mock model', () => {
  let srv;
  let mock;
  before(async () => {
    mock = await startMock();
    srv = await startServer({ config: { llm: { base_url: mock.url, model: 'mock-model' } } });
  });
  after(async () => {
    const st = await srv.stop();
    assert.equal(st.code, 0);
    srv.cleanup();
    await mock.stop();
  });

  test('context items reach the model in the system note, on every step of the run', async () => {
    await mock.script([
      { tool_calls: [{ name: 'calc', arguments: { expression: '1+1' } }] },
      { text: 'Two.' },
    ]);
    const before = (await mock.requests()).length;
    const { events, error } = await runAgent(srv.url, {
      message: 'add one and one',
      params: { context: [{ description: 'user time zone', value: 'Europe/Paris' }, { description: 'page', value: '/billing' }] },
    });
    assert.equal(error, null, error && error.stack);
    assert.deepEqual(last(events).outcome, { type: 'success' });
    const calls = (await mock.requests()).slice(before);
    assert.equal(calls.length, 2);
    for (const c of calls) {
      const notes = c.body.messages.filter((m) => m.role === 'system' && m.content.includes('The frontend gave this context:'));
      assert.equal(notes.length, 1, JSON.stringify(c.body.messages));
      assert.match(notes[0].content, /^Budget: [^\n]*\.\n\nThe frontend gave this context:\n- user time zone: Europe\/Paris\n- page: \/billing$/);
    }
  });

  test('an llm_error ends the text it began and answers RUN_ERROR with the stop reason as code', async () => {
    await mock.script([{ chunks: [{ content: 'ok' }, '{"choices":[{"index":0,"delta":{"content":"a\u0000b"}}]}'] }]);
    const { events, error } = await runAgent(srv.url, { message: 'hi' });
    assert.equal(error, null, error && error.stack);
    const t = types(events).filter((x) => x !== 'CUSTOM');
    assert.deepEqual(t, ['RUN_STARTED', 'STEP_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT',
      'TEXT_MESSAGE_END', 'STEP_FINISHED', 'RUN_ERROR']);
    const e = last(events);
    assert.equal(e.code, 'llm_error');
    assert.equal(e.message, 'the model stream sent a chunk with a NUL byte (at byte 44)');
  });
});

describe('AG-UI with authentication', () => {
  let srv;
  const tok = {};
  before(async () => {
    srv = await startServer({});
    await srv.stop();
    for (const name of ['alice', 'bob']) {
      const r = await runBinary(['token', 'create', name, '--db', `sqlite:${srv.dir}/chat.db`]);
      assert.equal(r.code, 0, r.stderr);
      tok[name] = r.stdout.trimEnd().split('\n').at(-1);
    }
    srv = await startServer({ dir: srv.dir });
  });
  after(async () => {
    const st = await srv.stop();
    assert.equal(st.code, 0);
    srv.cleanup();
  });

  const agentOf = (name, threadId) => new HttpAgent({ url: `${srv.url}/api/ag-ui`, threadId, headers: { Authorization: `Bearer ${tok[name]}` } });

  test('a thread id names a session of its owner only; no token is 401', async () => {
    const threadId = uid('shared');
    const a = await runAgent(srv.url, { agent: agentOf('alice', threadId), message: 'hello' });
    const b = await runAgent(srv.url, { agent: agentOf('bob', threadId), message: 'hello' });
    assert.equal(a.error, null);
    assert.equal(b.error, null);
    const sa = customs(a.events, 'chatplane.run_stopped')[0].session_id;
    const sb = customs(b.events, 'chatplane.run_stopped')[0].session_id;
    assert.notEqual(sa, sb);
    const seen = await api(srv.url, 'GET', `/api/sessions/${sa}`, undefined, { Authorization: `Bearer ${tok.bob}` });
    assert.equal(seen.status, 404);
    const anon = await api(srv.url, 'POST', '/api/ag-ui', { threadId, runId: 'r', messages: [{ id: 'u', role: 'user', content: 'x' }] });
    assert.equal(anon.status, 401);
  });
});
