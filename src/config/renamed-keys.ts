/**
 * Config keys renamed so that every duration follows one rule (README, "Configuration"): seconds
 * (`…Seconds`) unless the value is commonly below a second or goes as-is to a protocol or library
 * that counts milliseconds (`…Ms`). An old name is still read, converted, and named in one
 * warning at start, so a config that worked keeps working.
 */
interface RenamedKey {
  readonly section: string;
  readonly from: string;
  readonly to: string;
  /** The old value in the new key's unit. */
  readonly convert: (old: number) => number;
}

const msToSeconds = (ms: number) => ms / 1000;

export const RENAMED_KEYS: readonly RenamedKey[] = [
  { section: 'kafka', from: 'lagIntervalMs', to: 'lagIntervalSeconds', convert: msToSeconds },
  { section: 'kafka', from: 'retryMaxDelayMs', to: 'retryMaxDelaySeconds', convert: msToSeconds },
];

/**
 * The config file with every old key replaced by its new name and unit (the input is not
 * changed), and one warning per old key found; or the problem, naming the key (both names at
 * once, or an old value that is not a number).
 */
export function applyRenamedKeys(file: unknown): { file: unknown; warnings: string[]; problem?: string } {
  if (file === null || typeof file !== 'object' || Array.isArray(file)) return { file, warnings: [] };
  const out: Record<string, unknown> = { ...(file as Record<string, unknown>) };
  const warnings: string[] = [];
  for (const k of RENAMED_KEYS) {
    const section = out[k.section];
    if (section === null || typeof section !== 'object' || Array.isArray(section) || !(k.from in section)) continue;
    const s: Record<string, unknown> = { ...(section as Record<string, unknown>) };
    const old = s[k.from];
    if (k.to in s) return { file, warnings, problem: `config key "${k.section}.${k.from}": give only "${k.section}.${k.to}" (its new name)` };
    if (typeof old !== 'number') return { file, warnings, problem: `config key "${k.section}.${k.from}": must be a number` };
    delete s[k.from];
    s[k.to] = k.convert(old);
    out[k.section] = s;
    warnings.push(`config key "${k.section}.${k.from}" is deprecated: use "${k.section}.${k.to}" (${s[k.to]} for ${old})`);
  }
  return { file: out, warnings };
}
