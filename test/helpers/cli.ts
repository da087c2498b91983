import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../src/http/routes/pages.js';

/** The built CLI, run as a user runs it: `node dist/src/cli/main.js ...`. */
export const CLI = join(packageRoot(), 'dist/src/cli/main.js');

/** ms a one-shot CLI command may take before the test kills it and fails. */
const CLI_COMMAND_TIMEOUT_MS = 20_000;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment of a CLI run: the test's, without the variables that would point the CLI at
 * some other Herald or key, plus `env`.
 */
function cliEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = { ...process.env };
  for (const k of ['HERALD_URL', 'HERALD_API_KEY', 'HERALD_CONFIG', 'HERALD_WEBHOOK_SECRET']) delete base[k];
  return { ...base, ...env };
}

/** Runs one command to its end (asynchronously: the Herald it talks to may live in this process). */
export function runCli(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), CLI_COMMAND_TIMEOUT_MS);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** A long-running command (`tail`): its lines as they come, and its end. */
export interface CliProcess {
  child: ChildProcess;
  /** stdout lines so far. */
  lines: string[];
  /** stderr so far. */
  stderr(): string;
  /** Resolves with the result when the process has exited. */
  exited: Promise<CliResult>;
}

export function startCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<CliResult>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return { child, lines, stderr: () => stderr, exited };
}
