// How the page picks a stop's tone (web/format.js): the run's stop_tone
// from the server when it has one, else the same table the server uses
// (src/core/stop.c), for runs built from a run_stopped event.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { stopTone } from '../../web/format.js';

// Every reason's tone as the server sends it (tests/unit/test_stop.c pins
// the same list on the server's side).
const TONES = {
  completed: 'good',
  user_stopped: 'neutral',
  max_steps: 'warn',
  max_seconds: 'warn',
  max_tokens: 'warn',
  max_tool_calls: 'warn',
  max_cost: 'warn',
  max_retries: 'bad',
  loop_detected: 'bad',
  repeated_failures: 'bad',
  no_progress: 'bad',
  llm_error: 'bad',
  interrupted: 'neutral',
};

test('the server\'s stop_tone wins', () => {
  assert.equal(stopTone({ stop_reason: 'max_steps', stop_tone: 'bad' }), 'bad');
  assert.equal(stopTone({ stop_reason: 'some_new_reason', stop_tone: 'warn' }), 'warn');
});

test('without stop_tone the reason gives the server\'s tone', () => {
  for (const [reason, tone] of Object.entries(TONES)) {
    assert.equal(stopTone({ stop_reason: reason, stop_tone: null }), tone, reason);
    assert.equal(stopTone({ stop_reason: reason }), tone, reason);
  }
  assert.equal(stopTone({ stop_reason: 'some_new_reason' }), 'bad');
});

test('a run that has not stopped, or none, is neutral', () => {
  assert.equal(stopTone({ stop_reason: null, stop_tone: null }), 'neutral');
  assert.equal(stopTone(null), 'neutral');
  assert.equal(stopTone(undefined), 'neutral');
});
