// The left column: the chats, newest first, each with a status dot; the
// search box that filters them through the API as one types; and "Load
// more" when there are more chats than one page (docs/page.md, Chats).
//
// The page polls the newest page of chats (app.js) and hands it to
// render(). Older pages, and the pages of a search, are fetched here, with
// before= the oldest chat shown, and kept until the search changes.

import { h, clear } from './dom.js';
import { formatRelative, stopTone, REASON_TITLES } from './format.js';
import { pageSessions } from './api.js';

export const PAGE = 50;
const DEBOUNCE_MS = 250;

// Newest first, as the API orders them: by creation time, then by id.
function newestFirst(a, b) {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

// a followed by the chats of b it does not hold, in order.
function union(a, b) {
  const ids = new Set(a.map((s) => s.id));
  return a.concat(b.filter((s) => !ids.has(s.id)));
}

export function createSessionList({ list, empty, onOpen, search, more, onError = () => {} }) {
  const emptyText = empty.textContent;
  let polled = []; // the newest page, as the page last polled it
  let currentId = null;
  let older = []; // pages fetched beyond the polled one, without a search
  let olderMore = false; // whether the last of those pages was full
  let query = ''; // the search, trimmed; '' when not searching
  let found = null; // the search's chats so far, null until its first page
  let foundMore = false;
  let searchError = null;
  let seq = 0; // a new search or a cleared one outdates answers on their way
  let timer = null;
  let loading = false;

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

  // What the list shows: the search's chats, with the live state of those
  // also in the polled page; or the polled page and the older pages.
  function view() {
    if (query) {
      if (!found) return [];
      const live = new Map(polled.map((s) => [s.id, s]));
      return found.map((s) => live.get(s.id) || s);
    }
    return union(polled, older);
  }

  function draw() {
    const shown = view();
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('.session-item');
    const focusId = focused ? focused.getAttribute('data-session-id') : null;
    clear(list);
    for (const s of shown) list.appendChild(item(s, s.id === currentId));
    list.setAttribute('aria-busy', query && !found && !searchError ? 'true' : 'false');
    empty.textContent = searchError ? `Search failed: ${searchError}`
      : query ? `No chats match “${query}”.` : emptyText;
    empty.hidden = shown.length > 0 || (query !== '' && !found && !searchError);
    more.hidden = query ? !found || !foundMore : older.length ? !olderMore : polled.length < PAGE;
    more.disabled = loading;
    if (focusId) {
      const again = list.querySelector(`[data-session-id="${CSS.escape(focusId)}"]`);
      if (again) again.focus();
    }
  }

  // Fetches the page of the search (or of all chats) older than `before`
  // and hands it to `take`, unless the search changed meanwhile.
  async function fetchPage(before, take) {
    const mine = seq;
    loading = true;
    draw();
    try {
      const r = await pageSessions(query, before, PAGE);
      if (mine !== seq) return;
      searchError = null;
      take(r.sessions || []);
    } catch (e) {
      if (mine !== seq) return;
      if (query) searchError = e.message;
      else onError(e);
    } finally {
      if (mine === seq) {
        loading = false;
        draw();
      }
    }
  }

  function startSearch() {
    timer = null;
    seq++;
    found = null;
    foundMore = false;
    searchError = null;
    if (!query) {
      loading = false;
      draw();
      return;
    }
    fetchPage(null, (page) => {
      found = page;
      foundMore = page.length === PAGE;
    });
  }

  function onInput() {
    const q = search.value.trim();
    if (q === query) return;
    query = q;
    // Clearing shows the whole list at once; typing waits for a pause.
    if (timer) clearTimeout(timer);
    if (!q) startSearch();
    else timer = setTimeout(startSearch, DEBOUNCE_MS);
  }

  function loadMore() {
    if (loading) return;
    const shown = view();
    const last = shown.length ? shown[shown.length - 1].id : null;
    fetchPage(last, (page) => {
      if (query) {
        found = union(found || [], page);
        foundMore = page.length === PAGE;
      } else {
        older = union(older, page).sort(newestFirst);
        olderMore = page.length === PAGE;
      }
    });
  }

  search.addEventListener('input', onInput);
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && search.value) {
      search.value = '';
      onInput();
    }
  });
  more.addEventListener('click', loadMore);

  return {
    render(sessions, id) {
      const before = polled;
      polled = sessions;
      currentId = id;
      // New chats push the oldest of the polled page out of it; with older
      // pages shown, the ones pushed out join them, so none goes missing.
      if (older.length) {
        const now = new Set(sessions.map((s) => s.id));
        older = union(before.filter((s) => !now.has(s.id) && newestFirst(s, sessions[sessions.length - 1] || s) > 0), older);
      }
      draw();
    },
    // A chat was deleted: it leaves the older pages and the search too.
    forget(id) {
      older = older.filter((s) => s.id !== id);
      if (found) found = found.filter((s) => s.id !== id);
      draw();
    },
    // A chat was renamed: the older pages and the search show the new title
    // (the search keeps it until the text changes, whether it still matches
    // or not, as a list one is reading should not jump).
    retitle(id, title) {
      for (const s of older.concat(found || [])) if (s.id === id) s.title = title;
      draw();
    },
  };
}
