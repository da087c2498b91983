import cluster from 'node:cluster';
import { createHerald, StartupError, type HeraldParts } from '../app.js';
import { buildConfig, ConfigError, loadConfigFile } from '../config/load.js';
import { readTlsFiles } from '../http/tls.js';
import { createLogger } from '../observability/logger.js';
import { runPrimary, workerCount, type WorkerListening } from './cluster.js';
import { configPath, workersFlag } from './serve-args.js';

/**
 * `herald [serve] [--config FILE] [--workers N|auto]`: runs Herald until SIGTERM or SIGINT. It owns
 * the process: its signals, and its exit when Herald has stopped. Arguments it does not know are
 * left alone, as they always were.
 */
async function serve(argv: string[]): Promise<void> {
  let config;
  try {
    const path = configPath(argv);
    const workers = workersFlag(argv);
    const env = workers ? { ...process.env, HERALD_WORKERS: workers } : process.env;
    config = buildConfig(path ? loadConfigFile(path) : {}, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`herald: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const root = createLogger(config.log.level);
  // A worker's lines name it: several processes write to one stdout.
  const log = cluster.isWorker ? root.child({ worker: cluster.worker!.id }) : root;
  const workers = workerCount(config.cluster.workers);
  if (workers > 1 && cluster.isPrimary) {
    for (const message of config.deprecations) log.warn(message);
    // Once, here: a missing certificate is one line from the primary, not one per worker.
    if (config.tls) readTlsFiles(config.tls);
    const { shutdownTimeoutSeconds } = config;
    runPrimary({ workers, log, shutdownTimeoutSeconds, onExit: (code) => process.exit(code) });
    return;
  }
  // Deprecations are logged once, by the primary.
  if (cluster.isPrimary) for (const message of config.deprecations) log.warn(message);
  const herald = createHerald(config, log, cluster.isWorker ? workerParts() : {});
  if (cluster.isWorker) {
    // Which process answered: for operators (and tests) of a port that several workers serve.
    const id = String(cluster.worker!.id);
    herald.app.addHook('onRequest', (_req, reply, done) => {
      reply.raw.setHeader('Herald-Worker', id);
      done();
    });
  }
  const url = await herald.listen();
  const where = { url, host: config.host, port: config.port, backend: config.backend.type, dataDir: config.dataDir };
  if (cluster.isWorker) {
    log.info({ ...where, pid: process.pid }, 'worker listening');
    const listening: WorkerListening = { type: 'herald.listening', url };
    process.send!(listening);
  } else {
    log.info(where, 'herald listening');
  }
  // Said once per start: by the only process, or by the first worker.
  const first = !cluster.isWorker || cluster.worker!.id === 1;
  if (first && herald.security.devMode) {
    log.warn(
      'dev mode: no auth is configured, so POST /v1/publish answers loopback clients only; ' +
        'subscriptions and the seed routes are open to everyone',
    );
  } else if (first) {
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
  // The primary is gone (killed): nobody relays wake-ups or replaces this worker any more.
  if (cluster.isWorker) process.on('disconnect', () => stop('primary gone'));
}

/** A worker's side of the IPC channel to the primary, for its IpcBroker (src/brokers/ipc-broker.ts). */
function workerParts(): HeraldParts {
  return {
    ipc: {
      send: (message) =>
        new Promise<void>((resolve, reject) => {
          if (!process.connected) return reject(new Error('the IPC channel to the primary is closed'));
          process.send!(message, undefined, undefined, (err: Error | null) => (err ? reject(err) : resolve()));
        }),
      listen: (listener) => {
        process.on('message', listener);
        return () => process.off('message', listener);
      },
    },
  };
}


/** Runs Herald; a start that fails exits 1 with its cause. */
export function serveMain(argv: string[]): void {
  serve(argv).catch((err: unknown) => {
    // A cause the operator can fix is one line; anything else is a bug, and its stack helps.
    const text = err instanceof StartupError ? err.message : ((err as Error).stack ?? String(err));
    process.stderr.write(`herald: failed to start: ${text}\n`);
    process.exit(1);
  });
}
