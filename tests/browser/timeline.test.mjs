// The timeline's grouping by run (web/timeline.js) and the runs the state
// keeps (web/state.js), under Node: groups newest first, executions and
// waiting approvals in their own run's group, and the header's words.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createSessionState, loadSnapshot, loadApprovals, applyEvent } from '../../web/state.js';
import { groupTimeline, runStateText, runUsageText } from '../../web/timeline.js';

const LIMITS = { steps: 10, seconds: 120, tokens: 50000, tool_calls: 15, retries: 3, cost_usd: null };
const USAGE = { steps: 2, seconds: 1.234, tokens: 1606, tool_calls: 1, retries: 0, cost_usd: 0 };
const session = (fields = {}) => ({ id: 's1', title: 't', mode: 'standard', status: 'idle', active_run_id: null, last_seq: 40, last_run: null, ...fields });
const run = (id, fields = {}) => ({ id, mode: 'standard', status: 'stopped', stop_reason: 'completed', stop_tone: 'good', limits: LIMITS, usage: USAGE, actions: [], started_at: '2026-11-24T10:00:00.000Z', ...fields });
const tool = (id, runId) => ({ id, run_id: runId, step: 1, server: 'builtin', tool: 'calc', arguments: { expression: '1+1' }, status: 'ok', result: '2', error: null, duration_ms: 1, started_at: 'x' });

let seq = 40;
const ev = (type, runId, fields = {}) => ({ type, seq: ++seq, session_id: 's1', run_id: runId, ts: '2026-11-24T10:01:00.000Z', ...fields });

test('a snapshot\'s runs make the groups, newest first, each with its own executions', () => {
  const st = loadSnapshot(createSessionState('s1'), {
    session: session(),
    tools: [tool('e1', 'r1'), tool('e2', 'r1'), tool('e3', 'r2')],
    runs: [run('r2', { mode: 'quick' }), run('r1', { stop_reason: 'loop_detected', stop_tone: 'bad' })],
  });
  assert.equal(st.run, st.runs[0]);
  const groups = groupTimeline(st);
  assert.deepEqual(groups.map((g) => [g.id, g.number, g.items.map((t) => t.id)]), [['r2', 2, ['e3']], ['r1', 1, ['e1', 'e2']]]);
  assert.deepEqual(runStateText(st, st.runs[1]), ['Stopped a loop', 'bad']);
  assert.deepEqual(runStateText(st, st.runs[0]), ['Finished', 'good']);
  assert.equal(runUsageText(USAGE), '2 steps · 1,606 tokens · 1 tool call · 1.2 s');
  assert.equal(runUsageText({ ...USAGE, steps: 1, tokens: 1, tool_calls: 0, cost_usd: 0.0123 }), '1 step · 1 token · 0 tool calls · 1.2 s · $0.012');
});

test('a run that starts goes first and says it runs, then waits; its stop updates the same group', () => {
  const st = loadSnapshot(createSessionState('s1'), { session: session(), tools: [tool('e1', 'r1')], runs: [run('r1')] });
  seq = 40;
  assert.ok(applyEvent(st, ev('run_started', 'r2', { mode: 'deep', limits: LIMITS })).includes('timeline'));
  assert.deepEqual(st.runs.map((r) => r.id), ['r2', 'r1']);
  assert.equal(st.run, st.runs[0]);
  applyEvent(st, ev('tool_started', 'r2', { execution_id: 'e2', step: 1, server: 'builtin', tool: 'calc', arguments: {} }));
  let groups = groupTimeline(st);
  assert.deepEqual(groups.map((g) => [g.id, g.items.map((t) => t.id)]), [['r2', ['e2']], ['r1', ['e1']]]);
  assert.deepEqual(runStateText(st, st.run), ['Running', 'running']);

  applyEvent(st, ev('approval_requested', 'r2', { approval_id: 'a1', execution_id: 'e3', step: 2, server: 'builtin', tool: 'calc', arguments: {}, reason: 'rule calc' }));
  applyEvent(st, ev('status', 'r2', { status: 'waiting_for_approval', detail: 'calc' }));
  groups = groupTimeline(st);
  assert.deepEqual(groups.map((g) => [g.id, g.pending.map((a) => a.id)]), [['r2', ['a1']], ['r1', []]]);
  assert.deepEqual(runStateText(st, st.run), ['Waiting for your approval', 'waiting']);

  const areas = applyEvent(st, ev('run_stopped', 'r2', { reason: 'user_stopped', detail: 'stopped by local', actions: [], usage: USAGE }));
  assert.ok(areas.includes('timeline'));
  assert.deepEqual(st.runs.map((r) => [r.id, r.status, r.stop_reason]), [['r2', 'stopped', 'user_stopped'], ['r1', 'stopped', 'completed']]);
  assert.deepEqual(runStateText(st, st.run), ['Stopped by you', 'neutral']);
  assert.deepEqual(groupTimeline(st).map((g) => g.pending.length), [0, 0]);
});

test('a replayed run_started replaces its run, and a call of a run not heard of yet gets a group on top', () => {
  const st = loadSnapshot(createSessionState('s1'), {
    session: session({ status: 'running', active_run_id: 'r2' }),
    runs: [run('r2', { status: 'running', stop_reason: null, stop_tone: null }), run('r1')],
  });
  seq = 0;
  applyEvent(st, ev('run_started', 'r2', { mode: 'standard', limits: LIMITS }));
  assert.deepEqual(st.runs.map((r) => r.id), ['r2', 'r1']);
  assert.equal(st.run, st.runs[0]);
  loadApprovals(st, [{ id: 'a9', run_id: 'r3', execution_id: 'e9', step: 1, server: 'builtin', tool: 'calc', arguments: {}, reason: 'x', status: 'pending' }]);
  const groups = groupTimeline(st);
  assert.deepEqual(groups.map((g) => [g.id, g.number, g.run && g.run.id, g.pending.length]), [['r3', null, null, 1], ['r2', 2, 'r2', 0], ['r1', 1, 'r1', 0]]);
});

test('a queued run has no group until it starts, and the run working stays the chat\'s run', () => {
  const st = loadSnapshot(createSessionState('s1'), {
    session: session({ status: 'running', active_run_id: 'r1', queued_run_id: 'r2' }),
    tools: [tool('e1', 'r1')],
    runs: [run('r2', { status: 'queued', stop_reason: null, stop_tone: null }), run('r1', { status: 'running', stop_reason: null, stop_tone: null })],
  });
  assert.equal(st.run.id, 'r1');
  assert.deepEqual(groupTimeline(st).map((g) => [g.id, g.number, g.items.length]), [['r1', 1, 1]]);
  assert.deepEqual(runStateText(st, st.run), ['Running', 'running']);
  seq = 0;
  applyEvent(st, ev('run_stopped', 'r1', { reason: 'completed', detail: 'answered', actions: [], usage: USAGE }));
  applyEvent(st, ev('run_started', 'r2', { mode: 'standard', limits: LIMITS }));
  assert.deepEqual(st.runs.map((r) => [r.id, r.status]), [['r2', 'running'], ['r1', 'stopped']]);
  assert.deepEqual(groupTimeline(st).map((g) => [g.id, g.number]), [['r2', 2], ['r1', 1]]);
});
