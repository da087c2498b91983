import { streamLogger } from '../stream-logger.js';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { OutgoingHttpHeaders } from 'node:http';
import { checkChannel } from '../../core/channel.js';
import { HeraldError } from '../../core/errors.js';
import { parsePosition, type Position } from '../../core/position.js';
import { jsonEphemeralFrame, jsonFrame, typedEphemeralFrame, typedFrame } from '../../transports/sse/sse-encoder.js';
import type { SseStreams } from '../../transports/sse/sse-streams.js';
import type { StreamGuard } from '../guard.js';

/**
 * The resume position of an SSE request. The `Last-Event-ID` header wins over the `lastEventId`
 * query parameter, because a browser sends the header on every reconnect while the page's URL
 * still carries the position it first opened with. A header Herald cannot read resumes as an
 * unknown position (the client gets a reset), never as a failed stream: an EventSource gives up
 * for good on a non-200 answer.
 */
export function resumePosition(header: string | string[] | undefined, query: unknown): Position | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (h !== undefined && h !== '') {
    try {
      return parsePosition(h.trim());
    } catch {
      return { seq: Number.MAX_SAFE_INTEGER };
    }
  }
  if (query === undefined || query === '') return undefined;
  return parsePosition(Array.isArray(query) ? query[query.length - 1] : query);
}

/** Headers fastify plugins (CORS) already set on a reply that is about to be hijacked. */
export function decidedHeaders(reply: FastifyReply): OutgoingHttpHeaders {
  return reply.getHeaders() as OutgoingHttpHeaders;
}

/** `gate` checks credentials, permissions and limits before a stream opens (src/auth/stream-gate.ts). */
export function streamRoutes(app: FastifyInstance, sse: SseStreams, maxChannels: number, gate?: StreamGuard): void {
  app.get('/v1/stream', { childLoggerFactory: streamLogger }, async (req, reply) => {
    const q = req.query as Record<string, string | string[] | undefined>;
    const patterns = [...new Set(([] as string[]).concat(q.channel ?? []))];
    if (patterns.length === 0) throw new HeraldError('CHANNEL_INVALID', 'name at least one channel: ?channel=...');
    if (patterns.length > maxChannels) {
      throw new HeraldError('TOO_MANY_SUBSCRIPTIONS', `at most ${maxChannels} channels per stream`);
    }
    for (const p of patterns) {
      const check = checkChannel(p);
      if (!check.ok) throw new HeraldError('CHANNEL_INVALID', `${p}: ${check.reason}`);
    }
    const format = q.format === undefined ? 'text' : Array.isArray(q.format) ? q.format[q.format.length - 1] : q.format;
    if (format !== 'text' && format !== 'json') throw new HeraldError('BAD_REQUEST', 'format is "text" (the default) or "json"');
    const since = resumePosition(req.headers['last-event-id'], q.lastEventId);
    const admitted = await gate?.admit(req, reply.raw, patterns);
    const headers = decidedHeaders(reply);
    reply.hijack();
    const json = format === 'json';
    await sse.open({
      req: req.raw,
      res: reply.raw,
      headers,
      patterns,
      since,
      frame: json ? jsonFrame : typedFrame,
      ephemeralFrame: json ? jsonEphemeralFrame : typedEphemeralFrame,
      transport: 'sse',
      identity: admitted?.identity,
      address: admitted?.address,
    });
    admitted?.opened();
  });
}
