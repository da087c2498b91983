import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { exportJWK } from 'jose';
import { startInProcess } from '../helpers/herald.js';
import { b64url, pem, rsaKeys, sign, TEST_SECRET } from '../helpers/tokens.js';

const AUD = 'herald-test';
const ISS = 'https://issuer.test';
const CHANNEL = 'user.u1.inbox';

type Started = Awaited<ReturnType<typeof startInProcess>>;

/** GET /v1/stream with a bearer token; refusals come before the stream starts. */
async function streamStatus(h: Started, token: string | undefined, channel = CHANNEL) {
  const res = await h.herald.app.inject({
    method: 'GET',
    url: `/v1/stream?channel=${channel}`,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  return { status: res.statusCode, code: res.json().error?.code as string | undefined, headers: res.headers };
}

/** Opens a real stream and reports its status (200 means the stream started). */
async function opens(url: string, token: string, channel = CHANNEL): Promise<number> {
  const ac = new AbortController();
  const res = await fetch(`${url}/v1/stream?channel=${channel}`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
  ac.abort();
  return res.status;
}

const good = (extra: Record<string, unknown> = {}) =>
  sign({ sub: 'u1', aud: AUD, iss: ISS, herald: { subscribe: ['user.u1.*'] }, ...extra });

describe('JWT: only a valid token for the channel opens a private stream', () => {
  let h: Started;
  before(async () => {
    h = await startInProcess({ store: { type: 'memory' }, auth: { jwt: { secret: TEST_SECRET, audience: AUD, issuer: ISS } } });
  });
  after(() => h.close());

  test('a valid HS256 token opens the stream', async () => {
    assert.equal(await opens(h.url, await good()), 200);
    for (const alg of ['HS384', 'HS512']) {
      const t = await sign({ sub: 'u1', aud: AUD, iss: ISS, herald: { subscribe: ['user.u1.*'] } }, TEST_SECRET, { alg });
      assert.equal(await opens(h.url, t), 200, alg);
    }
  });

  test('no token: 401 UNAUTHORIZED with WWW-Authenticate: Bearer', async () => {
    const r = await streamStatus(h, undefined);
    assert.deepEqual([r.status, r.code], [401, 'UNAUTHORIZED']);
    assert.match(String(r.headers['www-authenticate']), /^Bearer/);
  });

  test('alg "none" is refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'u1', aud: AUD, iss: ISS, exp: now + 60, herald: { subscribe: ['>'] } })}.`;
    assert.deepEqual(Object.values(await streamStatus(h, unsigned)).slice(0, 2), [401, 'TOKEN_INVALID']);
  });

  test('a tampered payload or signature is refused', async () => {
    const [head, , sig] = (await good()).split('.');
    const now = Math.floor(Date.now() / 1000);
    const forged = `${head}.${b64url({ sub: 'u1', aud: AUD, iss: ISS, exp: now + 60, herald: { subscribe: ['>'] } })}.${sig}`;
    assert.deepEqual(Object.values(await streamStatus(h, forged)).slice(0, 2), [401, 'TOKEN_INVALID']);
    const t = await good();
    const flipped = t.slice(0, -2) + (t.at(-2) === 'A' ? 'B' : 'A') + t.at(-1);
    assert.deepEqual(Object.values(await streamStatus(h, flipped)).slice(0, 2), [401, 'TOKEN_INVALID']);
    const otherSecret = await sign({ sub: 'u1', aud: AUD, iss: ISS, herald: { subscribe: ['user.u1.*'] } }, 'another-secret-0123456789-abcdefghijklmnop');
    assert.deepEqual(Object.values(await streamStatus(h, otherSecret)).slice(0, 2), [401, 'TOKEN_INVALID']);
  });

  test('expired, not-yet-valid, wrong audience and wrong issuer each have their code', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ exp: now - 60 }, 'TOKEN_EXPIRED'],
      [{ nbf: now + 600 }, 'TOKEN_NOT_YET_VALID'],
      [{ aud: 'someone-else' }, 'TOKEN_AUDIENCE_INVALID'],
      [{ iss: 'https://evil.test' }, 'TOKEN_ISSUER_INVALID'],
      [{ herald: { subscribe: 'user.u1.*' } }, 'TOKEN_CLAIMS_INVALID'],
      [{ herald: { subscribe: ['bad..channel'] } }, 'TOKEN_CLAIMS_INVALID'],
    ];
    for (const [claims, code] of cases) {
      const r = await streamStatus(h, await good(claims));
      assert.deepEqual([r.status, r.code], [401, code], JSON.stringify(claims));
    }
  });

  test("a token for one channel is refused on another: 403 SUBSCRIBE_FORBIDDEN", async () => {
    const u2 = await sign({ sub: 'u2', aud: AUD, iss: ISS, herald: { subscribe: ['user.u2.*'] } });
    assert.deepEqual(Object.values(await streamStatus(h, u2)).slice(0, 2), [403, 'SUBSCRIBE_FORBIDDEN']);
    // a grant of user.u1.* covers user.u1.inbox but not the wider pattern user.>
    assert.deepEqual(Object.values(await streamStatus(h, await good(), 'user.>')).slice(0, 2), [403, 'SUBSCRIBE_FORBIDDEN']);
    assert.deepEqual(Object.values(await streamStatus(h, await good(), 'user.*.inbox')).slice(0, 2), [403, 'SUBSCRIBE_FORBIDDEN']);
  });

  test('garbage and oversized tokens are refused without a crash', async () => {
    for (const t of ['x', 'a.b.c', '....', 'Basic dXNlcjpwYXNz', 'A'.repeat(9_000)]) {
      const r = await streamStatus(h, t);
      assert.equal(r.status, 401, t.slice(0, 20));
      assert.equal(r.code, 'TOKEN_INVALID');
    }
    assert.equal(await opens(h.url, await good()), 200);
  });
});

describe('JWT: public keys verify only their own algorithms', () => {
  test('RS256 verifies; HS256 signed with the RSA public key as its secret is refused (key confusion)', async () => {
    const { publicKey, privateKey } = rsaKeys();
    const h = await startInProcess({ store: { type: 'memory' }, auth: { jwt: { publicKey: pem(publicKey) } } });
    try {
      const claims = { sub: 'u1', herald: { subscribe: ['user.u1.*'] } };
      assert.equal(await opens(h.url, await sign(claims, privateKey, { alg: 'RS256' })), 200);
      const confused = await sign(claims, pem(publicKey), { alg: 'HS256' });
      assert.deepEqual(Object.values(await streamStatus(h, confused)).slice(0, 2), [401, 'TOKEN_INVALID']);
    } finally {
      await h.close();
    }
  });

  test('ES256 and EdDSA keys verify their tokens', async () => {
    for (const [type, alg] of [['ec', 'ES256'], ['ed25519', 'EdDSA']] as const) {
      const { publicKey, privateKey } =
        type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
      const h = await startInProcess({ store: { type: 'memory' }, auth: { jwt: { publicKey: pem(publicKey) } } });
      try {
        const t = await sign({ sub: 'u1', herald: { subscribe: ['user.u1.*'] } }, privateKey, { alg });
        assert.equal(await opens(h.url, t), 200, alg);
        const hs = await sign({ sub: 'u1', herald: { subscribe: ['user.u1.*'] } });
        assert.equal((await streamStatus(h, hs)).code, 'TOKEN_INVALID', `${alg} key refuses HS256`);
      } finally {
        await h.close();
      }
    }
  });

  test('a JWKS URL is fetched once and cached across verifications', async () => {
    const { publicKey, privateKey } = rsaKeys();
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    let fetches = 0;
    const jwks = createServer((_req, res) => {
      fetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const port = (jwks.address() as AddressInfo).port;
    const h = await startInProcess({ store: { type: 'memory' }, auth: { jwt: { jwksUrl: `http://127.0.0.1:${port}/jwks.json` } } });
    try {
      const t = await sign({ sub: 'u1', herald: { subscribe: ['user.u1.*'] } }, privateKey, { alg: 'RS256', kid: 'k1' });
      for (let i = 0; i < 3; i++) assert.equal(await opens(h.url, t), 200);
      assert.equal(fetches, 1);
      const unknownKid = await sign({ sub: 'u1', herald: { subscribe: ['user.u1.*'] } }, rsaKeys().privateKey, { alg: 'RS256', kid: 'k1' });
      assert.equal((await streamStatus(h, unknownKid)).code, 'TOKEN_INVALID');
    } finally {
      await h.close();
      jwks.close();
    }
  });
});
