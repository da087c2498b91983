import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { test } from 'node:test';
import { isGoneLocalOwner } from '../../src/transports/webhook-out/outbound-webhooks.js';

test('a lease owner is gone only when it is a process of this host that no longer runs', () => {
  const host = hostname();
  const exited = spawnSync(process.execPath, ['-e', '0']).pid;
  assert.equal(isGoneLocalOwner(`${host}/${exited}/abc123`), true, 'an exited process');
  assert.equal(isGoneLocalOwner(`${host}/${process.ppid}/abc123`), false, 'a running process');
  assert.equal(isGoneLocalOwner(`${host}/${process.pid}/abc123`), true, 'our own id, but not an instance of ours');
  assert.equal(isGoneLocalOwner(`another-host.example/${exited}/abc123`), false, 'another host: its leases run out');
  assert.equal(isGoneLocalOwner('not an owner'), false);
});
