// The run routes against the real server and the demo brain: start, stop,
// continue, the 409 and 429 errors, run-scoped streams and the seed
// system's streaming routes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { api, newSession, parseFrames, sse, startServer, until, waitIdle } from './lib/server.mjs';

const RUN_KEYS = ['id', 'session_id', 'mode', 'status', 'stop_reason', 'stop_tone', 'stop_detail', 'recovery_suggestion',
  'actions', 'diagnosis', 'wrapped_up', 'limits', 'usage', 'started_at', 'ended_at', 'continues'];

function assertError(r, status, code) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.body.error.code, code, r.text);
  assert.equal(typeof r.body.error.message, 'string');
}

describe('runs', () => {
  let srv;
  before(async () => {
    // 20 ms per streamed piece: a plain answer takes about a second.
    srv = await startServer({ env: { CHATPLANE_DEMO_DELAY_MS: '20' } });
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
  });

  test('a mode change mid-run: the stored run shows the new mode and limits at once', async () => {
    const s = await newSession(srv.url);
    const r = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'demo long' });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.body.limits.steps, 10);
    const p = await api(srv.url, 'PATCH', `/api/sessions/${s.id}`, { mode: 'deep' });
    assert.equal(p.status, 200, p.text);
    const run = await until(async () => {
      const g = await api(srv.url, 'GET', `/api/runs/${r.body.id}`);
      return g.body.limits.steps === 40 ? g.body : null;
    }, 3000);
    assert.equal(run.status, 'running');
    assert.equal(run.mode, 'deep');
    assert.equal(run.limits.tool_calls, 80);
    const stop = await api(srv.url, 'POST', `/api/sessions/${s.id}/stop`);
    assert.equal(stop.status, 202, stop.text);
    const done = await waitIdle(srv.url, s.id);
    assert.equal(done.last_run.mode, 'deep');
    assert.equal(done.last_run.stop_reason, 'user_stopped');
    const ev = await api(srv.url, 'GET', `/api/sessions/${s.id}/events`, undefined, { Accept: 'application/json' });
    const budgets = ev.body.events.filter((e) => e.type === 'budget');
    assert.ok(budgets.some((b) => b.limits.steps === 40), 'a budget event announces the new limits');
  });

  test('a run: 202 with the run, then its messages, tools, runs and events', async () => {
    const s = await newSession(srv.url);
    const r = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'what is 6*7?' });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(Object.keys(r.body), RUN_KEYS);
    assert.equal(r.body.session_id, s.id);
    assert.equal(r.body.status, 'running');
    assert.equal(r.body.stop_tone, null);
    assert.equal(r.body.mode, 'standard');
    assert.equal(r.body.continues, null);
    const done = await waitIdle(srv.url, s.id);
    assert.equal(done.title, 'what is 6*7?');
    assert.equal(done.last_run.id, r.body.id);
    assert.equal(done.last_run.stop_reason, 'completed');
    assert.equal(done.last_run.stop_tone, 'good');

    const run = await api(srv.url, 'GET', `/api/runs/${r.body.id}`);
    assert.equal(run.status, 200);
    assert.equal(run.body.status, 'stopped');
    assert.equal(run.body.usage.tool_calls, 1);
    const runs = await api(srv.url, 'GET', `/api/sessions/${s.id}/runs`);
    assert.deepEqual(runs.body.runs.map((x) => x.id), [r.body.id]);
    const msgs = await api(srv.url, 'GET', `/api/sessions/${s.id}/messages`);
    assert.deepEqual(msgs.body.messages.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant']);
    assert.equal(msgs.body.messages[0].content, 'what is 6*7?');
    assert.match(msgs.body.messages[3].content, /42/);
    const tools = await api(srv.url, 'GET', `/api/sessions/${s.id}/tools?run_id=${r.body.id}`);
    assert.equal(tools.body.tool_executions.length, 1);
    assert.equal(tools.body.tool_executions[0].tool, 'calc');
    assert.equal(tools.body.tool_executions[0].status, 'ok');
    const none = await api(srv.url, 'GET', `/api/sessions/${s.id}/tools?run_id=run_other`);
    assert.deepEqual(none.body, { tool_executions: [] });

    const ev = await api(srv.url, 'GET', `/api/sessions/${s.id}/events?after=0`, undefined, { Accept: 'application/json' });
    assert.equal(ev.status, 200);
    const events = ev.body.events;
    assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
    assert.equal(events[0].type, 'message');
    assert.equal(events[1].type, 'run_started');
    assert.equal(events.at(-1).type, 'run_stopped');
    const later = await api(srv.url, 'GET', `/api/sessions/${s.id}/events?after=${events.length - 2}`, undefined, { Accept: 'application/json' });
    assert.deepEqual(later.body.events, events.slice(-2));
  });

  test('409 run_active, then stop (202), then 409 no_active_run, then continue', async () => {
    const s = await newSession(srv.url, { title: 'kept' });
    const r1 = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'hello there' });
    assert.equal(r1.status, 202);
    const r2 = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'again' });
    assertError(r2, 409, 'run_active');
    const c = await api(srv.url, 'POST', `/api/sessions/${s.id}/continue`);
    assertError(c, 409, 'run_active');
    const st = await api(srv.url, 'POST', `/api/sessions/${s.id}/stop`);
    assert.equal(st.status, 202, st.text);
    assert.equal(st.body.id, r1.body.id);
    const idle = await waitIdle(srv.url, s.id);
    assert.equal(idle.title, 'kept');
    assert.equal(idle.last_run.stop_reason, 'user_stopped');
    assert.equal(idle.last_run.stop_tone, 'neutral');
    const st2 = await api(srv.url, 'POST', `/api/sessions/${s.id}/stop`, {});
    assertError(st2, 409, 'no_active_run');
    const cont = await api(srv.url, 'POST', `/api/sessions/${s.id}/continue`, { mode: 'quick' });
    assert.equal(cont.status, 202, cont.text);
    assert.equal(cont.body.continues, r1.body.id);
    assert.equal(cont.body.mode, 'quick');
    await waitIdle(srv.url, s.id);
  });

  test('409 nothing_to_continue for a session without a stopped run', async () => {
    const s = await newSession(srv.url);
    assertError(await api(srv.url, 'POST', `/api/sessions/${s.id}/continue`, {}), 409, 'nothing_to_continue');
    assertError(await api(srv.url, 'POST', '/api/sessions/nope/runs', { message: 'x' }), 404, 'not_found');
    assertError(await api(srv.url, 'POST', '/api/sessions/nope/stop'), 404, 'not_found');
  });

  test('POST runs with Accept: text/event-stream streams that run and ends', async () => {
    const s = await newSession(srv.url);
    const res = await sse(srv.port, `/api/sessions/${s.id}/runs`, {
      method: 'POST', body: JSON.stringify({ message: 'what is 2+3?' }),
      headers: { 'Content-Type': 'application/json' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.ended, true);
    assert.equal(res.headers['content-type'], 'text/event-stream');
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(res.headers['x-accel-buffering'], 'no');
    const frames = parseFrames(res.text);
    assert.equal(frames[0].event, 'message');
    assert.equal(frames[0].data.role, 'user');
    assert.equal(frames[1].event, 'run_started');
    assert.equal(frames.at(-1).event, 'run_stopped');
    assert.deepEqual(frames.map((f) => f.id), frames.map((_, i) => i + 1));
    const runId = frames[0].data.run_id;
    assert.ok(frames.every((f) => f.data.run_id === runId));

    // A continue streams from its run_started; other runs' events stay out.
    await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'hello' });
    await api(srv.url, 'POST', `/api/sessions/${s.id}/stop`);
    await waitIdle(srv.url, s.id);
    const cont = await sse(srv.port, `/api/sessions/${s.id}/continue`, { method: 'POST' });
    const cf = parseFrames(cont.text);
    assert.equal(cont.ended, true);
    assert.equal(cf[0].event, 'run_started');
    assert.equal(cf.at(-1).event, 'run_stopped');
    assert.ok(cf.every((f) => f.data.run_id === cf[0].data.run_id));

    // A refused start answers the error as JSON.
    await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'hello' });
    const busy = await sse(srv.port, `/api/sessions/${s.id}/runs`, {
      method: 'POST', body: JSON.stringify({ message: 'x' }), headers: { 'Content-Type': 'application/json' },
    });
    assert.equal(busy.status, 409);
    assert.equal(JSON.parse(busy.text).error.code, 'run_active');
    await api(srv.url, 'POST', `/api/sessions/${s.id}/stop`);
    await waitIdle(srv.url, s.id);
  });

  test('the seed system\'s streaming routes create a session when none is named', async () => {
    for (const route of ['/api/brain/stream', '/api/brain/unified/consult/stream']) {
      const res = await sse(srv.port, route, {
        method: 'POST', body: JSON.stringify({ message: 'what is 3*3?', mode: 'quick' }),
        headers: { 'Content-Type': 'application/json', Accept: '*/*' },
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.ended, true);
      const frames = parseFrames(res.text);
      assert.equal(frames[0].event, 'message');
      assert.equal(frames.at(-1).event, 'run_stopped');
      const sid = frames[0].data.session_id;
      const ses = await waitIdle(srv.url, sid);
      assert.equal(ses.mode, 'quick');
      assert.equal(ses.title, 'what is 3*3?');
      // Naming the session continues it.
      const again = await sse(srv.port, route, {
        method: 'POST', body: JSON.stringify({ message: 'what is 4*4?', session_id: sid }),
        headers: { 'Content-Type': 'application/json' },
      });
      const f2 = parseFrames(again.text);
      assert.equal(f2[0].data.session_id, sid);
      assert.equal(f2[0].id, frames.at(-1).id + 1);
      const missing = await sse(srv.port, route, {
        method: 'POST', body: JSON.stringify({ message: 'x', session_id: 'nope' }),
        headers: { 'Content-Type': 'application/json' },
      });
      assert.equal(missing.status, 404);
    }
  });

  test('PATCH mode during a run replaces its limits; DELETE stops the run first', async () => {
    const s = await newSession(srv.url);
    const r = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'hello' });
    assert.equal(r.status, 202);
    const p = await api(srv.url, 'PATCH', `/api/sessions/${s.id}`, { mode: 'deep' });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.body.mode, 'deep');
    await until(async () => {
      const ev = await api(srv.url, 'GET', `/api/sessions/${s.id}/events`, undefined, { Accept: 'application/json' });
      return ev.body.events.some((e) => e.type === 'budget' && e.limits.steps === 40);
    });
    const d = await api(srv.url, 'DELETE', `/api/sessions/${s.id}`);
    assert.equal(d.status, 204, d.text);
    assertError(await api(srv.url, 'GET', `/api/sessions/${s.id}`), 404, 'not_found');
    const run = await api(srv.url, 'GET', `/api/runs/${r.body.id}`);
    assert.equal(run.status, 404);
  });
});

describe('limits.active_runs', () => {
  test('429 too_many_runs past the limit', async () => {
    const srv = await startServer({ config: { limits: { active_runs: 1 } }, env: { CHATPLANE_DEMO_DELAY_MS: '50' } });
    try {
      const a = await newSession(srv.url);
      const b = await newSession(srv.url);
      assert.equal((await api(srv.url, 'POST', `/api/sessions/${a.id}/runs`, { message: 'hello' })).status, 202);
      const r = await api(srv.url, 'POST', `/api/sessions/${b.id}/runs`, { message: 'hello' });
      assertError(r, 429, 'too_many_runs');
      const runs = await api(srv.url, 'GET', `/api/sessions/${b.id}/runs`);
      assert.deepEqual(runs.body.runs, []);
      await api(srv.url, 'POST', `/api/sessions/${a.id}/stop`);
      await waitIdle(srv.url, a.id);
      assert.equal((await api(srv.url, 'POST', `/api/sessions/${b.id}/runs`, { message: 'hello' })).status, 202);
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });
});
