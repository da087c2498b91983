import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildConfig } from '../../src/config/load.js';
import { packageRoot } from '../../src/http/routes/pages.js';
import { spawnHerald, type SpawnedHerald } from '../helpers/herald.js';
import { needKafka } from '../helpers/kafka.js';
import { fencedBlocks, shapeMismatch, shellCommands, type Block, type Command } from '../helpers/readme-blocks.js';

/**
 * The README's examples, run as written against a real Herald (`node dist/src/cli/main.js`, as
 * `npm start` runs it) with `bash` and `curl`, so the docs cannot drift from the behaviour.
 *
 * - Every ```` ```json ```` block is a config and must load with the real loader (buildConfig).
 * - Every ```` ```sh ```` block runs in order, its `localhost:8080` / `127.0.0.1:8080` rewritten
 *   to the Herald under test: a dev-mode Herald shared by the blocks in order (history shows
 *   what the publish block stored), or, for a block that starts Herald with `npm start --
 *   --config FILE`, a Herald of its own started with that file: written by the block itself
 *   (`cat > herald.json`), or else the JSON block just above it, and run in the block's folder
 *   (files the block made before, such as a certificate, are found there). `npx herald` runs
 *   the build.
 * - Each `curl` is checked against the answer its comment shows (status; JSON shape: the same
 *   keys, the same value types, ids compared as opaque strings; an error code); a `curl` with
 *   no such comment must answer 2xx. A stream (`curl -N`) is read for a few seconds.
 *   `ep_...` in a command stands for the last `ep_` id an earlier answer held, as a reader
 *   would paste it.
 * - Blocks marked `<!-- not-run: why -->` (the benchmarks, a package from the registry,
 *   starting or testing the whole project) are not run; the test lists them with their reason.
 * - Blocks marked `<!-- needs: kafka -->` run in a test of their own against the repo's broker
 *   script (`bash scripts/services/kafka.sh start`, as the block says): skipped with how to
 *   start it on a machine without it, never in CI.
 */

const root = packageRoot();
const README = join(root, 'README.md');
const blocks = fencedBlocks(readFileSync(README, 'utf8'));
const isShell = (b: Block) => b.lang === 'sh' || b.lang === 'bash';
/** seconds a documented stream (`curl -N`) is read before the test cuts it. */
const STREAM_SECONDS = 2;
/** milliseconds one block may run: a few requests and streams, on a busy 2-core machine. */
const BLOCK_TIMEOUT_MS = 90_000;

/** The wrapper every documented `curl` runs through (answers into files, streams cut short). */
const PREAMBLE = readFileSync(join(root, 'test/helpers/readme-curl.sh'), 'utf8');

interface Ran {
  command: Command;
  k: number;
}

/** The script for `commands`: hosts rewritten, each curl through the wrapper, numbered. */
function script(commands: Command[], url: string, ran: Ran[], next: { k: number }): string {
  const lines = [PREAMBLE];
  for (const c of commands) {
    let text = c.text
      .replace(/(?:https?:\/\/)?(?:localhost|127\.0\.0\.1):8080/g, url)
      .replace(/^npx herald\b/, 'node "$HERALD_CLI"')
      .replace(/\$\(npx herald\b/g, '$(node "$HERALD_CLI"')
      // The repo's own scripts, run from the block's folder as from the repo.
      .replace(/^bash scripts\//, 'bash "$HERALD_ROOT"/scripts/');
    if (/^curl\s/.test(text)) {
      const k = next.k++;
      ran.push({ command: c, k });
      text = text.replace(/^curl\s/, `__curl ${k} `);
      // `curl ... | grep WORD`: the answer must hold WORD (the wrapper keeps it in a file).
      text = text.replace(/\s+\|\s+grep\s+(\S+)$/, ` && grep -q $1 "$OUT/${k}.body"`);
    }
    lines.push(text);
  }
  lines.push('wait');
  return lines.join('\n');
}

function bash(text: string, cwd: string, out: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', text], {
      cwd,
      env: {
        ...process.env,
        OUT: out,
        STREAM_SECONDS: String(STREAM_SECONDS),
        HERALD_CLI: join(root, 'dist/src/cli/main.js'),
        HERALD_ROOT: root,
        // `node -e 'require("stripe")'` in an example resolves the project's packages.
        NODE_PATH: join(root, 'node_modules'),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), BLOCK_TIMEOUT_MS);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

/** Every way a documented curl's answer differs from what the README shows. */
function check(r: Ran, out: string, where: string): string[] {
  const read = (ext: string) => (existsSync(join(out, `${r.k}.${ext}`)) ? readFileSync(join(out, `${r.k}.${ext}`), 'utf8') : '');
  const cmd = `${where}: ${r.command.text.split('\n')[0]}`;
  if (read('rc') === '') return [`${cmd}: did not run (an earlier command of its block failed)`];
  if (read('rc').trim() !== '0') return [`${cmd}: curl failed: ${read('err').trim()}`];
  const status = Number(read('status'));
  let body = read('body');
  if (body.startsWith('HTTP/')) body = body.slice(body.indexOf('\r\n\r\n') + 4); // curl -i
  const e = r.command.expect;
  const problems: string[] = [];
  if (e?.status !== undefined) {
    if (status !== e.status) problems.push(`${cmd}: status ${status}, the docs show ${e.status} (${body.slice(0, 200)})`);
  } else if (status < 200 || status > 299) {
    problems.push(`${cmd}: status ${status}, the docs imply success (${body.slice(0, 200)})`);
  }
  if (e?.json !== undefined || e?.code !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      return [...problems, `${cmd}: the answer is not JSON: ${body.slice(0, 200)}`];
    }
    if (e.json !== undefined) {
      const why = shapeMismatch(e.json, json);
      if (why) problems.push(`${cmd}: ${why} (docs: ${e.comment}; answer: ${body.slice(0, 300)})`);
    }
    if (e.code !== undefined) {
      const code = (json as { error?: { code?: string } }).error?.code;
      if (code !== e.code) problems.push(`${cmd}: error code ${String(code)}, the docs show ${e.code}`);
    }
  }
  return problems;
}

/**
 * Runs shell blocks in order and returns every way their answers differ from the README, and how
 * many curls were checked. `dev()` is the shared dev-mode Herald; a block that starts Herald with
 * a config gets one of its own.
 */
async function runBlocks(
  shell: Block[],
  work: string,
  dev: () => Promise<SpawnedHerald>,
  started: SpawnedHerald[],
): Promise<{ problems: string[]; checked: number }> {
  const problems: string[] = [];
  let checked = 0;
  for (const b of shell) {
    const n = b.line;
    const where = `README.md line ${b.line}`;
    const commands = shellCommands(b.text);
    const startAt = commands.findIndex((c) => /^npm start -- --config \S+$/.test(c.text));
    const cwd = startAt >= 0 ? join(work, `block-${n}`) : join(work, 'dev');
    mkdirSync(cwd, { recursive: true });
    const out = join(work, `out-${n}`);
    mkdirSync(out);
    const ran: Ran[] = [];
    const next = { k: 0 };
    let herald: SpawnedHerald;
    let rest = commands;
    if (startAt >= 0) {
      const file = commands[startAt]!.text.split(/\s+/).at(-1)!;
      const setup = await bash(script(commands.slice(0, startAt), 'http://unused', ran, next), cwd, out);
      assert.equal(setup.code, 0, `${where}: ${setup.stderr}`);
      if (!existsSync(join(cwd, file))) {
        const above = blocks.filter((x) => x.lang === 'json' && x.line < b.line).at(-1);
        assert.ok(above, `${where}: starts Herald with ${file}, but no JSON block above it`);
        writeFileSync(join(cwd, file), above.text);
      }
      // In the block's folder, as `npm start` there would be: relative paths (a certificate) work.
      herald = await spawnHerald(JSON.parse(readFileSync(join(cwd, file), 'utf8')) as Record<string, unknown>, { cwd });
      started.push(herald);
      rest = commands.slice(startAt + 1);
    } else {
      herald = await dev();
    }
    const run = await bash(script(rest, herald.url, ran, next), cwd, out);
    for (const r of ran) problems.push(...check(r, out, where));
    if (run.code !== 0 && !problems.some((p) => p.startsWith(where))) {
      problems.push(`${where}: the block failed (exit ${run.code}): ${run.stderr.trim()}`);
    }
    checked += ran.length;
    if (startAt >= 0) await herald.stop();
  }
  return { problems, checked };
}

describe('the README examples run as written', () => {
  const started: SpawnedHerald[] = [];
  after(async () => {
    await Promise.all(started.map((h) => h.stop()));
  });
  let devHerald: SpawnedHerald | undefined;
  const dev = async () => {
    if (!devHerald) {
      devHerald = await spawnHerald({});
      started.push(devHerald);
    }
    return devHerald;
  };

  test('every JSON config example loads with the real config loader', () => {
    const configs = blocks.filter((b) => b.lang === 'json' && !b.notRun);
    assert.ok(configs.length >= 2, 'the README shows its configuration');
    for (const b of configs) {
      assert.doesNotThrow(() => buildConfig(JSON.parse(b.text), { HERALD_DATA_DIR: tmpdir() }), `README.md line ${b.line}`);
    }
  });

  test('every shell example answers as its comments say', async (t) => {
    const shell = blocks.filter(isShell);
    for (const b of shell.filter((x) => x.notRun)) t.diagnostic(`not run: README.md line ${b.line}: ${b.notRun}`);
    const runnable = shell.filter((b) => !b.notRun && !b.needs);
    assert.ok(runnable.length >= 5, 'the README shows runnable examples');
    const work = mkdtempSync(join(tmpdir(), 'herald-readme-'));
    t.after(() => rmSync(work, { recursive: true, force: true }));
    const { problems, checked } = await runBlocks(runnable, work, dev, started);
    assert.ok(checked >= 15, `only ${checked} curl commands were checked`);
    assert.deepEqual(problems, [], problems.join('\n'));
  });

  test('the Kafka examples run against the repo\'s own broker script', async (t) => {
    const kafka = blocks.filter((b) => isShell(b) && b.needs === 'kafka');
    assert.ok(kafka.length >= 1, 'the README shows how to consume Kafka');
    if (!(await needKafka(t))) return;
    const work = mkdtempSync(join(tmpdir(), 'herald-readme-kafka-'));
    t.after(() => rmSync(work, { recursive: true, force: true }));
    const { problems, checked } = await runBlocks(kafka, work, dev, started);
    assert.ok(checked >= 3, `only ${checked} curl commands were checked`);
    assert.deepEqual(problems, [], problems.join('\n'));
  });
});
