import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHANNEL_ACTIVITY_MAX_CHANNELS, CHANNEL_RATE_WINDOW_SECONDS, ChannelActivity } from './channel-activity.js';

test('a channel’s rate is its events over the last window, and falls to zero once the window passes', () => {
  let now = 1_000_000;
  const a = new ChannelActivity(() => now);
  for (let i = 0; i < 20; i++) a.count('orders');
  now += 1_000;
  a.count('orders', 10);
  assert.equal(a.rate('orders').eventsPerSecond, 30 / CHANNEL_RATE_WINDOW_SECONDS);
  assert.equal(a.rate('orders').events, 30);
  assert.equal(a.rate('orders').lastEventAt, now);

  now += (CHANNEL_RATE_WINDOW_SECONDS - 1) * 1_000; // the first second left the window
  assert.equal(a.rate('orders').eventsPerSecond, 10 / CHANNEL_RATE_WINDOW_SECONDS);
  now += 60_000;
  assert.equal(a.rate('orders').eventsPerSecond, 0);
  assert.equal(a.rate('orders').events, 30, 'the total stays');
  assert.deepEqual(a.rate('never'), { channel: 'never', eventsPerSecond: 0, events: 0, lastEventAt: 0 });
});

test('lists the most recently active first, and forgets the one quiet longest past the bound', () => {
  let now = 0;
  const a = new ChannelActivity(() => now);
  for (let i = 0; i < CHANNEL_ACTIVITY_MAX_CHANNELS; i++) a.count(`c.${i}`);
  now += 1;
  a.count('c.0'); // active again: no longer the oldest
  a.count('new');
  const names = a.list().map((r) => r.channel);
  assert.equal(names.length, CHANNEL_ACTIVITY_MAX_CHANNELS);
  assert.deepEqual(names.slice(0, 2), ['new', 'c.0']);
  assert.ok(!names.includes('c.1'), 'the channel quiet longest was forgotten');
});
