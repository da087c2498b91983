import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/**
 * Resolves once `stream` has handed its buffered bytes to the kernel ('drain') or is gone
 * ('close'); at once when nothing is buffered. Both listeners are removed either way.
 */
export function whenDrained(stream: EventEmitter & { writableLength: number; destroyed?: boolean }): Promise<void> {
  if (stream.writableLength === 0 || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/**
 * The TCP socket under a `ws` WebSocket. `ws` keeps it in `_socket`; Herald needs it to cork a
 * tick's frames into one write and to wait for 'drain' during a replay.
 */
export function rawSocket(ws: WebSocket): Socket {
  return (ws as unknown as { _socket: Socket })._socket;
}
