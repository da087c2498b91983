/**
 * When to try again. Retry schedules are data (config `outbound.retryScheduleSeconds`): one
 * delay before each attempt, the first usually 0. Each delay is jittered (±`jitter`) so that
 * deliveries which failed together (a receiver outage) do not all come back in the same second.
 */
export class RetrySchedule {
  readonly #delaysMs: readonly number[];
  readonly #jitter: number;
  readonly #random: () => number;

  constructor(delaysSeconds: readonly number[], jitter: number, random: () => number = Math.random) {
    this.#delaysMs = delaysSeconds.map((s) => s * 1000);
    this.#jitter = jitter;
    this.#random = random;
  }

  /** How many attempts the schedule allows. */
  get attempts(): number {
    return this.#delaysMs.length;
  }

  /**
   * The jittered delay before attempt number `index` (0-based), or undefined when the schedule
   * has no such attempt (the delivery is dead-lettered).
   */
  delayBefore(index: number): number | undefined {
    const base = this.#delaysMs[index];
    if (base === undefined) return undefined;
    return Math.round(base * (1 + this.#jitter * (2 * this.#random() - 1)));
  }
}

export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * One endpoint's circuit breaker: after `threshold` consecutive failures it opens and Herald
 * stops sending to the endpoint for `cooldownMs`; then one probe request is let through
 * (half-open). A success closes it; a failure opens it again for twice as long, up to
 * `maxCooldownMs`. Deliveries wait in the store meanwhile, consuming none of their attempts.
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #cooldownMs: number;
  readonly #maxCooldownMs: number;
  #failures = 0;
  #openUntil = 0;
  #currentCooldownMs: number;
  #probeInFlight = false;

  constructor(threshold: number, cooldownMs: number, maxCooldownMs = cooldownMs * 32) {
    this.#threshold = threshold;
    this.#cooldownMs = cooldownMs;
    this.#currentCooldownMs = cooldownMs;
    this.#maxCooldownMs = maxCooldownMs;
  }

  state(now: number): CircuitState {
    if (this.#failures < this.#threshold) return 'closed';
    return now < this.#openUntil ? 'open' : 'half-open';
  }

  /** When an open circuit lets its next probe through (0 when closed). */
  get reopensAt(): number {
    return this.#failures < this.#threshold ? 0 : this.#openUntil;
  }

  /** How many requests may start now, out of `wanted`. */
  allowance(now: number, wanted: number): number {
    switch (this.state(now)) {
      case 'closed':
        return wanted;
      case 'open':
        return 0;
      case 'half-open':
        return this.#probeInFlight ? 0 : Math.min(1, wanted);
    }
  }

  /** A request started; in half-open state it is the probe. */
  started(now: number): void {
    if (this.state(now) === 'half-open') this.#probeInFlight = true;
  }

  succeeded(): void {
    this.#failures = 0;
    this.#probeInFlight = false;
    this.#currentCooldownMs = this.#cooldownMs;
  }

  failed(now: number): void {
    const wasProbe = this.#probeInFlight;
    this.#probeInFlight = false;
    this.#failures++;
    if (this.#failures < this.#threshold) return;
    if (wasProbe) this.#currentCooldownMs = Math.min(this.#currentCooldownMs * 2, this.#maxCooldownMs);
    // Failures of requests started before the circuit opened do not push the probe back.
    if (wasProbe || this.#failures === this.#threshold) this.#openUntil = now + this.#currentCooldownMs;
  }
}
