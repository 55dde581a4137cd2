/**
 * Builds RFC 3464 delivery status notifications the way Postfix's bounce(8)
 * daemon writes them: a multipart/report with the built-in failure, delay or
 * success template text and one "<addr>: reason" paragraph per recipient, a
 * message/delivery-status part with Postfix's fields (X-<mail_name>-Queue-ID,
 * X-<mail_name>-Sender, Diagnostic-Code X-<mail_name> when there is no SMTP
 * diagnostic, Will-Retry-Until in delay notices), and the original headers
 * (text/rfc822-headers) or the original message (message/rfc822, RET=FULL).
 *
 * Pure: the caller reads the queue file, picks the recipients to report,
 * caps the original body (bounce_size_limit) and submits the result through
 * cleanup. The template (header values and text) is the built-in one or
 * the caller's, from bounce_template_file (template.ts). VERP is not
 * supported yet.
 */

import { headerAddress, quoteAddress } from "../address/mod.ts";
import { concat } from "../bytes/mod.ts";
import { rfc2822Date } from "../mime/mod.ts";
import { builtinTemplates, expandTemplateText } from "./template.ts";

/** One recipient reported in a notification. */
export interface DsnRecipient {
  /** The recipient address (Final-Recipient). */
  address: string;
  /**
   * The original recipient (see {@link splitOrcpt}): an ORCPT value with
   * its type (`rfc822;user@example.com`, xtext-decoded), written as is, or
   * a plain internal-form address (the recipient before alias expansion),
   * written quoted as `rfc822; addr`. Control characters are masked.
   */
  originalRecipient?: string;
  /** RFC 3464 action. A failure notice always says `failed`, as Postfix does. */
  action:
    | "failed"
    | "delayed"
    | "delivered"
    | "relayed"
    | "expanded"
    | "deliverable"
    | "undeliverable";
  /** Enhanced status code, `5.1.1`. */
  status: string;
  /** Diagnostic with its type, `smtp; 550 5.1.1 user unknown`. */
  diagnostic?: string;
  /** The remote MTA: `dns; mx.example.com`, or a host name (type `dns` is added). */
  remoteMta?: string;
  /** Human-readable reason, shown in the text part and used as an X-<mail_name> diagnostic. */
  reason: string;
}

/** Everything {@link buildDsn} needs. */
export interface DsnInput {
  /** "verify": an address verification report (sendmail -bv). */
  kind: "failure" | "delay" | "success" | "verify";
  /** `myhostname`: Reporting-MTA, boundary, template text. */
  reportingMta: string;
  /** `mail_name`, used in the X-<mail_name>-* fields (Postfix: `Postfix`). */
  mailName: string;
  /** Queue id of the original message. */
  queueId: string;
  arrivalDate: Date;
  /** ENVID of the original message (already xtext-decoded). */
  envId?: string;
  /** Envelope sender of the original message; empty for the null sender. */
  originalSender: string;
  /** Where the notification goes (To:). */
  recipient: string;
  /** Address of the notification sender, `MAILER-DAEMON@myhostname`. */
  from: string;
  recipients: DsnRecipient[];
  /** The original header section, CRLF lines (a final empty line is ignored). */
  originalHeaders: Uint8Array;
  /** The original body, CRLF lines, already capped by the caller. */
  originalBody?: Uint8Array;
  /** RET=FULL: return the whole message when `originalBody` is given. */
  returnFull: boolean;
  /** Date header of the notification. */
  date: Date;
  /** Message-Id of the notification, with or without angle brackets. */
  messageId: string;
  /** MIME boundary. @default `${queueId}.${unix time of date}/${reportingMta}` */
  boundary?: string;
  /**
   * A postmaster copy (notify_classes, double bounces): postmaster subject,
   * `Auto-Submitted: auto-generated`, no template text, headers only.
   * @default false
   */
  postmasterCopy?: boolean;
  /** Queue id of the notification itself; when set, a Postfix-style Received: header is written. */
  dsnQueueId?: string;
  /** `delay_warning_time` in seconds, quoted in delay notices. @default 14400 (4h) */
  delayWarningTime?: number;
  /** `maximal_queue_lifetime` in seconds (delay text, Will-Retry-Until). @default 432000 (5d) */
  maximalQueueLifetime?: number;
  /** Header values and text from bounce_template_file. @default the built-in template, expanded */
  template?: DsnTemplate;
  /** Time zone of the dates written, minutes east of UTC. @default 0 */
  tzOffsetMinutes?: number;
}

/** Thrown when the input cannot make a valid notification. */
export class DsnError extends Error {
  override readonly name = "DsnError";
}

/** A template ready to write: header values and the expanded text (template.ts). */
export interface DsnTemplate {
  charset: string;
  /** From: value; an address without a domain gets the domain of `from`. */
  from: string;
  subject: string;
  postmasterSubject?: string;
  /** Expanded text lines. */
  text: string[];
}

/** The built-in template of a kind, expanded with what the input says. */
function builtinTemplate(input: DsnInput): DsnTemplate {
  const t = builtinTemplates()[input.kind];
  const text = expandTemplateText(
    t,
    (name) => (name === "myhostname" ? input.reportingMta : undefined),
    {
      delay_warning_time: input.delayWarningTime ?? 14400,
      maximal_queue_lifetime: input.maximalQueueLifetime ?? 432000,
    },
  );
  return { ...t, text };
}

/**
 * The From: value with its address qualified: `Mail Delivery System
 * <MAILER-DAEMON>` becomes `... <MAILER-DAEMON@host>`, as Postfix's cleanup
 * qualifies a locally submitted header address.
 */
function qualifiedFrom(value: string, from: string): string {
  const at = from.lastIndexOf("@");
  if (at < 0) return value;
  const domain = from.slice(at + 1);
  const angle = /<([^<>@]*)>/.exec(value);
  if (angle) {
    return angle[1] === "" ? value : value.replace(angle[0], `<${angle[1]}@${domain}>`);
  }
  return value.replace(/^([^\s@<>()",;:]+)(?=\s|$)/, `$1@${domain}`);
}

/** Postfix's line_wrap(): greedy at white space, continuation lines indented. */
const WRAP_WIDTH = 79;
const WRAP_INDENT = 4;
/** Hard limit for a line that has no white space to wrap at (RFC 5322: 998). */
const HARD_WIDTH = 990;

function wrap(text: string): string[] {
  const out: string[] = [];
  let indent = 0;
  let rest = text;
  while (rest.length > WRAP_WIDTH - indent) {
    const room = WRAP_WIDTH - indent;
    // Break at the last white space that keeps the line within room; with
    // none, at the first white space after it (a long word stays whole).
    let cut = -1;
    for (let i = 1; i < rest.length; i++) {
      if ((rest[i] === " " || rest[i] === "\t") && rest[i - 1] !== " " && rest[i - 1] !== "\t") {
        if (i <= room || cut < 0) cut = i;
        if (i > room) break;
      }
    }
    if (cut < 0 || cut > HARD_WIDTH - indent) cut = Math.min(rest.length, HARD_WIDTH - indent);
    if (cut >= rest.length) break;
    out.push(" ".repeat(indent) + rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).replace(/^[ \t]+/, "");
    indent = WRAP_INDENT;
  }
  if (rest.length || out.length === 0) out.push(" ".repeat(indent) + rest);
  return out;
}

/** Like Postfix's printable(): control characters and non-ASCII become "?". */
function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, "?");
}

/** Masks control characters only: free text that may be UTF-8 (SMTPUTF8). */
function maskControls(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/[\x00-\x1f\x7f]/g, "?");
}

// deno-lint-ignore no-control-regex
const isAscii = (s: string) => /^[\x00-\x7f]*$/.test(s);

/** Postfix translit()s mail_name so that it is an RFC 822 atom. */
function atom(name: string): string {
  return name.replace(/[ \t\r\n()<>@,;:\\".[\]]/g, "-");
}

function addressType(address: string): string {
  return isAscii(address) ? "rfc822" : "utf-8";
}

/**
 * Splits an original recipient as the queue file holds it (Postfix's
 * dsn_orcpt, xtext-decoded): `rfc822;user@example.com` is an ORCPT with
 * its RFC 3461 addr-type (an atom) and the address as the client gave it
 * (external form); anything else is a plain internal-form address, for
 * which null is returned.
 */
export function splitOrcpt(orcpt: string): { type: string; address: string } | null {
  const semi = orcpt.indexOf(";");
  if (semi <= 0) return null;
  const type = orcpt.slice(0, semi).trim();
  if (!/^[A-Za-z0-9-]+$/.test(type)) return null;
  return { type, address: orcpt.slice(semi + 1).trim() };
}

/** Original-Recipient value: an ORCPT with its type as is, else a typed, quoted address. */
function originalRecipientField(orig: string): string {
  if (splitOrcpt(orig)) return maskControls(orig);
  return `${addressType(orig)}; ${headerAddress(orig)}`;
}

/** The address of an originalRecipient value, in external form, for the text part. */
function originalAddress(orig: string): string {
  const o = splitOrcpt(orig);
  return o ? maskControls(o.address) : headerAddress(orig);
}

/** Splits CRLF (or stray bare LF) lines; `trim` drops final empty lines. */
function splitLines(bytes: Uint8Array, trim: boolean): Uint8Array[] {
  const lines: Uint8Array[] = [];
  let start = 0;
  while (start < bytes.length) {
    let lf = bytes.indexOf(0x0a, start);
    if (lf < 0) lf = bytes.length;
    const end = lf > start && bytes[lf - 1] === 0x0d ? lf - 1 : lf;
    lines.push(bytes.subarray(start, end));
    start = lf + 1;
  }
  while (trim && lines.length && lines[lines.length - 1].length === 0) lines.pop();
  return lines;
}

function includesBytes(lines: Uint8Array[], needle: Uint8Array): boolean {
  for (const line of lines) {
    for (let i = line.indexOf(needle[0]); i >= 0; i = line.indexOf(needle[0], i + 1)) {
      if (i + needle.length > line.length) break;
      let j = 1;
      while (j < needle.length && line[i + j] === needle[j]) j++;
      if (j === needle.length) return true;
    }
  }
  return false;
}

function hasEightBit(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b >= 0x80) return true;
  return false;
}

/**
 * Builds a complete notification message: CRLF line ends, every line
 * shorter than 998 characters except lines copied from the original message.
 * @throws {DsnError} when there is no recipient to report.
 */
export function buildDsn(input: DsnInput): Uint8Array {
  if (input.recipients.length === 0) throw new DsnError("no recipients to report");
  const tz = input.tzOffsetMinutes ?? 0;
  const mailName = atom(input.mailName);
  const pmCopy = input.postmasterCopy ?? false;
  const full = input.returnFull && input.originalBody !== undefined && !pmCopy;
  const template = input.template ?? builtinTemplate(input);

  const enc = new TextEncoder();
  // The original is copied byte for byte (only line ends are made CRLF).
  const original = [
    enc.encode(`Return-Path: <${headerAddress(input.originalSender)}>`),
    ...splitLines(input.originalHeaders, true),
    ...(full ? [new Uint8Array(0), ...splitLines(input.originalBody!, false)] : []),
  ];

  const addresses = [
    input.originalSender,
    input.recipient,
    ...input.recipients.flatMap((r) => [r.address, r.originalRecipient ?? ""]),
  ];
  const utf8Addresses = !addresses.every(isAscii);
  const eightBit = utf8Addresses || hasEightBit(input.originalHeaders) ||
    (full && hasEightBit(input.originalBody!));

  let boundary = input.boundary ??
    `${input.queueId}.${Math.floor(input.date.getTime() / 1000)}/${input.reportingMta}`;
  for (let n = 1; includesBytes(original, enc.encode(`--${boundary}`)); n++) {
    boundary = `${boundary}.${n}`;
  }

  const lines: string[] = [];
  const put = (...l: string[]) => lines.push(...l);
  const date = rfc2822Date(input.date, tz);

  // Message header: post_mail() writes Received: and Date:, bounce the rest,
  // cleanup appends Message-Id.
  if (input.dsnQueueId) {
    put(`Received: by ${input.reportingMta} (${printable(input.mailName)})`);
    put(`\tid ${input.dsnQueueId}; ${date}`);
  }
  put(`Date: ${date}`);
  put(`From: ${qualifiedFrom(template.from, headerAddress(input.from))}`);
  put(
    `Subject: ${
      pmCopy && template.postmasterSubject ? template.postmasterSubject : template.subject
    }`,
  );
  put(`To: ${headerAddress(input.recipient)}`);
  put(`Auto-Submitted: ${pmCopy ? "auto-generated" : "auto-replied"}`);
  put("MIME-Version: 1.0");
  put("Content-Type: multipart/report; report-type=delivery-status;");
  put(`\tboundary="${boundary}"`);
  put(`Content-Transfer-Encoding: ${eightBit ? "8bit" : "7bit"}`);
  put(`Message-Id: <${input.messageId.replace(/^<|>$/g, "")}>`);
  put("", "This is a MIME-encapsulated message.");

  // Part 1: human-readable.
  put("", `--${boundary}`, "Content-Description: Notification");
  const eightBitText = !pmCopy && !template.text.every(isAscii);
  put(`Content-Type: text/plain; charset=${eightBit ? "utf-8" : template.charset}`);
  if (eightBit || eightBitText) put("Content-Transfer-Encoding: 8bit");
  put("");
  if (!pmCopy) put(...template.text);
  for (const r of input.recipients) {
    const orig = r.originalRecipient ? originalAddress(r.originalRecipient) : "";
    const address = headerAddress(r.address);
    const lower = orig.toLowerCase();
    const who = orig && lower !== address.toLowerCase() && lower !== r.address.toLowerCase()
      ? `<${address}> (expanded from <${orig}>)`
      : `<${address}>`;
    put("", ...wrap(`${who}: ${printable(r.reason)}`));
  }

  // Part 2: machine-readable.
  put("", `--${boundary}`, "Content-Description: Delivery report");
  put(`Content-Type: message/${utf8Addresses ? "global-" : ""}delivery-status`);
  if (utf8Addresses) put("Content-Transfer-Encoding: 8bit");
  put("", `Reporting-MTA: dns; ${input.reportingMta}`);
  if (input.envId) put(...wrap(`Original-Envelope-Id: ${printable(input.envId)}`));
  put(`X-${mailName}-Queue-ID: ${input.queueId}`);
  const sender = input.originalSender || "MAILER-DAEMON";
  put(...wrap(`X-${mailName}-Sender: ${addressType(sender)}; ${headerAddress(sender)}`));
  put(`Arrival-Date: ${rfc2822Date(input.arrivalDate, tz)}`);
  for (const r of input.recipients) {
    if (!/^[245]\.\d{1,3}\.\d{1,3}$/.test(r.status)) {
      throw new DsnError(
        `bad status "${r.status}" for <${quoteAddress(r.address)}>: want class.subject.detail`,
      );
    }
    put("", ...wrap(`Final-Recipient: ${addressType(r.address)}; ${headerAddress(r.address)}`));
    if (r.originalRecipient) {
      put(...wrap(`Original-Recipient: ${originalRecipientField(r.originalRecipient)}`));
    }
    put(`Action: ${input.kind === "failure" ? "failed" : r.action}`);
    put(`Status: ${r.status}`);
    if (r.remoteMta) {
      const mta = r.remoteMta.includes(";") ? r.remoteMta : `dns; ${r.remoteMta}`;
      put(...wrap(`Remote-MTA: ${printable(mta)}`));
    }
    put(...wrap(
      r.diagnostic
        ? `Diagnostic-Code: ${printable(r.diagnostic)}`
        : `Diagnostic-Code: X-${mailName}; ${printable(r.reason)}`,
    ));
    if (input.kind === "delay") {
      const until = input.arrivalDate.getTime() + (input.maximalQueueLifetime ?? 432000) * 1000;
      put(`Will-Retry-Until: ${rfc2822Date(new Date(until), tz)}`);
    }
  }

  // Part 3: the original message or its headers.
  const undelivered = input.kind === "success" || input.kind === "verify" ? "" : "Undelivered ";
  put("", `--${boundary}`);
  put(`Content-Description: ${undelivered}${full ? "Message" : "Message Headers"}`);
  const type = utf8Addresses
    ? (full ? "message/global" : "message/global-headers")
    : (full ? "message/rfc822" : "text/rfc822-headers");
  put(`Content-Type: ${type}`);
  if (eightBit) put("Content-Transfer-Encoding: 8bit");
  put("");

  // Assemble: generated text is UTF-8, the original is copied as bytes.
  const CRLF = Uint8Array.of(0x0d, 0x0a);
  const parts: Uint8Array[] = [enc.encode(lines.join("\r\n") + "\r\n")];
  for (const line of original) parts.push(line, CRLF);
  parts.push(enc.encode(`\r\n--${boundary}--\r\n`));
  return concat(parts);
}
