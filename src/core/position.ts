import { randomInt } from 'node:crypto';
import { HeraldError } from './errors.js';

/**
 * Event ids and resume positions, at the edges.
 *
 * Inside, a position is the store's integer `seq`. Outside, every id Herald emits is
 * `<epoch>-<seq>` (e.g. `k3f9qa-42`), where the epoch names the log that assigned the seq: it is
 * made when the log is created and changes when the log is lost or rebuilt (a memory log after a
 * restart, a deleted data folder). Without it, `42` from a lost log would be read as `42` of the
 * new one and the client would silently skip (or repeat) events; with it, the hub sees that the
 * position is from another log and sends the reset. Clients treat ids as opaque strings.
 *
 * A bare integer (`0`, or an id a client stored before ids carried the epoch) is still accepted
 * as a position in the current log, so `Last-Event-ID: 0` keeps meaning "from the start".
 */
export interface Position {
  readonly seq: number;
  /** The log the seq belongs to; undefined for a bare integer (taken as the current log). */
  readonly epoch?: string | undefined;
}

/** Characters of a newly made epoch: 36^6 (about 2 billion) values, so two logs never share one in practice. */
export const EPOCH_LENGTH = 6;

/**
 * Epochs Herald accepts back: lowercase base36, up to 16 characters (a backend may make longer
 * ones than ours). The id goes into SSE `id:` lines and JSON without escaping, so nothing else
 * is allowed in.
 */
const EPOCH = /^[0-9a-z]{1,16}$/;
/** A seq: at most 15 digits, so it is always a safe integer. */
const ID = /^(?:([0-9a-z]{1,16})-)?(\d{1,15})$/;

/** A fresh random epoch for a log being created. */
export function newEpoch(): string {
  return randomInt(36 ** EPOCH_LENGTH).toString(36).padStart(EPOCH_LENGTH, '0');
}

/** True when `value` can be used as an epoch (see EPOCH). */
export function isEpoch(value: unknown): value is string {
  return typeof value === 'string' && EPOCH.test(value);
}

/** The id clients see for the event at `seq` of the log `epoch`. */
export function formatEventId(epoch: string, seq: number): string {
  return `${epoch}-${seq}`;
}

/**
 * Parses a client-supplied event id (`Last-Event-ID`, `lastEventId`, `since`, `after`): an id
 * Herald issued (`<epoch>-<seq>`), or a bare non-negative integer.
 */
export function parsePosition(value: unknown): Position {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return { seq: value };
  const m = typeof value === 'string' ? ID.exec(value) : null;
  if (!m) {
    throw new HeraldError('POSITION_INVALID', 'an event id is one Herald issued (`<epoch>-<seq>`) or a non-negative integer');
  }
  return m[1] === undefined ? { seq: Number(m[2]) } : { seq: Number(m[2]), epoch: m[1] };
}

/** True when `p` names a position in the log whose epoch is `epoch` (a bare integer always does). */
export function inLog(p: Position, epoch: string): boolean {
  return p.epoch === undefined || p.epoch === epoch;
}
