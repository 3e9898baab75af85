// The page: wires the API, the event stream of the open session and the
// panels together.
//
// `/` opens the newest chat, `/#/sessions/{id}` that one. Opening a chat
// reads its messages, tool executions and runs, then subscribes to its
// events after the snapshot's last_seq; from then on every change arrives
// as an event and goes through state.js, and the panels redraw the parts
// that changed.

import * as API from './api.js';
import { $, h } from './dom.js';
import { icon } from './icons.js';
import { SessionStream } from './stream.js';
import { createQueue } from './queue.js';
import { createSessionState, loadSnapshot, loadApprovals, loadInputs, applyEvent, previewMode, isRunning } from './state.js';
import { createApprovalCards } from './approvals.js';
import { createInputCards } from './inputs.js';
import { REASON_TITLES } from './format.js';
import { createSessionList } from './sessions.js';
import { createMessageList } from './messages.js';
import { createStatusIndicator } from './status.js';
import { createRunControls } from './controls.js';
import { createBudgetDisplay } from './budget.js';
import { createUsageDisplay } from './usage.js';
import { createTimeline } from './timeline.js';
import { createWhyIdle } from './whyidle.js';
import { createHealth } from './health.js';
import { createChatManager } from './manage.js';
import { createNotifier } from './notify.js';

const SESSION_POLL_MS = 5000;
const ALL_AREAS = ['messages', 'timeline', 'status', 'budget', 'idle', 'session', 'sessions', 'approvals', 'inputs'];

const app = {
  info: null,
  modes: [],
  sessions: [],
  current: null, // the open session's state (state.js), or null
  stream: null,
  pendingMode: 'standard', // the mode for a chat not created yet
  opening: 0, // bumps on each open, so late answers for another chat are dropped
  booted: false,
};

// ---- small page helpers ----

const input = $('#message-input');
const liveRegion = $('#live-region');
const composer = $('#composer');
const composerHint = $('#composer-hint');
const HINT_IDLE = 'Enter to send · Shift+Enter for a new line';
const HINT_RUNNING = 'A run is going: wait for it, or Stop it (Escape, with the box empty)';

function announce(text) {
  // Clearing first makes screen readers repeat an identical message.
  liveRegion.textContent = '';
  setTimeout(() => (liveRegion.textContent = text), 30);
}

function toast(text, tone = 'bad') {
  const t = h('div', { class: `toast toast-${tone}` }, icon(tone === 'bad' ? 'alert' : 'info'), h('span', null, text));
  $('#toasts').appendChild(t);
  setTimeout(() => t.classList.add('leaving'), 4200);
  setTimeout(() => t.remove(), 4600);
}

function report(err) {
  if (err && err.status === 401) return; // the login form shows instead
  toast(err && err.message ? err.message : String(err));
}

function fillIcons(root = document) {
  for (const slot of root.querySelectorAll('.icon-slot[data-icon]')) {
    slot.replaceWith(icon(slot.getAttribute('data-icon')));
  }
}

// A notice in the chat column, in the page's flow so it covers nothing;
// it stays until the person does something else.
function chatNotice(text) {
  const n = $('#chat-notice');
  n.textContent = text || '';
  n.hidden = !text;
}

// The composer says whether a message can be sent now: during a run the
// send button gives way to Stop and the hint says what to do.
function drawComposer(st) {
  const running = !!st && isRunning(st);
  composer.setAttribute('data-running', String(running));
  const stopBtn = $('#composer-stop');
  const sendBtn = $('#send-button');
  const moveFocus = running ? document.activeElement === sendBtn : document.activeElement === stopBtn;
  sendBtn.hidden = running;
  stopBtn.hidden = !running;
  composerHint.textContent = running ? HINT_RUNNING : HINT_IDLE;
  if (moveFocus) input.focus();
}

function autosize() {
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight, 220)}px`;
}

function focusInput() {
  setTab('chat');
  input.focus();
}

// ---- panels ----

const sessionList = createSessionList({
  list: $('#session-list'),
  empty: $('#session-empty'),
  search: $('#session-search'),
  more: $('#load-more-sessions'),
  onError: (e) => {
    if (e.status !== 401 && e.status !== 0) report(e);
  },
  onOpen: (id) => {
    chatNotice(null);
    navigate(id);
  },
});

const messageList = createMessageList({
  scroll: $('#message-scroll'),
  list: $('#message-list'),
  empty: $('#empty-state'),
  onEdit: (m, text) => editMessage(m, text),
  onRegenerate: async () => {
    if (!app.current) return;
    try {
      await API.regenerateRun(app.current.id);
    } catch (e) {
      report(e);
    }
  },
  onSuggestion: (text) => {
    input.value = text;
    autosize();
    controls.update();
    input.focus();
  },
  onShowWhy: () => {
    setTab('control');
    const why = $('#why-idle-panel');
    why.scrollIntoView({ block: 'nearest' });
    const first = why.querySelector('button');
    if (first) first.focus();
  },
});

const statusIndicator = createStatusIndicator({
  root: $('#status-indicator'),
  badge: $('#status-badge'),
  label: $('#status-label'),
  detail: $('#status-detail'),
  elapsed: $('#status-elapsed'),
  tabDot: $('#tab-dot'),
  announce,
});

const controls = createRunControls({
  runButton: $('#run-button'),
  runLabel: $('#run-label'),
  stopButton: $('#stop-button'),
  select: $('#mode-select'),
  description: $('#mode-desc'),
  input,
  onRun: () => run(),
  onStop: () => stop(),
  onMode: (mode) => changeMode(mode),
});

const budget = createBudgetDisplay({ meters: $('#meters'), sub: $('#budget-sub') });
const usage = createUsageDisplay({ root: $('#usage-display'), meters: $('#usage-meters'), sub: $('#usage-sub') });

const timeline = createTimeline({
  scroll: $('#timeline-scroll'),
  list: $('#tool-timeline'),
  empty: $('#timeline-empty'),
  count: $('#timeline-count'),
  onShowApproval: (id) => {
    const card = document.querySelector(`#approval-list [data-approval-id="${CSS.escape(id)}"]`);
    if (!card) return;
    setTab('chat');
    card.scrollIntoView({ block: 'nearest' });
    card.focus();
  },
});

const approvalCards = createApprovalCards({ list: $('#approval-list'), onDecide: (a, body) => decideApproval(a, body) });

const inputCards = createInputCards({ list: $('#input-list'), onAnswer: (x, body) => answerInput(x, body) });

const whyIdle = createWhyIdle({ root: $('#why-idle-panel'), body: $('#why-body'), onAction: (a) => action(a) });

const manage = createChatManager({
  current: () => (app.current ? app.current.session : null),
  sessions: () => mergedSessions(),
  onRenamed: (id, title) => renamed(id, title),
  onDeleted: (id, here) => deleted(id, here),
  report,
  announce,
});

const notifier = createNotifier({ button: $('#notify-button'), link: $('#favicon') });

const health = createHealth({ button: $('#health-indicator'), panel: $('#health-panel'), body: $('#health-body'), fetchHealth: API.getHealth, restartServer: API.restartServer });

// ---- drawing, batched per frame ----

const dirty = new Set();
let frame = 0;
let frameTimer = 0;

function schedule(areas) {
  for (const a of areas) dirty.add(a);
  if (frame || frameTimer || !dirty.size) return;
  // requestAnimationFrame does not run in a hidden tab; the timer does.
  const go = () => {
    cancelAnimationFrame(frame);
    clearTimeout(frameTimer);
    frame = 0;
    frameTimer = 0;
    draw();
  };
  frame = requestAnimationFrame(go);
  frameTimer = setTimeout(go, 100);
}

const queue = createQueue({
  composer,
  before: composerHint,
  input,
  list: $('#message-list'),
  isRunning,
  onSent: () => {
    autosize();
    controls.update();
  },
  onError: (e) => report(e),
});

function draw() {
  const st = app.current;
  const areas = new Set(dirty);
  dirty.clear();
  if (areas.has('messages') || areas.has('idle')) messageList.render(st, app.info);
  if (areas.has('messages') || areas.has('status') || areas.has('idle')) queue.draw(st);
  // The timeline's run headers show the status and what the run used.
  if (areas.has('timeline') || areas.has('approvals') || areas.has('status') || areas.has('budget')) timeline.render(st);
  if (areas.has('status')) statusIndicator.render(st);
  if (areas.has('budget')) budget.render(st || pendingPreview());
  if (areas.has('idle')) whyIdle.render(st);
  if (areas.has('status') || areas.has('idle') || areas.has('session') || areas.has('budget')) controls.render(st, app.modes, app.pendingMode);
  if (areas.has('status') || areas.has('idle')) drawComposer(st);
  if (areas.has('approvals')) {
    const fresh = approvalCards.render(st);
    if (fresh) {
      setTab('chat');
      fresh.scrollIntoView({ block: 'nearest' });
      fresh.focus();
      announce(`A tool call waits for your approval: ${fresh.getAttribute('data-tool')}`);
    }
  }
  if (areas.has('inputs')) {
    const fresh = inputCards.render(st);
    if (fresh) {
      setTab('chat');
      fresh.scrollIntoView({ block: 'nearest' });
      fresh.focus();
      announce(`${fresh.getAttribute('data-server')} asks you a question`);
    }
  }
  if (areas.has('session') || areas.has('status')) drawHeader();
  if (areas.has('sessions') || areas.has('session')) sessionList.render(mergedSessions(), st ? st.id : null);
}

// Before there is a chat, the meters show the limits a first run would get.
function pendingPreview() {
  const tmp = createSessionState(null);
  previewMode(tmp, app.modes.find((m) => m.name === app.pendingMode));
  return tmp;
}

function drawHeader() {
  const st = app.current;
  const s = st && st.session;
  $('#chat-title').textContent = s ? s.title || 'New chat' : 'New chat';
  const chip = $('#chat-mode');
  chip.hidden = !s;
  if (s) chip.textContent = s.mode;
  manage.render(s);
  const base = s && s.title && s.title !== 'New chat' ? `${s.title} · chatplane` : 'chatplane';
  // A run that waits for the person says so in the tab, seen from other tabs.
  document.title = notifier.title(st && st.status === 'waiting_for_approval' ? `(Approval needed) ${base}`
    : st && st.status === 'waiting_for_input' ? `(Input needed) ${base}` : base);
}

// The list as polled, with the open chat's live state laid over it.
function mergedSessions() {
  const st = app.current;
  const list = app.sessions.slice();
  if (st && st.session) {
    const k = list.findIndex((s) => s.id === st.id);
    if (k >= 0) {
      const live = st.session;
      list[k] = { ...list[k], status: live.status, active_run_id: live.active_run_id, mode: live.mode, last_run: live.last_run };
    }
    else list.unshift(st.session);
  }
  return list;
}

// ---- sessions ----

// Puts a chat the page just made at the top of the list. A poll of the
// list answered while the page waited for the chat may hold it already:
// it must not show twice.
function listFirst(s) {
  app.sessions = [s, ...app.sessions.filter((x) => x.id !== s.id)];
}

async function refreshSessions() {
  try {
    const r = await API.listSessions();
    app.sessions = r.sessions || [];
    // The server names a chat after its first message: take the title.
    const st = app.current;
    const mine = st && st.session && app.sessions.find((s) => s.id === st.id);
    if (mine && mine.title !== st.session.title) {
      st.session.title = mine.title;
      schedule(['session']);
    }
    schedule(['sessions']);
  } catch (e) {
    if (e.status !== 401 && e.status !== 0) report(e);
  }
}

function sessionFromHash() {
  const m = /^#\/sessions\/([^/?#]+)/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

function navigate(id) {
  const hash = `#/sessions/${encodeURIComponent(id)}`;
  if (location.hash !== hash) location.hash = hash;
  else openSession(id);
  setTab('chat');
}

function closeStream() {
  if (app.stream) app.stream.close();
  app.stream = null;
  setConnection('open');
}

function showNoSession() {
  closeStream();
  app.opening++;
  app.current = null;
  schedule(ALL_AREAS);
}

// Opens a chat: its snapshot first, then its live events after last_seq.
async function openSession(id) {
  const token = ++app.opening;
  closeStream();
  let session, messages, tools, runs, approvals, inputs;
  try {
    session = await API.getSession(id);
    [messages, tools, runs] = await Promise.all([API.getMessages(id), API.getTools(id), API.getRuns(id)]);
    // Only a running chat can wait for a person.
    if (session.status === 'running') {
      [approvals, inputs] = await Promise.all([API.getApprovals(id, 'pending'), API.getInputs(id, 'pending')]);
    }
  } catch (e) {
    if (token !== app.opening) return;
    if (e.status === 404) {
      chatNotice('That chat no longer exists.');
      app.sessions = app.sessions.filter((s) => s.id !== id);
      sessionList.forget(id);
      history.replaceState(null, '', location.pathname);
      openDefault();
      return;
    }
    report(e);
    return;
  }
  if (token !== app.opening) return;
  const st = createSessionState(id);
  loadSnapshot(st, { session, messages: messages.messages, tools: tools.tool_executions, runs: runs.runs });
  if (approvals) loadApprovals(st, approvals.approvals);
  if (inputs) loadInputs(st, inputs.inputs);
  if (!st.run) previewMode(st, app.modes.find((m) => m.name === session.mode));
  app.current = st;
  notifier.open(id, session.last_seq);
  schedule(ALL_AREAS);
  messageList.scrollToEnd();
  queue.load(st);
  app.stream = new SessionStream(id, st.lastSeq, {
    onEvent: (ev) => onEvent(st, ev),
    onState: (s) => setConnection(s),
    // The browser gave up on the stream. Asking for the chat tells why: a
    // 404 is a chat deleted elsewhere, a 401 an expired login (the form
    // shows); anything else is a drop the stream retries.
    onClosed: () =>
      API.getSession(id).catch((e) => {
        if (e.status === 404) sessionGone(id);
      }),
  }).start();
}

// The open chat was deleted (in another tab, or through the API): it leaves
// the list, the page opens the newest other chat or the empty state, and a
// notice says what happened.
function sessionGone(id) {
  if (!app.current || app.current.id !== id) return;
  closeStream();
  app.sessions = app.sessions.filter((s) => s.id !== id);
  sessionList.forget(id);
  app.current = null;
  chatNotice('This chat was deleted.');
  history.replaceState(null, '', location.pathname);
  if (app.sessions.length) navigate(app.sessions[0].id);
  else showNoSession();
}

// A chat got a new title, here or in another tab.
function renamed(id, title) {
  const listed = app.sessions.find((s) => s.id === id);
  if (listed) listed.title = title;
  sessionList.retitle(id, title);
  const st = app.current;
  if (st && st.id === id && st.session) st.session.title = title;
  schedule(['session', 'sessions']);
}

// A chat was deleted: here (its Delete button), the page opens the chat
// below it in the list (or above, or the empty state); in another tab,
// the open chat says so and moves on, as when it is deleted elsewhere.
function deleted(id, here) {
  const list = mergedSessions();
  const k = list.findIndex((s) => s.id === id);
  app.sessions = app.sessions.filter((s) => s.id !== id);
  sessionList.forget(id);
  if (!app.current || app.current.id !== id) {
    schedule(['sessions']);
    return;
  }
  if (!here) {
    sessionGone(id);
    return;
  }
  closeStream();
  app.current = null;
  chatNotice(null);
  const next = k >= 0 ? list[k + 1] || list[k - 1] : app.sessions[0];
  history.replaceState(null, '', location.pathname);
  if (next && next.id !== id) navigate(next.id);
  else showNoSession();
}

// Edit of a sent message: a fork before it with the new text, whose run
// starts at once; the page opens the new chat. An error goes back to the
// edit box, which shows it.
async function editMessage(m, text) {
  const st = app.current;
  if (!st) return;
  const s = await API.forkSession(st.id, { message_id: m.id, message: text });
  delete s.run;
  listFirst(s);
  chatNotice(null);
  announce('Edited: the new chat is open');
  navigate(s.id);
}

// A tab that comes back into view catches up with what other tabs or
// devices did meanwhile: the list again, and whether the open chat still
// exists (and its title).
async function catchUp() {
  refreshSessions();
  const st = app.current;
  if (!st) return;
  try {
    const s = await API.getSession(st.id);
    if (st === app.current && st.session && s.title !== st.session.title) renamed(st.id, s.title);
  } catch (e) {
    if (e.status === 404) sessionGone(st.id);
  }
}

function openDefault() {
  const id = sessionFromHash();
  if (id) return openSession(id);
  if (app.sessions.length) return navigate(app.sessions[0].id);
  showNoSession();
}

function onEvent(st, ev) {
  if (st !== app.current) return;
  if (ev.type === 'session_deleted') {
    sessionGone(st.id);
    return;
  }
  if (queue.event(st, ev)) return;
  const areas = applyEvent(st, ev);
  if (!areas.length) return;
  notifier.event(st, ev);
  if (ev.type === 'run_stopped') {
    announce(`Run stopped: ${REASON_TITLES[ev.reason] || ev.reason}. ${ev.detail || ''}`);
    noteModelOutcome(ev);
    refreshSessions();
    health.refresh();
    refreshUsage();
  } else if (ev.type === 'run_started') {
    refreshSessions();
  }
  if (ev.type === 'status') {
    // Drawn at once, so even a status that lasts a moment is shown (and
    // announced) rather than merged into the next frame.
    statusIndicator.render(st);
  }
  schedule(areas);
}

let connTimer = 0;
function setConnection(state) {
  const notice = $('#conn-notice');
  clearTimeout(connTimer);
  if (state === 'reconnecting') {
    // A blip shorter than this is not worth a notice.
    connTimer = setTimeout(() => (notice.hidden = false), 300);
  } else {
    notice.hidden = true;
  }
}

// ---- actions ----

async function ensureSession() {
  if (app.current) return app.current.id;
  const s = await API.createSession({ mode: app.pendingMode });
  listFirst(s);
  history.replaceState(null, '', `#/sessions/${encodeURIComponent(s.id)}`);
  await openSession(s.id);
  return s.id;
}

async function send() {
  const text = input.value.trim();
  if (!text) return;
  // The composer already shows that a run is going (Stop instead of Send,
  // and the hint); the typed text stays for later.
  if (app.current && isRunning(app.current)) {
    announce(HINT_RUNNING);
    return;
  }
  chatNotice(null);
  const before = input.value;
  input.value = '';
  autosize();
  controls.update();
  try {
    const id = await ensureSession();
    await API.startRun(id, text);
  } catch (e) {
    if (!input.value) {
      input.value = before;
      autosize();
      controls.update();
    }
    if (e.status === 404 && app.current) sessionGone(app.current.id);
    else report(e);
  }
}

async function run() {
  if (input.value.trim()) return send();
  if (!app.current) return;
  try {
    await API.continueRun(app.current.id);
  } catch (e) {
    report(e);
  }
}

// Sends a person's answer to a pending approval. A 409 means it was decided
// elsewhere (another tab, the terminal): the card takes that decision.
async function decideApproval(a, body) {
  const st = app.current;
  try {
    await API.decideApproval(st.id, a.id, body);
  } catch (e) {
    if (e.status === 409 && st === app.current) {
      try {
        const r = await API.getApprovals(st.id);
        schedule(loadApprovals(st, r.approvals));
      } catch {
        // the approval_decided event will still come
      }
      return;
    }
    report(e);
  }
}

// Sends a person's answer to a tool server's question. Resolves to the
// reason a refused answer gives (shown under the form), else nothing. A 409
// means it was answered elsewhere (another tab, another instance): the card
// takes that answer.
async function answerInput(x, body) {
  const st = app.current;
  try {
    await API.answerInput(st.id, x.id, body);
  } catch (e) {
    if (e.status === 400) return e.message || 'The answer was refused.';
    if (e.status === 409 && st === app.current) {
      try {
        const r = await API.getInputs(st.id);
        schedule(loadInputs(st, r.inputs));
      } catch {
        // the input_answered event will still come
      }
      return undefined;
    }
    report(e);
  }
  return undefined;
}

async function stop() {
  if (!app.current) return;
  // The Stop button is about to turn disabled, which would drop the focus
  // to the page: it goes to the message box, or on a narrow screen's
  // Control tab to the status it changes.
  if (input.offsetParent !== null) input.focus();
  else $('#status-indicator').focus();
  try {
    await API.stopRun(app.current.id);
  } catch (e) {
    if (e.code !== 'no_active_run') report(e);
  }
}

async function changeMode(mode) {
  const st = app.current;
  if (!st) {
    app.pendingMode = mode;
    const m = app.modes.find((x) => x.name === mode);
    announce(`Mode ${mode}`);
    if (m) schedule(['budget']);
    return;
  }
  // The chat takes the new mode at once, so a redraw while the change is
  // on its way (a token during a run) does not put the old one back. A
  // running run takes the new mode's limits at once (its budget event
  // brings the numbers, which may come before this answer).
  const before = st.session.mode;
  const run = isRunning(st) ? st.run : null;
  const runBefore = run ? run.mode : null;
  st.session.mode = mode;
  if (run) run.mode = mode;
  try {
    const s = await API.patchSession(st.id, { mode });
    if (st !== app.current) return;
    st.session = { ...st.session, ...s, last_seq: st.session.last_seq, status: st.session.status, active_run_id: st.session.active_run_id };
    const areas = ['session', 'budget'];
    if (!isRunning(st)) areas.push(...previewMode(st, app.modes.find((x) => x.name === mode)));
    schedule(areas);
    announce(`Mode ${mode}`);
  } catch (e) {
    if (st.session.mode === mode) st.session.mode = before;
    if (run && run.mode === mode) run.mode = runBefore;
    report(e);
    schedule(['session', 'budget']);
  }
}

async function action(a) {
  const st = app.current;
  if (!st) return;
  if (a.kind === 'rephrase') {
    if (!input.value.trim()) {
      const last = [...st.messages].reverse().find((m) => m.role === 'user');
      if (last) input.value = last.content;
    }
    autosize();
    controls.update();
    focusInput();
    input.select();
    return;
  }
  try {
    if (a.kind === 'restart_tool_server' && a.server) {
      // The server starts again; the person continues once it is back.
      await API.restartServer(a.server);
      await health.refresh();
      chatNotice(`Restarting ${a.server}. Continue once it is ready.`);
    } else if (a.kind === 'switch_mode' && a.mode) await API.continueRun(st.id, a.mode);
    else await API.continueRun(st.id);
  } catch (e) {
    report(e);
  }
}

// ---- tabs (narrow screens) ----

function setTab(name) {
  document.body.setAttribute('data-tab', name);
  for (const t of document.querySelectorAll('.tabs [role="tab"]')) {
    const on = t.getAttribute('data-tab') === name;
    t.setAttribute('aria-selected', on ? 'true' : 'false');
    t.tabIndex = on ? 0 : -1;
  }
}

function wireTabs() {
  const tabs = [...document.querySelectorAll('.tabs [role="tab"]')];
  for (const t of tabs) {
    t.addEventListener('click', () => setTab(t.getAttribute('data-tab')));
    t.addEventListener('keydown', (e) => {
      const k = tabs.indexOf(t);
      let next = null;
      if (e.key === 'ArrowRight') next = tabs[(k + 1) % tabs.length];
      if (e.key === 'ArrowLeft') next = tabs[(k + tabs.length - 1) % tabs.length];
      if (e.key === 'Home') next = tabs[0];
      if (e.key === 'End') next = tabs[tabs.length - 1];
      if (next) {
        e.preventDefault();
        setTab(next.getAttribute('data-tab'));
        next.focus();
      }
    });
  }
}

// ---- login ----

// The login form is a modal dialog: the page behind it is inert (no focus,
// no clicks, hidden from assistive technology) while it shows, and Tab
// cycles inside it.
const BEHIND_LOGIN = ['.skip-link', '.topbar', '.tabs-nav', '.layout'];

function setLoginOpen(open) {
  $('#login-backdrop').hidden = !open;
  for (const sel of BEHIND_LOGIN) $(sel).inert = open;
}

function showLogin() {
  closeStream();
  setLoginOpen(true);
  $('#login-token').focus();
}

function trapLoginFocus(e) {
  if (e.key !== 'Tab') return;
  const all = [...$('#login-backdrop').querySelectorAll('input, button, select, textarea, a[href], [tabindex]:not([tabindex="-1"])')]
    .filter((x) => !x.disabled && x.offsetParent !== null);
  if (!all.length) return;
  const first = all[0];
  const last = all[all.length - 1];
  const at = all.indexOf(document.activeElement);
  if (e.shiftKey && at <= 0) {
    e.preventDefault();
    last.focus();
  } else if (!e.shiftKey && (at === -1 || at === all.length - 1)) {
    e.preventDefault();
    first.focus();
  }
}

function wireLogin() {
  $('#login-backdrop').addEventListener('keydown', trapLoginFocus);
  $('#logout').addEventListener('click', async () => {
    try {
      await API.logout();
    } catch (e) {
      report(e);
      return;
    }
    app.current = null;
    app.sessions = [];
    usage.render(null);
    schedule(ALL_AREAS);
    showLogin();
  });

  $('#login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const err = $('#login-error');
    err.hidden = true;
    try {
      await API.login($('#login-token').value.trim());
      setLoginOpen(false);
      $('#login-token').value = '';
      boot();
    } catch (ex) {
      err.textContent = ex.status === 401 ? 'That token is not valid.' : ex.message;
      err.hidden = false;
    }
  });
}

// ---- start ----

// The badge turns bad when the last run the page saw end was stopped by the
// model endpoint (it failed, or kept failing), and good again when a run
// reaches the model fine; the page has no other view of the endpoint's health.
const MODEL_TROUBLE = new Set(['llm_error', 'max_retries']);

function noteModelOutcome(ev) {
  const trouble = MODEL_TROUBLE.has(ev.reason) ? (ev.detail || ev.reason) : null;
  if (trouble === null && !['completed', 'max_steps', 'max_tokens', 'max_tool_calls', 'max_cost'].includes(ev.reason)) return;
  if ((app.modelTrouble || null) === trouble) return;
  app.modelTrouble = trouble;
  drawModelBadge();
}

function drawModelBadge() {
  const badge = $('#model-badge');
  const llm = app.info && app.info.llm;
  if (!llm) return;
  badge.hidden = false;
  const demo = llm.provider === 'demo';
  const tone = app.modelTrouble ? 'bad' : demo ? 'warn' : 'good';
  badge.dataset.tone = tone;
  badge.replaceChildren(h('span', { class: 'dot', 'data-tone': tone, 'aria-hidden': 'true' }),
    demo ? 'Demo brain' : llm.model || llm.provider);
  badge.title = app.modelTrouble
    ? `The model endpoint failed on the last run: ${app.modelTrouble}`
    : demo
      ? 'No model is configured: the built-in demo brain answers. Set CHATPLANE_LLM_URL to connect an OpenAI-compatible endpoint.'
      : `Model ${llm.model} (${llm.provider})`;
}

// The signed-in owner's budgets; only with authentication is there an
// owner. A failed read leaves the card as it was: it is a view, and the
// runs themselves say when a budget stops them.
async function refreshUsage() {
  if (!app.info || !app.info.auth) {
    usage.render(null);
    return;
  }
  try {
    usage.render(await API.getUsage());
  } catch {
    /* the next refresh tries again */
  }
}

async function boot() {
  const opened = app.opening;
  try {
    const [info, modes] = await Promise.all([API.getInfo(), API.listModes()]);
    app.info = info;
    app.modes = modes.modes || [];
    if (!app.modes.some((m) => m.name === app.pendingMode) && app.modes.length) app.pendingMode = app.modes[0].name;
    drawModelBadge();
    health.refresh();
    $('#logout').hidden = !info.auth;
    await Promise.all([refreshSessions(), refreshUsage()]);
  } catch (e) {
    report(e);
    return;
  }
  if (!app.booted) {
    app.booted = true;
    setInterval(() => {
      if (document.visibilityState === 'visible' && $('#login-backdrop').hidden) {
        refreshSessions();
        refreshUsage();
      }
    }, SESSION_POLL_MS);
  }
  // A person who opened a chat while the page was loading (New chat, a
  // chat in the list) keeps it: opening the address again would fetch it
  // twice, and a chat deleted meanwhile would be told as missing, not as
  // deleted, and the next message would go to another chat.
  if (app.opening === opened) await openDefault();
  schedule(ALL_AREAS);
}

function wire() {
  fillIcons();
  wireTabs();
  wireLogin();
  API.onUnauthorized(showLogin);

  $('#composer').addEventListener('submit', (e) => {
    e.preventDefault();
    send();
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
    // Escape in an empty message box stops the run; with text typed it is
    // left alone, so nothing typed is at risk.
    if (e.key === 'Escape' && !input.value && app.current && isRunning(app.current)) {
      e.preventDefault();
      stop();
    }
  });
  $('#composer-stop').addEventListener('click', () => stop());
  input.addEventListener('input', autosize);

  $('#new-session').addEventListener('click', async () => {
    chatNotice(null);
    try {
      // A new chat starts in the server's default mode.
      const s = await API.createSession({});
      listFirst(s);
      navigate(s.id);
      focusInput();
    } catch (e) {
      report(e);
    }
  });

  document.addEventListener('visibilitychange', () => {
    if (app.booted && document.visibilityState === 'visible' && $('#login-backdrop').hidden) catchUp();
  });

  window.addEventListener('hashchange', () => {
    const id = sessionFromHash();
    if (id && (!app.current || app.current.id !== id)) openSession(id);
  });
}

wire();
boot();
