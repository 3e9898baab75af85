// The page's session state (web/state.js) driven by plain event objects:
// what a stream of typed events turns into, and that a snapshot followed
// by events it already holds shows nothing twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createSessionState, loadSnapshot, loadApprovals, pendingApproval, loadInputs, pendingInput, applyEvent, previewMode, meterLevel, liveUsage, JOIN_REPLAY } from '../../web/state.js';

const LIMITS = { steps: 10, seconds: 120, tokens: 50000, tool_calls: 15, retries: 3, cost_usd: null };
const ZERO = { steps: 0, seconds: 0, tokens: 0, tool_calls: 0, retries: 0, cost_usd: 0 };

// A run's events as the server sends them: a user message, a tool call,
// streamed text, the stop.
function runEvents(from = 1) {
  let seq = from - 1;
  const ev = (type, fields) => ({ type, seq: ++seq, session_id: 's1', run_id: 'r1', ts: '2026-11-24T10:00:00.000Z', ...fields });
  return [
    ev('message', { message_id: 'm1', role: 'user', content: 'what is 6*7?', tool_calls: null, tool_call_id: null, partial: false }),
    ev('run_started', { mode: 'standard', limits: LIMITS, continues: null }),
    ev('status', { status: 'thinking', detail: null }),
    ev('message', { message_id: 'm2', role: 'assistant', content: '', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'calc', arguments: '{"expression":"6*7"}' } }], tool_call_id: null, partial: false }),
    ev('budget', { limits: LIMITS, usage: { ...ZERO, steps: 1, tokens: 18 }, warnings: [] }),
    ev('tool_started', { execution_id: 'e1', step: 1, server: 'builtin', tool: 'calc', arguments: { expression: '6*7' } }),
    ev('status', { status: 'tool_running', detail: 'running calc' }),
    ev('tool_progress', { execution_id: 'e1', progress: 1, total: 2, message: 'half' }),
    ev('tool_finished', { execution_id: 'e1', step: 1, server: 'builtin', tool: 'calc', status: 'ok', result: '42', truncated: false, error: null, duration_ms: 3 }),
    ev('message', { message_id: 'm3', role: 'tool', content: '42', tool_calls: null, tool_call_id: 'c1', partial: false }),
    ev('status', { status: 'responding', detail: null }),
    ev('token', { message_id: 'm4', text: '6*7 ' }),
    ev('token', { message_id: 'm4', text: '= 42.' }),
    ev('message', { message_id: 'm4', role: 'assistant', content: '6*7 = 42.', tool_calls: null, tool_call_id: null, partial: false }),
    ev('budget', { limits: LIMITS, usage: { ...ZERO, steps: 2, tokens: 36, tool_calls: 1, seconds: 0.25 }, warnings: [] }),
    ev('run_stopped', { reason: 'completed', detail: 'answered in 2 steps with 1 tool call', recovery_suggestion: 'Send a new message to go on.', actions: [], wrapped_up: false, usage: { ...ZERO, steps: 2, tokens: 36, tool_calls: 1, seconds: 0.3 } }),
  ];
}

const session = (fields = {}) => ({ id: 's1', title: 't', mode: 'standard', status: 'idle', active_run_id: null, last_seq: 0, last_run: null, ...fields });

function play(st, events) {
  const areas = [];
  for (const e of events) areas.push(applyEvent(st, e));
  return areas;
}

test('a run builds messages, timeline, status and budget', () => {
  const st = loadSnapshot(createSessionState('s1'), { session: session() });
  const events = runEvents();
  const seen = [];
  for (const e of events) {
    applyEvent(st, e);
    seen.push(st.status);
    if (e.type === 'token' && e.text === '6*7 ') {
      const m = st.messageIndex.get('m4');
      assert.deepEqual([m.content, m.streaming], ['6*7 ', true]);
    }
    if (e.type === 'tool_progress') assert.deepEqual(st.timeline[0].progress, { progress: 1, total: 2, message: 'half' });
  }
  assert.deepEqual(seen, ['idle', 'thinking', 'thinking', 'thinking', 'thinking', 'thinking', 'tool_running', 'tool_running', 'tool_running', 'tool_running', 'responding', 'responding', 'responding', 'responding', 'responding', 'idle']);
  assert.deepEqual(st.messages.map((m) => [m.id, m.role, m.content, m.streaming]), [
    ['m1', 'user', 'what is 6*7?', false],
    ['m2', 'assistant', '', false],
    ['m3', 'tool', '42', false],
    ['m4', 'assistant', '6*7 = 42.', false],
  ]);
  assert.equal(st.timeline.length, 1);
  assert.deepEqual({ ...st.timeline[0] }, { kind: 'tool', id: 'e1', run_id: 'r1', step: 1, server: 'builtin', tool: 'calc', arguments: { expression: '6*7' }, status: 'ok', result: '42', error: null, truncated: false, duration_ms: 3, started_at: '2026-11-24T10:00:00.000Z', progress: null });
  assert.deepEqual(st.budget.usage, { ...ZERO, steps: 2, tokens: 36, tool_calls: 1, seconds: 0.3 });
  assert.deepEqual([st.run.status, st.run.stop_reason, st.run.stop_detail], ['stopped', 'completed', 'answered in 2 steps with 1 tool call']);
  assert.deepEqual([st.session.status, st.session.last_seq, st.lastSeq], ['idle', 16, 16]);
  assert.equal(st.runStartedAt, null);
});

test('events already seen change nothing', () => {
  const st = loadSnapshot(createSessionState('s1'), { session: session() });
  const events = runEvents();
  play(st, events);
  const before = JSON.stringify([st.messages, st.timeline, st.run, st.budget]);
  const areas = play(st, events);
  assert.deepEqual(areas.flat(), []);
  assert.equal(JSON.stringify([st.messages, st.timeline, st.run, st.budget]), before);
});

test('a snapshot then a replay of events it holds shows each thing once', () => {
  // The snapshot the API gives after the run, then the same run's events
  // replayed (a session opened while running replays JOIN_REPLAY events).
  const st = createSessionState('s1');
  loadSnapshot(st, {
    session: session({ status: 'running', last_seq: 16 }),
    messages: [
      { id: 'm1', run_id: 'r1', role: 'user', content: 'what is 6*7?', tool_calls: null, partial: false },
      { id: 'm4', run_id: 'r1', role: 'assistant', content: '6*7 = 42.', tool_calls: null, partial: false },
    ],
    tools: [{ id: 'e1', run_id: 'r1', step: 1, server: 'builtin', tool: 'calc', arguments: { expression: '6*7' }, status: 'ok', result: '42', error: null, duration_ms: 3, started_at: 'x' }],
    runs: [{ id: 'r1', mode: 'standard', status: 'running', limits: LIMITS, usage: ZERO, actions: [], started_at: '2026-11-24T10:00:00.000Z' }],
  });
  assert.equal(st.lastSeq, Math.max(0, 16 - JOIN_REPLAY));
  assert.equal(st.status, 'thinking');
  play(st, runEvents());
  assert.deepEqual(st.messages.map((m) => m.id), ['m1', 'm4', 'm2', 'm3']);
  assert.equal(st.messageIndex.get('m4').content, '6*7 = 42.');
  assert.deepEqual(st.timeline.map((t) => [t.id, t.status, t.result]), [['e1', 'ok', '42']]);
  assert.equal(st.status, 'idle');
});

test('an idle snapshot resumes after last_seq', () => {
  const st = loadSnapshot(createSessionState('s1'), {
    session: session({ last_seq: 16 }),
    runs: [{ id: 'r1', mode: 'quick', status: 'stopped', stop_reason: 'max_steps', limits: { ...LIMITS, steps: 3 }, usage: { ...ZERO, steps: 3 }, actions: [{ kind: 'continue', label: 'Continue' }] }],
  });
  assert.deepEqual([st.lastSeq, st.status, st.run.stop_reason, st.budget.limits.steps, st.budget.usage.steps], [16, 'idle', 'max_steps', 3, 3]);
  assert.deepEqual(applyEvent(st, { type: 'status', seq: 16, status: 'thinking' }), []);
  assert.deepEqual(applyEvent(st, { type: 'status', seq: 17, status: 'thinking', detail: null, ts: 'x' }), ['status']);
});

test('a failed attempt\'s text is discarded, and a stop drops unfinished text and cancels running tools', () => {
  const st = loadSnapshot(createSessionState('s1'), { session: session() });
  const [user, started] = runEvents();
  play(st, [user, started]);
  let seq = 2;
  const ev = (type, f) => ({ type, seq: ++seq, run_id: 'r1', ts: 't', ...f });
  applyEvent(st, ev('token', { message_id: 'a1', text: 'half an ans' }));
  const areas = applyEvent(st, ev('error', { code: 'http_503', message: 'upstream busy', retryable: true, message_id: 'a1' }));
  assert.deepEqual(areas, ['timeline', 'messages']);
  assert.equal(st.messageIndex.has('a1'), false);
  assert.deepEqual(st.timeline.map((t) => [t.kind, t.id, t.message, t.retryable]), [['error', 'error-4', 'upstream busy', true]]);

  applyEvent(st, ev('tool_started', { execution_id: 'e9', step: 1, server: 'fake', tool: 'slow', arguments: {} }));
  applyEvent(st, ev('token', { message_id: 'a2', text: 'never finished' }));
  applyEvent(st, ev('guardrail', { check: 'loop', action: 'warn', detail: 'calc was called 3 times', evidence: {} }));
  applyEvent(st, ev('run_stopped', { reason: 'user_stopped', detail: 'stopped', recovery_suggestion: 'Continue.', actions: [{ kind: 'continue', label: 'Continue' }], wrapped_up: false, usage: ZERO }));
  assert.deepEqual(st.messages.map((m) => m.id), ['m1']);
  assert.deepEqual(st.timeline.map((t) => [t.id, t.status ?? t.action]), [['error-4', undefined], ['e9', 'cancelled'], ['guardrail-7', 'warn']]);
  assert.deepEqual(st.run.actions, [{ kind: 'continue', label: 'Continue' }]);
});

test('previewing another mode shows its limits only while idle', () => {
  const st = loadSnapshot(createSessionState('s1'), { session: session() });
  const deep = { name: 'deep', limits: { ...LIMITS, steps: 40 } };
  assert.deepEqual(previewMode(st, deep), ['budget']);
  assert.deepEqual([st.budget.preview, st.budget.limits.steps, st.budget.usage.steps], ['deep', 40, 0]);
  play(st, runEvents().slice(0, 3));
  assert.deepEqual(previewMode(st, deep), []);
  assert.equal(st.budget.preview, null);
});

test('meter levels: amber past 80 %, red at the limit, none without one', () => {
  assert.equal(meterLevel(0, 10), 'ok');
  assert.equal(meterLevel(8, 10), 'ok');
  assert.equal(meterLevel(8.01, 10), 'warn');
  assert.equal(meterLevel(9.99, 10), 'warn');
  assert.equal(meterLevel(10, 10), 'over');
  assert.equal(meterLevel(11, 10), 'over');
  assert.equal(meterLevel(5, null), 'ok');
  assert.equal(meterLevel(5, 0), 'ok');
});

test('the meters follow the events before the budget event: steps begun, tools started, text streamed', () => {
  const st = createSessionState('s1');
  loadSnapshot(st, { session: session() });
  const evs = runEvents();
  const upTo = (k) => play(st, evs.slice(0, k));
  upTo(3); // user message, run_started, thinking
  assert.deepEqual([liveUsage(st).steps, liveUsage(st).tokens, liveUsage(st).tool_calls], [1, 0, 0]);
  play(st, evs.slice(3, 6)); // the calls, budget (steps 1), tool_started
  assert.equal(liveUsage(st).tool_calls, 1, 'a started tool counts before its budget event');
  assert.equal(liveUsage(st).steps, 1);
  play(st, evs.slice(6, 12)); // ... the first token "6*7 " (4 bytes)
  // The second step began with no "thinking" in this script: the step of
  // the tool says 1, the budget says 1; the streamed text adds a token.
  assert.equal(liveUsage(st).tokens, 18 + 1);
  assert.equal(liveUsage(st).tool_calls, 1);
  play(st, evs.slice(12));
  assert.deepEqual(liveUsage(st), { ...ZERO, steps: 2, tokens: 36, tool_calls: 1, seconds: 0.3 });

  // A retry's "thinking" is the same step again.
  const r = createSessionState('s1');
  loadSnapshot(r, { session: session() });
  let seq = 0;
  const ev = (type, fields) => applyEvent(r, { type, seq: ++seq, session_id: 's1', run_id: 'r2', ts: '2026-11-24T10:00:00.000Z', ...fields });
  ev('run_started', { mode: 'standard', limits: LIMITS, continues: null });
  ev('status', { status: 'thinking', detail: null });
  ev('status', { status: 'retrying', detail: 'attempt 2 of 4' });
  ev('status', { status: 'thinking', detail: null });
  assert.equal(liveUsage(r).steps, 1);
  ev('token', { message_id: 'mx', text: 'x'.repeat(41) });
  assert.equal(liveUsage(r).tokens, 11);
  // Never below the server's own numbers.
  ev('budget', { limits: LIMITS, usage: { ...ZERO, steps: 3, tokens: 500, tool_calls: 2 }, warnings: [] });
  assert.deepEqual([liveUsage(r).steps, liveUsage(r).tool_calls], [3, 2]);
  // While idle with a preview, the preview's zeros.
  ev('run_stopped', { reason: 'user_stopped', detail: '', recovery_suggestion: '', actions: [], wrapped_up: false, usage: { ...ZERO, steps: 3, tokens: 520, tool_calls: 2 } });
  assert.equal(liveUsage(r).tokens, 520);
  previewMode(r, { name: 'deep', limits: LIMITS });
  assert.deepEqual(liveUsage(r), ZERO);
});

// An approval's events: requested, then decided; a remembered decision (no
// request before it) changes nothing; a replay shows nothing twice.
test('approval events keep one approval per id, pending until decided', () => {
  const st = createSessionState('s1');
  loadSnapshot(st, { session: session({ status: 'running', active_run_id: 'r1', last_seq: 2 }) });
  const ev = (seq, type, fields) => ({ type, seq, session_id: 's1', run_id: 'r1', ts: '2026-11-24T10:00:00.000Z', ...fields });
  const requested = ev(3, 'approval_requested', { approval_id: 'apr_1', execution_id: 'e1', step: 1, server: 'builtin', tool: 'calc', arguments: { expression: '1' }, reason: 'rule calc', annotations: null, expires_at: '2026-11-24T10:15:00.000Z' });
  assert.deepEqual(applyEvent(st, requested), ['approvals']);
  assert.equal(pendingApproval(st).id, 'apr_1');
  assert.deepEqual(applyEvent(st, requested), [], 'a replay changes nothing');
  assert.equal(st.approvals.length, 1);
  applyEvent(st, ev(4, 'status', { status: 'waiting_for_approval', detail: 'calc' }));
  assert.equal(st.status, 'waiting_for_approval');
  assert.deepEqual(applyEvent(st, ev(5, 'approval_decided', { approval_id: 'apr_1', decision: 'denied', decided_by: 'alice', reason: 'not now', remember: 'run' })), ['approvals']);
  assert.deepEqual(
    { status: st.approvals[0].status, by: st.approvals[0].decided_by, why: st.approvals[0].decision_reason, remember: st.approvals[0].remember },
    { status: 'denied', by: 'alice', why: 'not now', remember: 'run' });
  assert.equal(pendingApproval(st), null);
  assert.deepEqual(applyEvent(st, ev(6, 'approval_decided', { approval_id: 'apr_2', decision: 'approved', decided_by: 'remembered', reason: null, remember: 'run' })), []);
  assert.equal(st.approvals.length, 1);
});

test('a run that stops while an approval waits leaves it cancelled, or expired on approval_timeout', () => {
  for (const [reason, want] of [['user_stopped', 'cancelled'], ['approval_timeout', 'expired']]) {
    const st = createSessionState('s1');
    loadSnapshot(st, { session: session({ status: 'running', active_run_id: 'r1', last_seq: 0 }) });
    loadApprovals(st, [{ id: 'apr_1', run_id: 'r1', execution_id: 'e1', step: 1, server: 'builtin', tool: 'calc', arguments: {}, reason: 'rule calc', status: 'pending', decided_by: null, decision_reason: null, remember: 'once', expires_at: null }]);
    const areas = applyEvent(st, { type: 'run_stopped', seq: 9, run_id: 'r1', ts: '2026-11-24T10:00:00.000Z', reason, detail: '', recovery_suggestion: '', actions: [], wrapped_up: false, usage: ZERO });
    assert.ok(areas.includes('approvals'));
    assert.equal(st.approvals[0].status, want);
  }
});

// A question's events: requested, then answered, the status following
// what the server was sent and who ended it; a replay shows nothing twice.
test('input events keep one input per id, pending until answered', () => {
  const schema = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] };
  for (const [action, by, want] of [['accept', 'alice', 'accepted'], ['decline', 'alice', 'declined'], ['cancel', 'timeout', 'expired'], ['cancel', 'stop', 'cancelled'], ['cancel', 'tool', 'cancelled']]) {
    const st = createSessionState('s1');
    loadSnapshot(st, { session: session({ status: 'running', active_run_id: 'r1', last_seq: 2 }) });
    const ev = (seq, type, fields) => ({ type, seq, session_id: 's1', run_id: 'r1', ts: '2026-11-24T10:00:00.000Z', ...fields });
    const requested = ev(3, 'input_requested', { input_id: 'inp_1', execution_id: 'e1', server: 'everything', message: 'Name?', schema, expires_at: '2026-11-24T10:15:00.000Z' });
    assert.deepEqual(applyEvent(st, requested), ['inputs']);
    assert.equal(pendingInput(st).id, 'inp_1');
    assert.deepEqual(pendingInput(st).schema, schema);
    assert.deepEqual(applyEvent(st, requested), [], 'a replay changes nothing');
    applyEvent(st, ev(4, 'status', { status: 'waiting_for_input', detail: 'everything__ask' }));
    assert.equal(st.status, 'waiting_for_input');
    const content = action === 'accept' ? { name: 'Ada' } : undefined;
    assert.deepEqual(applyEvent(st, ev(5, 'input_answered', { input_id: 'inp_1', action, answered_by: by, ...(content ? { content } : {}) })), ['inputs']);
    assert.deepEqual({ status: st.inputs[0].status, by: st.inputs[0].answered_by, content: st.inputs[0].content },
      { status: want, by, content: content ?? null });
    assert.equal(pendingInput(st), null);
    assert.deepEqual(applyEvent(st, ev(6, 'input_answered', { input_id: 'inp_9', action: 'decline', answered_by: 'x' })), []);
  }
});

test('a run that stops while a question waits leaves it cancelled; a snapshot with one pending waits for it', () => {
  const st = createSessionState('s1');
  loadSnapshot(st, { session: session({ status: 'running', active_run_id: 'r1', last_seq: 0 }) });
  assert.deepEqual(loadInputs(st, [{ id: 'inp_1', run_id: 'r1', execution_id: 'e1', server: 'everything', message: 'Name?', schema: {}, status: 'pending', content: null, expires_at: null }]), ['inputs', 'status']);
  assert.equal(st.status, 'waiting_for_input');
  assert.equal(st.detail, 'everything');
  const areas = applyEvent(st, { type: 'run_stopped', seq: 9, run_id: 'r1', ts: '2026-11-24T10:00:00.000Z', reason: 'user_stopped', detail: '', recovery_suggestion: '', actions: [], wrapped_up: false, usage: ZERO });
  assert.ok(areas.includes('inputs'));
  assert.equal(st.inputs[0].status, 'cancelled');
});

test('a snapshot of a running chat with a pending approval says the run waits for it', () => {
  const st = createSessionState('s1');
  loadSnapshot(st, { session: session({ status: 'running', active_run_id: 'r1', last_seq: 5 }) });
  assert.equal(st.status, 'thinking');
  const areas = loadApprovals(st, [{ id: 'apr_1', run_id: 'r1', execution_id: 'e1', step: 1, server: 'files', tool: 'delete', arguments: { path: 'a' }, reason: 'the tool is not marked read-only', status: 'pending', expires_at: null }]);
  assert.deepEqual(areas, ['approvals', 'status']);
  assert.equal(st.status, 'waiting_for_approval');
  assert.equal(st.detail, 'delete');
  // A chat with nothing pending keeps the snapshot's status.
  const idle = createSessionState('s2');
  loadSnapshot(idle, { session: session({ id: 's2', status: 'running', active_run_id: 'r1', last_seq: 5 }) });
  assert.deepEqual(loadApprovals(idle, []), ['approvals']);
  assert.equal(idle.status, 'thinking');
});
