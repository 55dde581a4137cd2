/**
 * Authenticating an SMTP server by its TLSA records (RFC 7672 section 3,
 * RFC 7671 section 5): {@link matchTlsa} takes the certificate chain the
 * server sent (DER, leaf first, as node:tls getPeerCertificate(true) links
 * it; {@link peerChain} flattens that) and the usable records.
 *
 * DANE-EE(3) records match the leaf alone, its certificate (selector 0)
 * or its public key (selector 1), and nothing else is checked: no names,
 * no dates, no issuer (RFC 7672 3.1.1). DANE-TA(2) records match a
 * certificate above the leaf (or, for "2 1 0", the public key that signed
 * the top of the chain, which the server may then leave out; RFC 7671
 * section 5.2); then the leaf must chain to that trust anchor by
 * signatures, the leaf and the certificates between must be within their
 * validity period, the certificates between must be CAs, and the leaf
 * must carry one of the reference names (RFC 7672 3.2.2/3.2.3: the TLSA
 * base domain and the MX host name; the caller chooses them).
 *
 * The chain is rebuilt from the leaf by issuer name and signature, so the
 * order of the certificates after the leaf does not matter (greedily: the
 * first issuer found is taken); certificates that cannot be read are
 * skipped, and at most {@link MAX_CHAIN} are looked at (a hostile server
 * cannot make us verify signatures without end). Does not check
 * revocation, key usage, name constraints, or the trust anchor's own
 * validity period and basic constraints (a DANE trust anchor is trusted
 * as published, as in OpenSSL's DANE).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, createPublicKey } from "node:crypto";
import {
  certificateMatchesName,
  issued,
  type PeerCertificate,
  readCertificate,
  validityProblem,
} from "./cert.ts";
import { type TlsaRecord, usableTlsa, USAGE } from "./records.ts";

/** At most this many certificates of a chain are read (Postfix's smtp_tls_scert_verifydepth is 9). */
export const MAX_CHAIN = 10;

/** Which record matched at which depth (0 the leaf), or why none did. */
export type TlsaMatch =
  | { ok: true; record: TlsaRecord; depth: number }
  | { ok: false; reason: string };

/** The DER chain of a node:tls peer certificate (getPeerCertificate(true)): leaf first, by issuerCertificate. */
export function peerChain(cert: { raw: Uint8Array; issuerCertificate?: unknown }): Uint8Array[] {
  const out: Uint8Array[] = [];
  const seen = new Set<unknown>();
  for (
    let c: { raw: Uint8Array; issuerCertificate?: unknown } | undefined = cert;
    c?.raw && !seen.has(c) && out.length < MAX_CHAIN;
    c = c.issuerCertificate as typeof c
  ) {
    seen.add(c);
    out.push(new Uint8Array(c.raw));
  }
  return out;
}

/** Whether the record's association data is this certificate's (selected part, matching type). */
function associated(r: TlsaRecord, c: PeerCertificate): boolean {
  const selected = r.selector === 0 ? c.der : c.spki;
  const data = r.matchingType === 0
    ? selected
    : createHash(r.matchingType === 1 ? "sha256" : "sha512").update(selected).digest();
  return data.length === r.data.length && data.every((b, i) => b === r.data[i]);
}

/** Whether a "2 1 0" record's public key signed `c`. */
function signedByKey(r: TlsaRecord, c: PeerCertificate): boolean {
  if (r.selector !== 1 || r.matchingType !== 0) return false;
  try {
    const key = createPublicKey({ key: Buffer.from(r.data), format: "der", type: "spki" });
    return c.x509.verify(key);
  } catch {
    return false; // not a key node:crypto can read
  }
}

/** The leaf, then each certificate's issuer found among the others. */
function buildPath(certs: PeerCertificate[]): PeerCertificate[] {
  const path = [certs[0]];
  const rest = certs.slice(1);
  for (;;) {
    const top = path[path.length - 1];
    const i = rest.findIndex((c) => issued(c, top));
    if (i < 0) return path;
    path.push(rest.splice(i, 1)[0]);
  }
}

/** What is wrong with a chain to a trust anchor at `depth`, or null (see the module comment). */
function taProblem(path: PeerCertificate[], depth: number, names: string[], now: Date) {
  for (let i = 0; i < depth; i++) {
    const p = validityProblem(path[i], now);
    if (p) return `${p} at depth ${i}`;
    if (i > 0 && !path[i].x509.ca) return `certificate at depth ${i} is not a CA`;
  }
  if (!certificateMatchesName(path[0], names)) {
    const ids = path[0].dnsNames.length ? path[0].dnsNames : path[0].commonNames;
    return `server certificate name mismatch: it is for ${ids.join(", ") || "no name"}, ` +
      `wanted ${names.join(" or ")}`;
  }
  return null;
}

/**
 * Matches a peer's chain (DER, leaf first) against TLSA records; only the
 * usable ones count ({@link usableTlsa}). See the module comment for what
 * each usage checks. `names` are the reference identifiers for DANE-TA;
 * `now` the time the validity periods are checked at.
 */
export function matchTlsa(
  records: TlsaRecord[],
  chainDer: Uint8Array[],
  names: string[],
  now: Date = new Date(),
): TlsaMatch {
  const usable = usableTlsa(records);
  if (usable.length === 0) return { ok: false, reason: "no usable TLSA records" };
  if (chainDer.length === 0) return { ok: false, reason: "the server sent no certificate" };
  const certs: PeerCertificate[] = [];
  for (const [i, der] of chainDer.slice(0, MAX_CHAIN).entries()) {
    try {
      certs.push(readCertificate(der));
    } catch (e) {
      if (i === 0) return { ok: false, reason: `server certificate: ${(e as Error).message}` };
    }
  }
  for (const r of usable) {
    if (r.usage === USAGE.DANE_EE && associated(r, certs[0])) {
      return { ok: true, record: r, depth: 0 };
    }
  }
  const anchors = usable.filter((r) => r.usage === USAGE.DANE_TA);
  const path = anchors.length ? buildPath(certs) : [];
  const problems: string[] = [];
  const tryAnchor = (r: TlsaRecord, depth: number): TlsaMatch | null => {
    const p = taProblem(path, depth, names, now);
    if (!p) return { ok: true, record: r, depth };
    problems.push(`DANE-TA match at depth ${depth}, but ${p}`);
    return null;
  };
  for (let depth = 1; depth < path.length; depth++) {
    for (const r of anchors) {
      const m = associated(r, path[depth]) && tryAnchor(r, depth);
      if (m) return m;
    }
  }
  for (const r of anchors) {
    const m = signedByKey(r, path[path.length - 1]) && tryAnchor(r, path.length);
    if (m) return m;
  }
  return {
    ok: false,
    reason: problems[0] ?? "no TLSA record matches the server certificate chain",
  };
}
