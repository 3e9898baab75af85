// The buttons under a message: Copy (its text as written: what the person
// typed, or the answer's Markdown) and, on a sent message, Edit.
//
// Edit opens the text in place, in a box where the bubble was. Saving
// (Enter, or the Save button) hands the new text to onEdit, which forks
// the chat before this message with it (docs/page.md, Edit): the chat
// shown stays as it was, and the page moves to the new one. Cancel (or
// Escape) puts the bubble back. A refused save keeps the box open with the
// server's reason under it.

import { h } from './dom.js';
import { icon } from './icons.js';
import { copyButton } from './copy.js';

const HINT = 'Saving starts a new chat from here with this text; this chat stays as it is. Enter saves, Shift+Enter for a new line, Escape cancels.';

// The row of buttons for message m, to go after its bubble in li. text()
// gives the message's current text (an answer grows while it streams);
// onEdit(m, newText) resolves when the new chat is open, or throws an
// error whose message is shown.
export function messageActions({ m, li, bubble, text, onEdit }) {
  const row = h('div', { class: 'message-actions' });
  row.appendChild(copyButton({ text, label: '', ariaLabel: m.role === 'user' ? 'Copy message' : 'Copy answer', testid: 'copy-message', cls: 'icon-button' }));
  if (m.role !== 'user' || !onEdit) return row;

  const editBtn = h('button', { type: 'button', class: 'btn btn-ghost btn-small icon-button', 'data-testid': 'edit-message', 'aria-label': 'Edit message', title: 'Edit message' }, icon('pen'));
  row.appendChild(editBtn);
  let form = null;

  function close() {
    if (!form) return;
    form.remove();
    form = null;
    bubble.hidden = false;
    row.hidden = false;
    editBtn.focus();
  }

  function open() {
    if (form) return;
    const base = `edit-${m.id}`;
    const box = h('textarea', { class: 'edit-input', 'data-testid': 'edit-input', id: `${base}-text`, rows: 3, 'aria-label': 'Edit message', 'aria-describedby': `${base}-hint` });
    box.value = text();
    const error = h('p', { class: 'edit-error', 'data-testid': 'edit-error', id: `${base}-error`, role: 'alert', hidden: true });
    const cancel = h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-testid': 'edit-cancel' }, 'Cancel');
    const save = h('button', { type: 'submit', class: 'btn btn-primary btn-small', 'data-testid': 'edit-save' }, 'Save and send');
    form = h('form', { class: 'edit-form', 'data-testid': 'edit-form', autocomplete: 'off' },
      box,
      h('p', { class: 'edit-hint muted', id: `${base}-hint` }, HINT),
      error,
      h('div', { class: 'edit-buttons' }, cancel, save));

    let busy = false;
    async function submit() {
      if (busy) return;
      busy = true;
      save.disabled = true;
      box.readOnly = true;
      error.hidden = true;
      box.removeAttribute('aria-invalid');
      try {
        await onEdit(m, box.value.trim());
      } catch (e) {
        if (!form) return;
        error.textContent = (e && e.message) || String(e);
        error.hidden = false;
        box.setAttribute('aria-invalid', 'true');
        box.setAttribute('aria-describedby', `${base}-hint ${base}-error`);
        box.focus();
      } finally {
        busy = false;
        save.disabled = false;
        box.readOnly = false;
      }
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submit();
    });
    cancel.addEventListener('click', close);
    box.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        submit();
      } else if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        close();
      }
    });
    bubble.hidden = true;
    row.hidden = true;
    li.insertBefore(form, bubble);
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  editBtn.addEventListener('click', open);
  return row;
}
