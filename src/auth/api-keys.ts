import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKeyConfig } from '../config/auth-schema.js';
import { scopesToGrants, type Principal } from './permissions.js';

interface KnownKey {
  readonly digest: Buffer;
  readonly principal: Principal;
}

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * The configured API keys, held only as SHA-256 digests. A presented key is hashed and compared
 * with every known digest in constant time (`timingSafeEqual`, and no early exit), so neither
 * the comparison nor the position of a match leaks through timing. Comparing digests also makes
 * every comparison the same length whatever the key's length.
 */
export class ApiKeyTable {
  readonly #keys: KnownKey[];

  constructor(keys: readonly ApiKeyConfig[]) {
    this.#keys = keys.map((k, i) => {
      const digest = k.keySha256 !== undefined ? Buffer.from(k.keySha256, 'hex') : sha256(k.key!);
      const grants = scopesToGrants(k.scopes);
      const principal: Principal = Object.freeze({
        // A label for logs and limits: the name given in config, or the key's position there.
        identity: `key:${k.name ?? `#${i}`}`,
        kind: 'api_key',
        subscribe: Object.freeze(grants.subscribe),
        publish: Object.freeze(grants.publish),
        admin: grants.admin,
        expiresAt: undefined,
      });
      return { digest, principal };
    });
  }

  get size(): number {
    return this.#keys.length;
  }

  /** The principal of a presented key, or undefined when no configured key matches. */
  lookup(presented: string): Principal | undefined {
    const digest = sha256(presented);
    let found: Principal | undefined;
    for (const k of this.#keys) {
      if (timingSafeEqual(k.digest, digest) && found === undefined) found = k.principal;
    }
    return found;
  }
}
