import { EXIT, eventLine, parse, REMOTE_OPTIONS, REMOTE_USAGE, wholeNumber, type Command, type CommandContext } from './command.js';
import { headers, httpError, HeraldHttpError, unreachable, type Remote, resolveRemote } from './remote.js';
import { SseParser } from './sse-reader.js';
import { UsageError } from './token-command.js';

/** ms before the first reconnect when the stream sent no `retry:` hint (EventSource waits about as long). */
const TAIL_DEFAULT_RECONNECT_MS = 1_000;
/** ms: reconnects back off by doubling up to this, so a Herald that is down for long is not hammered. */
const TAIL_MAX_RECONNECT_MS = 30_000;
/**
 * ms without a byte (not even a heartbeat, sent every 15 s by default) after which the stream is
 * taken for dead: a connection cut without a FIN (a NAT or proxy dropping it) never ends by itself.
 */
const TAIL_IDLE_TIMEOUT_MS = 45_000;
/** The event Herald sends when a resume position is gone (src/transports/sse/sse-encoder.ts). */
const RESET_EVENT = 'herald.reset';
/** Statuses worth waiting out: rate limited, or a Herald (or its proxy) not ready yet. */
const RETRYABLE_STATUSES = new Set([429, 502, 503, 504]);

export interface TailOptions {
  remote: Remote;
  patterns: string[];
  /** Resume after this id (`--since`); undefined starts with new events. */
  since: string | undefined;
  json: boolean;
  /** Stop after this many events (`--count`). */
  count: number | undefined;
}

/** SSE delivers a string's text as is and any other value as JSON: the value back, as near as it can be told. */
function dataValue(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * Follows `GET /v1/stream` and prints each event once, in log order. A dropped connection is
 * reopened with `Last-Event-ID` set to the last id printed, so Herald replays what was missed and
 * nothing is printed twice; a `herald.reset` (the position left the log) is reported on stderr.
 * Resolves with the exit code when the signal aborts (0), `count` events were printed (0), or
 * Herald refuses the stream (1); a first connection that gets no answer is exit 3.
 */
export async function tail(opts: TailOptions, ctx: CommandContext): Promise<number> {
  const q = new URLSearchParams();
  for (const p of opts.patterns) q.append('channel', p);
  const url = `${opts.remote.url}/v1/stream?${q}`;
  let lastId = opts.since;
  let printed = 0;
  let connected = false;
  let retryMs = TAIL_DEFAULT_RECONNECT_MS;
  let delayMs = retryMs;
  while (!ctx.signal.aborted) {
    const stream = new AbortController();
    const stop = () => stream.abort();
    ctx.signal.addEventListener('abort', stop, { once: true });
    let idle: NodeJS.Timeout | undefined;
    const awake = () => {
      clearTimeout(idle);
      idle = setTimeout(stop, TAIL_IDLE_TIMEOUT_MS);
    };
    try {
      awake();
      const res = await fetch(url, {
        headers: headers(opts.remote, { accept: 'text/event-stream', ...(lastId !== undefined ? { 'last-event-id': lastId } : {}) }),
        signal: stream.signal,
      });
      if (!res.ok) {
        const error = await httpError(res);
        if (!RETRYABLE_STATUSES.has(res.status)) throw error;
        ctx.err(`herald tail: ${error.code}: ${error.message}; retrying`);
        delayMs = Math.max(delayMs, (error.retryAfterSeconds ?? 0) * 1000);
      } else {
        if (connected) ctx.err(`herald tail: resumed${lastId !== undefined ? ` after ${lastId}` : ''}`);
        connected = true;
        const parser = new SseParser(lastId);
        const decoder = new TextDecoder();
        for await (const chunk of res.body! as AsyncIterable<Uint8Array>) {
          awake();
          for (const m of parser.push(decoder.decode(chunk, { stream: true }))) {
            lastId = m.id;
            if (m.event === RESET_EVENT) {
              const reason = (dataValue(m.data) as { reason?: unknown } | null)?.reason ?? 'reset';
              ctx.err(`herald tail: position gone (${String(reason)}): events before ${m.id} were skipped; continuing after it`);
              continue;
            }
            const event = { id: m.id ?? '', type: m.event, data: dataValue(m.data) };
            ctx.out(opts.json ? JSON.stringify(event) : eventLine(event));
            if (opts.count !== undefined && ++printed >= opts.count) return EXIT.ok;
          }
          // Reconnect soon again once a connection has delivered: only a Herald that keeps failing is backed off.
          if (parser.retryMs !== undefined) retryMs = parser.retryMs;
          delayMs = retryMs;
        }
      }
    } catch (err) {
      if (ctx.signal.aborted) break;
      if (err instanceof HeraldHttpError) throw err;
      if (!connected) throw unreachable(opts.remote, err);
    } finally {
      clearTimeout(idle);
      ctx.signal.removeEventListener('abort', stop);
      stream.abort();
    }
    if (ctx.signal.aborted) break;
    ctx.err(`herald tail: connection lost; reconnecting in ${delayMs} ms`);
    await sleep(delayMs, ctx.signal);
    delayMs = Math.min(delayMs * 2, TAIL_MAX_RECONNECT_MS);
  }
  if (lastId !== undefined) ctx.err(`herald tail: stopped after ${lastId} (resume with --since ${lastId})`);
  return EXIT.ok;
}

export const tailCommand: Command = {
  name: 'tail',
  summary: 'follow channels live, resuming after a dropped connection',
  usage: `usage: herald tail PATTERN... [--since ID] [--count N] [--json]
Prints events of the channels or patterns as they are published (GET /v1/stream), one a line:
"ID TYPE DATA" (DATA as JSON; the stream does not name each event's channel). A dropped
connection is reopened with Last-Event-ID: nothing is missed or printed twice. Ctrl-C stops
it and prints, on stderr, the id to resume from.
  --since ID    start after this id (replays what followed it first); default: new events only
  --count N     exit after N events
  --json        one JSON object a line: {"id","type","data"}
${REMOTE_USAGE}`,
  async run(argv, ctx) {
    const { values, positionals } = parse(argv, {
      ...REMOTE_OPTIONS,
      since: { type: 'string' },
      count: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (positionals.length === 0) throw new UsageError('name at least one channel or pattern');
    return tail(
      {
        remote: resolveRemote(values, ctx.env),
        patterns: positionals,
        since: values.since,
        json: values.json === true,
        count: wholeNumber(values.count, '--count', 1, Number.MAX_SAFE_INTEGER),
      },
      ctx,
    );
  },
};
