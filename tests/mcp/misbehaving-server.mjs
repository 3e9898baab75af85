#!/usr/bin/env node
// chatplane's misbehaving MCP server: a small stdio MCP server (plain Node,
// no packages) that breaks the protocol in the ways a client must survive.
//
//   node tests/mcp/misbehaving-server.mjs [MODE] [--marker TEXT]
//
// --marker is ignored; tests pass a unique one to find the process later.
// With MISBEHAVING_LOG set in its environment, the server appends a line to
// that file for every cancellation it receives ("cancelled <id>: <reason>").
//
// Tools, in every mode:
//   echo {message}          "Echo: <message>"
//   pid {}                  this process's pid, as text
//   env {}                  this process's environment as JSON (structuredContent only)
//   crash {}                writes half an answer, then exits with status 1
//   hang {}                 never answers this call (pings are still answered)
//   freeze {}               never answers anything again, pings included
//   slow_progress {steps, ms}  a progress notification every ms, then "done"
//   huge {bytes}            answers with a text of that many bytes (default 5 MiB)
//   fail {}                 answers with a JSON-RPC error -32602
//
// Modes change how the server behaves as a whole:
//   normal                  none of the below
//   crash-mid-call          every tools/call crashes as `crash` does
//   never-answer            no tools/call is ever answered, as `hang`
//   garbage-lines           writes garbage before every message: text that is
//                           not JSON, JSON that is not JSON-RPC, an answer to
//                           an id never used, blank and CRLF lines
//   out-of-order            holds each tools/call answer until the next call
//                           arrives (or 300 ms passed), then answers the
//                           newest first
//   paginate                tools/list gives one tool per page, with nextCursor
//   slow-progress           every tools/call sends 4 progress notifications
//                           300 ms apart before answering (further apart
//                           than chatplane's progress interval, so that
//                           every one of them is shown)
//   huge-line               the first tools/call of the process is answered
//                           with a 5 MiB line; later ones normally
//   notifications-before-initialize
//                           before the initialize answer: tools/list_changed, a
//                           log message, progress for an unknown token, and
//                           ping and roots/list requests of its own
//   list-changed            after the first tools/call, adds the tool `extra`
//                           and sends notifications/tools/list_changed
//   exit-at-start           writes to stderr and exits with status 3 at once
//   crash-once              `echo` is read-only (readOnlyHint) and its first
//                           call crashes as `crash` does, once per file
//                           named by MISBEHAVING_STATE (created then), so
//                           the server started again answers it
//   fail-initialize         answers initialize with a JSON-RPC error
//   old-protocol            answers initialize with protocol 2024-11-05
//   bad-protocol            answers initialize with protocol 1999-01-01
//   stderr-noise            writes lines to stderr, one of them 5000 bytes
//   flood                   every tools/call first sends 100,000
//                           notifications/progress (progress 1..100000 of
//                           100000), 100,000 notifications/message and
//                           100,000 stderr lines of 500 bytes (50 MB), as
//                           fast as the pipes take them, then answers
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const mode = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 'normal';
let frozen = false;
let calls = 0;
let extraTool = false;
const held = [];
let heldTimer = null;

const TOOLS = [
  { name: 'echo', description: 'Echoes the message', inputSchema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] } },
  { name: 'pid', description: 'The server process id', inputSchema: { type: 'object', properties: {} } },
  { name: 'env', description: 'The server environment', inputSchema: { type: 'object', properties: {} } },
  { name: 'crash', description: 'Exits in the middle of the call', inputSchema: { type: 'object', properties: {} } },
  { name: 'hang', description: 'Never answers', inputSchema: { type: 'object', properties: {} } },
  { name: 'freeze', description: 'Stops answering anything', inputSchema: { type: 'object', properties: {} } },
  { name: 'slow_progress', description: 'Reports progress', inputSchema: { type: 'object', properties: { steps: { type: 'number' }, ms: { type: 'number' } } } },
  { name: 'huge', description: 'A very long answer', inputSchema: { type: 'object', properties: { bytes: { type: 'number' } } } },
  { name: 'fail', description: 'Answers with a JSON-RPC error', inputSchema: { type: 'object', properties: {} } },
];

function garbage() {
  process.stdout.write('this is not json\n');
  process.stdout.write('[1,2,3]\n');
  process.stdout.write('{"jsonrpc":"2.0","id":987654,"result":{}}\r\n');
  process.stdout.write('\n\r\n');
  process.stdout.write('{"jsonrpc":"2.0"}\n');
  process.stdout.write('{"id":{"x":1},"result":{}}\n');
}

function send(msg) {
  if (mode === 'garbage-lines') garbage();
  process.stdout.write(JSON.stringify(msg) + '\n');
}

const result = (id, r) => send({ result: r, jsonrpc: '2.0', id });
const text = (id, t) => result(id, { content: [{ type: 'text', text: t }] });

function crash() {
  process.stdout.write('{"result":{"content":[{"type":"te');
  setTimeout(() => process.exit(1), 20);
}

// The flood mode: FLOOD progress notifications, as many log notifications
// and as many stderr lines of 500 bytes, interleaved, waiting whenever a
// pipe is full so that the server's memory stays flat. The last progress
// is FLOOD of FLOOD, message "flood FLOOD".
const FLOOD = 100000;
async function flood(id) {
  const pad = 'e'.repeat(470);
  const drained = (stream) => new Promise((r) => stream.once('drain', r));
  for (let i = 1; i <= FLOOD; i++) {
    const okOut = process.stdout.write(
      JSON.stringify({ method: 'notifications/progress', params: { progressToken: id, progress: i, total: FLOOD, message: `flood ${i}` }, jsonrpc: '2.0' }) + '\n' +
      JSON.stringify({ method: 'notifications/message', params: { level: 'info', logger: 'flood', data: `log record ${i}` }, jsonrpc: '2.0' }) + '\n');
    const okErr = process.stderr.write(`flood stderr line ${String(i).padStart(6, '0')} ${pad}\n`);
    if (!okOut) await drained(process.stdout);
    if (!okErr) await drained(process.stderr);
  }
}

async function call(id, name, args) {
  calls++;
  if (mode === 'flood') await flood(id);
  if (mode === 'crash-mid-call') return crash();
  if (mode === 'never-answer') return;
  if (mode === 'slow-progress') {
    for (let i = 1; i <= 4; i++) {
      await sleep(300);
      send({ method: 'notifications/progress', params: { progressToken: id, progress: i, total: 4, message: `step ${i}` }, jsonrpc: '2.0' });
    }
  }
  if (mode === 'huge-line' && calls === 1) return text(id, 'x'.repeat(5 << 20));
  if (mode === 'list-changed' && !extraTool) {
    extraTool = true;
    setTimeout(() => send({ method: 'notifications/tools/list_changed', jsonrpc: '2.0' }), 10);
  }
  if (mode === 'crash-once' && name === 'echo' && process.env.MISBEHAVING_STATE && !existsSync(process.env.MISBEHAVING_STATE)) {
    writeFileSync(process.env.MISBEHAVING_STATE, 'crashed\n');
    return crash();
  }
  switch (name) {
    case 'echo':
      return text(id, `Echo: ${args.message}`);
    case 'extra':
      return text(id, 'extra tool');
    case 'pid':
      return text(id, String(process.pid));
    case 'env':
      return result(id, { content: [], structuredContent: process.env });
    case 'crash':
      return crash();
    case 'hang':
      return;
    case 'freeze':
      frozen = true;
      return;
    case 'slow_progress': {
      const steps = args.steps ?? 3;
      for (let i = 1; i <= steps; i++) {
        await sleep(args.ms ?? 100);
        send({ method: 'notifications/progress', params: { progressToken: id, progress: i, total: steps, message: `step ${i} of ${steps}` }, jsonrpc: '2.0' });
      }
      return text(id, 'done');
    }
    case 'huge':
      return text(id, 'y'.repeat(args.bytes ?? (5 << 20)));
    case 'fail':
      return send({ jsonrpc: '2.0', id, error: { code: -32602, message: 'Invalid params: nothing is valid here' } });
    default:
      return result(id, { content: [{ type: 'text', text: `Unknown tool: ${name}` }], isError: true });
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// out-of-order: answers are produced by call() into the held list and
// released newest first.
function releaseHeld() {
  clearTimeout(heldTimer);
  heldTimer = null;
  const batch = held.splice(0).reverse();
  for (const f of batch) f();
}

function onCall(msg) {
  const args = msg.params?.arguments ?? {};
  const name = msg.params?.name;
  if (mode !== 'out-of-order') return call(msg.id, name, args);
  held.push(() => call(msg.id, name, args));
  if (held.length >= 2) releaseHeld();
  else heldTimer = setTimeout(releaseHeld, 300);
}

function listTools(msg) {
  let tools = extraTool
    ? [...TOOLS, { name: 'extra', description: 'Appeared later', inputSchema: { type: 'object', properties: {} } }]
    : TOOLS;
  if (mode === 'crash-once') tools = tools.map((t) => (t.name === 'echo' ? { ...t, annotations: { readOnlyHint: true } } : t));
  if (mode !== 'paginate') return result(msg.id, { tools });
  const at = Number(msg.params?.cursor ?? 0);
  const page = { tools: tools.slice(at, at + 1) };
  if (at + 1 < tools.length) page.nextCursor = String(at + 1);
  return result(msg.id, page);
}

function initialize(msg) {
  if (mode === 'notifications-before-initialize') {
    send({ method: 'notifications/tools/list_changed', jsonrpc: '2.0' });
    send({ method: 'notifications/message', params: { level: 'info', data: 'hello before initialize' }, jsonrpc: '2.0' });
    send({ method: 'notifications/progress', params: { progressToken: 4242, progress: 1 }, jsonrpc: '2.0' });
    send({ method: 'ping', jsonrpc: '2.0', id: 'srv-1' });
    send({ method: 'roots/list', jsonrpc: '2.0', id: 'srv-2' });
  }
  if (mode === 'fail-initialize') {
    return send({ jsonrpc: '2.0', id: msg.id, error: { code: -32603, message: 'initialization exploded' } });
  }
  const protocolVersion = mode === 'old-protocol' ? '2024-11-05' : mode === 'bad-protocol' ? '1999-01-01' : '2025-11-25';
  result(msg.id, {
    protocolVersion,
    capabilities: { tools: { listChanged: true } },
    serverInfo: { name: 'misbehaving', version: '1.0.0' },
  });
}

if (mode === 'exit-at-start') {
  process.stderr.write('misbehaving: exiting at start as asked\n');
  process.exit(3);
}
if (mode === 'stderr-noise') {
  process.stderr.write('noise line one\n');
  process.stderr.write('z'.repeat(5000) + '\n');
  process.stderr.write('noise "quoted" line\n');
}

const answers = new Map(); // answers to our own requests, by id
createInterface({ input: process.stdin, crlfDelay: Infinity }).on('line', (line) => {
  if (frozen) return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    return; // as the reference servers do: no answer to an unreadable line
  }
  if (msg.method === undefined) {
    answers.set(msg.id, msg);
    if (msg.id === 'srv-1' || msg.id === 'srv-2') {
      process.stderr.write(`answer to ${msg.id}: ${JSON.stringify(msg)}\n`);
    }
    return;
  }
  switch (msg.method) {
    case 'initialize':
      return initialize(msg);
    case 'notifications/initialized':
      return;
    case 'notifications/cancelled':
      if (process.env.MISBEHAVING_LOG) {
        appendFileSync(process.env.MISBEHAVING_LOG, `cancelled ${msg.params?.requestId}: ${msg.params?.reason}\n`);
      }
      return;
    case 'ping':
      return result(msg.id, {});
    case 'tools/list':
      return listTools(msg);
    case 'tools/call':
      return onCall(msg);
    default:
      if (msg.id !== undefined) send({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } });
  }
});
process.stdin.on('end', () => process.exit(0));
