import type { FastifyInstance } from 'fastify';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from './pages.js';

/** Where `npm run build` writes the console (scripts/build-console.mjs, from web/console/). */
export const CONSOLE_DIR = 'dist/console';

const FILES: Record<string, { file: string; type: string }> = {
  '/console': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/console/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
};

/**
 * The admin console at `/console`: a static page whose every action is a documented HTTP API
 * call, so it holds no privilege of its own. Without credentials configured those APIs answer
 * loopback clients only (dev mode); otherwise the page asks for an admin API key, keeps it in
 * sessionStorage and sends it as `Authorization: Bearer`. The files are read when asked, so a
 * rebuild shows without a restart. Its policy allows scripts and connections to this origin only:
 * an event or payload that slipped into the page as markup could run nothing.
 */
export function consoleRoutes(app: FastifyInstance): void {
  const dir = join(packageRoot(), CONSOLE_DIR);
  for (const [url, { file, type }] of Object.entries(FILES)) {
    app.get(url, async (_req, reply) => {
      let body: Buffer;
      try {
        body = await readFile(join(dir, file));
      } catch {
        return reply
          .code(503)
          .type('text/plain; charset=utf-8')
          .send('The admin console is not built: run `npm run build` (it bundles web/console/ into dist/console/).\n');
      }
      return reply
        .type(type)
        .header('cache-control', 'no-cache')
        .header('content-security-policy', "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .send(body);
    });
  }
}
