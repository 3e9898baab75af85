// Why the session is idle: the stop reason in words, the detail, the
// diagnosis (what is wrong, above what to do about it), and the offered
// actions as buttons.

import { h, clear } from './dom.js';
import { icon } from './icons.js';
import { REASON_TITLES, stopTone } from './format.js';

const TONE_ICONS = { good: 'check', warn: 'gauge', bad: 'alert', neutral: 'pause' };
const ACTION_ICONS = { continue: 'play', switch_mode: 'gauge', retry: 'refresh', rephrase: 'pen' };

export function createWhyIdle({ root, body, onAction }) {
  let shown = '';

  return {
    render(st) {
      const run = st && st.run;
      const idle = !st || st.status === 'idle';
      const key = idle && run && run.status === 'stopped' ? JSON.stringify([run.id, run.stop_reason, run.stop_detail, run.diagnosis, run.actions]) : idle ? 'none' : 'running';
      if (key === shown) return;
      shown = key;
      clear(body);
      if (!idle) {
        root.hidden = true;
        return;
      }
      root.hidden = false;
      if (!run || run.status !== 'stopped') {
        root.setAttribute('data-tone', 'neutral');
        body.appendChild(h('p', { class: 'muted why-empty' }, 'Nothing has run in this chat yet. Send a message to start a run.'));
        return;
      }
      const tone = stopTone(run);
      const summary = (run.diagnosis && run.diagnosis.summary) || null;
      root.setAttribute('data-tone', tone);
      // The DOM's append writes a null as the text "null": the parts left
      // out are dropped first.
      body.append(...[
        h('div', { class: 'why-head' },
          h('span', { class: 'why-icon' }, icon(TONE_ICONS[tone])),
          h('strong', { class: 'stop-reason', 'data-testid': 'stop-reason', 'data-reason': run.stop_reason }, REASON_TITLES[run.stop_reason] || run.stop_reason),
          run.wrapped_up ? h('span', { class: 'chip chip-small', title: 'The last step answered with what it had instead of being cut off' }, 'wrapped up') : null),
        // A summary that already quotes the detail stands for both.
        run.stop_detail && !(summary && summary.includes(run.stop_detail)) ? h('p', { class: 'stop-detail' }, run.stop_detail) : null,
        summary
          ? h('p', { class: 'diagnosis', 'data-testid': 'diagnosis', 'data-playbook': run.diagnosis.playbook }, summary)
          : null,
        run.recovery_suggestion ? h('p', { class: 'recovery-suggestion muted', 'data-testid': 'recovery-suggestion' }, run.recovery_suggestion) : null,
      ].filter(Boolean));
      if (run.actions && run.actions.length) {
        body.appendChild(h('div', { class: 'actions' }, run.actions.map((a, k) =>
          h('button', { type: 'button', class: `btn ${k === 0 ? 'btn-primary' : 'btn-secondary'} btn-small`, 'data-testid': 'action-button', 'data-kind': a.kind, 'data-mode': a.mode || null, onclick: () => onAction(a) },
            icon(ACTION_ICONS[a.kind] || 'play'), a.label || a.kind))));
      }
    },
  };
}
