import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PublishApi } from './bench-protocol.js';
import { centrifugoLaunch, freePort, nchanLaunch, type PeerKind, type PeerLaunch } from './peers.js';

/** The compiled package root (this file is dist/bench/bench-targets.js). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A server under test: Herald, one of the naive baselines, the floor (bench/floor-server.ts), or
 * a peer (bench/peers.ts: nchan, Centrifugo).
 */
export type TargetKind = 'herald' | 'naive' | 'floor' | PeerKind;

export interface TargetOptions {
  kind: TargetKind;
  transport: 'sse' | 'ws';
  /** Herald's store (`sqlite`, the default, or `memory`). */
  store: 'sqlite' | 'memory';
  /** SQLite `synchronous` (`full` is Herald's default: one fsync per group commit). */
  sync: 'full' | 'normal';
  /** Write a V8 CPU profile of the server to this folder (Herald only). */
  profileDir?: string | undefined;
  /** Herald: this `backend` instead of the one `store` and `sync` name (say, Redis). */
  backend?: Record<string, unknown> | undefined;
  /** Herald: command-line arguments after `--config FILE` (say, `--workers 2`). */
  heraldArgs?: readonly string[] | undefined;
  /** A peer's program (checkPeer in bench/peers.ts found or built it). */
  peerBin?: string | undefined;
  /** Longest the server may take to say it listens (default START_TIMEOUT_MS; many workers on two cores take longer). */
  startTimeoutMs?: number | undefined;
}

/** How often a peer's port is tried while it starts. */
const PEER_POLL_MS = 100;

/** Longest a server may take to print its listening line. */
const START_TIMEOUT_MS = 20_000;
/** Longest a graceful stop may take before SIGKILL (a CPU profile is written on exit). */
const STOP_TIMEOUT_MS = 30_000;

/** A running server process: its base URL, the URL subscribers open, its memory. */
export class Target {
  readonly child: ChildProcess;
  readonly url: string;
  readonly streamUrl: string;
  /** How to publish to it (Herald's API unless it is a peer). */
  readonly server: PublishApi;
  readonly #dataDir: string;
  readonly #exited: Promise<void>;
  /** Log lines that say a subscriber was cut off as slow (Herald). */
  slowCutOffs = 0;

  private constructor(child: ChildProcess, url: string, streamUrl: string, dataDir: string, exited: Promise<void>, server: PublishApi = { api: 'herald' }) {
    this.child = child;
    this.url = url;
    this.streamUrl = streamUrl;
    this.server = server;
    this.#dataDir = dataDir;
    this.#exited = exited;
  }

  /** Starts the server as its own process on a free loopback port and waits until it listens. */
  static async start(o: TargetOptions): Promise<Target> {
    const dataDir = mkdtempSync(join(tmpdir(), 'herald-bench-'));
    if (o.kind === 'nchan' || o.kind === 'centrifugo') return Target.#startPeer(o, dataDir);
    const args: string[] = [];
    if (o.kind === 'herald') args.push(...(process.env.HERALD_BENCH_FLAGS ?? '').split(' ').filter(Boolean));
    if (o.profileDir && o.kind === 'herald') args.push('--cpu-prof', `--cpu-prof-dir=${o.profileDir}`);
    if (o.kind === 'herald') {
      const config = join(dataDir, 'config.json');
      const backend = o.backend ?? (o.store === 'memory' ? { type: 'memory' } : { type: 'sqlite', synchronous: o.sync });
      writeFileSync(config, JSON.stringify({ backend, log: { level: 'info' }, ...(process.env.BENCH_HERALD_CONFIG ? JSON.parse(process.env.BENCH_HERALD_CONFIG) : {}) }));
      args.push(join(ROOT, 'dist/src/cli/main.js'), '--config', config, ...(o.heraldArgs ?? []));
    } else if (o.kind === 'floor') {
      args.push(join(ROOT, 'dist/bench/floor-server.js'));
    } else {
      args.push(join(ROOT, `dist/bench/naive-${o.transport}-server.js`));
    }
    const child = spawn(process.execPath, args, {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', HERALD_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    let target: Target | undefined;
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${o.kind} did not start: ${stderr}`)), o.startTimeoutMs ?? START_TIMEOUT_MS);
      child.once('exit', (code) => reject(new Error(`${o.kind} exited with ${code}: ${stderr}`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.includes('cut off: slow') && target) target.slowCutOffs++;
        // Output of HERALD_BENCH_FLAGS such as --trace-gc: passed on.
        if (process.env.HERALD_BENCH_FLAGS && !line.startsWith('{')) process.stderr.write(`${o.kind}: ${line}\n`);
        if (!line.includes('listening')) return;
        try {
          const rec = JSON.parse(line) as { msg?: string; url?: string };
          if (rec.msg === 'herald listening' || rec.msg === 'listening') {
            clearTimeout(timer);
            resolve(rec.url!);
          }
        } catch {
          /* not a log line */
        }
      });
    });
    const stream = o.transport === 'sse' ? `${url}/v1/stream?channel=bench` : `${url.replace(/^http/, 'ws')}/v1/ws`;
    target = new Target(child, url, stream, dataDir, exited);
    return target;
  }

  /**
   * Starts a peer in `dataDir` on a free loopback port: its configuration written there, its
   * program in the foreground (nginx: `daemon off`, master and one worker), ready once its port
   * answers HTTP.
   */
  static async #startPeer(o: TargetOptions, dataDir: string): Promise<Target> {
    const port = await freePort();
    let launch: PeerLaunch;
    if (o.kind === 'nchan') launch = nchanLaunch(ROOT, dataDir, port);
    else launch = centrifugoLaunch(o.peerBin ?? join(ROOT, '.tools/centrifugo/centrifugo'), dataDir, port, randomBytes(16).toString('hex'));
    const child = spawn(launch.command, launch.args, { cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    let gone: string | undefined;
    child.once('exit', (code) => (gone = `${o.kind} exited with ${code}: ${output}`));
    child.once('error', (err) => (gone = `${o.kind} did not start: ${err.message}`));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (gone) throw new Error(gone);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`${o.kind} did not answer on port ${port}: ${output}`);
      }
      try {
        await fetch(`${launch.url}/`, { signal: AbortSignal.timeout(1_000) }).then((r) => r.arrayBuffer());
        break;
      } catch {
        await new Promise((r) => setTimeout(r, PEER_POLL_MS));
      }
    }
    const server: PublishApi = { api: o.kind as PeerKind, key: launch.apiKey };
    return new Target(child, launch.url, launch.streamUrl[o.transport], dataDir, exited, server);
  }

  /**
   * Resident memory of the server now, in bytes (VmRSS of /proc/<pid>/status): of its process
   * and its child processes together (the workers of `herald --workers N`).
   */
  rssBytes(): number {
    return processTree(this.child.pid!).reduce((a, pid) => a + rssOf(pid), 0);
  }

  /** CPU time the server (its process and child processes) has used so far, in milliseconds. */
  cpuMs(): number {
    return processTree(this.child.pid!).reduce((a, pid) => a + cpuMsOf(pid), 0);
  }

  /** SIGTERM, wait for the exit (and the CPU profile), then remove the data folder. */
  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.#exited;
    clearTimeout(timer);
    rmSync(this.#dataDir, { recursive: true, force: true });
  }
}

/** A process and its descendants still running (children from /proc/<pid>/task/<tid>/children). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const p = out[i]!;
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue; // exited meanwhile
    }
    for (const tid of tids) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').split(' ')) if (c) out.push(Number(c));
      } catch {
        /* thread gone */
      }
    }
  }
  return out;
}

/** VmRSS of a process, in bytes. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux ABI). */
const USER_HZ = 100;

/** utime + stime of a process, in milliseconds (fields 14 and 15 of /proc/<pid>/stat). */
export function cpuMsOf(pid: number): number {
  return procStat(readFileSync(`/proc/${pid}/stat`, 'utf8'), false).cpuMs;
}

/**
 * A process's parent and CPU milliseconds (with those of its children it waited for when
 * `children`: fields 16 and 17), from the text of its /proc/<pid>/stat.
 */
export function procStat(stat: string, children: boolean): { ppid: number; cpuMs: number } {
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0);
  return { ppid: Number(f[1]), cpuMs: (ticks * 1000) / USER_HZ };
}

/**
 * The newest main-thread `.cpuprofile` in a folder. Node names them
 * `CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile`; Herald's worker threads (the SQLite
 * checkpointer) write their own, with a thread id other than 0.
 */
export function newestProfile(dir: string): string | undefined {
  const files = readdirSync(dir).filter((f) => /\.0\.\d+\.cpuprofile$/.test(f)).sort();
  return files.length > 0 ? join(dir, files[files.length - 1]!) : undefined;
}

/** Share of the machine's CPU time that was idle over `ms` milliseconds (0 to 1). */
async function idleShare(ms: number): Promise<number> {
  const sum = () => cpus().reduce((a, c) => ({ idle: a.idle + c.times.idle, all: a.all + c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq }), { idle: 0, all: 0 });
  const a = sum();
  await new Promise((r) => setTimeout(r, ms));
  const b = sum();
  return b.all > a.all ? (b.idle - a.idle) / (b.all - a.all) : 1;
}

/** A suite starts once the machine is this idle (over one second)... */
const QUIET_IDLE_SHARE = 0.85;
/** ...or after this long, with a warning in its output. */
const QUIET_WAIT_MAX_MS = 30_000;

/**
 * Waits until the machine is quiet (processes of the previous suite gone, its sockets closed),
 * so a suite's figures are not taken while the last one still uses the cores. Returns the idle
 * share seen last and whether it was reached.
 */
export async function waitForQuiet(): Promise<{ idle: number; quiet: boolean }> {
  const until = Date.now() + QUIET_WAIT_MAX_MS;
  let idle = 0;
  while (Date.now() < until) {
    idle = await idleShare(1_000);
    if (idle >= QUIET_IDLE_SHARE) return { idle, quiet: true };
  }
  return { idle, quiet: false };
}
