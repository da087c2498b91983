import type { FastifyInstance } from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding package.json, found from this file (works from src/ and from dist/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

const PAGES: Record<string, string> = {
  '/client/sse.html': 'web/client/sse.html',
  '/client/websocket.html': 'web/client/websocket.html',
};

/** The seed client pages, read once at start and served as they are. */
export function pageRoutes(app: FastifyInstance): void {
  const root = packageRoot();
  for (const [url, file] of Object.entries(PAGES)) {
    const html = readFileSync(join(root, file));
    app.get(url, async (_req, reply) => reply.type('text/html; charset=utf-8').send(html));
  }
}
