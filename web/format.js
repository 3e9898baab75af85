// Words and numbers as the page shows them: status labels, stop reasons in
// words, durations, budget amounts. Pure functions, shared by the panels.

export const STATUS_LABELS = {
  idle: 'Idle',
  thinking: 'Thinking',
  responding: 'Responding',
  tool_running: 'Running a tool',
  retrying: 'Retrying',
  stopping: 'Stopping',
  waiting_for_approval: 'Waiting for you',
  waiting_for_input: 'Waiting for you',
};

export const REASON_TITLES = {
  completed: 'Finished',
  user_stopped: 'Stopped by you',
  max_steps: 'Step budget used up',
  max_seconds: 'Time budget used up',
  max_tokens: 'Token budget used up',
  max_tool_calls: 'Tool-call budget used up',
  max_cost: 'Cost budget used up',
  max_retries: 'The model kept failing',
  loop_detected: 'Stopped a loop',
  repeated_failures: 'Tools kept failing',
  no_progress: 'No progress',
  llm_error: 'The model refused the request',
  interrupted: 'Interrupted',
  approval_timeout: 'Nobody answered the approval',
  owner_budget: 'Your budget is used up',
};

// The tone of a run's stop: how the page colours it. The server sends it
// as run.stop_tone (docs/api.md); a run the page built from a run_stopped
// event has none, and then the reason's tone is worked out here, by the
// same table as the server's.
const REASON_TONES = {
  completed: 'good',
  user_stopped: 'neutral',
  interrupted: 'neutral',
  max_steps: 'warn',
  max_seconds: 'warn',
  max_tokens: 'warn',
  max_tool_calls: 'warn',
  max_cost: 'warn',
  owner_budget: 'warn',
};

export function stopTone(run) {
  if (!run || !run.stop_reason) return 'neutral';
  return run.stop_tone || REASON_TONES[run.stop_reason] || 'bad';
}

export const DIMENSION_LABELS = {
  steps: 'Steps',
  seconds: 'Time',
  tokens: 'Tokens',
  tool_calls: 'Tool calls',
  retries: 'Retries',
  cost_usd: 'Cost',
};

export const CHECK_LABELS = {
  loop: 'Loop',
  repeated_failure: 'Repeated failure',
  no_progress: 'No progress',
};

const grouping = new Intl.NumberFormat('en-US');

// A budget amount of a dimension, e.g. "12,500" tokens, "4.2 s", "$0.013".
export function formatAmount(dim, v) {
  if (v === null || v === undefined) return '∞';
  if (dim === 'seconds') return v >= 100 ? `${Math.round(v)} s` : `${(Math.round(v * 10) / 10).toFixed(1)} s`;
  if (dim === 'cost_usd') return `$${v < 1 ? v.toFixed(3) : v.toFixed(2)}`;
  return grouping.format(v);
}

// The limit side of a meter: seconds without a decimal ("120 s").
export function formatLimit(dim, v) {
  if (v === null || v === undefined) return '∞';
  if (dim === 'seconds') return `${grouping.format(v)} s`;
  if (dim === 'cost_usd') return `$${v.toFixed(2)}`;
  return grouping.format(v);
}

// A duration in milliseconds as "850 ms", "4.2 s", "3 min 05 s".
export function formatDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.floor(s - m * 60);
  return `${m} min ${String(rest).padStart(2, '0')} s`;
}

// Elapsed time for the status indicator: "0:07", "12:30", "1:02:03".
export function formatElapsed(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

// "just now", "5 min ago", "3 h ago", then a date.
export function formatRelative(ts, now = Date.now()) {
  const t = Date.parse(ts);
  if (!Number.isFinite(t)) return '';
  const d = Math.max(0, now - t) / 1000;
  if (d < 45) return 'just now';
  if (d < 3600) return `${Math.round(d / 60)} min ago`;
  if (d < 86400) return `${Math.round(d / 3600)} h ago`;
  return new Date(t).toISOString().slice(0, 10);
}

// Tool arguments or results as text: JSON pretty-printed when it is JSON
// (a value, or a string holding JSON), anything else as it is.
export function prettyJson(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') {
    const s = v.trim();
    if ((s.startsWith('{') && s.endsWith('}')) || (s.startsWith('[') && s.endsWith(']'))) {
      try {
        return JSON.stringify(JSON.parse(s), null, 2);
      } catch {
        return v;
      }
    }
    return v;
  }
  return JSON.stringify(v, null, 2);
}

// One line summary of tool arguments: {"expression":"6*7"} → expression: 6*7
export function argsSummary(args) {
  if (!args || typeof args !== 'object') return '';
  const parts = Object.entries(args).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  const s = parts.join(', ');
  return s.length > 80 ? s.slice(0, 79) + '…' : s;
}
