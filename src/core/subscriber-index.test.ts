import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matches } from './channel.js';
import { SubscriberIndex } from './subscriber-index.js';

function matching(index: SubscriberIndex<string>, channel: string): string[] {
  const out: string[] = [];
  index.forEachMatch(channel, (s) => out.push(s));
  return out.sort();
}

test('finds exact and wildcard subscribers, exactly as matches() does', () => {
  const index = new SubscriberIndex<string>();
  const patterns = ['orders', 'orders.*', 'orders.>', '*.eu', '>', 'chat.*.typing', 'user.42.*'];
  for (const p of patterns) index.add(p, p);
  for (const channel of ['orders', 'orders.eu', 'orders.eu.paid', 'x.eu', 'chat.r1.typing', 'chat.r1', 'user.42.n']) {
    assert.deepEqual(matching(index, channel), patterns.filter((p) => matches(p, channel)).sort(), channel);
  }
});

test('removing a subscriber stops its matches and keeps the count right', () => {
  const index = new SubscriberIndex<string>();
  index.add('a.*', 's1');
  index.add('a.*', 's2');
  index.add('a.b', 's1');
  index.add('a.>', 's1');
  assert.equal(index.size, 4);
  index.remove('a.*', 's1');
  index.remove('a.b', 's1');
  index.remove('a.>', 's1');
  index.remove('a.>', 's1');
  assert.equal(index.size, 1);
  assert.deepEqual(matching(index, 'a.b'), ['s2']);
  index.remove('a.*', 's2');
  assert.equal(index.size, 0);
  assert.deepEqual(matching(index, 'a.b'), []);
});
