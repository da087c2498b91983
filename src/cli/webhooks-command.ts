import { randomBytes, randomUUID } from 'node:crypto';
import { dataArgument } from './api-commands.js';
import { EXIT, parse, REMOTE_OPTIONS, type Command, type CommandContext } from './command.js';
import { httpError, REQUEST_TIMEOUT_MS, resolveRemote, unreachable } from './remote.js';
import { UsageError } from './token-command.js';
import { githubRequest, standardRequest, stripeRequest, type SignedRequest } from './webhook-signers.js';

/** The providers `herald webhooks send` signs for. */
export const SENDABLE_PROVIDERS = ['stripe', 'github', 'standard'] as const;
type SendableProvider = (typeof SENDABLE_PROVIDERS)[number];

/** The event type of a test payload when `--type` names none. */
const DEFAULT_TYPES: Record<SendableProvider, string> = {
  stripe: 'herald.test',
  github: 'ping',
  standard: 'herald.test',
};

export const WEBHOOKS_USAGE = `usage: herald webhooks send --provider stripe|github|standard --source NAME --secret SECRET
                           [--type TYPE] [--data JSON] [--id ID] [--json]
Signs a test webhook exactly as the provider signs it and POSTs it to the source
(POST /v1/webhooks/NAME), as the provider would. Prints Herald's answer; a refusal
(SIGNATURE_INVALID, SOURCE_UNKNOWN, ...) prints its code and exits 1.
  --provider P   stripe (Stripe-Signature, by the stripe library), github (X-Hub-Signature-256),
                 standard (Standard Webhooks, by the standardwebhooks library; SECRET is whsec_...)
  --source NAME  the source's name in Herald's "sources" config
  --secret S     the source's signing secret (default HERALD_WEBHOOK_SECRET)
  --type TYPE    the event type (default: ${DEFAULT_TYPES.stripe}; github: ${DEFAULT_TYPES.github}); GitHub's goes in X-GitHub-Event
  --data JSON    the payload's data (stripe: data.object; standard: data; github: the whole body);
                 default {}; - reads it from stdin
  --id ID        the provider's event or delivery id (default: a new random one); the same id
                 again is answered as a duplicate
  --url URL      Herald's base URL (default HERALD_URL, else http://127.0.0.1:8080)
  -h, --help     this help`;

/** The request the provider would send: its payload shape, its headers, its signature. */
export function providerRequest(
  provider: SendableProvider,
  opts: { secret: string; type: string; data: unknown; id: string | undefined },
): SignedRequest {
  switch (provider) {
    case 'stripe': {
      const id = opts.id ?? `evt_${randomBytes(12).toString('base64url')}`;
      const created = Math.floor(Date.now() / 1000);
      const event = { id, object: 'event', type: opts.type, created, livemode: false, data: { object: opts.data ?? {} } };
      return stripeRequest(event, opts.secret);
    }
    case 'github':
      return githubRequest(opts.data ?? {}, opts.secret, opts.type, opts.id ?? randomUUID());
    case 'standard': {
      const id = opts.id ?? `msg_${randomBytes(12).toString('base64url')}`;
      return standardRequest({ type: opts.type, timestamp: new Date().toISOString(), data: opts.data ?? {} }, opts.secret, id);
    }
  }
}

async function webhooks(argv: string[], ctx: CommandContext): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'send') throw new UsageError(sub === undefined ? 'name a subcommand: send' : `unknown subcommand ${sub}: send`);
  const { values, positionals } = parse(rest, {
    ...REMOTE_OPTIONS,
    provider: { type: 'string' },
    source: { type: 'string' },
    secret: { type: 'string' },
    type: { type: 'string' },
    data: { type: 'string' },
    id: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
  const provider = values.provider as SendableProvider | undefined;
  if (!provider || !SENDABLE_PROVIDERS.includes(provider)) throw new UsageError(`--provider is one of ${SENDABLE_PROVIDERS.join(', ')}`);
  if (!values.source) throw new UsageError('--source names the source in Herald\'s "sources" config');
  const secret = values.secret ?? (ctx.env.HERALD_WEBHOOK_SECRET || undefined);
  if (!secret) throw new UsageError('--secret (or HERALD_WEBHOOK_SECRET) is the source\'s signing secret');
  let req: SignedRequest;
  try {
    req = providerRequest(provider, {
      secret,
      type: values.type ?? DEFAULT_TYPES[provider],
      data: values.data === undefined ? undefined : dataArgument(values.data, false),
      id: values.id,
    });
  } catch (err) {
    // The standardwebhooks library refuses a secret that is not base64.
    throw new UsageError(`cannot sign with this secret: ${(err as Error).message}`);
  }
  // No API key: a provider has none, and the source's signature is what Herald checks.
  const remote = { ...resolveRemote(values, ctx.env), key: undefined };
  let res: Response;
  try {
    res = await fetch(`${remote.url}/v1/webhooks/${encodeURIComponent(values.source)}`, {
      method: 'POST',
      headers: { 'user-agent': 'herald-cli', ...req.headers },
      body: req.body,
      signal: AbortSignal.any([AbortSignal.timeout(REQUEST_TIMEOUT_MS), ctx.signal]),
    });
  } catch (err) {
    throw unreachable(remote, err);
  }
  if (!res.ok) throw await httpError(res);
  const answer = await res.text();
  ctx.out(values.json ? answer : `${res.status} ${answer}`);
  return EXIT.ok;
}

export const webhooksCommand: Command = {
  name: 'webhooks',
  summary: 'send a signed test webhook to an inbound source (stripe, github, standard)',
  usage: WEBHOOKS_USAGE,
  run: webhooks,
};
