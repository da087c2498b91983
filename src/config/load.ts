import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULTS } from './defaults.js';
import { applyRenamedKeys } from './renamed-keys.js';
import { configSchema, MAX_WORKERS, type BackendConfig, type Config, type FileBackend, type FileConfig } from './schema.js';

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
 * (src/config/renamed-keys.ts) or a `store` key (replaced by `backend`) is read under its new
 * name and listed once in `deprecations`, which the CLI logs at start.
 */
export function buildConfig(
  file: unknown,
  env: {
    PORT?: string | undefined;
    HOST?: string | undefined;
    HERALD_DATA_DIR?: string | undefined;
    HERALD_BACKEND?: string | undefined;
    HERALD_WORKERS?: string | undefined;
    HERALD_REDIS_URL?: string | undefined;
    HERALD_DATABASE_URL?: string | undefined;
    HERALD_TLS_CERT?: string | undefined;
    HERALD_TLS_KEY?: string | undefined;
  } = {},
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
  const deprecations: string[] = [...renamed.warnings];
  const { store: _legacy, backend: _chosen, ...rest } = parsed.data;
  const backend = resolveBackend(parsed.data, env.HERALD_BACKEND, { redis: env.HERALD_REDIS_URL, database: env.HERALD_DATABASE_URL }, deprecations);
  if (backend.type === 'sqlite' && !isAbsolute(backend.file) && backend.file !== ':memory:') {
    backend.file = resolve(dataDir, backend.file);
  }
  const cluster = { workers: parseWorkers(env.HERALD_WORKERS, 'HERALD_WORKERS') ?? rest.cluster.workers };
  if (cluster.workers !== 1 && (backend.type === 'memory' || (backend.type === 'sqlite' && backend.file === ':memory:'))) {
    // Each process would keep a log of its own: different ids, and events only some clients see.
    throw new ConfigError(
      `cluster.workers is ${cluster.workers}, but a memory log lives in one process: ` +
        'use backend.type "sqlite" (a file) or "redis" to run several workers',
    );
  }
  const tls = resolveTls(rest.tls, env.HERALD_TLS_CERT, env.HERALD_TLS_KEY);
  const cfg: Config = {
    ...rest,
    ...(tls ? { tls } : {}),
    cluster,
    backend,
    host: env.HOST || '0.0.0.0',
    port,
    dataDir,
    deprecations,
  };
  return deepFreeze(cfg);
}

/**
 * A worker count given outside the file (`HERALD_WORKERS`, `--workers`, named by `source`): an
 * integer from 1 to MAX_WORKERS or `auto`; undefined when not given.
 */
export function parseWorkers(value: string | undefined, source: string): number | 'auto' | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'auto') return value;
  const n = /^\d{1,6}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_WORKERS)) {
    throw new ConfigError(`${source} must be an integer from 1 to ${MAX_WORKERS}, or "auto", got "${value}"`);
  }
  return n;
}

/**
 * `tls` from the file, or from HERALD_TLS_CERT and HERALD_TLS_KEY (both, which win over the
 * file's), with relative paths taken from the working directory. The files are read at start
 * (src/http/tls.ts), where a missing or unreadable one is named.
 */
function resolveTls(
  file: FileConfig['tls'],
  envCert: string | undefined,
  envKey: string | undefined,
): { cert: string; key: string } | undefined {
  const cert = envCert || undefined;
  const key = envKey || undefined;
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError('HERALD_TLS_CERT and HERALD_TLS_KEY go together: set both or neither');
  }
  const chosen = cert !== undefined && key !== undefined ? { cert, key } : file;
  return chosen && { cert: resolve(chosen.cert), key: resolve(chosen.key) };
}

const BACKEND_TYPES = ['sqlite', 'memory', 'redis', 'postgres'] as const;
type BackendType = (typeof BACKEND_TYPES)[number];

/** The default backend of a type, as DEFAULTS describes it. */
function defaultBackend(type: BackendType = DEFAULTS.backend.type): FileBackend {
  const d = DEFAULTS.backend;
  if (type === 'memory') return { type };
  if (type === 'redis') return { type, keyPrefix: d.keyPrefix, waitReplicas: d.waitReplicas, waitTimeoutSeconds: d.waitTimeoutSeconds };
  if (type === 'postgres') return { type, schema: d.schema, migrate: d.migrate };
  return { type, file: d.file, synchronous: d.synchronous };
}

/**
 * The one `backend` union, from the file's `backend`, or else its deprecated `store` keys (each
 * mapped, with one warning naming old and new keys), then `HERALD_BACKEND` (a type: `sqlite` or
 * `memory`), which wins over the file's type so one config can run on either.
 */
function resolveBackend(
  file: FileConfig,
  envType: string | undefined,
  envUrls: { redis: string | undefined; database: string | undefined },
  deprecations: string[],
): BackendConfig {
  const { store, backend } = file;
  if (store && backend) throw new ConfigError('config keys "store" and "backend" are both set: keep "backend" only');
  let chosen: FileBackend = backend ? { ...backend } : defaultBackend();
  if (store) {
    const used: [string, string][] = [];
    if (store.type !== undefined) used.push(['store.type', 'backend.type']);
    if (store.sqlite?.file !== undefined) used.push(['store.sqlite.file', 'backend.file']);
    if (store.sqlite?.synchronous !== undefined) used.push(['store.sqlite.synchronous', 'backend.synchronous']);
    if (used.length === 0) used.push(['store', 'backend']);
    deprecations.push(
      `config ${used.length > 1 ? 'keys' : 'key'} ${used.map(([o]) => `"${o}"`).join(', ')} ` +
        `${used.length > 1 ? 'are' : 'is'} deprecated: use ${used.map(([, n]) => `"${n}"`).join(', ')}`,
    );
    chosen =
      store.type === 'memory'
        ? { type: 'memory' }
        : {
            type: 'sqlite',
            file: store.sqlite?.file ?? DEFAULTS.backend.file,
            synchronous: store.sqlite?.synchronous ?? DEFAULTS.backend.synchronous,
          };
  }
  const redisUrl = envUrls.redis || undefined;
  const databaseUrl = envUrls.database || undefined;
  if (envType !== undefined && envType !== '') {
    if (!(BACKEND_TYPES as readonly string[]).includes(envType)) {
      throw new ConfigError(`HERALD_BACKEND must be "sqlite", "memory", "redis" or "postgres", got "${envType}"`);
    }
    if (envType !== chosen.type) chosen = defaultBackend(envType as BackendType);
  } else if (!backend && !store && (redisUrl !== undefined) !== (databaseUrl !== undefined)) {
    // One shared backend's URL alone, on a config that chooses no backend: the nodes share it.
    chosen = defaultBackend(redisUrl !== undefined ? 'redis' : 'postgres');
  }
  if (chosen.type === 'redis') {
    const url = redisUrl ?? chosen.url;
    if (url === undefined) {
      throw new ConfigError('config key "backend.url": a redis backend needs its URL (or set HERALD_REDIS_URL)');
    }
    return { ...chosen, url };
  }
  if (chosen.type === 'postgres') {
    const url = databaseUrl ?? chosen.url;
    if (url === undefined) {
      throw new ConfigError('config key "backend.url": a postgres backend needs its URL (or set HERALD_DATABASE_URL)');
    }
    return { ...chosen, url };
  }
  return chosen;
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
