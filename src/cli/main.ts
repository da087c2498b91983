#!/usr/bin/env node
import { createHerald, StartupError } from '../app.js';
import { buildConfig, ConfigError, loadConfigFile } from '../config/load.js';
import { createLogger } from '../observability/logger.js';
import { BACKUP_USAGE, backupCommand } from './backup-command.js';
import { TOKEN_USAGE, tokenCommand, UsageError } from './token-command.js';

/**
 * The only place that reads process.env and argv or calls process.exit.
 * Usage: herald [--config FILE]   (or HERALD_CONFIG=FILE); PORT, HOST, HERALD_DATA_DIR.
 *        herald token ...   herald backup FILE
 */
function configPath(argv: string[]): string | undefined {
  const i = argv.indexOf('--config');
  if (i >= 0) {
    const path = argv[i + 1];
    if (!path) throw new ConfigError('--config needs a file path');
    return path;
  }
  const eq = argv.find((a) => a.startsWith('--config='));
  if (eq) return eq.slice('--config='.length);
  return process.env.HERALD_CONFIG || undefined;
}

/** `herald token ...`: mints a development token (src/cli/token-command.ts). */
async function token(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${TOKEN_USAGE}\n`);
    return;
  }
  try {
    const path = configPath(argv);
    const config = buildConfig(path ? loadConfigFile(path) : {}, process.env);
    process.stdout.write(`${await tokenCommand(argv, config, process.env.HERALD_JWT_SECRET || undefined)}\n`);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`herald token: ${err.message}\n${err instanceof UsageError ? TOKEN_USAGE + '\n' : ''}`);
      process.exit(2);
    }
    throw err;
  }
}

/** `herald backup FILE`: an online copy of the SQLite database (src/cli/backup-command.ts). */
async function backup(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${BACKUP_USAGE}\n`);
    return;
  }
  try {
    const path = configPath(argv);
    const config = buildConfig(path ? loadConfigFile(path) : {}, process.env);
    const r = await backupCommand(argv, config);
    process.stdout.write(`backed up ${r.source} to ${r.destination} (${r.pages} pages)\n`);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`herald backup: ${err.message}\n${err instanceof UsageError ? BACKUP_USAGE + '\n' : ''}`);
      process.exit(2);
    }
    process.stderr.write(`herald backup: ${(err as Error).message ?? String(err)}\n`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === 'token') return token(process.argv.slice(3));
  if (process.argv[2] === 'backup') return backup(process.argv.slice(3));
  let config;
  try {
    const path = configPath(process.argv.slice(2));
    config = buildConfig(path ? loadConfigFile(path) : {}, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`herald: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.log.level);
  for (const message of config.deprecations) log.warn(message);
  const herald = createHerald(config, log);
  const url = await herald.listen();
  log.info(
    { url, host: config.host, port: config.port, backend: config.backend.type, dataDir: config.dataDir },
    'herald listening',
  );
  if (herald.security.devMode) {
    log.warn(
      'dev mode: no auth is configured, so POST /v1/publish answers loopback clients only; ' +
        'subscriptions and the seed routes are open to everyone',
    );
  } else {
    const { apiKeys, jwt, publicChannels } = config.auth;
    log.info(
      {
        apiKeys: apiKeys.length,
        jwt: jwt ? (jwt.secret ? 'secret' : jwt.publicKey ? 'publicKey' : 'jwksUrl') : 'off',
        publicChannels,
      },
      'auth: publishing and private channels need credentials',
    );
  }
  if (config.backend.type === 'memory') log.warn('backend.type is "memory": events are lost on restart');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutSeconds * 1000 + 1000);
    force.unref();
    herald.close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  // A cause the operator can fix is one line; anything else is a bug, and its stack helps.
  const text = err instanceof StartupError ? err.message : ((err as Error).stack ?? String(err));
  process.stderr.write(`herald: failed to start: ${text}\n`);
  process.exit(1);
});
