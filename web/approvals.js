// Approval cards at the end of the conversation: a tool call that waits for
// a person shows its tool, server, arguments and why it is asked, with
// Approve, Deny (with an optional reason) and how long to remember the
// answer. Once decided, the card says who decided and why, and its
// controls are gone. Cards of the current run stay; older ones leave.

import { createCardList } from './cardlist.js';
import { h } from './dom.js';
import { icon } from './icons.js';
import { prettyJson } from './format.js';

const DECISION_WORDS = { approved: 'Approved', denied: 'Denied', expired: 'Expired unanswered', cancelled: 'Cancelled', pending: 'Waiting for you' };

// "by local", "by the timeout" …: who ended the wait, in words.
function byWords(who) {
  if (!who) return '';
  if (who === 'timeout') return ' when nobody answered in time';
  if (who === 'stop') return ' when the run was stopped';
  if (who === 'remembered') return ' by an earlier answer';
  return ` by ${who}`;
}

export function createApprovalCards({ list, onDecide }) {
  function card(a) {
    const pending = a.status === 'pending';
    const headId = `approval-title-${a.id}`;
    const li = h('section', { class: 'approval-card', 'data-testid': 'approval-card', 'data-status': a.status, 'data-approval-id': a.id, 'data-tool': a.tool, tabindex: '-1', 'aria-labelledby': headId });
    li.append(
      h('div', { class: 'approval-head' },
        icon(pending ? 'alert' : a.status === 'approved' ? 'check' : 'ban'),
        h('h3', { id: headId, class: 'approval-title' }, pending ? 'Allow this tool call?' : `Tool call ${(DECISION_WORDS[a.status] || a.status).toLowerCase()}`)),
      h('p', { class: 'approval-tool' }, h('span', { class: 'tool-name', 'data-testid': 'approval-tool' }, a.tool), ' ', h('span', { class: 'tool-server', 'data-testid': 'approval-server' }, a.server)),
      h('pre', { class: 'detail-pre approval-args', 'data-testid': 'approval-arguments' }, prettyJson(a.arguments ?? {})),
      h('p', { class: 'approval-reason muted', 'data-testid': 'approval-reason' }, `Asked because ${a.reason || 'the policy asks for it'}.`),
    );
    if (pending) {
      const reasonId = `approval-deny-reason-${a.id}`;
      const rememberId = `approval-remember-${a.id}`;
      const reason = h('input', { type: 'text', id: reasonId, class: 'approval-input', 'data-testid': 'deny-reason', maxlength: '500', autocomplete: 'off' });
      const remember = h('select', { id: rememberId, class: 'approval-select', 'data-testid': 'remember-select' },
        h('option', { value: 'once' }, 'Just this call'),
        h('option', { value: 'run' }, 'For this run'),
        h('option', { value: 'session' }, 'For this chat'));
      const approve = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'approve-button' }, icon('check'), h('span', null, 'Approve'));
      const deny = h('button', { type: 'button', class: 'btn', 'data-testid': 'deny-button' }, icon('ban'), h('span', null, 'Deny'));
      const decide = (decision) => {
        approve.disabled = true;
        deny.disabled = true;
        const body = { decision, remember: remember.value };
        const why = reason.value.trim();
        if (decision === 'deny' && why) body.reason = why;
        Promise.resolve(onDecide(a, body)).finally(() => {
          approve.disabled = false;
          deny.disabled = false;
        });
      };
      approve.addEventListener('click', () => decide('approve'));
      deny.addEventListener('click', () => decide('deny'));
      // Enter in the reason field denies: a reason is only read on a denial.
      reason.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') {
          e.preventDefault();
          decide('deny');
        }
      });
      li.append(
        h('div', { class: 'approval-fields' },
          h('label', { for: rememberId }, 'Remember the answer'), remember,
          h('label', { for: reasonId }, 'Reason for a denial (optional)'), reason),
        h('div', { class: 'approval-actions' }, approve, deny),
      );
    } else {
      const text = `${DECISION_WORDS[a.status] || a.status}${byWords(a.decided_by)}${a.decision_reason ? `: ${a.decision_reason}` : ''}`;
      li.append(h('p', { class: 'approval-decision', 'data-testid': 'approval-decision' }, text));
    }
    return li;
  }

  // Draws the cards; returns the card that just appeared pending, else
  // null (the caller moves the focus to it).
  return { render: createCardList({ list, items: (st) => st.approvals, card }) };
}
