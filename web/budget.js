// One meter per budget dimension: used / limit, amber past 80 %, red at the
// limit. While a run goes, the time meter ticks on between budget events,
// and the others follow the run's events (state.js liveUsage). The cost
// meter shows when a cost limit is set or when the run spent something,
// which it does only when prices are configured.

import { h, clear } from './dom.js';
import { DIMENSIONS, meterLevel, liveUsage } from './state.js';
import { DIMENSION_LABELS, formatAmount, formatLimit } from './format.js';

export function createBudgetDisplay({ meters, sub }) {
  const rows = new Map();
  let current = null;
  let timer = null;

  function row(dim) {
    const value = h('span', { class: 'meter-value' });
    const fill = h('span', { class: 'meter-fill' });
    const bar = h('span', { class: 'meter-bar', role: 'progressbar', 'aria-label': DIMENSION_LABELS[dim], 'aria-valuemin': '0' }, fill);
    const root = h('div', { class: 'meter', 'data-testid': `budget-${dim}`, 'data-dimension': dim },
      h('div', { class: 'meter-head' }, h('span', { class: 'meter-label' }, DIMENSION_LABELS[dim]), value), bar);
    return { root, value, fill, bar };
  }

  function draw() {
    const st = current;
    const b = st && st.budget;
    if (!b || !b.limits) {
      clear(meters);
      rows.clear();
      meters.appendChild(h('p', { class: 'muted meters-empty' }, 'Limits appear with the first run.'));
      sub.textContent = '';
      return;
    }
    if (!rows.size) clear(meters);
    const running = st.status !== 'idle';
    const usage = liveUsage(st);
    for (const dim of DIMENSIONS) {
      const limit = b.limits[dim];
      if (dim === 'cost_usd' && (limit === null || limit === undefined) && !(usage.cost_usd > 0)) {
        if (rows.has(dim)) {
          rows.get(dim).root.remove();
          rows.delete(dim);
        }
        continue;
      }
      let r = rows.get(dim);
      if (!r) {
        r = row(dim);
        rows.set(dim, r);
      }
      meters.appendChild(r.root); // keeps the order of DIMENSIONS
      let used = usage[dim] || 0;
      if (dim === 'seconds' && running && st.runStartedAt) used = Math.max(used, (Date.now() - st.runStartedAt) / 1000);
      const level = meterLevel(used, limit);
      const pct = limit > 0 ? Math.min(100, (used / limit) * 100) : 0;
      r.root.setAttribute('data-level', level);
      r.root.setAttribute('data-used', String(dim === 'seconds' ? Math.round(used * 1000) / 1000 : used));
      r.root.setAttribute('data-limit', limit === null || limit === undefined ? '' : String(limit));
      r.value.textContent = `${formatAmount(dim, used)} / ${formatLimit(dim, limit)}`;
      r.fill.style.width = `${pct}%`;
      r.bar.setAttribute('aria-valuemax', limit === null || limit === undefined ? '0' : String(limit));
      r.bar.setAttribute('aria-valuenow', String(used));
      r.bar.setAttribute('aria-valuetext', `${formatAmount(dim, used)} of ${formatLimit(dim, limit)}`);
    }
    const mode = b.preview || (st.run && st.run.mode) || '';
    sub.textContent = b.preview ? `next run · ${mode}` : running ? `this run · ${mode}` : `last run · ${mode}`;
  }

  return {
    render(st) {
      current = st;
      draw();
      const running = st && st.status !== 'idle';
      if (running && !timer) timer = setInterval(draw, 500);
      if (!running && timer) {
        clearInterval(timer);
        timer = null;
      }
    },
  };
}
