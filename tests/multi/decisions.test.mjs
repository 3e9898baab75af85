// A person's decision on any instance reaches the run's owner (docs/runs.md,
// Several instances): two `chatplane serve` on one throwaway PostgreSQL,
// the mock model and the real @modelcontextprotocol/server-everything. A
// run A owns waits for an approval (a rule asks about calc) or for an
// answer to the server's question; B takes the decision, answers with the
// decided object, and A applies it; a second decision on either instance
// is 409 already_decided.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { startMock } from '../scenarios/lib.mjs';
import { api, newSession, startServer, until } from '../integration/lib/server.mjs';
import { startCluster, waitHealthy } from './lib.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
const everything = path.join(root, 'node_modules', '.bin', 'mcp-server-everything');

describe('decisions taken on another instance than the run\'s', () => {
  let pg, mock;
  let a, b;

  before(async () => {
    pg = await startCluster();
    mock = await startMock();
    const config = {
      cluster: { orphan_timeout_seconds: 3 },
      llm: { base_url: mock.url, model: 'mock-1' },
      mcpServers: { everything: { command: everything, args: ['stdio'] } },
      approvals: { rules: [{ tool: 'calc', action: 'ask' }, { tool: '*', action: 'allow' }] },
    };
    a = await startServer({ db: pg.url, config });
    b = await startServer({ db: pg.url, config });
    for (const s of [a, b]) await waitHealthy(s.url);
  });

  after(async () => {
    for (const x of [a, b]) if (x) await x.stop('SIGKILL');
    for (const x of [a, b]) if (x) x.cleanup();
    if (mock) mock.stop();
    if (pg) await pg.stop();
  });

  // Starts a run on A and waits until B lists what it waits for.
  async function waiting(kind, script) {
    await mock.reset();
    await mock.script(script);
    const ses = await newSession(a.url);
    const r = await api(a.url, 'POST', `/api/sessions/${ses.id}/runs`, { message: 'go' });
    assert.equal(r.status, 202, r.text);
    const item = await until(async () => {
      const x = await api(b.url, 'GET', `/api/sessions/${ses.id}/${kind}?status=pending`);
      return x.status === 200 && x.body[kind].length === 1 ? x.body[kind][0] : null;
    }, 20000);
    return { sid: ses.id, runId: r.body.id, item };
  }

  async function idle(sid) {
    return until(async () => {
      const r = await api(a.url, 'GET', `/api/sessions/${sid}`);
      return r.body.status === 'idle' && r.body.last_run ? r.body : null;
    }, 20000);
  }

  // A heard of a decision through the control channel, not by deciding
  // itself: its log says so (read from its stderr). Awaited before A is
  // sent a decision of its own, whose 409 would make A read the stored one
  // itself; a notification that comes after the run is finishing is not
  // logged.
  const heardOf = (id) => until(() => a.lines.some((l) => l.includes('msg="a decision stored through another instance"')
    && l.includes(`id=${id}`)), 5000);

  const events = async (sid) => (await api(a.url, 'GET', `/api/sessions/${sid}/events?after=0`, undefined,
    { Accept: 'application/json' })).body.events;

  test('an approval decided on B runs the call on A; a second decision on A is 409', async () => {
    const { sid, item } = await waiting('approvals',
      [{ tool_calls: [{ name: 'calc', arguments: { expression: '6*7' }, id: 'c1' }] }, { text: '42.' }]);
    assert.equal(item.tool, 'calc');
    const t0 = Date.now();
    const ok = await api(b.url, 'POST', `/api/sessions/${sid}/approvals/${item.id}`, { decision: 'approve', reason: 'via B' });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.id, item.id);
    assert.equal(ok.body.status, 'approved');
    assert.equal(ok.body.decided_by, 'local');
    assert.equal(ok.body.decision_reason, 'via B');
    assert.ok(ok.body.decided_at);
    // A hears of it through the control channel before a second decision
    // is sent to A: that one's 409 makes A read the stored decision itself,
    // and a run already finishing then ignores the late notification.
    await heardOf(item.id);
    const again = await api(a.url, 'POST', `/api/sessions/${sid}/approvals/${item.id}`, { decision: 'deny' });
    assert.equal(again.status, 409, again.text);
    assert.equal(again.body.error.code, 'already_decided');
    assert.equal(again.body.approval.status, 'approved');
    const done = await idle(sid);
    assert.ok(Date.now() - t0 < 5000, 'A applied the decision at once');
    assert.equal(done.last_run.stop_reason, 'completed');
    const tools = (await api(a.url, 'GET', `/api/sessions/${sid}/tools`)).body.tool_executions;
    assert.equal(tools[0].status, 'ok');
    assert.equal(tools[0].result, '42');
    const decided = (await events(sid)).filter((e) => e.type === 'approval_decided');
    assert.equal(decided.length, 1);
    assert.equal(decided[0].decision, 'approved');
    assert.equal(decided[0].decided_by, 'local');
    assert.equal(decided[0].reason, 'via B');
  });

  // The next run's start reads the session's remembered decisions with its
  // history, after its COMMIT, in one round trip (docs/storage.md, Round
  // trips on PostgreSQL).
  test('a denial remembered for the session on B is applied unasked by the next run A starts', async () => {
    const { sid, item } = await waiting('approvals',
      [{ tool_calls: [{ name: 'calc', arguments: { expression: '3*3' }, id: 'c5' }] }, { text: 'No.' }]);
    const no = await api(b.url, 'POST', `/api/sessions/${sid}/approvals/${item.id}`,
      { decision: 'deny', reason: 'never here', remember: 'session' });
    assert.equal(no.status, 200, no.text);
    assert.equal(no.body.remember, 'session');
    await idle(sid);
    await mock.script([{ tool_calls: [{ name: 'calc', arguments: { expression: '4*4' }, id: 'c6' }] }, { text: 'Fine.' }]);
    const r = await api(a.url, 'POST', `/api/sessions/${sid}/runs`, { message: 'again' });
    assert.equal(r.status, 202, r.text);
    const done = await until(async () => {
      const x = await api(a.url, 'GET', `/api/sessions/${sid}`);
      return x.body.status === 'idle' && x.body.last_run && x.body.last_run.id === r.body.id ? x.body : null;
    }, 20000);
    assert.equal(done.last_run.stop_reason, 'completed');
    const list = (await api(b.url, 'GET', `/api/sessions/${sid}/approvals`)).body.approvals;
    assert.deepEqual(list.map((x) => [x.status, x.decided_by, x.decision_reason]),
      [['denied', 'local', 'never here'], ['denied', 'remembered', 'never here']]);
    const tools = (await api(a.url, 'GET', `/api/sessions/${sid}/tools`)).body.tool_executions;
    assert.deepEqual(tools.map((t) => t.status), ['denied', 'denied']);
  });

  test('a decision on A first makes the second one, on B, 409 with the approval', async () => {
    const { sid, item } = await waiting('approvals',
      [{ tool_calls: [{ name: 'calc', arguments: { expression: '1+1' }, id: 'c2' }] }, { text: 'Two.' }]);
    const ok = await api(a.url, 'POST', `/api/sessions/${sid}/approvals/${item.id}`, { decision: 'deny' });
    assert.equal(ok.status, 200, ok.text);
    const late = await api(b.url, 'POST', `/api/sessions/${sid}/approvals/${item.id}`, { decision: 'approve' });
    assert.equal(late.status, 409, late.text);
    assert.deepEqual(Object.keys(late.body), ['error', 'approval']);
    assert.equal(late.body.approval.status, 'denied');
    await idle(sid);
  });

  test('an answer given on B reaches the tool of the run A owns; a second answer on A is 409', async () => {
    const { sid, item } = await waiting('inputs',
      [{ tool_calls: [{ name: 'everything__trigger-elicitation-request', arguments: {}, id: 'q1' }] }, { text: 'Thanks.' }]);
    assert.equal(item.server, 'everything');
    const ok = await api(b.url, 'POST', `/api/sessions/${sid}/inputs/${item.id}`,
      { action: 'accept', content: { name: 'Grace Hopper', integer: 3 } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.id, item.id);
    assert.equal(ok.body.status, 'accepted');
    assert.deepEqual(ok.body.content, { name: 'Grace Hopper', integer: 3 });
    const bad = await api(b.url, 'POST', `/api/sessions/${sid}/inputs/${item.id}`, { action: 'accept', content: {} });
    assert.equal(bad.status, 409, bad.text);
    await heardOf(item.id); // before A is sent an answer itself, as above
    const again = await api(a.url, 'POST', `/api/sessions/${sid}/inputs/${item.id}`, { action: 'decline' });
    assert.equal(again.status, 409, again.text);
    assert.equal(again.body.error.code, 'already_decided');
    assert.equal(again.body.input.status, 'accepted');
    const done = await idle(sid);
    assert.equal(done.last_run.stop_reason, 'completed');
    const tools = (await api(a.url, 'GET', `/api/sessions/${sid}/tools`)).body.tool_executions;
    assert.match(tools[0].result, /- Name: Grace Hopper/);
    assert.match(tools[0].result, /- Favorite Integer: 3/);
    const answered = (await events(sid)).filter((e) => e.type === 'input_answered');
    assert.equal(answered.length, 1);
    assert.equal(answered[0].action, 'accept');
    assert.equal(answered[0].answered_by, 'local');
    assert.deepEqual(answered[0].content, { name: 'Grace Hopper', integer: 3 });
  });

  test('an answer whose form does not fit is 400 on B too, and changes nothing', async () => {
    const { sid, item } = await waiting('inputs',
      [{ tool_calls: [{ name: 'everything__trigger-elicitation-request', arguments: {}, id: 'q2' }] }, { text: 'Ok.' }]);
    const bad = await api(b.url, 'POST', `/api/sessions/${sid}/inputs/${item.id}`, { action: 'accept', content: { name: 1 } });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.error.message, 'content.name must be a string');
    const dec = await api(b.url, 'POST', `/api/sessions/${sid}/inputs/${item.id}`, { action: 'decline' });
    assert.equal(dec.status, 200, dec.text);
    assert.equal(dec.body.status, 'declined');
    await idle(sid);
    const tools = (await api(a.url, 'GET', `/api/sessions/${sid}/tools`)).body.tool_executions;
    assert.match(tools[0].result, /User declined/);
  });
});
