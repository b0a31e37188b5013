/**
 * SSRF guard for callback URLs (they come from tenants). Two checks:
 * - at parse time: scheme http(s) only, and an IP-literal host (in any spelling Node's URL
 *   parser normalises: 2130706433, 0x7f000001, 0177.0.0.1, 127.1, [::ffff:127.0.0.1]) must be a
 *   public unicast address;
 * - at connect time: the socket's `lookup` hook refuses any resolved address that is not, so DNS
 *   rebinding cannot slip through (see `guardedLookup`).
 * Refused: loopback, private, link-local, CGNAT, multicast, broadcast, reserved, documentation,
 * benchmarking and cloud metadata (169.254.169.254), in IPv4 and IPv6.
 *
 * Addresses that carry an IPv4 address (see `embeddedIPv4`):
 * - IPv4-mapped (::ffff:a.b.c.d) is how a dual-stack socket dials that IPv4 address: it is judged
 *   as the IPv4 address, allow-list included (Node's BlockList already matches it against IPv4 rules);
 * - IPv4-translated (::ffff:0:a.b.c.d), NAT64 (64:ff9b::/96, 64:ff9b:1::/48), 6to4 (2002::/16)
 *   and Teredo (2001::/32) reach the IPv4 address through a translator or relay, never this host:
 *   refused whatever they carry, unless the allow-list names the IPv6 range itself (an IPv6-only
 *   network behind NAT64) and the policy also admits every IPv4 address it carries. So allowing
 *   127.0.0.0/8 never admits [::ffff:0:127.0.0.1], and allowing 64:ff9b::/96 never admits
 *   64:ff9b::a9fe:a9fe (cloud metadata).
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
  '::ffff:0:0:0/96', // IPv4-translated (SIIT)
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

/** The eight 16-bit groups of an IPv6 address; the WHATWG URL parser does the spelling (dotted tails, case, `::`). */
function ipv6Groups(ip: string): number[] | null {
  let host: string;
  try {
    host = new URL(`http://[${ip.replace(/%.*$/, '')}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
  const [head = '', tail] = host.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : 8 - left.length - right.length).fill('0'), ...right].map((g) => Number.parseInt(g, 16));
  return groups.length === 8 ? groups : null;
}

const dotted = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;

/**
 * The IPv4 addresses an IPv6 address carries, and how: `mapped` (::ffff:0:0/96, dialled as that
 * IPv4 address), or `translated` (::ffff:0:0:0/96, RFC 7915), `nat64` (64:ff9b::/96 RFC 6052, and
 * 64:ff9b:1::/48 RFC 8215 read in its /96 layout), `6to4` (2002::/16 RFC 3056: bits 16-47) or
 * `teredo` (2001::/32 RFC 4380: the server in bits 32-63 and the client, inverted, in the last 32).
 * Null for any other address.
 */
function embeddedIPv4(ip: string): { form: 'mapped' | 'translated' | 'nat64' | '6to4' | 'teredo'; ipv4: string[] } | null {
  const g = ipv6Groups(ip);
  if (!g) return null;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  const last = dotted(g[6]!, g[7]!);
  if (zeros(0, 5) && g[5] === 0xffff) return { form: 'mapped', ipv4: [last] };
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return { form: 'translated', ipv4: [last] };
  if (g[0] === 0x64 && g[1] === 0xff9b && (zeros(2, 6) || g[2] === 1)) return { form: 'nat64', ipv4: [last] };
  if (g[0] === 0x2002) return { form: '6to4', ipv4: [dotted(g[1]!, g[2]!)] };
  if (g[0] === 0x2001 && g[1] === 0) return { form: 'teredo', ipv4: [dotted(g[2]!, g[3]!), dotted(g[6]! ^ 0xffff, g[7]! ^ 0xffff)] };
  return null;
}

/** A policy refusing every non-public address, except those in `allowCidrs`. */
export function createAddressPolicy(allowCidrs: readonly string[] = []): AddressPolicy {
  const blocked = new net.BlockList();
  for (const cidr of BLOCKED_V4) addCidr(blocked, cidr);
  for (const cidr of BLOCKED_V6) addCidr(blocked, cidr);
  const allowed = new net.BlockList();
  for (const cidr of allowCidrs) addCidr(allowed, cidr);
  const ipv4Allowed = (ip: string) => allowed.check(ip, 'ipv4') || !blocked.check(ip, 'ipv4');
  return {
    isAllowed(ip) {
      const family = net.isIP(ip);
      if (family === 0) return false;
      if (family === 4) return ipv4Allowed(ip);
      const embedded = embeddedIPv4(ip);
      if (embedded?.form === 'mapped') return ipv4Allowed(embedded.ipv4[0]!);
      // Translator and relay forms: the IPv6 range must be allowed explicitly, and what it reaches too.
      if (embedded) return allowed.check(ip, 'ipv6') && embedded.ipv4.every(ipv4Allowed);
      return allowed.check(ip, 'ipv6') || !blocked.check(ip, 'ipv6');
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
type Resolve = (hostname: string, options: dns.LookupAllOptions, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

export interface GuardedLookupOptions {
  /**
   * How long an answer the policy admitted is reused for the same host and family, in ms. Default
   * 0: every connection resolves afresh. Only admitted answers are kept (a refusal or a failure is
   * resolved again next time), at most 1 000 hosts.
   */
  cacheTtlMs?: number;
  /** The resolver; default `dns.lookup` (tests pass their own). */
  resolve?: Resolve;
  /** Clock for the cache, ms; default `performance.now`. */
  now?: () => number;
}

const MAX_CACHED_HOSTS = 1_000;

/**
 * A `lookup` for http(s).request / net.connect that refuses non-public addresses. The socket
 * dials the address this hook answers, so what it checked is what is dialled: a DNS answer
 * changing after the check (rebinding) cannot move a connection to a refused address. That
 * holds for a cached answer too: it is the very answer that was checked, reused for new
 * connections to the same host until `cacheTtlMs` passes.
 */
export function guardedLookup(policy: AddressPolicy, options: GuardedLookupOptions = {}) {
  const resolve: Resolve = options.resolve ?? dns.lookup;
  const ttlMs = options.cacheTtlMs ?? 0;
  const now = options.now ?? (() => performance.now());
  const cache = new Map<string, { addresses: LookupAddress[]; until: number }>();
  const answer = (hostname: string, lookupOptions: dns.LookupOptions, addresses: LookupAddress[], callback: LookupCallback): void => {
    const first = addresses[0];
    if (lookupOptions.all) callback(null, addresses);
    else if (first) callback(null, first.address, first.family);
    else callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 4);
  };
  return (hostname: string, lookupOptions: dns.LookupOptions, callback: LookupCallback): void => {
    const key = `${hostname.toLowerCase()} ${lookupOptions.family ?? 0}`;
    const cached = ttlMs > 0 ? cache.get(key) : undefined;
    if (cached && cached.until > now()) {
      answer(hostname, lookupOptions, cached.addresses, callback);
      return;
    }
    resolve(hostname, { ...lookupOptions, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 4);
      const refused = addresses.find((a) => !policy.isAllowed(a.address));
      if (refused) {
        cache.delete(key);
        return callback(new SsrfBlockedError(`${hostname} resolves to ${refused.address}, which is not a public address`), '', 4);
      }
      if (ttlMs > 0 && addresses.length > 0) {
        cache.delete(key);
        cache.set(key, { addresses, until: now() + ttlMs });
        if (cache.size > MAX_CACHED_HOSTS) cache.delete(cache.keys().next().value!);
      }
      answer(hostname, lookupOptions, addresses, callback);
    });
  };
}
