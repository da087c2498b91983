/**
 * Inbound receipts: the log of webhook arrivals a source received (accepted, duplicate,
 * replayed, rejected). The event store keeps them beside the events, so an accepted arrival's
 * receipt, its raw body and its idempotency key are written in the same transaction as the event
 * (see `EventInput.receipt` and the EventStore specification).
 */

/** What happened to one arrival. */
export type ReceiptStatus = 'accepted' | 'duplicate' | 'replayed' | 'rejected';

/** A receipt as its writer hands it to the store. */
export interface ReceiptInput {
  /** The configured source name (`stripe`, `github`, ...). */
  readonly source: string;
  /**
   * `accepted` and `replayed` ride on an appended event (`EventInput.receipt`); the store turns
   * `accepted` into `duplicate` when the event's idempotency key was already known. `rejected`
   * receipts append no event and go through `recordReceipts`.
   */
  readonly status: 'accepted' | 'replayed' | 'rejected';
  /** Milliseconds since the epoch, when the request arrived. */
  readonly receivedAt: number;
  /** Milliseconds since the epoch after which the store may delete the receipt. */
  readonly keepUntil: number;
  /** The provider's own id of the event (Stripe `evt_...`, `X-GitHub-Delivery`, ...). */
  readonly providerId?: string | undefined;
  /** The provider's event type, when known. */
  readonly type?: string | undefined;
  /** The request headers that matter for an audit (signature, id, timestamp): never secrets. */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * SHA-256 (hex) of the bytes the provider's signature covers. When the source already holds
   * an accepted arrival with the same digest whose `keepUntil` has not passed, this one is a
   * duplicate of it, whatever its provider id: providers that sign only the body (GitHub,
   * Shopify, generic HMAC) leave the id and type in unsigned headers, which a replay can change.
   * Undefined for unsigned sources.
   */
  readonly digest?: string | undefined;
  /** The raw body exactly as received; kept for accepted arrivals only (replay needs it). */
  readonly body?: Buffer | undefined;
  /** Why a rejected arrival was turned away (a registry code and its message). */
  readonly error?: { readonly code: string; readonly message: string } | undefined;
  /** For a `replayed` receipt: the receipt whose payload was published again. */
  readonly replayOf?: number | undefined;
}

/** A receipt as the store keeps it. */
export interface Receipt {
  /** Assigned by the store: an integer > 0, strictly increasing, never reused. */
  readonly id: number;
  readonly source: string;
  readonly status: ReceiptStatus;
  readonly receivedAt: number;
  readonly keepUntil: number;
  readonly providerId: string | undefined;
  readonly type: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** Only on `accepted` receipts. */
  readonly body: Buffer | undefined;
  readonly error: { readonly code: string; readonly message: string } | undefined;
  /** The event this arrival appended (`accepted`, `replayed`) or matched (`duplicate`). */
  readonly seq: number | undefined;
  readonly replayOf: number | undefined;
}

/** Which receipts a listing returns: newest first, ids below `before` (0: from the newest). */
export interface ReceiptQuery {
  readonly before: number;
  readonly limit: number;
  readonly status?: ReceiptStatus | undefined;
}

/** Builds the stored form of a receipt; the body is dropped unless the arrival was accepted. */
export function makeReceipt(id: number, input: ReceiptInput, status: ReceiptStatus, seq: number | undefined): Receipt {
  return {
    id,
    source: input.source,
    status,
    receivedAt: input.receivedAt,
    keepUntil: input.keepUntil,
    providerId: input.providerId,
    type: input.type,
    headers: input.headers,
    body: status === 'accepted' ? input.body : undefined,
    error: input.error,
    seq,
    replayOf: input.replayOf,
  };
}
