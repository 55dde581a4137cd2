/**
 * The client's host name for logs, Received headers and the
 * reject_unknown_*client_hostname restrictions, as Postfix's smtpd finds it
 * (smtpd_peer.c, smtpd_peername_lookup): /etc/hosts first, then the first
 * DNS PTR name of the address (the "reverse" name), which must resolve
 * back to the same address (forward-confirmed) to become the client name;
 * anything else is "unknown". Each name carries Postfix's status: "ok",
 * "temp" (a lookup failed temporarily), "perm" (no PTR, or lookups are
 * off) or "forged" (the PTR name does not resolve to the address), which
 * decide 450 versus unknown_client_reject_code. Lookups are bounded by a
 * time limit so a dead resolver cannot hold a session for long. NXDOMAIN
 * and no data are permanent; SERVFAIL, a time-out and a negative answer
 * the resolver could not confirm (lib/dns systemResolver) are "temp". The
 * resolver is injected; no caching beyond the system's.
 */
import { parseIp } from "../../lib/config/mod.ts";
import { classifyDnsError, timedResolver } from "../../lib/dns/mod.ts";
import { validHostname } from "./restrictions.ts";

/** The lookups peer naming needs. */
export interface PeerResolver {
  resolvePtr(name: string): Promise<string[]>;
  resolveA(name: string): Promise<string[]>;
  resolveAaaa(name: string): Promise<string[]>;
}

/** The system resolver (negative answers confirmed), with a time limit per query. */
export function denoPeerResolver(timeoutMs: number): PeerResolver {
  return timedResolver(timeoutMs);
}

/** The PTR query name of an address, or null if it is not an IP address. */
export function reverseName(addr: string): string | null {
  const b = parseIp(addr);
  if (!b) return null;
  if (b.length === 4) return `${b[3]}.${b[2]}.${b[1]}.${b[0]}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) nibbles.push((b[i] & 0xf).toString(16), (b[i] >> 4).toString(16));
  return `${nibbles.join(".")}.ip6.arpa`;
}

function sameIp(a: string, b: string): boolean {
  const x = parseIp(a);
  const y = parseIp(b);
  return !!x && !!y && x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Postfix's SMTPD_PEER_CODE_*: how a name lookup ended. */
export type PeerStatus = "ok" | "temp" | "perm" | "forged";

/** The client's names and how they were found (Postfix's name/reverse_name and their status). */
export interface PeerIdentity {
  /** Forward-confirmed name, or "unknown". */
  name: string;
  nameStatus: PeerStatus;
  /** The PTR name, confirmed or not, or "unknown". */
  reverseName: string;
  reverseStatus: PeerStatus;
}

/** What {@link peerIdentity} needs. */
export interface PeerOptions {
  /** /etc/hosts: address to first name. */
  hosts: Map<string, string>;
  /** null: smtpd_peername_lookup = no (every name "unknown", status "perm"). */
  resolver: PeerResolver | null;
  /** Postfix's warnings ("hostname X does not resolve to address Y"). */
  warn?: (msg: string) => void;
}

/** NXDOMAIN or no data (permanent); SERVFAIL, a time-out or an unconfirmed answer are not. */
const notFound = (e: unknown) => classifyDnsError(e, "", "PTR").kind === "notfound";

/** Finds the names of a client address. Never throws. */
export async function peerIdentity(addr: string, opts: PeerOptions): Promise<PeerIdentity> {
  const known = (name: string): PeerIdentity => ({
    name,
    nameStatus: "ok",
    reverseName: name,
    reverseStatus: "ok",
  });
  const fromHosts = opts.hosts.get(addr);
  if (fromHosts) return known(fromHosts);
  // Only the loopback address itself: 127.0.0.2 has no name unless /etc/hosts gives one.
  if (addr === "::1" || addr === "127.0.0.1") return known("localhost");
  const unknown = (status: PeerStatus): PeerIdentity => ({
    name: "unknown",
    nameStatus: status,
    reverseName: "unknown",
    reverseStatus: status,
  });
  const r = opts.resolver;
  const rev = reverseName(addr);
  if (!r || !rev) return unknown("perm");
  let ptr: string;
  try {
    const names = await r.resolvePtr(rev);
    if (names.length === 0) return unknown("perm");
    ptr = names[0].replace(/\.$/, "");
  } catch (e) {
    return unknown(notFound(e) ? "perm" : "temp");
  }
  // Numeric or malformed PTR names are not names (Postfix's sockaddr_to_hostname).
  if (parseIp(ptr) !== null) {
    opts.warn?.(`numeric hostname: ${ptr}`);
    return unknown("perm");
  }
  if (!validHostname(ptr)) return unknown("perm");
  const lower = ptr.toLowerCase();
  const reverse = { reverseName: lower, reverseStatus: "ok" as const };
  let addrs: string[];
  try {
    addrs = await (addr.includes(":") ? r.resolveAaaa(ptr) : r.resolveA(ptr));
  } catch (e) {
    const perm = notFound(e);
    opts.warn?.(
      `hostname ${ptr} does not resolve to address ${addr}: ${
        perm ? "Name or service not known" : "Temporary failure in name resolution"
      }`,
    );
    return { name: "unknown", nameStatus: perm ? "forged" : "temp", ...reverse };
  }
  if (addrs.some((a) => sameIp(a, addr))) return { name: lower, nameStatus: "ok", ...reverse };
  opts.warn?.(`hostname ${ptr} does not resolve to address ${addr}`);
  return { name: "unknown", nameStatus: "forged", ...reverse };
}

/** Finds the verified name of a client address, or "unknown". Never throws. */
export async function peerName(
  addr: string,
  opts: { hosts: Map<string, string>; resolver: PeerResolver | null },
): Promise<string> {
  return (await peerIdentity(addr, opts)).name;
}
