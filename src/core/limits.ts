/**
 * Hard limits of the protocol itself. Operational limits (body size, buffers, heartbeats,
 * retention) are config with these as defaults: see src/config/defaults.ts.
 */

/** Channel names are at most this many UTF-8 bytes: keeps index keys and SQL keys small. */
export const CHANNEL_MAX_BYTES = 255;

/** Event types are at most this many bytes: they travel in every SSE `event:` line. */
export const TYPE_MAX_BYTES = 255;

/** Idempotency keys are at most this many bytes: they are a primary key in the store. */
export const IDEMPOTENCY_KEY_MAX_BYTES = 255;

/** Events per `POST /v1/publish` batch: one batch is one transaction. */
export const PUBLISH_BATCH_MAX_EVENTS = 1_000;

/** Events per page of `GET /v1/events`, and the default page. */
export const EVENTS_PAGE_MAX = 1_000;
export const EVENTS_PAGE_DEFAULT = 100;

/**
 * Rows per page of the operator lists (`GET /v1/endpoints/{id}/deliveries`,
 * `GET /v1/webhooks/{source}/received`), and the default page: each row carries a body or its
 * attempts, so a page is kept smaller than a page of events.
 */
export const LIST_PAGE_MAX = 500;
export const LIST_PAGE_DEFAULT = 50;

/** Rows deleted per statement while pruning, so a prune never holds SQLite's write lock for long. */
export const PRUNE_CHUNK_ROWS = 10_000;

/** Events read from the store per replay query; a replay loops over pages of this size. */
export const REPLAY_PAGE_EVENTS = 500;

/**
 * Rows of the log one `readPage` call may examine, matched or not. A read runs synchronously
 * (SQLite through better-sqlite3, or an array scan), so this bounds how long one read holds the
 * event loop (~2-5 ms here): a pattern that matches few rows of a long log (`*.42`, or 100
 * leading wildcards) is read in many short slices with other work in between, instead of one
 * call that scans the whole log while every other client waits (a denial of service by resume).
 */
export const READ_SCAN_MAX_ROWS = 2_000;

/** The event type given to events published without one (the SSE default, RFC-less but WHATWG). */
export const DEFAULT_EVENT_TYPE = 'message';

/**
 * Subscribers written per slice of a write round. A round to many subscribers is cut into slices
 * with the event loop turning between them, so publishes that arrive meanwhile are taken in and
 * join the writes of the subscribers the round has not reached yet. A slice is ~0.6 ms at the
 * ~20 µs a loopback write costs on a small machine: that is how long a publish, or the fsync
 * that releases its events, waits for the loop. Measured (`npm run bench -- --targets herald
 * --scenarios steady`, interleaved runs): 128 gave steady p50 21-22 ms, 32 gave 14-15 ms, 16 and
 * 8 no better than 32; burst throughput and the fan-out were not lowered.
 */
export const WRITE_SLICE_SUBSCRIBERS = 32;
