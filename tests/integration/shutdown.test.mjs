// Graceful shutdown: SIGTERM during a run exits 0 within 5 s, ends the
// open streams after the run's `interrupted` run_stopped, and leaves a
// clean database whose run is interrupted.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { api, newSession, parseFrames, sse, startServer, until } from './lib/server.mjs';

describe('shutdown', () => {
  for (const signal of ['SIGTERM', 'SIGINT']) {
    test(`${signal} during a run`, { timeout: 60000 }, async () => {
      const srv = await startServer({ env: { CHATPLANE_DEMO_DELAY_MS: '100' } });
      let restarted;
      try {
        const s = await newSession(srv.url);
        const stream = sse(srv.port, `/api/sessions/${s.id}/events`, { timeoutMs: 30000 });
        const run = await api(srv.url, 'POST', `/api/sessions/${s.id}/runs`, { message: 'hello' });
        assert.equal(run.status, 202);
        await until(async () => {
          const ev = await api(srv.url, 'GET', `/api/sessions/${s.id}/events`, undefined, { Accept: 'application/json' });
          return ev.body.events.some((e) => e.type === 'token');
        });
        const t0 = Date.now();
        const st = await srv.stop(signal);
        const took = Date.now() - t0;
        assert.deepEqual(st, { code: 0, signal: null });
        assert.ok(took < 5000, `exit took ${took} ms`);
        assert.ok(srv.lines.includes(`level=info msg="shutting down" signal=${signal}`));

        // The open stream saw the run stop as interrupted, then ended.
        const res = await stream;
        assert.equal(res.ended, true);
        const frames = parseFrames(res.text);
        const stop = frames.at(-1);
        assert.equal(stop.event, 'run_stopped');
        assert.equal(stop.data.reason, 'interrupted');

        restarted = await startServer({ dir: srv.dir });
        const r = await api(restarted.url, 'GET', `/api/runs/${run.body.id}`);
        assert.equal(r.status, 200);
        assert.equal(r.body.status, 'stopped');
        assert.equal(r.body.stop_reason, 'interrupted');
        const ses = await api(restarted.url, 'GET', `/api/sessions/${s.id}`);
        assert.equal(ses.body.status, 'idle');
        assert.equal(ses.body.active_run_id, null);
        const ev = await api(restarted.url, 'GET', `/api/sessions/${s.id}/events`, undefined, { Accept: 'application/json' });
        const stops = ev.body.events.filter((e) => e.type === 'run_stopped');
        assert.equal(stops.length, 1);
        assert.equal(stops[0].reason, 'interrupted');
        assert.equal(ev.body.events.at(-1).seq, ses.body.last_seq);
      } finally {
        if (restarted) await restarted.stop();
        else await srv.stop();
        srv.cleanup();
      }
    });
  }

  test('SIGTERM right after start-up exits 0 and stops accepting', { timeout: 30000 }, async () => {
    const srv = await startServer();
    try {
      const st = await srv.stop('SIGTERM');
      assert.equal(st.code, 0);
      await assert.rejects(fetch(`${srv.url}/api/info`));
    } finally {
      srv.cleanup();
    }
  });
});
