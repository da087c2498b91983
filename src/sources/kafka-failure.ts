/**
 * System error codes that mean "no broker answered at this address": nothing listens there
 * (refused, reset), the host or network is away (unreachable, timed out), or the name does not
 * resolve.
 */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** The client's code for a connection that could not be opened (its `cause` has the detail). */
const CLIENT_NETWORK_CODE = 'PLT_KFK_NETWORK';

/** Longest cause text kept in the message, so a deep error tree cannot make a huge log line. */
const CAUSE_MAX_CHARS = 300;

interface ErrorLike {
  message?: unknown;
  code?: unknown;
  errors?: unknown;
  cause?: unknown;
}

/**
 * What a failed Kafka client call means, in words an operator can act on. `@platformatic/kafka`
 * reports a broker it cannot reach as `findGroupCoordinator failed 4 times`: an AggregateError
 * whose innermost errors, three levels down, are the `ECONNREFUSED`s that say what happened.
 * When every one of them is a connection failure the message says so plainly, naming the
 * brokers from the config; otherwise it keeps the client's message and adds the distinct
 * innermost causes (a TLS or SASL failure, an unknown topic).
 */
export function describeKafkaFailure(err: unknown, brokers: readonly string[]): string {
  const leaves: Leaf[] = [];
  collectLeaves(err, leaves, 0);
  const codes = [...new Set(leaves.map((l) => l.code).filter((c): c is string => c !== undefined))];
  if (leaves.length > 0 && leaves.every(isUnreachable)) {
    const why = codes.filter((c) => c !== CLIENT_NETWORK_CODE);
    return (
      `no Kafka broker reachable at ${brokers.join(', ')}` +
      (why.length > 0 ? ` (${why.join(', ')})` : '') +
      ': is the broker running, and does kafka.brokers name its address?'
    );
  }
  const top = messageOf(err);
  const missing = [...new Set([top, ...leaves.map((l) => l.message)].map((m) => UNKNOWN_TOPIC.exec(m)?.[1]).filter((t) => t !== undefined))];
  if (missing.length > 0) {
    return (
      `topic ${missing.map((t) => JSON.stringify(t)).join(', ')} does not exist on the broker: create it, ` +
      'or set kafka.createTopics for a broker that creates topics on request'
    );
  }
  const causes = [...new Set(leaves.map((l) => l.message))].filter((m) => m !== top && m !== '');
  const text = causes.length > 0 ? `${top}: ${causes.join('; ')}` : top;
  return text.length > CAUSE_MAX_CHARS ? `${text.slice(0, CAUSE_MAX_CHARS)}...` : text;
}

/** How the client says a topic is missing (`Unknown topic orders.`). */
const UNKNOWN_TOPIC = /^Unknown topic (.+?)\.?$/;

/** Levels of `errors` / `cause` followed; the client nests three, a loop must not hang us. */
const MAX_DEPTH = 8;

/** One innermost error: its text, and its code (the system's, else the client's network code). */
interface Leaf {
  message: string;
  code: string | undefined;
}

function collectLeaves(e: unknown, out: Leaf[], depth: number): void {
  if (e === null || typeof e !== 'object') {
    out.push({ message: String(e), code: undefined });
    return;
  }
  const x = e as ErrorLike;
  if (depth < MAX_DEPTH && Array.isArray(x.errors) && x.errors.length > 0) {
    for (const inner of x.errors) collectLeaves(inner, out, depth + 1);
    return;
  }
  // A client network error wraps the system error that has the code; a cause without a code
  // (a connect timeout) keeps the client's network code.
  if (depth < MAX_DEPTH && x.cause !== null && typeof x.cause === 'object') {
    const before = out.length;
    collectLeaves(x.cause, out, depth + 1);
    for (let i = before; i < out.length; i++) out[i]!.code ??= codeOf(x);
    return;
  }
  out.push({ message: messageOf(x), code: codeOf(x) });
}

function codeOf(e: ErrorLike): string | undefined {
  return typeof e.code === 'string' ? e.code : undefined;
}

function messageOf(e: unknown): string {
  if (e !== null && typeof e === 'object' && typeof (e as ErrorLike).message === 'string') {
    return (e as { message: string }).message;
  }
  return String(e);
}

function isUnreachable(l: Leaf): boolean {
  const code = l.code;
  return code !== undefined && (UNREACHABLE_CODES.has(code) || code === CLIENT_NETWORK_CODE);
}
