import type { Receipt, ReceiptInput, ReceiptQuery } from '../../core/inbound-receipt.js';

/**
 * The inbound log: one receipt per webhook request, accepted or not, for operators to audit and
 * replay. The receiver reads and writes receipts only through this interface; the backend set
 * provides it (src/stores/backend.ts), kept in the same store as the log because an accepted
 * receipt is written in the event's own append transaction (EventInput.receipt; see the
 * "Inbound receipts" part of the EventStore specification for what each call promises).
 */
export interface InboundLog {
  /** Records receipts that append no event (rejected arrivals), in one durable transaction. */
  recordReceipts(receipts: readonly ReceiptInput[]): Promise<Receipt[]>;
  /** One source's receipts, newest first. */
  listReceipts(source: string, query: ReceiptQuery): Promise<Receipt[]>;
  /** One receipt of `source`, or undefined when it does not exist (or was pruned). */
  getReceipt(source: string, id: number): Promise<Receipt | undefined>;
}
