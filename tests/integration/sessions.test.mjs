// Sessions and their database against the real server: the session list's
// cursor says nothing of another owner's sessions; one SQLite file serves
// one process, and a second server on it refuses to start without touching
// the first one's runs; sqlite::memory: is one database for the whole
// server (docs/api.md, docs/storage.md).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import { api, binary, newSession, runBinary, startServer, until, waitIdle } from './lib/server.mjs';

const bearer = (t) => ({ Authorization: `Bearer ${t}` });

async function makeToken(dir, name) {
  const r = await runBinary(['token', 'create', name, '--db', `sqlite:${path.join(dir, 'chat.db')}`]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trimEnd().split('\n').at(-1);
}

async function create(url, token, title) {
  const r = await api(url, 'POST', '/api/sessions', { title }, bearer(token));
  assert.equal(r.status, 201, r.text);
  return r.body.id;
}

// Runs `chatplane serve` on db and resolves when it exits, to {code,
// stderr}; a server that starts listening instead is stopped and the test
// fails, so a missing refusal cannot hang the suite.
function serveExpectingRefusal(db) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, CHATPLANE_DEMO_DELAY_MS: '1' };
    delete env.CHATPLANE_LLM_URL;
    delete env.CHATPLANE_CONFIG;
    const proc = spawn(binary, ['serve', '--listen', '127.0.0.1:0', '--db', db], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.includes('msg="listening"')) {
        proc.kill('SIGTERM');
        reject(new Error(`a second server started on ${db}:\n${stderr}`));
      }
    });
    proc.once('exit', (code) => resolve({ code, stderr }));
  });
}

describe('the session list cursor', () => {
  test("another owner's session id as before= answers like an id that does not exist", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'chatplane-sessions-'));
    const alice = await makeToken(dir, 'alice');
    const bob = await makeToken(dir, 'bob');
    const srv = await startServer({ dir });
    try {
      // Bob's session is older than both of alice's, so a cursor that
      // looked at alice's rows would page to it.
      const b1 = await create(srv.url, bob, 'bob 1');
      const a1 = await create(srv.url, alice, 'alice 1');
      const a2 = await create(srv.url, alice, 'alice 2');
      const unknown = await api(srv.url, 'GET', '/api/sessions?before=ses_0000000000000000000000000', undefined, bearer(bob));
      assert.equal(unknown.status, 200, unknown.text);
      assert.deepEqual(unknown.body, { sessions: [] });
      for (const id of [a1, a2]) {
        for (const q of [`before=${id}`, `before=${id}&limit=1`]) {
          const r = await api(srv.url, 'GET', `/api/sessions?${q}`, undefined, bearer(bob));
          assert.equal(r.status, unknown.status, q);
          assert.equal(r.text, unknown.text, q);
        }
      }
      // Each owner's own cursor still pages.
      let r = await api(srv.url, 'GET', `/api/sessions?before=${a2}`, undefined, bearer(alice));
      assert.deepEqual(r.body.sessions.map((s) => s.id), [a1]);
      r = await api(srv.url, 'GET', '/api/sessions', undefined, bearer(bob));
      assert.deepEqual(r.body.sessions.map((s) => s.id), [b1]);
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });
});

describe('one process per SQLite file', () => {
  test('a second server on the same file refuses to start and leaves the running run alone', async () => {
    // 30 ms per piece of the demo answer: the run lasts a few seconds.
    const srv = await startServer({ env: { CHATPLANE_DEMO_DELAY_MS: '30' } });
    const db = path.join(srv.dir, 'chat.db');
    try {
      const s = await newSession(srv.url);
      const started = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'hello there' });
      assert.equal(started.status, 202, started.text);
      const runId = started.body.id;

      const second = await serveExpectingRefusal(`sqlite:${db}`);
      assert.equal(second.code, 1, second.stderr);
      const want = `cannot use database sqlite:${db}: another chatplane process (pid ${srv.proc.pid}) is using it ` +
        `and holds its lock file ${db}.lock; only one process at a time may serve, ask or migrate on a SQLite database`;
      assert.ok(second.stderr.includes(`level=error msg="cannot start" error="${want}"`), second.stderr);
      assert.equal(readFileSync(`${db}.lock`, 'utf8'), `${srv.proc.pid}\n`);

      // ask and migrate refuse the same way; the run goes on and completes.
      const ask = await runBinary(['ask', '--db', `sqlite:${db}`, 'hi']);
      assert.equal(ask.code, 1);
      assert.equal(ask.stderr, `chatplane ask: ${want}\n`);
      const migrate = await runBinary(['migrate', '--db', `sqlite:${db}`]);
      assert.equal(migrate.code, 1);
      assert.equal(migrate.stderr, `chatplane migrate: ${want}\n`);
      let run = await api(srv.url, 'GET', `/api/runs/${runId}`);
      assert.equal(run.body.status, 'running', run.text);
      const done = await waitIdle(srv.url, s.id);
      assert.equal(done.last_run.id, runId);
      assert.equal(done.last_run.stop_reason, 'completed');
    } finally {
      await srv.stop();
    }
    // Once the first server is gone the file is free again.
    try {
      const again = await startServer({ dir: srv.dir });
      await again.stop();
      assert.equal(readFileSync(`${db}.lock`, 'utf8'), '');
    } finally {
      srv.cleanup();
    }
  });
});

describe('sqlite::memory:', () => {
  test('one in-memory database serves a demo run end to end', async () => {
    const srv = await startServer({ db: 'sqlite::memory:' });
    try {
      const s = await newSession(srv.url);
      const started = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'what is 6*7?' });
      assert.equal(started.status, 202, started.text);
      const done = await waitIdle(srv.url, s.id);
      assert.equal(done.last_run.stop_reason, 'completed');
      assert.equal(done.title, 'what is 6*7?');
      const msgs = await api(srv.url, 'GET', `/api/sessions/${s.id}/messages`);
      assert.deepEqual(msgs.body.messages.map((m) => [m.role, m.content]),
        [['user', 'what is 6*7?'], ['assistant', ''], ['tool', '42'], ['assistant', '6*7 = 42.']]);
      const events = await api(srv.url, 'GET', `/api/sessions/${s.id}/events?after=0`, undefined, { Accept: 'application/json' });
      assert.equal(events.status, 200, events.text);
      assert.equal(events.body.events.at(-1).type, 'run_stopped');
      // A second run reads the first one's history from the same database.
      const next = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'what is 2+3?' });
      assert.equal(next.status, 202, next.text);
      await until(async () => (await waitIdle(srv.url, s.id)).last_run.id === next.body.id);
      const list = await api(srv.url, 'GET', '/api/sessions');
      assert.deepEqual(list.body.sessions.map((x) => x.id), [s.id]);
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });

  test('chatplane ask runs on it too', async () => {
    const r = await runBinary(['ask', '--db', 'sqlite::memory:', 'what is 2+3?'], { CHATPLANE_DEMO_DELAY_MS: '1' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '2+3 = 5.\n');
  });
});
