import { createPublicKey, type KeyObject } from 'node:crypto';

/*
 * The JWS algorithms a verification key may use. Here, below src/auth/, because the config schema
 * checks a configured public key at start and the verifier pins its algorithms with the same rule.
 */

export const HMAC_ALGS = ['HS256', 'HS384', 'HS512'];
export const RSA_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const EC_ALGS: Record<string, string[]> = { 'P-256': ['ES256'], 'P-384': ['ES384'], 'P-521': ['ES512'] };
export const OKP_ALGS = ['EdDSA', 'Ed25519'];

/**
 * The algorithms a key may verify, from the key's own type. Pinning the list to the key is what
 * defeats algorithm confusion: `alg: none` is never listed, and a token signed with HS256 using
 * the RSA public key as its HMAC secret is refused because an RSA key only verifies RS/PS.
 */
export function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      return RSA_ALGS;
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
      const algs = EC_ALGS[curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : curve === 'secp521r1' ? 'P-521' : curve];
      if (!algs) throw new Error(`auth.jwt.publicKey: unsupported EC curve ${curve}`);
      return algs;
    }
    case 'ed25519':
      return OKP_ALGS;
    default:
      throw new Error(`auth.jwt.publicKey: unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
  }
}

/**
 * Why `pem` cannot verify tokens (not a public key node can read, or of a type with no JWS
 * algorithm), or undefined when it can. The config schema asks this at start, so a bad key stops
 * Herald with an error that names `auth.jwt.publicKey` instead of a stack trace.
 */
export function publicKeyProblem(pem: string): string | undefined {
  try {
    algorithmsFor(createPublicKey(pem));
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^auth\.jwt\.publicKey: /, '');
  }
}

