// The tool timeline: each execution with its tool, server, status icon and
// duration, oldest first, following along at the bottom. An execution
// expands to its arguments and result (pretty-printed when JSON, always as
// text) with a button that copies both. Guardrail warnings and upstream
// errors appear in line, where they happened. A call waiting for the
// person's approval shows last, with a button to its card.

import { h, clear, nearBottom } from './dom.js';
import { icon, STATUS_ICONS } from './icons.js';
import { formatDuration, prettyJson, argsSummary, CHECK_LABELS } from './format.js';
import { copyButton } from './copy.js';

const STATUS_WORDS = { running: 'running', ok: 'succeeded', error: 'failed', timeout: 'timed out', cancelled: 'cancelled', denied: 'denied' };

// The text the copy button puts on the clipboard.
export function copyText(t) {
  const parts = [`${t.server}/${t.tool} (${t.status})`, '', 'arguments:', prettyJson(t.arguments ?? {})];
  if (t.result !== null && t.result !== undefined) parts.push('', 'result:', prettyJson(t.result));
  if (t.error) parts.push('', 'error:', t.error);
  return parts.join('\n');
}

export function createTimeline({ scroll, list, empty, count, onShowApproval }) {
  const nodes = new Map();
  const waiting = new Map(); // approval id -> li of a pending approval
  const expanded = new Set();
  let sessionId = null;

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

  // A call that waits for the person, last in the timeline until decided;
  // its button leads to the card in the conversation.
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

  return {
    render(st) {
      if (!st || st.id !== sessionId) {
        nodes.clear();
        waiting.clear();
        expanded.clear();
        clear(list);
        sessionId = st ? st.id : null;
      }
      const items = st ? st.timeline : [];
      const follow = nearBottom(scroll);
      items.forEach((t, k) => {
        const n = nodes.get(t.id);
        let li = n && n.li;
        if (!n || (t.kind === 'tool' && n.sig !== signature(t))) {
          const hadFocus = n && n.li.contains(document.activeElement);
          li = redraw(t, hadFocus);
        }
        if (list.children[k] !== li) list.insertBefore(li, list.children[k] || null);
      });
      const pending = st ? st.approvals.filter((a) => a.status === 'pending') : [];
      const keep = new Set(pending.map((a) => a.id));
      for (const [id, li] of waiting) {
        if (!keep.has(id)) {
          li.remove();
          waiting.delete(id);
        }
      }
      pending.forEach((a, k) => {
        let li = waiting.get(a.id);
        if (!li) {
          li = approvalItem(a);
          waiting.set(a.id, li);
        }
        const at = items.length + k;
        if (list.children[at] !== li) list.insertBefore(li, list.children[at] || null);
      });
      const tools = items.filter((t) => t.kind === 'tool').length;
      count.textContent = tools ? `${tools} call${tools === 1 ? '' : 's'}` : '';
      empty.hidden = items.length + pending.length > 0;
      if (follow) scroll.scrollTop = scroll.scrollHeight;
    },
  };
}
