/**
 * TLS client certificates in smtpd, and why Postwarden refuses them.
 *
 * Postfix's smtpd can ask a client for a certificate (smtpd_tls_ask_ccert),
 * require one (smtpd_tls_req_ccert) and grant relaying or an access-table
 * action by its fingerprint (permit_tls_clientcerts with relay_clientcerts,
 * permit_tls_all_clientcerts, check_ccert_access). All of that rests on
 * OpenSSL proving, during the handshake, that the client holds the
 * private key of the certificate it presents (its CertificateVerify
 * signature) and, for the "trusted" forms, that the certificate chains to
 * smtpd_tls_CAfile / smtpd_tls_CApath.
 *
 * Deno 2.9.6's TLS server (node:tls over rustls; Deno.listenTls and
 * Deno.startTls have no client-certificate options at all) asks for a
 * client certificate when told to (requestCert), and getPeerCertificate()
 * returns what the client sent, but it checks neither: a client that
 * presents someone else's certificate together with an unrelated key
 * completes the handshake, TLSv1.2 and TLSv1.3 alike, and a self-signed
 * certificate is accepted with `ca` set and rejectUnauthorized true
 * (tests/interop/ccert_runtime_test.ts shows both). Certificates are public
 * (every server a relay talks to sees its certificate), so a fingerprint
 * match would authenticate nobody: anyone could relay as any listed
 * client. The proof of possession cannot be rebuilt above the TLS library
 * (it needs the handshake transcript), so this is not something smtpd can
 * add on its own.
 *
 * So, failing closed: the restrictions that would grant something for a
 * certificate stop the start with this reason (instead of the generic
 * "not supported" warning and 451 at run time), smtpd_tls_req_ccert is a
 * refused parameter (params.ts), and smtpd never asks for a certificate:
 * the Received: clause says "(No client certificate requested)" and the
 * ccert_* policy attributes are empty, which is what Postfix does and
 * sends with smtpd_tls_ask_ccert = no. smtpd_tls_ask_ccert,
 * smtpd_tls_CAfile, smtpd_tls_CApath, smtpd_tls_ccert_verifydepth,
 * smtpd_tls_fingerprint_digest and relay_clientcerts stay on the
 * ignorable list: with nothing that uses a certificate, ignoring them
 * lets nobody through.
 *
 * When the canary test starts failing (the runtime now rejects a
 * certificate presented without its key), the feature can be built.
 *
 * Pure: reads nothing.
 *
 * @module
 */

/** Why Postwarden cannot use a client certificate (ends each refusal). */
export const CCERT_REASON = "Deno's TLS library does not check that a client holds the " +
  "private key of the certificate it presents (nor that it chains to smtpd_tls_CAfile), so " +
  "any client could present a listed certificate; see lib/tls/ccert.ts";

/** Restrictions that grant or decide something by the client's certificate (lower case). */
export const CCERT_RESTRICTIONS: ReadonlySet<string> = new Set([
  "permit_tls_clientcerts",
  "permit_tls_all_clientcerts",
  "check_ccert_access",
]);

/** The fatal refusal for a certificate restriction in a list, or null for any other name. */
export function ccertRefusal(list: string, restriction: string): string | null {
  if (!CCERT_RESTRICTIONS.has(restriction.toLowerCase())) return null;
  return `${list}: restriction "${restriction}" is not supported by Postwarden: ${CCERT_REASON}`;
}
