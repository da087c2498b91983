/** seconds: the window over which a channel's event rate is averaged. */
export const CHANNEL_RATE_WINDOW_SECONDS = 10;
/** Channels whose rates are kept; past it the one quiet longest is forgotten (memory stays bounded). */
export const CHANNEL_ACTIVITY_MAX_CHANNELS = 10_000;

interface Counts {
  /** Events per second of the window, as a ring indexed by `second % window`. */
  readonly buckets: number[];
  /** The second (since the epoch) that `buckets` was last written for. */
  second: number;
  total: number;
  lastAt: number;
}

export interface ChannelRate {
  channel: string;
  /** Events per second, averaged over the last CHANNEL_RATE_WINDOW_SECONDS. */
  eventsPerSecond: number;
  /** Events seen since this node started (or since the channel was last forgotten). */
  events: number;
  /** Milliseconds since the epoch of the newest event. */
  lastEventAt: number;
}

/**
 * Counts the events this node dispatches per channel, for `GET /v1/channels`. Every node
 * dispatches every event of the log (it follows the log), so each node's counts are the whole
 * deployment's. At most CHANNEL_ACTIVITY_MAX_CHANNELS channels are tracked; the Map's insertion
 * order is kept as recency, so the one evicted is the one quiet longest.
 */
export class ChannelActivity {
  readonly #channels = new Map<string, Counts>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Counts `events` events of `channel`. */
  count(channel: string, events = 1): void {
    const now = this.#now();
    const second = Math.floor(now / 1000);
    let c = this.#channels.get(channel);
    if (c) {
      this.#channels.delete(channel); // re-inserted below: most recent last
      advance(c, second);
    } else {
      c = { buckets: new Array<number>(CHANNEL_RATE_WINDOW_SECONDS).fill(0), second, total: 0, lastAt: now };
      if (this.#channels.size >= CHANNEL_ACTIVITY_MAX_CHANNELS) {
        this.#channels.delete(this.#channels.keys().next().value!);
      }
    }
    c.buckets[second % CHANNEL_RATE_WINDOW_SECONDS]! += events;
    c.total += events;
    c.lastAt = now;
    this.#channels.set(channel, c);
  }

  /** The rate of one channel (zero when unseen). */
  rate(channel: string): ChannelRate {
    const c = this.#channels.get(channel);
    if (!c) return { channel, eventsPerSecond: 0, events: 0, lastEventAt: 0 };
    advance(c, Math.floor(this.#now() / 1000));
    const sum = c.buckets.reduce((a, b) => a + b, 0);
    return { channel, eventsPerSecond: sum / CHANNEL_RATE_WINDOW_SECONDS, events: c.total, lastEventAt: c.lastAt };
  }

  /** Every tracked channel, the most recently active first. */
  list(): ChannelRate[] {
    return [...this.#channels.keys()].reverse().map((ch) => this.rate(ch));
  }
}

/** Zeroes the buckets of the seconds that passed with no event since `c.second`. */
function advance(c: Counts, second: number): void {
  const gap = Math.min(second - c.second, CHANNEL_RATE_WINDOW_SECONDS);
  for (let i = 1; i <= gap; i++) c.buckets[(c.second + i) % CHANNEL_RATE_WINDOW_SECONDS] = 0;
  if (second > c.second) c.second = second;
}
