import type { Transport } from './bench-protocol.js';
import { Target, waitForQuiet, type TargetKind } from './bench-targets.js';
import type { LoadDriver, Measurement } from './load-driver.js';

/** The scenarios of the benchmark, in the order one suite runs them. */
export const SCENARIOS = ['idle', 'fanout', 'steady', 'burst'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Sizes and durations of a run (`--quick` shrinks them). */
export interface Sizes {
  /** Subscribers of the steady and burst scenarios. */
  small: number;
  /** Subscribers of the idle and fan-out scenarios. */
  large: number;
  steadyRate: number;
  fanoutRate: number;
  /** Seconds each fixed-rate window lasts. */
  rateSeconds: number;
  burstCount: number;
  /** Publish requests outstanding at most in burst mode. */
  inflight: number;
  /** Milliseconds to let memory settle before reading RSS. */
  settleMs: number;
  /** Publishes to a channel without subscribers before the first timed window (Herald). */
  warmup: number;
}

export const FULL: Sizes = {
  small: 1_000,
  large: 10_000,
  steadyRate: 200,
  fanoutRate: 10,
  rateSeconds: 10,
  burstCount: 2_000,
  inflight: 32,
  settleMs: 2_000,
  warmup: 5_000,
};

export const QUICK: Sizes = { ...FULL, large: 2_000, rateSeconds: 3, burstCount: 500, settleMs: 1_000, warmup: 1_000 };

export interface IdleResult {
  rssStart: number;
  rssSmall: number;
  rssLarge?: number;
  /** Bytes of RSS growth per connection, from no subscriber to `small` and to `large`. */
  perConnSmall: number;
  perConnLarge?: number;
}

export interface SuiteResult {
  kind: TargetKind;
  transport: Transport;
  idle?: IdleResult;
  fanout?: Measurement;
  steady?: Measurement;
  burst?: Measurement;
  slowCutOffs: number;
  error?: string;
  /** Why a peer did not run on this machine (not installed, not buildable). */
  skipped?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for a quiet machine before a measured window; says so when it stays busy. */
async function waitQuietOrWarn(label: string, say: (s: string) => void): Promise<void> {
  const q = await waitForQuiet();
  if (!q.quiet) say(`${label}: warning: the machine stays busy (${Math.round(q.idle * 100)}% idle); figures will be noisy`);
}

/**
 * One server, one transport, every selected scenario, in one server lifetime:
 * warm up, read RSS with no subscriber; open `small` subscribers (RSS), then `large` (RSS):
 * the idle figures; publish at the fan-out rate to `large`; close down to `small`; steady rate;
 * then a burst. Memory is read before any load has grown the heap.
 */
export async function runSuite(
  kind: TargetKind,
  transport: Transport,
  load: LoadDriver,
  o: {
    sizes: Sizes;
    scenarios: readonly Scenario[];
    store: 'sqlite' | 'memory';
    sync: 'full' | 'normal';
    profileDir?: string | undefined;
    /** A peer's program (bench/peers.ts). */
    peerBin?: string | undefined;
    say: (s: string) => void;
  },
): Promise<SuiteResult> {
  const { sizes: z, scenarios, say } = o;
  const result: SuiteResult = { kind, transport, slowCutOffs: 0 };
  let target: Target;
  try {
    target = await Target.start({ kind, transport, store: o.store, sync: o.sync, profileDir: o.profileDir, peerBin: o.peerBin });
  } catch (err) {
    result.error = (err as Error).message;
    say(`${kind} ${transport}: FAILED to start: ${result.error}`);
    return result;
  }
  load.useTarget(transport, target.url, target.streamUrl, () => target.cpuMs(), target.server);
  const label = `${kind} ${transport}`;
  // A measured window starts on a quiet machine: connections opened or closed just before it
  // (9,000 closed between fan-out and steady) leave work behind that is not the window's own.
  const quiet = () => waitQuietOrWarn(label, say);
  try {
    // Warm up: load the code paths (and JIT them) so RSS growth is the connections' own.
    await load.connectTo(20);
    await load.waitLive();
    await load.measure({ mode: 'burst', count: 200, inflight: z.inflight });
    await load.closeTo(0);
    await sleep(z.settleMs);

    const wantLarge = scenarios.includes('idle') || scenarios.includes('fanout');
    const rssStart = target.rssBytes();
    await load.connectTo(z.small);
    await load.waitLive();
    await sleep(z.settleMs);
    const rssSmall = target.rssBytes();
    const idle: IdleResult = { rssStart, rssSmall, perConnSmall: (rssSmall - rssStart) / z.small };
    say(`${label}: ${z.small} subscribers, RSS ${mib(rssStart)} -> ${mib(rssSmall)}`);
    if (wantLarge) {
      await load.connectTo(z.large);
      await load.waitLive();
      await sleep(z.settleMs);
      idle.rssLarge = target.rssBytes();
      idle.perConnLarge = (idle.rssLarge - rssStart) / z.large;
      say(`${label}: ${z.large} subscribers, RSS ${mib(idle.rssLarge)}`);
    }
    if (scenarios.includes('idle')) result.idle = idle;

    // Before the first timed window, and after the memory figures (a heap grown by it would make
    // the growth per connection look smaller): publishes to a channel nobody subscribes to, so V8
    // has optimized the publish path. 200 publishes load it but leave it unoptimized: after a
    // 20,000-publish burst Herald's CPU per publish at 200/s went from 1.9 to 1.0-1.15 ms, as in
    // any server that has run for a while. Herald only: the naive servers send every publish to
    // every client, whatever its channel.
    if (kind === 'herald' && scenarios.some((s) => s !== 'idle')) {
      await load.publishUnmeasured({ channel: 'bench-warmup', count: z.warmup, inflight: z.inflight });
    }

    if (scenarios.includes('fanout')) {
      await quiet();
      result.fanout = await load.measure({ mode: 'rate', rate: z.fanoutRate, count: z.fanoutRate * z.rateSeconds, inflight: z.inflight });
      say(`${label}: fanout ${describe(result.fanout)}`);
    }
    if (wantLarge) {
      await load.closeTo(z.small);
      await load.waitLive();
    }
    if (scenarios.includes('steady')) {
      await quiet();
      result.steady = await load.measure({ mode: 'rate', rate: z.steadyRate, count: z.steadyRate * z.rateSeconds, inflight: z.inflight });
      say(`${label}: steady ${describe(result.steady)}`);
    }
    if (scenarios.includes('burst')) {
      await quiet();
      result.burst = await load.measure({ mode: 'burst', count: z.burstCount, inflight: z.inflight });
      say(`${label}: burst ${describe(result.burst)}`);
    }
  } catch (err) {
    result.error = (err as Error).message;
    say(`${label}: FAILED: ${result.error}`);
  } finally {
    await load.closeTo(0).catch(() => undefined);
    result.slowCutOffs = target.slowCutOffs;
    await target.stop();
  }
  return result;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

function describe(m: Measurement): string {
  return (
    `${m.subscribers} subs x ${m.publishes} publishes: ${Math.round(m.deliveriesPerSec)} deliveries/s, ` +
    `p50 ${m.p50.toFixed(2)} ms, p99 ${m.p99.toFixed(2)} ms, lost ${m.lost}, ` +
    `server CPU ${m.serverCpuUsPerDelivery.toFixed(2)} µs/delivery (${Math.round(100 * m.serverCpuShare)}% of a core), ` +
    `subscribers ${Math.round(100 * m.clientsCpuShare)}%, publisher ${Math.round(100 * m.publisherCpuShare)}%` +
    (m.failedPublishes ? `, failed publishes ${m.failedPublishes} ${JSON.stringify(m.failures)}` : '') +
    (m.latePublishes ? `, late publishes ${m.latePublishes}` : '')
  );
}

/** Steady windows of the paired run: the WebSocket/SSE ratio of each is reported, and their median. */
export const PAIRED_WINDOWS = 3;
/** Subscribers are opened this many at a time, so the two transports take turns in the server's lists. */
const PAIRED_CONNECT_STEP = 100;

/** One steady window with SSE and WebSocket subscribers of one Herald at once. */
export interface PairedWindow {
  sse: { p50: number; p99: number };
  ws: { p50: number; p99: number };
  window: Measurement;
}

/**
 * Herald with `small` subscribers, half over SSE and half over WebSocket (subscriber process i
 * uses one transport, i+1 the other), opened in small steps so the two take turns, then
 * `PAIRED_WINDOWS` steady windows. Both transports see the same server, the same publishes and
 * the same machine at the same moment: a ratio that separate windows (one transport after the
 * other, on a noisy machine) cannot give.
 */
export async function runPaired(
  load: LoadDriver,
  o: { sizes: Sizes; store: 'sqlite' | 'memory'; sync: 'full' | 'normal'; say: (s: string) => void },
): Promise<{ windows: PairedWindow[]; error?: string }> {
  const { sizes: z, say } = o;
  const windows: PairedWindow[] = [];
  let target: Target;
  try {
    target = await Target.start({ kind: 'herald', transport: 'sse', store: o.store, sync: o.sync });
  } catch (err) {
    return { windows, error: (err as Error).message };
  }
  const wsUrl = `${target.url.replace(/^http/, 'ws')}/v1/ws`;
  load.useTarget(['sse', 'ws'], target.url, [target.streamUrl, wsUrl], () => target.cpuMs());
  try {
    await load.connectTo(20);
    await load.waitLive();
    await load.measure({ mode: 'burst', count: 200, inflight: z.inflight });
    for (let n = PAIRED_CONNECT_STEP; n <= z.small; n += PAIRED_CONNECT_STEP) await load.connectTo(n);
    await load.waitLive();
    await load.publishUnmeasured({ channel: 'bench-warmup', count: z.warmup, inflight: z.inflight });
    for (let i = 0; i < PAIRED_WINDOWS; i++) {
      await waitQuietOrWarn('herald sse+ws', say);
      const m = await load.measure({ mode: 'rate', rate: z.steadyRate, count: z.steadyRate * z.rateSeconds, inflight: z.inflight });
      const [sse, ws] = m.perStream ?? [];
      if (!sse || !ws) throw new Error('no figures per transport');
      windows.push({ sse, ws, window: m });
      say(
        `herald sse+ws: steady window ${i + 1}: ${m.subscribers} subs, lost ${m.lost}; ` +
          `SSE p50/p99 ${sse.p50.toFixed(1)}/${sse.p99.toFixed(1)} ms, WebSocket ${ws.p50.toFixed(1)}/${ws.p99.toFixed(1)} ms (p99 ${(ws.p99 / sse.p99).toFixed(2)}x)`,
      );
    }
    return { windows };
  } catch (err) {
    say(`herald sse+ws: FAILED: ${(err as Error).message}`);
    return { windows, error: (err as Error).message };
  } finally {
    await load.closeTo(0).catch(() => undefined);
    await target.stop();
  }
}
