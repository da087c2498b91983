import type { Config } from '../config/schema.js';
import { createPostgresPool } from '../stores/postgres-connection.js';
import { migratePostgres } from '../stores/postgres-migrations.js';
import { UsageError } from './token-command.js';

export const MIGRATE_USAGE = `usage: herald migrate [--config FILE]
Applies the Postgres schema steps Herald needs (backend.type "postgres": backend.url or
HERALD_DATABASE_URL, backend.schema) and exits. Safe to run from several places at once and to
run again: each step is applied once, under a lock. Herald applies them at start too, unless
backend.migrate is false (for teams that migrate separately, before the nodes start).`;

/** Parses `herald migrate` arguments (argv after `migrate`): only --config is known. */
function parseMigrateArgs(argv: readonly string[]): void {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config') i++;
    else if (!arg.startsWith('--config=')) throw new UsageError(`unknown argument ${arg}`);
  }
}

/** Runs `herald migrate`; resolves to the steps it applied (`set:version`), empty when none was due. */
export async function migrateCommand(argv: readonly string[], config: Config): Promise<{ schema: string; applied: string[] }> {
  parseMigrateArgs(argv);
  const backend = config.backend;
  if (backend.type !== 'postgres') {
    throw new UsageError(`backend.type is "${backend.type}": only a Postgres backend has migrations to run (SQLite migrates its file at start)`);
  }
  const pool = createPostgresPool({ url: backend.url, maxConnections: 1, applicationName: 'herald migrate' });
  try {
    return { schema: backend.schema, applied: await migratePostgres(pool, backend.schema) };
  } finally {
    await pool.end();
  }
}
