// An MCP server over HTTP for the scenario tests, built on the SDK:
// Streamable HTTP at any path (McpServer + StreamableHTTPServerTransport,
// one session per initialize) and the older HTTP+SSE transport at /sse
// (SSEServerTransport, messages POSTed to /messages?sessionId=…). Listens
// on 127.0.0.1 on a free port and prints "listening PORT". Options:
//   --token T     every request must carry "Authorization: Bearer T"; others
//                 get 401 with a WWW-Authenticate challenge.
//   --json        answers are JSON bodies instead of SSE streams.
//   --resumable   streams can be resumed (an event store; events have ids).
//   --retry MS    the retry field the streams carry (with --resumable).
//   --no-get      Streamable HTTP offers no GET stream (405).
// Tools: echo {message}, slow {steps, ms, cutAt} (one progress notification
// per step; stops when cancelled; with cutAt, the answer stream is closed
// after that step, as a server that wants the client to resume does).
// Test hooks: POST /__forget drops every session (as a restarted server
// would), POST /__forget-before-call does so when the next tools/call
// arrives, POST /__empty-resume makes every later resume an empty stream,
// POST /__refuse-resume answers every later resume 409,
// POST /__add-tool adds a tool "late" to every session, GET /__log lists
// what was seen. GET /bad-sse is an HTTP+SSE stream whose endpoint is on
// another origin.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import { InMemoryEventStore } from '@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

const argv = process.argv.slice(2);
const option = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const token = option('--token') ?? null;
const json = argv.includes('--json');
const resumable = argv.includes('--resumable');
const retry = option('--retry') === undefined ? undefined : Number(option('--retry'));
const noGet = argv.includes('--no-get');

// The SDK's example store takes the stream id from an event id up to its
// first '_', which the id of the GET stream ("_GET_stream") has too: this
// one separates them with '|' and numbers the events in order.
class EventStore extends InMemoryEventStore {
  n = 0;
  generateEventId(streamId) {
    return `${streamId}|${String(++this.n).padStart(8, '0')}`;
  }
  getStreamIdFromEventId(eventId) {
    return eventId.slice(0, eventId.lastIndexOf('|'));
  }
}

const sessions = new Map();
const legacy = new Map(); // HTTP+SSE sessions by id
const servers = new Set(); // every McpServer connected
const log = [];
let forgetBeforeCall = false;
let emptyResume = false;
let refuseResume = false;

function newServer() {
  const server = new McpServer({ name: 'http-test', version: '1.0.0' });
  servers.add(server);
  server.registerTool(
    'echo',
    { description: 'Echoes the message', inputSchema: { message: z.string() } },
    async ({ message }) => ({ content: [{ type: 'text', text: `Echo: ${message}` }] }),
  );
  server.registerTool(
    'slow',
    { description: 'Counts steps slowly', inputSchema: { steps: z.number(), ms: z.number(), cutAt: z.number().optional() } },
    async ({ steps, ms, cutAt }, extra) => {
      const progressToken = extra._meta?.progressToken;
      for (let i = 1; i <= steps; i++) {
        await new Promise((r) => setTimeout(r, ms));
        if (extra.signal.aborted) {
          log.push({ aborted: true });
          return { content: [{ type: 'text', text: 'aborted' }], isError: true };
        }
        if (progressToken !== undefined) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: i, total: steps } });
          log.push({ progress: i, at: Date.now() });
        }
        if (i === cutAt) {
          log.push({ cut: Date.now() });
          extra.closeSSEStream();
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

// GET /sse and POST /messages: the older HTTP+SSE transport.
async function handleLegacy(req, res, body) {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET') {
    const transport = new SSEServerTransport('/messages', res);
    legacy.set(transport.sessionId, transport);
    transport.onclose = () => legacy.delete(transport.sessionId);
    await newServer().connect(transport);
    return;
  }
  if (forgetBeforeCall && body?.method === 'tools/call') {
    // The session is forgotten, its stream left open.
    forgetBeforeCall = false;
    legacy.delete(url.searchParams.get('sessionId'));
  }
  const transport = legacy.get(url.searchParams.get('sessionId'));
  if (!transport) {
    res.writeHead(404).end('no such session');
    return;
  }
  await transport.handlePostMessage(req, res, body);
}

const http = createServer(async (req, res) => {
  // Each hook answers 204 unless it answered itself (and says so).
  const hooks = {
    '/__log': () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(log)) && true,
    '/__forget-before-call': () => {
      forgetBeforeCall = true;
    },
    '/__empty-resume': () => {
      emptyResume = true;
    },
    '/__refuse-resume': () => {
      refuseResume = true;
    },
    '/__add-tool': () => {
      for (const server of servers)
        server.registerTool('late', { description: 'Added at run time' }, async () => ({ content: [{ type: 'text', text: 'late' }] }));
    },
    '/__forget': () => {
      for (const t of [...sessions.values(), ...legacy.values()]) t.close();
      sessions.clear();
    },
    // An HTTP+SSE stream whose endpoint is on another origin.
    '/bad-sse': () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: endpoint\ndata: http://evil.example:9/messages?sessionId=1\n\n');
      return true;
    },
  };
  if (hooks[req.url]) {
    if (!hooks[req.url]()) res.writeHead(204).end();
    return;
  }
  const body = req.method === 'POST' ? await readBody(req) : undefined;
  const sid = req.headers['mcp-session-id'];
  log.push({
    http: req.method,
    path: req.url.replace(/\?.*/, ''),
    method: body?.method ?? null,
    session: sid ?? null,
    version: req.headers['mcp-protocol-version'] ?? null,
    accept: req.headers.accept ?? null,
    auth: req.headers.authorization ?? null,
    lastEventId: req.headers['last-event-id'] ?? null,
    at: Date.now(),
  });
  if (token && req.headers.authorization !== `Bearer ${token}`) {
    res.writeHead(401, { 'www-authenticate': 'Bearer realm="http-test", error="invalid_token"' }).end('no entry');
    return;
  }
  if (req.url === '/sse' || req.url.startsWith('/messages?')) {
    await handleLegacy(req, res, body);
    return;
  }
  if (req.method === 'GET' && noGet) {
    res.writeHead(405, { allow: 'POST, DELETE' }).end();
    return;
  }
  if (req.method === 'GET' && refuseResume && req.headers['last-event-id']) {
    res.writeHead(409, { 'content-type': 'text/plain' }).end('stream busy');
    return;
  }
  if (req.method === 'GET' && emptyResume && req.headers['last-event-id']) {
    res.writeHead(200, { 'content-type': 'text/event-stream' }).end();
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
      ...(resumable ? { eventStore: new EventStore(), retryInterval: retry } : {}),
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
