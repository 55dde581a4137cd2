/**
 * DANE in the SMTP client (RFC 7672; smtp_tls_security_level = dane or
 * dane-only, globally or in smtp_tls_policy_maps): the TLS policy of one
 * MX host from what DNSSEC says about it, as Postfix's smtp(8) decides it
 * with smtp_dns_support_level = dnssec.
 *
 * For a next hop at a DANE level, deliver.ts resolves MX and address
 * records through a {@link TrackingResolver}: lib/dane's DNSSEC-aware
 * resolver (the AD bit of a loopback validating resolver), which remembers
 * whether each answer was secure. {@link hostSite} then asks for the
 * host's TLSA records and turns lib/dane's daneLevel into the policy the
 * connection runs with:
 *
 * - "dane": STARTTLS is mandatory and the chain must match a usable TLSA
 *   record (starttls.ts matches it; "Server certificate not verified"
 *   otherwise, and the next MX host is tried);
 * - "encrypt": usable-less TLSA records, or records behind unsigned MX
 *   records with smtp_tls_dane_insecure_mx_policy = encrypt;
 * - "may": DANE does not apply; at dane-only that is a failure for the host;
 * - "defer": the TLSA lookup failed in a signed zone, so an attacker may
 *   be hiding the records: this host is skipped (4.7.5), never tried in
 *   plaintext.
 *
 * TLSA answers are looked up once per host and request. Nothing is cached
 * across requests (the validating resolver caches).
 *
 * @module
 */
import type { MxRecord, Resolver } from "../../lib/dns/mod.ts";
import {
  daneLevel,
  type DnssecResolver,
  lookupTlsa,
  type SecureAnswer,
} from "../../lib/dane/mod.ts";
import { normalizeName } from "../../lib/dns/mod.ts";
import type { SiteTls } from "../../lib/tls/client_policy.ts";
import type { Destination } from "./session.ts";
import { SecurityFailure, type SecurityLog } from "./security.ts";

/** What DNSSEC said about one answer: secure or not, and the name its CNAME chain ended at. */
interface Seen {
  secure: boolean;
  name: string;
}

/**
 * The lib/dns Resolver interface over a DNSSEC-aware resolver, remembering
 * each answer's security for {@link hostSite}. One per delivery request.
 */
export class TrackingResolver implements Resolver {
  readonly #seen = new Map<string, Seen>();

  constructor(readonly dns: DnssecResolver) {}

  #keep<T>(type: string, name: string, a: SecureAnswer<T>): T[] {
    this.#seen.set(`${type} ${normalizeName(name)}`, { secure: a.secure, name: a.name });
    return a.records;
  }

  async resolveMx(name: string): Promise<MxRecord[]> {
    return this.#keep("MX", name, await this.dns.mx(name));
  }

  async resolveA(name: string): Promise<string[]> {
    return this.#keep("A", name, await this.dns.a(name));
  }

  async resolveAaaa(name: string): Promise<string[]> {
    return this.#keep("AAAA", name, await this.dns.aaaa(name));
  }

  /** The answer of an earlier lookup, if there was one. */
  seen(type: "MX" | "A" | "AAAA", name: string): Seen | undefined {
    return this.#seen.get(`${type} ${normalizeName(name)}`);
  }
}

/** The TLSA decision per host name and port, within one request. */
export type TlsaDecisions = Map<string, Promise<SiteTls | SecurityFailure>>;

/**
 * The policy of the connection to `dest`, for a next hop whose policy is
 * at a DANE level: a SiteTls to connect with, or the failure that skips
 * this host. `mxLookup`: the next hop was looked up as an MX domain (its
 * MX answer, if any, is in `dns`); `nexthopHost` is that domain.
 */
export function hostSite(
  site: SiteTls,
  dest: Destination,
  nexthop: { host: string; mx: boolean },
  dns: TrackingResolver,
  opts: { insecureMx: "dane" | "encrypt" | "may"; log: SecurityLog; decisions: TlsaDecisions },
): Promise<SiteTls | SecurityFailure> {
  const key = `${dest.host}:${dest.port}:${dest.addr.includes(":") ? "6" : "4"}`;
  let d = opts.decisions.get(key);
  if (!d) {
    d = decide(site, dest, nexthop, dns, opts);
    opts.decisions.set(key, d);
  }
  return d;
}

async function decide(
  site: SiteTls,
  dest: Destination,
  nexthop: { host: string; mx: boolean },
  dns: TrackingResolver,
  opts: { insecureMx: "dane" | "encrypt" | "may"; log: SecurityLog },
): Promise<SiteTls | SecurityFailure> {
  const fallback = site.fallback!;
  const mx = nexthop.mx ? dns.seen("MX", nexthop.host) : undefined;
  const addr = dns.seen(dest.addr.includes(":") ? "AAAA" : "A", dest.host);
  // No address lookup (an IP address as next hop): nothing DNSSEC could vouch for.
  const hostSecure = addr?.secure ?? false;
  const tlsa = hostSecure
    ? await lookupTlsa(dns.dns, dest.host, { port: dest.port, canonical: addr!.name })
    : { kind: "none" as const };
  const level = daneLevel(
    { mxSecure: mx ? mx.secure : null, hostSecure, tlsa },
    { insecureMx: opts.insecureMx },
  );
  const where = `${dest.host}[${dest.addr}]:${dest.port}`;
  switch (level.level) {
    case "dane": {
      const base = tlsa.kind === "records" ? tlsa.base : dest.host;
      return {
        ...site,
        level: "dane",
        fallback: undefined,
        tlsa: { records: level.records, names: [...new Set([base, dest.host])] },
      };
    }
    case "encrypt":
      return { ...site, level: "encrypt", fallback: undefined };
    case "may":
      if (site.level === "dane-only") {
        return new SecurityFailure(
          "4.7.5",
          `TLS is required, but host ${where} has no usable DANE TLSA records: ${level.reason}`,
        );
      }
      return fallback;
    case "defer":
      opts.log.warn(`${where}: ${level.reason}`);
      return new SecurityFailure("4.7.5", `TLSA lookup error for ${dest.host}:${dest.port}`);
  }
}
