// The Vercel AI SDK UI message stream against the real server
// (docs/protocols.md, AI SDK), judged by the `ai` package itself: its
// DefaultChatTransport posts and parses (validating every chunk against its
// schema), readUIMessageStream assembles the message, and a small
// AbstractChat subclass drives sendMessage, stop, resumeStream and
// addToolApprovalResponse as an app does.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { AbstractChat, DefaultChatTransport, lastAssistantMessageIsCompleteWithApprovalResponses, readUIMessageStream } from 'ai';

import { api, raw, startServer, until } from '../integration/lib/server.mjs';
import { startMock } from '../scenarios/lib.mjs';

let counter = 0;
const uid = (p) => `${p}-${process.pid}-${++counter}`;

// The plain state object a chat needs without a UI framework.
class PlainState {
  constructor() {
    this.status = 'ready';
    this.error = undefined;
    this.messages = [];
  }
  pushMessage(m) { this.messages = this.messages.concat(m); }
  popMessage() { this.messages = this.messages.slice(0, -1); }
  replaceMessage(i, m) { this.messages = [...this.messages.slice(0, i), m, ...this.messages.slice(i + 1)]; }
  snapshot(x) { return structuredClone(x); }
}

class TestChat extends AbstractChat {
  constructor(opts) {
    super({ ...opts, state: new PlainState() });
  }
  get messagesNow() { return this.state.messages; }
}

// A fetch that keeps every response's headers, so the tests can see them.
function recordingFetch(seen) {
  return async (url, init) => {
    const res = await fetch(url, init);
    seen.push({ url: String(url), method: init?.method || 'GET', status: res.status, headers: Object.fromEntries(res.headers), body: res.clone().text() });
    return res;
  };
}

// Sends one user message through the transport and assembles the answer.
async function send(base, text, { id = uid('chat'), extra = {} } = {}) {
  const seen = [];
  const transport = new DefaultChatTransport({ api: `${base}/api/chat`, fetch: recordingFetch(seen), body: extra });
  const stream = await transport.sendMessages({
    chatId: id,
    trigger: 'submit-message',
    messageId: undefined,
    messages: [{ id: uid('u'), role: 'user', parts: [{ type: 'text', text }] }],
    abortSignal: undefined,
  });
  const chunks = [];
  const tee = stream.pipeThrough(new TransformStream({ transform(c, ctl) { chunks.push(c); ctl.enqueue(c); } }));
  let message;
  for await (const m of readUIMessageStream({ stream: tee, onError: () => {} })) message = m;
  return { id, chunks, message, seen };
}

const kinds = (chunks) => chunks.map((c) => c.type);
const textOf = (message) => message.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');
const stopOf = (chunks) => chunks.find((c) => c.type === 'data-chatplane-stop').data;

describe('AI SDK with the demo brain', () => {
  let srv;
  before(async () => {
    srv = await startServer({});
  });
  after(async () => {
    const st = await srv.stop();
    assert.equal(st.code, 0);
    srv.cleanup();
  });

  test('a plain answer: the v1 header, start, a step, one text part, the stop part, finish', async () => {
    const { chunks, message, seen } = await send(srv.url, 'hello there');
    assert.equal(seen[0].status, 200);
    assert.equal(seen[0].headers['x-vercel-ai-ui-message-stream'], 'v1');
    assert.equal(seen[0].headers['content-type'], 'text/event-stream');
    const k = kinds(chunks).filter((x) => x !== 'text-delta' && x !== 'data-chatplane-status' && x !== 'data-chatplane-budget');
    assert.deepEqual(k, ['start', 'start-step', 'text-start', 'text-end', 'finish-step', 'data-chatplane-stop', 'finish']);
    assert.match(chunks[0].messageId, /^run_/);
    assert.equal(chunks.at(-1).finishReason, 'stop');
    assert.equal(message.id, chunks[0].messageId);
    assert.match(textOf(message), /demo brain/);
    // Status and budget are transient: not kept in the message.
    assert.deepEqual(message.parts.map((p) => p.type), ['step-start', 'text', 'data-chatplane-stop']);
    assert.equal(stopOf(chunks).reason, 'completed');
  });

  test('the stream ends with data: [DONE]', async () => {
    const body = JSON.stringify({ id: uid('chat'), trigger: 'submit-message', messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'hi' }] }] });
    const r = await raw(srv.port, 'POST', '/api/chat', { headers: { 'Content-Type': 'application/json' }, body });
    assert.equal(r.status, 200);
    const text = String(r.body);
    assert.ok(text.endsWith('data: {"type":"finish","finishReason":"stop"}\n\ndata: [DONE]\n\n'), text.slice(-200));
  });

  test('a tool call is a dynamic tool part with its input and output, then the answer', async () => {
    const { chunks, message } = await send(srv.url, 'what is 6*7?');
    const input = chunks.find((c) => c.type === 'tool-input-available');
    assert.deepEqual({ ...input, toolCallId: 'x' }, { type: 'tool-input-available', toolCallId: 'x', toolName: 'calc', input: { expression: '6*7' }, dynamic: true });
    const out = chunks.find((c) => c.type === 'tool-output-available');
    assert.deepEqual(out, { type: 'tool-output-available', toolCallId: input.toolCallId, output: '42', dynamic: true });
    assert.deepEqual(message.parts.map((p) => p.type), ['step-start', 'dynamic-tool', 'step-start', 'text', 'data-chatplane-stop']);
    const tool = message.parts[1];
    assert.equal(tool.state, 'output-available');
    assert.equal(tool.toolName, 'calc');
    assert.equal(textOf(message), '6*7 = 42.');
  });

  test('a budget stop finishes with finishReason length', async () => {
    const { chunks } = await send(srv.url, 'demo long', { extra: { mode: 'quick' } });
    assert.equal(stopOf(chunks).reason, 'max_steps');
    assert.deepEqual(chunks.at(-1), { type: 'finish', finishReason: 'length' });
  });

  test('a guardrail stop finishes with finishReason stop after a transient guardrail part', async () => {
    const { chunks, message } = await send(srv.url, 'demo loop');
    assert.equal(stopOf(chunks).reason, 'loop_detected');
    assert.ok(chunks.some((c) => c.type === 'data-chatplane-guardrail' && c.transient === true && c.data.action === 'stop'));
    assert.deepEqual(chunks.at(-1), { type: 'finish', finishReason: 'stop' });
    assert.ok(!message.parts.some((p) => p.type === 'data-chatplane-guardrail'));
  });

  test('a user stop (POST …/stop on the chat\'s session) is an abort', async () => {
    let stopping = null;
    const seen = [];
    const chat = new TestChat({
      id: uid('chat'),
      transport: new DefaultChatTransport({ api: `${srv.url}/api/chat`, fetch: recordingFetch(seen) }),
      onData: (part) => {
        if (part.type === 'data-chatplane-status' && part.data.status === 'tool_running' && !stopping)
          stopping = api(srv.url, 'POST', `/api/sessions/${part.data.session_id}/stop`, {});
      },
    });
    await chat.sendMessage({ text: 'demo sleep' });
    assert.equal((await stopping).status, 202);
    const msg = chat.messagesNow.at(-1);
    assert.equal(msg.role, 'assistant');
    const stop = msg.parts.find((p) => p.type === 'data-chatplane-stop');
    assert.equal(stop.data.reason, 'user_stopped');
    assert.equal(chat.status, 'ready');
    const body = await seen[0].body;
    assert.ok(body.endsWith('data: {"type":"abort","reason":"stopped on request after 1 step"}\n\ndata: [DONE]\n\n'), body.slice(-200));
  });

  test('an approval: the stream ends at the request; addToolApprovalResponse sends it and the same run goes on', async () => {
    const chat = new TestChat({
      id: uid('chat'),
      transport: new DefaultChatTransport({ api: `${srv.url}/api/chat` }),
      sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
    });
    await chat.sendMessage({ text: 'demo approve' });
    let msg = chat.messagesNow.at(-1);
    const tool = msg.parts.find((p) => p.type === 'dynamic-tool');
    assert.equal(tool.toolName, 'pretend_delete');
    assert.equal(tool.state, 'approval-requested');
    assert.match(tool.approval.id, /^apr_/);
    assert.equal(chat.status, 'ready');
    const runId = msg.id;

    await chat.addToolApprovalResponse({ id: tool.approval.id, approved: true });
    await until(() => (chat.status === 'ready' && chat.messagesNow.at(-1).parts.some((p) => p.type === 'data-chatplane-stop') ? true : null));
    msg = chat.messagesNow.at(-1);
    assert.equal(chat.messagesNow.length, 2, 'the answer continues the same assistant message');
    assert.equal(msg.id, runId);
    const done = msg.parts.find((p) => p.type === 'dynamic-tool');
    assert.equal(done.state, 'output-available');
    assert.match(done.output, /deleted/);
    assert.equal(textOf(msg), 'Done: deleted notes/old-draft.txt (pretend). Nothing was really touched.');
    assert.equal(msg.parts.find((p) => p.type === 'data-chatplane-stop').data.run_id, runId);
  });

  test('resuming a run that waits for an approval replays it to the request, and ends there', async () => {
    const id = uid('chat');
    const chat = new TestChat({ id, transport: new DefaultChatTransport({ api: `${srv.url}/api/chat` }) });
    await chat.sendMessage({ text: 'demo approve' });
    const asked = chat.messagesNow.at(-1);
    const transport = new DefaultChatTransport({ api: `${srv.url}/api/chat` });
    const stream = await transport.reconnectToStream({ chatId: id });
    assert.ok(stream, 'a run is active');
    const chunks = [];
    let message;
    const tee = stream.pipeThrough(new TransformStream({ transform(c, ctl) { chunks.push(c); ctl.enqueue(c); } }));
    for await (const m of readUIMessageStream({ stream: tee })) message = m;
    assert.equal(message.id, asked.id);
    const k = kinds(chunks).filter((x) => !x.startsWith('data-chatplane'));
    assert.deepEqual(k, ['start', 'start-step', 'tool-input-available', 'tool-approval-request', 'finish-step', 'finish']);
    const part = message.parts.find((p) => p.type === 'dynamic-tool');
    assert.equal(part.state, 'approval-requested');
    assert.equal(part.approval.id, asked.parts.find((p) => p.type === 'dynamic-tool').approval.id);
    // Answered, the run goes on; resuming afterwards shows the request decided and goes on to the end.
    await chat.addToolApprovalResponse({ id: part.approval.id, approved: true });
    await chat.sendMessage();
    assert.match(textOf(chat.messagesNow.at(-1)), /^Done: deleted/);
  });

  test('a resume shows the approvals decided earlier in the run as answered, and ends at the one waiting', async () => {
    // The deep mode asks for every call from now on (no other test here uses it).
    const put = await api(srv.url, 'PUT', '/api/modes/deep', { approval: 'always' });
    assert.equal(put.status, 200, put.text);
    const id = uid('chat');
    const transport = new DefaultChatTransport({ api: `${srv.url}/api/chat`, body: { mode: 'deep' } });
    const chat = new TestChat({ id, transport });
    await chat.sendMessage({ text: 'demo long' });
    const first = chat.messagesNow.at(-1).parts.find((p) => p.type === 'dynamic-tool');
    assert.equal(first.state, 'approval-requested');
    await chat.addToolApprovalResponse({ id: first.approval.id, approved: true });
    await chat.sendMessage();
    const tools = chat.messagesNow.at(-1).parts.filter((p) => p.type === 'dynamic-tool');
    assert.deepEqual(tools.map((p) => p.state), ['output-available', 'approval-requested']);

    const stream = await transport.reconnectToStream({ chatId: id });
    const chunks = [];
    let message;
    const tee = stream.pipeThrough(new TransformStream({ transform(c, ctl) { chunks.push(c); ctl.enqueue(c); } }));
    for await (const m of readUIMessageStream({ stream: tee })) message = m;
    assert.deepEqual(chunks.filter((c) => c.type === 'tool-approval-request').map((c) => c.approvalId),
      [first.approval.id, tools[1].approval.id]);
    assert.deepEqual(chunks.at(-1), { type: 'finish', finishReason: 'tool-calls' });
    assert.deepEqual(message.parts.filter((p) => p.type === 'dynamic-tool').map((p) => p.state), ['output-available', 'approval-requested']);
    await api(srv.url, 'POST', `/api/sessions/${chunks.find((c) => c.type === 'data-chatplane-status').data.session_id}/stop`, {});
  });

  test('a denied approval is tool-output-denied and the answer says so', async () => {
    const chat = new TestChat({
      id: uid('chat'),
      transport: new DefaultChatTransport({ api: `${srv.url}/api/chat` }),
      sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
    });
    await chat.sendMessage({ text: 'demo approve' });
    const tool = chat.messagesNow.at(-1).parts.find((p) => p.type === 'dynamic-tool');
    await chat.addToolApprovalResponse({ id: tool.approval.id, approved: false, reason: 'not today' });
    await until(() => (chat.status === 'ready' && chat.messagesNow.at(-1).parts.some((p) => p.type === 'data-chatplane-stop') ? true : null));
    const msg = chat.messagesNow.at(-1);
    assert.equal(msg.parts.find((p) => p.type === 'dynamic-tool').state, 'output-denied');
    assert.match(textOf(msg), /^I did not delete it: /);
  });

  test('a client that dropped mid-stream resumes: the run from its start, then live, to its end', async () => {
    const id = uid('chat');
    const chat = new TestChat({ id, transport: new DefaultChatTransport({ api: `${srv.url}/api/chat` }) });
    let dropped = false;
    const sending = chat.sendMessage({ text: 'demo sleep' });
    await until(() => (chat.messagesNow.length === 2 && chat.messagesNow[1].parts.some((p) => p.type === 'dynamic-tool') ? true : null));
    await chat.stop();
    dropped = true;
    await sending;
    assert.ok(dropped);
    const partial = chat.messagesNow.at(-1);
    assert.ok(!partial.parts.some((p) => p.type === 'data-chatplane-stop'), 'the drop came before the end');
    await chat.resumeStream();
    const msg = chat.messagesNow.at(-1);
    assert.equal(chat.messagesNow.length, 2);
    assert.equal(msg.id, partial.id);
    const tools = msg.parts.filter((p) => p.type === 'dynamic-tool');
    assert.equal(tools.length, 1, 'the replay does not repeat the call');
    assert.equal(tools[0].state, 'output-available');
    assert.equal(textOf(msg), 'The sleep tool returned: slept 5 seconds');
    assert.equal(msg.parts.find((p) => p.type === 'data-chatplane-stop').data.reason, 'completed');
    // Nothing runs now: resuming answers 204, which the transport reads as nothing to resume.
    const transport = new DefaultChatTransport({ api: `${srv.url}/api/chat` });
    assert.equal(await transport.reconnectToStream({ chatId: id }), null);
    assert.equal(await transport.reconnectToStream({ chatId: uid('never') }), null);
  });

  test('regenerate: the chat answers its last user message again, and chatplane supersedes the answer it replaces', async () => {
    let sessionId = null;
    const chat = new TestChat({
      id: uid('chat'),
      transport: new DefaultChatTransport({ api: `${srv.url}/api/chat` }),
      onData: (part) => {
        if (part.type === 'data-chatplane-status') sessionId = part.data.session_id;
      },
    });
    await chat.sendMessage({ text: 'what is 6*7?' });
    const first = chat.messagesNow.at(-1);
    assert.equal(first.role, 'assistant');
    await chat.regenerate();
    assert.equal(chat.status, 'ready');
    assert.deepEqual(chat.messagesNow.map((m) => m.role), ['user', 'assistant']);
    assert.notEqual(chat.messagesNow[1].id, first.id);
    assert.match(textOf(chat.messagesNow[1]), /42/);
    const stored = (await api(srv.url, 'GET', `/api/sessions/${sessionId}/messages`)).body.messages;
    // The first answer (its tool call, result and text) stays, superseded.
    assert.deepEqual(stored.map((m) => [m.role, m.superseded]), [
      ['user', false], ['assistant', true], ['tool', true], ['assistant', true],
      ['assistant', false], ['tool', false], ['assistant', false]]);
  });

  test('bad bodies are 400 naming the problem', async () => {
    const post = (body) => api(srv.url, 'POST', '/api/chat', body);
    let r = await post({ id: 'a b', messages: [] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.message, 'id must be 1 to 128 characters of [A-Za-z0-9._:-]');
    r = await post({ id: 'c1', messages: [] });
    assert.equal(r.body.error.message, 'messages must be a non-empty list');
    r = await post({ id: 'c1', trigger: 'x', messages: [] });
    assert.equal(r.body.error.message, 'trigger must be submit-message or regenerate-message');
    r = await post({ id: 'c1', messages: [{ id: 'a', role: 'assistant', parts: [{ type: 'text', text: 'x' }] }] });
    assert.equal(r.body.error.message, 'messages[0] is an assistant message without an answered approval: nothing to run');
    r = await post({ id: 'c1', messages: [{ id: 'a', role: 'user', parts: [{ type: 'file', url: 'x' }] }] });
    assert.equal(r.body.error.message, 'messages[0].parts[0]: only text parts are supported');
    // A chat with nothing stored yet has nothing to answer again.
    r = await post({ id: uid('empty'), trigger: 'regenerate-message', messages: [{ id: 'a', role: 'user', parts: [{ type: 'text', text: 'x' }] }] });
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'nothing_to_regenerate');
    r = await post({ id: 'c1', messages: [{ id: 'a', role: 'assistant', parts: [{ type: 'dynamic-tool', toolName: 'x', toolCallId: 'c', state: 'approval-responded', input: {}, approval: { id: 'apr_none', approved: true } }] }] });
    assert.equal(r.status, 404);
    assert.equal(r.body.error.message, 'no run of chat c1 waits for approval apr_none');
    r = await post({ id: 'c1', messages: [{ id: 'a', role: 'user', parts: [{ type: 'text', text: 'x'.repeat(65537) }] }] });
    assert.equal(r.body.error.message, 'the new user message must be at most 65536 bytes');
    r = await post({ id: 'c1', mode: 'huge', messages: [{ id: 'a', role: 'user', parts: [{ type: 'text', text: 'x' }] }] });
    assert.equal(r.body.error.message, 'mode: unknown mode "huge"');
    r = await api(srv.url, 'GET', '/api/chat/a%20b/stream');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.message, 'the chat id must be 1 to 128 characters of [A-Za-z0-9._:-]');
  });
});

describe('AI SDK with a failing model', () => {
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

  test('an llm_error is an error chunk; the chat shows the error', async () => {
    await mock.script([{ chunks: [{ content: 'ok' }, '{"choices":[{"index":0,"delta":{"content":"a\u0000b"}}]}'] }]);
    const { chunks } = await send(srv.url, 'hi');
    const k = kinds(chunks).filter((x) => !x.startsWith('data-chatplane-status') && x !== 'data-chatplane-budget');
    assert.deepEqual(k, ['start', 'start-step', 'text-start', 'text-delta', 'text-end', 'finish-step', 'data-chatplane-stop', 'error']);
    assert.equal(chunks.at(-1).errorText, 'the model stream sent a chunk with a NUL byte (at byte 44)');

    await mock.script([{ chunks: [{ content: 'ok' }, '{"choices":[{"index":0,"delta":{"content":"a\u0000b"}}]}'] }]);
    const chat = new TestChat({ id: uid('chat'), transport: new DefaultChatTransport({ api: `${srv.url}/api/chat` }) });
    await chat.sendMessage({ text: 'hi' });
    assert.equal(chat.status, 'error');
    assert.equal(chat.error.message, 'the model stream sent a chunk with a NUL byte (at byte 44)');
  });
});
