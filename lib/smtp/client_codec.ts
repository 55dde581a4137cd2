/**
 * Client side of the SMTP wire format: parsing server replies (multiline,
 * split across reads), reading EHLO keywords, dot-stuffing message content
 * for DATA, and turning canonical CRLF content into LF for Maildir files.
 *
 * Pure: no sockets. The client state machine (what to send when) lives with
 * the smtp/lmtp delivery agents.
 */

import { LineReader } from "./command.ts";

/** A complete server reply. */
export interface Reply {
  /** Reply code of the last line (Postfix uses the last line too). */
  code: number;
  /** RFC 3463 code from the first line when its class agrees with `code`, else null. */
  enhanced: string | null;
  /** Text after "250-" / "250 " on each line, minus the enhanced code where it leads the line. */
  lines: string[];
  /** `lines` joined with " ". */
  text: string;
}

/** The server broke the protocol: malformed reply, reply too large. */
export class SmtpProtocolError extends Error {
  override readonly name = "SmtpProtocolError";
}

/** Options for {@link ReplyParser}. */
export interface ReplyParserOptions {
  /** Longer reply lines are truncated (Postfix `line_length_limit`). @default 2048 */
  maxLineLength?: number;
  /** A multiline reply with more lines is a protocol error. @default 1000 */
  maxLines?: number;
}

const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const ENHANCED_PREFIX = /^([245]\.[0-9]{1,3}\.[0-9]{1,3})(?: |$)/;

/** Incremental reply parser: feed bytes as they arrive, get complete replies. */
export class ReplyParser {
  readonly #reader: LineReader;
  readonly #maxLines: number;
  #raw: string[] = [];
  #error: SmtpProtocolError | null = null;

  constructor(opts: ReplyParserOptions = {}) {
    this.#reader = new LineReader({ maxLineLength: opts.maxLineLength ?? 2048 });
    this.#maxLines = opts.maxLines ?? 1000;
  }

  /** True while part of a reply has been received. */
  get pending(): boolean {
    return this.#raw.length > 0 || this.#reader.buffered > 0;
  }

  /**
   * Adds bytes from the server; returns the replies they complete, in order.
   * Throws {@link SmtpProtocolError} on a malformed line; replies completed
   * before it in the same chunk are returned first and the error is thrown
   * by the next push (push an empty chunk to flush it). After an error,
   * every push throws: the stream cannot be resynchronized.
   */
  push(chunk: Uint8Array): Reply[] {
    if (this.#error) throw this.#error;
    this.#reader.push(chunk);
    const replies: Reply[] = [];
    for (let l = this.#reader.next(); l; l = this.#reader.next()) {
      const line = utf8.decode(l.line);
      const sep = line.length > 3 ? line.charCodeAt(3) : 32;
      if (!/^[2-5][0-9][0-9]/.test(line) || (sep !== 32 && sep !== 45)) {
        this.#error = new SmtpProtocolError(
          `malformed SMTP reply line: ${JSON.stringify(line.slice(0, 80))}`,
        );
      } else if (sep === 45 && this.#raw.length + 1 >= this.#maxLines) {
        this.#error = new SmtpProtocolError(`SMTP reply longer than ${this.#maxLines} lines`);
      }
      if (this.#error) {
        if (replies.length === 0) throw this.#error;
        return replies;
      }
      this.#raw.push(line);
      if (sep === 45) continue;
      replies.push(buildReply(this.#raw));
      this.#raw = [];
    }
    return replies;
  }
}

function buildReply(raw: string[]): Reply {
  const code = Number(raw[raw.length - 1].slice(0, 3));
  let lines = raw.map((l) => l.slice(4));
  const m = ENHANCED_PREFIX.exec(lines[0]);
  let enhanced: string | null = null;
  if (m && m[1].charCodeAt(0) - 48 === Math.floor(code / 100)) {
    enhanced = m[1];
    const strip = enhanced + " ";
    lines = lines.map((l) => l === enhanced ? "" : l.startsWith(strip) ? l.slice(strip.length) : l);
  }
  return { code, enhanced, lines, text: lines.join(" ") };
}

/**
 * EHLO keywords from a 250 reply, skipping the greeting line: keyword
 * uppercased, parameters as sent ("SIZE 1000" -> SIZE => "1000",
 * "PIPELINING" -> ""). A repeated keyword's parameters are appended.
 */
export function parseEhloKeywords(reply: Reply): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of reply.lines.slice(1)) {
    const t = line.trim();
    if (t === "") continue;
    const sp = t.search(/[ \t]/);
    const key = (sp < 0 ? t : t.slice(0, sp)).toUpperCase();
    const value = sp < 0 ? "" : t.slice(sp + 1).trim();
    const prev = out.get(key);
    out.set(key, prev ? (value ? `${prev} ${value}` : prev) : value);
  }
  return out;
}

const DOT = 46;
const LF = 10;
const CR = 13;
const EMPTY = new Uint8Array(0);
const TERMINATOR = new TextEncoder().encode(".\r\n");
const CRLF_TERMINATOR = new TextEncoder().encode("\r\n.\r\n");

/**
 * Dot-stuffs content for DATA: a "." at the start of a line gets a second
 * "." (RFC 5321 4.5.2). Any LF starts a line here, bare or not, so content
 * with a stray bare LF cannot end DATA early at a lenient receiver.
 * A chunk that needs no stuffing is returned as is.
 */
export class DotStuffer {
  #lineStart = true;
  #last = -1;
  #prev = -1;

  /** Stuffs the next piece of content. */
  push(chunk: Uint8Array): Uint8Array {
    const n = chunk.length;
    if (n === 0) return chunk;
    let first = -1;
    let count = 0;
    for (let i = chunk.indexOf(DOT); i >= 0; i = chunk.indexOf(DOT, i + 1)) {
      if (i === 0 ? this.#lineStart : chunk[i - 1] === LF) {
        if (count++ === 0) first = i;
      }
    }
    this.#prev = n > 1 ? chunk[n - 2] : this.#last;
    this.#last = chunk[n - 1];
    const wasLineStart = this.#lineStart;
    this.#lineStart = this.#last === LF;
    if (count === 0) return chunk;
    const out = new Uint8Array(n + count);
    out.set(chunk.subarray(0, first));
    let o = first;
    let seg = first;
    for (let i = first; i >= 0; i = chunk.indexOf(DOT, i + 1)) {
      if (i === 0 ? wasLineStart : chunk[i - 1] === LF) {
        out.set(chunk.subarray(seg, i), o);
        o += i - seg;
        out[o++] = DOT;
        seg = i;
      }
    }
    out.set(chunk.subarray(seg), o);
    return out;
  }

  /** The end of DATA: CRLF if the content did not end with one, then ".\r\n". */
  end(): Uint8Array {
    if (this.#last === -1 || (this.#last === LF && this.#prev === CR)) return TERMINATOR.slice();
    return CRLF_TERMINATOR.slice();
  }
}

/**
 * Converts canonical CRLF content to LF line ends (Maildir, pipe to
 * commands). A CR not followed by LF is kept. A chunk without CR is
 * returned as is.
 */
export class CrlfToLf {
  #heldCr = false;

  /** Converts the next piece of content. */
  push(chunk: Uint8Array): Uint8Array {
    const n = chunk.length;
    if (n === 0) return chunk;
    let cr = chunk.indexOf(CR);
    if (cr < 0 && !this.#heldCr) return chunk;
    const out = new Uint8Array(n + 1);
    let o = 0;
    if (this.#heldCr) {
      this.#heldCr = false;
      if (chunk[0] !== LF) out[o++] = CR;
    }
    let seg = 0;
    while (cr >= 0) {
      if (cr === n - 1) {
        out.set(chunk.subarray(seg, cr), o);
        o += cr - seg;
        seg = n;
        this.#heldCr = true;
        break;
      }
      if (chunk[cr + 1] === LF) {
        out.set(chunk.subarray(seg, cr), o);
        o += cr - seg;
        seg = cr + 1;
      }
      cr = chunk.indexOf(CR, cr + 1);
    }
    out.set(chunk.subarray(seg), o);
    o += n - seg;
    return out.subarray(0, o);
  }

  /** Flushes a CR held back at the end of the last chunk. */
  end(): Uint8Array {
    if (!this.#heldCr) return EMPTY;
    this.#heldCr = false;
    return new Uint8Array([CR]);
  }
}
