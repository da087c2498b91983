/**
 * Test doubles for the unit tests of the outbound wing's parts (src/transports/webhook-out/*.test.ts):
 * a sender that answers when the test says, a logger that records, and record builders. The real
 * sender and stores are covered by the e2e and contract suites; these let one part be driven alone.
 */
import { pino, type Logger } from 'pino';
import type { Delivery, EndpointRecord } from '../../src/core/delivery-store.js';
import type { SendResult, Sender } from '../../src/transports/webhook-out/webhook-sender.js';

export function endpointRecord(over: Partial<EndpointRecord> = {}): EndpointRecord {
  return {
    id: 'ep_a',
    url: 'https://receiver.example/hook',
    channels: ['orders'],
    types: null,
    description: '',
    headers: {},
    ordering: 'parallel',
    maxConcurrency: null,
    secret: 'whsec_' + Buffer.from('0123456789abcdef0123456789abcdef').toString('base64'),
    previousSecret: null,
    previousSecretExpiresAt: null,
    enabled: true,
    disabledReason: null,
    fromSeq: 0,
    failingSince: null,
    createdAt: 0,
    updatedAt: 0,
    ...over,
  };
}

let nextId = 1;

export function deliveryRecord(over: Partial<Delivery> = {}): Delivery {
  const id = over.id ?? nextId++;
  return {
    id,
    endpointId: 'ep_a',
    eventSeq: id,
    msgId: `msg_test_${id}`,
    body: '{"data":1}',
    nextAt: 0,
    createdAt: 0,
    status: 'pending',
    attempts: 0,
    scheduleStart: 0,
    claims: 1,
    leaseOwner: 'me',
    updatedAt: 0,
    lastStatus: null,
    lastError: null,
    ...over,
  };
}

export function sendResult(status: number | null, over: Partial<SendResult> = {}): SendResult {
  return { status, durationMs: 5, responseBody: '', error: status === null ? 'refused' : null, retryAfterMs: undefined, aborted: false, ...over };
}

/** One request the fake sender holds until the test answers it. */
export interface HeldRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  answer(result: SendResult): void;
}

/** A Sender whose requests wait until the test answers them; `close()` answers the rest as aborted. */
export class FakeSender implements Sender {
  readonly requests: HeldRequest[] = [];
  readonly #open = new Set<HeldRequest>();
  #waiters: (() => void)[] = [];
  closed = false;

  send(url: string, headers: Record<string, string>, body: string): Promise<SendResult> {
    return new Promise((resolve) => {
      const r: HeldRequest = {
        url,
        headers,
        body,
        answer: (result) => {
          this.#open.delete(r);
          resolve(result);
        },
      };
      this.requests.push(r);
      this.#open.add(r);
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Resolves once `n` requests were made in all. */
  async made(n: number): Promise<void> {
    while (this.requests.length < n) await new Promise<void>((r) => this.#waiters.push(r));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const r of [...this.#open]) r.answer(sendResult(null, { aborted: true, error: 'aborted' }));
  }
}

/** A logger whose lines the test can read. */
export function recordingLog(): { log: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { log, lines };
}
