// GET /api/info with MCP servers configured: every tool with its server, and
// each server's state, so one that failed to start is visible with its
// reason while the others work.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { api, startServer } from './lib/server.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
let srv;

before(async () => {
  srv = await startServer({
    config: {
      mcpServers: {
        everything: { command: path.join(root, 'node_modules/.bin/mcp-server-everything'), args: ['stdio'] },
        broken: { command: '/nonexistent/mcp-server', args: [] },
      },
    },
  });
});
after(async () => {
  await srv.stop();
  srv.cleanup();
});

test('tools of the working server are listed, the broken one is reported', async () => {
  const r = await api(srv.url, 'GET', '/api/info');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.body), ['version', 'llm', 'tools', 'servers', 'auth']);
  const echo = r.body.tools.find((t) => t.name === 'everything__echo');
  assert.equal(echo.server, 'everything');
  assert.ok(echo.description.length > 0);
  assert.deepEqual(r.body.tools.slice(0, 2).map((t) => [t.name, t.server]), [['calc', 'builtin'], ['clock', 'builtin']]);
  const byName = Object.fromEntries(r.body.servers.map((s) => [s.name, s]));
  assert.equal(byName.everything.status, 'ready');
  assert.ok(byName.everything.tools > 0);
  assert.equal(byName.broken.status, 'failed');
  assert.match(byName.broken.error, /nonexistent|No such file|not found/i);
  assert.equal(byName.broken.tools, 0);
  assert.ok(srv.lines.some((l) => /server=broken/.test(l)), 'the log names the failed server');
});
