import { Admin, Producer, type MessageToProduce } from '@platformatic/kafka';
import type { TestContext } from 'node:test';
import { needService } from './service.js';

/**
 * The real broker for Kafka tests: `bash scripts/services/kafka.sh start` (`.ci/run` does it)
 * and `HERALD_TEST_KAFKA_BROKERS=127.0.0.1:19092`. Without it a test skips on a laptop and
 * fails in CI (needService).
 */
const BROKERS = (process.env.HERALD_TEST_KAFKA_BROKERS ?? '').split(',').filter(Boolean);
const HOW = 'run `bash scripts/services/kafka.sh start` and export HERALD_TEST_KAFKA_BROKERS=127.0.0.1:19092';
/** milliseconds the availability probe may take. */
const PROBE_TIMEOUT_MS = 10_000;

let probe: Promise<boolean> | undefined;

async function reachable(): Promise<boolean> {
  if (BROKERS.length === 0) return false;
  const admin = new Admin({ clientId: 'herald-test-probe', bootstrapBrokers: BROKERS, retries: 2, timeout: PROBE_TIMEOUT_MS });
  try {
    await admin.metadata({ topics: [] });
    return true;
  } catch {
    return false;
  } finally {
    await admin.close().catch(() => undefined);
  }
}

/** The broker list, or undefined after skipping the test (failing it in CI) when there is none. */
export async function needKafka(t: TestContext): Promise<string[] | undefined> {
  probe ??= reachable();
  return needService(t, await probe, 'Kafka', HOW) ? BROKERS : undefined;
}

/** A name no other test run uses (topics and groups outlive a test on a shared broker). */
export function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Creates topics with `partitions` each and waits until they have leaders. */
export async function createTopics(brokers: string[], topics: string[], partitions: number): Promise<void> {
  const admin = new Admin({ clientId: 'herald-test-admin', bootstrapBrokers: brokers });
  try {
    await admin.createTopics({ topics, partitions, replicas: 1 });
    for (let i = 0; ; i++) {
      const md = await admin.metadata({ topics, forceUpdate: true });
      const ok = topics.every((t) => md.topics.get(t)?.partitions.every((p) => p.leader >= 0));
      if (ok) break;
      if (i > 100) throw new Error(`topics ${topics.join(', ')} got no leaders`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await admin.close();
  }
}

export interface TestRecord {
  topic: string;
  key?: string | Buffer;
  value?: string | Buffer | null;
  headers?: Record<string, string>;
  partition?: number;
}

/** A producer of raw records (keys, values and headers as given), acks from the leader and ISR. */
export function testProducer(brokers: string[]) {
  // Idempotent: a send the client retries after a timeout (a busy CI machine) is written once,
  // so a topic holds exactly the records a test sent and counts against the log can be exact.
  const producer = new Producer({ clientId: 'herald-test-producer', bootstrapBrokers: brokers, idempotent: true });
  return {
    async send(records: TestRecord[]): Promise<void> {
      const messages: MessageToProduce<Buffer, Buffer, Buffer, Buffer>[] = records.map((r) => {
        const headers = new Map<Buffer, Buffer>();
        for (const [k, v] of Object.entries(r.headers ?? {})) headers.set(Buffer.from(k), Buffer.from(v));
        const m: MessageToProduce<Buffer, Buffer, Buffer, Buffer> = {
          topic: r.topic,
          key: r.key === undefined ? undefined : Buffer.from(r.key),
          value: (r.value === null || r.value === undefined ? undefined : Buffer.from(r.value)) as Buffer,
          headers,
        };
        if (r.partition !== undefined) m.partition = r.partition;
        return m;
      });
      await producer.send({ messages, acks: -1 });
    },
    close: () => producer.close(),
  };
}

/** The group's committed offsets for `topic`, by partition (-1 when none). */
export async function committedOffsets(brokers: string[], groupId: string, topic: string): Promise<Map<number, bigint>> {
  const admin = new Admin({ clientId: 'herald-test-admin', bootstrapBrokers: brokers });
  try {
    const res = await admin.listConsumerGroupOffsets({ groups: [groupId] });
    const out = new Map<number, bigint>();
    for (const g of res) for (const t of g.topics) if (t.name === topic) for (const p of t.partitions) out.set(p.partitionIndex, p.committedOffset);
    return out;
  } finally {
    await admin.close();
  }
}

/** The members the group coordinator lists for `groupId` right now. */
export async function groupMembers(brokers: string[], groupId: string): Promise<number> {
  const admin = new Admin({ clientId: 'herald-test-admin', bootstrapBrokers: brokers });
  try {
    const groups = await admin.describeGroups({ groups: [groupId] });
    return groups.get(groupId)?.members.size ?? 0;
  } finally {
    await admin.close();
  }
}
