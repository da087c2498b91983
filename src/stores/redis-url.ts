import type { RedisOptions } from 'ioredis';

/** The config key every message below names: the one place a Redis URL comes from. */
const CONFIG_KEY = 'backend.url';
/** Redis's own default ports (redis.conf `port`, sentinel.conf `port`). */
const REDIS_DEFAULT_PORT = 6379;
const SENTINEL_DEFAULT_PORT = 26379;
/** The highest TCP port. */
const MAX_PORT = 65_535;
/** Query parameters a `redis+sentinel://` URL may carry: credentials for the sentinels themselves. */
const SENTINEL_QUERY_KEYS = new Set(['sentinelUsername', 'sentinelPassword']);

/** Where a URL's parts were split, kept apart so that no message ever quotes a credential. */
interface UrlParts {
  scheme: string;
  /** undecoded `user:password`, or undefined without an `@` */
  userinfo: string | undefined;
  /** `host:port[,host:port...]` */
  hosts: string;
  /** what follows the first `/` after the hosts, without it */
  path: string;
  query: URLSearchParams;
}

function fail(what: string): never {
  throw new Error(`${CONFIG_KEY}: ${what}`);
}

/**
 * The URL cut into its parts by hand: `new URL()` cannot read a `redis+sentinel://` host list
 * (`h1:26379,h2:26379`). The credentials end at the last `@` before the query, so a password
 * with an unencoded `/` or `@` still parses; a `?` or `#` in it must be percent-encoded.
 */
function split(url: string): UrlParts {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  if (!m) fail('is not a URL: write redis://host:6379, rediss://host:6379 or redis+sentinel://host:26379/mastername');
  if (url.includes('#')) fail("contains '#': Redis URLs take no fragment (percent-encode a '#' in a password as %23)");
  const rest = url.slice(m[0].length);
  const q = rest.indexOf('?');
  const beforeQuery = q === -1 ? rest : rest.slice(0, q);
  const queryText = q === -1 ? '' : rest.slice(q + 1);
  // An '@' after the '?' means a password held a raw '?': where its credentials end is unknowable.
  if (queryText.includes('@') && !beforeQuery.includes('@')) {
    fail("cannot be read: percent-encode a '?' in a password as %3F (and '@' in a query value as %40)");
  }
  const at = beforeQuery.lastIndexOf('@');
  const userinfo = at === -1 ? undefined : beforeQuery.slice(0, at);
  const afterCredentials = beforeQuery.slice(at + 1);
  const slash = afterCredentials.indexOf('/');
  return {
    scheme: m[1]!.toLowerCase(),
    userinfo,
    hosts: slash === -1 ? afterCredentials : afterCredentials.slice(0, slash),
    path: slash === -1 ? '' : afterCredentials.slice(slash + 1),
    query: new URLSearchParams(queryText),
  };
}

function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    fail(`the ${what} has a malformed percent-escape`);
  }
}

/** `user:password` as ioredis options; a user name alone is refused (Redis's AUTH needs a password). */
function credentials(userinfo: string | undefined): Pick<RedisOptions, 'username' | 'password'> {
  if (userinfo === undefined) return {};
  const colon = userinfo.indexOf(':');
  if (colon === -1) {
    fail('has a user name but no password: write redis://user:password@host, or redis://:password@host for a password alone');
  }
  const username = decode(userinfo.slice(0, colon), 'user name');
  const password = decode(userinfo.slice(colon + 1), 'password');
  if (password === '') fail('has an empty password after the user name');
  return username === '' ? { password } : { username, password };
}

/** One `host[:port]` (an IPv6 address in brackets: `[::1]:6379`); `which` prefixes messages (`sentinel 2 `). */
function hostPort(text: string, defaultPort: number, which: string): { host: string; port: number } {
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(.*))?$/.exec(text);
  if (v6) {
    host = v6[1]!;
    portText = v6[2];
  } else {
    const colon = text.lastIndexOf(':');
    host = colon === -1 ? text : text.slice(0, colon);
    portText = colon === -1 ? undefined : text.slice(colon + 1);
    if (host === '') fail(`${which}has no host name`);
    if (!/^[A-Za-z0-9._-]+$/.test(host)) fail(`${which}host '${host}' is not a host name or an IP address`);
  }
  if (portText === undefined) return { host, port: defaultPort };
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= MAX_PORT)) fail(`${which}port '${portText}' of host '${host}' is not a number from 1 to ${MAX_PORT}`);
  return { host, port };
}

function database(text: string): number {
  if (!/^\d{1,9}$/.test(text)) fail(`database '${text}' is not a number (redis://host:6379/0 selects database 0)`);
  return Number(text);
}

function refuseQuery(query: URLSearchParams, allowed: ReadonlySet<string>, scheme: string): void {
  for (const key of query.keys()) {
    if (!allowed.has(key)) {
      const known = allowed.size > 0 ? ` (known: ${[...allowed].join(', ')})` : '';
      fail(`${scheme}:// takes no query parameter '${key}'${known}`);
    }
  }
}

function standalone(parts: UrlParts): RedisOptions {
  refuseQuery(parts.query, new Set(), parts.scheme);
  if (parts.hosts.includes(',')) {
    fail(`${parts.scheme}:// takes one host; for several sentinels write redis+sentinel://h1:26379,h2:26379/mastername`);
  }
  const options: RedisOptions = { ...hostPort(parts.hosts, REDIS_DEFAULT_PORT, ''), ...credentials(parts.userinfo) };
  if (parts.path !== '') options.db = database(parts.path);
  // TLS with Node's defaults: the server's certificate is checked against the system CAs and
  // the host name (SNI is the URL's host), as `rediss://` promises.
  if (parts.scheme === 'rediss') options.tls = {};
  return options;
}

function sentinel(parts: UrlParts): RedisOptions {
  refuseQuery(parts.query, SENTINEL_QUERY_KEYS, parts.scheme);
  if (parts.hosts === '') fail('redis+sentinel:// needs at least one sentinel: redis+sentinel://h1:26379,h2:26379/mastername');
  const sentinels = parts.hosts.split(',').map((text, i) => hostPort(text, SENTINEL_DEFAULT_PORT, `sentinel ${i + 1} `));
  const [nameText, dbText, ...extra] = parts.path.split('/');
  if (!nameText) fail('redis+sentinel:// needs the master name as its path: redis+sentinel://h1:26379,h2:26379/mastername');
  if (extra.length > 0) fail('redis+sentinel:// has a path longer than /mastername/db');
  const options: RedisOptions = { sentinels, name: decode(nameText, 'master name'), ...credentials(parts.userinfo) };
  if (dbText !== undefined && dbText !== '') options.db = database(dbText);
  const sentinelUsername = parts.query.get('sentinelUsername');
  const sentinelPassword = parts.query.get('sentinelPassword');
  if (sentinelUsername !== null && sentinelPassword === null) fail('has sentinelUsername but no sentinelPassword');
  if (sentinelUsername) options.sentinelUsername = sentinelUsername;
  if (sentinelPassword) options.sentinelPassword = sentinelPassword;
  return options;
}

/**
 * ioredis options for a Redis URL:
 *
 * - `redis://[user:password@]host[:port][/db]`
 * - `rediss://...` the same over TLS
 * - `redis+sentinel://[user:password@]host1[:port1],host2[:port2],.../mastername[/db][?sentinelPassword=...]`:
 *   the sentinels to ask for the current primary of `mastername`; the user and password are
 *   the data nodes' (the primary's and replicas'), `sentinelUsername`/`sentinelPassword` the
 *   sentinels' own when they have `requirepass`.
 *
 * Ports default to 6379 (26379 for a sentinel); user and password are percent-decoded.
 * Throws an Error naming `backend.url` and what is wrong, never quoting a password.
 */
export function parseRedisUrl(url: string): RedisOptions {
  const parts = split(url.trim());
  switch (parts.scheme) {
    case 'redis':
    case 'rediss':
      return standalone(parts);
    case 'redis+sentinel':
      return sentinel(parts);
    default:
      return fail(`scheme '${parts.scheme}://' is not one of redis://, rediss://, redis+sentinel://`);
  }
}

/** `url` fit for a log line or an error: the password and any `sentinelPassword` become `[redacted]`. */
export function redactRedisUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(.*)$/is.exec(url);
  if (!m) return url.includes('@') ? '[redacted]' : url;
  let rest = m[2]!;
  const at = rest.lastIndexOf('@');
  if (at !== -1) {
    const userinfo = rest.slice(0, at);
    const colon = userinfo.indexOf(':');
    // Without a ':' the whole userinfo may be a password (some clients read redis://secret@host so).
    rest = (colon === -1 ? '[redacted]' : `${userinfo.slice(0, colon)}:[redacted]`) + rest.slice(at);
  }
  rest = rest.replace(/([?&](?:sentinelPassword|password)=)[^&]*/gi, '$1[redacted]');
  return m[1] + rest;
}
