import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type Database from 'better-sqlite3';
import { MemoryBroker } from '../../src/brokers/memory-broker.js';
import type { Config } from '../../src/config/schema.js';
import { Hub } from '../../src/core/hub.js';
import { createLogger } from '../../src/observability/logger.js';
import { SqliteDeliveryStore } from '../../src/stores/sqlite-delivery-store.js';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
import { OutboundWebhooks } from '../../src/transports/webhook-out/outbound-webhooks.js';
import { connect } from '../contract/delivery-store.contract.js';

export interface OutboundNode {
  readonly outbound: OutboundWebhooks;
  readonly db: Database.Database;
}

/**
 * Several nodes' outbound wings on one SQLite file: one log (hub), and per node a delivery store
 * on a connection of its own to the file, as separate processes would have. Everything is
 * closed after the test.
 */
export function outboundNodesOnOneFile(t: TestContext, config: Config['outbound'], prefix: string) {
  const file = join(mkdtempSync(join(tmpdir(), prefix)), 'herald.db');
  const events = new SqliteEventStore({ file });
  const hub = new Hub({ store: events, broker: new MemoryBroker() });
  const log = createLogger('silent');
  const nodes: OutboundNode[] = [];
  const node = async (): Promise<OutboundNode> => {
    const db = connect(file);
    const outbound = new OutboundWebhooks({ hub, store: new SqliteDeliveryStore(db), config, log });
    await outbound.start();
    const n = { outbound, db };
    nodes.push(n);
    return n;
  };
  t.after(async () => {
    for (const n of nodes) await n.outbound.close().catch(() => {});
    await hub.close();
    await events.close();
  });
  return { hub, node };
}
