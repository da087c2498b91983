import { z } from 'zod';
import { checkChannel } from '../core/channel.js';
import { isEventType } from '../core/event.js';
import { TYPE_MAX_BYTES } from '../core/limits.js';
import { RecordTemplate } from './kafka-template.js';
import { DEFAULTS } from './defaults.js';

const d = DEFAULTS.kafka;

/** Kafka's own rule for topic names (legal characters, at most 249 of them). */
const topicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'must be a Kafka topic name ([A-Za-z0-9._-], 1 to 249)');
const channelName = z.string().refine((s) => {
  const c = checkChannel(s);
  return c.ok && !c.pattern;
}, 'must be a channel name (no wildcards)');
const positiveInt = z.number().int().positive();

/** A template must compile; one without placeholders must already be a valid result. */
function template(what: 'channel' | 'type') {
  return z.string().superRefine((s, ctx) => {
    let t: RecordTemplate;
    try {
      t = new RecordTemplate(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return;
    }
    if (t.constant === undefined) return;
    if (what === 'channel') {
      const c = checkChannel(t.constant);
      if (!c.ok || c.pattern) ctx.addIssue({ code: 'custom', message: 'must be a channel name or a template' });
    } else if (!isEventType(t.constant)) {
      ctx.addIssue({ code: 'custom', message: `must be 1 to ${TYPE_MAX_BYTES} bytes without control characters` });
    }
  });
}

const topicSchema = z
  .object({
    topic: topicName,
    /** A channel name or a template: `{topic}`, `{key}`, `{header.NAME}`, `{value.path}`. */
    channel: template('channel'),
    /** The event type, same templating; `message` when absent. */
    type: template('type').optional(),
    /** With no offset committed for the group yet: read the topic from its start, not from now. */
    fromBeginning: z.boolean().default(false),
  })
  .strict();

export const kafkaSchema = z
  .object({
    /** Bootstrap brokers, `host:port`. */
    brokers: z.array(z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'must be host:port')).min(1),
    groupId: z.string().min(1).max(255),
    clientId: z.string().min(1).max(255).default(d.clientId),
    sasl: z
      .object({
        mechanism: z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']),
        username: z.string().min(1),
        password: z.string().min(1),
      })
      .strict()
      .optional(),
    /** `true` for TLS with the system's CAs, or files for a private CA and client certificates. */
    ssl: z
      .union([
        z.boolean(),
        z
          .object({
            caFile: z.string().min(1).optional(),
            certFile: z.string().min(1).optional(),
            keyFile: z.string().min(1).optional(),
            servername: z.string().min(1).optional(),
            rejectUnauthorized: z.boolean().default(true),
          })
          .strict(),
      ])
      .optional(),
    topics: z
      .array(topicSchema)
      .min(1)
      .refine((ts) => new Set(ts.map((t) => t.topic)).size === ts.length, 'lists a topic twice'),
    /** Rejected records (not UTF-8, unmappable) are also produced here, bytes and headers intact. */
    deadLetterTopic: topicName.optional(),
    rejectedChannel: channelName.default(d.rejectedChannel),
    createTopics: z.boolean().default(d.createTopics),
    sessionTimeoutMs: positiveInt.default(d.sessionTimeoutMs),
    heartbeatIntervalMs: positiveInt.default(d.heartbeatIntervalMs),
    batchMaxRecords: positiveInt.default(d.batchMaxRecords),
    bufferMaxRecords: positiveInt.default(d.bufferMaxRecords),
    fetchMaxBytes: positiveInt.default(d.fetchMaxBytes),
    fetchMaxWaitMs: positiveInt.default(d.fetchMaxWaitMs),
    lagIntervalSeconds: z.number().positive().default(d.lagIntervalSeconds),
    retryMaxDelaySeconds: z.number().positive().default(d.retryMaxDelaySeconds),
  })
  .strict()
  .refine((k) => k.heartbeatIntervalMs * 3 <= k.sessionTimeoutMs, {
    message: 'must be at most a third of kafka.sessionTimeoutMs',
    path: ['heartbeatIntervalMs'],
  })
  .refine((k) => !k.deadLetterTopic || !k.topics.some((t) => t.topic === k.deadLetterTopic), {
    message: 'must not be one of the consumed topics (a rejected record would come back forever)',
    path: ['deadLetterTopic'],
  });

export type KafkaConfig = z.infer<typeof kafkaSchema>;
