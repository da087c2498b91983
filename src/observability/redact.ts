/**
 * Query parameters whose value is a credential or a signature: `?token=` (EventSource cannot
 * send headers, so a JWT rides in the URL), API keys, OAuth codes, pre-signed URL signatures.
 * A log line is read by more people, and kept longer, than any credential should be (OWASP
 * Logging Cheat Sheet: never log access tokens or passwords).
 */
const CREDENTIAL_PARAM =
  /([?&;](?:token|access_token|id_token|refresh_token|jwt|key|api_key|apikey|api-key|secret|client_secret|password|pass|auth|authorization|sig|signature|x-amz-signature|code)=)[^&;#\s"']*/gi;

/** `text` with the value of every credential query parameter replaced by `[redacted]`. */
export function redactCredentials(text: string): string {
  return text.includes('=') ? text.replace(CREDENTIAL_PARAM, '$1[redacted]') : text;
}

/** pino serializers: whatever a log line carries as `url`, `req` or `err`, credentials are cut out. */
export const redactingSerializers = {
  url: (url: unknown) => (typeof url === 'string' ? redactCredentials(url) : url),
  req: (req: { method?: string; url?: string; ip?: string; host?: string; socket?: { remotePort?: number } }) => ({
    method: req.method,
    url: typeof req.url === 'string' ? redactCredentials(req.url) : req.url,
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  }),
};
