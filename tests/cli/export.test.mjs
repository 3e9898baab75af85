// `chatplane export`: a session as Markdown (the default) or as the JSON
// document of GET /api/sessions/{id}/export, from the database the asks
// wrote.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';

import { jsonLines, run, workspace } from './helpers.mjs';

let ws;
beforeEach(() => {
  ws = workspace();
});
afterEach(() => ws.cleanup());

const env = () => ({ ...ws.env, CHATPLANE_DEMO_DELAY_MS: '0' });
const utc = (t) => `${t.slice(0, 10)} ${t.slice(11, 16)} UTC`;

describe('export', () => {
  test('JSON: the session with its messages, runs and tool executions, oldest first', async () => {
    const first = await run(['ask', '--json', 'what is 6*7?'], { env: env() });
    const sid = jsonLines(first.stdout)[0].session_id;
    await run(['ask', '--session', sid, 'hello'], { env: env() });
    const r = await run(['export', sid, '--format', 'json'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const doc = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(doc), ['session', 'messages', 'runs', 'tool_executions']);
    assert.equal(doc.session.id, sid);
    assert.equal(doc.session.last_run.id, doc.runs[1].id);
    assert.deepEqual(doc.messages.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant', 'user', 'assistant']);
    assert.equal(doc.messages[0].content, 'what is 6*7?');
    assert.deepEqual(doc.runs.map((x) => x.stop_reason), ['completed', 'completed']);
    assert.ok(doc.runs[0].started_at < doc.runs[1].started_at);
    assert.deepEqual(doc.tool_executions.map((t) => [t.tool, t.status, t.result]), [['calc', 'ok', '42']]);
  });

  test('Markdown: each message under its role and time, the tool call and its result, how each run stopped', async () => {
    const first = await run(['ask', '--json', 'what is 6*7?'], { env: env() });
    const sid = jsonLines(first.stdout)[0].session_id;
    const doc = JSON.parse((await run(['export', sid, '--format', 'json'], { env: env() })).stdout);
    const r = await run(['export', sid], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const [u, a1, tool, a2] = doc.messages;
    const call = a1.tool_calls[0];
    const run0 = doc.runs[0];
    const exe = doc.tool_executions[0];
    assert.equal(r.stdout, [
      `# ${doc.session.title}`, '',
      `Session \`${sid}\`, mode standard, started ${utc(doc.session.created_at)}.`, '',
      `## User · ${utc(u.created_at)}`, '', 'what is 6*7?', '',
      `## Assistant · ${utc(a1.created_at)}`, '',
      ...(a1.content ? [a1.content, ''] : []),
      `**Tool call** \`calc\` (\`${call.id}\`)`, '', '```json', call.function.arguments, '```', '',
      `**Tool result** (\`${tool.tool_call_id}\`)`, '', '```', '42', '```', '',
      `## Assistant · ${utc(a2.created_at)}`, '', a2.content, '',
      `*Run ${run0.id} (standard mode) stopped: completed — ${run0.stop_detail}*`, '',
      '| tool | server | status | ms |', '|---|---|---|---|', `| calc | builtin | ok | ${exe.duration_ms} |`, '', '',
    ].join('\n'));
  });

  test('errors: no session, a bad format, no id', async () => {
    await run(['ask', 'hello'], { env: env() });
    let r = await run(['export', 'ses_nope'], { env: env() });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "chatplane export: no session 'ses_nope'\n");
    r = await run(['export', 'ses_nope', '--format', 'pdf'], { env: env() });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, "chatplane export: --format: 'pdf' is not markdown or json\n");
    r = await run(['export'], { env: env() });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^chatplane export: a SESSION id is needed\n/);
  });
});
