/**
 * A component `/readyz` asks besides the store (the Kafka consumer). Defined in core so that a
 * source can report its state without importing the HTTP layer that serves it.
 */
export interface ReadinessCheck {
  readonly name: string;
  readonly ready: boolean;
  readonly state: string;
}
