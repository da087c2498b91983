import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { buildConfig } from '../../src/config/load.js';

test('tls takes cert and key (both), paths from the working directory; HERALD_TLS_CERT and HERALD_TLS_KEY win over the file', () => {
  assert.equal(buildConfig({}).tls, undefined);
  assert.deepEqual(buildConfig({ tls: { cert: '/etc/herald/cert.pem', key: 'keys/key.pem' } }).tls, {
    cert: '/etc/herald/cert.pem',
    key: resolve('keys/key.pem'),
  });
  const env = { HERALD_TLS_CERT: '/run/cert.pem', HERALD_TLS_KEY: '/run/key.pem' };
  assert.deepEqual(buildConfig({ tls: { cert: '/a.pem', key: '/b.pem' } }, env).tls, { cert: '/run/cert.pem', key: '/run/key.pem' });
  assert.deepEqual(buildConfig({}, env).tls, { cert: '/run/cert.pem', key: '/run/key.pem' });

  assert.throws(() => buildConfig({ tls: { cert: '/a.pem' } }), /config key "tls\.key"/);
  assert.throws(() => buildConfig({ tls: { cert: '', key: '/b.pem' } }), /config key "tls\.cert"/);
  assert.throws(() => buildConfig({ tls: { cert: '/a.pem', key: '/b.pem', ca: '/c.pem' } }), /config key "tls\.ca": unknown key/);
  assert.throws(() => buildConfig({}, { HERALD_TLS_CERT: '/run/cert.pem' }), /HERALD_TLS_CERT and HERALD_TLS_KEY go together/);
});
