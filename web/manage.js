// Managing the open chat from its header: rename it in place, export it
// (Markdown or JSON), delete it after a confirmation, and the link back to
// the chat it was forked from. Renames and deletions are told to the
// page's other tabs in this browser over a BroadcastChannel, so they show
// there at once (docs/page.md, Managing chats).

import * as API from './api.js';
import { $, h } from './dom.js';

const CHANNEL = 'chatplane-chats';
const REVOKE_MS = 10000;

// opts:
//   current()               the open chat's session object, or null
//   sessions()              the chats the page knows, as listed
//   onRenamed(id, title)    a chat has a new title (here or in another tab)
//   onDeleted(id, here)     a chat is gone; here is false when another tab
//                           deleted it
//   report(err), announce(text)
export function createChatManager({ current, sessions, onRenamed, onDeleted, report, announce }) {
  const heading = $('#chat-heading');
  const title = $('#chat-title');
  const actions = $('#chat-actions');
  const renameBtn = $('#rename-session');
  const exportBtn = $('#export-session');
  const choices = $('#export-choices');
  const deleteBtn = $('#delete-session');
  const dialog = $('#delete-dialog');
  const forked = $('#forked-from');
  const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL) : null;
  let shownId = null;
  let renaming = null; // {input, error, id} while the title is being edited
  const sourceTitles = new Map(); // forked_from session id -> title, or null when it is gone
  const asking = new Set(); // source ids being read

  function tell(msg) {
    if (channel) channel.postMessage(msg);
  }

  if (channel) {
    channel.addEventListener('message', (e) => {
      const msg = e.data || {};
      if (typeof msg.id !== 'string') return;
      if (msg.kind === 'renamed' && typeof msg.title === 'string') onRenamed(msg.id, msg.title);
      else if (msg.kind === 'deleted') {
        sourceTitles.set(msg.id, null);
        onDeleted(msg.id, false);
      }
    });
  }

  // ---- rename in place ----

  function stopRenaming(focus) {
    if (!renaming) return;
    renaming.input.remove();
    renaming.error.remove();
    renaming.hint.remove();
    renaming = null;
    title.hidden = false;
    if (focus) renameBtn.focus();
  }

  function startRenaming() {
    const s = current();
    if (!s || renaming) return;
    const input = h('input', { type: 'text', class: 'rename-input', 'data-testid': 'rename-input', id: 'rename-input', 'aria-label': 'Chat title', 'aria-describedby': 'rename-hint', spellcheck: 'false' });
    input.value = s.title || '';
    const error = h('p', { class: 'rename-error', 'data-testid': 'rename-error', id: 'rename-error', role: 'alert', hidden: true });
    const hint = h('span', { class: 'sr-only', id: 'rename-hint' }, 'Enter saves, Escape cancels.');
    renaming = { input, error, hint, id: s.id };
    title.hidden = true;
    title.after(input, hint, error);
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.isComposing) {
        e.preventDefault();
        saveTitle();
      } else if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        stopRenaming(true);
      }
    });
    // Leaving the box unchanged ends the edit; with changes it stays open,
    // so nothing typed is lost.
    input.addEventListener('blur', () => {
      if (renaming && renaming.input === input && input.value === (s.title || '') && renaming.error.hidden) stopRenaming(false);
    });
    input.focus();
    input.select();
  }

  async function saveTitle() {
    const r = renaming;
    if (!r || r.busy) return;
    const want = r.input.value.trim();
    const s = current();
    if (s && s.id === r.id && want === s.title) {
      stopRenaming(true);
      return;
    }
    r.busy = true;
    try {
      const res = await API.patchSession(r.id, { title: want });
      if (renaming === r) stopRenaming(true);
      onRenamed(r.id, res.title);
      tell({ kind: 'renamed', id: r.id, title: res.title });
      announce(`Renamed to ${res.title}`);
    } catch (e) {
      if (renaming !== r) return report(e);
      // The server's reason, under the box: "title must not be empty".
      r.error.textContent = e.message;
      r.error.hidden = false;
      r.input.setAttribute('aria-invalid', 'true');
      r.input.setAttribute('aria-describedby', 'rename-hint rename-error');
      r.input.focus();
    } finally {
      r.busy = false;
    }
  }

  // ---- export ----

  function setExportOpen(open, focus) {
    choices.hidden = !open;
    exportBtn.setAttribute('aria-expanded', String(open));
    if (open) choices.querySelector('button').focus();
    else if (focus) exportBtn.focus();
  }

  // The download goes through fetch, which carries the session cookie like
  // every API call, and is handed to the browser as a blob; the server's
  // Content-Disposition names the file.
  async function download(format) {
    const s = current();
    setExportOpen(false, true);
    if (!s) return;
    try {
      const { blob, filename } = await API.exportSession(s.id, format);
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: filename, hidden: true });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), REVOKE_MS);
      announce(`Exported as ${filename}`);
    } catch (e) {
      report(e);
    }
  }

  // ---- delete, after a confirmation ----

  function askDelete() {
    const s = current();
    if (!s) return;
    dialog.dataset.sessionId = s.id;
    $('#delete-desc').textContent = `“${s.title || 'New chat'}” will be deleted with its messages, runs and tool calls. This cannot be undone.`;
    $('#delete-error').hidden = true;
    $('#confirm-delete').disabled = false;
    dialog.showModal();
    $('#cancel-delete').focus();
  }

  async function confirmDelete() {
    const id = dialog.dataset.sessionId;
    const btn = $('#confirm-delete');
    btn.disabled = true;
    try {
      await API.deleteSession(id);
    } catch (e) {
      // Already gone (deleted elsewhere) is what was asked for.
      if (e.status !== 404) {
        btn.disabled = false;
        $('#delete-error').textContent = e.message;
        $('#delete-error').hidden = false;
        return;
      }
    }
    dialog.close();
    sourceTitles.set(id, null);
    tell({ kind: 'deleted', id });
    onDeleted(id, true);
    announce('Chat deleted');
  }

  // ---- forked from ----

  async function drawForkedFrom(s) {
    const from = s && s.forked_from;
    if (!from) {
      forked.hidden = true;
      return;
    }
    const src = from.session_id;
    forked.hidden = false;
    const listed = sessions().find((x) => x.id === src);
    let name = listed ? listed.title : sourceTitles.get(src);
    paintForkedFrom(src, name);
    if (name !== undefined || asking.has(src)) return;
    // The source is not in the list (an older chat): ask for it, once.
    asking.add(src);
    try {
      name = (await API.getSession(src)).title;
    } catch (e) {
      if (e.status !== 404) return;
      name = null;
    } finally {
      asking.delete(src);
    }
    sourceTitles.set(src, name);
    const now = current();
    if (now && now.forked_from && now.forked_from.session_id === src) paintForkedFrom(src, name);
  }

  // name: the source's title, undefined while unknown, null when the source
  // was deleted (then there is nothing to link to).
  function paintForkedFrom(src, name) {
    if (name === null) {
      forked.removeAttribute('href');
      forked.textContent = 'Forked from a deleted chat';
      return;
    }
    forked.setAttribute('href', `#/sessions/${encodeURIComponent(src)}`);
    forked.textContent = name === undefined ? 'Forked from another chat' : `Forked from ${name}`;
  }

  // ---- wiring ----

  renameBtn.addEventListener('click', startRenaming);
  exportBtn.addEventListener('click', () => setExportOpen(choices.hidden, false));
  for (const b of choices.querySelectorAll('button')) b.addEventListener('click', () => download(b.getAttribute('data-format')));
  choices.addEventListener('keydown', (e) => {
    const all = [...choices.querySelectorAll('button')];
    const k = all.indexOf(document.activeElement);
    if (e.key === 'Escape') {
      e.preventDefault();
      setExportOpen(false, true);
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      all[(k + (e.key === 'ArrowDown' ? 1 : all.length - 1)) % all.length].focus();
    }
  });
  exportBtn.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !choices.hidden) setExportOpen(false, true);
  });
  // A click or focus anywhere else closes the choices.
  for (const type of ['click', 'focusin']) {
    document.addEventListener(type, (e) => {
      if (!choices.hidden && !e.target.closest('.export-menu')) setExportOpen(false, false);
    });
  }
  deleteBtn.addEventListener('click', askDelete);
  $('#cancel-delete').addEventListener('click', () => dialog.close());
  $('#confirm-delete').addEventListener('click', confirmDelete);
  // Escape closes the dialog by itself (its cancel event); the focus goes
  // back to the button that opened it either way.
  dialog.addEventListener('close', () => {
    if (current()) deleteBtn.focus();
  });

  return {
    // Draws the header's controls for the open chat's session (or none).
    render(s) {
      const id = s ? s.id : null;
      if (id !== shownId) {
        stopRenaming(false);
        setExportOpen(false, false);
        if (dialog.open) dialog.close();
        shownId = id;
      }
      actions.hidden = !s;
      heading.classList.toggle('has-fork', !!(s && s.forked_from));
      drawForkedFrom(s);
    },
  };
}
