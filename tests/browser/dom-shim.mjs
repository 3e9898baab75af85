// A tiny stand-in for the browser's document, enough for the page's pure
// modules (markdown.js) to run under Node, and a serializer to compare what
// they built with exact HTML text.

class Node {
  constructor(doc) {
    this.ownerDocument = doc;
    this.childNodes = [];
    this.parentNode = null;
  }
  appendChild(child) {
    if (child.nodeType === 11) {
      for (const c of child.childNodes.splice(0)) this.appendChild(c);
      return child;
    }
    child.parentNode = this;
    this.childNodes.push(child);
    return child;
  }
  get textContent() {
    return this.childNodes.map((c) => c.textContent).join('');
  }
}

class Text extends Node {
  constructor(doc, data) {
    super(doc);
    this.nodeType = 3;
    this.data = String(data);
  }
  get textContent() {
    return this.data;
  }
}

class Element extends Node {
  constructor(doc, tag) {
    super(doc);
    this.nodeType = 1;
    this.tagName = tag.toUpperCase();
    this.attributes = new Map();
  }
  setAttribute(name, value) {
    this.attributes.set(name, String(value));
  }
  getAttribute(name) {
    return this.attributes.has(name) ? this.attributes.get(name) : null;
  }
}

class Fragment extends Node {
  constructor(doc) {
    super(doc);
    this.nodeType = 11;
  }
}

export function createDocument() {
  const doc = {
    createElement: (tag) => new Element(doc, tag),
    createTextNode: (data) => new Text(doc, data),
    createDocumentFragment: () => new Fragment(doc),
  };
  return doc;
}

const escapeText = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const escapeAttr = (s) => escapeText(s).replace(/"/g, '&quot;');
const VOID = new Set(['br', 'hr', 'img', 'input']);

// The HTML text of a node's children, as a browser would serialize them.
export function html(node) {
  return node.childNodes
    .map((c) => {
      if (c.nodeType === 3) return escapeText(c.data);
      const tag = c.tagName.toLowerCase();
      const attrs = [...c.attributes].map(([k, v]) => ` ${k}="${escapeAttr(v)}"`).join('');
      if (VOID.has(tag)) return `<${tag}${attrs}>`;
      return `<${tag}${attrs}>${html(c)}</${tag}>`;
    })
    .join('');
}
