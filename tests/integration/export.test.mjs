// GET /api/sessions/{id}/export: the conversation as a file, Markdown by
// default or JSON, with Content-Disposition: attachment; the same document
// as `chatplane export`.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { api, newSession, startServer, waitIdle } from './lib/server.mjs';

let srv, sid;

before(async () => {
  srv = await startServer({});
  sid = (await newSession(srv.url)).id;
  assert.equal((await api(srv.url, 'POST', `/api/sessions/${sid}/runs`, { message: 'what is 6*7?' })).status, 202);
  await waitIdle(srv.url, sid);
});
after(async () => {
  await srv.stop();
  srv.cleanup();
});

async function get(p) {
  const r = await fetch(srv.url + p);
  return { status: r.status, type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'), text: await r.text() };
}

test('JSON: the session, its messages, runs and tool executions as the API shows them', async () => {
  const r = await get(`/api/sessions/${sid}/export?format=json`);
  assert.equal(r.status, 200);
  assert.equal(r.type, 'application/json');
  assert.equal(r.disposition, `attachment; filename="${sid}.json"`);
  const doc = JSON.parse(r.text);
  assert.deepEqual(Object.keys(doc), ['session', 'messages', 'runs', 'tool_executions']);
  assert.deepEqual(doc.session, (await api(srv.url, 'GET', `/api/sessions/${sid}`)).body);
  assert.deepEqual(doc.messages, (await api(srv.url, 'GET', `/api/sessions/${sid}/messages`)).body.messages);
  assert.deepEqual(doc.runs, (await api(srv.url, 'GET', `/api/sessions/${sid}/runs`)).body.runs.reverse());
  assert.deepEqual(doc.tool_executions, (await api(srv.url, 'GET', `/api/sessions/${sid}/tools`)).body.tool_executions);
});

test('Markdown by default: a document with the messages, the tool call and the stop', async () => {
  const r = await get(`/api/sessions/${sid}/export`);
  assert.equal(r.status, 200);
  assert.equal(r.type, 'text/markdown; charset=utf-8');
  assert.equal(r.disposition, `attachment; filename="${sid}.md"`);
  const doc = JSON.parse((await get(`/api/sessions/${sid}/export?format=json`)).text);
  const lines = r.text.split('\n');
  assert.equal(lines[0], `# ${doc.session.title}`);
  assert.ok(lines.includes('what is 6*7?'));
  assert.ok(lines.includes(`**Tool call** \`calc\` (\`${doc.messages[1].tool_calls[0].id}\`)`));
  assert.ok(lines.includes(`*Run ${doc.runs[0].id} (standard mode) stopped: completed — ${doc.runs[0].stop_detail}*`));
  assert.ok(r.text.endsWith('\n\n'));
});

test('errors: an unknown format is 400 naming it, an unknown session 404', async () => {
  let r = await api(srv.url, 'GET', `/api/sessions/${sid}/export?format=pdf`);
  assert.equal(r.status, 400);
  assert.deepEqual(r.body.error, { code: 'bad_request', message: 'format must be markdown or json' });
  r = await api(srv.url, 'GET', '/api/sessions/ses_nope/export');
  assert.equal(r.status, 404);
  assert.equal(r.body.error.code, 'not_found');
});
