import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkChannel, literalPrefix, matches } from './channel.js';

test('accepts names of tokens of [A-Za-z0-9_:@=-] joined by dots', () => {
  for (const name of ['orders', 'user.42.notifications', 'chat.room-1', 'a_b:c@d=e-f', 'x'.repeat(255)]) {
    assert.deepEqual(checkChannel(name), { ok: true, pattern: false }, name);
  }
});

test('rejects empty tokens, other characters, non-strings and names over 255 bytes', () => {
  for (const bad of ['', '.', 'a.', '.a', 'a..b', 'a b', 'a/b', 'é', 'a\nb', 'a\u0000', 'x'.repeat(256), 'a.>.b', 'a*', 'a.b>']) {
    assert.equal(checkChannel(bad).ok, false, JSON.stringify(bad));
  }
  for (const bad of [null, 42, {}, ['a']]) assert.equal(checkChannel(bad).ok, false);
});

test('recognises wildcard patterns', () => {
  assert.deepEqual(checkChannel('orders.*'), { ok: true, pattern: true });
  assert.deepEqual(checkChannel('chat.>'), { ok: true, pattern: true });
  assert.deepEqual(checkChannel('*.x.*'), { ok: true, pattern: true });
  assert.deepEqual(checkChannel('>'), { ok: true, pattern: true });
});

test('* matches exactly one token, > one or more trailing tokens', () => {
  assert.ok(matches('orders.*', 'orders.eu'));
  assert.ok(!matches('orders.*', 'orders'));
  assert.ok(!matches('orders.*', 'orders.eu.paid'));
  assert.ok(matches('chat.>', 'chat.room-1'));
  assert.ok(matches('chat.>', 'chat.room-1.typing'));
  assert.ok(!matches('chat.>', 'chat'));
  assert.ok(!matches('chat.>', 'chatter.x'));
  assert.ok(matches('*.42.*', 'user.42.notifications'));
  assert.ok(matches('orders', 'orders'));
  assert.ok(!matches('orders', 'orders.eu'));
});

test('the literal prefix of a pattern bounds its range scan', () => {
  assert.equal(literalPrefix('orders.*'), 'orders.');
  assert.equal(literalPrefix('a.b.>'), 'a.b.');
  assert.equal(literalPrefix('*.x'), '');
});
