/**
 * Canonicalization (RFC 6376 section 3.4): the "simple" and "relaxed"
 * forms of header fields, and a streaming body hasher that canonicalizes
 * and hashes a body fed in chunks cut anywhere.
 *
 * Header fields are handled as binary strings (one character per byte,
 * latin1), so 8-bit bytes pass through unchanged. A bare LF counts as a
 * line end (CRLF) everywhere; a CR not followed by LF is an ordinary byte.
 *
 * Body rules (section 3.4.3 and 3.4.4, with errata 1384): both forms drop
 * the empty lines at the end of the body and end a non-empty body with
 * CRLF; "relaxed" also removes whitespace at line ends and makes every
 * other run of SP and HTAB one SP (a line of only whitespace becomes an
 * empty line). An empty body is one CRLF in "simple" and nothing in
 * "relaxed".
 *
 * Pure: no I/O.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, type Hash } from "node:crypto";
import { trimWhitespace } from "./tags.ts";

/** A canonicalization algorithm. */
export type Canonicalization = "simple" | "relaxed";

/** The header and body canonicalizations of a c= tag. */
export interface CanonicalizationPair {
  /** For the header fields. */
  header: Canonicalization;
  /** For the body. */
  body: Canonicalization;
}

/**
 * Reads a c= value ("relaxed/simple"; one word is the header's, the body's
 * being "simple"); undefined when it names something else.
 */
export function parseCanonicalization(value: string): CanonicalizationPair | undefined {
  const m = /^(simple|relaxed)(?:\/(simple|relaxed))?$/i.exec(value);
  if (!m) return undefined;
  const word = (s: string | undefined) => (s?.toLowerCase() ?? "simple") as Canonicalization;
  return { header: word(m[1]), body: word(m[2]) };
}

/** Bytes as a binary string (one character per byte). */
export function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/** A binary string as its bytes. */
export function latin1Bytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "latin1"));
}

/** ASCII lowercase (header names and tag values are ASCII; 8-bit bytes stay). */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/**
 * The "simple" form of a header field (name, colon, value, folding, as a
 * binary string): unchanged, but for line ends made CRLF and a final CRLF.
 */
export function simpleHeader(field: string): string {
  const s = field.replace(/\r?\n/g, "\r\n");
  return s.endsWith("\r\n") ? s : `${s}\r\n`;
}

/**
 * The "relaxed" form of a header field: name lowercased, unfolded, each
 * run of whitespace one SP, none around the colon or at the end; CRLF.
 */
export function relaxedHeader(field: string): string {
  const colon = field.indexOf(":");
  const name = asciiLower(trimWhitespace(field.slice(0, colon)));
  const value = field.slice(colon + 1).replace(/\r?\n/g, "").replace(/[ \t]+/g, " ")
    .replace(/^ | $/g, "");
  return `${name}:${value}\r\n`;
}

/** {@link simpleHeader} or {@link relaxedHeader}. */
export function canonicalizeHeader(field: string, canon: Canonicalization): string {
  return canon === "relaxed" ? relaxedHeader(field) : simpleHeader(field);
}

/** The hash algorithms DKIM signatures may use (RFC 8301: SHA-256 only). */
export type HashAlgorithm = "sha256";

/** Options for {@link BodyHasher}. */
export interface BodyHasherOptions {
  /** The hash algorithm. @default "sha256" */
  hash?: HashAlgorithm;
  /** Hash only the first `limit` bytes of the canonical body (an l= tag). */
  limit?: number;
}

/** What {@link BodyHasher.digest} returns. */
export interface BodyDigest {
  /** The hash of the canonical body (of its first `limit` bytes when a limit was given). */
  hash: Uint8Array;
  /** The length of the whole canonical body, in bytes. */
  length: number;
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;

/**
 * Canonicalizes and hashes a message body fed in chunks (the bytes after
 * the empty line that ends the header section), holding only a small
 * buffer: whitespace and empty lines are counted, not stored, until
 * something follows them.
 */
export class BodyHasher {
  readonly #relaxed: boolean;
  readonly #limit: number;
  readonly #hash: Hash;
  readonly #buf = new Uint8Array(16384);
  #bufLen = 0;
  /** Canonical bytes flushed so far. */
  #length = 0;
  /** Empty lines seen and not yet written: written only when content follows. */
  #emptyLines = 0;
  /** The current line has content written. */
  #inLine = false;
  /** relaxed: whitespace seen since the last content byte of the line. */
  #space = false;
  /** The last byte fed was a CR (its meaning depends on the next). */
  #cr = false;
  #done = false;

  /** A hasher for a body in canonicalization `canon`. */
  constructor(canon: Canonicalization, opts: BodyHasherOptions = {}) {
    this.#relaxed = canon === "relaxed";
    this.#limit = opts.limit ?? Infinity;
    this.#hash = createHash(opts.hash ?? "sha256");
  }

  /** Feeds the next bytes of the body. */
  update(chunk: Uint8Array): void {
    if (this.#done) throw new Error("BodyHasher: update() after digest()");
    const relaxed = this.#relaxed;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (this.#cr) {
        this.#cr = false;
        if (c === LF) {
          this.#endLine();
          continue;
        }
        this.#content(CR);
      }
      if (c === CR) this.#cr = true;
      else if (c === LF) this.#endLine();
      else if (relaxed && (c === SP || c === HT)) this.#space = true;
      else this.#content(c);
    }
  }

  /** Ends the body: the hash and the canonical length. Call once. */
  digest(): BodyDigest {
    if (this.#done) throw new Error("BodyHasher: digest() called twice");
    if (this.#cr) this.#content(CR);
    if (this.#inLine) this.#endLine();
    if (!this.#relaxed && this.#length + this.#bufLen === 0) {
      this.#put(CR);
      this.#put(LF);
    }
    this.#flush();
    this.#done = true;
    return { hash: new Uint8Array(this.#hash.digest()), length: this.#length };
  }

  #content(c: number): void {
    if (!this.#inLine) {
      for (; this.#emptyLines > 0; this.#emptyLines--) {
        this.#put(CR);
        this.#put(LF);
      }
      this.#inLine = true;
    }
    if (this.#space) {
      this.#space = false;
      this.#put(SP);
    }
    this.#put(c);
  }

  #endLine(): void {
    this.#space = false;
    if (!this.#inLine) {
      this.#emptyLines++;
      return;
    }
    this.#inLine = false;
    this.#put(CR);
    this.#put(LF);
  }

  #put(c: number): void {
    this.#buf[this.#bufLen++] = c;
    if (this.#bufLen === this.#buf.length) this.#flush();
  }

  #flush(): void {
    const take = Math.min(this.#bufLen, Math.max(0, this.#limit - this.#length));
    if (take > 0) this.#hash.update(this.#buf.subarray(0, take));
    this.#length += this.#bufLen;
    this.#bufLen = 0;
  }
}
