import type { Transport } from './bench-protocol.js';
import type { TargetKind } from './bench-targets.js';
import type { PairedWindow, Sizes, SuiteResult } from './bench-suite.js';
import type { Measurement } from './load-driver.js';

/** The goals of the benchmark (issue 2), with their units. */
export const GOALS = {
  /** deliveries per second in the burst scenario, per transport. */
  burstDeliveriesPerSec: 400_000,
  /** Herald's burst throughput over the naive baseline's. */
  burstOverNaive: 2,
  /** ms: p99 publish-to-receive at the steady rate. */
  steadyP99Ms: 30,
  /** ms: p99 publish-to-receive at the fan-out rate to the large audience. */
  fanoutP99Ms: 100,
  /** bytes of server RSS per idle connection at the large audience (10 KiB at first, now 6). */
  idleBytesPerConn: 6 * 1024,
  /** WebSocket p99 over SSE p99 at the steady rate, both in one window (the paired run). */
  wsOverSseP99: 1.2,
};

export interface RunInfo {
  date: string;
  cpus: string;
  node: string;
  loadBefore: string;
  store: string;
  workers: number;
  quick: boolean;
  command: string;
  /** The peers that ran, with their versions. */
  peers: string[];
}

const T_NAME: Record<Transport, string> = { sse: 'SSE', ws: 'WebSocket' };

function find(results: SuiteResult[], kind: TargetKind, t: Transport): SuiteResult | undefined {
  return results.find((r) => r.kind === kind && r.transport === t);
}

const int = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '–' : Math.round(n).toLocaleString('en-US'));
const ms = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '–' : n < 10 ? n.toFixed(2) : n.toFixed(1));
const kib = (bytes: number | undefined) => (bytes === undefined ? '–' : `${(bytes / 1024).toFixed(1)} KiB`);
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? '–' : `${(a / b).toFixed(2)}x`;
const verdict = (ok: boolean | undefined) => (ok === undefined ? '–' : ok ? 'PASS' : '**MISS**');

/** The goals table: each figure, its goal, PASS or MISS, and the naive baseline and the floor beside it. */
export function goalsTable(results: SuiteResult[], z: Sizes): string {
  const rows: string[] = [
    '| Goal | Transport | Herald | Naive | Floor | Herald ÷ naive | Target | Result |',
    '|---|---|--:|--:|--:|--:|---|---|',
  ];
  for (const t of ['sse', 'ws'] as const) {
    const h = find(results, 'herald', t);
    const n = find(results, 'naive', t);
    const f = find(results, 'floor', t);
    if (!h && !n) continue;
    const hb = h?.burst;
    const nb = n?.burst;
    if (hb || nb) {
      const over = hb && nb ? hb.deliveriesPerSec / nb.deliveriesPerSec : undefined;
      rows.push(
        `| burst: deliveries/s (${z.small.toLocaleString('en-US')} subs, ${z.burstCount.toLocaleString('en-US')} publishes) | ${T_NAME[t]} | ${int(hb?.deliveriesPerSec)} | ${int(nb?.deliveriesPerSec)} | ${int(f?.burst?.deliveriesPerSec)} | ${ratio(hb?.deliveriesPerSec, nb?.deliveriesPerSec)} | ≥ ${int(GOALS.burstDeliveriesPerSec)} and ≥ ${GOALS.burstOverNaive}x naive | ${verdict(hb && hb.deliveriesPerSec >= GOALS.burstDeliveriesPerSec && (over === undefined || over >= GOALS.burstOverNaive))} |`,
        `| burst: lost deliveries | ${T_NAME[t]} | ${int(hb?.lost)} | ${int(nb?.lost)} | ${int(f?.burst?.lost)} | | 0 | ${verdict(hb && clean(hb))} |`,
      );
    }
    const hs = h?.steady;
    const ns = n?.steady;
    if (hs || ns) {
      rows.push(
        `| steady: p99 ms (${z.small.toLocaleString('en-US')} subs at ${z.steadyRate}/s) | ${T_NAME[t]} | ${ms(hs?.p99)} | ${ms(ns?.p99)} | ${ms(f?.steady?.p99)} | ${ratio(hs?.p99, ns?.p99)} | ≤ ${GOALS.steadyP99Ms} | ${verdict(hs && hs.p99 <= GOALS.steadyP99Ms && clean(hs))} |`,
      );
    }
    const hf = h?.fanout;
    const nf = n?.fanout;
    if (hf || nf) {
      rows.push(
        `| fan-out: p99 ms (${z.large.toLocaleString('en-US')} subs at ${z.fanoutRate}/s) | ${T_NAME[t]} | ${ms(hf?.p99)} | ${ms(nf?.p99)} | ${ms(f?.fanout?.p99)} | ${ratio(hf?.p99, nf?.p99)} | ≤ ${GOALS.fanoutP99Ms} | ${verdict(hf && hf.p99 <= GOALS.fanoutP99Ms)} |`,
        `| fan-out: lost deliveries | ${T_NAME[t]} | ${int(hf?.lost)} | ${int(nf?.lost)} | ${int(f?.fanout?.lost)} | | 0 | ${verdict(hf && clean(hf))} |`,
      );
    }
    const hi = h?.idle;
    const ni = n?.idle;
    if (hi?.perConnLarge !== undefined || ni?.perConnLarge !== undefined) {
      rows.push(
        `| idle: RSS per connection (${z.large.toLocaleString('en-US')} conns) | ${T_NAME[t]} | ${kib(hi?.perConnLarge)} | ${kib(ni?.perConnLarge)} | ${kib(f?.idle?.perConnLarge)} | ${ratio(hi?.perConnLarge, ni?.perConnLarge)} | ≤ ${kib(GOALS.idleBytesPerConn)} | ${verdict(hi?.perConnLarge !== undefined ? hi.perConnLarge <= GOALS.idleBytesPerConn : undefined)} |`,
      );
    }
  }
  return rows.join('\n');
}

/** Column names of the targets in the peers table. */
const T_LABEL: Record<TargetKind, string> = { herald: 'Herald', naive: 'Naive', floor: 'Floor', nchan: 'nchan', centrifugo: 'Centrifugo' };
const PEER_KINDS: readonly TargetKind[] = ['nchan', 'centrifugo'];

interface PeerMetric {
  name: string;
  /** The figure of one target's run, undefined when that window did not run. */
  value: (r: SuiteResult) => number | undefined;
  format: (n: number | undefined) => string;
  /** Whether a higher figure is better (deliveries/s) or a lower one (latency, memory, CPU). */
  higherIsBetter: boolean;
}

/**
 * Herald beside its peers (nchan, Centrifugo), the naive baselines and the floor: one row per
 * figure and transport, and Herald's lead over the best peer that ran in the same run (above 1:
 * Herald ahead; for latency, memory and CPU that is the peer's figure over Herald's). A peer
 * that could not run here says so in its column ("skipped", the reason under the table).
 */
export function peersTable(results: SuiteResult[], z: Sizes): string {
  const kinds = (['herald', 'naive', 'floor', 'nchan', 'centrifugo'] as const).filter((k) => results.some((r) => r.kind === k));
  if (!kinds.some((k) => PEER_KINDS.includes(k))) return '';
  const n = (x: number) => x.toLocaleString('en-US');
  const metrics: PeerMetric[] = [
    { name: `burst: deliveries/s (${n(z.small)} subs)`, value: (r) => r.burst?.deliveriesPerSec, format: int, higherIsBetter: true },
    { name: `steady: p50 ms (${n(z.small)} subs at ${z.steadyRate}/s)`, value: (r) => r.steady?.p50, format: ms, higherIsBetter: false },
    { name: `steady: p99 ms (${n(z.small)} subs at ${z.steadyRate}/s)`, value: (r) => r.steady?.p99, format: ms, higherIsBetter: false },
    { name: `fan-out: p50 ms (${n(z.large)} subs at ${z.fanoutRate}/s)`, value: (r) => r.fanout?.p50, format: ms, higherIsBetter: false },
    { name: `fan-out: p99 ms (${n(z.large)} subs at ${z.fanoutRate}/s)`, value: (r) => r.fanout?.p99, format: ms, higherIsBetter: false },
    { name: `idle: RSS per connection (${n(z.large)} conns)`, value: (r) => r.idle?.perConnLarge, format: kib, higherIsBetter: false },
    { name: `publishes/s acknowledged (burst, ≤ ${z.inflight} in flight)`, value: (r) => r.burst?.publishesPerSec, format: int, higherIsBetter: true },
    { name: 'server CPU µs per delivery (burst)', value: (r) => r.burst?.serverCpuUsPerDelivery, format: ms, higherIsBetter: false },
    { name: 'server CPU µs per delivery (steady)', value: (r) => r.steady?.serverCpuUsPerDelivery, format: ms, higherIsBetter: false },
    { name: 'lost deliveries (all windows)', value: (r) => lostAll(r), format: int, higherIsBetter: false },
  ];
  const rows = [
    `| Figure | Transport | ${kinds.map((k) => T_LABEL[k]).join(' | ')} | Herald's lead over the best peer |`,
    `|---|---|${kinds.map(() => '--:').join('|')}|--:|`,
  ];
  for (const t of ['sse', 'ws'] as const) {
    if (!results.some((r) => r.transport === t)) continue;
    for (const m of metrics) {
      const cells = kinds.map((k) => {
        const r = find(results, k, t);
        if (!r) return '';
        if (r.skipped) return 'skipped';
        const v = m.value(r);
        if (v === undefined && r.error) return 'failed';
        return m.format(v);
      });
      if (cells.every((c) => c === '–' || c === '' || c === 'skipped' || c === 'failed')) continue;
      const herald = find(results, 'herald', t);
      const hv = herald && !herald.error ? m.value(herald) : undefined;
      let best: { kind: TargetKind; v: number } | undefined;
      for (const k of PEER_KINDS) {
        const r = find(results, k, t);
        const v = r && !r.skipped ? m.value(r) : undefined;
        if (v === undefined || !Number.isFinite(v)) continue;
        if (!best || (m.higherIsBetter ? v > best.v : v < best.v)) best = { kind: k, v };
      }
      let lead = '–';
      if (m.name.startsWith('lost')) lead = '';
      else if (hv !== undefined && best && Number.isFinite(hv) && hv > 0 && best.v > 0) {
        lead = `${(m.higherIsBetter ? hv / best.v : best.v / hv).toFixed(2)}x (${T_LABEL[best.kind]})`;
      }
      rows.push(`| ${m.name} | ${T_NAME[t]} | ${cells.join(' | ')} | ${lead} |`);
    }
  }
  return rows.join('\n');
}

function lostAll(r: SuiteResult): number | undefined {
  const ms = [r.burst, r.steady, r.fanout].filter((m): m is Measurement => m !== undefined);
  return ms.length === 0 ? undefined : ms.reduce((a, m) => a + m.lost, 0);
}

function clean(m: Measurement): boolean {
  return m.lost === 0 && m.duplicates === 0 && m.failedPublishes === 0;
}

/** Every figure of every window, Herald and baseline side by side. */
export function figuresTable(results: SuiteResult[], z: Sizes): string {
  const rows: string[] = [
    '| Scenario | Transport | Server | Subs | Publishes | Publishes/s | Deliveries/s | p50 ms | p99 ms | max ms | Lost | Duplicates | Server CPU µs/delivery |',
    '|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  const scen: [keyof Pick<SuiteResult, 'burst' | 'steady' | 'fanout'>, string][] = [
    ['burst', `burst (≤ ${z.inflight} in flight)`],
    ['steady', `steady ${z.steadyRate}/s`],
    ['fanout', `fan-out ${z.fanoutRate}/s`],
  ];
  for (const [key, name] of scen) {
    for (const r of results) {
      const m = r[key];
      if (!m) continue;
      rows.push(
        `| ${name} | ${T_NAME[r.transport]} | ${r.kind} | ${int(m.subscribers)} | ${int(m.publishes)} | ${int(m.publishesPerSec)} | ${int(m.deliveriesPerSec)} | ${ms(m.p50)} | ${ms(m.p99)} | ${ms(m.max)} | ${int(m.lost)} | ${int(m.duplicates)} | ${ms(m.serverCpuUsPerDelivery)} |`,
      );
    }
  }
  const mem = ['', '| Idle memory | Transport | Server | RSS before | RSS at ' + int(z.small) + ' | per conn | RSS at ' + int(z.large) + ' | per conn |', '|---|---|---|--:|--:|--:|--:|--:|'];
  for (const r of results) {
    const i = r.idle;
    if (!i) continue;
    mem.push(
      `| idle | ${T_NAME[r.transport]} | ${r.kind} | ${mib(i.rssStart)} | ${mib(i.rssSmall)} | ${kib(i.perConnSmall)} | ${i.rssLarge ? mib(i.rssLarge) : '–'} | ${kib(i.perConnLarge)} |`,
    );
  }
  return rows.join('\n') + (mem.length > 3 ? '\n' + mem.join('\n') : '');
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** The whole results page (bench/results/latest.md). */
export function resultsPage(results: SuiteResult[], z: Sizes, info: RunInfo, notes: string[]): string {
  const lines = [
    `# Herald benchmark results`,
    '',
    `- Date: ${info.date}`,
    `- Machine: ${info.cpus}; Node.js ${info.node}; load average before the run: ${info.loadBefore}`,
    `- Command: \`${info.command}\`${info.quick ? ' (quick smoke run: smaller sizes, not comparable with the goals)' : ''}`,
    `- Herald store: ${info.store}; ${info.workers} subscriber processes, 1 publisher process, server and load on the same machine`,
    `- Events: ~100-byte JSON payloads on one channel; burst = as fast as the publisher goes with at most ${z.inflight} requests in flight; rate windows last ${z.rateSeconds} s`,
    '',
    '## Goals',
    '',
    goalsTable(results, z),
    '',
    'Herald ÷ naive: higher is better for deliveries/s, lower is better for latency and memory. ' +
      'Floor: the least work a Node.js server can do for the same load (bench/floor-server.ts: no log, no HTTP framing, ' +
      'one write per subscriber per round, as Herald writes), i.e. what this machine allows at all. ' +
      'Lost = acknowledged publishes × subscribers − deliveries seen within 20 s of the last acknowledgement.',
    '',
    '## All figures',
    '',
    figuresTable(results, z),
    '',
  ];
  const peers = peersTable(results, z);
  if (peers) {
    lines.splice(
      lines.indexOf('## All figures'),
      0,
      '## Beside its peers',
      '',
      ...(info.peers.length > 0 ? [`Peers: ${info.peers.join('; ')}. Configurations: bench/peers/nchan.conf, bench/peers.ts (centrifugoConfig).`, ''] : []),
      peers,
      '',
      "Herald's lead over the best peer: the best peer's figure against Herald's, from the same run (above 1: Herald ahead; " +
        'for deliveries/s and publishes/s Herald ÷ peer, for latency, memory and CPU peer ÷ Herald). ' +
        'Server CPU and memory cover every process of a server (nginx: master and worker). ' +
        'The machine is shared with the load: compare figures within one run, not across runs.',
      '',
    );
  }
  const failures = results.filter((r) => r.error || r.slowCutOffs > 0 || r.skipped);
  if (failures.length > 0 || notes.length > 0) {
    lines.push('## Notes', '');
    for (const r of failures) {
      if (r.skipped) lines.push(`- ${r.kind} ${T_NAME[r.transport]}: skipped: ${r.skipped}`);
      if (r.error) lines.push(`- ${r.kind} ${T_NAME[r.transport]}: run failed: ${r.error}`);
      if (r.slowCutOffs > 0) lines.push(`- ${r.kind} ${T_NAME[r.transport]}: ${r.slowCutOffs} subscribers cut off as slow`);
    }
    for (const n of notes) lines.push(`- ${n}`);
    lines.push('');
  }
  return lines.join('\n');
}

/**
 * The paired run: SSE and WebSocket subscribers of one Herald in the same steady windows, the
 * WebSocket p99 over the SSE p99 of each window, and the median of those ratios against the goal.
 */
export function pairedTable(windows: readonly PairedWindow[], z: Sizes): string {
  if (windows.length === 0) return '';
  const rows = [
    `| Window (${z.small.toLocaleString('en-US')} subs, half SSE and half WebSocket, ${z.steadyRate}/s) | SSE p50 / p99 ms | WebSocket p50 / p99 ms | WebSocket p99 ÷ SSE p99 | Lost |`,
    '|---|--:|--:|--:|--:|',
  ];
  const ratios = windows.map((w) => w.ws.p99 / w.sse.p99);
  windows.forEach((w, i) => rows.push(`| ${i + 1} | ${ms(w.sse.p50)} / ${ms(w.sse.p99)} | ${ms(w.ws.p50)} / ${ms(w.ws.p99)} | ${ratios[i]!.toFixed(2)}x | ${int(w.window.lost)} |`));
  const median = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)]!;
  rows.push(`| median | | | **${median.toFixed(2)}x** (goal ≤ ${GOALS.wsOverSseP99}x: ${verdict(median <= GOALS.wsOverSseP99)}) | |`);
  return rows.join('\n');
}
