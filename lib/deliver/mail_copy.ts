/**
 * Postfix's mail_copy(): what pipe(8) writes on a command's standard
 * input and virtual(8) appends to an mbox file (flags F > D R B): the
 * envelope lines its flags ask for, then the message with each line ended
 * by the eol= string.
 *
 * - F: `From SENDER  DATE` (two spaces, asctime form, the null sender as
 *   MAILER-DAEMON), as a live Postfix 3.7 writes it.
 * - R: `Return-Path: <SENDER>`.
 * - O: `X-Original-To: ORIGINAL-RECIPIENT`.
 * - D: `Delivered-To: RECIPIENT` (its case kept, as Postfix 3.7 writes it).
 * - `.`: a line starting with "." gets another "."; `>`: a line starting
 *   with "From " gets ">" (both on every line, headers included).
 * - B: a blank line after the message.
 *
 * Addresses are quoted as header fields are (control characters become
 * "?", so no address adds a line). Pure: bytes in, bytes out.
 */
import { headerAddress } from "../address/mod.ts";

const encoder = new TextEncoder();
const DOT = 0x2e;
const FROM_ = encoder.encode("From ");
/** A line longer than this is passed on in pieces; only its first piece is a line start. */
const MAX_LINE = 64 * 1024;

/** What {@link envelopeLines} needs. */
export interface CopyEnvelope {
  /** Envelope sender with null_sender applied ("" stays MAILER-DAEMON in From_). */
  sender: string;
  /** The first recipient (D), and its original address (O). */
  recipient: string;
  original: string;
  flags: Set<string>;
  eol: string;
  /** For the From_ line. */
  now: Date;
}

/** The lines the flags put before the message. */
export function envelopeLines(e: CopyEnvelope): Uint8Array {
  let out = "";
  if (e.flags.has("F")) {
    out += `From ${e.sender === "" ? "MAILER-DAEMON" : headerAddress(e.sender)}  ${
      asctime(e.now)
    }${e.eol}`;
  }
  if (e.flags.has("R")) out += `Return-Path: <${headerAddress(e.sender)}>${e.eol}`;
  if (e.flags.has("O")) out += `X-Original-To: ${headerAddress(e.original)}${e.eol}`;
  if (e.flags.has("D")) out += `Delivered-To: ${headerAddress(e.recipient)}${e.eol}`;
  return encoder.encode(out);
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** C's asctime() without its newline, in local time: `Wed Dec  2 06:07:17 2026`. */
export function asctime(d: Date): string {
  const p2 = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ` +
    `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`;
}

/**
 * Turns the queued message (CRLF lines) into the command's input, line by
 * line, with the `.`, `>` and B flags and the eol= string.
 */
export class LineCopier {
  readonly #eol: Uint8Array;
  readonly #dot: boolean;
  readonly #from: boolean;
  readonly #blank: boolean;
  #carry: Uint8Array = new Uint8Array(0);
  /** The carry is the rest of a line already partly passed on. */
  #continued = false;

  constructor(opts: { flags: Set<string>; eol: string }) {
    this.#eol = encoder.encode(opts.eol);
    this.#dot = opts.flags.has(".");
    this.#from = opts.flags.has(">");
    this.#blank = opts.flags.has("B");
  }

  /** The output for the next chunk of content. */
  push(chunk: Uint8Array): Uint8Array[] {
    const buf = this.#carry.length ? join([this.#carry, chunk]) : chunk;
    const out: Uint8Array[] = [];
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl < 0) break;
      const end = nl > start && buf[nl - 1] === 0x0d ? nl - 1 : nl;
      this.#line(buf.subarray(start, end), out);
      out.push(this.#eol);
      this.#continued = false;
      start = nl + 1;
    }
    let rest = buf.subarray(start);
    if (rest.length > MAX_LINE) {
      // Keep a trailing CR: it may start the CRLF of the next chunk.
      const keep = rest[rest.length - 1] === 0x0d ? 1 : 0;
      this.#line(rest.subarray(0, rest.length - keep), out);
      this.#continued = true;
      rest = rest.subarray(rest.length - keep);
    }
    this.#carry = rest.slice();
    return out;
  }

  /** The output after the last chunk: an unterminated last line, then B's blank line. */
  end(): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.#carry.length) {
      this.#line(this.#carry, out);
      out.push(this.#eol);
    }
    this.#carry = new Uint8Array(0);
    if (this.#blank) out.push(this.#eol);
    return out;
  }

  #line(line: Uint8Array, out: Uint8Array[]): void {
    if (!this.#continued) {
      if (this.#dot && line[0] === DOT) out.push(new Uint8Array([DOT]));
      if (this.#from && startsWith(line, FROM_)) out.push(new Uint8Array([0x3e]));
    }
    out.push(line);
  }
}

function startsWith(a: Uint8Array, prefix: Uint8Array): boolean {
  if (a.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

function join(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
