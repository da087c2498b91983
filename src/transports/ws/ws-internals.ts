import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/*
 * The one place the WebSocket transport reaches into a `ws` private. `ws` offers no public way to
 * the TCP socket under a connection; an upgrade that renames it would make every connection
 * throw on its first write, so
 * test/hardening/library-internals-are-where-herald-expects.test.ts checks it on a real
 * connection and fails first.
 */

/**
 * The TCP socket under a `ws` WebSocket. `ws` keeps it in `_socket`; Herald needs it to cork a
 * tick's frames into one write and to wait for 'drain' during a replay.
 */
export function rawSocket(ws: WebSocket): Socket {
  return (ws as unknown as { _socket: Socket })._socket;
}
