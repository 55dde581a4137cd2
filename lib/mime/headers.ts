/**
 * Message header section handling, pure and byte-exact: split canonical
 * (CRLF) message content into header fields and the body, incrementally as
 * chunks arrive; look up, format and fold header fields; RFC 5322 dates in
 * Postfix's style; RFC 3461 xtext.
 *
 * The splitter follows Postfix's cleanup: the header section ends at the
 * first empty line, or at the first line that is neither a header field nor a
 * continuation (that line is body), or when it grows past
 * `header_size_limit` (the remaining header lines are then body). It does not
 * parse MIME structure, decode RFC 2047 words or interpret field contents.
 */

import { concat } from "../bytes/mod.ts";

/** One header field of a message. */
export interface HeaderField {
  /** The field name as written (without trailing white space before the colon). */
  name: string;
  /** The value after the colon, unfolded, leading white space trimmed, no line end. */
  value: string;
  /** The exact bytes of the field, folding and final line end included. */
  raw: Uint8Array;
}

/** Options for {@link HeaderSplitter}. */
export interface HeaderSplitterOptions {
  /** Largest header section kept, in bytes (Postfix `header_size_limit`). */
  maxBytes: number;
}

/** What {@link HeaderSplitter.push} reports. */
export interface HeaderSplitResult {
  /** True once the end of the header section is known. */
  done: boolean;
  /** The header fields, when done. */
  headers?: HeaderField[];
  /**
   * When done: the bytes after the header section seen so far, starting with
   * the empty separator line when there is one. Later input is body.
   */
  rest?: Uint8Array;
  /** When done: true if the header section exceeded `maxBytes`. */
  truncated?: boolean;
}

/** What {@link HeaderSplitter.end} reports. */
export interface HeaderSplitEnd {
  headers: HeaderField[];
  /** Bytes after the header section not yet returned by push(). */
  rest: Uint8Array;
  /** True if the header section exceeded `maxBytes`. */
  truncated: boolean;
}

/** Thrown by {@link xtextDecode} on a malformed `+XX` escape. */
export class XtextError extends Error {
  override readonly name = "XtextError";
}

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;
const EMPTY = new Uint8Array(0);

type LineKind = "header" | "continuation" | "blank" | "other" | "unknown";

/**
 * Classifies a line (or, when `complete` is false, the start of one) the way
 * Postfix's is_header() does: a label of printable ASCII other than the
 * colon, optional spaces or tabs, then a colon.
 */
function classify(line: Uint8Array, complete: boolean): LineKind {
  if (line.length === 0) return complete ? "blank" : "unknown";
  const first = line[0];
  if (first === LF) return "blank";
  if (first === CR) {
    if (line.length === 1) return complete ? "blank" : "unknown";
    if (line[1] === LF) return "blank";
  }
  if (first === SP || first === HT) return "continuation";
  let sawSpace = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === COLON) return i > 0 ? "header" : "other";
    if (c === SP || c === HT) {
      sawSpace = true;
      continue;
    }
    if (c < 0x21 || c > 0x7e || sawSpace) return "other";
  }
  return complete ? "other" : "unknown";
}

const utf8 = new TextDecoder("utf-8");

function makeField(lines: Uint8Array[]): HeaderField {
  const raw = concat(lines);
  const colon = raw.indexOf(COLON);
  const name = utf8.decode(raw.subarray(0, colon)).replace(/[ \t]+$/, "");
  const value = utf8.decode(raw.subarray(colon + 1))
    .replace(/\r?\n$/, "")
    .replace(/\r?\n(?=[ \t])/g, "")
    .replace(/^[ \t]+/, "");
  return { name, value, raw };
}

/**
 * Splits message content into header fields and body, fed in chunks cut
 * anywhere. Header fields are copied; `rest` may share memory with the chunk
 * just pushed. Memory stays under twice `maxBytes` plus one chunk.
 */
export class HeaderSplitter {
  readonly #maxBytes: number;
  readonly #headers: HeaderField[] = [];
  /** Lines of the field being collected (it may still get continuation lines). */
  #current: Uint8Array[] = [];
  /** Bytes in finished fields plus #current. */
  #size = 0;
  /** Start of a line not yet complete. */
  #pending: Uint8Array = EMPTY;
  #done = false;
  #truncated = false;

  constructor(opts: HeaderSplitterOptions) {
    this.#maxBytes = opts.maxBytes;
  }

  /**
   * Feeds the next chunk. Returns `done: false` until the end of the header
   * section is seen. After that, every chunk is returned unchanged as `rest`.
   */
  push(chunk: Uint8Array): HeaderSplitResult {
    if (this.#done) return this.#result(chunk);
    const buf = this.#pending.length ? concat([this.#pending, chunk]) : chunk;
    this.#pending = EMPTY;
    let pos = 0;
    while (pos < buf.length) {
      const lf = buf.indexOf(LF, pos);
      if (lf < 0) break;
      const line = buf.subarray(pos, lf + 1);
      const rest = this.#takeLine(line, classify(line, true), buf.subarray(pos));
      if (rest) return this.#result(rest);
      pos = lf + 1;
    }
    if (pos < buf.length) {
      const partial = buf.subarray(pos);
      const kind = classify(partial, false);
      // Decide now when the line is body already, or when it cannot fit and
      // must not be buffered without bound. A line still without its colon
      // may yet turn out to be body, so it gets up to maxBytes of its own
      // before it is counted as a header line that does not fit.
      const tooBig = kind === "unknown"
        ? partial.length > this.#maxBytes
        : this.#size + partial.length > this.#maxBytes;
      if (kind === "other" || tooBig) {
        const rest = this.#takeLine(partial, kind === "unknown" ? "header" : kind, partial);
        if (rest) return this.#result(rest);
      }
      this.#pending = partial.slice();
    }
    return { done: false };
  }

  /** Ends the input: a final line without a line end is still classified. */
  end(): HeaderSplitEnd {
    if (this.#done) return { headers: this.#headers, rest: EMPTY, truncated: this.#truncated };
    const partial = this.#pending;
    this.#pending = EMPTY;
    let rest: Uint8Array = EMPTY;
    if (partial.length) {
      rest = this.#takeLine(partial, classify(partial, true), partial) ?? EMPTY;
    }
    this.#finishField();
    this.#done = true;
    return { headers: this.#headers, rest, truncated: this.#truncated };
  }

  /**
   * Consumes one line. Returns the body bytes (starting at this line, or at
   * the start of an unfinished field when truncating) once the header ends.
   */
  #takeLine(line: Uint8Array, kind: LineKind, fromHere: Uint8Array): Uint8Array | undefined {
    if (kind === "continuation" && this.#current.length === 0) kind = "other";
    if (kind === "blank" || kind === "other" || kind === "unknown") {
      this.#finishField();
      this.#done = true;
      return fromHere;
    }
    if (this.#size + line.length > this.#maxBytes) {
      // Like header_size_limit: what does not fit is body. An unfinished
      // field goes to the body whole, so that headers are never cut mid-field.
      const rest = kind === "continuation" ? concat([...this.#current, fromHere]) : fromHere;
      if (kind === "header") this.#finishField();
      this.#current = [];
      this.#done = true;
      this.#truncated = true;
      return rest;
    }
    if (kind === "header") this.#finishField();
    // A copy: the caller may reuse its chunk buffer for the next read.
    this.#current.push(line.slice());
    this.#size += line.length;
    return undefined;
  }

  #finishField(): void {
    if (this.#current.length) this.#headers.push(makeField(this.#current));
    this.#current = [];
  }

  #result(rest: Uint8Array): HeaderSplitResult {
    return { done: true, headers: this.#headers, rest, truncated: this.#truncated };
  }
}

/** Returns the first field with this name, compared case-insensitively. */
export function findHeader(headers: HeaderField[], name: string): HeaderField | undefined {
  const want = name.toLowerCase();
  return headers.find((h) => h.name.toLowerCase() === want);
}

/** Longest line formatHeader() produces where there is white space to fold at. */
const FOLD_WIDTH = 78;

/**
 * Formats `Name: value` with a CRLF line end, folding before white space so
 * that lines stay within 78 characters where the value allows it. Line ends
 * inside the value are unfolded first, so a value cannot inject fields.
 */
export function formatHeader(name: string, value: string): Uint8Array {
  const flat = value
    .replace(/\r?\n(?=[ \t])/g, "")
    .replace(/[\r\n]+/g, " ")
    .replace(/^[ \t]+/, "");
  // Segments: the white space before a word, then the word. Folding
  // inserts CRLF before a segment, so its white space starts the next line.
  const segments = flat.trimEnd().match(/[ \t]*[^ \t]+/g) ?? [];
  const lines: string[] = [];
  let line = `${name}:`;
  for (const [i, segment] of segments.entries()) {
    if (i === 0) {
      line += ` ${segment}`;
    } else if (line.length + segment.length > FOLD_WIDTH) {
      lines.push(line);
      line = segment;
    } else {
      line += segment;
    }
  }
  lines.push(line);
  return new TextEncoder().encode(lines.join("\r\n") + "\r\n");
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * Formats a date like Postfix's mail_date(): `Mon,  2 Nov 2026 16:28:42
 * +0000 (UTC)`, the day of month padded with a space (strftime `%e`). The
 * `(UTC)` comment is written only for offset 0, since a zone name cannot be
 * derived from an offset.
 * @param tzOffsetMinutes minutes east of UTC. @default 0
 */
export function rfc2822Date(d: Date, tzOffsetMinutes = 0): string {
  const t = new Date(d.getTime() + tzOffsetMinutes * 60_000);
  const two = (n: number) => String(n).padStart(2, "0");
  const abs = Math.abs(tzOffsetMinutes);
  const zone = `${tzOffsetMinutes < 0 ? "-" : "+"}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
  return `${DAYS[t.getUTCDay()]}, ${String(t.getUTCDate()).padStart(2, " ")} ` +
    `${MONTHS[t.getUTCMonth()]} ${t.getUTCFullYear()} ` +
    `${two(t.getUTCHours())}:${two(t.getUTCMinutes())}:${two(t.getUTCSeconds())} ${zone}` +
    (tzOffsetMinutes === 0 ? " (UTC)" : "");
}

/**
 * Decodes RFC 3461 xtext (`+XX` hex escapes; lower-case hex accepted). The
 * decoded bytes are read as UTF-8.
 * @throws {XtextError} on a `+` not followed by two hex digits.
 */
export function xtextDecode(s: string): string {
  if (!s.includes("+")) return s;
  const input = new TextEncoder().encode(s);
  const out = new Uint8Array(input.length);
  let n = 0;
  for (let i = 0; i < input.length; i++) {
    if (input[i] === 0x2b) {
      const hex = String.fromCharCode(input[i + 1] ?? 0, input[i + 2] ?? 0);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) {
        throw new XtextError(`malformed xtext: "+" must be followed by two hex digits in "${s}"`);
      }
      out[n++] = parseInt(hex, 16);
      i += 2;
    } else {
      out[n++] = input[i];
    }
  }
  return utf8.decode(out.subarray(0, n));
}

/**
 * Encodes as RFC 3461 xtext: `!` through `~` except `+` and `=` stay, every
 * other byte of the UTF-8 form becomes `+XX` (upper-case hex).
 */
export function xtextEncode(s: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(s)) {
    out += b >= 0x21 && b <= 0x7e && b !== 0x2b && b !== 0x3d
      ? String.fromCharCode(b)
      : "+" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** The time part of Postfix's Message-Id: YYYYMMDDhhmmss in UTC. */
export function messageIdStamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}
