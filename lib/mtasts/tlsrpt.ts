/**
 * SMTP TLS Reporting (RFC 8460): where a domain wants reports (its
 * "_smtp._tls" TXT record, section 3) and the aggregate report itself
 * (section 4), built from counters the SMTP client keeps per policy.
 *
 * {@link parseTlsRptRecord} is strict to section 3's ABNF like the
 * MTA-STS record; of the rua URIs, mailto: and https: ones are kept (the
 * two the RFC defines), others dropped. {@link tlsRptReport} makes the
 * JSON object of section 4.3 with the field names of section 4.4; the
 * caller serializes it.
 *
 * Does not: keep the counters, gzip the report, or send it by mail
 * (section 5.3's multipart/report with the "tlsrpt" report type and its
 * file name) or HTTPS POST (section 5.4).
 *
 * @module
 */
import { EXTENSION, recordFields, trimWsp } from "./record.ts";

/** A report destination record: its rua URIs (mailto: and https:). */
export interface TlsRptRecord {
  rua: string[];
}

/** A rua URI worth reporting to, else null. */
function reportUri(uri: string): string | null {
  if (/^mailto:[^@\s,;!]+@[^@\s,;!]+$/i.test(uri)) return uri;
  if (/^https:/i.test(uri)) {
    try {
      return new URL(uri).protocol === "https:" ? uri : null;
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * The TLSRPT record among a name's TXT records (strings joined), or null:
 * none, several starting "v=TLSRPTv1" (section 3: then none), a syntax
 * error, or no mailto:/https: URI in rua.
 */
export function parseTlsRptRecord(txts: string[][]): TlsRptRecord | null {
  const fields = recordFields(txts, "v=TLSRPTv1");
  if (!fields) return null;
  let rua: string[] | null = null;
  for (const f of fields) {
    if (f.startsWith("rua=")) {
      const uris = f.slice(4).split(",").map(trimWsp);
      if (uris.some((u) => !/^[\x21-\x2b\x2d-\x3a\x3c-\x7e]+$/.test(u))) return null;
      rua ??= uris.map(reportUri).filter((u) => u !== null);
    } else if (!EXTENSION.test(f)) return null;
  }
  return rua && rua.length ? { rua } : null;
}

/** Result types of RFC 8460 4.3. */
export type TlsRptResultType =
  // Negotiation failures (4.3.1)
  | "starttls-not-supported"
  | "certificate-host-mismatch"
  | "certificate-expired"
  | "certificate-not-trusted"
  | "validation-failure"
  // DANE policy failures (4.3.2.1)
  | "tlsa-invalid"
  | "dnssec-invalid"
  | "dane-required"
  // MTA-STS policy failures (4.3.2.2)
  | "sts-policy-fetch-error"
  | "sts-policy-invalid"
  | "sts-webpki-invalid";

/** The failed sessions of one kind, to one receiving MX, from one sending address. */
export interface TlsRptFailure {
  resultType: TlsRptResultType;
  failedSessionCount: number;
  sendingMtaIp?: string;
  receivingMxHostname?: string;
  receivingMxHelo?: string;
  receivingIp?: string;
  /** A URI with more about the failure. */
  additionalInformation?: string;
  /** Free text, e.g. the TLS library's error code. */
  failureReasonCode?: string;
}

/** The counters of one policy (one domain, one policy type) over the report's period. */
export interface TlsRptPolicyCounters {
  policyType: "sts" | "tlsa" | "no-policy-found";
  policyDomain: string;
  /** The policy's lines (sts, policy.ts stsPolicyLines) or TLSA records (lib/dane tlsaText). */
  policyString?: string[];
  /** sts: the policy's mx patterns. */
  mxHost?: string[];
  successfulSessionCount: number;
  failures: TlsRptFailure[];
}

/** What a report is made of. */
export interface TlsRptReportInput {
  organizationName: string;
  /** An address or URI to contact the sender's operators at. */
  contactInfo: string;
  reportId: string;
  start: Date;
  end: Date;
  policies: TlsRptPolicyCounters[];
}

/** The report as RFC 8460 4.4 names its fields (serialize with JSON.stringify). */
export interface TlsRptReport {
  "organization-name": string;
  "date-range": { "start-datetime": string; "end-datetime": string };
  "contact-info": string;
  "report-id": string;
  policies: {
    policy: {
      "policy-type": TlsRptPolicyCounters["policyType"];
      "policy-string"?: string[];
      "policy-domain": string;
      "mx-host"?: string[];
    };
    summary: { "total-successful-session-count": number; "total-failure-session-count": number };
    "failure-details"?: Record<string, string | number>[];
  }[];
}

/** RFC 3339 date-time in UTC, whole seconds: "2016-04-01T00:00:00Z". */
const dateTime = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/**
 * The aggregate report of section 4: one entry per policy with its
 * summary (the failure count is the sum of its failure details) and, when
 * there were failures, their details; absent optional fields are left out.
 */
export function tlsRptReport(input: TlsRptReportInput): TlsRptReport {
  return {
    "organization-name": input.organizationName,
    "date-range": { "start-datetime": dateTime(input.start), "end-datetime": dateTime(input.end) },
    "contact-info": input.contactInfo,
    "report-id": input.reportId,
    policies: input.policies.map((p) => {
      const policy: TlsRptReport["policies"][number]["policy"] = {
        "policy-type": p.policyType,
        "policy-domain": p.policyDomain,
      };
      if (p.policyString) policy["policy-string"] = p.policyString;
      if (p.mxHost) policy["mx-host"] = p.mxHost;
      const entry: TlsRptReport["policies"][number] = {
        policy,
        summary: {
          "total-successful-session-count": p.successfulSessionCount,
          "total-failure-session-count": p.failures.reduce((n, f) => n + f.failedSessionCount, 0),
        },
      };
      if (p.failures.length) entry["failure-details"] = p.failures.map(failureDetails);
      return entry;
    }),
  };
}

function failureDetails(f: TlsRptFailure): Record<string, string | number> {
  const d: Record<string, string | number | undefined> = {
    "result-type": f.resultType,
    "sending-mta-ip": f.sendingMtaIp,
    "receiving-mx-hostname": f.receivingMxHostname,
    "receiving-mx-helo": f.receivingMxHelo,
    "receiving-ip": f.receivingIp,
    "failed-session-count": f.failedSessionCount,
    "additional-information": f.additionalInformation,
    "failure-reason-code": f.failureReasonCode,
  };
  return Object.fromEntries(Object.entries(d).filter(([, v]) => v !== undefined)) as Record<
    string,
    string | number
  >;
}
