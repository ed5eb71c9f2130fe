import net from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Which IP addresses `?url=` may connect to. Only globally routable unicast addresses pass:
 * ipaddr.js names every special-purpose range (loopback, private, link-local, unique-local,
 * multicast, unspecified, broadcast, carrier-grade NAT, documentation/reserved, NAT64, 6to4,
 * Teredo, ...) and only its `unicast` remainder is allowed.
 */

/** Global unicast IPv6 (2000::/3). ipaddr.js calls e.g. the deprecated IPv4-compatible `::7f00:1` "unicast" too. */
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');

export interface AddressVerdict {
  allowed: boolean;
  /** The ipaddr.js range name (or `invalid`, `nonGlobalIPv6`), for logs. */
  range: string;
}

export interface AddressPolicyOptions {
  /** Lift the rule entirely (local development and tests). */
  allowPrivateNetworks: boolean;
  /** Addresses or CIDR ranges exempt from the rule, e.g. `['127.0.0.1']` or `['10.1.0.0/16']`. */
  allowAddresses?: readonly string[];
}

export type AddressPolicy = (address: string) => AddressVerdict;

/**
 * Parses a textual IP address strictly (the forms `net.isIP` accepts). IPv4-mapped IPv6
 * addresses are unwrapped so `::ffff:10.0.0.1` is judged as `10.0.0.1`.
 */
function parseStrict(address: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (net.isIP(address) === 0) return undefined;
  const parsed = ipaddr.parse(address);
  if (parsed instanceof ipaddr.IPv6 && parsed.isIPv4MappedAddress()) return parsed.toIPv4Address();
  return parsed;
}

/** The range an address falls in; `unicast` is the only one a public fetch may reach. */
export function addressRange(address: string): string {
  const parsed = parseStrict(address);
  if (!parsed) return 'invalid';
  const range = parsed.range();
  if (range === 'unicast' && parsed instanceof ipaddr.IPv6 && !parsed.match(GLOBAL_UNICAST_V6)) return 'nonGlobalIPv6';
  return range;
}

export function isPublicAddress(address: string): boolean {
  return addressRange(address) === 'unicast';
}

function parseAllowEntry(entry: string): [ipaddr.IPv4 | ipaddr.IPv6, number] {
  if (entry.includes('/')) return ipaddr.parseCIDR(entry);
  const addr = ipaddr.parse(entry);
  return [addr, addr.kind() === 'ipv4' ? 32 : 128];
}

export function createAddressPolicy(options: AddressPolicyOptions): AddressPolicy {
  const exempt = (options.allowAddresses ?? []).map(parseAllowEntry);
  return (address) => {
    const range = addressRange(address);
    if (range === 'invalid') return { allowed: false, range };
    if (options.allowPrivateNetworks || range === 'unicast') return { allowed: true, range };
    const parsed = parseStrict(address)!;
    const isExempt = exempt.some(([net, bits]) => parsed.kind() === net.kind() && parsed.match(net, bits));
    return { allowed: isExempt, range };
  };
}

/**
 * A host that is an IP literal, in any form a resolver would read as one. The WHATWG URL parser
 * already normalises `2130706433`, `0x7f000001`, `127.1`, ... to dotted quads; the legacy check
 * is a second line so such a host is never handed to DNS (where getaddrinfo would read it as an IP).
 */
export function ipLiteral(hostname: string): string | undefined {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (net.isIP(bare) !== 0) return bare;
  if (ipaddr.IPv4.isValid(bare)) return ipaddr.IPv4.parse(bare).toString();
  return undefined;
}
