import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { buildConnector } from 'undici';

/**
 * The SSRF guard (OWASP "Server-Side Request Forgery"): an endpoint URL is chosen by whoever can
 * create endpoints, so without a guard Herald could be made to POST into its own network, to
 * loopback admin ports, or to a cloud metadata service that hands out credentials.
 *
 * The check is made on the address the socket actually connects to, never on an earlier DNS
 * answer: a name that resolves to a public address when checked and to 127.0.0.1 when connected
 * (DNS rebinding) must not get through. Two layers do that: the resolver used *for the connect*
 * refuses forbidden answers, and after the connect the peer address is checked again (this also
 * covers IP literals, which skip the resolver).
 */

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // RFC 6598 shared address space (carrier NAT; Alibaba metadata 100.100.100.200)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local; AWS/GCP/Azure metadata 169.254.169.254
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255 broadcast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
blocked.addAddress('168.63.129.16', 'ipv4'); // Azure wire server: public range, host-only service
for (const [net, prefix] of [
  ['::', 96], // unspecified, loopback ::1, IPv4-compatible
  ['64:ff9b::', 32], // NAT64: the well-known /96 is judged by its IPv4 below; local-use 64:ff9b:1::/48 (RFC 8215) and the rest, refused
  ['100::', 64], // discard
  ['2001::', 32], // Teredo (RFC 4380): tunnels to the IPv4 client hidden (XOR-obfuscated) in the low 32 bits
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local (AWS metadata fd00:ec2::254)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // old site-local
  ['ff00::', 8], // multicast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** The eight 16-bit groups of an IPv6 address (with an optional dotted IPv4 tail). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase();
  const tail: number[] = [];
  const dot = text.lastIndexOf(':');
  if (text.includes('.', dot)) {
    const v4 = text.slice(dot + 1).split('.').map(Number);
    tail.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    text = text.slice(0, dot + 1) + '0';
  }
  const [head = '', rest] = text.split('::');
  const a = head === '' ? [] : head.split(':');
  const b = rest === undefined || rest === '' ? [] : rest.split(':');
  if (tail.length > 0) (rest === undefined ? a : b).pop();
  const missing = 8 - a.length - b.length - tail.length;
  return [...a, ...Array<string>(Math.max(0, missing)).fill('0'), ...b].map((g) => parseInt(g, 16)).concat(tail);
}

/**
 * The IPv4 address an IPv6 address carries, if any: a host or gateway on the way turns these into
 * IPv4 packets, so `[::ffff:0:7f00:1]` reaches 127.0.0.1 as surely as `127.0.0.1` does.
 */
function embeddedIpv4(address: string): string | undefined {
  const g = ipv6Groups(address);
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && g[5] === 0xffff) return v4(g[6]!, g[7]!); // ::ffff:a.b.c.d, IPv4-mapped (RFC 4291)
  if (zero(0, 4) && g[4] === 0xffff && g[5] === 0) return v4(g[6]!, g[7]!); // ::ffff:0:a.b.c.d, IPv4-translated (RFC 2765)
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return v4(g[6]!, g[7]!); // NAT64, RFC 6052
  if (g[0] === 0x2002) return v4(g[1]!, g[2]!); // 6to4, RFC 3056
  if ((g[4]! & 0xfdff) === 0 && g[5] === 0x5efe) return v4(g[6]!, g[7]!); // ISATAP interface id, RFC 5214
  return undefined;
}

/** True when Herald must not connect to `address` (anything that is not a public unicast IP). */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family !== 6) return true;
  const v4 = embeddedIpv4(address);
  if (v4 !== undefined) return blocked.check(v4, 'ipv4');
  return blocked.check(address, 'ipv6');
}

/** The error an attempt records when the guard refuses a target. */
export class TargetForbiddenError extends Error {
  readonly code = 'TARGET_FORBIDDEN';
  constructor(host: string, address: string) {
    super(
      `target forbidden: ${host === address ? address : `${host} resolves to ${address}`} is not a public ` +
        'address (SSRF guard; outbound.allowPrivateTargets is false)',
    );
    this.name = 'TargetForbiddenError';
  }
}

/** A resolver for `net.connect` that refuses a name when any of its answers is forbidden. */
export function guardedLookup(resolve: LookupFunction = dnsLookup as LookupFunction): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as unknown as { address: string; family: number }[];
      const bad = list.find((a) => isForbiddenAddress(a.address));
      if (bad || list.length === 0) {
        return callback(new TargetForbiddenError(hostname, bad?.address ?? '(no address)'), '', 0);
      }
      if (options.all) return callback(null, list as never);
      return callback(null, list[0]!.address, list[0]!.family);
    });
  };
}

export interface ConnectorOptions {
  allowPrivateTargets: boolean;
  connectTimeoutMs: number;
  /** The resolver behind the guard (tests inject one); `dns.lookup` by default. */
  lookup?: LookupFunction | undefined;
}

/** An undici connector that applies the guard to every connection it opens. */
export function guardedConnector(opts: ConnectorOptions): buildConnector.connector {
  if (opts.allowPrivateTargets) {
    return buildConnector({ timeout: opts.connectTimeoutMs, ...(opts.lookup ? { lookup: opts.lookup } : {}) });
  }
  const base = buildConnector({ timeout: opts.connectTimeoutMs, lookup: guardedLookup(opts.lookup) });
  return (options, callback) => {
    if (isIP(options.hostname) && isForbiddenAddress(options.hostname)) {
      callback(new TargetForbiddenError(options.hostname, options.hostname), null);
      return;
    }
    base(options, (err, socket) => {
      if (err) return callback(err, null);
      const peer = socket!.remoteAddress;
      if (peer === undefined || isForbiddenAddress(peer)) {
        socket!.destroy();
        return callback(new TargetForbiddenError(options.hostname, peer ?? '(unknown)'), null);
      }
      callback(null, socket!);
    });
  };
}
