import type { SASLOptions } from '@platformatic/kafka';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { KafkaConfig } from '../config/kafka-schema.js';

/** The options every Kafka client of Herald shares: brokers, identity, TLS and SASL. */
export interface KafkaConnectionOptions {
  clientId: string;
  bootstrapBrokers: string[];
  tls?: TlsOptions;
  sasl?: SASLOptions;
  /** milliseconds to open a connection to a broker. */
  connectTimeout: number;
  /** milliseconds a request may take before it is retried. */
  timeout: number;
}

/** milliseconds to open a TCP (and TLS) connection to a broker before trying again. */
const CONNECT_TIMEOUT_MS = 10_000;
/** milliseconds a request waits for its answer; a fetch adds its own long-poll wait on top. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Builds the client options from the config. Certificate files are read here, once, at start:
 * a missing file stops Herald with a clear error instead of failing every reconnect.
 */
export function kafkaConnectionOptions(config: KafkaConfig, suffix = ''): KafkaConnectionOptions {
  const opts: KafkaConnectionOptions = {
    clientId: config.clientId + suffix,
    bootstrapBrokers: [...config.brokers],
    connectTimeout: CONNECT_TIMEOUT_MS,
    timeout: REQUEST_TIMEOUT_MS,
  };
  if (config.ssl === true) opts.tls = {};
  else if (config.ssl) {
    const s = config.ssl;
    opts.tls = { rejectUnauthorized: s.rejectUnauthorized };
    if (s.caFile) opts.tls.ca = readPem(s.caFile, 'kafka.ssl.caFile');
    if (s.certFile) opts.tls.cert = readPem(s.certFile, 'kafka.ssl.certFile');
    if (s.keyFile) opts.tls.key = readPem(s.keyFile, 'kafka.ssl.keyFile');
    if (s.servername) opts.tls.servername = s.servername;
  }
  if (config.sasl) {
    opts.sasl = { mechanism: config.sasl.mechanism, username: config.sasl.username, password: config.sasl.password };
  }
  return opts;
}

function readPem(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${key}: cannot read ${path}: ${(err as Error).message}`);
  }
}
