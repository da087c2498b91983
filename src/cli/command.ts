import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './token-command.js';

/**
 * Exit codes of every `herald` command (docs/cli.md). A script can tell a refusal by Herald
 * (1, with the registry code on stderr) from a mistake on the command line (2) and from a Herald
 * that did not answer at all (3).
 */
export const EXIT = {
  ok: 0,
  /** Herald answered with an error (its code and message are printed), or the command failed. */
  failed: 1,
  /** The command line or the config file is wrong; the usage is printed. */
  usage: 2,
  /** No answer from Herald: refused, unresolvable, reset before an answer, or timed out. */
  unreachable: 3,
} as const;

/** What a command may use of the process, handed to it by src/cli/main.ts. */
export interface CommandContext {
  readonly env: NodeJS.ProcessEnv;
  /** Writes one line to stdout. */
  readonly out: (line: string) => void;
  /** Writes one line to stderr. */
  readonly err: (line: string) => void;
  /** Aborted on SIGINT or SIGTERM: a long-running command stops cleanly and returns. */
  readonly signal: AbortSignal;
}

/** One row of the command table (src/cli/commands.ts). */
export interface Command {
  readonly name: string;
  /** One line for `herald help`. */
  readonly summary: string;
  /** What `herald <name> --help` prints. */
  readonly usage: string;
  /** Runs with the arguments after the command's name; resolves with the exit code. */
  run(argv: string[], ctx: CommandContext): Promise<number>;
}

/** `--url` and `--key`, taken by every command that talks to a running Herald. */
export const REMOTE_OPTIONS = {
  url: { type: 'string' },
  key: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const REMOTE_USAGE = `  --url URL    Herald's base URL (default HERALD_URL, else http://127.0.0.1:8080)
  --key KEY    an API key, sent as "Authorization: Bearer KEY" (default HERALD_API_KEY)
  -h, --help   this help`;

/** node:util parseArgs, strict, with its errors turned into usage errors. */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}

/** A whole number within bounds, from an option's text. */
export function wholeNumber(text: string | undefined, name: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} is a whole number from ${min} to ${max}`);
  return n;
}

/** An event as one terminal line: `<id> [<channel>] <type> <data as JSON>`. */
export function eventLine(e: { id: string; channel?: string; type: string; data: unknown }): string {
  return [e.id, ...(e.channel === undefined ? [] : [e.channel]), e.type, JSON.stringify(e.data)].join(' ');
}
