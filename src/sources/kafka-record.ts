import { isUtf8 } from 'node:buffer';
import { checkChannel } from '../core/channel.js';
import type { ErrorCode } from '../core/errors.js';
import { isEventType, type EventInput, type StreamPosition } from '../core/event.js';
import { DEFAULT_EVENT_TYPE, TYPE_MAX_BYTES } from '../core/limits.js';
import type { RecordTemplate, TemplateRecord } from '../config/kafka-template.js';

/**
 * The trust line for Kafka records: one record in, either an EventInput (with its stream
 * position, so the log keeps it once) or a rejection with a registry code and a reason. Nothing
 * here throws: a record Herald cannot map is rejected, never allowed to stall its partition.
 */

/** One consumed record, as the source hands it over (raw bytes, offsets as numbers). */
export interface KafkaRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** Milliseconds since the epoch, as the producer or broker stamped it. */
  readonly timestamp: number;
  readonly key: Buffer | undefined;
  /** Undefined for a tombstone (a record with a null value). */
  readonly value: Buffer | undefined;
  readonly headers: ReadonlyMap<Buffer, Buffer | undefined>;
}

/** How one topic's records become events. */
export interface TopicMapping {
  readonly topic: string;
  readonly channel: RecordTemplate;
  readonly type: RecordTemplate | undefined;
}

export interface Rejection {
  readonly code: Extract<ErrorCode, 'RECORD_NOT_UTF8' | 'RECORD_UNMAPPABLE'>;
  readonly reason: string;
}

export type Mapped = { readonly ok: true; readonly input: EventInput } | ({ readonly ok: false } & Rejection);

/** The type of the events that record rejections in the log. */
export const REJECTED_EVENT_TYPE = 'kafka.rejected';

/** The stream name the log keeps positions under: one per topic partition. */
export function streamOf(topic: string, partition: number): string {
  return `kafka/${topic}/${partition}`;
}

function originOf(r: KafkaRecord): StreamPosition {
  return { stream: streamOf(r.topic, r.partition), offset: r.offset };
}

/**
 * Maps a record: UTF-8 values become `data` (JSON text stays that JSON; other text becomes a
 * JSON string; a tombstone becomes `null`); channel and type come from the templates.
 */
export function mapRecord(mapping: TopicMapping, r: KafkaRecord): Mapped {
  let data: string;
  let json: { value: unknown } | undefined;
  if (r.value === undefined) {
    data = 'null';
    json = { value: null };
  } else {
    if (!isUtf8(r.value)) {
      return { ok: false, code: 'RECORD_NOT_UTF8', reason: 'the record value is not valid UTF-8' };
    }
    const text = r.value.toString('utf8');
    try {
      json = { value: JSON.parse(text) as unknown };
      // The producer's own JSON text, without the outer whitespace JSON allows: a value is kept
      // byte for byte (large numbers keep their digits) and never re-serialised.
      data = text.trim();
    } catch {
      data = JSON.stringify(text);
    }
  }
  const view: TemplateRecord = { topic: r.topic, key: r.key, headers: r.headers, json };
  const channel = mapping.channel.render(view);
  if (!channel.ok) return { ok: false, code: 'RECORD_UNMAPPABLE', reason: `channel: ${channel.reason}` };
  const check = checkChannel(channel.text);
  if (!check.ok) {
    return { ok: false, code: 'RECORD_UNMAPPABLE', reason: `channel "${clip(channel.text)}": ${check.reason}` };
  }
  // A key or field holding `*` or `>` must not turn a publish into a wildcard.
  if (check.pattern) {
    return { ok: false, code: 'RECORD_UNMAPPABLE', reason: `channel "${clip(channel.text)}" is a pattern` };
  }
  let type = DEFAULT_EVENT_TYPE;
  if (mapping.type) {
    const t = mapping.type.render(view);
    if (!t.ok) return { ok: false, code: 'RECORD_UNMAPPABLE', reason: `type: ${t.reason}` };
    if (!isEventType(t.text)) {
      return {
        ok: false,
        code: 'RECORD_UNMAPPABLE',
        reason: `type must be 1 to ${TYPE_MAX_BYTES} bytes without control characters`,
      };
    }
    type = t.text;
  }
  return { ok: true, input: { channel: channel.text, type, data, origin: originOf(r) } };
}

/**
 * The event that records a rejection in the log, at the rejected record's own stream position:
 * so the rejection is kept exactly once, and the partition moves on. It names the record and the
 * reason, never its bytes (they may be anything; the dead-letter topic keeps them).
 */
export function rejectionInput(channel: string, r: KafkaRecord, why: Rejection): EventInput {
  const data = {
    topic: r.topic,
    partition: r.partition,
    offset: r.offset,
    timestamp: new Date(r.timestamp).toISOString(),
    code: why.code,
    reason: why.reason,
    keyBytes: r.key?.length ?? null,
    valueBytes: r.value?.length ?? null,
  };
  return { channel, type: REJECTED_EVENT_TYPE, data: JSON.stringify(data), origin: originOf(r) };
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}
