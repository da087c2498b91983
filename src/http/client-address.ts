import type { FastifyRequest } from 'fastify';
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
