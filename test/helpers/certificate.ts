import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SelfSigned {
  /** PEM files in `dir`. */
  certFile: string;
  keyFile: string;
  /** The certificate itself, for a client's `ca`: it is its own issuer. */
  ca: Buffer;
}

/**
 * A fresh self-signed certificate for 127.0.0.1 and localhost (P-256, one day), made by
 * `openssl` in `dir`: what a user makes to try TLS (README "HTTPS and HTTP/2").
 */
export function selfSignedCertificate(dir: string): SelfSigned {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile,
  ], { stdio: 'ignore' });
  return { certFile, keyFile, ca: readFileSync(certFile) };
}
