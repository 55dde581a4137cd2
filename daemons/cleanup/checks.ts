/**
 * header_checks, mime_header_checks, nested_header_checks and body_checks
 * as Postfix's cleanup applies them (cleanup_act in cleanup_message.c): a
 * logical header (continuation lines joined with "\n", no final line end)
 * or a body line is the key of one lookup in the pattern tables; the value
 * is an action.
 *
 * Actions: REJECT [text] (550 5.7.1, or the code the text starts with; a
 * 4.x.x code defers), WARN, INFO, DUNNO/OK, IGNORE, STRIP, PREPEND text,
 * REPLACE text, DISCARD, HOLD, REDIRECT user@domain, BCC user@domain, PASS.
 * REJECT, DISCARD, REDIRECT and PASS end inspection of the message. Each
 * action is logged as Postfix does:
 *
 *   ID: reject: header Subject: hi from host[1.2.3.4]; from=<a@x> to=<b@y> proto=ESMTP helo=<h>: 5.7.1 text
 *
 * FILTER transport:destination replaces the message's content filter (the
 * last one wins; cleanup records it in the queue file and qmgr routes
 * every recipient there).
 *
 * It does no I/O beyond table lookups and logging; what the actions mean
 * for the queue file (hold/, no file, other recipients) is cleanup.ts's.
 *
 * @module
 */
import type { Rejection } from "../../lib/outcome/mod.ts";
import { quoteAddress } from "../../lib/address/mod.ts";
import type { Maps } from "../../lib/maps/mod.ts";

/** Which table a header goes to (Postfix's MIME_HDR_PRIMARY, _MULTIPART, _NESTED). */
export type HeaderClass = "primary" | "multipart" | "nested";

/** The tables, opened once per process; an empty Maps is never asked. */
export interface CheckTables {
  header: Maps;
  mime: Maps;
  nested: Maps;
  body: Maps;
}

/** What the log lines of one message name. */
export interface CheckLogContext {
  queueId: string;
  /** `host[addr]` for SMTP, "local" for pickup. */
  origin: string;
  /** Envelope sender, internal form. */
  sender: string;
  /** First envelope recipient, internal form, when known. */
  recipient?: string;
  /** SMTP protocol name (ESMTP, SMTP), when any. */
  proto?: string;
  /** HELO name, when any. */
  helo?: string;
  info: (line: string) => void;
  warn: (line: string) => void;
}

/** What a checked line becomes. */
export interface LineVerdict {
  /** Lines to write before it (PREPEND), without line ends. */
  prepend: string[];
  /** "keep", "drop" (IGNORE, STRIP), or the replacement text (REPLACE). */
  result: "keep" | "drop" | { replace: string };
}

const KEEP: LineVerdict = Object.freeze({ prepend: [], result: "keep" }) as LineVerdict;

/** A DSN status at the start of REJECT text: "5.7.1 text" or "4.2.0 text". */
const DSN_AT_START = /^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)/;

/** True when text has the form of a header field ("Name: value"), as Postfix's is_header. */
function isHeaderText(text: string): boolean {
  return /^[!-9;-~]+[ \t]*:/.test(text);
}

/**
 * The checks of one message: call {@link header} for each logical header
 * and {@link body} for each body line, in order; then read the outcome.
 */
export class MessageChecks {
  /** Set by REJECT: the message is refused with this reply. */
  reject: Rejection | undefined;
  /** DISCARD: the message is accepted and dropped. */
  discard = false;
  /** HOLD: the message goes to the hold queue. */
  hold = false;
  /** REDIRECT: every recipient is replaced by this address. */
  redirect: string | undefined;
  /** BCC: recipients to add (NOTIFY=NEVER). */
  readonly bcc: string[] = [];
  /** FILTER: the content filter (transport:destination) for the message. */
  filter: string | undefined;
  /** False once an action ended inspection (REJECT, DISCARD, REDIRECT, PASS). */
  active = true;

  constructor(readonly tables: CheckTables, readonly log: CheckLogContext) {}

  /** True when any header table is set (the header pass can be skipped otherwise). */
  get anyHeaderTables(): boolean {
    const t = this.tables;
    return !t.header.empty || !t.mime.empty || !t.nested.empty;
  }

  /**
   * Checks one logical header: `Name: value` with folded lines joined by
   * "\n". MIME fields (Content-*, MIME-Version) go to mime_header_checks in
   * every part, as in Postfix.
   *
   * @throws {DictError} when a table cannot answer.
   */
  async header(text: string, cls: HeaderClass, mimeField: boolean): Promise<LineVerdict> {
    if (!this.active) return KEEP;
    const c: HeaderClass = mimeField ? "multipart" : cls;
    const [maps, title] = c === "primary"
      ? [this.tables.header, "header_checks"]
      : c === "multipart"
      ? [this.tables.mime, "mime_header_checks"]
      : [this.tables.nested, "nested_header_checks"];
    if (maps.empty) return KEEP;
    const value = await maps.find(text);
    if (value === undefined) return KEEP;
    return this.#act("header", text, value, title);
  }

  /**
   * Checks one body line (without its line end).
   *
   * @throws {DictError} when a table cannot answer.
   */
  async body(line: string): Promise<LineVerdict> {
    if (!this.active || this.tables.body.empty) return KEEP;
    const value = await this.tables.body.find(line);
    if (value === undefined) return KEEP;
    return this.#act("body", line, value, "body_checks");
  }

  /** Postfix's cleanup_act_log. */
  #logAction(action: string, where: string, content: string, text: string): void {
    const l = this.log;
    let line = `${l.queueId}: ${action}: ${where} ${content.slice(0, 200)} from ${l.origin};`;
    line += ` from=<${quoteAddress(l.sender)}>`;
    if (l.recipient !== undefined) line += ` to=<${quoteAddress(l.recipient)}>`;
    if (l.proto) line += ` proto=${l.proto}`;
    if (l.helo) line += ` helo=<${l.helo}>`;
    if (text) line += `: ${text}`;
    l.info(line);
  }

  #act(where: "header" | "body", content: string, value: string, title: string): LineVerdict {
    const m = /^(\S*)\s*([\s\S]*)$/.exec(value.trim())!;
    const command = m[1].toUpperCase();
    const text = m[2];
    const warn = (msg: string) => this.log.warn(msg);
    switch (command) {
      case "REJECT": {
        let reason = text || "5.7.1 message content rejected";
        const dsn = DSN_AT_START.exec(reason);
        if (!dsn) reason = `5.7.1 ${reason}`;
        else if (dsn[1] === "2") {
          warn(`bad DSN action in ${text} -- need 4.x.x or 5.x.x`);
          reason = "4" + reason.slice(1);
        }
        const status = DSN_AT_START.exec(reason)!;
        this.reject = {
          code: status[1] === "4" ? 451 : 550,
          dsn: status[0].trim(),
          text: reason.slice(status[0].length),
        };
        this.active = false;
        this.#logAction("reject", where, content, reason);
        return KEEP;
      }
      case "WARN":
        this.#logAction("warning", where, content, text);
        return KEEP;
      case "INFO":
        this.#logAction("info", where, content, text);
        return KEEP;
      case "FILTER":
        if (text === "") warn(`missing FILTER command argument in ${title} map`);
        else if (!text.includes(":")) {
          warn(`bad FILTER command ${text} in ${title} -- need transport:destination`);
        } else {
          this.#logAction("filter", where, content, text);
          this.filter = text; // the last one wins, as in Postfix
        }
        return KEEP;
      case "PASS":
        this.#logAction("pass", where, content, text);
        this.active = false;
        return KEEP;
      case "DISCARD":
        this.#logAction("discard", where, content, text);
        this.discard = true;
        this.active = false;
        return KEEP;
      case "HOLD":
        if (!this.hold && !this.discard) {
          this.#logAction("hold", where, content, text);
          this.hold = true;
        }
        return KEEP;
      case "PREPEND":
        if (text === "") warn(`PREPEND action without text in ${title} map`);
        else if (where === "header" && !isHeaderText(text)) {
          warn(
            `bad PREPEND header text "${text}" in ${title} map -- ` +
              `need "headername: headervalue"`,
          );
        } else {
          this.#logAction("prepend", where, content, text);
          return { prepend: [text], result: "keep" };
        }
        return KEEP;
      case "REPLACE":
        if (text === "") warn(`REPLACE action without text in ${title} map`);
        else if (where === "header" && !isHeaderText(text)) {
          warn(
            `bad REPLACE header text "${text}" in ${title} map -- ` +
              `need "headername: headervalue"`,
          );
        } else {
          this.#logAction("replace", where, content, text);
          return { prepend: [], result: { replace: text } };
        }
        return KEEP;
      case "REDIRECT":
        if (!text.includes("@")) {
          warn(`bad REDIRECT target "${text}" in ${title} map -- need user@domain`);
        } else {
          this.redirect = text;
          this.#logAction("redirect", where, content, text);
          this.active = false;
        }
        return KEEP;
      case "BCC":
        if (!text.includes("@")) {
          warn(`bad BCC address "${text}" in ${title} map -- need user@domain`);
        } else {
          this.bcc.push(text);
          this.#logAction("bcc", where, content, text);
        }
        return KEEP;
      case "STRIP":
        this.#logAction("strip", where, content, text);
        return { prepend: [], result: "drop" };
      case "IGNORE":
        return { prepend: [], result: "drop" };
      case "DUNNO":
      case "OK":
        return KEEP;
      default:
        warn(`unknown command in ${title} map: ${value}`);
        return KEEP;
    }
  }
}
