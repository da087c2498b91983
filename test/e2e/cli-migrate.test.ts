import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { spawnHerald } from '../helpers/herald.js';
import { testDatabase } from '../helpers/postgres.js';

test('herald migrate applies the Postgres schema once; a node with backend.migrate false then starts on it', async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  const env = { HERALD_BACKEND: 'postgres', HERALD_DATABASE_URL: db.url };
  // Before any migration, a node that may not migrate refuses to start, naming the command.
  const refused = await spawnHerald({ backend: { type: 'postgres', migrate: false } }, { env }).catch((err: Error) => err);
  assert.ok(refused instanceof Error);
  assert.match(refused.message, /herald migrate/);

  const first = await runCli(['migrate'], env);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /schema "herald": applied log:1, delivery:1/);
  const again = await runCli(['migrate'], env);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /schema "herald": up to date/);

  const node = await spawnHerald({ backend: { type: 'postgres', migrate: false } }, { env });
  t.after(() => node.stop());
  const r = await fetch(`${node.url}/v1/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ channel: 'migrated', data: 1 }),
  });
  assert.equal(r.status, 201);
});

test('herald migrate on another backend is a usage error that says why', async () => {
  const r = await runCli(['migrate'], { HERALD_BACKEND: 'memory' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /only a Postgres backend has migrations to run/);
  const help = await runCli(['migrate', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /usage: herald migrate/);
});
