// The left column: the chats, newest first, each with a status dot, and
// the "New chat" button.

import { h, clear } from './dom.js';
import { formatRelative, stopTone, REASON_TITLES } from './format.js';

export function createSessionList({ list, empty, onOpen }) {
  function item(s, current) {
    const running = s.status === 'running';
    const reason = s.last_run ? s.last_run.stop_reason : null;
    const tone = running ? 'running' : reason ? stopTone(s.last_run) : 'none';
    const state = running ? 'running' : reason ? REASON_TITLES[reason] || reason : 'no runs yet';
    const btn = h(
      'button',
      {
        type: 'button',
        class: 'session-item',
        'data-testid': 'session-item',
        'data-session-id': s.id,
        'data-status': s.status,
        'aria-current': current ? 'page' : null,
        onclick: () => onOpen(s.id),
      },
      h('span', { class: 'dot', 'data-tone': tone, role: 'img', 'aria-label': state, title: state }),
      h('span', { class: 'session-text' },
        h('span', { class: 'session-title' }, s.title || 'New chat'),
        h('span', { class: 'session-meta muted' }, `${formatRelative(s.updated_at)} · ${s.mode}`)),
    );
    return h('li', null, btn);
  }

  return {
    render(sessions, currentId) {
      const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('.session-item');
      const focusId = focused ? focused.getAttribute('data-session-id') : null;
      clear(list);
      for (const s of sessions) list.appendChild(item(s, s.id === currentId));
      empty.hidden = sessions.length > 0;
      if (focusId) {
        const again = list.querySelector(`[data-session-id="${CSS.escape(focusId)}"]`);
        if (again) again.focus();
      }
    },
  };
}
