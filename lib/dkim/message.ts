/**
 * A message as DKIM sees it: the header fields, then the body bytes after
 * the empty line that ends the header section, from chunks cut anywhere.
 * lib/mime's HeaderSplitter does the splitting (a line that is neither a
 * header field nor a continuation also ends the header section, and
 * starts the body); this adds the removal of the empty line and a bound
 * on the header section's size.
 *
 * Pure: no I/O.
 *
 * @module
 */
import { type HeaderField, HeaderSplitter } from "../mime/mod.ts";

const EMPTY = new Uint8Array(0);

/** Splits a message into header fields and body bytes as chunks arrive. */
export class MessageReader {
  readonly #splitter: HeaderSplitter;
  #fields: HeaderField[] | undefined;
  #truncated = false;

  /**
   * A reader for one message.
   * @param maxHeaderBytes the largest header section kept; beyond it {@link truncated} is set
   */
  constructor(maxHeaderBytes: number = Number.MAX_SAFE_INTEGER) {
    this.#splitter = new HeaderSplitter({
      maxBytes: maxHeaderBytes,
      maxSectionBytes: maxHeaderBytes,
    });
  }

  /**
   * Feeds a chunk; returns the body bytes in it, or undefined while the
   * header section is still being read.
   */
  push(chunk: Uint8Array): Uint8Array | undefined {
    if (this.#fields) return chunk;
    const r = this.#splitter.push(chunk);
    if (!r.done) return undefined;
    return this.#start(r.headers!, r.rest!, r.truncated!);
  }

  /** Ends the input; returns the body bytes not yet returned (a message without a body separator has none left). */
  end(): Uint8Array {
    if (this.#fields) return EMPTY;
    const r = this.#splitter.end();
    return this.#start(r.headers, r.rest, r.truncated);
  }

  /** The header fields, top first, once the header section has ended. */
  get fields(): HeaderField[] | undefined {
    return this.#fields;
  }

  /** True when the header section was larger than the bound (fields are missing or cut). */
  get truncated(): boolean {
    return this.#truncated;
  }

  #start(fields: HeaderField[], rest: Uint8Array, truncated: boolean): Uint8Array {
    this.#fields = fields;
    this.#truncated = truncated;
    if (rest[0] === 0x0a) return rest.subarray(1);
    if (rest[0] === 0x0d && rest[1] === 0x0a) return rest.subarray(2);
    return rest;
  }
}
