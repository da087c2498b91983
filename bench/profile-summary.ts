import { readFileSync } from 'node:fs';

/**
 * Reads a V8 `.cpuprofile` (written by `node --cpu-prof`) and names where the time went: self
 * time per function and per area (Herald's own files, each package, Node internals, GC, idle).
 * Enough to see what limits a figure without opening DevTools; the file opens there too.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  /** Everything except `(idle)`. */
  busyMs: number;
  functions: { name: string; ms: number }[];
  areas: { name: string; ms: number }[];
}

function area(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/dist\/(src|bench)\/(.+)\.js$/.exec(url);
  if (own) return `herald ${own[1]}/${own[2]}`;
  if (url.startsWith('node:')) return 'node internals';
  return url;
}

export function summarizeProfile(file: string, top = 20): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const fns = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    const fn = functionName || '(anonymous)';
    total += us;
    if (fn === '(idle)') idle += us;
    const short = url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '');
    const key = url ? `${fn} ${short}:${lineNumber + 1}` : fn;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const a = area(url, fn);
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, us]) => ({ name, ms: us / 1000 }));
  return { totalMs: total / 1000, busyMs: (total - idle) / 1000, functions: sorted(fns), areas: sorted(areas) };
}

/** The summary as markdown lists, percentages of busy (non-idle) time. */
export function formatProfile(s: ProfileSummary, file: string): string {
  const pct = (msv: number) => `${((100 * msv) / Math.max(1, s.busyMs)).toFixed(1)}%`;
  return [
    `CPU profile ${file}: ${(s.busyMs / 1000).toFixed(1)} s busy of ${(s.totalMs / 1000).toFixed(1)} s`,
    '',
    'By area (self time, % of busy):',
    ...s.areas.filter((a) => a.name !== '(idle)').map((a) => `  ${pct(a.ms).padStart(6)}  ${a.name}`),
    '',
    'Top functions (self time, % of busy):',
    ...s.functions.filter((f) => f.name !== '(idle)').map((f) => `  ${pct(f.ms).padStart(6)}  ${f.name}`),
  ].join('\n');
}

// `node dist/bench/profile-summary.js FILE.cpuprofile` prints the summary of any profile.
if (process.argv[1]?.endsWith('profile-summary.js') && process.argv[2]) {
  console.log(formatProfile(summarizeProfile(process.argv[2]), process.argv[2]));
}
