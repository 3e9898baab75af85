// The live event stream of one open session: one EventSource, reconnecting
// by itself after network drops.
//
// The browser reconnects on its own and sends Last-Event-ID, so the server
// resumes after the last event seen. When the browser gives up instead (a
// failed reconnect answered with an error status), a new EventSource is
// opened after a pause with ?after= the last seq seen. Events at or below
// that seq are dropped, so a resumed stream never delivers one twice.

import { eventsUrl } from './api.js';

// session_deleted is not sent today (a deleted chat's stream ends and its
// reconnect is answered 404); it is listened for so that a server that says
// so is understood at once.
export const EVENT_TYPES = ['message', 'run_started', 'status', 'token', 'tool_started', 'tool_progress', 'tool_finished', 'budget', 'guardrail', 'error', 'run_stopped', 'session_deleted', 'approval_requested', 'approval_decided', 'repair', 'superseded', 'input_requested', 'input_answered', 'run_queued'];

export class SessionStream {
  // onEvent(ev) gets each new event; onState('connecting'|'open'|'reconnecting')
  // tells whether the stream is live; onClosed() runs when the browser
  // gives up on a connection (an error status) and a new one is planned.
  constructor(sessionId, afterSeq, { onEvent, onState, onClosed = () => {} }) {
    this.sessionId = sessionId;
    this.lastSeq = afterSeq;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onClosed = onClosed;
    this.es = null;
    this.closed = false;
    this.retryTimer = null;
    this.failures = 0;
    this.state = null;
    this.handle = this.handle.bind(this);
  }

  start() {
    this.setState('connecting');
    this.open();
    return this;
  }

  setState(s) {
    if (s === this.state) return;
    this.state = s;
    this.onState(s);
  }

  open() {
    const es = new EventSource(eventsUrl(this.sessionId, this.lastSeq));
    this.es = es;
    for (const t of EVENT_TYPES) es.addEventListener(t, this.handle);
    es.addEventListener('open', () => {
      this.failures = 0;
      this.setState('open');
    });
  }

  // Typed events arrive as MessageEvents; the "error" name is shared with
  // the EventSource's own connection errors, which carry no data.
  handle(e) {
    if (this.closed || e.target !== this.es) return;
    if (typeof e.data !== 'string') {
      this.connectionError();
      return;
    }
    let ev;
    try {
      ev = JSON.parse(e.data);
    } catch {
      return;
    }
    if (typeof ev.seq === 'number') {
      if (ev.seq <= this.lastSeq) return;
      this.lastSeq = ev.seq;
    }
    this.onEvent(ev);
  }

  connectionError() {
    this.setState('reconnecting');
    if (this.es.readyState !== EventSource.CLOSED) return; // the browser retries
    this.es.close();
    this.onClosed();
    this.failures++;
    const delay = Math.min(2000 * this.failures, 10000);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (!this.closed) this.open();
    }, delay);
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.es) this.es.close();
  }
}
