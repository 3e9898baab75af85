// Copying to the clipboard: the one helper every Copy button on the page
// uses (a tool execution's details, a message, a code block), so they all
// write the same way and give the same feedback.

import { h } from './dom.js';
import { icon } from './icons.js';

const FEEDBACK_MS = 1500;

// Puts text on the clipboard; resolves to true when it got there. The
// asynchronous clipboard needs a secure context (localhost counts), and the
// browser may still refuse it; the old selection copy is the fallback.
export async function writeClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through to the selection copy
    }
  }
  const ta = h('textarea', { class: 'clipboard-helper', readonly: true });
  ta.value = text;
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

// A Copy button that copies what text() returns when pressed. label is the
// visible word ('' for an icon-only button, which then needs ariaLabel);
// after a copy the word reads "Copied" (or "Copy failed") for a moment, in
// a polite live region so a screen reader says it too.
export function copyButton({ text, label = 'Copy', ariaLabel = null, testid = 'copy-button', cls = '' }) {
  const word = h('span', { class: 'copy-word', 'aria-live': 'polite' }, label);
  const btn = h('button', {
    type: 'button',
    class: `btn btn-ghost btn-small copy-button${cls ? ' ' + cls : ''}`,
    'data-testid': testid,
    'aria-label': ariaLabel,
    title: ariaLabel,
  }, icon('copy'), word);
  let timer = 0;
  btn.addEventListener('click', async () => {
    const ok = await writeClipboard(text());
    clearTimeout(timer);
    word.textContent = ok ? 'Copied' : 'Copy failed';
    btn.classList.toggle('copied', ok);
    timer = setTimeout(() => {
      word.textContent = label;
      btn.classList.remove('copied');
    }, FEEDBACK_MS);
  });
  return btn;
}

// Gives every code block under root a Copy button that copies the code as
// written (the text of its <code>, without the button). The block is
// wrapped so the button sits over its corner without scrolling with it.
export function addCodeCopyButtons(root) {
  for (const pre of root.querySelectorAll('pre')) {
    if (pre.parentElement && pre.parentElement.classList.contains('code-block')) continue;
    const wrap = h('div', { class: 'code-block' });
    pre.replaceWith(wrap);
    wrap.append(pre, copyButton({ text: () => pre.textContent, ariaLabel: 'Copy code', testid: 'copy-code', cls: 'code-copy' }));
  }
}
