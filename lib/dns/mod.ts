/**
 * DNS for mail routing: MX lookup with RFC 5321 section 5 semantics
 * (preference order, random order among equal preferences, null MX per
 * RFC 7505, fallback to the domain's own address records when it has no MX)
 * and host address lookup, behind an injectable {@link Resolver} so tests run
 * without a network. Errors are classified the way a delivery agent needs
 * them: {@link DnsError} with `kind` "notfound" (permanent: the name or the
 * record does not exist) or "temporary" (try again later), and a `status`
 * saying which answer it was (NXDOMAIN, no data, SERVFAIL, ...).
 *
 * {@link systemResolver} is Deno.resolveDns with the system's name servers,
 * plus what Deno cannot say: its resolver reports NXDOMAIN, "no record of
 * this type" and SERVFAIL alike as NotFound, so each NotFound is confirmed
 * with one query of our own over TCP (confirm.ts) that reads the response
 * code. Only negative answers pay for it; an answer with records is
 * returned as Deno gives it. When the confirmation cannot be made (no name
 * server answers over TCP: refused, closed, timed out), the failure is
 * "temporary": never a bounce or a 5xx on a lookup we could not classify;
 * `warn` says why, once per outage (until a confirmation succeeds).
 *
 * Does not cache (cache.ts's cachingResolver keeps answers for their
 * TTLs, for mail authentication), does not do DNSSEC/DANE, and does not
 * choose next hops: that is the delivery agent's job.
 */
import {
  configuredNameServers,
  type Confirmation,
  confirmNegative,
  type NameServer,
} from "./confirm.ts";
import type { DnsRecord, RrType } from "./wire.ts";

/** One MX record as returned by a resolver. */
export interface MxRecord {
  preference: number;
  exchange: string;
}

/** The lookups mail routing needs. {@link denoResolver} is the default. */
export interface Resolver {
  resolveMx(name: string): Promise<MxRecord[]>;
  resolveA(name: string): Promise<string[]>;
  resolveAaaa(name: string): Promise<string[]>;
}

/** Which kind of DNS failure: permanent ("notfound") or "temporary". */
export type DnsErrorKind = "notfound" | "temporary";

/**
 * Which answer a failure was, when known: NXDOMAIN, NOERROR without
 * records of the type ("nodata"), SERVFAIL or another "not now" code,
 * a time-out, or "unverified" (a negative answer that could not be
 * confirmed; temporary).
 */
export type DnsStatus = "nxdomain" | "nodata" | "servfail" | "timeout" | "unverified";

/** A classified DNS failure; the message reads like Postfix's. */
export class DnsError extends Error {
  override readonly name = "DnsError";
  /**
   * @param kind notfound (permanent) or temporary
   * @param qname the name looked up
   * @param qtype MX, A or AAAA
   * @param detail why, e.g. "Host not found" or "Host not found, try again"
   * @param status which answer it was, when known
   */
  constructor(
    readonly kind: DnsErrorKind,
    readonly qname: string,
    readonly qtype: string,
    readonly detail: string,
    readonly status?: DnsStatus,
  ) {
    super(`Name service error for name=${qname} type=${qtype}: ${detail}`);
  }

  /** True when retrying will not help. */
  get permanent(): boolean {
    return this.kind === "notfound";
  }
}

/**
 * The lookups smtpd's restrictions need besides mail routing's: TXT (DNS
 * list reasons), PTR (client names) and NS (check_*_ns_access).
 */
export interface FullResolver extends Resolver {
  /** Each TXT record as its character strings. */
  resolveTxt(name: string): Promise<string[][]>;
  resolvePtr(name: string): Promise<string[]>;
  /** The name servers of a zone (check_*_ns_access). */
  resolveNs(name: string): Promise<string[]>;
  /**
   * The same lookups without confirming negative answers (a NotFound is
   * "notfound", a SERVFAIL too): for DNS deny lists, where both mean "not
   * listed" and the confirmation would cost every clean client a query.
   * Absent: use the resolver itself.
   */
  readonly unconfirmed?: FullResolver;
}

/** Options for {@link systemResolver}. */
export interface SystemResolverOptions {
  /** Per lookup, confirmation included; a dead name server costs at most this. @default resolv.conf's */
  timeoutMs?: number;
  /** Ask this name server instead of resolv.conf's (tests). */
  nameServer?: NameServer;
  /** resolv.conf's path, for the confirmation. @default "/etc/resolv.conf" */
  resolvConf?: string;
  /** Told (once per outage) why negative answers could not be confirmed. */
  warn?: (msg: string) => void;
}

/** Deno's records of one type, from our decoder's (names with the trailing dot Deno gives). */
function denoRecords(records: DnsRecord[]): unknown[] {
  return records.map((r) => {
    if (r.type === "MX") return { preference: r.data.preference, exchange: `${r.data.exchange}.` };
    if (r.type === "PTR" || r.type === "NS" || r.type === "CNAME") return `${r.data}.`;
    return r.data;
  });
}

/** The records of an answer read over TCP, as Deno would give them; throws its DnsError. */
export function confirmedRecords(c: Confirmation, name: string, type: RrType): unknown[] {
  switch (c.status) {
    case "records":
      return denoRecords(c.records);
    case "nxdomain":
      throw new DnsError("notfound", name, type, "Host not found", "nxdomain");
    case "nodata":
      throw new DnsError(
        "notfound",
        name,
        type,
        "Host found but no data record of requested type",
        "nodata",
      );
    case "rcode":
      throw new DnsError("temporary", name, type, "Host not found, try again", "servfail");
    case "timeout":
      throw new DnsError("temporary", name, type, "Host not found, try again", "timeout");
    case "unreachable":
      throw new DnsError("temporary", name, type, "Host not found, try again", "unverified");
  }
}

/**
 * Warns once per outage that no name server answers over TCP (`c` is the
 * latest answer); the returned function takes each answer.
 */
export function outageWarner(warn?: (msg: string) => void): (c: Confirmation) => void {
  let warned = false;
  return (c) => {
    const confirmed = c.status !== "unreachable" && c.status !== "timeout";
    if (confirmed) warned = false;
    else if (!warned) {
      warned = true;
      warn?.(
        `DNS: cannot tell a missing name from a failed lookup (${c.detail}); ` +
          "negative answers count as temporary failures until a name server answers over TCP",
      );
    }
  };
}

/**
 * Deno.resolveDns with the system's name servers, each negative answer
 * confirmed over TCP (see the module comment). Throws {@link DnsError}
 * for classified failures; other errors (a sandbox refusal, an abort)
 * are Deno's, for {@link classifyDnsError}.
 */
export function systemResolver(opts: SystemResolverOptions = {}): FullResolver {
  const noteOutage = outageWarner(opts.warn);
  const ask = (name: string, type: RrType) => {
    const o: Deno.ResolveDnsOptions = {};
    if (opts.timeoutMs !== undefined) o.signal = AbortSignal.timeout(opts.timeoutMs);
    const ns = opts.nameServer ?? configuredNameServers()?.[0];
    if (ns) o.nameServer = { ipAddr: ns.ipAddr, port: ns.port ?? 53 };
    // deno-lint-ignore no-explicit-any
    return Deno.resolveDns(name, type as any, o) as Promise<any>;
  };
  const lookup = async (name: string, type: RrType) => {
    const start = Date.now();
    try {
      return await ask(name, type);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const c = await confirmNegative(name, type, {
      nameServer: opts.nameServer,
      resolvConf: opts.resolvConf,
      deadline: opts.timeoutMs === undefined ? undefined : start + opts.timeoutMs,
    });
    noteOutage(c);
    return confirmedRecords(c, name, type);
  };
  return { ...fullResolver(lookup), unconfirmed: fullResolver(ask) };
}

/** A {@link FullResolver} whose every lookup is `lookup(name, type)`. */
export function fullResolver(
  // deno-lint-ignore no-explicit-any
  lookup: (name: string, type: RrType) => Promise<any>,
): FullResolver {
  return {
    resolveMx: (n) => lookup(n, "MX"),
    resolveA: (n) => lookup(n, "A"),
    resolveAaaa: (n) => lookup(n, "AAAA"),
    resolveTxt: (n) => lookup(n, "TXT"),
    resolvePtr: (n) => lookup(n, "PTR"),
    resolveNs: (n) => lookup(n, "NS"),
  };
}

/**
 * {@link systemResolver} with a time limit per lookup: a dead name server
 * costs a session at most `timeoutMs` per lookup (the failure is then
 * "temporary", as Postfix treats a timeout).
 */
export function timedResolver(
  timeoutMs: number,
  opts: Omit<SystemResolverOptions, "timeoutMs"> = {},
): FullResolver {
  return systemResolver({ ...opts, timeoutMs });
}

/** The default resolver: {@link systemResolver} without a time limit of its own. */
export const denoResolver: Resolver = systemResolver();

/**
 * Turns whatever a resolver threw into a {@link DnsError}. A bare Deno
 * NotFound (an unconfirmed answer, a fake resolver) is "notfound".
 */
export function classifyDnsError(e: unknown, qname: string, qtype: string): DnsError {
  if (e instanceof DnsError) return e;
  if (e instanceof Deno.errors.NotFound) {
    return new DnsError("notfound", qname, qtype, "Host not found");
  }
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    return new DnsError(
      "temporary",
      qname,
      qtype,
      "DNS lookup not permitted by this daemon's sandbox (needs --allow-net to the name server)",
    );
  }
  if (
    e instanceof Deno.errors.TimedOut ||
    (e instanceof DOMException && (e.name === "TimeoutError" || e.name === "AbortError"))
  ) {
    return new DnsError(
      "temporary",
      qname,
      qtype,
      "Host not found, try again (timed out)",
      "timeout",
    );
  }
  // Deno's resolver refuses some legal names before asking (a label with "+", "=" or "/",
  // an inner "_", a leading "-"): nothing can be found under them, and asking again will
  // not help, so they are not found rather than a temporary failure to retry forever.
  if (e instanceof Error && /Label contains invalid characters|Malformed label/i.test(e.message)) {
    return new DnsError("notfound", qname, qtype, "Host not found (malformed name)", "nxdomain");
  }
  return new DnsError("temporary", qname, qtype, "Host not found, try again");
}

/** Removes one trailing dot and lowercases: "MX1.Example.COM." -> "mx1.example.com". */
export function normalizeName(name: string): string {
  return name.replace(/\.$/, "").toLowerCase();
}

/** Result of {@link lookupMx}. */
export type MxResult =
  /** Mail exchangers, best first, equal preferences shuffled. */
  | { kind: "mx"; hosts: MxRecord[] }
  /** The domain publishes "MX 0 ." : it accepts no mail (RFC 7505). */
  | { kind: "nullmx" }
  /** No MX records: use the domain's own addresses (RFC 5321 5.1). */
  | { kind: "none" };

/** Options for {@link lookupMx}. */
export interface LookupMxOptions {
  /** Random source for shuffling equal preferences. @default Math.random */
  random?: () => number;
}

/**
 * Looks up the MX records of `domain`. A "notfound" answer becomes
 * `{kind: "none"}` (the caller then looks up addresses and reports
 * NXDOMAIN from there); a temporary failure throws {@link DnsError}.
 */
export async function lookupMx(
  resolver: Resolver,
  domain: string,
  opts: LookupMxOptions = {},
): Promise<MxResult> {
  let records: MxRecord[];
  try {
    records = await resolver.resolveMx(domain);
  } catch (e) {
    const err = classifyDnsError(e, domain, "MX");
    if (err.kind === "notfound") return { kind: "none" };
    throw err;
  }
  const hosts = records.map((r) => ({
    preference: r.preference,
    exchange: normalizeName(r.exchange),
  }));
  if (hosts.length === 0) return { kind: "none" };
  if (hosts.some((h) => h.exchange === "")) return { kind: "nullmx" };
  return { kind: "mx", hosts: sortMx(hosts, opts.random ?? Math.random) };
}

/** Sorts by preference, shuffling each group of equal preference; drops duplicate hosts. */
export function sortMx(hosts: MxRecord[], random: () => number = Math.random): MxRecord[] {
  const keyed = hosts.map((h) => ({ h, r: random() }));
  keyed.sort((a, b) => a.h.preference - b.h.preference || a.r - b.r);
  const seen = new Set<string>();
  const out: MxRecord[] = [];
  for (const { h } of keyed) {
    if (seen.has(h.exchange)) continue;
    seen.add(h.exchange);
    out.push(h);
  }
  return out;
}

/** Which address families to look up (from `inet_protocols`). */
export interface AddressFamilies {
  ipv4: boolean;
  ipv6: boolean;
}

/** Reads `inet_protocols` values ("all", "ipv4", "ipv6") into families. */
export function familiesFrom(inetProtocols: string[]): AddressFamilies {
  const v = inetProtocols.map((p) => p.toLowerCase());
  const all = v.includes("all") || v.length === 0;
  return { ipv4: all || v.includes("ipv4"), ipv6: all || v.includes("ipv6") };
}

/**
 * The addresses of `host`: IPv4 first, then IPv6 (when enabled), each in
 * the resolver's order. An IP literal is returned as is. Throws
 * {@link DnsError}: "notfound" when no family has any address and at least
 * one said notfound, "temporary" when a lookup failed temporarily and none
 * gave an address.
 *
 * The families are first asked without confirming negative answers (the
 * resolver's `unconfirmed`, when it has one): a host with IPv4 addresses
 * and no AAAA record, the common case, then costs no TCP query. Only when
 * no family gave an address and each said NotFound are they asked again,
 * confirmed, to tell NXDOMAIN and no data from SERVFAIL.
 */
export async function lookupHost(
  resolver: Resolver,
  host: string,
  families: AddressFamilies,
): Promise<string[]> {
  const literal = ipLiteral(host);
  if (literal) return [literal];
  const fast = (resolver as FullResolver).unconfirmed;
  let results = await addressLookups(fast ?? resolver, host, families);
  if (fast && results.every((r) => r instanceof DnsError && r.kind === "notfound")) {
    results = await addressLookups(resolver, host, families);
  }
  const addrs: string[] = [];
  let temp: DnsError | null = null;
  let notFound: DnsError | null = null;
  for (const r of results) {
    if (r instanceof DnsError) {
      if (r.kind === "temporary") temp ??= r;
      else notFound ??= r;
    } else addrs.push(...r);
  }
  if (addrs.length > 0) return addrs;
  if (temp) throw temp;
  throw notFound ?? new DnsError("notfound", host, families.ipv4 ? "A" : "AAAA", "Host not found");
}

/** The A and AAAA lookups `families` asks for, in that order, each its records or its error. */
function addressLookups(
  resolver: Resolver,
  host: string,
  families: AddressFamilies,
): Promise<(string[] | DnsError)[]> {
  const lookups: Promise<string[] | DnsError>[] = [];
  const guard = (p: Promise<string[]>, t: string) =>
    p.catch((e: unknown) => classifyDnsError(e, host, t));
  if (families.ipv4) lookups.push(guard(resolver.resolveA(host), "A"));
  if (families.ipv6) lookups.push(guard(resolver.resolveAaaa(host), "AAAA"));
  return Promise.all(lookups);
}

/** Returns the address if `s` is an IPv4 or IPv6 literal (with or without brackets, "ipv6:" prefix), else null. */
export function ipLiteral(s: string): string | null {
  const t = s.replace(/^\[(.*)\]$/, "$1").replace(/^ipv6:/i, "");
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(t)) return t;
  if (t.includes(":") && /^[0-9a-fA-F:.]+$/.test(t)) return t.toLowerCase();
  return null;
}
