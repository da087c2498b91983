import type { EventEmitter } from 'node:events';

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
