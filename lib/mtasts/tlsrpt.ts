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
 * {@link tlsRptEvent} checks one event the SMTP client sends the mtasts
 * service (daemons/mtasts/reports.ts keeps the counters and sends the
 * reports); {@link gzipReport}, {@link reportFileName} and
 * {@link reportMessage} make what section 5 sends: the gzipped JSON, by
 * HTTPS POST (5.4) or as a multipart/report message with the "tlsrpt"
 * report type (5.3).
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

/** What the SMTP client tells mtasts about one TLS session under a policy. */
export interface TlsRptEvent {
  /** The policy domain (the next hop's domain). */
  domain: string;
  policyType: "sts" | "tlsa";
  /** sts: the policy's lines; tlsa: the TLSA records as text. */
  policyString: string[];
  /** sts: the policy's mx patterns. */
  mxHost?: string[];
  result: "success" | TlsRptResultType;
  /** The MX host name and the address connected to. */
  mx: string;
  ip: string;
  /** About a failure, free text (at most {@link MAX_REASON} characters). */
  reason?: string;
}

const RESULT_TYPES: ReadonlySet<string> = new Set([
  "success",
  "starttls-not-supported",
  "certificate-host-mismatch",
  "certificate-expired",
  "certificate-not-trusted",
  "validation-failure",
  "tlsa-invalid",
  "dnssec-invalid",
  "dane-required",
  "sts-policy-fetch-error",
  "sts-policy-invalid",
  "sts-webpki-invalid",
]);

/** Longest failure reason kept. */
export const MAX_REASON = 200;
/** Most policy lines (records, mx patterns) kept, and the longest of each. */
const MAX_LINES = 50;
const MAX_LINE = 300;

const NAME =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;
const ADDRESS = /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f:.]{2,45})$/i;
const PRINTABLE = /^[\x20-\x7e]*$/;

function lines(v: unknown): string[] | null {
  return Array.isArray(v) && v.length <= MAX_LINES &&
      v.every((l) => typeof l === "string" && l.length <= MAX_LINE && PRINTABLE.test(l))
    ? v as string[]
    : null;
}

/**
 * An event as a message from a client says it, or null when any field is
 * missing, of the wrong type or out of bounds: names lower case, printable
 * text only (what is stored goes into reports other systems parse).
 */
export function tlsRptEvent(v: unknown): TlsRptEvent | null {
  if (typeof v !== "object" || v === null) return null;
  const e = v as Record<string, unknown>;
  const str = (x: unknown): x is string => typeof x === "string";
  if (!str(e.domain) || !NAME.test(e.domain)) return null;
  if (e.policyType !== "sts" && e.policyType !== "tlsa") return null;
  const policyString = lines(e.policyString);
  if (!policyString) return null;
  const mxHost = e.mxHost === undefined ? undefined : lines(e.mxHost);
  if (mxHost === null) return null;
  if (!str(e.result) || !RESULT_TYPES.has(e.result)) return null;
  if (!str(e.mx) || !NAME.test(e.mx) || !str(e.ip) || !ADDRESS.test(e.ip)) return null;
  if (e.reason !== undefined && (!str(e.reason) || !PRINTABLE.test(e.reason))) return null;
  return {
    domain: e.domain,
    policyType: e.policyType,
    policyString,
    ...(mxHost ? { mxHost } : {}),
    result: e.result as TlsRptEvent["result"],
    mx: e.mx,
    ip: e.ip,
    ...(e.reason ? { reason: (e.reason as string).slice(0, MAX_REASON) } : {}),
  };
}

/** The report, serialized and gzipped (section 5.2: application/tlsrpt+gzip). */
export async function gzipReport(report: TlsRptReport): Promise<Uint8Array> {
  const json = new Blob([JSON.stringify(report)]).stream();
  return new Uint8Array(
    await new Response(json.pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
  );
}

/** Section 5.1's file name: "submitter!policy-domain!begin!end.json.gz" (Unix seconds). */
export function reportFileName(submitter: string, domain: string, start: Date, end: Date): string {
  const t = (d: Date) => Math.floor(d.getTime() / 1000);
  return `${submitter}!${domain}!${t(start)}!${t(end)}.json.gz`;
}

/**
 * The address of a "mailto:" rua URI (RFC 6068): the part before any "?",
 * percent-decoded; null when that is not one plain address.
 */
export function mailtoAddress(uri: string): string | null {
  const m = /^mailto:([^?]*)/i.exec(uri);
  if (!m) return null;
  let addr: string;
  try {
    addr = decodeURIComponent(m[1]);
  } catch {
    return null;
  }
  const at = addr.lastIndexOf("@");
  const local = addr.slice(0, at);
  return at > 0 && /^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/i.test(addr.slice(at + 1)) &&
      /^[\x21-\x7e]+$/.test(local) && !/[<>()\[\],;:\\"@]/.test(local)
    ? addr
    : null;
}

/** What {@link reportMessage} writes. */
export interface ReportMessageInput {
  from: string;
  to: string;
  /** The reporting organization's domain (TLS-Report-Submitter). */
  submitter: string;
  /** The policy domain (TLS-Report-Domain). */
  domain: string;
  reportId: string;
  start: Date;
  end: Date;
  /** The gzipped report. */
  gz: Uint8Array;
  /** The Date: field, RFC 5322 form. */
  date: string;
  messageId: string;
}

/**
 * Section 5.3's message: multipart/report with report-type "tlsrpt", a
 * short text part and the gzipped report as a base64 attachment with the
 * 5.1 file name; TLS-Report-Domain, TLS-Report-Submitter and the Subject
 * the section suggests. CRLF line ends.
 */
export function reportMessage(m: ReportMessageInput): string {
  const boundary = `tlsrpt-${m.reportId.replace(/[^A-Za-z0-9]/g, "").slice(0, 40)}`;
  const b64 = base64(m.gz).replace(/.{76}/g, "$&\r\n").replace(/\r\n$/, "");
  return [
    `From: <${m.from}>`,
    `To: <${m.to}>`,
    `Date: ${m.date}`,
    `Message-ID: <${m.messageId}>`,
    `Subject: Report Domain: ${m.domain} Submitter: ${m.submitter} Report-ID: <${m.reportId}>`,
    `TLS-Report-Domain: ${m.domain}`,
    `TLS-Report-Submitter: ${m.submitter}`,
    "MIME-Version: 1.0",
    `Content-Type: multipart/report; report-type="tlsrpt"; boundary="${boundary}"`,
    "",
    `--${boundary}`,
    "Content-Type: text/plain; charset=us-ascii",
    "",
    `This is an aggregate TLS report (RFC 8460) from ${m.submitter} for ${m.domain},`,
    `${m.start.toISOString()} to ${m.end.toISOString()}.`,
    "",
    `--${boundary}`,
    "Content-Type: application/tlsrpt+gzip",
    "Content-Transfer-Encoding: base64",
    `Content-Disposition: attachment; filename="${
      reportFileName(m.submitter, m.domain, m.start, m.end)
    }"`,
    "",
    b64,
    `--${boundary}--`,
    "",
  ].join("\r\n");
}

function base64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}
