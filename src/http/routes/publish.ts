import type { FastifyInstance } from 'fastify';
import { HeraldError } from '../../core/errors.js';
import { eventToJson, toEventInput, wantsEphemeral, type EventInput } from '../../core/event.js';
import { parsePosition } from '../../core/position.js';
import { checkChannel } from '../../core/channel.js';
import type { Hub } from '../../core/hub.js';
import { EVENTS_PAGE_DEFAULT, EVENTS_PAGE_MAX, PUBLISH_BATCH_MAX_EVENTS } from '../../core/limits.js';
import { parseJson, parseLimit } from '../errors.js';
import type { Guard } from '../guard.js';

/** `POST /v1/publish` and `GET /v1/events`: the publish API and the history behind resume. */
export function publishRoutes(app: FastifyInstance, hub: Hub, guard: Guard): void {
  app.post('/v1/publish', async (req, reply) => {
    guard.publisher(req);
    const body = parseJson(req.body);
    const batch = Array.isArray(body);
    let inputs: EventInput[];
    if (!batch && wantsEphemeral(body)) {
      // Delivered to whoever is subscribed now and stored nowhere: no id to answer with.
      const input = toEventInput(body);
      guard.publisher(req, input.channel);
      hub.signal(input);
      return reply.code(202).send({ ephemeral: true });
    }
    if (batch) {
      if (body.length === 0) throw new HeraldError('BATCH_EMPTY');
      if (body.length > PUBLISH_BATCH_MAX_EVENTS) {
        throw new HeraldError('BATCH_TOO_LARGE', `a batch holds at most ${PUBLISH_BATCH_MAX_EVENTS} events`);
      }
      // A batch is one atomic append; an ephemeral event has no place in it.
      body.forEach((o, i) => {
        if (wantsEphemeral(o)) throw new HeraldError('BODY_INVALID', `event [${i}]: publish an ephemeral event on its own, not in a batch`);
      });
      inputs = body.map((o, i) => toEventInput(o, `event [${i}]: `));
    } else {
      inputs = [toEventInput(body)];
    }
    for (const input of inputs) guard.publisher(req, input.channel);
    const results = await hub.publish(inputs);
    if (results.some((r) => r.duplicate)) reply.header('idempotent-replayed', 'true');
    const ids = results.map((r) => r.event.id);
    return reply.code(201).send(batch ? { ids } : { id: ids[0] });
  });

  app.get('/v1/events', async (req) => {
    const q = req.query as Record<string, string | string[] | undefined>;
    const channels = [...new Set(([] as string[]).concat(q.channel ?? []))];
    if (channels.length === 0) throw new HeraldError('CHANNEL_INVALID', 'name at least one channel: ?channel=...');
    for (const c of channels) {
      const check = checkChannel(c);
      if (!check.ok) throw new HeraldError('CHANNEL_INVALID', `${c}: ${check.reason}`);
      guard.subscriber(req, c);
    }
    const after = q.after === undefined ? { seq: 0 } : parsePosition(single(q.after));
    const limit = parseLimit(q.limit === undefined ? undefined : single(q.limit), EVENTS_PAGE_DEFAULT, EVENTS_PAGE_MAX);
    // After the checks, so a refused or malformed request costs no token.
    guard.history(req);
    const events = await hub.history(channels, after, limit, req.raw.socket);
    return { events: events.map(eventToJson) };
  });
}

function single(v: string | string[]): string {
  return Array.isArray(v) ? v[v.length - 1]! : v;
}
