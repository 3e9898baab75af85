// The centre column: user and assistant messages. Assistant text streams in
// as token events arrive and is drawn with the Markdown renderer, which
// makes DOM nodes only; user text is shown as typed.

import { h, clear, nearBottom } from './dom.js';
import { renderMarkdown } from './markdown.js';
import { icon } from './icons.js';
import { REASON_TITLES, stopTone } from './format.js';
import { addCodeCopyButtons } from './copy.js';
import { messageActions } from './edit.js';

// Where the streaming caret goes: at the end of the last line of text, not
// on a line of its own below it.
const TEXT_BLOCKS = new Set(['P', 'LI', 'H3', 'H4', 'H5', 'H6']);
const REPAIR_LABELS = {
  condense_context: 'Shortened the conversation:',
  fallback_model: 'Switched model:',
  restart_tool_server: 'Restarted a tool server:',
  retry_tool_call: 'Called the tool again:',
};
const CONTAINERS = new Set(['UL', 'OL', 'BLOCKQUOTE', 'LI']);

function caretHost(body) {
  let at = body;
  for (;;) {
    const last = at.lastElementChild;
    if (!last || !(TEXT_BLOCKS.has(last.tagName) || CONTAINERS.has(last.tagName))) break;
    at = last;
    if (TEXT_BLOCKS.has(at.tagName) && !(at.lastElementChild && CONTAINERS.has(at.lastElementChild.tagName))) break;
  }
  return at;
}

export function createMessageList({ scroll, list, empty, onSuggestion, onShowWhy, onRegenerate, onEdit }) {
  const nodes = new Map(); // message id -> {li, body, content, streaming, partial}
  let sessionId = null;
  let regen = null; // the Regenerate button, under the last answer while idle

  // "Regenerate" under the last answer of an idle chat: the last user
  // message is answered again and this answer kept as an earlier one.
  function drawRegenerate(st, msgs) {
    const last = msgs[msgs.length - 1];
    const show = st && st.status === 'idle' && last && last.role === 'assistant' && !last.superseded && !last.streaming;
    if (!show) {
      if (regen) regen.remove();
      return;
    }
    if (!regen) {
      regen = h('li', { class: 'regenerate' },
        h('button', { type: 'button', class: 'btn btn-ghost btn-small', 'data-testid': 'regenerate-button', onclick: () => onRegenerate() }, icon('refresh'), 'Regenerate'));
    }
    const n = nodes.get(last.id);
    if (n && n.li.nextSibling !== regen) n.li.after(regen);
  }
  let runNote = null; // {li, key}: where the last run ended, when it did not complete

  // A line under the conversation saying why the last run stopped, for
  // screens where the control plane is out of sight.
  function drawRunNote(st) {
    const run = st && st.run;
    const show = run && st.status === 'idle' && run.status === 'stopped' && run.stop_reason && run.stop_reason !== 'completed';
    const key = show ? `${run.id}|${run.stop_reason}` : '';
    if (runNote && runNote.key !== key) {
      runNote.li.remove();
      runNote = null;
    }
    if (!show) return;
    if (!runNote) {
      const tone = stopTone(run);
      const li = h('li', { class: 'run-note', 'data-testid': 'run-note', 'data-tone': tone },
        h('button', { type: 'button', onclick: () => onShowWhy() }, icon(tone === 'neutral' ? 'pause' : 'alert'), REASON_TITLES[run.stop_reason] || run.stop_reason));
      runNote = { li, key };
    }
    if (list.lastChild !== runNote.li) list.appendChild(runNote.li);
  }

  function visible(m) {
    if (m.role === 'user' || m.role === 'repair') return true;
    if (m.role !== 'assistant') return false;
    return m.streaming || m.content !== '' || (m.tool_calls && m.tool_calls.length > 0);
  }

  function make(m) {
    if (m.role === 'repair') {
      // Something the engine did by itself to keep the run going.
      const li = h('li', { class: 'repair-note', 'data-testid': 'repair-note', 'data-action': m.action, 'data-outcome': m.outcome },
        icon('refresh'), h('span', null, h('strong', null, REPAIR_LABELS[m.action] || m.action), ' ', m.detail || ''));
      return { li, body: null, content: '', streaming: false, partial: false, note: true };
    }
    if (m.role === 'assistant' && !m.content && !m.streaming && m.tool_calls && m.tool_calls.length) {
      // A turn that only called tools: a quiet line, the timeline has the rest.
      const counts = new Map();
      for (const c of m.tool_calls) {
        const name = (c.function && c.function.name) || 'tool';
        counts.set(name, (counts.get(name) || 0) + 1);
      }
      const names = [...counts].map(([name, n]) => (n > 1 ? `${name} ×${n}` : name));
      const li = h('li', { class: 'tool-note', 'data-testid': 'tool-call-note' }, icon('wrench'), `Called ${names.join(', ')}`);
      return { li, body: null, content: '', streaming: false, partial: false, note: true };
    }
    const body = h('div', { class: 'bubble-body' });
    if (m.superseded) {
      // An answer a regenerate replaced: collapsed, still there to read.
      const bubble = h('details', { class: 'bubble' }, h('summary', { class: 'muted' }, 'Earlier answer'), body);
      const li = h('li', { class: `message message-${m.role} message-superseded`, 'data-testid': 'message', 'data-role': m.role, 'data-message-id': m.id, 'data-superseded': 'true' }, bubble);
      const n = { li, body, content: null, streaming: null, partial: null, superseded: true };
      li.appendChild(messageActions({ m, li, bubble, text: () => n.content, onEdit: null }));
      return n;
    }
    const bubble = h('div', { class: 'bubble' }, body);
    const li = h('li', { class: `message message-${m.role}`, 'data-testid': 'message', 'data-role': m.role, 'data-message-id': m.id }, bubble);
    const n = { li, body, content: null, streaming: null, partial: null, superseded: false };
    li.appendChild(messageActions({ m, li, bubble, text: () => n.content, onEdit }));
    return n;
  }

  function fill(n, m) {
    if (n.note) return;
    if (n.content === m.content && n.streaming === m.streaming && n.partial === m.partial) return;
    clear(n.body);
    if (m.role === 'user') {
      n.body.appendChild(h('p', { class: 'plain' }, m.content));
    } else {
      n.body.appendChild(renderMarkdown(m.content));
      if (!m.streaming) addCodeCopyButtons(n.body);
      if (m.streaming) caretHost(n.body).appendChild(h('span', { class: 'caret', 'aria-hidden': 'true' }));
      if (m.partial) n.body.appendChild(h('p', { class: 'partial-note muted' }, 'Stopped before the answer was complete.'));
    }
    n.li.classList.toggle('streaming', !!m.streaming);
    n.li.setAttribute('aria-busy', m.streaming ? 'true' : 'false');
    n.content = m.content;
    n.streaming = m.streaming;
    n.partial = m.partial;
  }

  function renderEmpty(info) {
    const demo = !!(info && info.llm && info.llm.provider === 'demo');
    if (empty.getAttribute('data-demo') === String(demo)) return;
    empty.setAttribute('data-demo', String(demo));
    clear(empty);
    const tries = demo ? ['What is 6*7?', 'What time is it in Tokyo?', 'demo loop', 'demo approve'] : ['Summarise what you can do', 'What is 17% of 2,340?'];
    empty.append(
      h('div', { class: 'empty-icon' }, icon('chat')),
      h('h2', null, 'Start a conversation'),
      h('p', { class: 'muted' }, demo
        ? 'No model is connected, so the built-in demo brain answers. It calls real tools and runs under the same budgets and guardrails; set CHATPLANE_LLM_URL to connect a model.'
        : 'Each message starts a run: model calls and tool calls under the budget of the chosen mode. Watch it on the right.'),
      h('div', { class: 'suggestions' }, tries.map((t) => h('button', { type: 'button', class: 'chip chip-button', onclick: () => onSuggestion(t) }, t))),
    );
  }

  return {
    render(st, info) {
      if (!st || st.id !== sessionId) {
        nodes.clear();
        clear(list);
        runNote = null;
        sessionId = st ? st.id : null;
      }
      const msgs = st ? st.messages.filter(visible) : [];
      const follow = nearBottom(scroll);
      const keep = new Set(msgs.map((m) => m.id));
      for (const [id, n] of nodes) {
        if (!keep.has(id)) {
          n.li.remove();
          nodes.delete(id);
        }
      }
      msgs.forEach((m, k) => {
        let n = nodes.get(m.id);
        if (!n || (n.note && (m.content || m.streaming)) || (!n.note && n.superseded !== !!m.superseded)) {
          if (n) n.li.remove();
          n = make(m);
          nodes.set(m.id, n);
        }
        fill(n, m);
        if (list.children[k] !== n.li) list.insertBefore(n.li, list.children[k] || null);
      });
      drawRunNote(msgs.length ? st : null);
      drawRegenerate(st, msgs);
      empty.hidden = msgs.length > 0;
      if (msgs.length === 0) renderEmpty(info);
      if (follow) scroll.scrollTop = scroll.scrollHeight;
    },
    scrollToEnd() {
      scroll.scrollTop = scroll.scrollHeight;
    },
  };
}
