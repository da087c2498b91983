import type { Config } from '../config/schema.js';
import { DEV_TOKEN_TTL_SECONDS, mintToken } from '../auth/token-mint.js';

export const TOKEN_USAGE = `usage: herald token --sub ID [--subscribe PATTERN]... [--publish PATTERN]... [--ttl SECONDS]
                    [--aud AUDIENCE] [--iss ISSUER] [--config FILE]
Mints a development JWT signed with auth.jwt.secret from the config file (--config or
HERALD_CONFIG), or with HERALD_JWT_SECRET. Prints the token on stdout.`;

export class UsageError extends Error {}

interface TokenArgs {
  sub: string;
  subscribe: string[];
  publish: string[];
  ttlSeconds: number;
  audience: string | undefined;
  issuer: string | undefined;
}

/** Parses `herald token` arguments (argv after `token`; `--config` is read by the caller). */
export function parseTokenArgs(argv: readonly string[]): TokenArgs {
  const out: TokenArgs = { sub: '', subscribe: [], publish: [], ttlSeconds: DEV_TOKEN_TTL_SECONDS, audience: undefined, issuer: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => {
      const v = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '--sub':
        out.sub = value();
        break;
      case '--subscribe':
        out.subscribe.push(value());
        break;
      case '--publish':
        out.publish.push(value());
        break;
      case '--ttl': {
        const n = Number(value());
        if (!Number.isInteger(n) || n <= 0) throw new UsageError('--ttl is a whole number of seconds');
        out.ttlSeconds = n;
        break;
      }
      case '--aud':
        out.audience = value();
        break;
      case '--iss':
        out.issuer = value();
        break;
      case '--config':
        value();
        break;
      default:
        throw new UsageError(`unknown option ${name}`);
    }
  }
  if (!out.sub) throw new UsageError('--sub is required');
  return out;
}

/** Runs `herald token`: returns the token to print. */
export async function tokenCommand(argv: readonly string[], config: Config, envSecret: string | undefined): Promise<string> {
  const args = parseTokenArgs(argv);
  const jwt = config.auth.jwt;
  const secret = jwt?.secret ?? envSecret;
  if (!secret) {
    throw new UsageError('no HMAC secret: set auth.jwt.secret in the config file (--config FILE) or HERALD_JWT_SECRET');
  }
  return mintToken({
    secret,
    sub: args.sub,
    subscribe: args.subscribe,
    publish: args.publish,
    ttlSeconds: args.ttlSeconds,
    audience: args.audience ?? (typeof jwt?.audience === 'string' ? jwt.audience : jwt?.audience?.[0]),
    issuer: args.issuer ?? jwt?.issuer,
  });
}
