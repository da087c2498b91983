import { connect, type Socket } from 'node:net';
import { serveRpc } from './bench-ipc.js';

/**
 * The reading end of `write-cost.ts`: holds connections and reads them the way the fan-out
 * benchmark's subscribers do (`onread` into one shared buffer, no stream per socket), counting
 * reads and bytes and nothing else.
 */

const sockets: Socket[] = [];
const buffer = Buffer.allocUnsafe(65_536);
let reads = 0;
let bytes = 0;

serveRpc({
  async connect(a: { port: number; count: number }) {
    for (let i = 0; i < a.count; i++) {
      await new Promise<void>((resolve, reject) => {
        const s = connect(
          {
            host: '127.0.0.1',
            port: a.port,
            onread: {
              buffer,
              callback: (n: number) => {
                reads++;
                bytes += n;
                return true;
              },
            },
          },
          () => resolve(),
        );
        s.once('error', reject);
        sockets.push(s);
      });
    }
    return sockets.length;
  },
  /** Reads, bytes and CPU time (µs) so far. */
  counters: () => ({ reads, bytes, ...process.cpuUsage() }),
});
