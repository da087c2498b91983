export { connect, HeraldClient } from './client.js';
export type {
  ConnectOptions,
  EventMap,
  HeraldEphemeralEvent,
  HeraldEvent,
  Members,
  Position,
  PresenceChange,
  PublishOptions,
  SubscribeOptions,
  Subscription,
} from './client.js';
export { HeraldClientError, type ClientErrorCode } from './errors.js';
export type { Status, TransportKind } from './link.js';
export type { WebSocketConstructor, WebSocketLike } from './env.js';
export { CLOSE, ERROR_CODES, SSE_EVENT } from './protocol.js';
export type * from './protocol.js';
