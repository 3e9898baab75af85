// The tool timeline, one group per run: the newest run first and open,
// earlier runs closed under a header that says their mode, how they
// stopped (or that the run goes on, or waits for the person) and what they
// used. A run opens and closes with its header, a disclosure button; a new
// run closes the one before it unless the person opened that one. Inside a
// run, each execution with its tool, server, status icon and duration,
// oldest first. An execution expands to its arguments and result
// (pretty-printed when JSON, always as text) with a button that copies
// both. Guardrail warnings and upstream errors appear in line, where they
// happened. A call waiting for the person's approval shows last in its
// run, with a button to its card.

import { h, clear } from './dom.js';
import { icon, STATUS_ICONS } from './icons.js';
import { formatDuration, formatAmount, prettyJson, argsSummary, CHECK_LABELS, REASON_TITLES, stopTone } from './format.js';
import { liveUsage, isRunning } from './state.js';
import { copyButton } from './copy.js';

const STATUS_WORDS = { running: 'running', ok: 'succeeded', error: 'failed', timeout: 'timed out', cancelled: 'cancelled', denied: 'denied' };

// The text the copy button puts on the clipboard.
export function copyText(t) {
  const parts = [`${t.server}/${t.tool} (${t.status})`, '', 'arguments:', prettyJson(t.arguments ?? {})];
  if (t.result !== null && t.result !== undefined) parts.push('', 'result:', prettyJson(t.result));
  if (t.error) parts.push('', 'error:', t.error);
  return parts.join('\n');
}

const plural = (n, one, many) => `${formatAmount('steps', n)} ${n === 1 ? one : many}`;

// What a run used, in words: "2 steps · 1,606 tokens · 3 tool calls ·
// 1.2 s", and the cost when it spent something.
export function runUsageText(u) {
  if (!u) return '';
  const parts = [plural(u.steps || 0, 'step', 'steps'), plural(u.tokens || 0, 'token', 'tokens'), plural(u.tool_calls || 0, 'tool call', 'tool calls'), formatAmount('seconds', u.seconds || 0)];
  if (u.cost_usd > 0) parts.push(formatAmount('cost_usd', u.cost_usd));
  return parts.join(' · ');
}

// Where a run is: [words, tone]. The chat's newest run, while it goes,
// says whether it waits for the person; a stopped one says why it stopped.
export function runStateText(st, run) {
  const active = run === st.run && isRunning(st);
  if (active || run.status === 'running') {
    const status = active ? st.status : 'thinking';
    if (status === 'waiting_for_approval') return ['Waiting for your approval', 'waiting'];
    if (status === 'waiting_for_input') return ['Waiting for your answer', 'waiting'];
    if (status === 'stopping') return ['Stopping', 'running'];
    return ['Running', 'running'];
  }
  return [REASON_TITLES[run.stop_reason] || run.stop_reason || 'Stopped', stopTone(run)];
}

// The timeline's groups, newest run first: {id, run, number, items,
// pending}. Runs come from st.runs, but a queued run has no group until it
// starts (the conversation shows its message waiting); an execution of a
// run the page has not heard of yet (its run_started still on the way)
// gets a group of its own on top, and an item without a run goes to the
// newest group.
export function groupTimeline(st) {
  const runs = st.runs.filter((r) => r.status !== 'queued');
  const groups = runs.map((run, k) => ({ id: run.id, run, number: runs.length - k, items: [], pending: [] }));
  const byId = new Map(groups.map((g) => [g.id, g]));
  const place = (x) => {
    let g = x.run_id ? byId.get(x.run_id) : groups[0];
    if (!g) {
      const id = x.run_id || '';
      g = { id, run: null, number: null, items: [], pending: [] };
      byId.set(id, g);
      groups.unshift(g);
    }
    return g;
  };
  for (const t of st.timeline) place(t).items.push(t);
  for (const a of st.approvals) if (a.status === 'pending') place(a).pending.push(a);
  return groups;
}

export function createTimeline({ scroll, list, empty, count, onShowApproval }) {
  const nodes = new Map(); // item id -> {li, sig}
  const waiting = new Map(); // approval id -> li of a pending approval
  const runNodes = new Map(); // run id -> {li, button, items, sig}
  const opened = new Map(); // run id -> open or closed, as the person chose
  const expanded = new Set();
  let sessionId = null;
  let last = null;

  function section(title, text, extra) {
    return h('div', { class: 'detail-section' }, h('div', { class: 'detail-title' }, title, extra || null), h('pre', { class: 'detail-pre' }, text));
  }

  function details(t) {
    const box = h('div', { class: 'tool-details', 'data-testid': 'tool-details', id: `details-${t.id}` });
    const copy = copyButton({ text: () => copyText(t) });
    box.appendChild(section('Arguments', prettyJson(t.arguments ?? {}), copy));
    if (t.status === 'running') box.appendChild(h('p', { class: 'muted detail-wait' }, 'Waiting for the result…'));
    if (t.result !== null && t.result !== undefined && t.result !== '') {
      box.appendChild(section('Result', prettyJson(t.result), t.truncated ? h('span', { class: 'muted detail-note' }, 'cut at 16 KiB') : null));
    }
    if (t.error) box.appendChild(section('Error', t.error));
    return box;
  }

  function toolItem(t) {
    const open = expanded.has(t.id);
    const head = h('button', { type: 'button', class: 'tool-head', 'aria-expanded': open ? 'true' : 'false', 'aria-controls': open ? `details-${t.id}` : null },
      h('span', { class: 'tool-status', 'data-status': t.status, title: STATUS_WORDS[t.status] || t.status }, icon(STATUS_ICONS[t.status] || 'info'), h('span', { class: 'sr-only' }, STATUS_WORDS[t.status] || t.status)),
      h('span', { class: 'tool-main' },
        h('span', { class: 'tool-line' }, h('span', { class: 'tool-name' }, t.tool), h('span', { class: 'tool-server' }, t.server)),
        h('span', { class: 'tool-args muted' }, argsSummary(t.arguments))),
      h('span', { class: 'tool-duration muted' }, t.status === 'running' ? '' : formatDuration(t.duration_ms)),
      icon('chevron', 'tool-chevron'));
    const li = h('li', { class: 'tool-execution', 'data-testid': 'tool-execution', 'data-status': t.status, 'data-tool': t.tool, 'data-execution-id': t.id }, head);
    if (t.progress) {
      const p = t.progress;
      const pct = p.total ? Math.min(100, (p.progress / p.total) * 100) : null;
      const fill = h('span', { class: 'meter-fill' });
      if (pct !== null) fill.style.width = `${pct}%`;
      li.appendChild(h('div', { class: `tool-progress${pct === null ? ' indeterminate' : ''}`, 'data-testid': 'tool-progress' },
        h('span', { class: 'meter-bar' }, fill),
        h('span', { class: 'muted' }, [p.message || '', p.total ? ` ${p.progress}/${p.total}` : ` ${p.progress}`].join('').trim())));
    }
    if (open) li.appendChild(details(t));
    head.addEventListener('click', () => {
      if (expanded.has(t.id)) expanded.delete(t.id);
      else expanded.add(t.id);
      redraw(t, true);
    });
    return li;
  }

  function noticeItem(n) {
    if (n.kind === 'guardrail') {
      const label = CHECK_LABELS[n.check] || n.check;
      return h('li', { class: `notice notice-${n.action === 'stop' ? 'bad' : 'warn'}`, 'data-testid': 'guardrail-notice' },
        icon('alert'), h('span', null, h('strong', null, `${label} ${n.action === 'stop' ? 'stop' : 'warning'}`), ' ', n.detail || ''));
    }
    return h('li', { class: `notice ${n.retryable ? 'notice-warn' : 'notice-bad'}`, 'data-testid': 'error-notice' },
      icon(n.retryable ? 'refresh' : 'x'), h('span', null, h('strong', null, n.retryable ? 'Model error, retrying' : 'Model error'), ' ', n.message || n.code || ''));
  }

  // A call that waits for the person, last in its run until decided; its
  // button leads to the card in the conversation.
  function approvalItem(a) {
    return h('li', { class: 'notice notice-warn approval-notice', 'data-testid': 'approval-notice', 'data-approval-id': a.id },
      icon('alert'),
      h('span', null, h('strong', null, `${a.tool} waits for your approval`), ' ',
        h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => onShowApproval(a.id) }, 'Answer')));
  }

  function signature(t) {
    return JSON.stringify([t.status, t.duration_ms, t.progress, t.result, t.error, expanded.has(t.id)]);
  }

  function redraw(t, focusHead) {
    const n = nodes.get(t.id);
    const li = t.kind === 'tool' ? toolItem(t) : noticeItem(t);
    if (n) n.li.replaceWith(li);
    nodes.set(t.id, { li, sig: t.kind === 'tool' ? signature(t) : '' });
    if (focusHead) li.querySelector('.tool-head').focus();
    return li;
  }

  // A run's group: its header (a disclosure button inside a heading) and
  // the list of its executions, hidden while closed. The nodes stay, so
  // the focus stays on the header when it changes.
  function runNode(g) {
    const itemsId = `run-items-${g.id}`;
    const button = h('button', { type: 'button', class: 'run-toggle', 'data-testid': 'run-toggle', 'aria-expanded': 'false', 'aria-controls': itemsId });
    const items = h('ol', { class: 'run-items', id: itemsId, hidden: true });
    const li = h('li', { class: 'timeline-run', 'data-testid': 'timeline-run', 'data-run-id': g.id }, h('h3', { class: 'run-heading' }, button), items);
    button.addEventListener('click', () => {
      opened.set(g.id, button.getAttribute('aria-expanded') !== 'true');
      if (last) draw(last, false);
    });
    return { li, button, items, sig: '', drawn: null };
  }

  function drawHead(st, g, n, open) {
    const run = g.run;
    const title = g.number ? `Run ${g.number}` : 'Run';
    const [state, tone] = run ? runStateText(st, run) : ['Running', 'running'];
    const used = run ? runUsageText(run === st.run && isRunning(st) ? liveUsage(st) : run.usage) : '';
    const sig = JSON.stringify([title, run && run.mode, state, tone, used, open]);
    if (sig === n.sig) return;
    n.sig = sig;
    n.li.setAttribute('data-state', tone === 'running' || tone === 'waiting' ? tone : 'stopped');
    if (run && run.stop_reason) n.li.setAttribute('data-reason', run.stop_reason);
    else n.li.removeAttribute('data-reason');
    n.li.classList.toggle('open', open);
    n.button.setAttribute('aria-expanded', open ? 'true' : 'false');
    n.button.replaceChildren(
      icon('chevron', 'run-chevron'),
      h('span', { class: 'run-line' },
        h('span', { class: 'run-title' }, title),
        run && run.mode ? h('span', { class: 'run-mode', 'data-testid': 'run-mode' }, run.mode) : null,
        h('span', { class: 'run-state', 'data-testid': 'run-state', 'data-tone': tone }, state)),
      used ? h('span', { class: 'run-usage muted', 'data-testid': 'run-usage' }, used) : null);
    n.items.setAttribute('aria-label', `${title}: tool calls, oldest first`);
  }

  // Puts the group's executions (and a call waiting for approval) in its
  // list, in order, drawing again those that changed.
  function drawItems(g, n) {
    const want = [];
    for (const t of g.items) {
      const c = nodes.get(t.id);
      let li = c && c.li;
      if (!c || (t.kind === 'tool' && c.sig !== signature(t))) {
        const hadFocus = c && c.li.contains(document.activeElement);
        li = redraw(t, hadFocus);
      }
      want.push(li);
    }
    for (const a of g.pending) {
      let li = waiting.get(a.id);
      if (!li) {
        li = approvalItem(a);
        waiting.set(a.id, li);
      }
      want.push(li);
    }
    if (!want.length) {
      n.none = n.none || h('li', { class: 'run-none muted' });
      n.none.textContent = g.run && g.run.status !== 'running' ? 'No tool calls.' : 'No tool calls yet.';
      want.push(n.none);
    }
    want.forEach((li, k) => {
      if (n.items.children[k] !== li) n.items.insertBefore(li, n.items.children[k] || null);
    });
    while (n.items.children.length > want.length) n.items.lastChild.remove();
  }

  function draw(st, follow) {
    const groups = groupTimeline(st);
    const keepApprovals = new Set(groups.flatMap((g) => g.pending.map((a) => a.id)));
    for (const [id, li] of waiting) {
      if (!keepApprovals.has(id)) {
        li.remove();
        waiting.delete(id);
      }
    }
    const keepRuns = new Set(groups.map((g) => g.id));
    for (const [id, n] of runNodes) {
      if (!keepRuns.has(id)) {
        n.li.remove();
        runNodes.delete(id);
      }
    }
    // The headers follow every token (the usage); the calls only change
    // with the timeline's or the approvals' version.
    const version = `${st.version.timeline}/${st.version.approvals}`;
    groups.forEach((g, k) => {
      let n = runNodes.get(g.id);
      if (!n) {
        n = runNode(g);
        runNodes.set(g.id, n);
      }
      const open = opened.has(g.id) ? opened.get(g.id) : k === 0;
      drawHead(st, g, n, open);
      if (open && n.drawn !== version) drawItems(g, n);
      else if (!open) {
        // Closed while the focus was on one of its calls (a new run
        // started): the focus goes to the run's header, not to the page.
        if (n.items.contains(document.activeElement)) n.button.focus();
        clear(n.items);
      }
      n.drawn = open ? version : null;
      n.items.hidden = !open;
      if (list.children[k] !== n.li) list.insertBefore(n.li, list.children[k] || null);
    });
    const tools = st.timeline.filter((t) => t.kind === 'tool').length;
    const runs = groups.length;
    count.textContent = [tools ? `${tools} call${tools === 1 ? '' : 's'}` : '', runs > 1 ? `${runs} runs` : ''].filter(Boolean).join(' · ');
    empty.hidden = runs > 0;
    if (follow) keepEnd();
    else following = endInSight();
  }

  // The newest run's list when it is open: the calls arrive at its end.
  function newestItems() {
    const first = list.firstElementChild && runNodes.get(list.firstElementChild.getAttribute('data-run-id'));
    return first && !first.items.hidden ? first.items : null;
  }

  // True when the end of the newest run's list is in sight (or there is
  // nothing yet), so what comes next should stay in sight too.
  function endInSight() {
    const items = newestItems();
    if (!items) return true;
    return items.getBoundingClientRect().bottom <= scroll.getBoundingClientRect().bottom + 48;
  }

  // Scrolls the end of the newest run's list into sight.
  function keepEnd() {
    const items = newestItems();
    if (!items) return;
    const over = items.getBoundingClientRect().bottom - scroll.getBoundingClientRect().bottom;
    if (over > 0) scroll.scrollTop += over;
  }

  // Following stops when the person scrolls away from the end and starts
  // again when they scroll back. The other cards of the column change
  // height after the timeline is drawn (the why-idle card shows when a run
  // stops), and the list's own height can change after it is drawn (a
  // font arrives), so a change of either keeps the end in sight too.
  let following = true;
  scroll.addEventListener('scroll', () => (following = endInSight()), { passive: true });
  if (typeof ResizeObserver === 'function') {
    const resized = new ResizeObserver(() => {
      if (following) keepEnd();
    });
    resized.observe(scroll);
    resized.observe(list);
  }

  return {
    render(st) {
      if (!st || st.id !== sessionId) {
        nodes.clear();
        waiting.clear();
        runNodes.clear();
        opened.clear();
        expanded.clear();
        clear(list);
        scroll.scrollTop = 0;
        following = true;
        sessionId = st ? st.id : null;
      }
      last = st;
      if (!st) {
        count.textContent = '';
        empty.hidden = false;
        return;
      }
      draw(st, following);
    },
  };
}
