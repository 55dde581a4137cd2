/**
 * BDAT (RFC 3030 CHUNKING) on the server side: parsing the `BDAT <size>
 * [LAST]` argument and decoding chunk content the way Postfix stores it.
 *
 * Chunk content is not dot-stuffed and has no terminator: the size says
 * where it ends. Postfix keeps message content as lines, so a bare LF ends
 * a line like CRLF does (it becomes CRLF here, and is counted so that
 * `smtpd_forbid_bare_newline = reject` can refuse the message), a CR not
 * followed by LF is data, and a last line without a line end gets CRLF at
 * LAST. {@link BdatDecoder.bytesOut} is Postfix's byte count in the
 * "250 2.0.0 Ok: N bytes" replies.
 *
 * Pure: no I/O. Reading exactly `size` bytes from the client is the
 * session's (daemons/smtpd/bdat.ts).
 *
 * @module
 */

/** A parsed BDAT argument. */
export interface BdatArgs {
  /** Chunk size in bytes. */
  size: number;
  /** This is the last chunk of the message. */
  last: boolean;
}

/** Largest chunk size Postfix accepts (its off_t), as text for an exact comparison. */
const MAX_SIZE = 9223372036854775807n;

/**
 * Parses `<size> [LAST]` (LAST in any case); null when malformed: no size,
 * a size that is not all digits or is too large, or any other word.
 * A size above 2^53 parses (it is larger than any message limit) as
 * Number.MAX_SAFE_INTEGER.
 */
export function parseBdatArgs(arg: string): BdatArgs | null {
  const words = arg.split(/[ \t]+/).filter((w) => w !== "");
  if (words.length < 1 || words.length > 2) return null;
  if (!/^\d+$/.test(words[0])) return null;
  const big = BigInt(words[0]);
  if (big > MAX_SIZE) return null;
  if (words.length === 2 && words[1].toUpperCase() !== "LAST") return null;
  const size = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
  return { size, last: words.length === 2 };
}

const CRLF = new Uint8Array([13, 10]);
const CR = new Uint8Array([13]);

/** Decodes the chunks of one message; one per message. */
export class BdatDecoder {
  /** The last byte seen was CR (a CR at the end of a chunk may start a CRLF in the next). */
  #lastCr = false;
  /** The content so far ends in a line end (true before any content). */
  #atLineStart = true;
  #bareLf = 0;
  #bytesOut = 0;

  /** Number of lines that ended in a bare LF. */
  get bareLfCount(): number {
    return this.#bareLf;
  }

  /** Bytes of decoded content so far (CRLF line ends). */
  get bytesOut(): number {
    return this.#bytesOut;
  }

  /** Decodes part of a chunk. Output may be views of `bytes`. */
  push(bytes: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let seg = 0;
    let from = 0;
    for (;;) {
      const lf = bytes.indexOf(10, from);
      if (lf < 0) break;
      const crlf = lf > 0 ? bytes[lf - 1] === 13 : this.#lastCr;
      if (!crlf) {
        if (lf > seg) out.push(bytes.subarray(seg, lf));
        out.push(CR);
        seg = lf;
        this.#bareLf++;
      }
      from = lf + 1;
    }
    if (bytes.length > seg) out.push(bytes.subarray(seg));
    if (bytes.length > 0) {
      this.#lastCr = bytes[bytes.length - 1] === 13;
      this.#atLineStart = bytes[bytes.length - 1] === 10;
    }
    for (const b of out) this.#bytesOut += b.length;
    return out;
  }

  /** At LAST: the line end a last unterminated line gets, or nothing. */
  finish(): Uint8Array[] {
    if (this.#atLineStart) return [];
    this.#atLineStart = true;
    this.#lastCr = false;
    this.#bytesOut += 2;
    return [CRLF];
  }
}
