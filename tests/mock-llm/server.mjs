#!/usr/bin/env node
// chatplane's mock model server: an OpenAI-compatible streaming Chat
// Completions endpoint whose every answer a test scripts in advance, down to
// broken connections. Plain Node 20, no packages.
//
//   node tests/mock-llm/server.mjs [--port N]
//
// Listens on 127.0.0.1 (port 0 or no --port: a free one) and prints
// "listening PORT" as the first line on stdout.
//
// Routes
//   POST <anything>/chat/completions  the model; answers with the next
//                                     scripted response, or the default one
//   POST <anything>/messages          the same queue, answered in the form
//                                     of Anthropic's Messages API (below)
//   POST /__script    body: a JSON array of responses, appended to the queue
//                     (each is served once, in order); answers {"queued": n}
//   GET  /__requests  every model request received (either API), oldest first:
//                     [{"path", "headers": {lower-case name: value},
//                       "raw": "<body text>", "body": <parsed body or null>,
//                       "port": the client's port (one per connection)}]
//   POST /__drop_idle closes every connection that waits for a request
//   POST /__reset     empties the queue and the request log, and lists the
//                     default models again
//   GET  <anything>/models  the model list, {"object": "list", "data":
//                     [{"id", "object": "model", "created", "owned_by"}]},
//                     by default the one model "mock-model"
//   POST /__models    body: the ids the model list holds from now on (an
//                     array of strings), or {"status", "body"} to answer
//                     the list with that error instead
//
// A scripted response (every field optional):
//   status          HTTP status, default 200. For a non-200 status the body
//                   below is sent whole and nothing is streamed.
//   body            the body of a non-200 response: a string sent as is, or a
//                   value sent as JSON; default
//                   {"error":{"message":"mock error <status>","type":"mock_error","param":null,"code":null}}
//   headers         extra response headers, e.g. {"Retry-After": "2"}
//   first_delay_ms  wait before anything is sent, status line included
//   delay_ms        wait between two streamed events
//
//   What is streamed, in this order (each item below is one SSE event):
//   text            convenience: a first delta {"role":"assistant","content":""},
//                   then this text in pieces of piece_chars characters
//                   (default 4), one content delta each
//   chunks          explicit events: an object is a delta, wrapped into a
//                   chat.completion.chunk as choices[0].delta; a string is
//                   sent as the data of one event exactly as given (for
//                   "[DONE]" early, broken JSON, whole hand-made chunks);
//                   {"__raw": "bytes"} is written to the socket unframed
//   tool_calls      convenience: [{"name", "arguments": object or JSON text,
//                   "id"?}], streamed as OpenAI does: per call a first delta
//                   {index, id, type, function: {name, arguments: ""}}, then
//                   the arguments in fragments. Shaped by:
//     split_tool_args  fragment size in characters (default: one fragment)
//     interleave       alternate the fragments of the calls (parallel calls)
//     whole_tool_calls Ollama style: every call whole (name and complete
//                      arguments) in one delta that repeats role
//     omit_ids         vLLM style: no id on first deltas, "id": "" on later ones
//   finish_reason   sent on a last chunk with an empty delta; default
//                   "tool_calls" when tool_calls were given, else "stop";
//                   null sends no such chunk
//   usage           the usage chunk ("choices": []) before [DONE]; default
//                   {"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}
//                   when the request asked for include_usage; null: none
//   usage_within_max  true: the usage chunk reports at most the request's
//                   max_completion_tokens as completion_tokens, as a real
//                   model that stops at its limit does
//   error_in_stream an object sent as data: {"error": <it>}; the stream then
//                   ends without [DONE]
//   no_done         true: end the body without data: [DONE]
//
//   Breaking the connection (N counts the events written so far):
//   cut_after       destroy the socket after N events
//   stall_after     stop after N events and keep the socket open, silent,
//                   until the client goes away
//
// Normal chunks carry "usage": null (when usage was asked for) and unknown
// fields (system_fingerprint, obfuscation, logprobs) as real servers do.
//
// Anthropic Messages mode (POST .../messages): every event is framed as
// "event: <type>\ndata: <json>\n\n" in the order the API sends them:
// message_start (with usage.input_tokens), then per content block
// content_block_start, its deltas and content_block_stop, a ping after the
// first block starts, message_delta (stop_reason, usage.output_tokens) and
// message_stop. The same script fields apply, read this way:
//   text            one text block, streamed as text_delta pieces of
//                   piece_chars characters (default 4)
//   tool_calls      one tool_use block per call ("id" default toolu_mock_…),
//                   the input streamed as input_json_delta fragments of
//                   split_tool_args characters (default: one fragment)
//   chunks          strings sent as the data of an event "raw" as given,
//                   {"__raw": "bytes"} written unframed, objects sent as an
//                   event of their own "type"
//   stop_reason     default "tool_use" with tool_calls, else "end_turn";
//                   null sends no message_delta
//   usage           {"input_tokens", "output_tokens"}, default 11 and 7
//   error_in_stream an error object ({"type", "message"}) sent as an error
//                   event; the stream then ends without message_stop
//   no_done         true: no message_stop
//   status/body     a non-200 answer; the default body is Anthropic's
//                   {"type":"error","error":{"type","message":"mock error N"}}
//                   with the type the API gives that status

import http from 'node:http';

const DEFAULT_RESPONSE = { text: 'Hello from the mock model.' };
const DEFAULT_USAGE = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };
const DEFAULT_MODELS = ['mock-model'];

let queue = [];
let requests = [];
let served = 0;
let models = DEFAULT_MODELS;

function parseArgs(argv) {
  let port = 0;
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === '--port' && i + 1 < argv.length) port = Number(argv[++i]);
  }
  return { port };
}

function sendJson(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function splitText(s, n) {
  const out = [];
  const chars = Array.from(s); // never split a character in two
  for (let i = 0; i < chars.length; i += n) out.push(chars.slice(i, i + n).join(''));
  return out;
}

// The deltas of the tool_calls convenience, shaped by the quirk flags.
function toolCallDeltas(r) {
  const calls = r.tool_calls.map((c, i) => ({
    id: c.id ?? `call_mock_${served}_${i}`,
    name: c.name,
    args: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments ?? {}),
  }));
  if (r.whole_tool_calls) {
    return [{
      role: 'assistant',
      content: '',
      tool_calls: calls.map((c, i) => ({
        id: r.omit_ids ? undefined : c.id,
        index: i,
        type: 'function',
        function: { name: c.name, arguments: c.args },
      })),
    }];
  }
  const perCall = calls.map((c, i) => {
    const first = { index: i, type: 'function', function: { name: c.name, arguments: '' } };
    if (!r.omit_ids) first.id = c.id;
    const frags = r.split_tool_args ? splitText(c.args, r.split_tool_args) : [c.args];
    const rest = frags.map((f) => {
      const d = { index: i, function: { arguments: f } };
      if (r.omit_ids) d.id = '';
      return d;
    });
    return [first, ...rest].map((tc) => ({ tool_calls: [tc] }));
  });
  if (!r.interleave) return perCall.flat();
  const out = [];
  for (let k = 0; perCall.some((l) => k < l.length); k++) {
    for (const l of perCall) if (k < l.length) out.push(l[k]);
  }
  return out;
}

// Every event of a 200 response as {data} or {raw}, in order.
function plan(r, reqBody, id) {
  const wantUsage = !!(reqBody && reqBody.stream_options && reqBody.stream_options.include_usage);
  const model = (reqBody && reqBody.model) || 'mock';
  const created = Math.floor(Date.now() / 1000);
  const chunk = (choices, extra = {}) => {
    const c = {
      id, object: 'chat.completion.chunk', created, model,
      system_fingerprint: 'fp_mock', choices, obfuscation: 'q1w2',
    };
    if (wantUsage) c.usage = null;
    return JSON.stringify(Object.assign(c, extra));
  };
  const delta = (d, finish = null) => chunk([{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);

  const events = [];
  if (typeof r.text === 'string') {
    events.push({ data: delta({ role: 'assistant', content: '' }) });
    for (const p of splitText(r.text, r.piece_chars || 4)) events.push({ data: delta({ content: p }) });
  }
  for (const c of r.chunks || []) {
    if (typeof c === 'string') events.push({ data: c });
    else if (c && typeof c.__raw === 'string') events.push({ raw: c.__raw });
    else events.push({ data: delta(c) });
  }
  if (Array.isArray(r.tool_calls)) {
    for (const d of toolCallDeltas(r)) events.push({ data: delta(d) });
  }
  if (r.error_in_stream) {
    events.push({ data: JSON.stringify({ error: r.error_in_stream }) });
    return events;
  }
  const finish = 'finish_reason' in r ? r.finish_reason : (r.tool_calls ? 'tool_calls' : 'stop');
  if (finish !== null) events.push({ data: delta({}, finish) });
  let usage = 'usage' in r ? r.usage : (wantUsage ? DEFAULT_USAGE : null);
  const max = reqBody && reqBody.max_completion_tokens;
  if (usage && r.usage_within_max && Number.isInteger(max) && usage.completion_tokens > max) {
    usage = { ...usage, completion_tokens: max, total_tokens: usage.prompt_tokens + max };
  }
  if (usage) events.push({ data: chunk([], { usage }) });
  if (!r.no_done) events.push({ data: '[DONE]' });
  return events;
}

// The error type Anthropic gives an HTTP status.
function anthropicErrorType(status) {
  return ({
    400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error',
    404: 'not_found_error', 413: 'request_too_large', 429: 'rate_limit_error',
    500: 'api_error', 529: 'overloaded_error',
  })[status] || 'api_error';
}

// Every event of a 200 Messages response as {event, data} or {raw}.
function planMessages(r, reqBody, id) {
  const model = (reqBody && reqBody.model) || 'mock';
  const usage = Object.assign({ input_tokens: 11, output_tokens: 7 }, r.usage || {});
  const ev = (type, obj) => ({ event: type, data: JSON.stringify({ type, ...obj }) });
  const events = [ev('message_start', {
    message: {
      id, type: 'message', role: 'assistant', model, content: [],
      stop_reason: null, stop_sequence: null,
      usage: { input_tokens: usage.input_tokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
    },
  })];
  let index = 0;
  let pinged = false;
  const ping = () => { if (!pinged) { pinged = true; events.push(ev('ping', {})); } };
  if (typeof r.text === 'string') {
    events.push(ev('content_block_start', { index, content_block: { type: 'text', text: '' } }));
    ping();
    for (const p of splitText(r.text, r.piece_chars || 4)) {
      events.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: p } }));
    }
    events.push(ev('content_block_stop', { index }));
    index++;
  }
  for (const c of r.chunks || []) {
    if (typeof c === 'string') events.push({ event: 'raw', data: c });
    else if (c && typeof c.__raw === 'string') events.push({ raw: c.__raw });
    else events.push(ev(c.type, c));
  }
  for (const [i, c] of (r.tool_calls || []).entries()) {
    const args = typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments ?? {});
    events.push(ev('content_block_start', {
      index, content_block: { type: 'tool_use', id: c.id ?? `toolu_mock_${served}_${i}`, name: c.name, input: {} },
    }));
    ping();
    const frags = r.split_tool_args ? splitText(args, r.split_tool_args) : [args];
    for (const f of frags) {
      events.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: f } }));
    }
    events.push(ev('content_block_stop', { index }));
    index++;
  }
  if (r.error_in_stream) {
    events.push(ev('error', { error: r.error_in_stream }));
    return events;
  }
  const stop = 'stop_reason' in r ? r.stop_reason : (r.tool_calls ? 'tool_use' : 'end_turn');
  if (stop !== null) {
    events.push(ev('message_delta', { delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } }));
  }
  if (!r.no_done) events.push(ev('message_stop', {}));
  return events;
}

async function serveCompletion(req, res, raw, anthropic = false) {
  let body = null;
  try { body = JSON.parse(raw); } catch { body = null; }
  requests.push({ path: req.url, headers: req.headers, raw, body, port: req.socket.remotePort });
  const r = queue.length ? queue.shift() : DEFAULT_RESPONSE;
  served++;

  let gone = false;
  res.on('close', () => { gone = true; });
  if (r.first_delay_ms) await sleep(r.first_delay_ms);
  if (gone) return;

  const status = r.status || 200;
  if (status !== 200) {
    let errBody = r.body;
    if (errBody === undefined) {
      errBody = anthropic
        ? { type: 'error', error: { type: anthropicErrorType(status), message: `mock error ${status}` } }
        : { error: { message: `mock error ${status}`, type: 'mock_error', param: null, code: null } };
    }
    const text = typeof errBody === 'string' ? errBody : JSON.stringify(errBody);
    res.writeHead(status, {
      'Content-Type': typeof errBody === 'string' ? 'text/plain' : 'application/json',
      'Content-Length': Buffer.byteLength(text),
      ...(r.headers || {}),
    });
    res.end(text);
    return;
  }

  res.socket.setNoDelay(true);
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    ...(r.headers || {}),
  });
  res.flushHeaders();

  const events = anthropic ? planMessages(r, body, `msg_mock_${served}`) : plan(r, body, `chatcmpl-mock-${served}`);
  let written = 0;
  for (const ev of events) {
    if (gone) return;
    if (r.cut_after !== undefined && written >= r.cut_after) {
      res.socket.destroy();
      return;
    }
    if (r.stall_after !== undefined && written >= r.stall_after) return; // left open
    if (written > 0 && r.delay_ms) await sleep(r.delay_ms);
    if (gone) return;
    // Waiting for each write to reach the socket makes a cut or a stall
    // happen after exactly the events before it were delivered.
    const frame = ev.raw !== undefined ? ev.raw
      : ev.event ? `event: ${ev.event}\ndata: ${ev.data}\n\n` : `data: ${ev.data}\n\n`;
    await new Promise((resolve) => res.write(frame, resolve));
    written++;
  }
  if (r.cut_after !== undefined && written >= r.cut_after) {
    res.socket.destroy();
    return;
  }
  if (r.stall_after !== undefined && written >= r.stall_after) return;
  res.end();
}

async function handle(req, res) {
  const raw = await readBody(req);
  const path = req.url.split('?')[0];
  if (req.method === 'POST' && path === '/__script') {
    let items;
    try { items = JSON.parse(raw); } catch { return sendJson(res, 400, { error: 'not JSON' }); }
    if (!Array.isArray(items)) return sendJson(res, 400, { error: 'expected an array' });
    queue.push(...items);
    return sendJson(res, 200, { queued: queue.length });
  }
  if (req.method === 'GET' && path === '/__requests') return sendJson(res, 200, requests);
  if (req.method === 'POST' && path === '/__reset') {
    queue = [];
    requests = [];
    models = DEFAULT_MODELS;
    return sendJson(res, 200, { reset: true });
  }
  if (req.method === 'POST' && path === '/__drop_idle') {
    server.closeIdleConnections();
    return sendJson(res, 200, { dropped: true });
  }
  if (req.method === 'POST' && path === '/__models') {
    try { models = JSON.parse(raw); } catch { return sendJson(res, 400, { error: 'not JSON' }); }
    return sendJson(res, 200, { models });
  }
  if (req.method === 'GET' && path.endsWith('/models')) {
    if (!Array.isArray(models)) {
      const text = typeof models.body === 'string' ? models.body : JSON.stringify(models.body ?? {});
      res.writeHead(models.status || 500, { 'Content-Type': 'application/json' });
      return res.end(text);
    }
    const created = Math.floor(Date.now() / 1000);
    return sendJson(res, 200, {
      object: 'list',
      data: models.map((id) => ({ id, object: 'model', created, owned_by: 'mock' })),
    });
  }
  if (req.method === 'POST' && path.endsWith('/chat/completions')) return serveCompletion(req, res, raw);
  if (req.method === 'POST' && path.endsWith('/messages')) return serveCompletion(req, res, raw, true);
  return sendJson(res, 404, { error: { message: `no route ${req.method} ${path}`, type: 'not_found', param: null, code: null } });
}

const { port } = parseArgs(process.argv);
const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    if (!res.headersSent) sendJson(res, 500, { error: { message: String(e), type: 'mock_crash', param: null, code: null } });
    else res.destroy();
  });
});
server.keepAliveTimeout = 30000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
