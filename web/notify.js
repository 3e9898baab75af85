// Telling a person who looks elsewhere that the open chat needs them: when
// its run ends, or starts waiting for an approval or an answer, while the
// tab is hidden, the tab's title and icon say so until the tab is seen
// again, and a browser notification shows if the person allowed them.
// Permission is asked only when the person clicks the header's button,
// never on load.

import { REASON_TITLES } from './format.js';

// What the tab shows for each kind of news: a mark before the chat's title
// and an icon with a badge (same-origin files, which the page's
// Content-Security-Policy allows).
const KINDS = {
  done: { mark: '✓ Done', icon: 'favicon-done.svg' },
  stopped: { mark: '■ Stopped', icon: 'favicon-stopped.svg' },
  waiting: { mark: '⏸ Needs you', icon: 'favicon-wait.svg' },
};

// The news an event brings, or null: {kind, body}.
export function newsOf(ev) {
  switch (ev.type) {
    case 'run_stopped': {
      const reason = REASON_TITLES[ev.reason] || ev.reason;
      return { kind: ev.reason === 'completed' ? 'done' : 'stopped', body: ev.detail ? `${reason}: ${ev.detail}` : reason };
    }
    case 'approval_requested':
      return { kind: 'waiting', body: `${ev.tool} waits for your approval` };
    case 'input_requested':
      return { kind: 'waiting', body: ev.message ? `${ev.server} asks: ${ev.message}` : `${ev.server} asks you a question` };
    default:
      return null;
  }
}

// The tab's title for news about a chat: "✓ Done — Trip plan".
export function newsTitle(kind, chat) {
  return `${KINDS[kind].mark} — ${chat || 'New chat'}`;
}

// button: the header's "Notify me" button; link: the page's
// <link rel="icon">.
export function createNotifier({ button, link }) {
  const plainIcon = link.getAttribute('href');
  let plainTitle = document.title;
  let news = null; // {kind, title} while the tab was hidden
  let seen = { id: null, seq: 0 };

  const hidden = () => document.visibilityState === 'hidden';
  // Read at each use, so a browser without notifications (or a page that
  // replaces them) is taken as it is now.
  const api = () => (typeof window.Notification === 'function' ? window.Notification : null);

  function drawButton() {
    const N = api();
    button.hidden = !N || N.permission !== 'default';
  }

  function show(n) {
    news = n;
    document.title = n.title;
    link.setAttribute('href', KINDS[n.kind].icon);
  }

  function clearNews() {
    if (!news) return;
    news = null;
    document.title = plainTitle;
    link.setAttribute('href', plainIcon);
  }

  function notify(sessionId, title, body) {
    const N = api();
    if (!N || N.permission !== 'granted') return;
    try {
      // One notification per chat: a newer one replaces it.
      const n = new N(title, { body, tag: `chatplane-${sessionId}`, icon: plainIcon });
      n.onclick = () => {
        window.focus();
        n.close();
      };
    } catch {
      // Some browsers allow notifications only from a service worker; the
      // title and the icon still tell.
    }
  }

  button.addEventListener('click', async () => {
    const N = api();
    if (!N) return;
    try {
      await N.requestPermission();
    } catch {
      // An old browser's requestPermission takes a callback instead; the
      // button stays for another try.
    }
    drawButton();
  });

  document.addEventListener('visibilitychange', () => {
    if (!hidden()) clearNews();
  });
  drawButton();

  return {
    // The chat just opened: its events up to seq were there before (a
    // running chat's replay), so they are no news.
    open(id, seq) {
      seen = { id, seq: seq || 0 };
    },

    // Called with each event of the open chat, after the state took it.
    event(st, ev) {
      if (st.id === seen.id && typeof ev.seq === 'number' && ev.seq <= seen.seq) return;
      if (!hidden()) return;
      if ((ev.type === 'approval_decided' || ev.type === 'input_answered') && news && news.kind === 'waiting') {
        // Answered elsewhere (another tab, the terminal): nothing waits.
        clearNews();
        return;
      }
      const n = newsOf(ev);
      if (!n) return;
      const title = newsTitle(n.kind, st.session && st.session.title);
      show({ kind: n.kind, title });
      notify(st.id, title, n.body);
    },

    // The tab's title: the page's own, or the news while there is some.
    title(plain) {
      plainTitle = plain;
      return news ? news.title : plain;
    },
  };
}
