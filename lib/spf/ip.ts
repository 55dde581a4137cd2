/**
 * Client addresses as SPF sees them (RFC 7208 section 5): an IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d) is an IPv4 client, matched by "ip4" and
 * A records only; every other IPv6 address is matched by "ip6" and AAAA
 * records. Also the address forms the "i", "c" and "v" macros expand to,
 * the reverse (PTR) names, and the network syntax of "ip4:" and "ip6:".
 *
 * Parsing and formatting of the bytes is lib/config/network_list.ts's;
 * this file adds only what SPF needs on top. Pure: no I/O.
 *
 * @module
 */
import { formatIp, netMatches, parseIp } from "../config/network_list.ts";

/** A client address: 4 bytes for IPv4 (mapped addresses included), 16 for IPv6. */
export interface ClientIp {
  bytes: Uint8Array;
  /** True for IPv4, including an IPv4-mapped IPv6 address. */
  v4: boolean;
}

/**
 * Parses the client's address; an IPv4-mapped IPv6 address becomes IPv4.
 * Accepts what a socket reports (a zone suffix "%eth0" is dropped) and
 * bracketed forms. Null when `text` is not an address.
 */
export function parseClientIp(text: string): ClientIp | null {
  const bytes = parseIp(text.trim().replace(/%[^\]]*/, ""));
  if (!bytes) return null;
  if (bytes.length === 16 && isMapped(bytes)) return { bytes: bytes.slice(12), v4: true };
  return { bytes, v4: bytes.length === 4 };
}

function isMapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** An address from an A or AAAA answer, as bytes of the expected family; null if not one. */
export function parseRecordIp(text: string, v4: boolean): Uint8Array | null {
  const b = parseIp(text);
  return b && b.length === (v4 ? 4 : 16) ? b : null;
}

/** Whether two addresses of the same family share their first `prefix` bits. */
export const samePrefix = netMatches;

/** The "c" macro: dotted quad, or RFC 5952 text for IPv6 ("2001:db8::cb01"). */
export function clientText(ip: ClientIp): string {
  return formatIp(ip.bytes);
}

/** The "i" macro: dotted quad, or 32 dot-separated lowercase nibbles for IPv6. */
export function dottedIp(ip: ClientIp): string {
  if (ip.v4) return [...ip.bytes].join(".");
  return nibbles(ip.bytes).join(".");
}

/** The name of the address's PTR records: "4.3.2.1.in-addr.arpa", "...ip6.arpa". */
export function reverseName(ip: ClientIp): string {
  if (ip.v4) return `${[...ip.bytes].reverse().join(".")}.in-addr.arpa`;
  return `${nibbles(ip.bytes).reverse().join(".")}.ip6.arpa`;
}

function nibbles(bytes: Uint8Array): string[] {
  const out: string[] = [];
  for (const b of bytes) out.push((b >> 4).toString(16), (b & 15).toString(16));
  return out;
}

/** ip4-network of RFC 7208: a dotted quad without leading zeros. */
const IP4_NETWORK =
  /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Parses an "ip4:" network (no leading zeros, no shortened forms); null if invalid. */
export function parseIp4Network(text: string): Uint8Array | null {
  return IP4_NETWORK.test(text) ? parseIp(text) : null;
}

/** Parses an "ip6:" network (RFC 4291 section 2.2 text, no brackets); null if invalid. */
export function parseIp6Network(text: string): Uint8Array | null {
  if (!text.includes(":") || !/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  const b = parseIp(text);
  return b && b.length === 16 ? b : null;
}
