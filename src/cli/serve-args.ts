import { ConfigError, parseWorkers } from '../config/load.js';

export const SERVE_USAGE = `usage: herald [serve] [--config FILE] [--workers N|auto]
Starts Herald (what \`herald\` with no command does). Settings come from the config file
(--config or HERALD_CONFIG) and the environment: PORT, HOST, HERALD_DATA_DIR, HERALD_WORKERS, ...
(README, "Configuration"). SIGTERM or SIGINT stops it gracefully.
  --config FILE       the JSON config file
  --workers N|auto    worker processes sharing the port (auto: one per core; default 1)
  -h, --help          this help`;

/** `--config FILE` (or `--config=FILE`), else HERALD_CONFIG. */
export function configPath(argv: string[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  const i = argv.indexOf('--config');
  if (i >= 0) {
    const path = argv[i + 1];
    if (!path) throw new ConfigError('--config needs a file path');
    return path;
  }
  const eq = argv.find((a) => a.startsWith('--config='));
  if (eq) return eq.slice('--config='.length);
  return env.HERALD_CONFIG || undefined;
}

/** `--workers N|auto` (or `--workers=N`): wins over HERALD_WORKERS and `cluster.workers`. */
export function workersFlag(argv: string[]): string | undefined {
  const i = argv.indexOf('--workers');
  if (i >= 0) {
    const value = argv[i + 1];
    if (!value) throw new ConfigError('--workers needs a number or "auto"');
    parseWorkers(value, '--workers');
    return value;
  }
  const eq = argv.find((a) => a.startsWith('--workers='));
  if (eq) parseWorkers(eq.slice('--workers='.length), '--workers');
  return eq?.slice('--workers='.length);
}
