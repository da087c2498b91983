import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRedisUrl, redactRedisUrl } from './redis-url.js';

/** Asserts that parsing `url` throws a message naming backend.url, matching `what`, and never quoting `secret`. */
function refuses(url: string, what: RegExp, secret = 's3cret'): void {
  assert.throws(
    () => parseRedisUrl(url),
    (err: Error) => {
      assert.match(err.message, /^backend\.url: /);
      assert.match(err.message, what);
      assert.ok(!err.message.includes(secret), `the message quotes the password: ${err.message}`);
      return true;
    },
  );
}

describe('parseRedisUrl', () => {
  it('reads redis://host:port', () => {
    assert.deepEqual(parseRedisUrl('redis://10.0.0.5:6380'), { host: '10.0.0.5', port: 6380 });
  });

  it("defaults the port to Redis's 6379", () => {
    assert.deepEqual(parseRedisUrl('redis://cache.internal'), { host: 'cache.internal', port: 6379 });
  });

  it('reads a user, a password and a database', () => {
    assert.deepEqual(parseRedisUrl('redis://herald:s3cret@cache:6379/2'), {
      host: 'cache',
      port: 6379,
      username: 'herald',
      password: 's3cret',
      db: 2,
    });
  });

  it('reads a password alone (the default user)', () => {
    assert.deepEqual(parseRedisUrl('redis://:s3cret@cache:6379'), { host: 'cache', port: 6379, password: 's3cret' });
  });

  it('percent-decodes the credentials, and takes a raw / or @ in the password', () => {
    assert.equal(parseRedisUrl('redis://:p%3Fa%23ss@cache').password, 'p?a#ss');
    assert.equal(parseRedisUrl('redis://u:pa/ss@w@cache:6379/1').password, 'pa/ss@w');
    assert.equal(parseRedisUrl('redis://u:pa/ss@w@cache:6379/1').db, 1);
  });

  it('reads a bracketed IPv6 address', () => {
    assert.deepEqual(parseRedisUrl('redis://[::1]:6390'), { host: '::1', port: 6390 });
  });

  it('turns on TLS for rediss://', () => {
    assert.deepEqual(parseRedisUrl('rediss://:s3cret@redis.example.com:6380/0'), {
      host: 'redis.example.com',
      port: 6380,
      password: 's3cret',
      db: 0,
      tls: {},
    });
  });

  it('reads redis+sentinel:// as sentinels and a master name', () => {
    assert.deepEqual(parseRedisUrl('redis+sentinel://127.0.0.1:26390,127.0.0.1:26391,127.0.0.1:26392/herald'), {
      sentinels: [
        { host: '127.0.0.1', port: 26390 },
        { host: '127.0.0.1', port: 26391 },
        { host: '127.0.0.1', port: 26392 },
      ],
      name: 'herald',
    });
  });

  it("gives a sentinel URL's password to the data nodes, sentinelPassword to the sentinels, and reads the database", () => {
    assert.deepEqual(parseRedisUrl('redis+sentinel://app:s3cret@s1,s2:26380/mymaster/3?sentinelPassword=sent%26inel'), {
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
      ],
      name: 'mymaster',
      username: 'app',
      password: 's3cret',
      db: 3,
      sentinelPassword: 'sent&inel',
    });
  });

  it('refuses what it cannot read, saying what is wrong without quoting the password', () => {
    refuses('localhost:6379', /is not a URL/);
    refuses('http://s3cret@cache:6379', /scheme 'http:\/\/'/);
    refuses('redis://:s3cret@cache:http', /port 'http' of host 'cache'/);
    refuses('redis://:s3cret@cache:70000', /port '70000'/);
    refuses('redis://:s3cret@cache:6379/zero', /database 'zero' is not a number/);
    refuses('redis://:s3cret@/0', /has no host name/);
    refuses('redis://s3cret@cache:6379', /user name but no password/);
    refuses('redis://:s3cret@cache:6379?timeout=5', /takes no query parameter 'timeout'/);
    refuses('redis://:s3cret@a:6379,b:6379', /takes one host/);
    refuses('redis://:s3%ZZcret@cache', /malformed percent-escape/, 's3%ZZcret');
    refuses('redis://:s3cr#et@cache', /'#'/, 's3cr');
    refuses('redis://u:s3cr?et@cache:6379', /percent-encode a '\?'/, 's3cr');
    refuses('redis+sentinel://:s3cret@s1:26379,s2:26379', /needs the master name/);
    refuses('redis+sentinel://:s3cret@s1:26379,:26380/m', /sentinel 2 has no host name/);
    refuses('redis+sentinel://:s3cret@s1:26379/m/0/x', /longer than \/mastername\/db/);
    refuses('redis+sentinel://s1/m?sentinelUsername=u', /sentinelUsername but no sentinelPassword/);
    refuses('redis+sentinel://s1/m?password=s3cret', /takes no query parameter 'password'/);
  });
});

describe('redactRedisUrl', () => {
  it('cuts out the password and the sentinel password, keeping the rest', () => {
    assert.equal(redactRedisUrl('redis://herald:s3cret@cache:6379/2'), 'redis://herald:[redacted]@cache:6379/2');
    assert.equal(redactRedisUrl('rediss://:s3cret@cache:6379'), 'rediss://:[redacted]@cache:6379');
    assert.equal(redactRedisUrl('redis://s3cret@cache:6379'), 'redis://[redacted]@cache:6379');
    assert.equal(
      redactRedisUrl('redis+sentinel://:pa@ss@s1,s2/m?sentinelPassword=s3cret'),
      'redis+sentinel://:[redacted]@s1,s2/m?sentinelPassword=[redacted]',
    );
    assert.equal(redactRedisUrl('redis://cache:6379'), 'redis://cache:6379');
  });
});
