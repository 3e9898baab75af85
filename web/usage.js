// The signed-in owner's budgets per period (docs/owner-budgets.md), from
// GET /api/usage: one meter per budget, what was used and what calls in
// flight hold against the limit, and when the period resets. The card
// shows only when the owner has budgets; without authentication there is
// no owner and it stays hidden.

import { h, clear } from './dom.js';
import { meterLevel } from './state.js';
import { formatAmount, formatLimit } from './format.js';

const DIMENSION_NAMES = { tokens: 'Tokens', cost_usd: 'Cost' };

// "Tokens per day".
export function usageLabel(b) {
  return `${DIMENSION_NAMES[b.dimension] || b.dimension} per ${b.period}`;
}

// "resets Mon 7 Dec, 00:00 UTC": the reset time in UTC, as periods are.
export function resetText(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const day = d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short', timeZone: 'UTC' });
  const time = d.toISOString().slice(11, 16);
  return `resets ${day.replace(',', '')}, ${time} UTC`;
}

export function createUsageDisplay({ root, meters, sub }) {
  function meter(b) {
    const used = b.used + b.reserved;
    const level = meterLevel(used, b.limit);
    const pct = b.limit > 0 ? Math.min(100, (used / b.limit) * 100) : 0;
    const label = usageLabel(b);
    const value = `${formatAmount(b.dimension, b.used)} / ${formatLimit(b.dimension, b.limit)}`;
    const fill = h('span', { class: 'meter-fill' });
    fill.style.width = `${pct}%`;
    return h('div', {
      class: 'meter',
      'data-testid': `usage-${b.dimension}-${b.period}`,
      'data-dimension': b.dimension,
      'data-period': b.period,
      'data-level': level,
      'data-used': String(b.used),
      'data-reserved': String(b.reserved),
      'data-limit': String(b.limit),
    },
    h('div', { class: 'meter-head' }, h('span', { class: 'meter-label' }, label), h('span', { class: 'meter-value' }, value)),
    h('span', {
      class: 'meter-bar',
      role: 'progressbar',
      'aria-label': label,
      'aria-valuemin': '0',
      'aria-valuemax': String(b.limit),
      'aria-valuenow': String(b.used),
      'aria-valuetext': `${formatAmount(b.dimension, b.used)} of ${formatLimit(b.dimension, b.limit)}` +
        (b.reserved > 0 ? `, ${formatAmount(b.dimension, b.reserved)} held by runs going on` : ''),
    }, fill),
    h('span', { class: 'muted usage-reset', 'data-testid': 'usage-reset', title: b.resets_at }, resetText(b.resets_at)));
  }

  return {
    // data: the answer of GET /api/usage, or null (not signed in, or it
    // could not be read).
    render(data) {
      const budgets = (data && data.owner && data.budgets) || [];
      root.hidden = budgets.length === 0;
      clear(meters);
      sub.textContent = budgets.length ? data.owner : '';
      for (const b of budgets) meters.appendChild(meter(b));
    },
  };
}
