// Providers and repairs: the real binary against two mock model servers,
// one per provider (docs/runs.md, Providers and Repairs). Tool calls over
// Anthropic's Messages API, each rule of moving to a fallback, the circuit
// of a failing provider, and the condensation of a context that overflowed.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { ask, ofType, startMock, stopped, workspace } from './lib.mjs';
import { api, newSession, sleep, startServer, waitIdle } from '../integration/lib/server.mjs';

let A; // the primary, OpenAI-compatible
let B; // the fallback, Anthropic

before(async () => {
  A = await startMock();
  B = await startMock();
});
after(() => {
  A.stop();
  B.stop();
});
beforeEach(async () => {
  await A.reset();
  await B.reset();
});

const calc = (expression, id) => ({ name: 'calc', arguments: { expression }, ...(id ? { id } : {}) });

// An OpenAI primary with an Anthropic fallback, as docs/config.md shows it.
function twoProviders(extra = {}, fallback = {}) {
  return {
    llm: {
      base_url: A.url,
      model: 'gpt-mock',
      fallbacks: [{ kind: 'anthropic', base_url: B.url, api_key: '${ANTHROPIC_TEST_KEY}', model: 'claude-mock', ...fallback }],
      ...extra,
    },
  };
}

async function run(message, { config, args = [], env = {} } = {}) {
  const ws = workspace(config);
  try {
    return await ask([...args, message], { env: { ...ws.env, ANTHROPIC_TEST_KEY: 'sk-ant-test-key', ...env } });
  } finally {
    ws.cleanup();
  }
}

const assistant = (events) => ofType(events, 'message').filter((m) => m.role === 'assistant');

describe('Anthropic Messages as the primary', () => {
  test('a tool turn over Anthropic: tool_use in fragments, tool_result back, usage and model', async () => {
    await B.script([
      { text: 'Let me compute.', tool_calls: [calc('6*7', 'toolu_X')], split_tool_args: 3, usage: { input_tokens: 40, output_tokens: 12 } },
      { text: 'It is 42.', usage: { input_tokens: 60, output_tokens: 5 } },
    ]);
    const config = {
      llm: {
        kind: 'anthropic', base_url: B.url, api_key: 'sk-ant-primary-key', model: 'claude-mock',
        headers: { 'x-gateway-token': '${GW_TOKEN}' },
      },
    };
    const r = await run('what is 6*7?', { config, env: { GW_TOKEN: 'gw-secret-123' } });
    assert.equal(r.code, 0, r.stderr);
    const finished = ofType(r.events, 'tool_finished');
    assert.equal(finished.length, 1);
    assert.equal(finished[0].tool, 'calc');
    assert.equal(finished[0].result, '42');
    const msgs = assistant(r.events);
    assert.deepEqual(msgs.map((m) => [m.content, m.model]), [['Let me compute.', 'primary/claude-mock'], ['It is 42.', 'primary/claude-mock']]);
    assert.equal(msgs[0].tool_calls[0].id, 'toolu_X');
    assert.deepEqual(JSON.parse(msgs[0].tool_calls[0].function.arguments), { expression: '6*7' });
    const s = stopped(r.events);
    assert.equal(s.reason, 'completed');
    assert.equal(s.usage.tokens, 40 + 12 + 60 + 5);

    const reqs = await B.requests();
    assert.equal(reqs.length, 2);
    assert.equal(reqs[0].path, '/v1/messages');
    assert.equal(reqs[0].headers['x-api-key'], 'sk-ant-primary-key');
    assert.equal(reqs[0].headers['anthropic-version'], '2023-06-01');
    assert.equal(reqs[0].headers['x-gateway-token'], 'gw-secret-123');
    assert.equal(reqs[0].headers.authorization, undefined);
    assert.equal(reqs[0].body.stream, true);
    assert.ok(Number.isInteger(reqs[0].body.max_tokens) && reqs[0].body.max_tokens > 0);
    assert.match(reqs[0].body.system, /helpful assistant/);
    assert.ok(reqs[0].body.messages.every((m) => m.role !== 'system'));
    assert.ok(reqs[0].body.tools.some((t) => t.name === 'calc' && t.input_schema));
    // The second call carries the tool_use and its tool_result.
    const m2 = reqs[1].body.messages;
    const use = m2.flatMap((m) => (m.role === 'assistant' ? m.content : [])).find((b) => b.type === 'tool_use');
    assert.deepEqual(use, { type: 'tool_use', id: 'toolu_X', name: 'calc', input: { expression: '6*7' } });
    const res = m2.flatMap((m) => (m.role === 'user' ? m.content : [])).find((b) => b.type === 'tool_result');
    assert.deepEqual(res, { type: 'tool_result', tool_use_id: 'toolu_X', content: '42' });
    // No secret reaches the output.
    assert.ok(!JSON.stringify(r.events).includes('gw-secret-123'));
    assert.ok(!r.stderr.includes('gw-secret-123') && !r.stderr.includes('sk-ant-primary-key'));
  });

  test('a 529 overloaded_error is retried; an in-stream overloaded error too', async () => {
    await B.script([
      { status: 529, headers: { 'retry-after': '0' } },
      { text: 'half', error_in_stream: { type: 'overloaded_error', message: 'Overloaded' } },
      { text: 'Whole.' },
    ]);
    const r = await run('hi', { config: { llm: { kind: 'anthropic', base_url: B.url, model: 'claude-mock' } } });
    assert.equal(r.code, 0, r.stderr);
    const errors = ofType(r.events, 'error');
    assert.deepEqual(errors.map((e) => [e.code, e.retryable]), [['llm_retryable', true], ['llm_retryable', true]]);
    assert.match(errors[0].message, /^HTTP 529 from .*\/v1\/messages: mock error 529$/);
    assert.match(errors[1].message, /Overloaded/);
    assert.equal(assistant(r.events).at(-1).content, 'Whole.');
  });

  test('an Anthropic primary needs llm.model', async () => {
    const r = await run('hi', { config: { llm: { kind: 'anthropic', base_url: B.url } } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /llm\.model' is required when llm\.kind is "anthropic"/);
  });

  test('a fallback without a model, or an unset ${NAME}, stops the start naming it', async () => {
    let r = await run('hi', { config: twoProviders({}, { model: undefined }) });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /llm\.fallbacks\[0\]\.model' is required/);
    r = await run('hi', { config: twoProviders({}, { api_key: '${NOT_SET_ANYWHERE}' }) });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /llm\.fallbacks\[0\]\.api_key' names \$\{NOT_SET_ANYWHERE\}, which is not set/);
  });
});

describe('fallbacks', () => {
  test('a 401 before the first token moves the step to the fallback under a new message_id', async () => {
    await A.script([{ status: 401, body: { error: { message: 'Incorrect API key', type: 'invalid_request_error', code: 'invalid_api_key' } } }]);
    await B.script([{ text: 'From the fallback.' }]);
    // The fallback's own price counts its tokens (11 in, 7 out by default).
    const config = twoProviders({ price_per_mtok: { input: 1000, output: 1000 } },
      { anthropic_version: '2024-10-22', price_per_mtok: { input: 2, output: 10 } });
    const r = await run('hello', { config });
    assert.equal(r.code, 0, r.stderr);
    const err = ofType(r.events, 'error');
    assert.equal(err.length, 1);
    assert.deepEqual([err[0].code, err[0].retryable, err[0].message_id], ['llm_error', true, null]);
    const [rep] = ofType(r.events, 'repair');
    assert.equal(rep.playbook, 'model_unavailable');
    assert.equal(rep.action, 'fallback_model');
    assert.equal(rep.outcome, 'ok');
    assert.equal(rep.detail, 'primary/gpt-mock failed (HTTP 401): switching to fallback-1/claude-mock');
    assert.equal(rep.evidence.from, 'primary/gpt-mock');
    assert.equal(rep.evidence.to, 'fallback-1/claude-mock');
    assert.equal(rep.evidence.http_status, 401);
    assert.equal(rep.evidence.code, 'invalid_api_key');
    assert.equal(rep.evidence.retries_spent, false);
    assert.match(rep.evidence.reason, /Incorrect API key/);
    const [answer] = assistant(r.events);
    assert.equal(answer.content, 'From the fallback.');
    assert.equal(answer.model, 'fallback-1/claude-mock');
    // The repair comes before the fallback's tokens, which carry its id.
    const types = r.events.map((e) => e.type);
    assert.ok(types.indexOf('repair') < types.indexOf('token'));
    assert.ok(ofType(r.events, 'token').every((t) => t.message_id === answer.message_id));
    const s = stopped(r.events);
    assert.deepEqual([s.reason, s.usage.steps, s.usage.retries], ['completed', 1, 0]);
    assert.ok(Math.abs(s.usage.cost_usd - (11 * 2 + 7 * 10) / 1e6) < 1e-12, String(s.usage.cost_usd));
    const breq = (await B.requests())[0];
    assert.equal(breq.headers['x-api-key'], 'sk-ant-test-key');
    assert.equal(breq.headers['anthropic-version'], '2024-10-22');
  });

  test('a failure after the first token retries on the same provider', async () => {
    await A.script([{ text: 'partial words that are lost', cut_after: 3 }, { text: 'Recovered.' }]);
    await B.script([{ text: 'never asked' }]);
    const r = await run('hello', { config: twoProviders() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ofType(r.events, 'repair').length, 0);
    const [err] = ofType(r.events, 'error');
    assert.equal(err.code, 'llm_retryable');
    assert.ok(err.message_id);
    const [answer] = assistant(r.events);
    assert.deepEqual([answer.content, answer.model], ['Recovered.', 'primary/gpt-mock']);
    assert.equal((await B.requests()).length, 0);
    assert.equal(stopped(r.events).usage.retries, 1);
  });

  test('retries spent on the primary move the step to the fallback', async () => {
    await A.script([{ status: 503 }, { status: 503 }]);
    await B.script([{ text: 'Fallback answers.' }]);
    const r = await run('hello', { config: twoProviders(), args: ['--mode', 'quick'] });
    assert.equal(r.code, 0, r.stderr);
    const [rep] = ofType(r.events, 'repair');
    assert.equal(rep.detail, 'primary/gpt-mock failed (retries spent, HTTP 503): switching to fallback-1/claude-mock');
    assert.equal(rep.evidence.retries_spent, true);
    assert.deepEqual(assistant(r.events).map((m) => m.model), ['fallback-1/claude-mock']);
    assert.equal((await A.requests()).length, 2);
    const s = stopped(r.events);
    assert.deepEqual([s.reason, s.usage.retries], ['completed', 1]);
  });

  test('every provider failing stops with the last reason and a detail naming each', async () => {
    await A.script([{ status: 401 }]);
    await B.script([{ status: 404 }]);
    const r = await run('hello', { config: twoProviders() });
    assert.equal(r.code, 1, r.stderr);
    const s = stopped(r.events);
    assert.equal(s.reason, 'llm_error');
    assert.match(s.detail, /^every model provider failed: primary\/gpt-mock: HTTP 401 from \S+\/chat\/completions: mock error 401; fallback-1\/claude-mock: HTTP 404 from \S+\/messages: mock error 404$/);
    assert.equal(ofType(r.events, 'repair').length, 1);
  });

  test('every provider failing with retries spent stops max_retries naming each', async () => {
    await A.script([{ status: 503 }, { status: 502 }]);
    await B.script([{ status: 529 }]);
    const r = await run('hello', { config: twoProviders(), args: ['--mode', 'quick'] });
    assert.equal(r.code, 1, r.stderr);
    const s = stopped(r.events);
    assert.equal(s.reason, 'max_retries');
    assert.match(s.detail, /^every model provider failed; used 1 of 1 retry \(primary\/gpt-mock: HTTP 502 .*; fallback-1\/claude-mock: HTTP 529 .*overloaded|mock error 529\)$/);
  });

  test('a provider that failed three steps rests, is skipped, and is tried again after its rest', async () => {
    const srv = await startServer({
      config: twoProviders({ circuit_rest_seconds: 2 }),
      env: { ANTHROPIC_TEST_KEY: 'sk-ant-test-key' },
    });
    try {
      const oneRun = async (message) => {
        const id = (await newSession(srv.url)).id;
        assert.equal((await api(srv.url, 'POST', `/api/sessions/${id}/runs`, { message })).status, 202);
        await waitIdle(srv.url, id);
        const msgs = (await api(srv.url, 'GET', `/api/sessions/${id}/messages`)).body.messages;
        return msgs.filter((m) => m.role === 'assistant').map((m) => m.model);
      };
      const metric = async (name) => {
        const text = (await (await fetch(`${srv.url}/metrics`)).text());
        const line = text.split('\n').find((l) => l.startsWith(name + ' '));
        return line ? Number(line.split(' ')[1]) : undefined;
      };
      for (let i = 0; i < 3; i++) {
        await A.script([{ status: 500, body: 'down' }, { status: 500 }, { status: 500 }, { status: 500 }]);
        await B.script([{ text: `fallback ${i}` }]);
        // Retries are spent on the primary (standard: 3), then the fallback answers.
        assert.deepEqual(await oneRun(`run ${i}`), ['fallback-1/claude-mock']);
        await A.reset();
      }
      assert.equal(await metric('chatplane_llm_circuit_open{provider="primary"}'), 1);
      assert.equal(await metric('chatplane_llm_provider_failures_total{provider="primary"}'), 3);
      let health = (await api(srv.url, 'GET', '/api/health')).body;
      assert.deepEqual(health.llm.map((p) => [p.name, p.circuit, p.state]), [['primary', 'open', 'down'], ['fallback-1', 'closed', 'ok']]);
      assert.equal(health.status, 'degraded');
      assert.equal(await metric('chatplane_repairs_total{action="fallback_model",outcome="ok"}'), 3);
      // Resting: the primary is not asked at all.
      await A.script([{ text: 'primary is back' }]);
      await B.script([{ text: 'while resting' }]);
      assert.deepEqual(await oneRun('during the rest'), ['fallback-1/claude-mock']);
      assert.equal((await A.requests()).length, 0);
      // After the rest the first step tries it again, and it closes.
      await sleep(2100);
      assert.deepEqual(await oneRun('after the rest'), ['primary/gpt-mock']);
      assert.equal(await metric('chatplane_llm_circuit_open{provider="primary"}'), 0);
      health = (await api(srv.url, 'GET', '/api/health')).body;
      assert.equal(health.llm[0].circuit, 'closed');
      assert.equal(await metric('chatplane_llm_requests_total{provider="primary",outcome="ok"}'), 1);
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });

  test('every provider resting stops the run at once; /api/health shows the circuits', async () => {
    const srv = await startServer({
      config: twoProviders({ circuit_rest_seconds: 60 }),
      env: { ANTHROPIC_TEST_KEY: 'sk-ant-test-key' },
    });
    try {
      const runOnce = async () => {
        const id = (await newSession(srv.url)).id;
        await api(srv.url, 'POST', `/api/sessions/${id}/runs`, { message: 'x' });
        await waitIdle(srv.url, id);
        return (await api(srv.url, 'GET', `/api/sessions/${id}`)).body.last_run;
      };
      for (let i = 0; i < 3; i++) {
        await A.script([{ status: 403 }]);
        await B.script([{ status: 401 }]);
        assert.equal((await runOnce()).stop_reason, 'llm_error');
      }
      await A.reset();
      await B.reset();
      const last = await runOnce();
      assert.equal(last.stop_reason, 'llm_error');
      assert.equal(last.stop_detail, 'every model provider is resting after failing steps in a row: '
        + 'primary/gpt-mock: resting after failing steps in a row (circuit open); '
        + 'fallback-1/claude-mock: resting after failing steps in a row (circuit open)');
      assert.equal((await A.requests()).length, 0);
      assert.equal((await B.requests()).length, 0);
      const health = (await api(srv.url, 'GET', '/api/health')).body;
      assert.equal(health.status, 'down');
      assert.deepEqual(health.llm.map((p) => [p.name, p.kind, p.model, p.circuit, p.state, p.errors_5m]),
        [['primary', 'openai', 'gpt-mock', 'open', 'down', 3], ['fallback-1', 'anthropic', 'claude-mock', 'open', 'down', 3]]);
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });

  test('a lone provider never rests: every run tries it', async () => {
    const srv = await startServer({ config: { llm: { base_url: A.url, model: 'gpt-mock', circuit_rest_seconds: 60 } } });
    try {
      for (let i = 0; i < 4; i++) {
        await A.script([{ status: 403 }]);
        const id = (await newSession(srv.url)).id;
        await api(srv.url, 'POST', `/api/sessions/${id}/runs`, { message: 'x' });
        await waitIdle(srv.url, id);
      }
      assert.equal((await A.requests()).length, 4);
      const health = (await api(srv.url, 'GET', '/api/health')).body;
      assert.equal(health.llm[0].circuit, 'closed');
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });
});

// Big text, to make a turn weigh in the prompt's estimate.
const big = (tag, n = 8000) => `${tag} ${'lorem ipsum '.repeat(n / 12)}`;

describe('context overflow repair', () => {
  const overflows = [
    ['OpenAI context_length_exceeded', { status: 400, body: { error: { message: "This model's maximum context length is 4000 tokens. However, you requested 9000 tokens. Please reduce the length of the messages.", type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' } } }, 4000],
    ['Anthropic prompt is too long', { status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: 'prompt is too long: 9000 tokens > 4000 maximum' } } }, 4000],
    ['vLLM / Ollama maximum context length', { status: 400, body: { object: 'error', message: 'This model\'s maximum context length is 4096 tokens. However, your messages resulted in 9000 tokens.', type: 'BadRequestError' } }, 4096],
    ['llama.cpp exceeds the available context size', { status: 400, body: { error: { code: 400, message: 'the request exceeds the available context size, try increasing it', type: 'exceed_context_size_error' } } }, null],
    ['please reduce the length', { status: 400, body: 'Please reduce the length of the messages.' }, null],
  ];
  for (const [name, failure, window] of overflows) {
    test(`${name}: condensed, called again as the same step`, async () => {
      // A tool turn first, so that there are turns to drop.
      await A.script([{ tool_calls: [calc('1+1', 'c1')] }, { text: big('old answer', 20000), tool_calls: [calc('2+2', 'c2')] }, failure, { text: 'Fits now.' }]);
      const r = await run('question', { config: { llm: { base_url: A.url, model: 'gpt-mock' } } });
      assert.equal(r.code, 0, r.stderr);
      const reps = ofType(r.events, 'repair');
      assert.equal(reps.length, 1);
      const rep = reps[0];
      assert.deepEqual([rep.playbook, rep.action], ['context_overflow', 'condense_context']);
      assert.match(rep.detail, /^dropped \d+ of \d+ messages, [\d,]+ → [\d,]+ tokens$/);
      assert.equal(rep.evidence.window_tokens, window);
      assert.equal(rep.evidence.attempt, 1);
      assert.equal(rep.evidence.provider, 'primary/gpt-mock');
      assert.ok(rep.evidence.tokens_after < rep.evidence.tokens_before);
      const s = stopped(r.events);
      assert.deepEqual([s.reason, s.usage.steps, s.usage.retries], ['completed', 3, 0]);
      const reqs = await A.requests();
      assert.equal(reqs.length, 4);
      // The call after the repair is smaller and still whole.
      assert.ok(reqs[3].raw.length < reqs[2].raw.length);
      const sent = reqs[3].body.messages;
      assert.equal(sent[0].role, 'system');
      assert.ok(sent.some((m) => m.role === 'user' && m.content === 'question'));
      for (const m of sent.filter((x) => x.role === 'tool')) {
        assert.ok(sent.some((x) => x.role === 'assistant' && (x.tool_calls || []).some((c) => c.id === m.tool_call_id)), 'no result without its call');
      }
    });
  }

  test('condensation keeps the system prompt, the first and current user messages and calls with results', async () => {
    const srv = await startServer({ config: { llm: { base_url: A.url, model: 'gpt-mock', context_tokens: 100000 } } });
    try {
      const id = (await newSession(srv.url)).id;
      const turn = async (message, script) => {
        await A.script(script);
        assert.equal((await api(srv.url, 'POST', `/api/sessions/${id}/runs`, { message })).status, 202);
        await waitIdle(srv.url, id);
      };
      await turn('first question', [{ text: big('first answer', 16000) }]);
      await turn('second question', [{ text: big('second answer', 16000) }]);
      await A.reset();
      await turn('third question', [
        { tool_calls: [calc('3*3', 'keep1')] },
        { status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: 'prompt is too long: 7000 tokens > 5000 maximum' } } },
        { tool_calls: [calc('4*4', 'keep2')] },
        { text: 'Done.' },
      ]);
      const reqs = await A.requests();
      assert.equal(reqs.length, 4);
      const retried = reqs[2].body.messages;
      const texts = retried.map((m) => m.content ?? '');
      assert.equal(retried[0].role, 'system');
      assert.ok(texts.includes('first question'), 'the first user message stays');
      assert.ok(texts.includes('third question'), "the run's user message stays");
      assert.ok(!texts.some((t) => t.startsWith('first answer')), 'the oldest turns go');
      assert.ok(!texts.some((t) => t.startsWith('second answer')));
      assert.ok(retried.some((m) => (m.tool_calls || []).some((c) => c.id === 'keep1')));
      assert.ok(retried.some((m) => m.role === 'tool' && m.tool_call_id === 'keep1' && m.content === '9'));
      // The next step starts from the condensed history.
      const next = reqs[3].body.messages.map((m) => m.content ?? '');
      assert.ok(!next.some((t) => t.startsWith('second answer')));
      // Every event, in pages of at most 1000.
      const events = [];
      for (;;) {
        const page = (await api(srv.url, 'GET', `/api/sessions/${id}/events?after=${events.length ? events.at(-1).seq : 0}`, undefined, { Accept: 'application/json' })).body.events;
        if (!page.length) break;
        events.push(...page);
      }
      const [rep] = ofType(events, 'repair');
      assert.equal(rep.evidence.window_tokens, 5000);
      assert.equal(rep.evidence.target_tokens, 3500);
      assert.equal(rep.outcome, rep.evidence.tokens_after <= 3500 ? 'ok' : 'failed');
      assert.equal((await api(srv.url, 'GET', `/api/sessions/${id}`)).body.last_run.stop_reason, 'completed');
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });

  test('a third overflow in one step stops llm_error: no condensation loop', async () => {
    const tooLong = { status: 400, body: { error: { message: 'maximum context length is 10 tokens', type: 'invalid_request_error', code: 'context_length_exceeded' } } };
    await A.script([tooLong, tooLong, tooLong, { text: 'never asked' }]);
    const r = await run('question', { config: { llm: { base_url: A.url, model: 'gpt-mock' } } });
    assert.equal(r.code, 1, r.stderr);
    const reps = ofType(r.events, 'repair');
    assert.deepEqual(reps.map((x) => [x.evidence.attempt, x.outcome]), [[1, 'failed'], [2, 'failed']]);
    const s = stopped(r.events);
    assert.equal(s.reason, 'llm_error');
    assert.match(s.detail, /^the prompt still overflows the model's context after condensing it 2 times \(estimate [\d,]+ tokens; the model's window is 10 tokens\): what must stay .* does not fit; HTTP 400 from /);
    assert.equal(s.diagnosis.playbook, 'context_overflow');
    assert.equal((await A.requests()).length, 3);
  });
});
