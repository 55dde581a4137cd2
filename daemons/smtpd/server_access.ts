/**
 * The lookups behind check_{client,reverse_client_hostname,helo,sender,recipient}_{mx,ns,a}_access,
 * as Postfix's smtpd_check.c check_server_access does them: the name's
 * domain (after the last "@" of an address) gives a list of servers, and
 * each server's host name, then each of its addresses, is looked up in the
 * access table; the first key found decides (DUNNO included).
 *
 * - MX: the domain's MX hosts in the order the name server gave them;
 *   without MX records (NXDOMAIN or no data) the domain is its own MX
 *   host; a null MX (RFC 7505) checks nothing.
 * - NS: the domain's name servers; without NS records the parent domains
 *   are asked in turn (`a.b.example` -> `b.example` -> `example`) until one
 *   answers or fails for another reason.
 * - A: the domain itself is the only "server", and only its addresses are
 *   looked up (not its name).
 * - An address literal (`user@[192.0.2.1]`, `HELO [192.0.2.1]`) is its own
 *   MX or A server (its address is looked up); it has no name servers.
 * - A server named by an IP address (a bare `HELO 192.0.2.1`, an MX
 *   record that points at an address) is looked up as an address only.
 *
 * A DNS failure is no reason to refuse (Postfix's DUNNO): a failed MX or NS
 * lookup logs "Unable to look up MX host for <domain>: <why>" and checks
 * nothing; a server whose addresses cannot be found is skipped with
 * "Unable to look up MX host <host> for <class> <name>: <why>" (MX and NS
 * only). Host addresses come from /etc/hosts first, then DNS, as
 * getaddrinfo does, in the address families of inet_protocols. A query
 * the sandbox refuses throws DnsNotPermitted (a configuration error).
 *
 * Not done: non-ASCII domains are converted to A-labels with the URL
 * parser (Postfix uses libidn2 UTS #46; both fold case); there is no
 * smtpd_dns_reply_filter. Deno reports NXDOMAIN, no data and SERVFAIL all
 * as NotFound, so a SERVFAIL MX answer makes the domain its own MX host
 * here, where Postfix would log and check nothing.
 *
 * The table lookups themselves are the caller's (restrictions.ts): this
 * module only decides which host names and addresses to try, in Postfix's
 * order.
 */
import {
  type AddressFamilies,
  classifyDnsError,
  type DnsError,
  type FullResolver,
  normalizeName,
} from "../../lib/dns/mod.ts";
import { parseIp } from "../../lib/config/mod.ts";
import { sandboxed } from "./unknown.ts";
import { validHostname } from "./restrictions.ts";

/** Which servers of a domain: its MX hosts, its name servers, or the domain itself. */
export type ServerType = "MX" | "NS" | "A";

/** What finding a domain's servers needs. */
export interface ServerAccessContext {
  dns: FullResolver;
  /** inet_protocols: which address records to ask for. */
  families: AddressFamilies;
  /** /etc/hosts: a name's addresses, consulted before DNS as getaddrinfo does. */
  hostAddresses: (name: string) => string[] | undefined;
  warn: (msg: string) => void;
}

/** The table lookups of one access check; each gives the value found, if any. */
export interface ServerProbe {
  /** A server's host name (and its parent domains, as check_domain_access). */
  hostname(name: string): Promise<{ value: string } | undefined>;
  /** An address (and its truncations, as check_addr_access). */
  address(addr: string): Promise<{ value: string } | undefined>;
}

/** Who the check is about, for the warnings ("Sender address", "a@b.example"). */
export interface ServerSubject {
  replyClass: string;
  replyName: string;
}

/**
 * Postfix's check_server_access: the first table value found for the
 * servers of `name`'s domain, or undefined when nothing matched (or DNS
 * could not say).
 */
export async function findServerAccess(
  ctx: ServerAccessContext,
  type: ServerType,
  name: string,
  subject: ServerSubject,
  probe: ServerProbe,
): Promise<{ value: string } | undefined> {
  const at = name.lastIndexOf("@");
  let domain = at < 0 ? name : name.slice(at + 1);
  if (domain.startsWith("[")) {
    if (type === "NS" || !domain.endsWith("]")) return undefined;
    const bare = mailhostAddress(domain.slice(1, -1));
    return bare === null ? undefined : await probe.address(bare);
  }
  domain = asciiDomain(domain);
  let servers: string[];
  if (type === "A") servers = [domain];
  else {
    const found = await serverList(ctx, type, domain, name);
    if (found === null) return undefined;
    servers = found;
  }
  for (const server of servers) {
    if (hostAddress(server)) {
      const hit = await probe.address(server);
      if (hit) return hit;
      continue;
    }
    if (type !== "A") {
      const hit = await probe.hostname(server);
      if (hit) return hit;
    }
    let addrs: string[];
    try {
      addrs = await addressesOf(ctx, server);
    } catch (e) {
      if (type !== "A") {
        ctx.warn(
          `Unable to look up ${type} host ${server} for ${subject.replyClass} ` +
            `${subject.replyName}: ${gaiError(e as DnsError)}`,
        );
      }
      continue;
    }
    for (const addr of addrs) {
      const hit = await probe.address(addr);
      if (hit) return hit;
    }
  }
  return undefined;
}

/**
 * The MX hosts or name servers of `domain`, or null (logged) when there is
 * nothing to check.
 */
async function serverList(
  ctx: ServerAccessContext,
  type: "MX" | "NS",
  domain: string,
  name: string,
): Promise<string[] | null> {
  let result = await serversOf(ctx, type, domain);
  if (result === "nullmx") return null;
  let where: string | null = domain;
  if (result instanceof Error && result.kind === "notfound") {
    if (type === "MX") return [domain];
    // No name servers here: the parent domains' (Postfix stops at the last label).
    let d = domain;
    where = null;
    for (;;) {
      const dot = d.indexOf(".");
      if (dot < 0 || dot + 1 >= d.length) break;
      d = d.slice(dot + 1);
      where = d;
      result = await serversOf(ctx, type, d);
      if (!(result instanceof Error && result.kind === "notfound")) break;
      where = null;
    }
  }
  if (Array.isArray(result)) return result;
  // dns_strerror's words (without lib/dns's "(timed out)" detail).
  const why = result === "nullmx" || result.kind === "notfound"
    ? "Host not found"
    : "Host not found, try again";
  ctx.warn(`Unable to look up ${type} host for ${where ?? name}: ${why}`);
  return null;
}

/** One MX or NS query: the host names, "nullmx", or the classified failure. */
async function serversOf(
  ctx: ServerAccessContext,
  type: "MX" | "NS",
  domain: string,
): Promise<string[] | "nullmx" | DnsError> {
  // Postfix's dns_lookup does not look up an IP address or a malformed name: not found.
  if (parseIp(domain) !== null || !validHostname(domain)) {
    return classifyDnsError(new Deno.errors.NotFound(), domain, type);
  }
  try {
    if (type === "NS") {
      const ns = (await ctx.dns.resolveNs(domain)).map(normalizeName).filter((h) => h !== "");
      return ns.length > 0 ? ns : classifyDnsError(new Deno.errors.NotFound(), domain, type);
    }
    const mx = await ctx.dns.resolveMx(domain);
    if (mx.length === 0) return classifyDnsError(new Deno.errors.NotFound(), domain, type);
    if (mx.length === 1 && normalizeName(mx[0].exchange) === "") return "nullmx";
    return mx.map((r) => normalizeName(r.exchange)).filter((h) => h !== "");
  } catch (e) {
    sandboxed(e);
    return classifyDnsError(e, domain, type);
  }
}

/**
 * A host's addresses as getaddrinfo finds them: /etc/hosts, else A then
 * AAAA records (each family as inet_protocols allows).
 *
 * @throws {DnsError} when there are none
 */
async function addressesOf(ctx: ServerAccessContext, host: string): Promise<string[]> {
  const listed = ctx.hostAddresses(host)?.filter((a) =>
    (parseIp(a)?.length === 4 && ctx.families.ipv4) ||
    (parseIp(a)?.length === 16 && ctx.families.ipv6)
  );
  if (listed && listed.length > 0) return listed;
  if (!validHostname(host)) throw classifyDnsError(new Deno.errors.NotFound(), host, "A");
  const addrs: string[] = [];
  let failure: DnsError | null = null;
  const ask = async (qtype: "A" | "AAAA") => {
    try {
      addrs.push(
        ...await (qtype === "A" ? ctx.dns.resolveA(host) : ctx.dns.resolveAaaa(host)),
      );
    } catch (e) {
      sandboxed(e);
      const err = classifyDnsError(e, host, qtype);
      if (failure === null || err.kind === "temporary") failure = err;
    }
  };
  if (ctx.families.ipv4) await ask("A");
  if (ctx.families.ipv6) await ask("AAAA");
  if (addrs.length > 0) return addrs;
  throw failure ?? classifyDnsError(new Deno.errors.NotFound(), host, "A");
}

/** getaddrinfo's text for a failed host lookup (gai_strerror). */
function gaiError(e: DnsError): string {
  return e.kind === "notfound"
    ? "Name or service not known"
    : "Temporary failure in name resolution";
}

/** Postfix's valid_hostaddr: a bare IPv4 or IPv6 address (no brackets). */
function hostAddress(s: string): boolean {
  return !s.startsWith("[") && !/^ipv6:/i.test(s) && parseIp(s) !== null;
}

/** Postfix's valid_mailhost_addr: an address literal's inside ("IPv6:" for IPv6), bare, or null. */
export function mailhostAddress(inner: string): string | null {
  if (/[[\]]/.test(inner)) return null;
  if (/^ipv6:/i.test(inner)) {
    const bare = inner.slice(5);
    return parseIp(bare)?.length === 16 ? bare.toLowerCase() : null;
  }
  return parseIp(inner)?.length === 4 && !/[:[\]]/.test(inner) ? inner : null;
}

/** A domain in A-labels (IDNA) when it is not ASCII; as given when it cannot be converted. */
function asciiDomain(domain: string): string {
  if (/^[\x20-\x7e]*$/.test(domain)) return domain;
  // Only a name: the URL parser would cut "a/é" at the "/" and look up another name.
  if (/[\s/?#@:[\]\\%]/.test(domain)) return domain;
  try {
    return new URL(`http://${domain}/`).hostname;
  } catch {
    return domain;
  }
}

/** /etc/hosts text as name (lower case) -> its addresses, in file order. */
export function parseHostsByName(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const f = line.replace(/#.*/, "").trim().split(/\s+/);
    if (f.length < 2 || parseIp(f[0]) === null) continue;
    for (const name of f.slice(1)) {
      const key = name.toLowerCase();
      const list = m.get(key) ?? [];
      if (!list.includes(f[0])) list.push(f[0]);
      m.set(key, list);
    }
  }
  return m;
}
