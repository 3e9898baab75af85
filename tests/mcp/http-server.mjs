// An MCP server over Streamable HTTP for the scenario tests, built on the
// SDK (McpServer + StreamableHTTPServerTransport, one session per
// initialize). Listens on 127.0.0.1 on a free port and prints
// "listening PORT". Options:
//   --token T   every request must carry "Authorization: Bearer T"; others
//               get 401 with a WWW-Authenticate challenge.
//   --json      answers are JSON bodies instead of SSE streams.
// Tools: echo {message}, slow {steps, ms} (one progress notification per
// step; stops when cancelled). Test hooks: POST /__forget drops every
// session (as a restarted server would), POST /__forget-before-call does so
// when the next tools/call arrives, GET /__log lists what was seen.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

const argv = process.argv.slice(2);
const token = argv.includes('--token') ? argv[argv.indexOf('--token') + 1] : null;
const json = argv.includes('--json');

const sessions = new Map();
const log = [];
let forgetBeforeCall = false;

function newServer() {
  const server = new McpServer({ name: 'http-test', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Echoes the message', inputSchema: { message: z.string() } },
    async ({ message }) => ({ content: [{ type: 'text', text: `Echo: ${message}` }] }),
  );
  server.registerTool(
    'slow',
    { description: 'Counts steps slowly', inputSchema: { steps: z.number(), ms: z.number() } },
    async ({ steps, ms }, extra) => {
      const progressToken = extra._meta?.progressToken;
      for (let i = 1; i <= steps; i++) {
        await new Promise((r) => setTimeout(r, ms));
        if (extra.signal.aborted) {
          log.push({ aborted: true });
          return { content: [{ type: 'text', text: 'aborted' }], isError: true };
        }
        if (progressToken !== undefined) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: i, total: steps } });
        }
      }
      return { content: [{ type: 'text', text: `counted ${steps}` }] };
    },
  );
  return server;
}

async function readBody(req) {
  let data = '';
  for await (const chunk of req) data += chunk;
  return data ? JSON.parse(data) : undefined;
}

const http = createServer(async (req, res) => {
  if (req.url === '/__log') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(log));
    return;
  }
  if (req.url === '/__forget-before-call') {
    forgetBeforeCall = true;
    res.writeHead(204).end();
    return;
  }
  if (req.url === '/__forget') {
    for (const t of sessions.values()) t.close();
    sessions.clear();
    res.writeHead(204).end();
    return;
  }
  const body = req.method === 'POST' ? await readBody(req) : undefined;
  const sid = req.headers['mcp-session-id'];
  log.push({
    http: req.method,
    method: body?.method ?? null,
    session: sid ?? null,
    version: req.headers['mcp-protocol-version'] ?? null,
    accept: req.headers.accept ?? null,
    auth: req.headers.authorization ?? null,
  });
  if (token && req.headers.authorization !== `Bearer ${token}`) {
    res.writeHead(401, { 'www-authenticate': 'Bearer realm="http-test", error="invalid_token"' }).end('no entry');
    return;
  }
  if (forgetBeforeCall && body?.method === 'tools/call') {
    forgetBeforeCall = false;
    for (const t of sessions.values()) t.close();
    sessions.clear();
  }
  let transport = sid ? sessions.get(sid) : undefined;
  if (!transport) {
    if (sid || body?.method !== 'initialize') {
      res.writeHead(sid ? 404 : 400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: body?.id ?? null, error: { code: -32001, message: 'Session not found' } }));
      return;
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: json,
      onsessioninitialized: (id) => sessions.set(id, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await newServer().connect(transport);
  }
  await transport.handleRequest(req, res, body);
});

http.listen(0, '127.0.0.1', () => {
  console.log(`listening ${http.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
