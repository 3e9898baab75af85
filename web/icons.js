// Inline SVG icons (24×24 stroke paths), made as DOM nodes. The page's CSP
// allows no inline markup, and an icon font would be one more file; a few
// paths are enough.

const NS = 'http://www.w3.org/2000/svg';

const PATHS = {
  check: ['M5 12.5l4.5 4.5L19 7.5'],
  x: ['M6 6l12 12', 'M18 6L6 18'],
  clock: ['M12 7v5l3 2', 'M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z'],
  ban: ['M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z', 'M5.7 5.7l12.6 12.6'],
  alert: ['M12 4L2.5 20h19z', 'M12 10v4.5', 'M12 17.2v.3'],
  play: ['M8 5.5v13l10.5-6.5z'],
  stop: ['M7 7h10v10H7z'],
  plus: ['M12 5v14', 'M5 12h14'],
  copy: ['M9 9h10v10H9z', 'M5 15V5h10'],
  download: ['M12 4v11', 'M7 10.5l5 5 5-5', 'M5 19.5h14'],
  trash: ['M4.5 7h15', 'M9.5 7V4.5h5V7', 'M6.5 7l1 13h9l1-13', 'M10.5 11v5.5', 'M13.5 11v5.5'],
  chevron: ['M9 6l6 6-6 6'],
  send: ['M4 12l16-8-6 16-2.5-6.5z', 'M11.5 13.5L20 4'],
  spark: ['M12 3v4', 'M12 17v4', 'M3 12h4', 'M17 12h4', 'M6 6l2.5 2.5', 'M15.5 15.5L18 18', 'M18 6l-2.5 2.5', 'M8.5 15.5L6 18'],
  wrench: ['M14.5 5.5a4 4 0 0 0 4.9 4.9L12 17.8a2.1 2.1 0 0 1-3-3l7.4-7.4', 'M14.5 5.5L17 3'],
  pen: ['M4 20h4L19 9l-4-4L4 16z'],
  refresh: ['M20 12a8 8 0 1 1-2.3-5.7', 'M20 4v5h-5'],
  pause: ['M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z', 'M10 9v6', 'M14 9v6'],
  dots: ['M6 12h.01', 'M12 12h.01', 'M18 12h.01'],
  info: ['M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z', 'M12 11v5', 'M12 7.8v.3'],
  chat: ['M4 5h16v11H9l-5 4z'],
  gauge: ['M3.5 17a8.5 8.5 0 1 1 17 0', 'M12 17l3.5-5', 'M3.5 17h17'],
  list: ['M8 6h12', 'M8 12h12', 'M8 18h12', 'M4 6h.01', 'M4 12h.01', 'M4 18h.01'],
  logo: ['M4 6h11v8H8l-4 3z', 'M15 10h5v7l-3-2h-6v-1'],
};

export function icon(name, cls = '') {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', `icon icon-${name}${cls ? ' ' + cls : ''}`);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const d of PATHS[name] || []) {
    const p = document.createElementNS(NS, 'path');
    p.setAttribute('d', d);
    svg.appendChild(p);
  }
  return svg;
}

// The icon of a tool execution status or a run status.
export const STATUS_ICONS = {
  ok: 'check',
  error: 'x',
  timeout: 'clock',
  cancelled: 'ban',
  running: 'dots',
  idle: 'pause',
  thinking: 'spark',
  responding: 'pen',
  tool_running: 'wrench',
  retrying: 'refresh',
  stopping: 'stop',
  waiting_for_approval: 'alert',
  waiting_for_input: 'alert',
  denied: 'ban',
};
