import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { packageRoot } from '../../src/http/routes/pages.js';
import { spawnHerald } from './herald.js';
import { needService } from './service.js';

/**
 * docs/openapi.yaml is true to the server, under fire: schemathesis generates requests from the
 * spec (valid ones, and invalid ones built to break each constraint) against a Herald started as
 * a user starts it, and fails on any 5xx, any status the spec does not list for the operation, and
 * any response whose content type, headers or body do not match what the spec says. Bad input
 * must be refused with a documented 4xx, never crash a handler (DESIGN.md guarantee 7).
 *
 * The run is bounded (examples per operation, and a time limit); each run uses a new seed, which
 * schemathesis prints, and `HERALD_FUZZ_SEED=<seed>` replays one.
 */

/** The version scripts/services/schemathesis.sh installs, where this test looks by default. */
const SCHEMATHESIS_VERSION = '4.32.5';
/** Generated cases per operation and phase: enough to break every documented constraint. */
const MAX_EXAMPLES = 25;
/** ms the whole schemathesis run may take before it is killed and the test fails. */
const RUN_TIMEOUT_MS = 100_000;
/** s one request may take: no route of the fuzzed set should take more than a fraction of it. */
const REQUEST_TIMEOUT_S = 10;
/** What a response must satisfy (`schemathesis run --help` lists them). */
const CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_headers_conformance',
  'response_schema_conformance',
].join(',');
/**
 * Streams never end, so a request to them cannot be judged by its response: SSE and WebSocket
 * have their own tests (test/e2e). Their error answers (bad channel, no token) are covered there.
 */
const EXCLUDED_PATHS = ['/sse', '/v1/stream'];
/** An operator key for the run with auth configured (at least 16 characters, docs/auth.md). */
export const ADMIN_KEY = 'fuzz-admin-key-0123456789abcdef';

function schemathesisBinary(): string | undefined {
  const fromEnv = process.env.HERALD_TEST_SCHEMATHESIS;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  const local = join(packageRoot(), `.tools/schemathesis-${SCHEMATHESIS_VERSION}/bin/schemathesis`);
  return existsSync(local) ? local : undefined;
}

export async function fuzz(t: TestContext, config: Record<string, unknown>, headers: string[]): Promise<void> {
  const bin = schemathesisBinary();
  if (
    !needService(
      t,
      bin !== undefined,
      'schemathesis',
      'bash scripts/services/schemathesis.sh install, then export HERALD_TEST_SCHEMATHESIS=<the path it prints>',
    )
  ) {
    return;
  }
  // Fuzzed endpoints have made-up public URLs: this node plans their deliveries but never sends them.
  const herald = await spawnHerald({ ...config, outbound: { send: false } });
  t.after(() => herald.stop());
  const args = [
    'run',
    join(packageRoot(), 'docs/openapi.yaml'),
    '--url',
    herald.url,
    '--checks',
    CHECKS,
    '--max-examples',
    String(MAX_EXAMPLES),
    '--request-timeout',
    String(REQUEST_TIMEOUT_S),
    '--workers',
    '1',
    '--generation-database',
    'none',
    '--no-color',
    ...EXCLUDED_PATHS.flatMap((p) => ['--exclude-path', p]),
    ...headers.flatMap((h) => ['--header', h]),
    ...(process.env.HERALD_FUZZ_SEED ? ['--seed', process.env.HERALD_FUZZ_SEED] : []),
  ];
  // The working folder is the server's data folder: schemathesis leaves nothing in the repo.
  const child = spawn(bin!, args, { cwd: herald.dataDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  const summary = output.slice(output.indexOf('FAILURES') >= 0 ? output.indexOf('FAILURES') - 40 : -3_000);
  assert.equal(code, 0, `schemathesis ${code === null ? `ran past ${RUN_TIMEOUT_MS} ms` : `exited ${code}`}:\n${summary}`);
  assert.match(output, /Test cases:\s+\d+ generated/, `schemathesis ran no test case:\n${summary}`);
  assert.equal(herald.child.exitCode, null, 'the server is still running after the run');
}

