/**
 * Next hop parsing and the list of addresses to try, with Postfix's
 * semantics: `[host]` and `[host]:port` are used as is (no MX lookup),
 * `domain` and `domain:port` get an MX lookup (RFC 5321 section 5: MX
 * preference order, equal preferences shuffled, the domain's own A/AAAA
 * records when it has no MX, null MX is a permanent failure). An IP
 * address is never looked up, bracketed or not.
 *
 * DNS failures become a {@link NexthopFailure} carrying the DSN code and
 * Postfix's wording; an MX host without addresses is skipped and only
 * reported when no host is left.
 *
 * An MX list that reaches this host (an address of inet_interfaces or
 * proxy_interfaces) ends there: that MX host and the ones not better than
 * it are dropped, and when that leaves none the mail bounces "5.4.6 mail
 * for DOMAIN loops back to myself" (deferred "4.4.4 unable to find primary
 * relay" when better MX hosts did not resolve), as Postfix does. Postfix
 * applies this to MX lookups only, so does this.
 *
 * A name that is no valid host name (an empty or over-long label, a
 * character outside letters, digits and inner hyphens) is refused before
 * any lookup, as Postfix's dns_lookup() does with valid_hostname(): it is
 * "not found", so the mail bounces. Deno's resolver refuses such names
 * with an error that reads as temporary, which deferred them forever.
 */
import {
  type AddressFamilies,
  DnsError,
  ipLiteral,
  lookupHost,
  lookupMx,
  type Resolver,
} from "../../lib/dns/mod.ts";
import type { Destination } from "./session.ts";
import { failureStatus } from "../../lib/deliver/mod.ts";

/** A parsed next hop. */
export interface Nexthop {
  /** Domain or host name (lowercase), or an IP address. */
  host: string;
  port: number;
  /** Look up MX records for `host`. */
  mx: boolean;
}

/**
 * Parses `[host]:port`, `[host]`, `host:port` or `host`; `defaultPort`
 * applies when none is given.
 *
 * @throws {NexthopFailure} 4.3.5 for a malformed next hop (a configuration
 * error: the mail waits for the admin to fix the transport).
 */
export function parseNexthop(text: string, defaultPort = 25): Nexthop {
  const t = text.trim();
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (bracket) {
    const host = ipLiteral(`[${bracket[1]}]`) ?? bracket[1].toLowerCase();
    return { host, port: portOf(bracket[2], defaultPort, t), mx: false };
  }
  const literal = ipLiteral(t);
  if (literal && literal.includes(":")) return { host: literal, port: defaultPort, mx: false };
  const m = /^([^:]+)(?::(\d+))?$/.exec(t);
  if (!m) throw badNexthop(`bad next hop "${text}"`);
  const host = m[1].toLowerCase().replace(/\.$/, "");
  return { host, port: portOf(m[2], defaultPort, t), mx: ipLiteral(host) === null };
}

function portOf(text: string | undefined, def: number, whole: string): number {
  if (text === undefined) return def;
  const p = Number(text);
  if (!Number.isInteger(p) || p < 1 || p > 65535) {
    throw badNexthop(`bad port in next hop "${whole}"`);
  }
  return p;
}

function badNexthop(what: string): NexthopFailure {
  return new NexthopFailure("4.3.5", `${what}: check the transport's next hop`);
}

/** Why no destination could be found: a DSN code and the reason for logs and bounces. */
export class NexthopFailure extends Error {
  override readonly name = "NexthopFailure";
  constructor(readonly dsn: string, message: string) {
    super(message);
  }

  /** True for 5.x.x: the message bounces. */
  get permanent(): boolean {
    return failureStatus(this.dsn) === "bounced";
  }
}

/**
 * Postfix's valid_hostname(), for the names we look up: at most 255
 * characters, labels of 1 to 63 letters, digits and hyphens, no hyphen at
 * either end of a label. Non-ASCII labels (IDN) are left to the resolver;
 * "_" is refused, since the resolver's IDNA rules refuse it too.
 */
export function validHostname(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false;
  for (const label of name.split(".")) {
    if (label === "") return false;
    if (/[\u0080-\uffff]/.test(label)) continue;
    if (label.length > 63 || !/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i.test(label)) return false;
  }
  return true;
}

/** A name {@link validHostname} refuses, as the DNS failure Postfix reports for it. */
function invalidName(name: string, qtype: string): DnsError {
  return new DnsError("notfound", name, qtype, "invalid host or domain name");
}

function notFoundText(e: DnsError): string {
  return `Host or domain name not found. ${e.message}`;
}

/** Options for {@link destinations}. */
export interface DestinationOptions {
  /** smtp_mx_address_limit: at most this many MX addresses (0: no limit). @default 0 */
  mxAddressLimit?: number;
  /** True for an address of this host (inet_interfaces, proxy_interfaces). @default none */
  isSelf?: (addr: string) => boolean;
}

/**
 * Yields the addresses to try for `nh`, best first, resolving each MX host
 * only when the previous ones are used up; at most `mxAddressLimit` of an
 * MX lookup's addresses. Throws {@link NexthopFailure}
 * when DNS gives no address at all (before anything was yielded, or after
 * every MX host failed to resolve).
 */
export async function* destinations(
  nh: Nexthop,
  resolver: Resolver,
  families: AddressFamilies,
  opts: DestinationOptions = {},
): AsyncGenerator<Destination> {
  const limit = opts.mxAddressLimit ?? 0;
  if (ipLiteral(nh.host) === null && !validHostname(nh.host)) {
    throw dnsFailure(invalidName(nh.host, nh.mx ? "MX" : "A"), "5.1.2");
  }
  if (!nh.mx) {
    let addrs: string[];
    try {
      addrs = await lookupHost(resolver, nh.host, families);
    } catch (e) {
      throw dnsFailure(e, "5.1.2");
    }
    for (const addr of addrs) yield { host: nh.host, addr, port: nh.port };
    return;
  }
  let mx;
  try {
    mx = await lookupMx(resolver, nh.host);
  } catch (e) {
    throw dnsFailure(e, "5.1.2");
  }
  if (mx.kind === "nullmx") {
    throw new NexthopFailure("5.1.10", `Domain ${nh.host} does not accept mail (nullMX)`);
  }
  if (mx.kind === "none") {
    let addrs: string[];
    try {
      addrs = await lookupHost(resolver, nh.host, families);
    } catch (e) {
      // No MX (NXDOMAIN or no data) and no address either: report the MX question first asked.
      if (e instanceof DnsError && e.kind === "notfound") {
        throw new NexthopFailure(
          "5.1.2",
          notFoundText(new DnsError("notfound", nh.host, "MX", "Host not found")),
        );
      }
      throw dnsFailure(e, "5.1.2");
    }
    for (const addr of addrs) yield { host: nh.host, addr, port: nh.port };
    return;
  }
  let last: NexthopFailure | null = null;
  let temporary = false;
  let yielded = false;
  let count = 0;
  const isSelf = opts.isSelf ?? (() => false);
  // One preference at a time: all its hosts are resolved before any is
  // tried, since finding this host among them ends the list (Postfix's
  // smtp_truncate_self: this host and every MX host not better than it).
  const hosts = mx.hosts;
  for (let g = 0; g < hosts.length;) {
    let end = g;
    while (end < hosts.length && hosts[end].preference === hosts[g].preference) end++;
    const group: { host: string; addrs: string[] }[] = [];
    let self = false;
    for (const rr of hosts.slice(g, end)) {
      try {
        if (!validHostname(rr.exchange)) throw invalidName(rr.exchange, "A");
        const addrs = await lookupHost(resolver, rr.exchange, families);
        group.push({ host: rr.exchange, addrs });
        self ||= addrs.some(isSelf);
      } catch (e) {
        last = dnsFailure(e, "5.4.4");
        temporary ||= !last.permanent;
      }
    }
    g = end;
    if (self) {
      if (yielded) return;
      // Better MX hosts that could not be resolved may be the primary: try again later.
      if (last) {
        throw new NexthopFailure("4.4.4", `unable to find primary relay for ${nh.host}`);
      }
      throw new NexthopFailure("5.4.6", `mail for ${nh.host} loops back to myself`);
    }
    for (const { host, addrs } of group) {
      for (const addr of addrs) {
        if (limit > 0 && count >= limit) return;
        count++;
        yielded = true;
        yield { host, addr, port: nh.port };
      }
    }
  }
  if (!yielded && last) {
    throw temporary && last.permanent ? new NexthopFailure("4.4.3", last.message) : last;
  }
}

function dnsFailure(e: unknown, permanentDsn: string): NexthopFailure {
  if (e instanceof DnsError) {
    return new NexthopFailure(e.permanent ? permanentDsn : "4.4.3", notFoundText(e));
  }
  return new NexthopFailure("4.4.3", `Name service error: ${(e as Error).message}`);
}
