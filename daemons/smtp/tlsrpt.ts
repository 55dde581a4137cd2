/**
 * SMTP TLS Reporting (RFC 8460) in the SMTP client, with
 * smtp_tlsrpt_enable = yes: each TLS attempt to an MX host of a domain
 * under a policy (an MTA-STS policy in enforce or testing mode, or DANE
 * TLSA records that apply to the host) becomes one event for the mtasts
 * service, which counts them and sends the daily reports
 * (daemons/mtasts/reports.ts). Postfix 3.10 does the same through sys4's
 * libtlsrpt and collector.
 *
 * What an attempt reports (security.ts calls the host's {@link TlsReport}):
 * - STARTTLS not offered, or refused: "starttls-not-supported";
 * - a failed handshake: "validation-failure" with the library's reason;
 * - a chain that a DANE record does not match: "tlsa-invalid"; one that
 *   does not verify: "certificate-expired" or "certificate-not-trusted";
 *   a trusted one without the host name: "certificate-host-mismatch";
 * - an MX host an MTA-STS policy does not name: "validation-failure";
 * - otherwise "success".
 *
 * A "testing" MTA-STS policy is checked as an enforced one would be (the
 * MTA-STS trust anchors, the MX host name) but only reported: the
 * connection goes on at the site's own level. A cached connection is not
 * reported again (Postfix's smtp_tlsrpt_skip_reused_handshakes = yes), nor
 * is the plaintext retry after a failed handshake at "may".
 *
 * Events are sent without waiting for mtasts, at most {@link MAX_IN_FLIGHT}
 * at a time (more are dropped, with one warning): reporting never delays
 * or fails a delivery.
 *
 * @module
 */
import { ipcRequest } from "../../lib/ipc/mod.ts";
import {
  MAX_REASON,
  type StsPolicy,
  stsPolicyLines,
  type TlsRptEvent,
  type TlsRptResultType,
} from "../../lib/mtasts/mod.ts";
import { tlsaText } from "../../lib/dane/records.ts";
import type { SiteTls } from "../../lib/tls/client_policy.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import type { ClientTlsInfo } from "./starttls.ts";

/** Where events go (mtasts, or a list in tests). */
export type TlsRptSink = (e: TlsRptEvent) => void;

/** One host's reporter: the outcome of one TLS attempt. */
export type TlsReport = (result: "success" | TlsRptResultType, reason?: string) => void;

/** The policy an MX host's sessions are reported under. */
export type ReportPolicy = Pick<TlsRptEvent, "domain" | "policyType" | "policyString" | "mxHost">;

/** Most events on their way to mtasts at once. */
const MAX_IN_FLIGHT = 100;

/** The sink through the mtasts service. */
export function ipcTlsRptSink(ctx: ServiceContext): TlsRptSink {
  let inFlight = 0;
  let warned = false;
  return (event) => {
    if (inFlight >= MAX_IN_FLIGHT) {
      if (!warned) ctx.log.warn("TLSRPT: mtasts is not keeping up; events dropped");
      warned = true;
      return;
    }
    inFlight++;
    ipcRequest<{ status: string; text?: string }>(
      ctx.peer("mtasts"),
      { op: "tlsrpt", event },
      { timeoutMs: 10_000, retryMs: 5000 },
    ).then((r) => {
      if (r.status !== "ok") ctx.log.warn(`TLSRPT: mtasts: ${r.text ?? r.status}`);
      else warned = false;
    }).catch((e) => {
      if (!warned) ctx.log.warn(`TLSRPT: cannot reach mtasts: ${(e as Error).message}`);
      warned = true;
    }).finally(() => inFlight--);
  };
}

/** The report policy of an MTA-STS policy. */
export function stsReportPolicy(domain: string, policy: StsPolicy): ReportPolicy {
  return { domain, policyType: "sts", policyString: stsPolicyLines(policy), mxHost: policy.mx };
}

/** The report policy of a host at the effective level "dane" (its TLSA records). */
export function tlsaReportPolicy(domain: string, site: SiteTls): ReportPolicy | null {
  if (site.level !== "dane" || !site.tlsa) return null;
  return { domain, policyType: "tlsa", policyString: site.tlsa.records.map(tlsaText) };
}

/** The reporter of one MX host address. */
export function hostReport(
  sink: TlsRptSink,
  policy: ReportPolicy,
  dest: { host: string; addr: string },
): TlsReport {
  return (result, reason) =>
    sink({
      ...policy,
      result,
      mx: dest.host.toLowerCase().replace(/\.$/, ""),
      ip: dest.addr,
      ...(reason ? { reason: printable(reason).slice(0, MAX_REASON) } : {}),
    });
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, "?");
}

/**
 * What a completed handshake reports: DANE's verdict at level dane, else
 * the certificate checked against the site's anchors and, when the site
 * names patterns, its name.
 */
export function handshakeOutcome(
  info: ClientTlsInfo,
  site: SiteTls,
): { result: "success" | TlsRptResultType; reason?: string } {
  if (info.tlsaFailure !== undefined) return { result: "tlsa-invalid", reason: info.tlsaFailure };
  if (site.match.length === 0 || info.matched) return { result: "success" };
  if (info.trusted) return { result: "certificate-host-mismatch" };
  if (info.verifyError === "CERT_HAS_EXPIRED") {
    return { result: "certificate-expired", reason: info.verifyError };
  }
  return { result: "certificate-not-trusted", reason: info.verifyError ?? undefined };
}
