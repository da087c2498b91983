import type { FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

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
 * The client's address with `trustProxy` applied. `false`: the socket's peer. `true` or N: the
 * address N proxies back in `X-Forwarded-For` (each proxy appends the peer it saw, so only the
 * entries our own proxies appended can be trusted: the ones further left are the client's to
 * forge). Falls back to the socket's peer when the header is missing or not an address.
 */
export function forwardedClientAddress(req: IncomingMessage, trustProxy: boolean | number): string | undefined {
  const peer = req.socket.remoteAddress;
  if (trustProxy === false) return peer;
  const hops = trustProxy === true ? 1 : trustProxy;
  const header = req.headers['x-forwarded-for'];
  if (header === undefined) return peer;
  const chain = (Array.isArray(header) ? header.join(',') : header).split(',').map((s) => s.trim());
  const candidate = chain[Math.max(0, chain.length - hops)];
  return candidate !== undefined && isIP(candidate) !== 0 ? candidate : peer;
}
