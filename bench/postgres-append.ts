import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { EventInput } from '../src/core/event.js';
import { createPostgresPool } from '../src/stores/postgres-connection.js';
import { PostgresEventStore } from '../src/stores/postgres-event-store.js';
import { migratePostgres } from '../src/stores/postgres-migrations.js';

/**
 * What serialising appends per log costs on Postgres: every append takes the log's head lock,
 * so appends to one log run one at a time across every node. Runs `--nodes` stores (each its own
 * pool, as separate Herald nodes would be) appending batches of each `--batch` size as fast as
 * they can for `--seconds`, and prints appends/s and events/s. With group commit a node makes
 * one append per event-loop tick, so appends/s is the ceiling on ticks/s the whole deployment
 * can commit, and events/s what it reaches with batches of that size.
 *
 * `npm run build && node dist/bench/postgres-append.js --url postgres://herald@127.0.0.1:55432/postgres`
 * (creates a database of its own and drops it afterwards)
 */

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.HERALD_TEST_POSTGRES_URL ?? '' },
    nodes: { type: 'string', default: '1,4' },
    batch: { type: 'string', default: '1,50' },
    seconds: { type: 'string', default: '3' },
  },
});
if (!values.url) throw new Error('--url (or HERALD_TEST_POSTGRES_URL) is required');

const input = (i: number): EventInput => ({ channel: `orders.${i % 10}`, type: 'message', data: JSON.stringify({ i, pad: 'x'.repeat(60) }) });

const name = `herald_bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: values.url });
await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
const url = new URL(values.url);
url.pathname = `/${name}`;
try {
  for (const nodes of values.nodes.split(',').map(Number)) {
    for (const batch of values.batch.split(',').map(Number)) {
      const schema = `b_${nodes}_${batch}`;
      const pools = Array.from({ length: nodes }, () => createPostgresPool({ url: url.toString(), maxConnections: 2 }));
      await migratePostgres(pools[0]!, schema);
      const stores = pools.map((pool) => new PostgresEventStore({ pool, schema }));
      const until = Date.now() + Number(values.seconds) * 1_000;
      let appends = 0;
      const started = Date.now();
      await Promise.all(
        stores.map(async (s) => {
          while (Date.now() < until) {
            await s.append(Array.from({ length: batch }, (_, i) => input(i)));
            appends++;
          }
        }),
      );
      const secs = (Date.now() - started) / 1_000;
      console.log(`nodes ${nodes} batch ${batch}: ${Math.round(appends / secs)} appends/s, ${Math.round((appends * batch) / secs)} events/s`);
      for (const p of pools) await p.end();
    }
  }
} finally {
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}
