/**
 * TLSA records for SMTP (RFC 7672 with RFC 6698/7671): where they live
 * ({@link tlsaName}), which of them an SMTP client may use
 * ({@link usableTlsa}), and their presentation form for logs and TLS-RPT
 * ({@link tlsaText}).
 *
 * @module
 */
import { normalizeName } from "../dns/mod.ts";
import type { TlsaData } from "../dns/wire.ts";

/** One TLSA record (RFC 6698 2.1): usage, selector, matching type, association data. */
export type TlsaRecord = TlsaData;

/** Certificate usages (RFC 7218 acronyms). */
export const USAGE = { PKIX_TA: 0, PKIX_EE: 1, DANE_TA: 2, DANE_EE: 3 } as const;

/** Digest lengths of the matching types this code knows; 0 (Full) has none. */
const DIGEST_LENGTH: Record<number, number> = { 1: 32, 2: 64 };

/**
 * The TLSA owner name of a host's SMTP service, RFC 7672 2.2.3:
 * "_25._tcp.mx.example.com" (another port for submission or a
 * transport's own). `host` is the TLSA base domain: the MX host name, or
 * its CNAME-expanded name when the expansion is secure; which of the two
 * to ask first is {@link lookupTlsa}'s (level.ts) business.
 */
export function tlsaName(host: string, port = 25): string {
  return `_${port}._tcp.${normalizeName(host)}`;
}

/**
 * The records an SMTP client may use (RFC 7672 3.1.3): only DANE-TA(2) and
 * DANE-EE(3), as PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP; only
 * selectors 0 (Cert) and 1 (SPKI); only matching types 0 (Full, non-empty
 * data), 1 (SHA2-256, 32 octets) and 2 (SHA2-512, 64 octets).
 *
 * Digest algorithm agility (RFC 7671 section 9): among the records of one
 * usage and selector, a SHA2-256 record is dropped when a SHA2-512 one is
 * present, so a publisher moving to the stronger digest is not held to the
 * weaker one (Postfix's smtp_tls_dane_digests order, strongest first).
 */
export function usableTlsa(records: TlsaRecord[]): TlsaRecord[] {
  const usable = records.filter((r) =>
    (r.usage === USAGE.DANE_TA || r.usage === USAGE.DANE_EE) &&
    (r.selector === 0 || r.selector === 1) &&
    (r.matchingType === 0 ? r.data.length > 0 : DIGEST_LENGTH[r.matchingType] === r.data.length)
  );
  const strongest = new Map<string, number>();
  for (const r of usable) {
    const key = `${r.usage} ${r.selector}`;
    if (r.matchingType > (strongest.get(key) ?? 0)) strongest.set(key, r.matchingType);
  }
  return usable.filter((r) =>
    r.matchingType === 0 || r.matchingType === strongest.get(`${r.usage} ${r.selector}`)
  );
}

/** A record in presentation form: "3 1 1 0A1B…" (hex upper case, as dig and RFC 8460 policy-string). */
export function tlsaText(r: TlsaRecord): string {
  const hex = Array.from(r.data, (b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
  return `${r.usage} ${r.selector} ${r.matchingType} ${hex}`.trimEnd();
}
