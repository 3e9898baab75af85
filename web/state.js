// The state of one open session, kept in step with the server by the typed
// events of docs/events.md. No DOM here: the panels read this state and
// draw it, and tests drive it with plain event objects.
//
// Every change is idempotent: messages are keyed by id, tool executions by
// execution id, notices by seq, and events at or below lastSeq are ignored.
// So reading the session's messages, timeline and runs and then replaying
// events the snapshot already holds never shows anything twice.

export const DIMENSIONS = ['steps', 'seconds', 'tokens', 'tool_calls', 'retries', 'cost_usd'];

export const RUNNING_STATUSES = new Set(['thinking', 'responding', 'tool_running', 'retrying', 'stopping', 'waiting_for_approval', 'waiting_for_input']);

// How many events before the snapshot's last_seq a session that is running
// when opened replays, so that the text already streamed and the current
// status show up.
export const JOIN_REPLAY = 400;

const zeroUsage = () => ({ steps: 0, seconds: 0, tokens: 0, tool_calls: 0, retries: 0, cost_usd: 0 });

export function createSessionState(id) {
  return {
    id,
    session: null,
    lastSeq: 0,
    messages: [],
    messageIndex: new Map(),
    timeline: [],
    timelineIndex: new Map(),
    // Tool calls that asked a person (docs/runs.md, Approvals), oldest
    // first, keyed by approval id: pending ones wait for the page's answer.
    approvals: [],
    approvalIndex: new Map(),
    // Questions of tool servers (docs/runs.md, Questions), oldest first,
    // keyed by input id: a pending one waits for the page's answer.
    inputs: [],
    inputIndex: new Map(),
    // Every run of the chat, newest first (docs/api.md, Run); run is the
    // newest, the same object as runs[0].
    runs: [],
    run: null,
    // The run waiting for the active one to stop (a run with status
    // "queued", docs/runs.md, Queue and interrupt): {runId, text}, kept by
    // queue.js from the run_queued event until its run's first event.
    queued: null,
    status: 'idle',
    detail: null,
    runStartedAt: null,
    budget: null,
    // What the events of the running run show before its next budget event:
    // the steps begun (a "thinking" status that is not a retry).
    live: { runId: null, steps: 0 },
    // Bumped on each change, per area, so panels redraw only what changed.
    version: { messages: 0, timeline: 0, status: 0, budget: 0, idle: 0, session: 0, approvals: 0, inputs: 0 },
  };
}

function touch(st, ...areas) {
  for (const a of areas) st.version[a]++;
  return areas;
}

function tsMs(ts) {
  const n = Date.parse(ts);
  return Number.isFinite(n) ? n : null;
}

function upsertMessage(st, m) {
  const cur = st.messageIndex.get(m.id);
  if (cur) {
    Object.assign(cur, m);
    return cur;
  }
  st.messages.push(m);
  st.messageIndex.set(m.id, m);
  return m;
}

function removeMessage(st, id) {
  if (!st.messageIndex.has(id)) return false;
  st.messageIndex.delete(id);
  st.messages = st.messages.filter((m) => m.id !== id);
  return true;
}

function upsertItem(st, item) {
  const cur = st.timelineIndex.get(item.id);
  if (cur) {
    Object.assign(cur, item);
    return cur;
  }
  st.timeline.push(item);
  st.timelineIndex.set(item.id, item);
  return item;
}

function upsertApproval(st, a) {
  const cur = st.approvalIndex.get(a.id);
  if (cur) {
    Object.assign(cur, a);
    return cur;
  }
  st.approvals.push(a);
  st.approvalIndex.set(a.id, a);
  return a;
}

// Adds approvals as GET /api/sessions/{id}/approvals lists them, so a
// reload while a run waits shows the pending card again.
export function loadApprovals(st, list = []) {
  for (const a of list) {
    upsertApproval(st, {
      id: a.id,
      run_id: a.run_id,
      execution_id: a.execution_id,
      step: a.step,
      server: a.server,
      tool: a.tool,
      arguments: a.arguments,
      reason: a.reason,
      status: a.status,
      decided_by: a.decided_by ?? null,
      decision_reason: a.decision_reason ?? null,
      remember: a.remember ?? 'once',
      expires_at: a.expires_at ?? null,
    });
  }
  // The snapshot says only that the run is going: a pending approval says
  // what it is doing, until the replayed or live events say more.
  const p = pendingApproval(st);
  if (p && st.status === 'thinking') {
    st.status = 'waiting_for_approval';
    st.detail = p.tool;
    return touch(st, 'approvals', 'status');
  }
  return touch(st, 'approvals');
}

function upsertInput(st, x) {
  const cur = st.inputIndex.get(x.id);
  if (cur) {
    Object.assign(cur, x);
    return cur;
  }
  st.inputs.push(x);
  st.inputIndex.set(x.id, x);
  return x;
}

// Adds inputs as GET /api/sessions/{id}/inputs lists them, so a reload
// while a tool's server waits shows the pending form again.
export function loadInputs(st, list = []) {
  for (const x of list) {
    upsertInput(st, {
      id: x.id,
      run_id: x.run_id,
      execution_id: x.execution_id,
      server: x.server,
      message: x.message,
      schema: x.schema,
      status: x.status,
      content: x.content ?? null,
      answered_by: null,
      expires_at: x.expires_at ?? null,
    });
  }
  const p = pendingInput(st);
  if (p && st.status === 'thinking') {
    st.status = 'waiting_for_input';
    st.detail = p.server;
    return touch(st, 'inputs', 'status');
  }
  return touch(st, 'inputs');
}

// The question a person has to answer now, if any.
export function pendingInput(st) {
  return (st && st.inputs.find((x) => x.status === 'pending')) || null;
}

// The status an input_answered event leaves: what the server was sent,
// and for a cancel whether it was the time-out.
function answeredStatus(ev) {
  if (ev.action === 'accept') return 'accepted';
  if (ev.action === 'decline') return 'declined';
  return ev.answered_by === 'timeout' ? 'expired' : 'cancelled';
}

// The approval a person has to answer now, if any (calls are asked one at
// a time).
export function pendingApproval(st) {
  return (st && st.approvals.find((a) => a.status === 'pending')) || null;
}

function runFromApi(r) {
  return {
    id: r.id,
    mode: r.mode,
    status: r.status,
    stop_reason: r.stop_reason,
    stop_tone: r.stop_tone ?? null,
    stop_detail: r.stop_detail,
    recovery_suggestion: r.recovery_suggestion,
    diagnosis: r.diagnosis ?? null,
    actions: r.actions || [],
    wrapped_up: !!r.wrapped_up,
    limits: r.limits,
    usage: r.usage,
    started_at: r.started_at,
    ended_at: r.ended_at,
    continues: r.continues,
  };
}

function toolFromApi(t) {
  return {
    kind: 'tool',
    id: t.id,
    run_id: t.run_id,
    step: t.step,
    server: t.server,
    tool: t.tool,
    arguments: t.arguments,
    status: t.status,
    result: t.result,
    error: t.error,
    truncated: false,
    duration_ms: t.duration_ms,
    started_at: t.started_at,
    progress: null,
  };
}

// Makes run the chat's newest run: it replaces the entry of the same id
// (a replayed run_started) or goes first.
function putRun(st, run) {
  const k = st.runs.findIndex((r) => r.id === run.id);
  if (k >= 0) st.runs[k] = run;
  else st.runs.unshift(run);
  st.run = run;
  return run;
}

// Fills st from the API: the session object, its messages (oldest first),
// its tool executions (oldest first) and its runs (newest first).
export function loadSnapshot(st, { session, messages = [], tools = [], runs = [] }) {
  st.session = session;
  for (const m of messages) {
    upsertMessage(st, {
      id: m.id,
      run_id: m.run_id,
      role: m.role,
      content: m.content ?? '',
      tool_calls: m.tool_calls,
      partial: !!m.partial,
      superseded: !!m.superseded,
      streaming: false,
    });
  }
  for (const t of tools) upsertItem(st, toolFromApi(t));
  st.runs = runs.map(runFromApi);
  // A queued run (docs/runs.md, Queue and interrupt) is newer than the one
  // working, but the chat's run is the one working until the queued starts.
  st.run = st.runs.find((r) => r.status !== 'queued') || null;
  if (!st.run && session.last_run) putRun(st, runFromApi(session.last_run));
  const running = session.status === 'running' || (st.run && st.run.status === 'running');
  if (running) {
    st.status = 'thinking';
    st.detail = null;
    st.runStartedAt = st.run ? tsMs(st.run.started_at) : null;
  } else {
    st.status = 'idle';
    st.detail = null;
    st.runStartedAt = null;
  }
  st.budget = st.run ? { limits: st.run.limits, usage: st.run.usage, warnings: [], preview: null } : null;
  const seq = session.last_seq || 0;
  st.lastSeq = running ? Math.max(0, seq - JOIN_REPLAY) : seq;
  touch(st, 'messages', 'timeline', 'status', 'budget', 'idle', 'session', 'approvals', 'inputs');
  return st;
}

// Applies one event; returns the names of the areas it changed.
export function applyEvent(st, ev) {
  if (typeof ev.seq === 'number') {
    if (ev.seq <= st.lastSeq) return [];
    st.lastSeq = ev.seq;
  }
  if (st.session) st.session.last_seq = Math.max(st.session.last_seq || 0, ev.seq || 0);
  switch (ev.type) {
    case 'message': {
      const cur = st.messageIndex.get(ev.message_id);
      upsertMessage(st, {
        id: ev.message_id,
        run_id: ev.run_id,
        role: ev.role,
        content: ev.content ?? '',
        tool_calls: ev.tool_calls ?? null,
        partial: !!ev.partial,
        streaming: false,
      });
      const areas = ['messages'];
      if (ev.role === 'user' && !cur) areas.push('session');
      return touch(st, ...areas);
    }
    case 'token': {
      const cur = st.messageIndex.get(ev.message_id);
      if (cur && !cur.streaming) return []; // already complete
      if (cur) cur.content += ev.text;
      else upsertMessage(st, { id: ev.message_id, run_id: ev.run_id, role: 'assistant', content: ev.text, tool_calls: null, partial: false, streaming: true });
      return touch(st, 'messages', 'budget');
    }
    case 'run_started': {
      putRun(st, {
        id: ev.run_id,
        mode: ev.mode,
        status: 'running',
        stop_reason: null,
        stop_tone: null,
        stop_detail: null,
        recovery_suggestion: null,
        diagnosis: null,
        actions: [],
        wrapped_up: false,
        limits: ev.limits,
        usage: zeroUsage(),
        started_at: ev.ts,
        ended_at: null,
        continues: ev.continues ?? null,
      });
      st.status = 'thinking';
      st.detail = null;
      st.runStartedAt = tsMs(ev.ts) ?? Date.now();
      st.budget = { limits: ev.limits, usage: zeroUsage(), warnings: [], preview: null };
      st.live = { runId: ev.run_id, steps: 0 };
      if (st.session) {
        st.session.status = 'running';
        st.session.active_run_id = ev.run_id;
        st.session.mode = ev.mode;
      }
      return touch(st, 'status', 'budget', 'idle', 'session', 'timeline');
    }
    case 'status': {
      // Each step starts with "thinking"; a retry of the same step comes
      // after "retrying" and is not a new step.
      const areas = ['status'];
      if (ev.status === 'thinking' && st.status !== 'retrying' && st.run && st.run.id === ev.run_id) {
        if (st.live.runId !== ev.run_id) st.live = { runId: ev.run_id, steps: 0 };
        st.live.steps++;
        areas.push('budget');
      }
      st.status = ev.status;
      st.detail = ev.detail ?? null;
      if (st.runStartedAt === null) st.runStartedAt = tsMs(ev.ts);
      return touch(st, ...areas);
    }
    case 'tool_started':
      // A replayed start of an execution already known changes nothing.
      if (st.timelineIndex.has(ev.execution_id)) return [];
      upsertItem(st, {
        kind: 'tool',
        id: ev.execution_id,
        run_id: ev.run_id,
        step: ev.step,
        server: ev.server,
        tool: ev.tool,
        arguments: ev.arguments,
        status: 'running',
        result: null,
        error: null,
        truncated: false,
        duration_ms: null,
        started_at: ev.ts,
        progress: null,
      });
      return touch(st, 'timeline', 'budget');
    case 'tool_progress': {
      const t = st.timelineIndex.get(ev.execution_id);
      if (!t || t.status !== 'running') return [];
      t.progress = { progress: ev.progress, total: ev.total ?? null, message: ev.message ?? null };
      return touch(st, 'timeline');
    }
    case 'tool_finished':
      upsertItem(st, {
        kind: 'tool',
        id: ev.execution_id,
        run_id: ev.run_id,
        step: ev.step,
        server: ev.server,
        tool: ev.tool,
        status: ev.status,
        result: ev.result,
        error: ev.error ?? null,
        truncated: !!ev.truncated,
        duration_ms: ev.duration_ms,
        progress: null,
      });
      return touch(st, 'timeline');
    case 'approval_requested':
      upsertApproval(st, {
        id: ev.approval_id,
        run_id: ev.run_id,
        execution_id: ev.execution_id,
        step: ev.step,
        server: ev.server,
        tool: ev.tool,
        arguments: ev.arguments,
        reason: ev.reason,
        status: 'pending',
        decided_by: null,
        decision_reason: null,
        remember: 'once',
        expires_at: ev.expires_at ?? null,
      });
      return touch(st, 'approvals');
    case 'approval_decided': {
      // A remembered decision has no request before it: nothing to show.
      const a = st.approvalIndex.get(ev.approval_id);
      if (!a) return [];
      Object.assign(a, { status: ev.decision, decided_by: ev.decided_by ?? null, decision_reason: ev.reason ?? null, remember: ev.remember ?? 'once' });
      return touch(st, 'approvals');
    }
    case 'input_requested':
      upsertInput(st, {
        id: ev.input_id,
        run_id: ev.run_id,
        execution_id: ev.execution_id,
        server: ev.server,
        message: ev.message,
        schema: ev.schema,
        status: 'pending',
        content: null,
        answered_by: null,
        expires_at: ev.expires_at ?? null,
      });
      return touch(st, 'inputs');
    case 'input_answered': {
      const x = st.inputIndex.get(ev.input_id);
      if (!x) return [];
      Object.assign(x, { status: answeredStatus(ev), content: ev.content ?? null, answered_by: ev.answered_by ?? null });
      return touch(st, 'inputs');
    }
    case 'budget':
      st.budget = { limits: ev.limits, usage: ev.usage, warnings: ev.warnings || [], preview: null };
      if (st.run && st.run.id === ev.run_id) {
        st.run.limits = ev.limits;
        st.run.usage = ev.usage;
      }
      return touch(st, 'budget');
    case 'superseded':
      // A regenerate replaced these: they stay, shown as an earlier answer.
      for (const id of ev.message_ids || []) {
        const m = st.messageIndex.get(id);
        if (m) m.superseded = true;
      }
      return touch(st, 'messages');
    case 'repair':
      // Shown between the messages where it happened (docs/page.md).
      upsertMessage(st, { id: 'repair-' + ev.seq, run_id: ev.run_id, role: 'repair', playbook: ev.playbook, action: ev.action, detail: ev.detail, outcome: ev.outcome, content: '', tool_calls: null, partial: false, streaming: false });
      return touch(st, 'messages');
    case 'guardrail':
      upsertItem(st, { kind: 'guardrail', id: 'guardrail-' + ev.seq, run_id: ev.run_id, check: ev.check, action: ev.action, detail: ev.detail, evidence: ev.evidence });
      return touch(st, 'timeline');
    case 'error': {
      const areas = ['timeline'];
      if (ev.message_id && removeMessage(st, ev.message_id)) areas.push('messages');
      upsertItem(st, { kind: 'error', id: 'error-' + ev.seq, run_id: ev.run_id, code: ev.code, message: ev.message, retryable: !!ev.retryable });
      return touch(st, ...areas);
    }
    case 'run_stopped': {
      const areas = ['status', 'budget', 'idle', 'session', 'timeline'];
      if (!st.run || st.run.id !== ev.run_id) {
        const known = st.runs.find((r) => r.id === ev.run_id);
        putRun(st, known || { id: ev.run_id, mode: st.session?.mode ?? null, limits: st.budget?.limits ?? null, started_at: null, continues: null });
      }
      Object.assign(st.run, {
        status: 'stopped',
        stop_reason: ev.reason,
        stop_tone: null, // the event has none: stopTone falls back to the reason
        stop_detail: ev.detail,
        recovery_suggestion: ev.recovery_suggestion,
        diagnosis: ev.diagnosis ?? null,
        actions: ev.actions || [],
        wrapped_up: !!ev.wrapped_up,
        usage: ev.usage ?? st.run.usage,
        ended_at: ev.ts,
      });
      st.status = 'idle';
      st.detail = null;
      st.runStartedAt = null;
      if (st.run.limits) st.budget = { limits: st.run.limits, usage: st.run.usage, warnings: st.budget?.warnings || [], preview: null };
      // Text of this run that never became a stored message is gone.
      const before = st.messages.length;
      st.messages = st.messages.filter((m) => !(m.streaming && m.run_id === ev.run_id));
      if (st.messages.length !== before) {
        st.messageIndex = new Map(st.messages.map((m) => [m.id, m]));
        areas.push('messages');
      }
      // An approval still pending was cancelled or expired with the run.
      for (const a of st.approvals) {
        if (a.status === 'pending' && a.run_id === ev.run_id) {
          a.status = ev.reason === 'approval_timeout' ? 'expired' : 'cancelled';
          areas.push('approvals');
        }
      }
      // A question still pending was cancelled with the run.
      for (const x of st.inputs) {
        if (x.status === 'pending' && x.run_id === ev.run_id) {
          x.status = 'cancelled';
          areas.push('inputs');
        }
      }
      // Executions still marked running were cancelled with the run.
      for (const t of st.timeline) {
        if (t.kind === 'tool' && t.status === 'running' && t.run_id === ev.run_id) {
          t.status = 'cancelled';
          areas.push('timeline');
        }
      }
      if (st.session) {
        st.session.status = 'idle';
        st.session.active_run_id = null;
        st.session.last_run = { ...st.run };
      }
      return touch(st, ...new Set(areas));
    }
    default:
      return [];
  }
}

// Shows the limits of another mode in the budget display while no run is
// going, so a mode switch shows at once what the next run may use.
export function previewMode(st, mode) {
  if (isRunning(st) || !mode) return [];
  st.budget = { limits: mode.limits, usage: zeroUsage(), warnings: [], preview: mode.name };
  return touch(st, 'budget');
}

// The bytes of a string in UTF-8, for the token estimate.
const encoder = new TextEncoder();

// The usage the meters show: the last budget event's numbers, raised to
// what the run's events already show before its next budget event comes.
// The server counts a step when it starts, a tool call when it starts and
// tokens when a model call ends, but says so only after the step or the
// call: so the steps begun, the executions started and the text streamed so
// far (about 4 bytes a token, as the server estimates an unreported count)
// are laid over it. Never lower than the server's own numbers.
export function liveUsage(st) {
  const b = st && st.budget;
  if (!b) return null;
  const u = { ...zeroUsage(), ...(b.usage || {}) };
  const run = st.run;
  if (b.preview || !run) return u;
  if (st.live.runId === run.id) u.steps = Math.max(u.steps, st.live.steps);
  let started = 0;
  for (const t of st.timeline) {
    if (t.kind !== 'tool' || t.run_id !== run.id) continue;
    started++;
    if (typeof t.step === 'number') u.steps = Math.max(u.steps, t.step);
  }
  u.tool_calls = Math.max(u.tool_calls, started);
  if (isRunning(st)) {
    let bytes = 0;
    for (const m of st.messages) if (m.streaming && m.run_id === run.id) bytes += encoder.encode(m.content).length;
    u.tokens += Math.ceil(bytes / 4);
  }
  return u;
}

export function isRunning(st) {
  return st.status !== 'idle';
}

// 'ok', 'warn' (past 80 %) or 'over' (at or past the limit) for a meter.
export function meterLevel(used, limit) {
  if (limit === null || limit === undefined || !(limit > 0)) return 'ok';
  if (used >= limit) return 'over';
  if (used > limit * 0.8) return 'warn';
  return 'ok';
}
