import { streamLogger } from '../stream-logger.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HeraldError } from '../../core/errors.js';
import { toEventInput } from '../../core/event.js';
import type { Hub } from '../../core/hub.js';
import { plainFrame } from '../../transports/sse/sse-encoder.js';
import type { SseStreams } from '../../transports/sse/sse-streams.js';
import { parseJson, sendError } from '../errors.js';
import type { Guard, StreamGuard } from '../guard.js';
import { decidedHeaders, resumePosition } from './stream.js';

/** The text the seed routes answer with, word for word. */
export const BROADCASTED = 'Message broadcasted';
export const WS_SEND_TEXT = '🔔 New message at server!';
export const WEBHOOK_RECEIVED = 'Webhook received';

/** Go's `time.RFC3339` layout (`2006-01-02T15:04:05Z07:00`) in the server's local time zone. */
export function rfc3339(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${zone}`
  );
}

/**
 * The routes of the example server Herald grew from, kept exactly as it documented them, now
 * backed by the log: `GET /sse` streams the default feed (with ids, so a browser resumes without
 * a gap), `GET /sse/send` and `POST /webhook` publish to it, `GET /ws/send` publishes to what
 * `GET /ws` sockets receive.
 */
export function compatRoutes(
  app: FastifyInstance,
  deps: { hub: Hub; sse: SseStreams; feedChannel: string; wsChannel: string; guard?: Guard; gate?: StreamGuard },
): void {
  const { hub, sse, feedChannel, wsChannel, guard, gate } = deps;
  // In dev mode the seed routes stay open, as in the original example; with credentials
  // configured they need the same permissions as the /v1 API.
  const mayPublish = (req: FastifyRequest, channel: string) => {
    if (guard && !guard.devMode) guard.publisher(req, channel);
  };
  const publishText = (channel: string, text: string) =>
    hub.publish([{ channel, type: 'message', data: JSON.stringify(text) }]);

  app.get('/sse', { childLoggerFactory: streamLogger }, async (req, reply) => {
    const since = resumePosition(req.headers['last-event-id'], undefined);
    const admitted = await gate?.admit(req, reply.raw, [feedChannel]);
    const headers = decidedHeaders(reply);
    reply.hijack();
    await sse.open({
      req: req.raw,
      res: reply.raw,
      headers,
      patterns: [feedChannel],
      since,
      frame: plainFrame,
      transport: 'sse_compat',
      identity: admitted?.identity,
      address: admitted?.address,
    });
    admitted?.opened();
  });

  app.get('/sse/send', async (req, reply) => {
    mayPublish(req, feedChannel);
    await publishText(feedChannel, `New Order received at ${rfc3339(new Date())}`);
    return reply.type('text/plain; charset=utf-8').send(BROADCASTED);
  });

  app.get('/ws/send', async (req, reply) => {
    mayPublish(req, wsChannel);
    await publishText(wsChannel, WS_SEND_TEXT);
    return reply.type('text/plain; charset=utf-8').send(BROADCASTED);
  });

  app.post('/webhook', async (req, reply) => {
    mayPublish(req, feedChannel);
    const body = parseJson(req.body);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new HeraldError('BODY_INVALID', 'the webhook body is a JSON object {"event", "data"}');
    }
    const event = (body as { event?: unknown }).event;
    const input = toEventInput({
      channel: feedChannel,
      type: typeof event === 'string' && event !== '' ? event : 'webhook',
      data: body,
    });
    const [result] = await hub.publish([input]);
    return reply
      .header('herald-event-id', result!.event.id)
      .type('text/plain; charset=utf-8')
      .send(WEBHOOK_RECEIVED);
  });

  app.route({
    method: ['GET', 'PUT', 'PATCH', 'DELETE'],
    url: '/webhook',
    handler: async (req, reply) => {
      sendError(reply, new HeraldError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on /webhook; use POST`));
      return reply;
    },
  });
}
