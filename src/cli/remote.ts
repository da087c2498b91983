import { UsageError } from './token-command.js';

/** Where the client commands find Herald when neither `--url` nor HERALD_URL says. */
export const DEFAULT_HERALD_URL = 'http://127.0.0.1:8080';

/** ms a request of a client command (not `tail`'s stream) may take before it is abandoned. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** Characters of a non-JSON error body shown to the user (a proxy's HTML page, say). */
const ERROR_BODY_PREVIEW_CHARS = 200;

/** A Herald to talk to: its base URL and the API key sent as `Authorization: Bearer <key>`. */
export interface Remote {
  readonly url: string;
  readonly key: string | undefined;
}

/** `--url` wins over HERALD_URL, `--key` over HERALD_API_KEY. */
export function resolveRemote(flags: { url?: string; key?: string }, env: NodeJS.ProcessEnv): Remote {
  const raw = flags.url ?? (env.HERALD_URL || DEFAULT_HERALD_URL);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url ${raw} is not a URL (say http://host:port)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url ${raw} is not http or https`);
  const key = flags.key ?? (env.HERALD_API_KEY || undefined);
  return { url: url.href.replace(/\/+$/, ''), key };
}

/** Herald (or a proxy in front of it) answered with an error status. */
export class HeraldHttpError extends Error {
  constructor(
    readonly status: number,
    /** The registry code (docs/errors.md), or `HTTP_<status>` when the body carried none. */
    readonly code: string,
    message: string,
    /** Seconds from a `Retry-After` header, when there was one. */
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(message);
  }
}

/** No answer at all: refused, reset, unresolvable host or timed out. */
export class UnreachableError extends Error {}

export function headers(remote: Remote, extra: Record<string, string> = {}): Record<string, string> {
  return { 'user-agent': 'herald-cli', ...(remote.key ? { authorization: `Bearer ${remote.key}` } : {}), ...extra };
}

/** Reads an error answer: Herald's `{ "error": { "code", "message" } }`, or the status and a preview. */
export async function httpError(res: Response): Promise<HeraldHttpError> {
  const text = await res.text().catch(() => '');
  const retryAfter = Number(res.headers.get('retry-after') ?? NaN);
  const seconds = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined;
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === 'string') {
      return new HeraldHttpError(res.status, body.error.code, String(body.error.message ?? ''), seconds);
    }
  } catch {
    /* not Herald's error shape */
  }
  const preview = text.replace(/\s+/g, ' ').trim().slice(0, ERROR_BODY_PREVIEW_CHARS);
  return new HeraldHttpError(res.status, `HTTP_${res.status}`, preview || res.statusText, seconds);
}

/** The error of a fetch that got no answer, named by its cause (`ECONNREFUSED`, a timeout). */
export function unreachable(remote: Remote, err: unknown): UnreachableError {
  const e = err as { name?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return new UnreachableError(`${remote.url} did not answer within ${REQUEST_TIMEOUT_MS} ms`);
  const why = e.cause?.code ?? e.cause?.message ?? (err as Error).message;
  return new UnreachableError(`cannot reach Herald at ${remote.url}: ${why}`);
}

/**
 * One JSON request to Herald's HTTP API. Resolves with the parsed body of a 2xx answer
 * (undefined for 204); rejects with HeraldHttpError or UnreachableError.
 */
export async function call(
  remote: Remote,
  method: string,
  path: string,
  opts: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<unknown> {
  const signals = [AbortSignal.timeout(REQUEST_TIMEOUT_MS), ...(opts.signal ? [opts.signal] : [])];
  let res: Response;
  try {
    res = await fetch(remote.url + path, {
      method,
      headers: headers(remote, {
        accept: 'application/json',
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...opts.headers,
      }),
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.any(signals),
    });
  } catch (err) {
    throw unreachable(remote, err);
  }
  if (!res.ok) throw await httpError(res);
  const text = await res.text();
  return text === '' ? undefined : (JSON.parse(text) as unknown);
}
