import { readFileSync } from 'node:fs';
import { ConfigError } from '../../config/load.js';
import type { SourceConfig } from '../../config/sources-schema.js';
import { githubVerifier } from './github-verifier.js';
import { hmacVerifier } from './hmac-verifier.js';
import { noneVerifier } from './none-verifier.js';
import { PaypalCertificates } from './paypal-certificates.js';
import { paypalVerifier } from './paypal-verifier.js';
import { shopifyVerifier } from './shopify-verifier.js';
import { slackVerifier } from './slack-verifier.js';
import { standardVerifier } from './standard-verifier.js';
import { stripeVerifier } from './stripe-verifier.js';
import type { WebhookVerifier } from './verifier.js';

/** The one switch over providers: builds a source's verifier from its config. */
export function createVerifier(name: string, s: SourceConfig): WebhookVerifier {
  const { secrets, toleranceSeconds } = s;
  switch (s.provider) {
    case 'stripe':
      return stripeVerifier({ secrets, toleranceSeconds });
    case 'standard':
      return standardVerifier({ secrets, toleranceSeconds });
    case 'github':
      return githubVerifier({ secrets });
    case 'shopify':
      return shopifyVerifier({ secrets });
    case 'slack':
      return slackVerifier({ secrets, toleranceSeconds });
    case 'paypal': {
      let certificates: PaypalCertificates;
      try {
        const pinnedPem = s.certificateFile === undefined ? undefined : readFileSync(s.certificateFile);
        certificates = new PaypalCertificates({ pinnedPem });
      } catch (err) {
        throw new ConfigError(`config key "sources.${name}.certificateFile": ${(err as Error).message}`);
      }
      return paypalVerifier({ webhookIds: secrets, toleranceSeconds, certificates });
    }
    case 'hmac':
      return hmacVerifier({ secrets, header: s.header, encoding: s.encoding, prefix: s.prefix, idHeader: s.idHeader, typeHeader: s.typeHeader });
    case 'none':
      return noneVerifier({ idHeader: s.idHeader, typeHeader: s.typeHeader });
  }
}
