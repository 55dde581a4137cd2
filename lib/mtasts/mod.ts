/**
 * MTA-STS (RFC 8461) and TLS reporting (RFC 8460) for the SMTP client:
 * whether a recipient domain requires authenticated TLS to its MX hosts
 * without DNSSEC, by a policy served over HTTPS, and how to tell the
 * domain what went wrong.
 *
 * Per delivery: look up the "_mta-sts.<domain>" TXT record
 * ({@link parseStsRecord}), decide with the cached policy
 * ({@link stsCacheDecision}), fetch when told ({@link fetchStsPolicy}),
 * then, under a policy in "enforce" mode, deliver only to MX hosts the
 * policy names ({@link mxMatchesPolicy}) and only over TLS with a
 * certificate valid for the MX host name under the WebPKI; "testing"
 * only reports. TLS-RPT: {@link parseTlsRptRecord} for "_smtp._tls.<domain>",
 * {@link tlsRptReport} for the aggregate report, {@link tlsRptEvent} for
 * what the SMTP client reports of one session, {@link reportMessage} and
 * {@link gzipReport} for what is sent.
 *
 * Files: record.ts (TXT record), policy.ts (policy file, mx matching),
 * fetch.ts (HTTPS), cache.ts (cache decision), tlsrpt.ts (TLS-RPT).
 *
 * Not done here: DNS lookups (lib/dns systemResolver's resolveTxt), the
 * policy store (the caller's Deno KV), the TLS handshake and certificate
 * check of the MX (the SMTP client's), the precedence of DANE over
 * MTA-STS (RFC 8461 2: a domain with DANE TLSA records is handled by
 * lib/dane and its MTA-STS policy ignored), and keeping counters or
 * sending reports (daemons/mtasts/reports.ts).
 *
 * @example
 * ```ts
 * import { fetchStsPolicy, mxMatchesPolicy, parseStsRecord, stsCacheDecision } from "./mod.ts";
 *
 * const record = parseStsRecord([["v=STSv1; id=20240101T000000"]]);
 * const d = stsCacheDecision(null, record, Date.now());
 * if (d.action === "fetch") {
 *   const policy = await fetchStsPolicy("example.com").catch(() => d.fallback);
 *   if (policy?.mode === "enforce" && !mxMatchesPolicy(policy, "mx1.example.com")) {
 *     // skip this MX host
 *   }
 * }
 * ```
 *
 * @module
 */
export {
  type CachedStsPolicy,
  type StsCacheDecision,
  stsCacheDecision,
  stsPolicyFresh,
  type StsRecordLookup,
} from "./cache.ts";
export { fetchStsPolicy, type FetchStsPolicyOptions, StsFetchError } from "./fetch.ts";
export {
  isDomainName,
  MAX_AGE_LIMIT,
  MAX_POLICY_SIZE,
  mxMatchesPolicy,
  parseStsPolicy,
  type StsPolicy,
  StsPolicyError,
  stsPolicyLines,
} from "./policy.ts";
export { parseStsRecord } from "./record.ts";
export {
  gzipReport,
  mailtoAddress,
  MAX_REASON,
  parseTlsRptRecord,
  reportFileName,
  reportMessage,
  type TlsRptEvent,
  tlsRptEvent,
  type TlsRptFailure,
  type TlsRptPolicyCounters,
  type TlsRptRecord,
  type TlsRptReport,
  tlsRptReport,
  type TlsRptReportInput,
  type TlsRptResultType,
} from "./tlsrpt.ts";
