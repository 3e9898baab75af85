// The status indicator: what the run is doing now (colour and icon), the
// detail ("running fake__lookup"), and the time since the run started,
// ticking. Status changes are announced through the page's live region.

import { clear } from './dom.js';
import { icon, STATUS_ICONS } from './icons.js';
import { STATUS_LABELS, formatElapsed } from './format.js';

export function createStatusIndicator({ root, badge, label, detail, elapsed, tabDot, announce }) {
  let shown = null;
  let startedAt = null;
  let timer = null;

  function tick() {
    elapsed.textContent = startedAt === null ? '' : formatElapsed(Date.now() - startedAt);
  }

  return {
    render(st) {
      const status = st ? st.status : 'idle';
      const text = STATUS_LABELS[status] || status;
      const det = st && st.detail ? st.detail : status === 'idle' ? 'Waiting for your message' : '';
      const key = `${status}|${det}`;
      root.setAttribute('data-status', status);
      tabDot.setAttribute('data-status', status);
      if (key !== shown) {
        if (!shown || shown.split('|')[0] !== status) {
          clear(badge);
          badge.appendChild(icon(STATUS_ICONS[status] || 'info'));
        }
        label.textContent = text;
        detail.textContent = det;
        detail.hidden = !det;
        if (shown !== null && status !== 'idle') announce(det ? `${text}: ${det}` : text);
        shown = key;
      }
      startedAt = st && status !== 'idle' ? st.runStartedAt ?? Date.now() : null;
      if (startedAt !== null && !timer) timer = setInterval(tick, 250);
      if (startedAt === null && timer) {
        clearInterval(timer);
        timer = null;
      }
      tick();
    },
  };
}
