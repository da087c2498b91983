import type { Broker } from '../core/broker.js';
import { ClosedError } from '../core/errors.js';
import type { StoredEvent } from '../core/event.js';

/** The single-node broker: hands each batch to the local handlers, synchronously, in order. */
export class MemoryBroker implements Broker {
  readonly #handlers: ((events: readonly StoredEvent[]) => void)[] = [];
  #closed = false;

  publish(events: readonly StoredEvent[]): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('The broker'));
    for (const h of this.#handlers) h(events);
    return Promise.resolve();
  }

  onEvents(handler: (events: readonly StoredEvent[]) => void): void {
    this.#handlers.push(handler);
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
