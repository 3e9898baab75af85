// Building DOM nodes without HTML text: h('div', {class: 'x'}, child, 'text').
// Strings become text nodes; attribute values are set with setAttribute, so
// nothing that came from the model or a tool is ever parsed as markup.

export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(e, children);
  return e;
}

export function append(parent, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return parent;
}

export function clear(e) {
  while (e.firstChild) e.removeChild(e.firstChild);
  return e;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

// True when the element is scrolled to (or near) its bottom, so new
// content should keep it there.
export function nearBottom(e, slack = 48) {
  return e.scrollHeight - e.scrollTop - e.clientHeight <= slack;
}
