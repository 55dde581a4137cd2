/**
 * The DANE decision for one MX host (RFC 7672 section 2.2, as Postfix's
 * smtp_tls_security_level = dane applies it): {@link lookupTlsa} asks for
 * the host's TLSA records, {@link daneLevel} turns what DNS said into the
 * effective TLS level of the connection:
 *
 * - "dane": authenticate the server with these usable records; a server
 *   without STARTTLS or that does not match is a failure (next MX, defer).
 * - "encrypt": the host publishes secure TLSA records but none is usable
 *   (RFC 7672 2.2, Postfix's TLS_README): TLS is mandatory, unauthenticated.
 * - "may": DANE does not apply (an unsigned MX RRset or host, no TLSA
 *   records, TLSA records that are not secure): opportunistic TLS.
 * - "defer": the host is in a signed zone but its TLSA lookup failed
 *   (SERVFAIL, also a validator's answer for bogus records, or a
 *   time-out): an attacker may be hiding the records, so the mail must
 *   wait (or try the next MX), never go in plaintext.
 *
 * Pure but for lookupTlsa's queries. Does not: look up the MX or address
 * records (the SMTP client's, with lib/dane's resolver for their
 * security), implement dane-only (the caller treats every level but
 * "dane" as "defer"), or handle smtp_tls_policy_maps overrides.
 *
 * @module
 */
import { DnsError, normalizeName } from "../dns/mod.ts";
import { tlsaName, type TlsaRecord, usableTlsa } from "./records.ts";
import type { DnssecResolver } from "./resolver.ts";

/** What the TLSA lookup of one host gave. */
export type TlsaLookup =
  /** Records; `base` is the TLSA base domain they were found at (a name for DANE-TA checks). */
  | { kind: "records"; secure: boolean; records: TlsaRecord[]; base: string }
  /** NXDOMAIN or no TLSA records. */
  | { kind: "none" }
  /** SERVFAIL, a time-out, no name server. */
  | { kind: "error"; reason: string };

/** The effective level; see the module comment. */
export type DaneLevel =
  | { level: "dane"; records: TlsaRecord[] }
  | { level: "encrypt"; reason: string }
  | { level: "may"; reason: string }
  | { level: "defer"; reason: string };

/** What DNS said about one MX host. */
export interface DaneFacts {
  /** The MX RRset was secure; null for a destination without MX records (the domain itself). */
  mxSecure: boolean | null;
  /** The host's address records (and the CNAMEs leading to them) were secure. */
  hostSecure: boolean;
  /** Its TLSA lookup; ignored when the host is not secure (the lookup is not needed then). */
  tlsa: TlsaLookup;
}

/** Options for {@link daneLevel}. */
export interface DaneLevelOptions {
  /**
   * Postfix's smtp_tls_dane_insecure_mx_policy, for an insecure MX RRset
   * (the MX host name itself is not authenticated, RFC 7672 2.2.1): "dane"
   * still uses the host's secure TLSA records, "encrypt" takes them only
   * as a sign that TLS is mandatory, "may" ignores them.
   * @default "dane" (Postfix 3.7's default with smtp_tls_security_level = dane)
   */
  insecureMx?: "dane" | "encrypt" | "may";
}

/** The effective TLS level of a connection to one MX host (see the module comment). */
export function daneLevel(facts: DaneFacts, opts: DaneLevelOptions = {}): DaneLevel {
  if (facts.mxSecure === false && opts.insecureMx === "may") {
    return { level: "may", reason: "MX records are not DNSSEC-signed" };
  }
  if (!facts.hostSecure) {
    return { level: "may", reason: "the host's address records are not DNSSEC-signed" };
  }
  const t = facts.tlsa;
  if (t.kind === "error") {
    return { level: "defer", reason: `TLSA lookup failed in a DNSSEC-signed zone: ${t.reason}` };
  }
  if (t.kind === "none") return { level: "may", reason: "no TLSA records" };
  if (!t.secure) return { level: "may", reason: "TLSA records are not DNSSEC-signed" };
  const records = usableTlsa(t.records);
  if (records.length === 0) {
    return { level: "encrypt", reason: "TLSA records published, none usable" };
  }
  if (facts.mxSecure === false && opts.insecureMx === "encrypt") {
    return { level: "encrypt", reason: "TLSA records of a host named by insecure MX records" };
  }
  return { level: "dane", records };
}

/**
 * The TLSA records of `host`'s SMTP service (RFC 7672 2.2.3): when its
 * address records came through a secure CNAME chain ending at `canonical`
 * (lib/dane resolver's SecureAnswer name), that name is asked first and
 * the host name only when it has no TLSA records. Never throws: failures
 * are `{kind: "error"}`.
 */
export async function lookupTlsa(
  resolver: Pick<DnssecResolver, "tlsa">,
  host: string,
  opts: { port?: number; canonical?: string } = {},
): Promise<TlsaLookup> {
  const bases = [...new Set([opts.canonical ?? host, host].map(normalizeName))];
  for (const base of bases) {
    try {
      const answer = await resolver.tlsa(tlsaName(base, opts.port));
      return { kind: "records", secure: answer.secure, records: answer.records, base };
    } catch (e) {
      if (!(e instanceof DnsError) || e.kind !== "notfound") {
        return { kind: "error", reason: (e as Error).message };
      }
    }
  }
  return { kind: "none" };
}
