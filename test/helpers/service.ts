import type { TestContext } from 'node:test';

/**
 * For tests that need an outside service (Redis, Kafka, Chromium). On a developer machine a
 * missing service skips the test with a message saying what to start; in CI (`CI=true`) it
 * fails, so nothing is ever skipped silently there.
 */
export function needService(t: TestContext, available: boolean, what: string, how: string): boolean {
  if (available) return true;
  if (process.env.CI === 'true') throw new Error(`${what} is required in CI but is not available (${how})`);
  t.skip(`${what} is not available: ${how}`);
  return false;
}

/**
 * needService for a whole suite registered without a TestContext (contract factories): resolves
 * to the reason to skip it on a developer machine, or undefined when the service is there; in CI
 * a missing service throws, so the test file fails.
 */
export function suiteSkip(available: boolean, what: string, how: string): string | undefined {
  if (available) return undefined;
  if (process.env.CI === 'true') throw new Error(`${what} is required in CI but is not available (${how})`);
  return `${what} is not available: ${how}`;
}
