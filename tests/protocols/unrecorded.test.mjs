// A database disk that fills while an AG-UI run and an AI SDK chat stream
// (docs/protocols.md; docs/runs.md, Interrupted runs): the run stops but
// its run_stopped cannot be stored, and each protocol stream still ends
// the way its client understands: RUN_ERROR for HttpAgent (its order
// checks pass), an error chunk for the chat. The database sits on a small
// tmpfs of its own; mounting one needs root, so elsewhere the test is
// skipped.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { HttpAgent } from '@ag-ui/client';
import { EventSchemas } from '@ag-ui/core/schemas';
import { AbstractChat, DefaultChatTransport } from 'ai';

import { startServer, until } from '../integration/lib/server.mjs';

const MESSAGE = 'the database refused a write, so the run stopped; its end is recorded and shown on '
  + 'the session once the database takes writes again';

let mnt = null;
let mounted = false;
let why = null;
let srv = null;

before(() => {
  mnt = mkdtempSync(path.join(tmpdir(), 'chatplane-proto-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt], { stdio: 'pipe' });
    mounted = true;
  } catch (e) {
    why = `cannot mount a tmpfs here (${String(e.stderr || e.message).trim()})`;
  }
});

after(async () => {
  if (srv) {
    await srv.stop('SIGKILL');
    srv.cleanup();
  }
  if (mounted) execFileSync('umount', ['-l', mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

// Fills the file system of dir with one file; returns its path.
function fill(dir) {
  const file = path.join(dir, 'filler');
  const fd = openSync(file, 'w');
  for (const size of [64 * 1024, 512]) {
    const chunk = Buffer.alloc(size, 0x61);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (e) {
      if (e.code !== 'ENOSPC') throw e;
    }
  }
  closeSync(fd);
  return file;
}

class PlainState {
  constructor() { this.status = 'ready'; this.error = undefined; this.messages = []; }
  pushMessage(m) { this.messages = this.messages.concat(m); }
  popMessage() { this.messages = this.messages.slice(0, -1); }
  replaceMessage(i, m) { this.messages = [...this.messages.slice(0, i), m, ...this.messages.slice(i + 1)]; }
  snapshot(x) { return structuredClone(x); }
}
class TestChat extends AbstractChat {
  constructor(opts) { super({ ...opts, state: new PlainState() }); }
}

test('a run whose end the database refused ends both protocol streams as errors', async (t) => {
  if (!mounted) {
    t.skip(why);
    return;
  }
  // 100 ms per streamed piece: the demo brain's plain answer streams for seconds.
  srv = await startServer({ db: `sqlite:${path.join(mnt, 'chat.db')}`, env: { CHATPLANE_DEMO_DELAY_MS: '100' } });

  const agent = new HttpAgent({ url: `${srv.url}/api/ag-ui`, threadId: `full-${process.pid}` });
  agent.addMessage({ id: 'u1', role: 'user', content: 'hello' });
  const events = [];
  const aguiDone = agent.runAgent({ runId: 'r1' }, {
    onEvent: ({ event }) => {
      assert.ok(EventSchemas.safeParse(event).success, `${event.type} fits the schema`);
      events.push(event);
    },
  });

  const chat = new TestChat({ id: `full-chat-${process.pid}`, transport: new DefaultChatTransport({ api: `${srv.url}/api/chat` }) });
  const chatDone = chat.sendMessage({ text: 'hello' });

  await until(() => (events.some((e) => e.type === 'TEXT_MESSAGE_CONTENT')
    && chat.state.messages.at(-1)?.parts.some((p) => p.type === 'text') ? true : null), 10000);
  const filler = fill(mnt);
  await Promise.all([aguiDone, chatDone]);

  const last = events.at(-1);
  assert.deepEqual(last, { type: 'RUN_ERROR', message: MESSAGE, code: 'interrupted' });
  const order = events.map((e) => e.type).filter((x) => x !== 'TEXT_MESSAGE_CONTENT' && x !== 'CUSTOM');
  assert.deepEqual(order, ['RUN_STARTED', 'STEP_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_END', 'STEP_FINISHED', 'RUN_ERROR']);
  assert.equal(chat.status, 'error');
  assert.equal(chat.error.message, MESSAGE);

  unlinkSync(filler);
  assert.deepEqual(await srv.stop('SIGTERM'), { code: 0, signal: null });
  srv = null;
});
