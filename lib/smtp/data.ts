/**
 * Incremental decoder for SMTP DATA content with Postfix 3.9
 * `smtpd_forbid_bare_newline = normalize` semantics:
 *
 * - a line ends at CRLF or at a bare LF; output lines always end in CRLF;
 * - only `<CR><LF>.<CR><LF>` ends DATA: a "." line ended by CRLF whose
 *   preceding line also ended in CRLF (or that is the first line). So
 *   `\n.\r\n` and `\r\n.\n` do not end DATA (no SMTP smuggling);
 * - a line starting with "." loses that dot (a "." line that does not end
 *   DATA becomes an empty line);
 * - a CR not followed by LF is data.
 *
 * With `bareLfEndsData` (Postfix's `smtpd_forbid_bare_newline = no`, and
 * the clients excluded from it) a "." line ended by a bare LF, or one after
 * a line that ended in a bare LF, ends DATA too, as in Postfix before 3.9.
 * `smtpd_forbid_bare_newline = reject` is the caller's: it decodes as
 * normalize and refuses the message when {@link DataDecoder.bareLfCount}
 * is not zero.
 *
 * Lines are never buffered, so there is no line length limit here: bytes
 * flow through as they arrive. Output chunks may be views of the input
 * chunks: do not reuse an input buffer until its output has been consumed.
 * BDAT content is decoded by {@link BdatDecoder} (bdat.ts).
 */

const CR = new Uint8Array([13]);
const EMPTY = new Uint8Array(0);

// Scanner states: where the next byte falls.
/** In the middle of a line. */
const LINE = 0;
/** At the start of a line. */
const LINE_START = 1;
/** After a "." at the start of a line (the dot is dropped). */
const DOT = 2;
/** After ".<CR>" at the start of a line (the CR is held back). */
const DOT_CR = 3;

/** Result of {@link DataDecoder.push}. */
export interface DataChunk {
  /** Decoded content (CRLF lines, dots unstuffed), in order. */
  out: Uint8Array[];
  /** The end-of-data line has been seen. */
  done: boolean;
  /** When done: bytes after the terminator (pipelined commands), possibly empty; else null. */
  rest: Uint8Array | null;
}

/** Options for {@link DataDecoder}. */
export interface DataDecoderOptions {
  /** A bare LF ends a line for the end-of-data test too (`smtpd_forbid_bare_newline = no`). @default false */
  bareLfEndsData?: boolean;
}

/** Streaming DATA decoder; one per message. */
export class DataDecoder {
  readonly #lenient: boolean;
  #at = LINE_START;
  /** The previous line ended in CRLF (true before the first line). */
  #prevCrlf = true;
  /** The last byte seen in the middle of a line was CR. */
  #lastCr = false;
  #done = false;
  #bareLf = 0;
  #bytesOut = 0;

  constructor(opts: DataDecoderOptions = {}) {
    this.#lenient = opts.bareLfEndsData ?? false;
  }

  /** Number of lines that ended in a bare LF (for logging). */
  get bareLfCount(): number {
    return this.#bareLf;
  }

  /** Bytes of decoded content produced so far (the message size). */
  get bytesOut(): number {
    return this.#bytesOut;
  }

  /** True once the terminator has been seen. */
  get done(): boolean {
    return this.#done;
  }

  /** Feeds raw bytes from the client. After done, every byte is returned as rest. */
  push(chunk: Uint8Array): DataChunk {
    if (this.#done) return { out: [], done: true, rest: chunk };
    const out: Uint8Array[] = [];
    const n = chunk.length;
    let seg = 0; // start of the input segment not yet copied to out
    let i = 0;
    let at = this.#at;
    const flush = (end: number) => {
      if (end > seg) out.push(chunk.subarray(seg, end));
    };
    while (i < n) {
      if (at === LINE) {
        const lf = chunk.indexOf(10, i);
        if (lf < 0) {
          this.#lastCr = chunk[n - 1] === 13;
          i = n;
          break;
        }
        const crlf = lf > i ? chunk[lf - 1] === 13 : this.#lastCr;
        if (!crlf) {
          flush(lf);
          out.push(CR);
          seg = lf;
          this.#bareLf++;
        }
        this.#prevCrlf = crlf;
        this.#lastCr = false;
        at = LINE_START;
        i = lf + 1;
      } else if (at === LINE_START) {
        if (chunk[i] === 46) {
          flush(i);
          seg = ++i;
          at = DOT;
        } else {
          at = LINE;
        }
      } else if (at === DOT) {
        const c = chunk[i];
        if (c === 13) {
          flush(i);
          seg = ++i;
          at = DOT_CR;
        } else if (c === 10) {
          flush(i);
          if (this.#lenient) {
            this.#bareLf++;
            this.#done = true;
            this.#at = at;
            return this.#result(out, chunk.subarray(i + 1));
          }
          out.push(CR);
          seg = i++;
          this.#bareLf++;
          this.#prevCrlf = false;
          at = LINE_START;
        } else {
          at = LINE;
        }
      } else {
        // DOT_CR: the held CR is output unless this is the terminator.
        if (chunk[i] === 10 && (this.#prevCrlf || this.#lenient)) {
          flush(i);
          this.#done = true;
          this.#at = at;
          return this.#result(out, chunk.subarray(i + 1));
        }
        flush(i);
        out.push(CR);
        seg = i;
        if (chunk[i] === 10) {
          this.#prevCrlf = true;
          i++;
          at = LINE_START;
        } else {
          this.#lastCr = true;
          at = LINE;
        }
      }
    }
    flush(n);
    this.#at = at;
    return this.#result(out, null);
  }

  #result(out: Uint8Array[], rest: Uint8Array | null): DataChunk {
    let size = 0;
    for (const b of out) size += b.length;
    this.#bytesOut += size;
    // Many small pieces (bare-LF or dot-heavy input) cost more to write than one copy.
    if (out.length > 4) out = [concat(out, size)];
    return { out, done: rest !== null, rest };
  }
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  if (size === 0) return EMPTY;
  const all = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return all;
}
