import assert from 'node:assert/strict';
import { test } from 'node:test';
import { covers, scopesToGrants } from './permissions.js';

test('a grant covers a subscription only when every channel it matches is granted', () => {
  const yes: Array<[string, string]> = [
    ['orders', 'orders'],
    ['user.42.*', 'user.42.inbox'],
    ['user.42.*', 'user.42.*'],
    ['chat.>', 'chat.room-1'],
    ['chat.>', 'chat.*'],
    ['chat.>', 'chat.>'],
    ['chat.>', 'chat.a.b.c'],
    ['*.inbox', 'user.inbox'],
    ['>', 'anything.at.all'],
  ];
  const no: Array<[string, string]> = [
    ['orders', 'orders.eu'],
    ['orders', 'orders.*'],
    ['user.42.*', 'user.42.inbox.x'],
    ['user.42.*', 'user.42.>'],
    ['user.42.*', 'user.*.inbox'],
    ['user.42.inbox', 'user.42.*'],
    ['chat.>', 'chat'],
    ['chat.*', 'chat.>'],
    ['*.inbox', 'user.outbox'],
  ];
  for (const [g, r] of yes) assert.ok(covers(g, r), `${g} should cover ${r}`);
  for (const [g, r] of no) assert.ok(!covers(g, r), `${g} should not cover ${r}`);
});

test('API key scopes split into grants', () => {
  assert.deepEqual(scopesToGrants(['publish:orders.>', 'subscribe:news', 'admin']), {
    publish: ['orders.>'],
    subscribe: ['news'],
    admin: true,
  });
});
