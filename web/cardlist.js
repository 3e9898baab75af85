// The cards under the conversation that wait for the person (approvals,
// questions): one list per kind, redrawn from the open chat's state. A
// card is drawn again only when its status changed, keeping the focus if it
// was inside; the cards of the current run stay and older ones leave; a
// card that just appeared pending is returned, so the caller can move the
// focus to it.

import { clear } from './dom.js';

// list: the container; items(st): the chat's items of this kind, each with
// id, run_id and status; card(item): a new element for it.
export function createCardList({ list, items, card }) {
  const nodes = new Map(); // item id -> {li, status}
  let sessionId = null;

  return function render(st) {
    if (!st || st.id !== sessionId) {
      nodes.clear();
      clear(list);
      sessionId = st ? st.id : null;
    }
    const runId = st && st.run ? st.run.id : null;
    const shown = st ? items(st).filter((x) => x.status === 'pending' || x.run_id === runId) : [];
    const keep = new Set(shown.map((x) => x.id));
    for (const [id, n] of nodes) {
      if (!keep.has(id)) {
        n.li.remove();
        nodes.delete(id);
      }
    }
    let fresh = null;
    shown.forEach((x, k) => {
      let n = nodes.get(x.id);
      if (!n || n.status !== x.status) {
        const hadFocus = n && n.li.contains(document.activeElement);
        const li = card(x);
        if (n) n.li.replaceWith(li);
        if (x.status === 'pending' && !n) fresh = li;
        n = { li, status: x.status };
        nodes.set(x.id, n);
        if (hadFocus) li.focus();
      }
      if (list.children[k] !== n.li) list.insertBefore(n.li, list.children[k] || null);
    });
    list.hidden = shown.length === 0;
    return fresh;
  };
}
