/**
 * A component `/readyz` asks besides the store (the broker, the Kafka consumer). Defined in core so that a
 * source can report its state without importing the HTTP layer that serves it.
 */
export interface ReadinessCheck {
  readonly name: string;
  readonly ready: boolean;
  readonly state: string;
  /**
   * Listed in `checks` only while not ready: a part every node has (the broker) shows up when it
   * fails, so a healthy single node still answers `{"status":"ready"}`.
   */
  readonly listedOnlyWhenFailing?: boolean;
}
