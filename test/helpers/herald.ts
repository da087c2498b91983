import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createHerald, type Herald, type HeraldParts } from '../../src/app.js';
import { buildConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { packageRoot } from '../../src/http/routes/pages.js';

/** A Herald in this process, on a free loopback port, with its own data folder. */
export async function startInProcess(
  file: Record<string, unknown> = {},
  opts: { dataDir?: string; parts?: HeraldParts } = {},
): Promise<{ herald: Herald; url: string; dataDir: string; close: () => Promise<void> }> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'herald-test-'));
  const config = buildConfig({ log: { level: 'silent' }, ...file }, { PORT: '0', HOST: '127.0.0.1', HERALD_DATA_DIR: dataDir });
  const herald = createHerald(config, createLogger(config.log.level), opts.parts);
  const url = await herald.listen();
  return { herald, url, dataDir, close: () => herald.close() };
}

export interface SpawnedHerald {
  child: ChildProcess;
  url: string;
  dataDir: string;
  /** Every log line so far, parsed. */
  logs: Record<string, unknown>[];
  /** Sends SIGTERM and waits for the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: no shutdown path at all. */
  kill(): Promise<void>;
}

/** milliseconds a spawned Herald may take to print its `herald listening` line. */
const SPAWN_START_TIMEOUT_MS = 15_000;

/**
 * Herald as a user runs it: `node dist/src/cli/main.js --config FILE [args]`, on a free port.
 * Resolves on the `herald listening` line (with `--workers N`, the primary's, once all listen).
 */
export async function spawnHerald(
  file: Record<string, unknown> = {},
  opts: { dataDir?: string; env?: Record<string, string>; args?: string[]; cwd?: string; startTimeoutMs?: number } = {},
): Promise<SpawnedHerald> {
  const startTimeoutMs = opts.startTimeoutMs ?? SPAWN_START_TIMEOUT_MS;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'herald-e2e-'));
  const configFile = join(dataDir, 'config.json');
  writeFileSync(configFile, JSON.stringify(file));
  const child = spawn(process.execPath, [join(packageRoot(), 'dist/src/cli/main.js'), '--config', configFile, ...(opts.args ?? [])], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', HERALD_DATA_DIR: dataDir, ...opts.env },
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // never leave a half-started server behind
      reject(new Error(`herald did not start in ${startTimeoutMs / 1000} s: ${stderr}`));
    }, startTimeoutMs);
    child.once('exit', (code) => reject(new Error(`herald exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        logs.push(rec);
        if (rec.msg === 'herald listening') {
          clearTimeout(timer);
          resolve(rec.url as string);
        }
      } catch {
        /* not a log line */
      }
    });
  });
  return {
    child,
    url,
    dataDir,
    logs,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Resolves when `check` returns a truthy value, polling every 10 ms; rejects after `ms`. */
export async function waitFor<T>(check: () => T | Promise<T>, ms = 5_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** POSTs JSON and returns status, headers and parsed body. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: json as any };
}

/**
 * The log position inside an event id (`<epoch>-<seq>`). Clients treat ids as opaque; tests look
 * inside only to check that ids follow the log's order.
 */
export function seqOfId(id: string): number {
  return Number(id.slice(id.lastIndexOf('-') + 1));
}
