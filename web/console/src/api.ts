/**
 * Every action of the console is a call to Herald's documented HTTP API. With credentials
 * configured, the admin API key the operator typed is kept in sessionStorage (gone when the tab
 * closes) and sent as `Authorization: Bearer`, never in a URL, where logs and history keep it.
 */
const KEY_STORAGE = 'herald.console.apiKey';

export function apiKey(): string | undefined {
  return sessionStorage.getItem(KEY_STORAGE) ?? undefined;
}

export function setApiKey(key: string | undefined): void {
  if (key === undefined) sessionStorage.removeItem(KEY_STORAGE);
  else sessionStorage.setItem(KEY_STORAGE, key);
}

/** An answer other than 2xx, with Herald's error code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Codes that mean "these credentials will not do": the console asks for a key again. */
export const AUTH_CODES = new Set(['UNAUTHORIZED', 'API_KEY_INVALID', 'FORBIDDEN', 'TOKEN_INVALID', 'TOKEN_EXPIRED']);

let onAuthFailure: ((err: ApiError) => void) | undefined;

/** Called when a request is refused for its credentials (the key was removed, or lacks `admin`). */
export function whenAuthFails(fn: (err: ApiError) => void): void {
  onAuthFailure = fn;
}

function headers(json: boolean): Record<string, string> {
  const h: Record<string, string> = {};
  const key = apiKey();
  if (key !== undefined) h.authorization = `Bearer ${key}`;
  if (json) h['content-type'] = 'application/json';
  return h;
}

async function failure(res: Response): Promise<ApiError> {
  let code = 'HTTP_' + res.status;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    /* not Herald's JSON error */
  }
  return new ApiError(res.status, code, message);
}

/** Calls the API; resolves to the parsed JSON (undefined for 204), rejects with an ApiError. */
export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: headers(body !== undefined),
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    cache: 'no-store',
  });
  if (!res.ok) {
    const err = await failure(res);
    if (AUTH_CODES.has(err.code)) onAuthFailure?.(err);
    throw err;
  }
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** `/metrics` as text (Prometheus exposition format). */
export async function metricsText(): Promise<string> {
  const res = await fetch('/metrics', { headers: headers(false), cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  return res.text();
}

/** The sum of every sample of `name` (all label sets) in Prometheus text, or undefined if absent. */
export function metricSum(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}

/** Samples of `name` by the value of one label: `herald_connections{transport="sse"} 3` → { sse: 3 }. */
export function metricByLabel(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`^${name}\\{[^}]*${label}="([^"]*)"[^}]*\\} (\\S+)$`);
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Shows an error (or a success note) in the page's message bar. */
export function notify(message: string, kind: 'error' | 'ok' = 'ok'): void {
  const bar = document.getElementById('notice');
  if (!bar) return;
  bar.textContent = message;
  bar.className = `notice ${kind}`;
  bar.hidden = false;
}

/** Runs an action, showing its error in the message bar instead of failing silently. */
export async function attempt<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    const text = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err);
    notify(`${what} failed: ${text}`, 'error');
    return undefined;
  }
}
