#!/usr/bin/env node
import { ConfigError } from '../config/load.js';
import { EXIT, type Command, type CommandContext } from './command.js';
import { findCommand, HELP_USAGE, helpText, SERVE } from './commands.js';
import { HeraldHttpError, UnreachableError } from './remote.js';
import { UsageError } from './token-command.js';

/**
 * The only place that reads process.env and argv or calls process.exit (with the server itself,
 * src/cli/serve-command.ts). `herald` with no command, or with options only, starts Herald as it
 * always did; `herald COMMAND ...` runs a row of the command table (src/cli/commands.ts).
 */

/** Exit code of a command stopped by a signal before it finished (128 + SIGINT's number, as shells report it). */
const EXIT_INTERRUPTED = 130;
/** ms a command may take to stop after SIGINT or SIGTERM (tail closes its stream) before the process exits anyway. */
const INTERRUPT_GRACE_MS = 2_000;

const wantsHelp = (argv: readonly string[]) => argv.includes('--help') || argv.includes('-h');

function write(stream: NodeJS.WriteStream): (line: string) => void {
  return (line) => void stream.write(`${line}\n`);
}

/** Runs one command and turns what it throws into a message on stderr and an exit code. */
async function runCommand(command: Command, argv: string[]): Promise<number> {
  const interrupt = new AbortController();
  const stop = () => {
    interrupt.abort();
    // A command busy with something the signal cannot abort (a backup) still ends promptly.
    setTimeout(() => process.exit(EXIT_INTERRUPTED), INTERRUPT_GRACE_MS).unref();
  };
  // The first SIGINT asks the command to stop (tail prints where it got to); a second one kills.
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const ctx: CommandContext = { env: process.env, out: write(process.stdout), err: write(process.stderr), signal: interrupt.signal };
  const say = (text: string) => process.stderr.write(`herald ${command.name}: ${text}\n`);
  try {
    return await command.run(argv, ctx);
  } catch (err) {
    if (interrupt.signal.aborted) return EXIT_INTERRUPTED;
    if (err instanceof UsageError) {
      say(`${err.message}\n${command.usage}`);
      return EXIT.usage;
    }
    if (err instanceof ConfigError) {
      say(err.message);
      return EXIT.usage;
    }
    if (err instanceof HeraldHttpError) {
      say(`${err.code}: ${err.message} (HTTP ${err.status})`);
      return EXIT.failed;
    }
    if (err instanceof UnreachableError) {
      say(err.message);
      return EXIT.unreachable;
    }
    say((err as Error).message ?? String(err));
    return EXIT.failed;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const [name, ...rest] = argv;
  // A reader that went away (`herald tail ... | head`) ends the command, quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.ok);
    throw err;
  });
  if (name === undefined || (name.startsWith('-') && !wantsHelp([name])) || name === 'serve') {
    const serveArgs = name === 'serve' ? rest : argv;
    if (wantsHelp(serveArgs) && name === 'serve') return void process.stdout.write(`${SERVE.usage}\n`);
    // Loaded only to serve: the client commands start without the server's modules.
    const { serveMain } = await import('./serve-command.js');
    return serveMain(serveArgs);
  }
  if (name === 'help' || wantsHelp([name])) {
    const topic = name === 'help' ? (wantsHelp(rest) ? 'help' : rest[0]) : undefined;
    if (topic === undefined) return void process.stdout.write(`${helpText()}\n`);
    const usage = topic === 'serve' ? SERVE.usage : topic === 'help' ? HELP_USAGE : findCommand(topic)?.usage;
    if (usage === undefined) {
      process.stderr.write(`herald help: unknown command ${topic}\n${helpText()}\n`);
      process.exitCode = EXIT.usage;
      return;
    }
    return void process.stdout.write(`${usage}\n`);
  }
  const command = findCommand(name);
  if (!command) {
    process.stderr.write(`herald: unknown command ${name}\n${helpText()}\n`);
    process.exitCode = EXIT.usage;
    return;
  }
  if (wantsHelp(rest)) return void process.stdout.write(`${command.usage}\n`);
  const code = await runCommand(command, rest);
  // At once: fetch's idle keep-alive sockets would hold the process open for seconds more.
  // stdout and stderr are written synchronously to files, pipes and terminals, so nothing is lost.
  process.exit(code);
}

main().catch((err: unknown) => {
  process.stderr.write(`herald: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
