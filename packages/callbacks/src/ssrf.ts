/**
 * SSRF guard for callback URLs (they come from tenants). Two checks:
 * - at parse time: scheme http(s) only, and an IP-literal host (in any spelling Node's URL
 *   parser normalises: 2130706433, 0x7f000001, 0177.0.0.1, 127.1, [::ffff:127.0.0.1]) must be a
 *   public unicast address;
 * - at connect time: the socket's `lookup` hook refuses any resolved address that is not, so DNS
 *   rebinding cannot slip through (see `guardedLookup`).
 * Refused: loopback, private, link-local, CGNAT, multicast, broadcast, reserved, documentation,
 * benchmarking, 6to4 and NAT64 (which embed IPv4), IPv4-mapped forms of all of these (Node's
 * BlockList matches ::ffff:a.b.c.d against IPv4 rules), and cloud metadata (169.254.169.254).
 * An explicit allow-list of CIDRs (off by default) admits addresses for local development/tests.
 */
import dns, { type LookupAddress } from 'node:dns';
import net from 'node:net';

const BLOCKED_V4 = [
  '0.0.0.0/8', // "this network"
  '10.0.0.0/8', // private
  '100.64.0.0/10', // CGNAT
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local, cloud metadata
  '172.16.0.0/12', // private
  '192.0.0.0/24', // IETF protocol assignments
  '192.0.2.0/24', // TEST-NET-1
  '192.88.99.0/24', // 6to4 relay anycast
  '192.168.0.0/16', // private
  '198.18.0.0/15', // benchmarking
  '198.51.100.0/24', // TEST-NET-2
  '203.0.113.0/24', // TEST-NET-3
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, broadcast
];

const BLOCKED_V6 = [
  '::/96', // unspecified, loopback, IPv4-compatible (deprecated)
  '64:ff9b::/96', // NAT64
  '64:ff9b:1::/48', // local-use NAT64
  '100::/64', // discard-only
  '2001::/23', // IETF protocol assignments (Teredo, ORCHIDv2, benchmarking, ...)
  '2001:db8::/32', // documentation
  '2002::/16', // 6to4
  '3fff::/20', // documentation (RFC 9637)
  '5f00::/16', // SRv6 SIDs
  'fc00::/7', // unique local
  'fe80::/10', // link-local
  'fec0::/10', // site-local (deprecated)
  'ff00::/8', // multicast
];

export interface AddressPolicy {
  /** Whether a connection to this IP address may be opened. */
  isAllowed(ip: string): boolean;
}

function addCidr(list: net.BlockList, cidr: string): void {
  const [address, prefix] = cidr.split('/');
  const family = net.isIPv6(address!) ? 'ipv6' : 'ipv4';
  list.addSubnet(address!, Number(prefix ?? (family === 'ipv6' ? 128 : 32)), family);
}

/** A policy refusing every non-public address, except those in `allowCidrs`. */
export function createAddressPolicy(allowCidrs: readonly string[] = []): AddressPolicy {
  const blocked = new net.BlockList();
  for (const cidr of BLOCKED_V4) addCidr(blocked, cidr);
  for (const cidr of BLOCKED_V6) addCidr(blocked, cidr);
  const allowed = new net.BlockList();
  for (const cidr of allowCidrs) addCidr(allowed, cidr);
  return {
    isAllowed(ip) {
      const family = net.isIP(ip);
      if (family === 0) return false;
      const type = family === 6 ? 'ipv6' : 'ipv4';
      if (allowed.check(ip, type)) return true;
      return !blocked.check(ip, type);
    },
  };
}

/** Parse `ALLOW` settings like "127.0.0.0/8, ::1/128"; throws on a malformed CIDR. */
export function parseCidrs(value: string | undefined): string[] {
  const cidrs = (value ?? '').split(/[\s,]+/).filter(Boolean);
  for (const cidr of cidrs) {
    const [address, prefix] = cidr.split('/');
    const family = net.isIP(address ?? '');
    const max = family === 6 ? 128 : 32;
    if (!family || (prefix !== undefined && !(Number(prefix) >= 0 && Number(prefix) <= max))) throw new Error(`invalid CIDR: ${cidr}`);
  }
  return cidrs;
}

export type UrlCheck = { ok: true; url: URL } | { ok: false; reason: string };

/** Parse-time check: scheme, and IP-literal hosts. Hostnames are checked when resolved. */
export function checkCallbackUrl(raw: string, policy: AddressPolicy): UrlCheck {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'not a valid absolute URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: `scheme ${url.protocol} is not allowed (use http or https)` };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!host) return { ok: false, reason: 'URL has no host' };
  if (net.isIP(host) && !policy.isAllowed(host)) return { ok: false, reason: `address ${host} is not a public address` };
  return { ok: true, url };
}

/**
 * Creation-time check: the parse-time rules, plus every address the host resolves to now. A host
 * that does not resolve at all is accepted (it is checked again at every delivery).
 */
export async function checkCallbackUrlResolved(raw: string, policy: AddressPolicy): Promise<UrlCheck> {
  const parsed = checkCallbackUrl(raw, policy);
  if (!parsed.ok) return parsed;
  const host = parsed.url.hostname.replace(/^\[|\]$/g, '');
  if (net.isIP(host)) return parsed;
  let addresses: LookupAddress[];
  try {
    addresses = await dns.promises.lookup(host, { all: true });
  } catch {
    return parsed;
  }
  const refused = addresses.find((a) => !policy.isAllowed(a.address));
  return refused ? { ok: false, reason: `${host} resolves to ${refused.address}, which is not a public address` } : parsed;
}

export class SsrfBlockedError extends Error {
  readonly code = 'ssrf_blocked';
  constructor(message: string) {
    super(message);
    this.name = 'SsrfBlockedError';
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for http(s).request / net.connect that refuses non-public addresses. */
export function guardedLookup(policy: AddressPolicy) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 4);
      const refused = addresses.find((a) => !policy.isAllowed(a.address));
      if (refused) return callback(new SsrfBlockedError(`${hostname} resolves to ${refused.address}, which is not a public address`), '', 4);
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 4);
      callback(null, first.address, first.family);
    });
  };
}
