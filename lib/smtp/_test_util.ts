/**
 * Test helpers for the SMTP codec tests: byte/latin1 string conversion
 * (every byte value maps to one char, so test vectors can hold 8-bit bytes)
 * and cutting a buffer into chunks at given offsets.
 */

import { concat } from "../bytes/mod.ts";

/** One byte per char code (0-255). */
export function latin1(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0xff;
  return b;
}

/** Inverse of {@link latin1}. */
export function unlatin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

/** Concatenates byte arrays (always a new array). */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  return concat([...parts, new Uint8Array(0)]);
}

/** Splits `b` at the given offsets (clamped, any order; empty chunks are kept on purpose). */
export function chunksAt(b: Uint8Array, offsets: number[]): Uint8Array[] {
  const cuts = offsets.map((o) => Math.min(o, b.length)).sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of cuts) {
    out.push(b.slice(prev, c));
    prev = c;
  }
  out.push(b.slice(prev));
  return out;
}
