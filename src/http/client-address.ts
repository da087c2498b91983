import type { FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/**
 * The address given to a client whose address Herald cannot know: a proxy we trust forwarded
 * `unknown`, an obfuscated identifier (RFC 7239 6.3, `_hidden`) or something that is not an
 * address. It is never loopback, so such a client is never taken for this machine (dev mode's
 * loopback-only APIs, the limits' loopback exemption), and all such clients share one rate-limit
 * bucket: keying them by the text they sent would let each request pick a fresh bucket.
 */
export const UNKNOWN_CLIENT = 'unknown';

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback: the machine Herald runs on. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  if (address === '::1') return true;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** The socket's peer address (proxies are not trusted until auth config says so). */
export function clientAddress(req: FastifyRequest): string | undefined {
  return req.socket.remoteAddress;
}

/**
 * One `X-Forwarded-For` entry as an address: `ip`, `ip:port` (IPv4) and `[ipv6]` or
 * `[ipv6]:port`, as proxies write them; anything else (`unknown`, `_hidden`, garbage) is
 * UNKNOWN_CLIENT.
 */
export function parseForwardedAddress(entry: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(entry);
  if (bracketed) return isIP(bracketed[1]!) === 6 ? bracketed[1]! : UNKNOWN_CLIENT;
  if (isIP(entry) !== 0) return entry;
  const v4port = /^([0-9.]+):\d{1,5}$/.exec(entry);
  if (v4port && isIP(v4port[1]!) === 4) return v4port[1]!;
  return UNKNOWN_CLIENT;
}

/**
 * The client's address with `trustProxy` applied. `false`: the socket's peer. `true` or N: the
 * address N proxies back in `X-Forwarded-For` (each proxy appends the peer it saw, so only the
 * entries our own proxies appended can be trusted: the ones further left are the client's to
 * forge). Without the header the request did not come through the proxy: the socket's peer.
 * An entry that is not an address is UNKNOWN_CLIENT, never the proxy's own (often loopback)
 * address: falling back to the peer let a client behind the proxy pass as this machine.
 */
export function forwardedClientAddress(req: IncomingMessage, trustProxy: boolean | number): string | undefined {
  const peer = req.socket.remoteAddress;
  if (trustProxy === false) return peer;
  const hops = trustProxy === true ? 1 : trustProxy;
  const header = req.headers['x-forwarded-for'];
  if (header === undefined) return peer;
  const chain = (Array.isArray(header) ? header.join(',') : header).split(',').map((s) => s.trim());
  const candidate = chain[Math.max(0, chain.length - hops)];
  return candidate === undefined ? UNKNOWN_CLIENT : parseForwardedAddress(candidate);
}
