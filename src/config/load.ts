import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { applyRenamedKeys } from './renamed-keys.js';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Deep-freezes the config so nothing changes it after start. */
function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Validates a parsed config object (from the file, or `{}`), adds the environment's settings
 * and returns the frozen result. The error names the first bad key by its path. A renamed key
 * (src/config/renamed-keys.ts) is read under its new name and reported to `deprecated`, once.
 */
export function buildConfig(
  file: unknown,
  env: { PORT?: string | undefined; HOST?: string | undefined; HERALD_DATA_DIR?: string | undefined } = {},
  deprecated: (warning: string) => void = () => {},
): Config {
  const renamed = applyRenamedKeys(file);
  if (renamed.problem !== undefined) throw new ConfigError(renamed.problem);
  const parsed = configSchema.safeParse(renamed.file ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    let path = issue.path.join('.');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      const key = (issue as z.core.$ZodIssueUnrecognizedKeys).keys[0]!;
      path = path ? `${path}.${key}` : key;
      message = 'unknown key';
    }
    throw new ConfigError(`config key "${path || '(root)'}": ${message}`);
  }
  const port = env.PORT === undefined || env.PORT === '' ? 8080 : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`PORT must be an integer from 0 to 65535, got "${env.PORT}"`);
  }
  const dataDir = resolve(env.HERALD_DATA_DIR || './data');
  const cfg: Config = {
    ...parsed.data,
    host: env.HOST || '0.0.0.0',
    port,
    dataDir,
  };
  if (!isAbsolute(cfg.store.sqlite.file) && cfg.store.sqlite.file !== ':memory:') {
    cfg.store.sqlite.file = resolve(dataDir, cfg.store.sqlite.file);
  }
  for (const w of renamed.warnings) deprecated(w);
  return deepFreeze(cfg);
}

/** Reads and validates the JSON config file at `path`. */
export function loadConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}
