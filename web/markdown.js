// A small Markdown renderer that builds DOM nodes and never HTML text.
//
// Model output is untrusted: everything it says ends up in text nodes made
// with createTextNode, and the only attribute it can influence is a link's
// href, which must parse as an http(s) or mailto URL. So a reply that
// contains <script> or <img onerror=…> shows those characters, nothing more.
//
// Covered: paragraphs (single newlines kept as line breaks, as chat products
// do), headings, fenced and indented code blocks, block quotes, ordered and
// unordered lists (nested by indentation), horizontal rules, simple pipe
// tables; inline code, bold, italics, strikethrough, links, <autolinks> and
// bare http(s) URLs, backslash escapes. A fence that is not closed yet (text
// still streaming in) runs to the end of the text.
//
// renderMarkdown(text, doc) returns a DocumentFragment made with doc (the
// page's document, or a small stand-in in tests).

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const BULLET = /^( *)([-*+])\s+(.*)$/;
const ORDERED = /^( *)(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;
const INDENTED_CODE = /^(?: {4}|\t)(.*)$/;

const SAFE_SCHEMES = new Set(['http:', 'https:', 'mailto:']);

// The href to use for a link target, or null when the target is not a
// plain http(s) or mailto URL (javascript:, data:, relative paths…).
export function safeHref(raw) {
  const s = String(raw).trim();
  if (!s || /[\u0000-\u0020\u007f]/.test(s)) return null;
  if (!/^(https?:\/\/|mailto:)/i.test(s)) return null;
  let url;
  try {
    url = new URL(s);
  } catch {
    return null;
  }
  return SAFE_SCHEMES.has(url.protocol) ? url.href : null;
}

function el(doc, tag, attrs) {
  const e = doc.createElement(tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function text(doc, s) {
  return doc.createTextNode(s);
}

function isBlank(line) {
  return /^\s*$/.test(line);
}

function listMatch(line) {
  const b = BULLET.exec(line);
  if (b) return { indent: b[1].length, ordered: false, marker: b[2], start: 1, rest: b[3], width: b[1].length + b[2].length + 1 };
  const o = ORDERED.exec(line);
  if (o) return { indent: o[1].length, ordered: true, marker: '.', start: Number(o[2]), rest: o[3], width: o[1].length + o[2].length + 2 };
  return null;
}

// True when a line starts a block other than a paragraph, so a paragraph
// ends before it.
function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || listMatch(line) !== null;
}

function splitRow(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
  const cells = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && s[i + 1] === '|') {
      cur += '|';
      i++;
    } else if (s[i] === '|') {
      cells.push(cur.trim());
      cur = '';
    } else {
      cur += s[i];
    }
  }
  cells.push(cur.trim());
  return cells;
}

// Renders lines[from..] as blocks into parent; tight lists put their first
// paragraph straight into the <li>.
function renderBlocks(doc, lines, parent, tight) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      i++;
      continue;
    }
    let m;
    if ((m = FENCE.exec(line))) {
      const fence = m[1];
      const lang = m[2];
      const body = [];
      i++;
      while (i < lines.length) {
        const close = lines[i].trim();
        if (close.startsWith(fence[0].repeat(fence.length)) && /^[`~]+$/.test(close)) {
          i++;
          break;
        }
        body.push(lines[i]);
        i++;
      }
      const pre = el(doc, 'pre');
      const code = el(doc, 'code', lang ? { 'data-lang': lang, class: 'lang-' + lang.replace(/[^\w-]/g, '') } : null);
      code.appendChild(text(doc, body.join('\n')));
      pre.appendChild(code);
      parent.appendChild(pre);
      continue;
    }
    if (!tight && (m = INDENTED_CODE.exec(line))) {
      const body = [];
      while (i < lines.length && (INDENTED_CODE.test(lines[i]) || (isBlank(lines[i]) && i + 1 < lines.length && INDENTED_CODE.test(lines[i + 1])))) {
        const im = INDENTED_CODE.exec(lines[i]);
        body.push(im ? im[1] : '');
        i++;
      }
      const pre = el(doc, 'pre');
      const code = el(doc, 'code');
      code.appendChild(text(doc, body.join('\n')));
      pre.appendChild(code);
      parent.appendChild(pre);
      continue;
    }
    if ((m = HEADING.exec(line))) {
      const level = Math.min(m[1].length + 2, 6);
      const h = el(doc, 'h' + level);
      renderInline(doc, m[2] || '', h);
      parent.appendChild(h);
      i++;
      continue;
    }
    if (RULE.test(line)) {
      parent.appendChild(el(doc, 'hr'));
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && !isBlank(lines[i])) {
        const q = QUOTE.exec(lines[i]);
        body.push(q ? q[1] : lines[i]);
        i++;
      }
      const bq = el(doc, 'blockquote');
      renderBlocks(doc, body, bq, false);
      parent.appendChild(bq);
      continue;
    }
    const lm = listMatch(line);
    if (lm) {
      i = renderList(doc, lines, i, parent);
      continue;
    }
    if (line.includes('|') && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]) && lines[i + 1].includes('-')) {
      i = renderTable(doc, lines, i, parent);
      continue;
    }
    // A paragraph: up to a blank line or the start of another block.
    const para = [line];
    i++;
    while (i < lines.length && !isBlank(lines[i]) && !startsBlock(lines[i])) {
      para.push(lines[i]);
      i++;
    }
    const target = tight ? parent : el(doc, 'p');
    para.forEach((l, k) => {
      if (k > 0) target.appendChild(el(doc, 'br'));
      renderInline(doc, l.trim(), target);
    });
    if (!tight) parent.appendChild(target);
    else if (i < lines.length) tight = false; // later blocks of the item get their own elements
  }
}

// Renders the list that starts at lines[start]; returns the index after it.
function renderList(doc, lines, start, parent) {
  const first = listMatch(lines[start]);
  const list = el(doc, first.ordered ? 'ol' : 'ul');
  if (first.ordered && first.start !== 1) list.setAttribute('start', String(first.start));
  let i = start;
  let loose = false;
  const items = [];
  while (i < lines.length) {
    const m = listMatch(lines[i]);
    if (!m || m.indent !== first.indent || m.ordered !== first.ordered) break;
    const body = [m.rest];
    i++;
    // Continuation: indented lines (nested lists, wrapped text), and blank
    // lines followed by more indented content.
    while (i < lines.length) {
      const l = lines[i];
      if (isBlank(l)) {
        let j = i + 1;
        while (j < lines.length && isBlank(lines[j])) j++;
        if (j < lines.length && /^\s+/.test(lines[j]) && (lines[j].match(/^ */)[0].length > first.indent)) {
          const nm = listMatch(lines[j]);
          if (!(nm && nm.indent === first.indent)) {
            for (; i < j; i++) body.push('');
            loose = true;
            continue;
          }
        }
        break;
      }
      const nm = listMatch(l);
      if (nm && nm.indent <= first.indent) break;
      const ind = l.match(/^ */)[0].length;
      if (!nm && ind <= first.indent && startsBlock(l)) break;
      body.push(l.slice(Math.min(ind, m.width)));
      i++;
    }
    items.push(body);
    // A blank line between items makes the list loose; stop at the blank
    // line when no further item of this list follows.
    if (i < lines.length && isBlank(lines[i])) {
      let j = i;
      while (j < lines.length && isBlank(lines[j])) j++;
      const nm = j < lines.length ? listMatch(lines[j]) : null;
      if (nm && nm.indent === first.indent && nm.ordered === first.ordered) {
        loose = true;
        i = j;
      } else {
        break;
      }
    }
  }
  for (const body of items) {
    const li = el(doc, 'li');
    renderBlocks(doc, body, li, !loose);
    list.appendChild(li);
  }
  parent.appendChild(list);
  return i;
}

function renderTable(doc, lines, start, parent) {
  const head = splitRow(lines[start]);
  const aligns = splitRow(lines[start + 1]).map((c) => (c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : c.startsWith(':') ? 'left' : null));
  const wrap = el(doc, 'div', { class: 'md-table' });
  const table = el(doc, 'table');
  const thead = el(doc, 'thead');
  const tr = el(doc, 'tr');
  head.forEach((c, k) => {
    const th = el(doc, 'th', aligns[k] ? { class: 'align-' + aligns[k] } : null);
    renderInline(doc, c, th);
    tr.appendChild(th);
  });
  thead.appendChild(tr);
  table.appendChild(thead);
  const tbody = el(doc, 'tbody');
  let i = start + 2;
  while (i < lines.length && !isBlank(lines[i]) && lines[i].includes('|')) {
    const cells = splitRow(lines[i]);
    const row = el(doc, 'tr');
    for (let k = 0; k < head.length; k++) {
      const td = el(doc, 'td', aligns[k] ? { class: 'align-' + aligns[k] } : null);
      renderInline(doc, cells[k] ?? '', td);
      row.appendChild(td);
    }
    tbody.appendChild(row);
    i++;
  }
  table.appendChild(tbody);
  wrap.appendChild(table);
  parent.appendChild(wrap);
  return i;
}

// ---- inline ----

const ESCAPABLE = /[!-\/:-@\[-`{-~]/;
const LINK = /\[((?:[^\[\]\\]|\\.|\[[^\[\]]*\])*)\]\(\s*<?([^\s()<>]*(?:\([^\s()<>]*\)[^\s()<>]*)*)>?(?:\s+"([^"]*)")?\s*\)/y;
const AUTOLINK = /<((?:https?:\/\/|mailto:)[^<>\s]+)>/iy;
const BARE_URL = /https?:\/\/[^\s<>"'`]+/iy;
const STRONG = [/\*\*(?=\S)([\s\S]*?\S)\*\*(?!\*)/y, /__(?=\S)([\s\S]*?\S)__(?!\w)/y];
const EM = [/\*(?=[^\s*])([\s\S]*?[^\s*])\*(?!\*)/y, /_(?=[^\s_])([\s\S]*?[^\s_])_(?!\w)/y];
const DEL = /~~(?=\S)([\s\S]*?\S)~~/y;

function sticky(re, s, i) {
  re.lastIndex = i;
  return re.exec(s);
}

// A link that opens in a new tab without handing the page to it. label is
// plain text, or {src} for Markdown to render inside the link.
function link(doc, href, label) {
  const a = el(doc, 'a', { href, rel: 'noopener noreferrer', target: '_blank' });
  if (typeof label === 'string') a.appendChild(text(doc, label));
  else renderInline(doc, label.src, a, true);
  return a;
}

// Renders the inline Markdown of s into parent. Inside a link, no further
// links are made.
export function renderInline(doc, s, parent, inLink = false) {
  let buf = '';
  const flush = () => {
    if (buf) parent.appendChild(text(doc, buf));
    buf = '';
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    const prev = i > 0 ? s[i - 1] : '';
    let m;
    if (c === '\\' && i + 1 < s.length && ESCAPABLE.test(s[i + 1])) {
      buf += s[i + 1];
      i += 2;
      continue;
    }
    if (c === '`') {
      const run = /^`+/.exec(s.slice(i))[0];
      const close = s.indexOf(run, i + run.length);
      // The closing run must be exactly as long as the opening one.
      let end = close;
      while (end !== -1 && s[end + run.length] === '`') end = s.indexOf(run, end + run.length + 1);
      if (end !== -1) {
        let code = s.slice(i + run.length, end).replace(/\n/g, ' ');
        if (code.length > 2 && code.startsWith(' ') && code.endsWith(' ') && code.trim()) code = code.slice(1, -1);
        flush();
        const ce = el(doc, 'code');
        ce.appendChild(text(doc, code));
        parent.appendChild(ce);
        i = end + run.length;
        continue;
      }
      buf += run;
      i += run.length;
      continue;
    }
    if (c === '[' && !inLink && (m = sticky(LINK, s, i))) {
      const href = safeHref(m[2]);
      flush();
      if (href) {
        const a = link(doc, href, { src: m[1] });
        if (m[3]) a.setAttribute('title', m[3]);
        parent.appendChild(a);
      } else {
        // Not a safe target: keep the label as plain text.
        renderInline(doc, m[1], parent, true);
      }
      i += m[0].length;
      continue;
    }
    if (c === '<' && !inLink && (m = sticky(AUTOLINK, s, i))) {
      const href = safeHref(m[1]);
      if (href) {
        flush();
        parent.appendChild(link(doc, href, m[1]));
        i += m[0].length;
        continue;
      }
    }
    if ((c === 'h' || c === 'H') && !inLink && !/[\w/]/.test(prev) && (m = sticky(BARE_URL, s, i))) {
      // Trailing punctuation belongs to the sentence, and an unbalanced
      // closing parenthesis to the text around the URL.
      let url = m[0].replace(/[.,:;!?*_~]+$/, '');
      while (url.endsWith(')') && (url.match(/\(/g) || []).length < (url.match(/\)/g) || []).length) url = url.slice(0, -1);
      const href = safeHref(url);
      if (href && url.length > 8) {
        flush();
        parent.appendChild(link(doc, href, url));
        i += url.length;
        continue;
      }
    }
    if (c === '*' || c === '_') {
      // Emphasis never opens inside a word, for * too: "2*3*4" is
      // arithmetic, which chats about tools are full of.
      const wordBefore = /[\p{L}\p{N}_]/u.test(prev);
      let done = false;
      for (const re of STRONG) {
        if (wordBefore) break;
        if ((m = sticky(re, s, i)) && m[0][0] === c) {
          flush();
          const b = el(doc, 'strong');
          renderInline(doc, m[1], b, inLink);
          parent.appendChild(b);
          i += m[0].length;
          done = true;
          break;
        }
      }
      if (done) continue;
      for (const re of EM) {
        if (wordBefore) break;
        if ((m = sticky(re, s, i)) && m[0][0] === c) {
          flush();
          const e = el(doc, 'em');
          renderInline(doc, m[1], e, inLink);
          parent.appendChild(e);
          i += m[0].length;
          done = true;
          break;
        }
      }
      if (done) continue;
    }
    if (c === '~' && (m = sticky(DEL, s, i))) {
      flush();
      const d = el(doc, 'del');
      renderInline(doc, m[1], d, inLink);
      parent.appendChild(d);
      i += m[0].length;
      continue;
    }
    buf += c;
    i++;
  }
  flush();
}

export function renderMarkdown(src, doc = globalThis.document) {
  const frag = doc.createDocumentFragment();
  const lines = String(src ?? '').replace(/\r\n?/g, '\n').split('\n');
  renderBlocks(doc, lines, frag, false);
  return frag;
}
