import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildConfig, ConfigError } from '../../src/config/load.js';
import { packageRoot } from '../../src/http/routes/pages.js';

/*
 * One rule for every duration in the config (README, "Configuration"): seconds, named `…Seconds`,
 * unless the value is commonly below a second or goes as-is to a protocol or library that counts
 * milliseconds, named `…Ms`. A config written for the old names keeps working, with a warning.
 */

/** The keys in milliseconds, each with the reason the rule allows it. */
const MILLISECOND_KEYS: Readonly<Record<string, string>> = {
  writeWindowMs: 'commonly below a second (10 ms)',
  retryMs: "the SSE `retry:` field counts milliseconds (WHATWG HTML 9.2)",
  sessionTimeoutMs: "Kafka's session.timeout.ms",
  heartbeatIntervalMs: "Kafka's heartbeat.interval.ms",
  fetchMaxWaitMs: "Kafka's fetch.max.wait.ms, commonly below a second",
};

/** Every default documented with a unit of time, as `[unit, key]`. */
function durationKeys(): Array<[string, string]> {
  const text = readFileSync(join(packageRoot(), 'src/config/defaults.ts'), 'utf8');
  const keys: Array<[string, string]> = [];
  for (const m of text.matchAll(/\/\*\*\s*(?:\*\s*)?(seconds|milliseconds)\b[\s\S]*?\*\/\s*(\w+):/g)) keys.push([m[1]!, m[2]!]);
  return keys;
}

test('every duration key in the defaults ends in its unit, and milliseconds only where the rule allows', () => {
  const keys = durationKeys();
  assert.ok(keys.length >= 25, `found only ${keys.length} duration keys: the scan is broken`);
  const wrong = keys.filter(([unit, key]) => !key.endsWith(unit === 'seconds' ? 'Seconds' : 'Ms')).map(([u, k]) => `${k} (${u})`);
  assert.deepEqual(wrong, [], 'a key does not end in the unit its comment gives');
  const ms = keys.filter(([unit]) => unit === 'milliseconds').map(([, k]) => k).sort();
  assert.deepEqual(ms, Object.keys(MILLISECOND_KEYS).sort(), 'a key is in milliseconds without a reason the rule accepts');
});

const kafka = { brokers: ['127.0.0.1:9092'], groupId: 'herald', topics: [{ topic: 'orders', channel: 'orders' }] };

test('the new names are read in seconds', () => {
  const c = buildConfig({ kafka: { ...kafka, lagIntervalSeconds: 0.2, retryMaxDelaySeconds: 30 } });
  assert.equal(c.kafka!.lagIntervalSeconds, 0.2);
  assert.equal(c.kafka!.retryMaxDelaySeconds, 30);
});

test('an old name is still read, converted, and named with its new name in one warning', () => {
  const c = buildConfig({ kafka: { ...kafka, lagIntervalMs: 200, retryMaxDelayMs: 30_000 } });
  const warnings = c.deprecations;
  assert.equal(c.kafka!.lagIntervalSeconds, 0.2);
  assert.equal(c.kafka!.retryMaxDelaySeconds, 30);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!, /"kafka\.lagIntervalMs" is deprecated: use "kafka\.lagIntervalSeconds"/);
  assert.match(warnings[1]!, /"kafka\.retryMaxDelayMs" is deprecated: use "kafka\.retryMaxDelaySeconds"/);
});

test('an old and a new name together are refused, naming both', () => {
  assert.throws(
    () => buildConfig({ kafka: { ...kafka, lagIntervalMs: 200, lagIntervalSeconds: 1 } }),
    (err: unknown) => err instanceof ConfigError && /kafka\.lagIntervalMs/.test(err.message) && /kafka\.lagIntervalSeconds/.test(err.message),
  );
});
