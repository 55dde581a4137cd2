/**
 * Server side of the SMTP command channel: splitting the byte stream into
 * command lines (CRLF or bare LF, with Postfix's `line_length_limit`
 * behaviour for over-long lines), parsing a line into verb and argument,
 * and formatting replies.
 *
 * Pure: no sockets. {@link LineReader.readLine} takes a stream reader the
 * caller owns. Message content (DATA) is not read here: hand the buffered
 * bytes to a DataDecoder with {@link LineReader.takeBuffered}.
 */

/** One command line as sent by the client. */
export interface SmtpCommand {
  /** The first word, uppercased ("MAIL"); "" for an empty line. */
  verb: string;
  /** The rest of the line, leading spaces and trailing CR/LF removed ("FROM:<a@b>"). */
  arg: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * Splits a command line into verb and argument. Never throws.
 *
 * Bytes are decoded as UTF-8; an invalid sequence becomes U+FFFD, which the
 * address parser rejects, so 8-bit junk cannot pass as a valid address.
 */
export function parseCommand(line: Uint8Array | string): SmtpCommand {
  const s = typeof line === "string" ? line : utf8.decode(line);
  let end = s.length;
  while (end > 0) {
    const c = s.charCodeAt(end - 1);
    if (c !== 13 && c !== 10) break;
    end--;
  }
  let i = 0;
  while (i < end && isBlank(s.charCodeAt(i))) i++;
  const verbStart = i;
  while (i < end && !isBlank(s.charCodeAt(i))) i++;
  const verb = s.slice(verbStart, i).toUpperCase();
  while (i < end && isBlank(s.charCodeAt(i))) i++;
  return { verb, arg: s.slice(i, end) };
}

/** Space, TAB, VT and FF separate the verb from its argument, as in Postfix's smtpd_token. */
function isBlank(c: number): boolean {
  return c === 32 || c === 9 || c === 11 || c === 12;
}

/**
 * Formats a reply: `formatReply(250, "2.1.0", "Ok")` -> `"250 2.1.0 Ok\r\n"`.
 * An array (or a string with newlines) gives a multiline reply with the
 * enhanced code repeated on each line, as Postfix does:
 * `"250-2.0.0 a\r\n250 2.0.0 b\r\n"`. CR and LF never leak into a line;
 * other control characters (a quoted address may hold TAB, ESC, DEL)
 * become spaces, as in Postfix's replies.
 */
export function formatReply(
  code: number,
  enhanced: string | null,
  lines: string | string[],
): string {
  const list = (typeof lines === "string" ? [lines] : lines).flatMap((l) =>
    // deno-lint-ignore no-control-regex
    l.split(/\r\n|\r|\n/).map((p) => p.replace(/[\x00-\x1f\x7f]/g, " "))
  );
  if (list.length === 0) list.push("");
  let out = "";
  for (let i = 0; i < list.length; i++) {
    const sep = i === list.length - 1 ? " " : "-";
    const body = enhanced ? (list[i] === "" ? enhanced : `${enhanced} ${list[i]}`) : list[i];
    out += body === "" ? `${code}${sep === "-" ? "-" : ""}\r\n` : `${code}${sep}${body}\r\n`;
  }
  return out;
}

/** A line from {@link LineReader}, without its line end. */
export interface Line {
  /** The line's bytes; for an over-long line, only the first `maxLineLength` bytes. */
  line: Uint8Array;
  /** The line ended in a bare LF rather than CRLF. */
  bareLf: boolean;
  /** The line exceeded `maxLineLength`; the rest of it was discarded. */
  tooLong: boolean;
}

/** Options for {@link LineReader}. */
export interface LineReaderOptions {
  /** Longest line kept, without its line end (Postfix `line_length_limit`). @default 2048 */
  maxLineLength?: number;
}

const EMPTY = new Uint8Array(0);

/**
 * Incremental line splitter. Lines end at LF; a CR just before it is part of
 * the line end. A line longer than `maxLineLength` is reported once, at its
 * end, with `tooLong` set and only its head kept, so a client cannot make
 * the server buffer without bound.
 *
 * Chunks given to {@link push} are kept by reference until consumed: do not
 * reuse their memory.
 */
export class LineReader {
  #max: number;
  #buf: Uint8Array = EMPTY;
  #pos = 0;
  /** Where the LF search resumes in #buf (bytes before it hold no LF). */
  #scan = 0;
  /** Head of an over-long line while its tail is being discarded. */
  #skipHead: Uint8Array | null = null;
  #skipLastCr = false;
  /** An over-long line completed by the last push, delivered before buffered lines. */
  #pendingLong: Line | null = null;

  constructor(opts: LineReaderOptions = {}) {
    this.#max = opts.maxLineLength ?? 2048;
  }

  /**
   * Sets the longest line from now on and returns the previous limit
   * (smtpd reads AUTH responses up to smtpd_sasl_response_limit).
   */
  setMaxLineLength(max: number): number {
    const old = this.#max;
    this.#max = max;
    return old;
  }

  /** Adds bytes received from the peer. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.#skipHead) {
      const lf = chunk.indexOf(10);
      if (lf < 0) {
        this.#skipLastCr = chunk[chunk.length - 1] === 13;
        return;
      }
      this.#skipLastCr = lf > 0 ? chunk[lf - 1] === 13 : this.#skipLastCr;
      this.#pendingLong = { line: this.#skipHead, bareLf: !this.#skipLastCr, tooLong: true };
      this.#skipHead = null;
      chunk = chunk.subarray(lf + 1);
      if (chunk.length === 0) return;
    }
    const rest = this.#buf.length - this.#pos;
    if (rest === 0) {
      this.#buf = chunk;
      this.#pos = 0;
      this.#scan = 0;
    } else {
      const merged = new Uint8Array(rest + chunk.length);
      merged.set(this.#buf.subarray(this.#pos));
      merged.set(chunk, rest);
      this.#scan -= this.#pos;
      this.#buf = merged;
      this.#pos = 0;
    }
  }

  /** The next complete line, or null if more bytes are needed. */
  next(): Line | null {
    if (this.#pendingLong) {
      const l = this.#pendingLong;
      this.#pendingLong = null;
      return l;
    }
    const buf = this.#buf;
    const start = this.#pos;
    const lf = buf.indexOf(10, Math.max(this.#scan, start));
    if (lf < 0) {
      this.#scan = buf.length;
      // Start discarding once the line is surely too long (the last byte may be the CR of CRLF).
      if (buf.length - start > this.#max + 1) {
        this.#skipHead = buf.slice(start, start + this.#max);
        this.#skipLastCr = buf[buf.length - 1] === 13;
        this.#buf = EMPTY;
        this.#pos = 0;
        this.#scan = 0;
      }
      return null;
    }
    this.#pos = lf + 1;
    this.#scan = lf + 1;
    const crlf = lf > start && buf[lf - 1] === 13;
    const end = crlf ? lf - 1 : lf;
    if (end - start > this.#max) {
      return { line: buf.subarray(start, start + this.#max), bareLf: !crlf, tooLong: true };
    }
    return { line: buf.subarray(start, end), bareLf: !crlf, tooLong: false };
  }

  /** Number of bytes received but not yet returned as lines. */
  get buffered(): number {
    return this.#buf.length - this.#pos;
  }

  /**
   * A copy of up to `max` bytes received but not yet returned as lines (a
   * pending over-long line counts as input too), without consuming them:
   * smtpd's check for commands sent ahead of a reply.
   */
  pending(max: number): Uint8Array {
    const rest = this.#buf.subarray(this.#pos, this.#pos + max).slice();
    if (rest.length > 0 || !(this.#pendingLong || this.#skipHead)) return rest;
    return (this.#pendingLong?.line ?? this.#skipHead!).slice(0, max);
  }

  /**
   * Removes and returns the bytes not yet returned as lines: after DATA they
   * are message content; after STARTTLS they must be discarded (plaintext
   * command injection). A partly discarded over-long line is dropped.
   */
  takeBuffered(): Uint8Array {
    const rest = this.#buf.subarray(this.#pos);
    this.#buf = EMPTY;
    this.#pos = 0;
    this.#scan = 0;
    this.#skipHead = null;
    this.#pendingLong = null;
    return rest;
  }

  /**
   * Reads from `reader` until a line is complete. Returns null at end of
   * stream; an unterminated last line is never returned as a command.
   */
  async readLine(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<Line | null> {
    for (;;) {
      const line = this.next();
      if (line) return line;
      const { value, done } = await reader.read();
      if (done) return null;
      this.push(value);
    }
  }
}
