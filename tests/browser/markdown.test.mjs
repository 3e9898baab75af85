// The page's Markdown renderer (web/markdown.js) under Node, with a small
// stand-in document: exact HTML for each construct, and untrusted input
// that must come out as text.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { renderMarkdown, safeHref } from '../../web/markdown.js';
import { createDocument, html } from './dom-shim.mjs';

const doc = createDocument();
const md = (s) => html(renderMarkdown(s, doc));
const A = (href, text) => `<a href="${href}" rel="noopener noreferrer" target="_blank">${text}</a>`;

test('paragraphs, line breaks and inline styles', () => {
  assert.equal(md('Hello **bold**, *it*, _also it_, __strong__ and `code`.'),
    '<p>Hello <strong>bold</strong>, <em>it</em>, <em>also it</em>, <strong>strong</strong> and <code>code</code>.</p>');
  assert.equal(md('one\ntwo\n\nthree'), '<p>one<br>two</p><p>three</p>');
  assert.equal(md('~~gone~~ and ***both***'), '<p><del>gone</del> and <strong><em>both</em></strong></p>');
  assert.equal(md('snake_case_name and 2*3*4'), '<p>snake_case_name and 2*3*4</p>');
  assert.equal(md('a `` x ` y `` b'), '<p>a <code>x ` y</code> b</p>');
  assert.equal(md('\\*not em\\* and \\`not code\\`'), '<p>*not em* and `not code`</p>');
  assert.equal(md(''), '');
  assert.equal(md('\r\n\r\nx\r\n'), '<p>x</p>');
});

test('code blocks keep their text exactly, closed or still streaming', () => {
  assert.equal(md('```js\nconst a = "<b>" && 1;\n\n  indented\n```\nafter'),
    '<pre><code data-lang="js" class="lang-js">const a = "&lt;b&gt;" &amp;&amp; 1;\n\n  indented</code></pre><p>after</p>');
  assert.equal(md('```\nno end yet'), '<pre><code>no end yet</code></pre>');
  assert.equal(md('~~~\n**not bold**\n~~~'), '<pre><code>**not bold**</code></pre>');
  assert.equal(md('text\n\n    four spaces\n    more'), '<p>text</p><pre><code>four spaces\nmore</code></pre>');
});

test('lists: tight, loose, ordered with a start, nested', () => {
  assert.equal(md('- one\n- two\n  - nested\n- three'), '<ul><li>one</li><li>two<ul><li>nested</li></ul></li><li>three</li></ul>');
  assert.equal(md('* a\n+ b'), '<ul><li>a</li><li>b</li></ul>');
  assert.equal(md('3. c\n4. d'), '<ol start="3"><li>c</li><li>d</li></ol>');
  assert.equal(md('1. a\n\n2. b'), '<ol><li><p>a</p></li><li><p>b</p></li></ol>');
  assert.equal(md('- item\n  continued\n\nafter'), '<ul><li>item<br>continued</li></ul><p>after</p>');
  assert.equal(md('intro\n- x\n- y'), '<p>intro</p><ul><li>x</li><li>y</li></ul>');
  assert.equal(md('1. first\n   - sub **b**'), '<ol><li>first<ul><li>sub <strong>b</strong></li></ul></li></ol>');
});

test('headings, quotes, rules and tables', () => {
  assert.equal(md('# One\n## Two\n#### Four'), '<h3>One</h3><h4>Two</h4><h6>Four</h6>');
  assert.equal(md('> quoted *text*\n> more'), '<blockquote><p>quoted <em>text</em><br>more</p></blockquote>');
  assert.equal(md('a\n\n---\n\nb'), '<p>a</p><hr><p>b</p>');
  assert.equal(md('| a | b |\n|---|--:|\n| 1 | `2` |\n| x \\| y |'),
    '<div class="md-table"><table><thead><tr><th>a</th><th class="align-right">b</th></tr></thead>' +
    '<tbody><tr><td>1</td><td class="align-right"><code>2</code></td></tr><tr><td>x | y</td><td class="align-right"></td></tr></tbody></table></div>');
});

test('links open in a new tab without the page, and only http(s) and mailto', () => {
  assert.equal(md('[docs](https://example.com/a_b?q=1)'), `<p>${A('https://example.com/a_b?q=1', 'docs')}</p>`);
  assert.equal(md('[**b**](http://x.test/ "t")'), '<p><a href="http://x.test/" rel="noopener noreferrer" target="_blank" title="t"><strong>b</strong></a></p>');
  assert.equal(md('<https://x.test/p> and <mailto:a@b.test>'), `<p>${A('https://x.test/p', 'https://x.test/p')} and ${A('mailto:a@b.test', 'mailto:a@b.test')}</p>`);
  assert.equal(md('see https://x.test/a_(b), then.'), `<p>see ${A('https://x.test/a_(b)', 'https://x.test/a_(b)')}, then.</p>`);
  assert.equal(md('(at https://x.test/p)'), `<p>(at ${A('https://x.test/p', 'https://x.test/p')})</p>`);
  for (const bad of ['javascript:alert(1)', 'JaVaScRiPt:alert(1)', 'data:text/html,<b>x</b>', 'vbscript:x', '/relative', '//evil.test/x', 'java\nscript:x']) {
    assert.equal(md(`[click](${bad})`).includes('<a'), false, bad);
  }
  assert.equal(md('[click](javascript:alert(1))'), '<p>click</p>');
  assert.equal(safeHref(' https://x.test '), 'https://x.test/');
  assert.equal(safeHref('https://x.test/ y'), null);
  assert.equal(safeHref('ftp://x.test/'), null);
  assert.equal(md('[a [b](https://x.test/) c](https://y.test/)'), `<p>${A('https://y.test/', `a [b](https://x.test/) c`)}</p>`);
});

test('HTML in the input is text, never markup', () => {
  assert.equal(md('<script>alert(1)</script>'), '<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>');
  assert.equal(md('<img src=x onerror="alert(1)">'), '<p>&lt;img src=x onerror="alert(1)"&gt;</p>');
  assert.equal(md('**<b>x</b>**'), '<p><strong>&lt;b&gt;x&lt;/b&gt;</strong></p>');
  assert.equal(md('[<img src=x onerror=1>](https://x.test/)'), `<p>${A('https://x.test/', '&lt;img src=x onerror=1&gt;')}</p>`);
  assert.equal(md('```html\n<iframe src="x"></iframe>\n```'), '<pre><code data-lang="html" class="lang-html">&lt;iframe src="x"&gt;&lt;/iframe&gt;</code></pre>');
  // A language tag cannot smuggle an attribute or class.
  assert.equal(md('```x" onclick="y\ncode\n```'), '<pre><code data-lang="x&quot;" class="lang-x">code</code></pre>');
});

test('large and hostile inputs render in linear-ish time', () => {
  const t0 = Date.now();
  md('*'.repeat(5000) + '_'.repeat(5000) + '['.repeat(3000) + '`'.repeat(3000));
  md('- a\n'.repeat(3000));
  md('**a '.repeat(2000));
  assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
});
