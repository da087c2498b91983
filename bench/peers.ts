import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

/**
 * The servers users compare Herald with, run by the benchmark beside it: nchan (Debian's nginx
 * with libnginx-mod-nchan, configured by bench/peers/nchan.conf) and Centrifugo v6 (built with
 * `go install` by bench/peers/install-centrifugo.sh into .tools/centrifugo/). Each runs from a
 * fresh process per run, in a temporary folder, on a free loopback port.
 */

/** The peers, as target kinds. */
export const PEERS = ['nchan', 'centrifugo'] as const;
export type PeerKind = (typeof PEERS)[number];

/** nginx and the nchan module (Debian's paths; BENCH_NGINX and BENCH_NCHAN_MODULE override). */
export const NGINX_BIN = process.env.BENCH_NGINX ?? '/usr/sbin/nginx';
export const NCHAN_MODULE = process.env.BENCH_NCHAN_MODULE ?? '/usr/lib/nginx/modules/ngx_nchan_module.so';

/** Messages each peer keeps per channel for a subscriber that resumes (as Herald's log does). */
export const PEER_HISTORY_SIZE = 1_000;
/** How long they keep them. */
export const PEER_HISTORY_TTL_S = 3_600;

/** A peer ready to start: the program and its version, or why it cannot run here. */
export type PeerCheck = { ok: true; bin: string; version: string } | { ok: false; reason: string };

/**
 * Whether a peer can run on this machine. Centrifugo is built first if it is not there yet
 * (`go install`, once; the script does nothing when that version is in .tools/centrifugo/).
 */
export function checkPeer(kind: PeerKind, root: string): PeerCheck {
  if (kind === 'nchan') {
    if (!existsSync(NGINX_BIN)) return { ok: false, reason: `no nginx at ${NGINX_BIN} (apt-get install nginx-light libnginx-mod-nchan)` };
    if (!existsSync(NCHAN_MODULE)) return { ok: false, reason: `no nchan module at ${NCHAN_MODULE} (apt-get install libnginx-mod-nchan)` };
    const v = spawnSync(NGINX_BIN, ['-v'], { encoding: 'utf8' });
    const nginx = /nginx\/[\d.]+/.exec(v.stderr)?.[0] ?? 'nginx';
    return { ok: true, bin: NGINX_BIN, version: `${nginx} with ${nchanPackage() ?? 'the nchan module'}` };
  }
  const r = spawnSync('bash', [join(root, 'bench/peers/install-centrifugo.sh')], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join(' ');
    return { ok: false, reason: `go install of Centrifugo failed: ${why || `exit ${r.status}`}` };
  }
  const bin = r.stdout.trim().split('\n').pop()!;
  // A `go install` build says v0.0.0 (its version is set by release builds' linker flags): the
  // version the script installed is in the file beside it.
  let version = '?';
  try {
    version = readFileSync(join(dirname(bin), 'VERSION'), 'utf8').trim();
  } catch {
    /* installed by other means */
  }
  const go = /Go version: (go[\d.]+)/.exec(spawnSync(bin, ['version'], { encoding: 'utf8' }).stdout)?.[1];
  return { ok: true, bin, version: `Centrifugo ${version} (go install${go ? `, ${go}` : ''})` };
}

/** libnginx-mod-nchan's Debian version, if dpkg knows it. */
function nchanPackage(): string | undefined {
  try {
    const status = readFileSync('/var/lib/dpkg/status', 'utf8');
    const m = /Package: libnginx-mod-nchan\n(?:[^\n]+\n)*?Version: (\S+)/.exec(status);
    return m ? `libnginx-mod-nchan ${m[1]}` : undefined;
  } catch {
    return undefined;
  }
}

/** A free TCP port on loopback (the kernel's pick, released for the peer to bind). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** How to run a peer: program, arguments, URLs. */
export interface PeerLaunch {
  command: string;
  args: string[];
  url: string;
  streamUrl: { sse: string; ws: string };
  /** Centrifugo's HTTP API key. */
  apiKey?: string;
}

/**
 * Writes nchan's configuration into `dir` (bench/peers/nchan.conf with the module, the folder
 * and the port filled in) and says how to run nginx there: in the foreground, its pid file, logs
 * and temporary files in `dir`.
 */
export function nchanLaunch(root: string, dir: string, port: number): PeerLaunch {
  const conf = readFileSync(join(root, 'bench/peers/nchan.conf'), 'utf8')
    .replaceAll('{{MODULE}}', NCHAN_MODULE)
    .replaceAll('{{PREFIX}}', dir)
    .replaceAll('{{PORT}}', String(port))
    .replaceAll('{{HISTORY_SIZE}}', String(PEER_HISTORY_SIZE))
    .replaceAll('{{HISTORY_TTL}}', `${PEER_HISTORY_TTL_S}s`);
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const url = `http://127.0.0.1:${port}`;
  return {
    command: NGINX_BIN,
    args: ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')],
    url,
    streamUrl: { sse: `${url}/sub?channel=bench`, ws: `ws://127.0.0.1:${port}/sub?channel=bench` },
  };
}

/**
 * Centrifugo's configuration (v6 key names): the memory engine, history and recovery forced on
 * every channel without a namespace (`bench`), the uni-directional SSE and WebSocket transports,
 * anonymous connections that may subscribe through the connect request (loopback only: this is
 * a benchmark, not a deployment), and the HTTP API behind a random key.
 */
export function centrifugoConfig(port: number, apiKey: string): Record<string, unknown> {
  return {
    http_server: { address: '127.0.0.1', port },
    log: { level: 'error' },
    engine: { type: 'memory' },
    http_api: { key: apiKey },
    client: { allow_anonymous_connect_without_token: true },
    channel: {
      without_namespace: {
        history_size: PEER_HISTORY_SIZE,
        history_ttl: `${PEER_HISTORY_TTL_S}s`,
        force_recovery: true,
        allow_subscribe_for_anonymous: true,
        allow_subscribe_for_client: true,
      },
    },
    uni_sse: { enabled: true },
    uni_websocket: { enabled: true },
    usage_stats: { disabled: true },
    shutdown: { timeout: '5s' },
  };
}

/** Writes Centrifugo's configuration into `dir` and says how to run it. */
export function centrifugoLaunch(bin: string, dir: string, port: number, apiKey: string): PeerLaunch {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(centrifugoConfig(port, apiKey), null, 2));
  const url = `http://127.0.0.1:${port}`;
  // Uni-directional transports connect and subscribe in one request: the connect request in
  // the URL names the channel (server-side subscription, recovery forced by the channel options).
  const connect = encodeURIComponent(JSON.stringify({ subs: { bench: {} } }));
  return {
    command: bin,
    args: ['--config', join(dir, 'config.json')],
    url,
    streamUrl: {
      sse: `${url}/connection/uni_sse?cf_connect=${connect}`,
      ws: `ws://127.0.0.1:${port}/connection/uni_websocket?cf_connect=${connect}`,
    },
    apiKey,
  };
}
