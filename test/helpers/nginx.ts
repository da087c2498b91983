import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/http/routes/pages.js';
import { selfSignedCertificate } from './certificate.js';
import { waitFor } from './herald.js';

/** What to run when nginx or openssl is missing (.ci/run installs both). */
export const NGINX_HOW = 'Debian: apt-get install -y nginx-light openssl (or set HERALD_TEST_NGINX to an nginx binary)';

/** The nginx binary: HERALD_TEST_NGINX, else nginx on PATH or in /usr/sbin; undefined when absent. */
export function findNginx(): string | undefined {
  const candidates = [process.env.HERALD_TEST_NGINX, ...(process.env.PATH ?? '').split(':').map((d) => join(d, 'nginx')), '/usr/sbin/nginx'];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A free loopback port: nginx cannot listen on port 0, so one is picked (and released) first. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Replaces `from` by `to` in `text`, failing loudly when the deploy file no longer holds `from`. */
function swap(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`deploy/nginx/herald.conf no longer contains ${JSON.stringify(from)}`);
  return text.split(from).join(to);
}

export interface RunningNginx {
  /** https://127.0.0.1:<port> */
  url: string;
  /** The self-signed certificate nginx presents, for the clients' `ca`. */
  ca: Buffer;
  stop(): Promise<void>;
}

/**
 * Runs the repo's deploy/nginx/herald.conf in the foreground (`daemon off`), in front of
 * `upstream` (host:port), with TLS on a freshly made self-signed certificate for 127.0.0.1.
 * Only the listen ports, the name, the certificate paths and the upstream address are swapped.
 */
export async function startNginx(nginx: string, upstream: string): Promise<RunningNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-nginx-'));
  chmodSync(dir, 0o755); // worker processes (nobody, when started as root) create their temp files here
  const { certFile: cert, keyFile: key } = selfSignedCertificate(dir);
  const [httpsPort, httpPort] = [await freePort(), await freePort()];

  let site = readFileSync(join(packageRoot(), 'deploy/nginx/herald.conf'), 'utf8');
  site = swap(site, 'server 127.0.0.1:8080;', `server ${upstream};`);
  site = swap(site, 'listen 80;', `listen 127.0.0.1:${httpPort};`);
  site = swap(site, 'listen [::]:80;', '');
  site = swap(site, 'listen 443 ssl;', `listen 127.0.0.1:${httpsPort} ssl;`);
  site = swap(site, 'listen [::]:443 ssl;', '');
  site = swap(site, 'server_name herald.example.com;', 'server_name 127.0.0.1;');
  site = swap(site, '/etc/ssl/herald/fullchain.pem', cert);
  site = swap(site, '/etc/ssl/herald/privkey.pem', key);
  writeFileSync(join(dir, 'herald.conf'), site);
  for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, t));
  // The wrapper a distribution's nginx.conf would be, with every path inside `dir`.
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/herald.conf;
}
`,
  );

  const child: ChildProcess = spawn(nginx, ['-p', dir, '-e', 'stderr', '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const accepts = () =>
    new Promise<boolean>((resolve) => {
      const s = connect(httpsPort, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
  try {
    await waitFor(async () => {
      if (exited) throw new Error(`nginx exited: ${stderr}`);
      return accepts();
    }, 15_000, 'nginx to listen');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    url: `https://127.0.0.1:${httpsPort}`,
    ca: readFileSync(cert),
    async stop() {
      if (!exited) child.kill('SIGTERM'); // nginx's fast shutdown
      await exit;
    },
  };
}
