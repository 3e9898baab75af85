#!/usr/bin/env node
// Takes the README's pictures of the page: a few chats played against the
// mock model, then the wide page (light) and the narrow page (dark); and
// the demo brain (as `make run` serves it) asking before `demo approve`'s
// pretend deletion.
//
//   node tests/browser/screenshots.mjs [OUT_DIR]     (default: docs)
//
// Writes OUT_DIR/screenshot-wide.png, OUT_DIR/screenshot-narrow.png,
// OUT_DIR/screenshot-approval.png, OUT_DIR/screenshot-queue.png (a message
// queued while a run works) and OUT_DIR/screenshot-health.png (the health
// panel, with a tool server that cannot start).
import path from 'node:path';
import { mkdirSync } from 'node:fs';

import { launchBrowser, startStack, openPage, tid, send, waitStopped, newChat } from './lib.mjs';
import { startServer } from '../integration/lib/server.mjs';

const out = path.resolve(process.argv[2] || 'docs');
mkdirSync(out, { recursive: true });

const stack = await startStack();
const browser = await launchBrowser();
try {
  const { page, close } = await openPage(browser, stack.url + '/', { viewport: { width: 1440, height: 960 } });
  await page.locator(tid('status-indicator')).waitFor();

  // An older chat that the loop guardrail stopped.
  await newChat(page);
  const same = { tool_calls: [{ name: 'calc', arguments: { expression: '(3+4)*2' } }] };
  await stack.mock.script([same, same, same, same]);
  await send(page, 'Keep checking (3+4)*2 until you are sure');
  await waitStopped(page, 'loop_detected');

  // One that finished.
  await newChat(page);
  await stack.mock.script([{ text: 'A run is every model call and tool call made for one message, under the budget of its mode: **quick**, **standard** or **deep**.' }]);
  await send(page, 'What is a run?');
  await waitStopped(page, 'completed');

  // The one in the picture: quick mode, three tool calls, a wrap-up.
  await newChat(page);
  await page.locator(tid('mode-select')).selectOption('quick');
  const tokyo = new Date().toLocaleTimeString('en-GB', { timeZone: 'Asia/Tokyo', hour: '2-digit', minute: '2-digit' });
  await stack.mock.script([
    { tool_calls: [{ name: 'calc', arguments: { expression: '2340*0.17' } }, { name: 'calc', arguments: { expression: '2^10' } }], usage: { prompt_tokens: 1510, completion_tokens: 96, total_tokens: 1606 } },
    { tool_calls: [{ name: 'clock', arguments: { timezone: 'Asia/Tokyo' } }], usage: { prompt_tokens: 1720, completion_tokens: 41, total_tokens: 1761 } },
    {
      text: [
        'Here is what the tools found:',
        '',
        '- **17 % of 2,340** is `397.8`',
        '- **2¹⁰** is `1024`',
        `- In Tokyo it is **${tokyo}** right now (JST, UTC+9)`,
        '',
        'The same from a terminal:',
        '',
        '```sh',
        "chatplane ask 'what is 2340*0.17?'",
        '```',
        '',
        '*Quick* mode allows three steps, so this answer wraps up the run; continue in *standard* mode to dig further.',
      ].join('\n'),
      piece_chars: 24,
      usage: { prompt_tokens: 1890, completion_tokens: 118, total_tokens: 2008 },
    },
  ]);
  await send(page, 'What is 17% of 2,340, what is 2^10, and what time is it in Tokyo?');
  await waitStopped(page);
  await page.locator(tid('message-input')).fill('');
  await page.mouse.move(0, 0);
  await page.locator(tid('message-input')).blur();
  await page.waitForTimeout(400);
  await page.screenshot({ path: path.join(out, 'screenshot-wide.png') });
  const url = page.url();
  await close();

  const narrow = await openPage(browser, url, { viewport: { width: 390, height: 844 }, colorScheme: 'dark' });
  await narrow.page.locator(`${tid('message')}[data-role="assistant"]`).first().waitFor();
  await narrow.page.waitForTimeout(400);
  await narrow.page.screenshot({ path: path.join(out, 'screenshot-narrow.png') });
  await narrow.close();

  // The demo brain, without a model: `demo approve` waits at the card.
  const demo = await startServer({});
  try {
    const d = await openPage(browser, demo.url + '/', { viewport: { width: 1440, height: 900 } });
    await d.page.locator(tid('status-indicator')).waitFor();
    await newChat(d.page);
    await send(d.page, 'demo approve');
    await d.page.locator(`${tid('approval-card')}[data-status="pending"]`).waitFor({ timeout: 10000 });
    await d.page.locator(tid('message-input')).blur();
    await d.page.mouse.move(0, 0);
    await d.page.waitForTimeout(400);
    await d.page.screenshot({ path: path.join(out, 'screenshot-approval.png') });

    // A message queued while `demo sleep` works: Queue and Stop and send
    // under the composer, the queued message pending at the end.
    await newChat(d.page);
    await send(d.page, 'demo sleep');
    await d.page.locator(`${tid('tool-execution')}[data-status="running"]`).waitFor({ timeout: 10000 });
    await d.page.locator(tid('message-input')).fill('Then list what you did, in one line');
    await d.page.locator(tid('queue-button')).waitFor();
    await d.page.locator(tid('queue-button')).click();
    await d.page.locator(`${tid('message')}[data-pending="true"]`).waitFor({ timeout: 10000 });
    await d.page.locator(tid('message-input')).fill('Or stop here and tell me the time');
    await d.page.mouse.move(0, 0);
    await d.page.waitForTimeout(300);
    await d.page.screenshot({ path: path.join(out, 'screenshot-queue.png') });
    await d.close();
  } finally {
    await demo.stop();
    demo.cleanup();
  }
  // The health panel: a tool server whose command is missing, a model
  // that answered twice.
  const sick = await startStack({ config: { mcpServers: { files: { command: '/opt/mcp/files-server', args: [] } } } });
  try {
    const hp = await openPage(browser, sick.url + '/', { viewport: { width: 1440, height: 900 } });
    await hp.page.locator(tid('status-indicator')).waitFor();
    await newChat(hp.page);
    await sick.mock.script([{ text: 'Hello! What can I do for you?' }, { text: 'Sure, here it is.' }]);
    await send(hp.page, 'hello');
    await waitStopped(hp.page, 'completed');
    await send(hp.page, 'and again');
    await waitStopped(hp.page, 'completed');
    await hp.page.locator(tid('health-indicator')).click();
    await hp.page.locator(`${tid('health-mcp')}[data-name="files"] ${tid('restart-server')}`).waitFor();
    await hp.page.mouse.move(0, 0);
    await hp.page.waitForTimeout(400);
    await hp.page.screenshot({ path: path.join(out, 'screenshot-health.png') });
    await hp.close();
  } finally {
    await sick.stop();
  }
  console.log(`wrote the screenshots in ${out}`);
} finally {
  await browser.close();
  await stack.stop();
}
