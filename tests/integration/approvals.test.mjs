// Approvals over HTTP (docs/api.md, Approvals) against the real server with
// the demo brain, whose calc calls a rule asks about: the list, a decision
// and what it starts, every error of the two routes, another owner's 404,
// the mode's approval field, and the metrics.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { api, runBinary, startServer, until } from './lib/server.mjs';

async function makeToken(dir, name, admin = false) {
  const r = await runBinary(['token', 'create', name, ...(admin ? ['--admin'] : []), '--db', `sqlite:${path.join(dir, 'chat.db')}`]);
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

const APPROVAL_KEYS = ['id', 'session_id', 'run_id', 'execution_id', 'step', 'server', 'tool', 'arguments',
  'reason', 'status', 'decided_by', 'decision_reason', 'remember', 'requested_at', 'decided_at', 'expires_at'];

describe('approvals over HTTP', () => {
  let srv;
  let dir;
  const tok = {};
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'chatplane-approvals-'));
    tok.alice = await makeToken(dir, 'alice');
    tok.bob = await makeToken(dir, 'bob');
    tok.root = await makeToken(dir, 'root', true);
    srv = await startServer({ dir, config: { approvals: { rules: [{ tool: 'calc', action: 'ask' }] } } });
  });
  after(async () => {
    const st = await srv.stop();
    assert.equal(st.code, 0);
    rmSync(dir, { recursive: true, force: true });
  });

  const call = (method, p, body, t = tok.alice) => api(srv.url, method, p, body, bearer(t));

  // Starts "what is 6*7?" in a new session of alice and waits for its
  // approval; resolves to {sid, approval}.
  async function asked() {
    const s = await call('POST', '/api/sessions', {});
    assert.equal(s.status, 201);
    const run = await call('POST', `/api/sessions/${s.body.id}/runs`, { message: 'what is 6*7?' });
    assert.equal(run.status, 202);
    const list = await until(async () => {
      const r = await call('GET', `/api/sessions/${s.body.id}/approvals?status=pending`);
      return r.status === 200 && r.body.approvals.length === 1 ? r.body : null;
    });
    return { sid: s.body.id, runId: run.body.id, approval: list.approvals[0] };
  }

  async function idle(sid) {
    return until(async () => {
      const r = await call('GET', `/api/sessions/${sid}`);
      return r.body.status === 'idle' && r.body.last_run && r.body.last_run.status === 'stopped' ? r.body : null;
    });
  }

  test('an asked call waits; approving it runs the call, and a second decision is 409 with the approval', async () => {
    const { sid, runId, approval } = await asked();
    assert.deepEqual(Object.keys(approval), APPROVAL_KEYS);
    assert.equal(approval.session_id, sid);
    assert.equal(approval.run_id, runId);
    assert.equal(approval.server, 'builtin');
    assert.equal(approval.tool, 'calc');
    assert.deepEqual(approval.arguments, { expression: '6*7' });
    assert.equal(approval.reason, 'rule calc');
    assert.equal(approval.status, 'pending');
    assert.equal(approval.decided_by, null);
    assert.equal(approval.remember, 'once');
    assert.equal(Date.parse(approval.expires_at) - Date.parse(approval.requested_at), 900000);
    const ses = await call('GET', `/api/sessions/${sid}`);
    assert.equal(ses.body.status, 'running');
    const ev = (await api(srv.url, 'GET', `/api/sessions/${sid}/events?after=0`, undefined, { ...bearer(tok.alice), Accept: 'application/json' })).body.events;
    const req = ev.find((e) => e.type === 'approval_requested');
    assert.equal(req.approval_id, approval.id);
    assert.equal(req.execution_id, approval.execution_id);
    const waiting = ev.find((e) => e.type === 'status' && e.status === 'waiting_for_approval');
    assert.equal(waiting.detail, 'calc');

    const ok = await call('POST', `/api/sessions/${sid}/approvals/${approval.id}`, { decision: 'approve' });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(Object.keys(ok.body), APPROVAL_KEYS);
    assert.equal(ok.body.status, 'approved');
    assert.equal(ok.body.decided_by, 'alice');
    assert.equal(ok.body.decision_reason, null);
    assert.ok(ok.body.decided_at);

    const again = await call('POST', `/api/sessions/${sid}/approvals/${approval.id}`, { decision: 'deny' });
    assert.equal(again.status, 409, again.text);
    assert.deepEqual(Object.keys(again.body), ['error', 'approval']);
    assert.equal(again.body.error.code, 'already_decided');
    assert.equal(again.body.error.message, `approval ${approval.id} is already approved`);
    assert.equal(again.body.approval.status, 'approved');
    assert.equal(again.body.approval.decided_by, 'alice');

    const done = await idle(sid);
    assert.equal(done.last_run.stop_reason, 'completed');
    const tools = await call('GET', `/api/sessions/${sid}/tools`);
    assert.equal(tools.body.tool_executions[0].status, 'ok');
    assert.equal(tools.body.tool_executions[0].id, approval.execution_id);
    const all = await call('GET', `/api/sessions/${sid}/approvals`);
    assert.deepEqual(all.body.approvals.map((a) => a.status), ['approved']);
    const none = await call('GET', `/api/sessions/${sid}/approvals?status=pending`);
    assert.deepEqual(none.body, { approvals: [] });
  });

  test('a denial with a reason records the call denied and the run goes on', async () => {
    const { sid, approval } = await asked();
    const no = await call('POST', `/api/sessions/${sid}/approvals/${approval.id}`, { decision: 'deny', reason: 'not now', remember: 'session' });
    assert.equal(no.status, 200, no.text);
    assert.equal(no.body.status, 'denied');
    assert.equal(no.body.decision_reason, 'not now');
    assert.equal(no.body.remember, 'session');
    await idle(sid);
    const tools = await call('GET', `/api/sessions/${sid}/tools`);
    assert.equal(tools.body.tool_executions[0].status, 'denied');
    assert.equal(tools.body.tool_executions[0].error, 'denied by alice: not now');
    const msgs = await call('GET', `/api/sessions/${sid}/messages`);
    const tool = msgs.body.messages.find((m) => m.role === 'tool');
    assert.equal(tool.content, 'The user denied this call: not now. Do not retry it; answer without it or ask the user.');
    // The session remembers: the next calc call is denied unasked.
    const run = await call('POST', `/api/sessions/${sid}/runs`, { message: 'what is 2+2?' });
    assert.equal(run.status, 202);
    await idle(sid);
    const list = await call('GET', `/api/sessions/${sid}/approvals`);
    assert.deepEqual(list.body.approvals.map((a) => [a.status, a.decided_by]), [['denied', 'alice'], ['denied', 'remembered']]);
  });

  test('bad decisions are 400 naming the field; unknown approvals are 404', async () => {
    const { sid, approval } = await asked();
    const p = `/api/sessions/${sid}/approvals/${approval.id}`;
    assertError(await call('POST', p, {}), 400, 'bad_request', 'decision is required');
    assertError(await call('POST', p, { decision: 'maybe' }), 400, 'bad_request', 'decision must be one of approve, deny');
    assertError(await call('POST', p, { decision: 'approve', remember: 'forever' }), 400, 'bad_request', 'remember must be one of once, run, session');
    assertError(await call('POST', p, { decision: 'approve', reason: 7 }), 400, 'bad_request', 'reason must be a string');
    assertError(await call('POST', p, { decision: 'approve', reason: 'x'.repeat(1001) }), 400, 'bad_request', 'reason must be at most 1000 characters');
    assertError(await call('POST', p, { decision: 'approve', why: 'x' }), 400, 'bad_request', "unknown field 'why'");
    assertError(await call('POST', p, '{"decision":'), 400, 'invalid_json');
    assertError(await call('GET', `/api/sessions/${sid}/approvals?status=waiting`), 400, 'bad_request',
      'status must be one of pending, approved, denied, expired, cancelled');
    assertError(await call('POST', `/api/sessions/${sid}/approvals/apr_nope`, { decision: 'approve' }), 404, 'not_found', 'no approval apr_nope');
    // Another owner sees neither the session's approvals nor may decide them.
    assertError(await call('GET', `/api/sessions/${sid}/approvals`, undefined, tok.bob), 404, 'not_found');
    assertError(await call('POST', p, { decision: 'approve' }, tok.bob), 404, 'not_found');
    // An approval of another session is not found through this one.
    const other = await call('POST', '/api/sessions', {});
    assertError(await call('POST', `/api/sessions/${other.body.id}/approvals/${approval.id}`, { decision: 'approve' }), 404, 'not_found');
    const still = await call('GET', `/api/sessions/${sid}/approvals?status=pending`);
    assert.equal(still.body.approvals.length, 1);
    const stop = await call('POST', `/api/sessions/${sid}/stop`);
    assert.equal(stop.status, 202);
    assert.equal(stop.body.stop_reason, 'user_stopped');
    const gone = await call('GET', `/api/sessions/${sid}/approvals`);
    assert.deepEqual(gone.body.approvals.map((a) => [a.status, a.decided_by]), [['cancelled', 'stop']]);
    const late = await call('POST', p, { decision: 'approve' });
    assert.equal(late.status, 409);
    assert.equal(late.body.approval.status, 'cancelled');
  });

  test('a mode carries its approval policy, and PUT changes it', async () => {
    const modes = await call('GET', '/api/modes');
    assert.deepEqual(modes.body.modes.map((m) => m.approval), ['risky', 'risky', 'risky']);
    const put = await call('PUT', '/api/modes/deep', { approval: 'always' }, tok.root);
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.approval, 'always');
    assertError(await call('PUT', '/api/modes/deep', { approval: 'sometimes' }, tok.root), 400, 'bad_request',
      'approval must be one of never, risky, always');
    const back = await call('GET', '/api/modes');
    assert.equal(back.body.modes[2].approval, 'always');
    assert.equal((await call('PUT', '/api/modes/deep', { approval: 'risky' }, tok.root)).status, 200);
  });

  test('metrics count decisions by kind', async () => {
    const r = await fetch(`${srv.url}/metrics`);
    const text = await r.text();
    assert.match(text, /^chatplane_approvals_total\{decision="approved"\} [1-9]/m);
    assert.match(text, /^chatplane_approvals_total\{decision="denied"\} [1-9]/m);
    assert.match(text, /^chatplane_approvals_total\{decision="cancelled"\} [1-9]/m);
    assert.match(text, /^chatplane_approvals_total\{decision="expired"\} 0/m);
    assert.match(text, /^chatplane_approval_wait_seconds_count [1-9]/m);
    assert.match(text, /^chatplane_tool_calls_total\{status="denied"\} [1-9]/m);
  });
});
