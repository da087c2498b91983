import type { FastifyInstance } from 'fastify';
import type { ChannelActivity } from '../../core/channel-activity.js';
import { checkChannel, isPattern, matches } from '../../core/channel.js';
import type { Connection, ConnectionRegistry } from '../../core/connections.js';
import { HeraldError } from '../../core/errors.js';
import { LIST_PAGE_DEFAULT, LIST_PAGE_MAX } from '../../core/limits.js';
import { parseLimit } from '../errors.js';
import type { Guard } from '../guard.js';

const iso = (ms: number) => (ms === 0 ? null : new Date(ms).toISOString());

/**
 * The operator's view of this node's subscribers: `GET /v1/channels` (channels and patterns with
 * subscribers or recent events), `GET /v1/channels/{channel}/subscribers` (who, how, from where,
 * since when) and `DELETE /v1/connections/{id}` (end one connection; the client may reconnect and
 * resume). Admin only: they name identities and client addresses. Subscribers are this node's;
 * event rates are the log's (every node dispatches every event).
 */
export function channelRoutes(
  parent: FastifyInstance,
  deps: { connections: ConnectionRegistry; activity: ChannelActivity; guard: Guard },
): void {
  void parent.register(async (app) => {
    app.addHook('onRequest', async (req) => deps.guard.operator(req));
    routes(app, deps.connections, deps.activity);
  });
}

function routes(app: FastifyInstance, connections: ConnectionRegistry, activity: ChannelActivity): void {
  app.get('/v1/channels', async (req) => {
    const q = req.query as Record<string, string | undefined>;
    const limit = parseLimit(q.limit, LIST_PAGE_DEFAULT, LIST_PAGE_MAX);
    const conns = connections.list();
    // Each subscribed pattern once, with its connections: names are counted against these.
    const byPattern = new Map<string, Set<Connection>>();
    for (const c of conns) {
      for (const p of c.patterns()) {
        let set = byPattern.get(p);
        if (!set) byPattern.set(p, (set = new Set()));
        set.add(c);
      }
    }
    const names = new Set<string>([...byPattern.keys(), ...activity.list().map((r) => r.channel)]);
    const rows = [...names].map((channel) => {
      const rate = activity.rate(channel);
      return {
        channel,
        pattern: isPattern(channel),
        subscribers: subscribersOf(channel, byPattern).size,
        eventsPerSecond: rate.eventsPerSecond,
        events: rate.events,
        lastEventAt: iso(rate.lastEventAt),
      };
    });
    rows.sort((a, b) => b.subscribers - a.subscribers || b.eventsPerSecond - a.eventsPerSecond || a.channel.localeCompare(b.channel));
    return { channels: rows.slice(0, limit), connections: conns.length };
  });

  app.get('/v1/channels/:channel/subscribers', async (req) => {
    const { channel } = req.params as { channel: string };
    const check = checkChannel(channel);
    if (!check.ok) throw new HeraldError('CHANNEL_INVALID', check.reason);
    const byPattern = new Map<string, Set<Connection>>();
    for (const c of connections.list()) for (const p of c.patterns()) byPattern.set(p, (byPattern.get(p) ?? new Set()).add(c));
    const rate = activity.rate(channel);
    return {
      channel,
      eventsPerSecond: rate.eventsPerSecond,
      events: rate.events,
      lastEventAt: iso(rate.lastEventAt),
      subscribers: [...subscribersOf(channel, byPattern)].map((c) => ({
        id: c.id,
        transport: c.transport,
        identity: c.identity() ?? null,
        address: c.address,
        connectedAt: new Date(c.connectedAt).toISOString(),
        patterns: c.patterns(),
      })),
    };
  });

  app.delete('/v1/connections/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    const conn = connections.get(id);
    if (!conn) throw new HeraldError('CONNECTION_NOT_FOUND', `no connection to this node has the id ${JSON.stringify(id.slice(0, 100))}`);
    conn.disconnect();
    return reply.code(204).send();
  });
}

/**
 * Who receives `channel`: for a name, every connection with a pattern that matches it; for a
 * pattern, the connections subscribed to exactly that pattern.
 */
function subscribersOf(channel: string, byPattern: ReadonlyMap<string, ReadonlySet<Connection>>): Set<Connection> {
  if (isPattern(channel)) return new Set(byPattern.get(channel) ?? []);
  const out = new Set<Connection>();
  for (const [p, conns] of byPattern) if (matches(p, channel)) for (const c of conns) out.add(c);
  return out;
}
