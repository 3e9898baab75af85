// The server's health (docs/health.md) in the header: a dot that is green,
// amber or red (data-state ok, degraded, down) and a panel it opens that
// lists the model providers, the tool servers and the store with their
// state and last error. GET /api/health is asked when the page starts,
// every HEALTH_POLL_MS while the tab is visible, when the panel opens and
// after a run stopped.

import { h, clear } from './dom.js';

const HEALTH_POLL_MS = 15000;
const STATE_TONES = { ok: 'good', ready: 'good', degraded: 'warn', starting: 'warn', restarting: 'warn', unknown: 'none', down: 'bad', failed: 'bad', unauthorized: 'bad' };
const STATUS_LABELS = { ok: 'Healthy', degraded: 'Degraded', down: 'Down' };

function row(testid, name, state, lines) {
  return h('li', { class: 'health-row', 'data-testid': testid, 'data-name': name, 'data-state': state },
    h('span', { class: 'dot', 'data-tone': STATE_TONES[state] || 'none', 'aria-hidden': 'true' }),
    h('div', { class: 'health-row-body' },
      h('div', { class: 'health-row-head' }, h('strong', null, name), h('span', { class: 'health-state' }, state)),
      lines.filter(Boolean).map((l) => h('p', { class: 'health-line muted' }, l))));
}

function section(title, items) {
  return h('section', { class: 'health-section' }, h('h3', null, title),
    items.length ? h('ul', { class: 'health-list' }, items) : h('p', { class: 'muted health-line' }, 'None configured.'));
}

export function createHealth({ button, panel, body, fetchHealth }) {
  let last = null;
  let inFlight = null;

  function draw(hl) {
    last = hl;
    button.dataset.state = hl.status;
    button.querySelector('.dot').dataset.tone = STATE_TONES[hl.status];
    button.querySelector('.health-label').textContent = STATUS_LABELS[hl.status] || hl.status;
    button.title = `Server health: ${STATUS_LABELS[hl.status] || hl.status}`;
    if (panel.hidden) return;
    clear(body);
    body.append(
      section('Models', hl.llm.map((p) => row('health-llm', p.name, p.state, [
        `${p.kind} · ${p.model}`,
        `${p.requests_5m} request${p.requests_5m === 1 ? '' : 's'} in 5 min, ${p.errors_5m} failed` + (p.first_token_ms_p50 !== null ? `; first token in ${p.first_token_ms_p50} ms (median)` : ''),
        p.circuit === 'open' ? 'Resting after repeated failures' : null,
        p.last_error ? `Last error: ${p.last_error}` : null,
      ]))),
      section('Tool servers', hl.mcp.map((s) => row('health-mcp', s.name, s.state, [
        `${s.transport} · ${s.tools} tool${s.tools === 1 ? '' : 's'}` + (s.restarts ? ` · restarted ${s.restarts} time${s.restarts === 1 ? '' : 's'}` : ''),
        s.last_error ? `Last error: ${s.last_error}` : null,
      ]))),
      section('Store', [row('health-store', hl.store.backend, hl.store.state, [`Commits take ${hl.store.commit_ms_p99.toFixed(1)} ms or less (99th percentile)`])]),
      h('p', { class: 'muted health-line', 'data-testid': 'health-runs' },
        `${hl.runs.active} run${hl.runs.active === 1 ? '' : 's'} active; stopped in the last hour: ` +
        (Object.entries(hl.runs.stopped_1h).map(([k, v]) => `${k} ${v}`).join(', ') || 'none')),
    );
  }

  async function refresh() {
    if (inFlight) return inFlight;
    inFlight = (async () => {
      try {
        draw(await fetchHealth());
      } catch {
        // The connection notice and the login form say why; the dot keeps
        // its last state.
      } finally {
        inFlight = null;
      }
    })();
    return inFlight;
  }

  function setOpen(open) {
    panel.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    if (open) {
      if (last) draw(last);
      refresh();
      panel.focus();
    }
  }

  button.addEventListener('click', () => setOpen(panel.hidden));
  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      setOpen(false);
      button.focus();
    }
  });
  setInterval(() => {
    if (document.visibilityState === 'visible') refresh();
  }, HEALTH_POLL_MS);

  return { refresh, close: () => setOpen(false) };
}
