import Database from 'better-sqlite3';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { UsageError } from './token-command.js';

export const BACKUP_USAGE = `usage: herald backup FILE [--config FILE]
Copies the SQLite database of backend.file (under HERALD_DATA_DIR) to FILE with SQLite's online
backup, consistent while Herald runs and publishes: the copy holds every event acknowledged
before it started. FILE must not exist yet. Restore: stop Herald, put FILE in place of the
database file (removing its -wal and -shm files), start Herald.`;

/**
 * Pages copied per backup step: all of them. SQLite restarts a step-wise backup from the first
 * page whenever another connection (the running Herald) writes, so under steady publishing a
 * backup in small steps might never finish; one step copies a single read snapshot, and in WAL
 * mode that snapshot never blocks Herald's writers.
 */
const BACKUP_PAGES_PER_STEP = 0x7fffffff;

/** Parses `herald backup` arguments (argv after `backup`); returns the destination path. */
export function parseBackupArgs(argv: readonly string[]): string {
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config') i++;
    else if (arg.startsWith('--config=')) continue;
    else if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
    else positional.push(arg);
  }
  if (positional.length !== 1) throw new UsageError('name one file to write the backup to');
  return positional[0]!;
}

export interface BackupResult {
  source: string;
  destination: string;
  pages: number;
}

/** Runs `herald backup`: copies the live database to the destination, checked, then renamed into place. */
export async function backupCommand(argv: readonly string[], config: Config): Promise<BackupResult> {
  const destination = resolve(parseBackupArgs(argv));
  if (config.backend.type !== 'sqlite' || config.backend.file === ':memory:') {
    throw new UsageError(`backend.type is "${config.backend.type}": only a SQLite file can be backed up this way`);
  }
  const source = config.backend.file;
  if (!existsSync(source)) throw new UsageError(`no database at ${source} (backend.file under HERALD_DATA_DIR)`);
  if (existsSync(destination)) throw new UsageError(`${destination} exists already; name a new file`);
  // Written beside the destination and renamed when complete and checked, so that FILE is
  // either a whole backup or absent, never a half-written copy that looks like one.
  const partial = join(dirname(destination), `.${basename(destination)}.partial`);
  rmSync(partial, { force: true });
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const progress = await db.backup(partial, { progress: () => BACKUP_PAGES_PER_STEP });
    const copy = new Database(partial, { fileMustExist: true });
    try {
      const check = copy.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`the copy failed its integrity check: ${String(check)}`);
    } finally {
      copy.close();
    }
    renameSync(partial, destination);
    return { source, destination, pages: progress.totalPages };
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  } finally {
    db.close();
  }
}
