/**
 * DANE for SMTP (RFC 7672, with TLSA records of RFC 6698 and the updates
 * of RFC 7671): outbound TLS authenticated by DNSSEC-signed TLSA records
 * instead of (or beside) certificate authorities. The SMTP client's
 * library for smtp_tls_security_level = dane.
 *
 * One delivery to one MX host goes:
 * 1. MX and address records through {@link dnssecResolver}, which says
 *    whether each answer is secure (the AD bit of a local validating
 *    resolver; resolver.ts says why only a loopback one is trusted);
 * 2. {@link lookupTlsa} for "_25._tcp.<host>" ({@link tlsaName}), and
 *    {@link daneLevel}: "dane", "encrypt", "may" or "defer";
 * 3. at "dane", the TLS handshake (never rejected by the TLS library: the
 *    chain is judged here), then {@link matchTlsa} on the peer's chain
 *    ({@link peerChain}) with the reference names [TLSA base domain, MX
 *    host]; no match is a failure for this host (next MX, else defer).
 *
 * Files: records.ts (names, usable records, presentation), cert.ts (what
 * is read of a certificate, host name matching), match.ts (chain against
 * records), resolver.ts (DNS with the AD bit), level.ts (the decision).
 *
 * Not done: DNSSEC validation of our own (a validating resolver does it),
 * PKIX-TA/PKIX-EE usages (unusable for SMTP by RFC 7672 3.1.3), TLSA for
 * SRV or non-SMTP services, the "dane-only" and "fingerprint" levels and
 * smtp_tls_policy_maps (the SMTP client's), caching (the resolver's), and
 * revocation checks. The simplifications of RFC 7672 2.2.3's base domain
 * rules: only the address records' CNAME chain is expanded (the chain of
 * the MX host name as a whole, not per A and AAAA), and the caller gives
 * lookupTlsa the canonical name of whichever address lookup it made.
 *
 * @example
 * ```ts
 * import { daneLevel, dnssecResolver, lookupTlsa, matchTlsa, peerChain } from "./mod.ts";
 *
 * const dns = dnssecResolver({ timeoutMs: 10_000 });
 * const mx = await dns.mx("example.com");
 * const host = mx.records[0].exchange;
 * const addr = await dns.a(host);
 * const tlsa = await lookupTlsa(dns, host, { canonical: addr.name });
 * const level = daneLevel({ mxSecure: mx.secure, hostSecure: addr.secure, tlsa });
 * if (level.level === "dane") {
 *   // ... STARTTLS with node:tls, rejectUnauthorized: false, then:
 *   // const m = matchTlsa(level.records, peerChain(socket.getPeerCertificate(true)),
 *   //   [tlsa.kind === "records" ? tlsa.base : host, host]);
 * }
 * ```
 *
 * @module
 */
export {
  CertificateError,
  certificateMatchesName,
  hostnameMatches,
  type PeerCertificate,
  readCertificate,
} from "./cert.ts";
export {
  type DaneFacts,
  type DaneLevel,
  daneLevel,
  type DaneLevelOptions,
  lookupTlsa,
  type TlsaLookup,
} from "./level.ts";
export { matchTlsa, MAX_CHAIN, peerChain, type TlsaMatch } from "./match.ts";
export { tlsaName, type TlsaRecord, tlsaText, usableTlsa, USAGE } from "./records.ts";
export {
  type DnssecResolver,
  dnssecResolver,
  type DnssecResolverOptions,
  isLoopback,
  type SecureAnswer,
} from "./resolver.ts";
