/**
 * Message header section handling, pure and byte-exact: split canonical
 * (CRLF) message content into header fields and the body, incrementally as
 * chunks arrive; look up, format and fold header fields; RFC 5322 dates in
 * Postfix's style; RFC 3461 xtext.
 *
 * The splitter follows Postfix's cleanup: the header section ends at the
 * first empty line, or at the first line that is neither a header field nor a
 * continuation (that line is body); a field longer than `header_size_limit`
 * is cut to it (the excess is discarded) and the fields after it are still
 * header fields. It does not parse MIME structure, decode RFC 2047 words or
 * interpret field contents.
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
  /** Largest header field kept, in bytes (Postfix `header_size_limit`); the excess is discarded. */
  maxBytes: number;
  /** Record size: longer lines count in pieces of this size (`line_length_limit`). @default 2048 */
  lineBytes?: number;
  /**
   * Memory guard: once the fields kept reach this many bytes, the next
   * field starts the body (Postfix has no such limit; give message_size_limit,
   * over which the message is refused anyway). @default Infinity
   */
  maxSectionBytes?: number;
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
  /** When done: true if a field exceeded `maxBytes` (or the section `maxSectionBytes`). */
  truncated?: boolean;
}

/** What {@link HeaderSplitter.end} reports. */
export interface HeaderSplitEnd {
  headers: HeaderField[];
  /** Bytes after the header section not yet returned by push(). */
  rest: Uint8Array;
  /** True if a field exceeded `maxBytes` (or the section `maxSectionBytes`). */
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
 * anywhere, with Postfix's header_size_limit per field (cleanup's
 * mime_state and cleanup_out_header): a field's lines are collected in
 * records of `lineBytes` (line_length_limit: smtpd and sendmail cut longer
 * lines into such records) while the field holds fewer than `maxBytes`
 * bytes (its lines joined by one newline, without CR); the rest of the
 * field is discarded. The field is then cut back to `maxBytes`: at the last
 * line boundary when that keeps over 90 % of the limit, else within a line
 * (its line ends in CRLF). A field within the limit keeps its bytes
 * exactly. There is no limit on the number of fields, as in Postfix; only
 * `maxSectionBytes` (a memory guard) ends the header section early, making
 * the rest body. Header fields are copied; `rest` may share memory with
 * the chunk just pushed. A label must fit in the first record of its line
 * (Postfix's is_header sees only that record).
 */
export class HeaderSplitter {
  readonly #maxBytes: number;
  readonly #lineBytes: number;
  readonly #maxSectionBytes: number;
  readonly #headers: HeaderField[] = [];
  /** Bytes of fields finished so far. */
  #sectionBytes = 0;
  /** The start of a line not yet classified (copies). */
  #head: Uint8Array[] = [];
  #headLen = 0;
  /** The line being read, once classified as part of a field. */
  #line: LineState | null = null;
  /** The lines of the field being collected. */
  #field: FieldLine[] = [];
  /** Postfix's header buffer length for the field being collected. */
  #fieldLen = 0;
  #done = false;
  #truncated = false;

  constructor(opts: HeaderSplitterOptions) {
    this.#maxBytes = opts.maxBytes;
    this.#lineBytes = Math.max(1, opts.lineBytes ?? 2048);
    this.#maxSectionBytes = opts.maxSectionBytes ?? Infinity;
  }

  /**
   * Feeds the next chunk. Returns `done: false` until the end of the header
   * section is seen. After that, every chunk is returned unchanged as `rest`.
   */
  push(chunk: Uint8Array): HeaderSplitResult {
    if (this.#done) return this.#result(chunk);
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#line) {
        pos = this.#feedLine(chunk, pos);
        continue;
      }
      // At the start of a line: collect up to one record, or the whole line.
      const lf = chunk.indexOf(LF, pos);
      const want = this.#lineBytes + 1 - this.#headLen; // one more: a CR may end the record
      const end = lf >= 0 && lf - pos < want ? lf + 1 : Math.min(chunk.length, pos + want);
      const piece = chunk.subarray(pos, end);
      const complete = piece.length > 0 && piece[piece.length - 1] === LF;
      const start = this.#head.length ? concat([...this.#head, piece]) : piece;
      if (
        !complete && this.#headLen + piece.length <= this.#lineBytes &&
        classify(start, false) !== "other"
      ) {
        this.#head.push(piece.slice());
        this.#headLen += piece.length;
        return { done: false };
      }
      const probe = complete ? start : start.subarray(0, this.#lineBytes);
      let kind = classify(probe, complete);
      if (kind === "unknown") kind = "other"; // no colon within the first record
      if (kind === "continuation" && this.#field.length === 0) kind = "other";
      if (kind === "header" && this.#sectionBytes + this.#fieldBytes() > this.#maxSectionBytes) {
        this.#truncated = true;
        kind = "other";
      }
      if (kind === "blank" || kind === "other") {
        this.#finishField();
        this.#done = true;
        const rest = this.#head.length ? concat([start, chunk.subarray(end)]) : chunk.subarray(pos);
        this.#head = [];
        this.#headLen = 0;
        return this.#result(rest);
      }
      if (kind === "header") this.#finishField();
      this.#startLine();
      this.#head = [];
      this.#headLen = 0;
      this.#feedLine(start, 0);
      pos = end;
    }
    return { done: false };
  }

  /** Ends the input: a final line without a line end is still classified. */
  end(): HeaderSplitEnd {
    if (this.#done) return { headers: this.#headers, rest: EMPTY, truncated: this.#truncated };
    let rest: Uint8Array = EMPTY;
    if (this.#line) this.#endLine(EMPTY);
    else if (this.#headLen) {
      const start = concat(this.#head);
      this.#head = [];
      this.#headLen = 0;
      const kind = classify(start, true);
      if (kind === "header" || (kind === "continuation" && this.#field.length)) {
        if (kind === "header") this.#finishField();
        this.#startLine();
        this.#feedLine(start, 0);
        this.#endLine(EMPTY);
      } else rest = start;
    }
    this.#finishField();
    this.#done = true;
    return { headers: this.#headers, rest, truncated: this.#truncated };
  }

  /** A field line begins: how much of it Postfix keeps (whole records while under the limit). */
  #startLine(): void {
    let keep = 0;
    if (this.#field.length === 0 || this.#fieldLen < this.#maxBytes) {
      if (this.#field.length) this.#fieldLen += 1; // the newline joining it to the field
      const records = Math.max(1, Math.ceil((this.#maxBytes - this.#fieldLen) / this.#lineBytes));
      keep = records * this.#lineBytes;
    }
    this.#line = { keep, kept: [], keptLen: 0, seen: 0, lastCr: false };
  }

  /** Consumes the line's bytes from `pos`; returns where the line ended (or the chunk did). */
  #feedLine(chunk: Uint8Array, pos: number): number {
    const line = this.#line!;
    const lf = chunk.indexOf(LF, pos);
    const end = lf < 0 ? chunk.length : lf;
    const bytes = chunk.subarray(pos, end);
    // Keep one byte past `keep`: it may be the CR of the line end.
    const room = line.keep + 1 - line.keptLen;
    if (room > 0 && bytes.length) {
      const take = bytes.subarray(0, room).slice();
      line.kept.push(take);
      line.keptLen += take.length;
    }
    if (bytes.length) {
      line.seen += bytes.length;
      line.lastCr = bytes[bytes.length - 1] === CR;
    }
    if (lf < 0) return chunk.length;
    this.#endLine(line.lastCr ? CRLF : LF_ONLY);
    return lf + 1;
  }

  /** The line ended with `eol` (empty at the end of input). */
  #endLine(eol: Uint8Array): void {
    const line = this.#line!;
    this.#line = null;
    const contentLen = line.seen - (eol === CRLF ? 1 : 0);
    if (line.keep === 0) {
      this.#truncated = true; // past the limit: the whole line is discarded
      return;
    }
    const kept = concat(line.kept);
    if (contentLen <= line.keep) {
      this.#field.push({ content: kept.subarray(0, contentLen), eol });
      this.#fieldLen += contentLen;
    } else {
      this.#truncated = true;
      this.#field.push({ content: kept.subarray(0, line.keep), eol: CRLF });
      this.#fieldLen += line.keep;
    }
  }

  /** Bytes held for the field being collected. */
  #fieldBytes(): number {
    return this.#field.reduce((n, l) => n + l.content.length + l.eol.length, 0);
  }

  /** Postfix's cleanup_out_header cut, then the field. */
  #finishField(): void {
    if (!this.#field.length) return;
    const out: Uint8Array[] = [];
    const limit = this.#maxBytes;
    let off = 0;
    for (const l of this.#field) {
      if (off + l.content.length > limit) {
        this.#truncated = true;
        if (off > 0.9 * limit && out.length) break; // the nice cut, at a line boundary
        let cut = limit - off;
        if (out.length === 0) cut = Math.max(cut, l.content.indexOf(COLON) + 1); // keep the label
        out.push(l.content.subarray(0, cut), CRLF);
        break;
      }
      out.push(l.content, l.eol);
      off += l.content.length + 1;
    }
    const field = makeField(out);
    this.#headers.push(field);
    this.#sectionBytes += field.raw.length;
    this.#field = [];
    this.#fieldLen = 0;
  }

  #result(rest: Uint8Array): HeaderSplitResult {
    return { done: true, headers: this.#headers, rest, truncated: this.#truncated };
  }
}

/** One line of a field being collected: what is kept of it and its line end. */
interface FieldLine {
  content: Uint8Array;
  eol: Uint8Array;
}

/** The field line being read. */
interface LineState {
  /** Content bytes Postfix keeps of this line (0: the line is discarded). */
  keep: number;
  kept: Uint8Array[];
  keptLen: number;
  /** Bytes of the line seen so far (line end excluded, a final CR included). */
  seen: number;
  /** The last byte seen was a CR. */
  lastCr: boolean;
}

const CRLF = new Uint8Array([CR, LF]);
const LF_ONLY = new Uint8Array([LF]);

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
