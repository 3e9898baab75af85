// Questions over HTTP (docs/api.md, Inputs) end to end: the real server
// with the mock model calling trigger-elicitation-request of the real
// @modelcontextprotocol/server-everything over stdio, whose question
// becomes an input answered through the routes. Checks what the tool
// returned, every error of the two routes, another owner's 404, the
// time-out (the server gets cancel) and a stop while waiting.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';

import { startMock } from '../scenarios/lib.mjs';
import { api, runBinary, startServer, until } from './lib/server.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
const everything = path.join(root, 'node_modules', '.bin', 'mcp-server-everything');
const TOOL = 'everything__trigger-elicitation-request';

const INPUT_KEYS = ['id', 'session_id', 'run_id', 'execution_id', 'server', 'message', 'schema',
  'status', 'content', 'requested_at', 'answered_at', 'expires_at'];

async function makeToken(dir, name) {
  const r = await runBinary(['token', 'create', name, '--db', `sqlite:${path.join(dir, 'chat.db')}`]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trimEnd().split('\n').at(-1);
}

const bearer = (t) => ({ Authorization: `Bearer ${t}` });

function assertError(r, status, code, message) {
  assert.equal(r.status, status, r.text);
  assert.deepEqual(Object.keys(r.body), ['error']);
  assert.equal(r.body.error.code, code);
  if (message !== undefined) assert.equal(r.body.error.message, message);
}

// A server with the mock model and server-everything; extra goes into
// approvals, server into the server's configuration.
async function serverWith(mock, dir, extra = {}, server = {}) {
  return startServer({
    dir,
    config: {
      llm: { base_url: mock.url, model: 'mock-1' },
      mcpServers: { everything: { command: everything, args: ['stdio'], ...server } },
      approvals: { rules: [{ tool: '*', action: 'allow' }], ...extra },
    },
  });
}

describe('questions over HTTP', () => {
  let mock;
  let srv;
  let dir;
  const tok = {};
  before(async () => {
    assert.ok(existsSync(everything), 'npm ci installs @modelcontextprotocol/server-everything');
    mock = await startMock();
    dir = mkdtempSync(path.join(tmpdir(), 'chatplane-inputs-'));
    tok.alice = await makeToken(dir, 'alice');
    tok.bob = await makeToken(dir, 'bob');
    srv = await serverWith(mock, dir);
  });
  after(async () => {
    const st = await srv.stop();
    assert.equal(st.code, 0);
    mock.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await mock.reset();
    await mock.script([{ tool_calls: [{ name: TOOL, arguments: {}, id: 'call_q' }] }, { text: 'Thanks.' }]);
  });

  const call = (method, p, body, t = tok.alice) => api(srv.url, method, p, body, bearer(t));

  // Starts a run in a new session of alice and waits for its question;
  // resolves to {sid, runId, input}.
  async function asked() {
    const s = await call('POST', '/api/sessions', {});
    assert.equal(s.status, 201);
    const run = await call('POST', `/api/sessions/${s.body.id}/runs`, { message: 'ask me' });
    assert.equal(run.status, 202, run.text);
    const list = await until(async () => {
      const r = await call('GET', `/api/sessions/${s.body.id}/inputs?status=pending`);
      return r.status === 200 && r.body.inputs.length === 1 ? r.body : null;
    }, 20000);
    return { sid: s.body.id, runId: run.body.id, input: list.inputs[0] };
  }

  async function idle(sid) {
    return until(async () => {
      const r = await call('GET', `/api/sessions/${sid}`);
      return r.body.status === 'idle' && r.body.last_run && r.body.last_run.status === 'stopped' ? r.body : null;
    }, 20000);
  }

  const events = async (sid) => (await api(srv.url, 'GET', `/api/sessions/${sid}/events?after=0`, undefined,
    { ...bearer(tok.alice), Accept: 'application/json' })).body.events;

  test('the server question waits as an input; the answer reaches the tool, and a second one is 409', async () => {
    const { sid, runId, input } = await asked();
    assert.deepEqual(Object.keys(input), INPUT_KEYS);
    assert.match(input.id, /^inp_/);
    assert.equal(input.session_id, sid);
    assert.equal(input.run_id, runId);
    assert.equal(input.server, 'everything');
    assert.equal(input.message, 'Please provide inputs for the following fields:');
    assert.equal(input.schema.type, 'object');
    assert.deepEqual(input.schema.required, ['name']);
    assert.equal(input.schema.properties.integer.type, 'integer');
    assert.equal(input.status, 'pending');
    assert.equal(input.content, null);
    assert.equal(input.answered_at, null);
    assert.equal(Date.parse(input.expires_at) - Date.parse(input.requested_at), 900000);
    const ses = await call('GET', `/api/sessions/${sid}`);
    assert.equal(ses.body.status, 'running');
    let ev = await events(sid);
    const req = ev.find((e) => e.type === 'input_requested');
    assert.deepEqual(Object.keys(req).slice(-6), ['input_id', 'execution_id', 'server', 'message', 'schema', 'expires_at']);
    assert.equal(req.input_id, input.id);
    assert.equal(req.execution_id, input.execution_id);
    assert.deepEqual(req.schema, input.schema);
    assert.equal(req.expires_at, input.expires_at);
    const waiting = ev.find((e) => e.type === 'status' && e.status === 'waiting_for_input');
    assert.equal(waiting.detail, TOOL);

    const url = `/api/sessions/${sid}/inputs/${input.id}`;
    // Every answer the form refuses, each naming its field.
    assertError(await call('POST', url, { action: 'accept', content: { name: 3 } }), 400, 'bad_request',
      'content.name must be a string');
    assertError(await call('POST', url, { action: 'accept', content: { check: true } }), 400, 'bad_request',
      'content.name is required');
    assertError(await call('POST', url, { action: 'accept', content: { name: 'A', integer: 101 } }), 400,
      'bad_request', 'content.integer must be at most 100');
    assertError(await call('POST', url, { action: 'accept', content: { name: 'A', nope: 1 } }), 400,
      'bad_request', 'content.nope is not a field of this form');
    assertError(await call('POST', url, { action: 'accept', content: { name: 'A', untitledSingleSelectEnum: 'Gunther' } }), 400,
      'bad_request', 'content.untitledSingleSelectEnum must be one of Monica, Rachel, Joey, Chandler, Ross, Phoebe');
    assertError(await call('POST', url, { action: 'decline', content: {} }), 400, 'bad_request',
      'content goes only with the action accept');
    assertError(await call('POST', url, { action: 'maybe' }), 400, 'bad_request');
    assertError(await call('POST', url, { content: {} }), 400, 'bad_request');
    // Another owner's session and an unknown input are not found.
    assertError(await call('POST', url, { action: 'decline' }, tok.bob), 404, 'not_found');
    assertError(await call('GET', `/api/sessions/${sid}/inputs`, undefined, tok.bob), 404, 'not_found');
    assertError(await call('POST', `/api/sessions/${sid}/inputs/inp_nope`, { action: 'decline' }), 404, 'not_found',
      'no input inp_nope');
    assertError(await call('GET', `/api/sessions/${sid}/inputs?status=open`), 400, 'bad_request',
      'status must be one of pending, accepted, declined, cancelled, expired');

    const ok = await call('POST', url, { action: 'accept', content: { name: 'Ada Lovelace', check: true, integer: 7 } });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(Object.keys(ok.body), INPUT_KEYS);
    assert.equal(ok.body.status, 'accepted');
    assert.deepEqual(ok.body.content, { name: 'Ada Lovelace', check: true, integer: 7 });
    assert.ok(ok.body.answered_at);

    const again = await call('POST', url, { action: 'decline' });
    assert.equal(again.status, 409, again.text);
    assert.deepEqual(Object.keys(again.body), ['error', 'input']);
    assert.equal(again.body.error.code, 'already_decided');
    assert.equal(again.body.error.message, `input ${input.id} is already accepted`);
    assert.equal(again.body.input.status, 'accepted');

    const done = await idle(sid);
    assert.equal(done.last_run.stop_reason, 'completed');
    const tools = await call('GET', `/api/sessions/${sid}/tools`);
    const result = tools.body.tool_executions[0].result;
    assert.equal(tools.body.tool_executions[0].status, 'ok');
    assert.match(result, /User provided the requested information!/);
    assert.match(result, /- Name: Ada Lovelace/);
    assert.match(result, /- Agreed to terms: true/);
    assert.match(result, /- Favorite Integer: 7/);
    ev = await events(sid);
    const answered = ev.find((e) => e.type === 'input_answered');
    assert.deepEqual(Object.keys(answered).slice(-4), ['input_id', 'action', 'answered_by', 'content']);
    assert.equal(answered.input_id, input.id);
    assert.equal(answered.action, 'accept');
    assert.equal(answered.answered_by, 'alice');
    assert.deepEqual(answered.content, { name: 'Ada Lovelace', check: true, integer: 7 });
    const all = await call('GET', `/api/sessions/${sid}/inputs`);
    assert.deepEqual(all.body.inputs.map((i) => i.status), ['accepted']);
    assert.deepEqual((await call('GET', `/api/sessions/${sid}/inputs?status=pending`)).body, { inputs: [] });
  });

  test('a decline reaches the tool without content', async () => {
    const { sid, input } = await asked();
    const r = await call('POST', `/api/sessions/${sid}/inputs/${input.id}`, { action: 'decline' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.status, 'declined');
    assert.equal(r.body.content, null);
    await idle(sid);
    const tools = await call('GET', `/api/sessions/${sid}/tools`);
    assert.match(tools.body.tool_executions[0].result, /User declined to provide the requested information/);
    const answered = (await events(sid)).find((e) => e.type === 'input_answered');
    assert.equal(answered.action, 'decline');
    assert.equal('content' in answered, false);
  });

  test('a stop while waiting cancels the input and stops the run', async () => {
    const { sid, input } = await asked();
    const stop = await call('POST', `/api/sessions/${sid}/stop`, {});
    assert.equal(stop.status, 202, stop.text);
    assert.equal(stop.body.stop_reason, 'user_stopped');
    const got = await call('GET', `/api/sessions/${sid}/inputs`);
    assert.equal(got.body.inputs[0].status, 'cancelled');
    const answered = (await events(sid)).find((e) => e.type === 'input_answered');
    assert.equal(answered.action, 'cancel');
    assert.equal(answered.answered_by, 'stop');
    const late = await call('POST', `/api/sessions/${sid}/inputs/${input.id}`, { action: 'decline' });
    assert.equal(late.status, 409);
    assert.equal(late.body.input.status, 'cancelled');
  });

  test('the metrics count the questions by what the server was sent, and the waits', async () => {
    const text = await (await fetch(`${srv.url}/metrics`, { headers: bearer(tok.alice) })).text();
    // One accepted, one declined, one cancelled by the stop, above.
    assert.match(text, /^chatplane_inputs_total\{action="accept"\} 1$/m);
    assert.match(text, /^chatplane_inputs_total\{action="decline"\} 1$/m);
    assert.match(text, /^chatplane_inputs_total\{action="cancel"\} 1$/m);
    assert.match(text, /^chatplane_input_wait_seconds_count 3$/m);
  });
});

describe('an unanswered question', () => {
  test('expires after approvals.timeout_seconds: the server gets cancel and the run goes on', async () => {
    const mock = await startMock();
    const dir = mkdtempSync(path.join(tmpdir(), 'chatplane-inputs-timeout-'));
    const srv = await serverWith(mock, dir, { timeout_seconds: 1 });
    try {
      await mock.script([{ tool_calls: [{ name: TOOL, arguments: {}, id: 'call_t' }] }, { text: 'Nobody answered.' }]);
      const s = await api(srv.url, 'POST', '/api/sessions', {});
      await api(srv.url, 'POST', `/api/sessions/${s.body.id}/runs`, { message: 'ask me' });
      const done = await until(async () => {
        const r = await api(srv.url, 'GET', `/api/sessions/${s.body.id}`);
        return r.body.status === 'idle' && r.body.last_run ? r.body : null;
      }, 20000);
      assert.equal(done.last_run.stop_reason, 'completed');
      const inputs = (await api(srv.url, 'GET', `/api/sessions/${s.body.id}/inputs`)).body.inputs;
      assert.equal(inputs.length, 1);
      assert.equal(inputs[0].status, 'expired');
      assert.equal(Date.parse(inputs[0].expires_at) - Date.parse(inputs[0].requested_at), 1000);
      const ev = (await api(srv.url, 'GET', `/api/sessions/${s.body.id}/events?after=0`, undefined,
        { Accept: 'application/json' })).body.events;
      const answered = ev.find((e) => e.type === 'input_answered');
      assert.equal(answered.action, 'cancel');
      assert.equal(answered.answered_by, 'timeout');
      const tools = (await api(srv.url, 'GET', `/api/sessions/${s.body.id}/tools`)).body.tool_executions;
      assert.match(tools[0].result, /User cancelled the elicitation dialog/);
      const usage = ev.find((e) => e.type === 'run_stopped').usage;
      assert.ok(usage.waiting_seconds >= 0.9, JSON.stringify(usage));
    } finally {
      await srv.stop();
      mock.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the call\'s own time-out stands still while the person answers', async () => {
    const mock = await startMock();
    const dir = mkdtempSync(path.join(tmpdir(), 'chatplane-inputs-pause-'));
    // Three seconds, not one: the tool server must still ask its question
    // within the time-out on a loaded machine, before the pause stops it.
    const srv = await serverWith(mock, dir, {}, { timeout_seconds: 3 });
    try {
      await mock.script([{ tool_calls: [{ name: TOOL, arguments: {}, id: 'call_p' }] }, { text: 'Got it.' }]);
      const s = await api(srv.url, 'POST', '/api/sessions', {});
      await api(srv.url, 'POST', `/api/sessions/${s.body.id}/runs`, { message: 'ask me' });
      const input = await until(async () => {
        const r = await api(srv.url, 'GET', `/api/sessions/${s.body.id}/inputs?status=pending`);
        return r.body.inputs && r.body.inputs.length === 1 ? r.body.inputs[0] : null;
      }, 20000);
      // Twice the call's time-out passes while the person thinks.
      await new Promise((r) => setTimeout(r, 6000));
      const ok = await api(srv.url, 'POST', `/api/sessions/${s.body.id}/inputs/${input.id}`, { action: 'accept', content: { name: 'Patient' } });
      assert.equal(ok.status, 200, ok.text);
      await until(async () => {
        const r = await api(srv.url, 'GET', `/api/sessions/${s.body.id}`);
        return r.body.status === 'idle' ? r.body : null;
      }, 20000);
      const tools = (await api(srv.url, 'GET', `/api/sessions/${s.body.id}/tools`)).body.tool_executions;
      assert.equal(tools[0].status, 'ok', JSON.stringify(tools[0]));
      assert.match(tools[0].result, /- Name: Patient/);
    } finally {
      await srv.stop();
      mock.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
