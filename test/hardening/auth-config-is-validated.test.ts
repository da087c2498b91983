import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig } from '../../src/config/load.js';
import { spawnHerald, waitFor } from '../helpers/herald.js';
import { TEST_SECRET } from '../helpers/tokens.js';

test('bad auth config is refused at start with an error naming the key', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ auth: { apiKeys: [{ key: 'short', scopes: ['admin'] }] } }, /auth\.apiKeys\.0\.key.*16 characters/],
    [{ auth: { apiKeys: [{ key: 'k'.repeat(20), keySha256: 'a'.repeat(64), scopes: ['admin'] }] } }, /auth\.apiKeys\.0.*exactly one/],
    [{ auth: { apiKeys: [{ keySha256: 'xyz', scopes: ['admin'] }] } }, /auth\.apiKeys\.0\.keySha256/],
    [{ auth: { apiKeys: [{ key: 'k'.repeat(20), scopes: ['write:everything'] }] } }, /auth\.apiKeys\.0\.scopes\.0/],
    [{ auth: { jwt: { secret: 'too-short' } } }, /auth\.jwt\.secret.*32 bytes/],
    [{ auth: { jwt: { secret: TEST_SECRET, jwksUrl: 'https://x.test/jwks' } } }, /auth\.jwt.*exactly one/],
    [{ auth: { jwt: { publicKey: 'not a pem' } } }, /auth\.jwt\.publicKey/],
    [{ auth: { publicChannels: ['bad..name'] } }, /auth\.publicChannels\.0/],
    [{ auth: { token: 'x' } }, /auth\.token.*unknown key/],
    [{ limits: { connectionsPerIp: -1 } }, /limits\.connectionsPerIp/],
    [{ trustProxy: 'yes' }, /trustProxy/],
  ];
  for (const [file, message] of cases) assert.throws(() => buildConfig(file), message, JSON.stringify(file));
});

test('dev mode warns at start; with auth configured Herald says what it requires instead', async () => {
  const dev = await spawnHerald({ store: { type: 'memory' } });
  try {
    await waitFor(() => dev.logs.some((l) => l.level === 40 && /dev mode/.test(String(l.msg))), 5_000, 'the dev mode warning');
  } finally {
    await dev.stop();
  }
  const secured = await spawnHerald({ store: { type: 'memory' }, auth: { jwt: { secret: TEST_SECRET }, publicChannels: ['news'] } });
  try {
    const line = await waitFor(() => secured.logs.find((l) => /^auth:/.test(String(l.msg))), 5_000, 'the auth line');
    assert.ok(!secured.logs.some((l) => /dev mode/.test(String(l.msg))));
    assert.equal(line?.jwt, 'secret');
    assert.ok(!JSON.stringify(secured.logs).includes(TEST_SECRET));
  } finally {
    await secured.stop();
  }
});
