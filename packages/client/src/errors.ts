import type { ErrorCode } from './protocol.js';

/** Codes the SDK itself gives, beside the server's (src/core/errors.ts on the server). */
export type ClientErrorCode = 'CONNECTION_LOST' | 'CLOSED' | 'TIMEOUT';

/** An error from Herald (its `code` from the protocol's registry) or from the SDK. */
export class HeraldClientError extends Error {
  readonly code: ErrorCode | ClientErrorCode;
  /** The HTTP status when the server refused a request or a connection. */
  readonly status: number | undefined;
  /** True when the client stopped: the credentials were refused (401/403) or it was closed. */
  readonly fatal: boolean;

  constructor(code: ErrorCode | ClientErrorCode, message: string, status?: number, fatal = false) {
    super(message);
    this.name = 'HeraldClientError';
    this.code = code;
    this.status = status;
    this.fatal = fatal;
  }
}

/** The error of a refused HTTP answer, from its `{ "error": { code, message } }` body. */
export async function refusal(res: { status: number; json(): Promise<unknown> }, fatal = false): Promise<HeraldClientError> {
  let body: { error?: { code?: ErrorCode; message?: string } } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  const code = body.error?.code ?? (res.status === 401 ? 'UNAUTHORIZED' : res.status === 403 ? 'FORBIDDEN' : 'INTERNAL');
  return new HeraldClientError(code, body.error?.message ?? `HTTP ${res.status}`, res.status, fatal);
}
