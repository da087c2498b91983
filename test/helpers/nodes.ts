import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { TestContext } from 'node:test';
import { NODE_EXPIRY_MS, NODE_HEARTBEAT_MS } from '../../src/core/nodes.js';
import { waitFor } from './herald.js';

// For the tests of `GET /v1/nodes` (test/e2e/cluster-nodes*.test.ts): credentials, and clients
// on connections of their own, so `--workers` spreads them.

export const ADMIN = 'nodes-test-admin-key-00001';
export const READER = 'nodes-test-reader-key-0001';
export const auth = {
  apiKeys: [
    { key: ADMIN, name: 'ops', scopes: ['admin'] },
    { key: READER, name: 'app', scopes: ['subscribe:feed.>', 'publish:feed.>'] },
  ],
};
export const admin = { authorization: `Bearer ${ADMIN}` };
/** milliseconds for `--workers 2` to listen: each worker loads all of Herald, both at once on a busy machine. */
export const WORKERS_START_TIMEOUT_MS = 45_000;

export interface NodeView {
  id: string;
  self: boolean;
  pid: number;
  host: string;
  connections: number;
  connectionsByTransport: Record<string, number>;
  subscriptions: number;
  published: number;
  delivered: number;
  lag: { headSeq: number; dispatchedSeq: number; events: number };
}

/**
 * milliseconds before a request is given up: with `--workers`, a connection the primary hands to
 * a worker at the moment it is killed is never answered.
 */
const REQUEST_TIMEOUT_MS = 3_000;

/** GET /v1/nodes on a connection of its own (with `--workers`, whichever worker takes it answers). */
export function nodes(base: string, headers: Record<string, string> = admin): Promise<{ status: number; json: any; worker: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/v1/nodes`, { agent: false, headers, timeout: REQUEST_TIMEOUT_MS });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text), worker: String(res.headers['herald-worker']) }));
    });
    req.end();
  });
}

/** An SSE stream on a connection of its own; resolves once it is open, with the worker serving it. */
export function openSse(t: TestContext, base: string, channel: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/v1/stream?channel=${channel}`, { agent: false, headers: admin });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.on('response', (res) => {
      assert.equal(res.statusCode, 200);
      res.on('error', () => undefined);
      res.resume();
      resolve(String(res.headers['herald-worker']));
    });
    req.end();
    t.after(() => req.destroy());
  });
}

/** Waits (a few heartbeats at most) until `GET /v1/nodes` on `base` satisfies `check`. */
export async function nodesWhere(base: string, check: (list: NodeView[]) => boolean, what: string): Promise<NodeView[]> {
  let last: NodeView[] = [];
  try {
    return (await waitFor(
      async () => {
        // A connection lost to a worker that was just killed: asked again.
        const r = await nodes(base).catch(() => undefined);
        if (!r) return undefined;
        assert.equal(r.status, 200);
        last = r.json.nodes as NodeView[];
        return check(last) ? last : undefined;
      },
      NODE_EXPIRY_MS + 3 * NODE_HEARTBEAT_MS,
      what,
    ))!;
  } catch (err) {
    throw new Error(`${(err as Error).message}; last answer: ${JSON.stringify(last)}`);
  }
}

