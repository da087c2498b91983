import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy on loopback in front of a Herald, to drop a client's connections for real (the
 * network failing, not the server closing them): `cut()` destroys every open connection,
 * `refuse` turns new ones away while events go on being published straight to Herald, and
 * `target` can be moved to another Herald (one that lost its log).
 */
export async function cutProxy(targetUrl: string) {
  let target = new URL(targetUrl);
  let refuse = false;
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (refuse) return void client.destroy();
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        open.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    set refuse(v: boolean) {
      refuse = v;
    },
    set target(url: string) {
      target = new URL(url);
    },
    /** Connections open through the proxy now. */
    get open(): number {
      return open.size / 2;
    },
    cut(): void {
      for (const s of open) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
