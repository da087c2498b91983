import { readFileSync } from 'node:fs';
import { EXIT, eventLine, parse, REMOTE_OPTIONS, REMOTE_USAGE, wholeNumber, type Command, type CommandContext } from './command.js';
import { call, resolveRemote } from './remote.js';
import { UsageError } from './token-command.js';

/** Largest page of `GET /v1/events` and of the delivery log (docs/openapi.yaml). */
const API_PAGE_MAX = 1000;

/** `<data>` as JSON when it parses (`42`, `{"a":1}`, `"text"`), else as a string; `-` reads stdin. */
export function dataArgument(text: string, asText: boolean): unknown {
  const raw = text === '-' ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : text;
  if (asText) return raw;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

export const publishCommand: Command = {
  name: 'publish',
  summary: 'publish one event to a channel',
  usage: `usage: herald publish CHANNEL DATA [--type TYPE] [--idempotency-key KEY] [--text] [--json]
Publishes one event (POST /v1/publish) and prints its id. DATA is JSON when it parses as JSON
({"id":7}, 42, true), else a string; --text always sends it as a string; - reads it from stdin.
  --type TYPE              the event's type (default: message)
  --idempotency-key KEY    a retry with the same key stores nothing new and prints the first id
  --text                   send DATA as a string even when it looks like JSON
  --json                   print Herald's answer as JSON
${REMOTE_USAGE}`,
  async run(argv, ctx) {
    const { values, positionals } = parse(argv, {
      ...REMOTE_OPTIONS,
      type: { type: 'string' },
      'idempotency-key': { type: 'string' },
      text: { type: 'boolean' },
      json: { type: 'boolean' },
    });
    if (positionals.length !== 2) throw new UsageError('name a channel and the data: herald publish CHANNEL DATA');
    const remote = resolveRemote(values, ctx.env);
    const [channel, text] = positionals as [string, string];
    const body = {
      channel,
      data: dataArgument(text, values.text === true),
      ...(values.type !== undefined ? { type: values.type } : {}),
      ...(values['idempotency-key'] !== undefined ? { idempotencyKey: values['idempotency-key'] } : {}),
    };
    const answer = (await call(remote, 'POST', '/v1/publish', { body, signal: ctx.signal })) as { id: string };
    ctx.out(values.json ? JSON.stringify(answer) : answer.id);
    return EXIT.ok;
  },
};

interface EventJson {
  id: string;
  channel: string;
  type: string;
  data: unknown;
  time: string;
}

export const eventsCommand: Command = {
  name: 'events',
  summary: 'print the history of channels, in log order',
  usage: `usage: herald events PATTERN... [--since ID] [--limit N] [--json]
Prints stored events of the channels or patterns (GET /v1/events), oldest first, one a line:
"ID CHANNEL TYPE DATA" (DATA as JSON).
  --since ID    events after this id (default: from the start of the log)
  --limit N     at most N events, 1 to ${API_PAGE_MAX} (default: Herald's page, 100)
  --json        one JSON object a line: {"id","channel","type","data","time"}
${REMOTE_USAGE}`,
  async run(argv, ctx) {
    const { values, positionals } = parse(argv, {
      ...REMOTE_OPTIONS,
      since: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (positionals.length === 0) throw new UsageError('name at least one channel or pattern');
    const limit = wholeNumber(values.limit, '--limit', 1, API_PAGE_MAX);
    const remote = resolveRemote(values, ctx.env);
    const q = new URLSearchParams();
    for (const p of positionals) q.append('channel', p);
    if (values.since !== undefined) q.set('after', values.since);
    if (limit !== undefined) q.set('limit', String(limit));
    const { events } = (await call(remote, 'GET', `/v1/events?${q}`, { signal: ctx.signal })) as { events: EventJson[] };
    for (const e of events) ctx.out(values.json ? JSON.stringify(e) : eventLine(e));
    return EXIT.ok;
  },
};

const ENDPOINTS_USAGE = `usage: herald endpoints list [--json]
       herald endpoints create TARGET_URL --channel PATTERN... [--type TYPE]... [--description TEXT]
                               [--header NAME:VALUE]... [--ordered] [--max-concurrency N]
       herald endpoints deliveries ENDPOINT_ID [--status STATUS] [--limit N] [--before DELIVERY_ID] [--json]
       herald endpoints retry DELIVERY_ID
Outbound webhook endpoints (operator APIs: an API key with the admin scope, or dev mode on loopback).
  list         every endpoint: "ID enabled|disabled URL CHANNELS"
  create       a new endpoint that Herald POSTs matching events to (--channel: names or patterns,
               --type: only these event types, --ordered: one at a time in log order); prints it
               as JSON with its signing secret (shown this once)
  deliveries   an endpoint's delivery log, newest first: "DELIVERY_ID STATUS ATTEMPTS EVENT_ID LAST"
               (--status pending|delivered|dead|held, --before for the next page)
  retry        send a delivery again now
${REMOTE_USAGE}`;

interface EndpointJson {
  id: string;
  url: string;
  channels: string[];
  enabled: boolean;
}

interface DeliveryJson {
  id: string;
  eventId: string;
  status: string;
  attemptCount: number;
  lastStatus: number | null;
  lastError: string | null;
}

function headerOptions(list: readonly string[] | undefined): Record<string, string> | undefined {
  if (!list) return undefined;
  const out: Record<string, string> = {};
  for (const h of list) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new UsageError(`--header ${h}: say NAME:VALUE`);
    out[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
  }
  return out;
}

async function endpoints(argv: string[], ctx: CommandContext): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, {
    ...REMOTE_OPTIONS,
    json: { type: 'boolean' },
    channel: { type: 'string', multiple: true },
    type: { type: 'string', multiple: true },
    description: { type: 'string' },
    header: { type: 'string', multiple: true },
    ordered: { type: 'boolean' },
    'max-concurrency': { type: 'string' },
    status: { type: 'string' },
    limit: { type: 'string' },
    before: { type: 'string' },
  });
  const remote = () => resolveRemote(values, ctx.env);
  const one = (what: string) => {
    if (positionals.length !== 1) throw new UsageError(`name one ${what}: herald endpoints ${sub} ${what.toUpperCase().replace(/ /g, '_')}`);
    return encodeURIComponent(positionals[0]!);
  };
  switch (sub) {
    case 'list': {
      const { endpoints: list } = (await call(remote(), 'GET', '/v1/endpoints', { signal: ctx.signal })) as { endpoints: EndpointJson[] };
      for (const e of list) {
        ctx.out(values.json ? JSON.stringify(e) : [e.id, e.enabled ? 'enabled' : 'disabled', e.url, e.channels.join(',')].join(' '));
      }
      return EXIT.ok;
    }
    case 'create': {
      if (positionals.length !== 1 || !values.channel) {
        throw new UsageError('create takes the URL to POST to and at least one --channel: herald endpoints create TARGET_URL --channel PATTERN');
      }
      const body = {
        url: positionals[0],
        channels: values.channel,
        ...(values.type ? { types: values.type } : {}),
        ...(values.description !== undefined ? { description: values.description } : {}),
        ...(values.header ? { headers: headerOptions(values.header) } : {}),
        ...(values.ordered ? { ordering: 'ordered' } : {}),
        ...(values['max-concurrency'] !== undefined
          ? { maxConcurrency: wholeNumber(values['max-concurrency'], '--max-concurrency', 1, Number.MAX_SAFE_INTEGER) }
          : {}),
      };
      ctx.out(JSON.stringify(await call(remote(), 'POST', '/v1/endpoints', { body, signal: ctx.signal })));
      return EXIT.ok;
    }
    case 'deliveries': {
      const id = one('endpoint id');
      const q = new URLSearchParams();
      if (values.status !== undefined) q.set('status', values.status);
      const limit = wholeNumber(values.limit, '--limit', 1, API_PAGE_MAX);
      if (limit !== undefined) q.set('limit', String(limit));
      if (values.before !== undefined) q.set('before', values.before);
      const page = (await call(remote(), 'GET', `/v1/endpoints/${id}/deliveries${q.size ? `?${q}` : ''}`, { signal: ctx.signal })) as {
        deliveries: DeliveryJson[];
        next: string | null;
      };
      for (const d of page.deliveries) {
        const last = d.lastError ?? (d.lastStatus === null ? '-' : String(d.lastStatus));
        ctx.out(values.json ? JSON.stringify(d) : [d.id, d.status, d.attemptCount, d.eventId, JSON.stringify(last)].join(' '));
      }
      if (page.next !== null && !values.json) ctx.err(`more: herald endpoints deliveries ${positionals[0]} --before ${page.next}`);
      return EXIT.ok;
    }
    case 'retry': {
      const id = one('delivery id');
      await call(remote(), 'POST', `/v1/deliveries/${id}/retry`, { signal: ctx.signal });
      ctx.out(`queued ${positionals[0]}`);
      return EXIT.ok;
    }
    case undefined:
      throw new UsageError('name a subcommand: list, create, deliveries or retry');
    default:
      throw new UsageError(`unknown subcommand ${sub}: list, create, deliveries or retry`);
  }
}

export const endpointsCommand: Command = {
  name: 'endpoints',
  summary: 'outbound webhook endpoints: list, create, deliveries, retry',
  usage: ENDPOINTS_USAGE,
  run: endpoints,
};
