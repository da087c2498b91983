/**
 * The client protocol (WebSocket frames, SSE event names, close codes, error codes) lives in the
 * client SDK's package, which must build without the server; the server takes it from there so
 * both speak one definition. It is plain types and constants: no I/O, as core requires.
 */
export * from '../../packages/client/src/protocol.js';
