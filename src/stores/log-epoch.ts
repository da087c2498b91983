import { randomBytes } from 'node:crypto';

/**
 * Random bytes of a log's epoch (12 hex characters): enough that two logs made anywhere never
 * share one, short enough to sit in every event id.
 */
export const LOG_EPOCH_BYTES = 6;

/**
 * A new log identity. Made once, when a log is created: a log that is lost or rebuilt gets a new
 * one, so positions handed out by the old log are never mistaken for positions in the new.
 */
export function newLogEpoch(): string {
  return randomBytes(LOG_EPOCH_BYTES).toString('hex');
}
