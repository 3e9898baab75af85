// The mock model's Anthropic Messages mode, read by the official SDK's
// stream parser (@anthropic-ai/sdk): what chatplane's client is tested
// against must be what the real API sends, event for event.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';

import { startMock } from './lib.mjs';

let mock;
let client;

before(async () => {
  mock = await startMock();
  // The SDK adds /v1/messages to its base URL; the mock answers any
  // path that ends in /messages.
  client = new Anthropic({ apiKey: 'sk-ant-mock', baseURL: mock.url.replace(/\/v1$/, ''), maxRetries: 0 });
});
after(() => mock.stop());
beforeEach(async () => {
  await mock.reset();
});

const ask = (extra = {}) => ({
  model: 'claude-mock',
  max_tokens: 256,
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});

describe('the mock speaks the Messages stream', () => {
  test('a text answer accumulates into one text block with usage and stop_reason', async () => {
    await mock.script([{ text: 'Hello from the mock.', piece_chars: 3, usage: { input_tokens: 21, output_tokens: 5 } }]);
    const texts = [];
    const stream = client.messages.stream(ask());
    stream.on('text', (t) => texts.push(t));
    const msg = await stream.finalMessage();
    assert.equal(msg.content.length, 1);
    assert.equal(msg.content[0].type, 'text');
    assert.equal(msg.content[0].text, 'Hello from the mock.');
    assert.equal(texts.join(''), 'Hello from the mock.');
    assert.ok(texts.length > 1, 'the text came in pieces');
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.model, 'claude-mock');
    assert.equal(msg.usage.input_tokens, 21);
    assert.equal(msg.usage.output_tokens, 5);
    const [req] = await mock.requests();
    assert.equal(req.path, '/v1/messages');
    assert.ok(req.headers['anthropic-version'], 'the SDK names its API version');
    assert.equal(req.body.stream, true);
  });

  test('tool_use blocks: the input arrives in fragments and parses whole', async () => {
    await mock.script([{
      text: 'Let me look.',
      tool_calls: [
        { name: 'calc', arguments: { expression: '6*7' }, id: 'toolu_1' },
        { name: 'lookup', arguments: { q: 'weather in Oslo', n: 3 } },
      ],
      split_tool_args: 5,
    }]);
    const raw = [];
    const stream = client.messages.stream(ask({ tools: [{ name: 'calc', input_schema: { type: 'object' } }] }));
    stream.on('streamEvent', (e) => raw.push(e.type));
    const msg = await stream.finalMessage();
    assert.equal(msg.stop_reason, 'tool_use');
    assert.equal(msg.content.length, 3);
    assert.equal(msg.content[0].type, 'text');
    assert.deepEqual(
      msg.content.slice(1).map((b) => [b.type, b.name, b.input]),
      [['tool_use', 'calc', { expression: '6*7' }], ['tool_use', 'lookup', { q: 'weather in Oslo', n: 3 }]],
    );
    assert.equal(msg.content[1].id, 'toolu_1');
    assert.match(msg.content[2].id, /^toolu_mock_/);
    assert.ok(raw.filter((t) => t === 'content_block_delta').length > 6, 'the input came in many fragments');
    assert.deepEqual(raw.slice(0, 2), ['message_start', 'content_block_start']);
    assert.deepEqual(raw.slice(-2), ['message_delta', 'message_stop']);
  });

  test('an error status answers with the API error shape and type', async () => {
    await mock.script([{ status: 529 }]);
    await assert.rejects(client.messages.create(ask()), (e) => {
      assert.equal(e.status, 529);
      assert.equal(e.error.type, 'error');
      assert.equal(e.error.error.type, 'overloaded_error');
      assert.equal(e.error.error.message, 'mock error 529');
      return true;
    });
  });

  test('an error event inside the stream is raised by the SDK', async () => {
    await mock.script([{ text: 'partial', error_in_stream: { type: 'overloaded_error', message: 'Overloaded' } }]);
    const stream = client.messages.stream(ask());
    await assert.rejects(stream.finalMessage(), (e) => {
      assert.match(String(e.message), /Overloaded/);
      return true;
    });
  });
});
