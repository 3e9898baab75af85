// Question cards at the end of the conversation, next to the approval
// cards: a tool's server asks the person to fill in a form (docs/runs.md,
// Questions). The form is built from the schema the server sent, one field
// per property in its order: a text box (a date box for a date), a number
// box, a check box, a list of choices, or a group of check boxes for a
// choice of several. Submit sends what was filled in, Decline sends
// nothing; a refused answer shows the server's reason under the form.
// Once answered, the card says how and its form is gone.

import { createCardList } from './cardlist.js';
import { h } from './dom.js';
import { icon } from './icons.js';

const STATUS_WORDS = { accepted: 'Answered', declined: 'Declined', cancelled: 'Cancelled', expired: 'Expired unanswered', pending: 'Waiting for you' };

function byWords(who) {
  if (!who) return '';
  if (who === 'timeout') return ' when nobody answered in time';
  if (who === 'stop') return ' when the run was stopped';
  if (who === 'tool') return ' when the tool call ended';
  return ` by ${who}`;
}

// The choices of a field, or of its items: [{value, label}] or null.
function choicesOf(f) {
  const holder = f.type === 'array' ? f.items || {} : f;
  const list = holder.enum || holder.oneOf || holder.anyOf;
  if (!Array.isArray(list)) return null;
  return list.map((c, i) => {
    const value = typeof c === 'object' && c !== null ? c.const : c;
    const title = typeof c === 'object' && c !== null ? c.title : Array.isArray(holder.enumNames) ? holder.enumNames[i] : null;
    return { value, label: title || value };
  });
}

// One field of the form: its label, its control, and a read() that gives
// its value for the answer (undefined: leave it out).
function field(inputId, name, f, required) {
  const id = `input-${inputId}-${name}`;
  const testid = `input-field-${name}`;
  const labelText = `${f.title || name}${required ? ' (required)' : ''}`;
  const desc = f.description ? h('p', { class: 'input-desc muted', id: `${id}-desc` }, f.description) : null;
  const described = desc ? { 'aria-describedby': `${id}-desc` } : {};
  const choices = choicesOf(f);
  if (f.type === 'array' && choices) {
    const dflt = Array.isArray(f.default) ? f.default : [];
    const boxes = choices.map((c, k) => {
      const box = h('input', { type: 'checkbox', id: `${id}-${k}`, value: String(c.value) });
      box.checked = dflt.includes(c.value);
      return { box, row: h('label', { class: 'input-choice', for: `${id}-${k}` }, box, ' ', String(c.label)) };
    });
    const group = h('fieldset', { class: 'input-group', 'data-testid': testid, ...described },
      h('legend', null, labelText), ...boxes.map((b) => b.row));
    return { node: h('div', { class: 'input-field' }, group, desc), read: () => boxes.filter((b) => b.box.checked).map((b) => b.box.value) };
  }
  let control;
  let read;
  if (f.type === 'boolean') {
    control = h('input', { type: 'checkbox', id, 'data-testid': testid, ...described });
    control.checked = f.default === true;
    read = () => control.checked;
    return { node: h('div', { class: 'input-field input-field-check' }, control, h('label', { for: id }, labelText), desc), read };
  }
  if (choices) {
    control = h('select', { id, class: 'approval-select', 'data-testid': testid, ...described },
      required ? null : h('option', { value: '' }, '—'),
      ...choices.map((c) => h('option', { value: String(c.value) }, String(c.label))));
    if (f.default !== undefined) control.value = String(f.default);
    read = () => (control.value === '' ? undefined : control.value);
  } else if (f.type === 'number' || f.type === 'integer') {
    control = h('input', { type: 'number', id, class: 'approval-input', 'data-testid': testid, step: f.type === 'integer' ? '1' : 'any', ...described });
    if (f.minimum !== undefined) control.min = String(f.minimum);
    if (f.maximum !== undefined) control.max = String(f.maximum);
    if (f.default !== undefined) control.value = String(f.default);
    read = () => (control.value.trim() === '' ? undefined : Number(control.value));
  } else {
    const type = f.format === 'date' ? 'date' : f.format === 'email' ? 'email' : f.format === 'uri' ? 'url' : 'text';
    control = h('input', { type, id, class: 'approval-input', 'data-testid': testid, autocomplete: 'off', ...described });
    if (f.maxLength !== undefined) control.maxLength = f.maxLength;
    if (typeof f.default === 'string') control.value = f.default;
    read = () => (control.value === '' ? undefined : control.value);
  }
  if (required) control.required = true;
  return { node: h('div', { class: 'input-field' }, h('label', { for: id }, labelText), control, desc), read };
}

export function createInputCards({ list, onAnswer }) {
  function card(x) {
    const pending = x.status === 'pending';
    const headId = `input-title-${x.id}`;
    const li = h('section', { class: 'approval-card input-card', 'data-testid': 'input-card', 'data-status': x.status, 'data-input-id': x.id, 'data-server': x.server, tabindex: '-1', 'aria-labelledby': headId });
    li.append(
      h('div', { class: 'approval-head' },
        icon(pending ? 'alert' : x.status === 'accepted' ? 'check' : 'ban'),
        h('h3', { id: headId, class: 'approval-title' }, pending ? `${x.server} asks you` : `Question ${(STATUS_WORDS[x.status] || x.status).toLowerCase()}`)),
      h('p', { class: 'input-message', 'data-testid': 'input-message' }, x.message),
    );
    if (!pending) {
      const text = `${STATUS_WORDS[x.status] || x.status}${byWords(x.answered_by)}`;
      li.append(h('p', { class: 'approval-decision', 'data-testid': 'input-outcome' }, text));
      return li;
    }
    const schema = x.schema || {};
    const required = new Set(Array.isArray(schema.required) ? schema.required : []);
    const fields = Object.entries(schema.properties || {}).map(([name, f]) => [name, field(x.id, name, f || {}, required.has(name))]);
    const error = h('p', { class: 'input-error', 'data-testid': 'input-error', role: 'alert', hidden: true });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'input-submit' }, icon('check'), h('span', null, 'Submit'));
    const decline = h('button', { type: 'button', class: 'btn', 'data-testid': 'input-decline' }, icon('ban'), h('span', null, 'Decline'));
    const form = h('form', { class: 'input-form', novalidate: true }, ...fields.map(([, fl]) => fl.node), error, h('div', { class: 'approval-actions' }, submit, decline));
    const answer = (body) => {
      submit.disabled = true;
      decline.disabled = true;
      error.hidden = true;
      Promise.resolve(onAnswer(x, body)).then((problem) => {
        if (problem) {
          error.textContent = problem;
          error.hidden = false;
        }
      }).finally(() => {
        submit.disabled = false;
        decline.disabled = false;
      });
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const content = {};
      for (const [name, fl] of fields) {
        const v = fl.read();
        if (v !== undefined) content[name] = v;
      }
      answer({ action: 'accept', content });
    });
    decline.addEventListener('click', () => answer({ action: 'decline' }));
    li.append(form);
    return li;
  }

  // Draws the cards; returns the card that just appeared pending, else
  // null (the caller moves the focus to it).
  return { render: createCardList({ list, items: (st) => st.inputs, card }) };
}
