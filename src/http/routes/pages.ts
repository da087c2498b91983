import type { FastifyInstance } from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeraldError } from '../../core/errors.js';

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
  '/demo/chat': 'web/demo/chat.html',
  '/demo/notifications': 'web/demo/notifications.html',
};

/** Where pages load the client SDK from (`import { connect } from '/client/herald-client.min.js'`). */
export const SDK_BUNDLE_URL = '/client/herald-client.min.js';
/** The browser bundle `npm run build` makes (packages/client/scripts/build.mjs). */
const SDK_BUNDLE_FILE = 'packages/client/dist/herald-client.min.js';

/** The seed client pages and the demos, read once at start and served as they are; the SDK bundle. */
export function pageRoutes(app: FastifyInstance): void {
  const root = packageRoot();
  for (const [url, file] of Object.entries(PAGES)) {
    const html = readFileSync(join(root, file));
    app.get(url, async (_req, reply) => reply.type('text/html; charset=utf-8').send(html));
  }
  // Read when first asked, not at start: a checkout may run Herald before the SDK is built.
  let bundle: Buffer | undefined;
  app.get(SDK_BUNDLE_URL, async (_req, reply) => {
    const file = join(root, SDK_BUNDLE_FILE);
    if (bundle === undefined && existsSync(file)) bundle = readFileSync(file);
    if (bundle === undefined) throw new HeraldError('NOT_FOUND', 'the client SDK is not built here: run `npm run build`');
    return reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(bundle);
  });
}
