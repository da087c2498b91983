import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDeliveryStore } from '../../src/stores/memory-delivery-store.js';
import { SqliteDeliveryStore } from '../../src/stores/sqlite-delivery-store.js';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
import { connect, deliveryStoreContract } from './delivery-store.contract.js';

deliveryStoreContract('memory', { create: () => new MemoryDeliveryStore() });

let file = '';
deliveryStoreContract('sqlite (in the event store database)', {
  create() {
    file = join(mkdtempSync(join(tmpdir(), 'herald-deliveries-')), 'herald.db');
    // The way Herald runs it: the delivery tables live in the event store's own file.
    return new SqliteDeliveryStore(new SqliteEventStore({ file }).database);
  },
  reopen: () => new SqliteDeliveryStore(connect(file)),
  second: () => new SqliteDeliveryStore(connect(file)),
});
