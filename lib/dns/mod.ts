/**
 * DNS for mail routing: MX lookup with RFC 5321 section 5 semantics
 * (preference order, random order among equal preferences, null MX per
 * RFC 7505, fallback to the domain's own address records when it has no MX)
 * and host address lookup, behind an injectable {@link Resolver} so tests run
 * without a network. Errors are classified the way a delivery agent needs
 * them: {@link DnsError} with `kind` "notfound" (permanent: the name or the
 * record does not exist) or "temporary" (try again later).
 *
 * Does not cache (the system resolver does), does not do DNSSEC/DANE, and
 * does not choose next hops: that is the delivery agent's job.
 *
 * Deno's resolver reports NXDOMAIN and "no record of this type" alike as
 * NotFound, so both are "notfound" here; an MX "notfound" therefore means
 * "try the address records", as RFC 5321 asks when there is no MX.
 */

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

/** A classified DNS failure; the message reads like Postfix's. */
export class DnsError extends Error {
  override readonly name = "DnsError";
  /**
   * @param kind notfound (permanent) or temporary
   * @param qname the name looked up
   * @param qtype MX, A or AAAA
   * @param detail why, e.g. "Host not found" or "Host not found, try again"
   */
  constructor(
    readonly kind: DnsErrorKind,
    readonly qname: string,
    readonly qtype: string,
    readonly detail: string,
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
}

/**
 * Deno.resolveDns with the system's name servers and a time limit per
 * query: a dead name server costs a session at most `timeoutMs` per lookup
 * (the failure is then "temporary", as Postfix treats a timeout).
 */
export function timedResolver(timeoutMs: number): FullResolver {
  const q = (name: string, type: "A" | "AAAA" | "PTR" | "NS") =>
    Deno.resolveDns(name, type, { signal: AbortSignal.timeout(timeoutMs) }) as Promise<string[]>;
  return {
    resolveMx: (name) => Deno.resolveDns(name, "MX", { signal: AbortSignal.timeout(timeoutMs) }),
    resolveA: (name) => q(name, "A"),
    resolveAaaa: (name) => q(name, "AAAA"),
    resolvePtr: (name) => q(name, "PTR"),
    resolveNs: (name) => q(name, "NS"),
    resolveTxt: (name) => Deno.resolveDns(name, "TXT", { signal: AbortSignal.timeout(timeoutMs) }),
  };
}

/** The default resolver: Deno.resolveDns with the system's name servers. */
export const denoResolver: Resolver = {
  resolveMx: (name) => Deno.resolveDns(name, "MX"),
  resolveA: (name) => Deno.resolveDns(name, "A"),
  resolveAaaa: (name) => Deno.resolveDns(name, "AAAA"),
};

/** Turns whatever a resolver threw into a {@link DnsError}. */
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
  if (e instanceof Deno.errors.TimedOut) {
    return new DnsError("temporary", qname, qtype, "Host not found, try again (timed out)");
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
 */
export async function lookupHost(
  resolver: Resolver,
  host: string,
  families: AddressFamilies,
): Promise<string[]> {
  const literal = ipLiteral(host);
  if (literal) return [literal];
  const lookups: Promise<string[] | DnsError>[] = [];
  const guard = (p: Promise<string[]>, t: string) =>
    p.catch((e: unknown) => classifyDnsError(e, host, t));
  if (families.ipv4) lookups.push(guard(resolver.resolveA(host), "A"));
  if (families.ipv6) lookups.push(guard(resolver.resolveAaaa(host), "AAAA"));
  const results = await Promise.all(lookups);
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

/** Returns the address if `s` is an IPv4 or IPv6 literal (with or without brackets, "ipv6:" prefix), else null. */
export function ipLiteral(s: string): string | null {
  const t = s.replace(/^\[(.*)\]$/, "$1").replace(/^ipv6:/i, "");
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(t)) return t;
  if (t.includes(":") && /^[0-9a-fA-F:.]+$/.test(t)) return t.toLowerCase();
  return null;
}
