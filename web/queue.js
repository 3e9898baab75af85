// The queue (docs/page.md, Queue and interrupt): while a run works, the
// composer offers Queue (send the typed message when the run stops) and
// Stop and send (stop the run, then send it). A queued message waits at the
// end of the message list, marked pending, until its run starts; a stop
// drops it, and it leaves the list.
//
// The queued run is kept on the chat's state as st.queued = {runId, text},
// from the run_queued event (or, for a chat opened while one waits, from
// the log), until its run's first event.
import { api } from './api.js';
import { h } from './dom.js';
import { icon } from './icons.js';

const enc = encodeURIComponent;

// How far back the log is read for the text of a queued run when a chat is
// opened: it was queued while the active run worked, so it is recent.
const LOOKBACK_EVENTS = 1000;

export function createQueue({ composer, before, input, list, isRunning, onSent, onError }) {
  const queueBtn = h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-testid': 'queue-button', title: 'Send the message when this run stops' },
    icon('send'), 'Queue');
  const interruptBtn = h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-testid': 'interrupt-button', title: 'Stop this run, then send the message' },
    icon('stop'), 'Stop and send');
  const row = h('div', { class: 'queue-actions', hidden: true }, queueBtn, interruptBtn);
  composer.insertBefore(row, before);
  let current = null; // the chat the buttons act on
  let pendingLi = null;

  async function send(how) {
    const st = current;
    const text = input.value.trim();
    if (!st || !text) {
      input.focus();
      return;
    }
    const typed = input.value;
    input.value = '';
    onSent();
    try {
      const run = await api('POST', `/api/sessions/${enc(st.id)}/runs`, { message: text, if_active: how });
      // The run_queued event may have come first; else it shows now.
      if (run.status === 'queued' && !st.queued && st.queuedDone !== run.id) st.queued = { runId: run.id, text };
      draw(st);
    } catch (e) {
      if (!input.value) {
        input.value = typed;
        onSent();
      }
      onError(e);
    }
    input.focus();
  }
  queueBtn.addEventListener('click', () => send('enqueue'));
  interruptBtn.addEventListener('click', () => send('interrupt'));

  function drawPending(st) {
    const q = st && st.queued;
    if (!q) {
      if (pendingLi) pendingLi.remove();
      pendingLi = null;
      return;
    }
    if (!pendingLi || pendingLi.getAttribute('data-run-id') !== q.runId) {
      if (pendingLi) pendingLi.remove();
      pendingLi = h('li', { class: 'message message-user message-pending', 'data-testid': 'message', 'data-role': 'user', 'data-pending': 'true', 'data-run-id': q.runId },
        h('div', { class: 'bubble' }, h('p', { class: 'plain' }, q.text)),
        h('p', { class: 'pending-note muted' }, 'Queued: sent when the current run stops.'));
    }
    // Always last: after the messages and the run's notes.
    if (list.lastChild !== pendingLi) list.appendChild(pendingLi);
  }

  // Shows the buttons while a run works and the queued message, if any.
  function draw(st) {
    current = st;
    const running = !!st && isRunning(st);
    row.hidden = !running;
    queueBtn.disabled = !!(st && st.queued);
    interruptBtn.disabled = !!(st && st.queued);
    drawPending(st);
  }

  return {
    draw,
    // Takes each event of the open chat before the state does. Returns
    // true when the event is the queue's alone: the run_stopped of a queued
    // run a stop dropped while another run still works, which must not
    // make the chat look idle.
    event(st, ev) {
      // An event seen already (a replay after a reconnect) changes nothing.
      if (typeof ev.seq === 'number' && ev.seq <= st.lastSeq) return false;
      if (ev.type === 'run_queued') {
        if (st.queuedDone !== ev.run_id) st.queued = { runId: ev.run_id, text: ev.message };
        draw(st);
        return false;
      }
      if (!st.queued || ev.run_id !== st.queued.runId) return false;
      st.queued = null;
      st.queuedDone = ev.run_id;
      draw(st);
      const alone = ev.type === 'run_stopped' && !!st.run && st.run.id !== ev.run_id && isRunning(st);
      if (alone) st.lastSeq = ev.seq;
      return alone;
    },
    // A chat opened while a run waits in its queue: its text is in the
    // run_queued event of the log.
    async load(st) {
      const id = st.session && st.session.queued_run_id;
      if (!id) return;
      try {
        const after = Math.max(0, (st.session.last_seq || 0) - LOOKBACK_EVENTS);
        const r = await api('GET', `/api/sessions/${enc(st.id)}/events?after=${after}`);
        const ev = (r.events || []).find((e) => e.type === 'run_queued' && e.run_id === id);
        if (ev && !st.queued && st.queuedDone !== id) st.queued = { runId: id, text: ev.message };
      } catch {
        st.queued = st.queued || { runId: id, text: '(a queued message)' };
      }
      if (current === st) draw(st);
    },
  };
}
