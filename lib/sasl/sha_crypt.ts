/**
 * SHA-crypt ($5$ SHA256-CRYPT and $6$ SHA512-CRYPT), written from Ulrich
 * Drepper's published specification "Unix crypt using SHA-256 and
 * SHA-512" on node:crypto's SHA-2: what `openssl passwd -5/-6`, glibc's
 * crypt(3) and `doveadm pw -s SHA512-CRYPT` produce. Verification compares
 * in constant time.
 *
 * Pure (no I/O). Does not produce new hashes for storage beyond what
 * {@link shaCrypt} computes for a given salt (tests use it); it is not a
 * password-hashing tool.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";

const B64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ROUNDS_DEFAULT = 5000;
const ROUNDS_MIN = 1000;
const ROUNDS_MAX = 999_999_999;

/** The byte triples of the final encoding, per the specification. */
const ORDER_512: [number, number, number][] = [
  [0, 21, 42],
  [22, 43, 1],
  [44, 2, 23],
  [3, 24, 45],
  [25, 46, 4],
  [47, 5, 26],
  [6, 27, 48],
  [28, 49, 7],
  [50, 8, 29],
  [9, 30, 51],
  [31, 52, 10],
  [53, 11, 32],
  [12, 33, 54],
  [34, 55, 13],
  [56, 14, 35],
  [15, 36, 57],
  [37, 58, 16],
  [59, 17, 38],
  [18, 39, 60],
  [40, 61, 19],
  [62, 20, 41],
];
const ORDER_256: [number, number, number][] = [
  [0, 10, 20],
  [21, 1, 11],
  [12, 22, 2],
  [3, 13, 23],
  [24, 4, 14],
  [15, 25, 5],
  [6, 16, 26],
  [27, 7, 17],
  [18, 28, 8],
  [9, 19, 29],
];

/** A hash string that is not SHA-crypt or is malformed. */
export class ShaCryptError extends Error {
  override readonly name = "ShaCryptError";
}

function b64(b2: number, b1: number, b0: number, n: number): string {
  let w = (b2 << 16) | (b1 << 8) | b0;
  let s = "";
  for (let i = 0; i < n; i++) {
    s += B64[w & 0x3f];
    w >>>= 6;
  }
  return s;
}

function repeatTo(src: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = src[i % src.length];
  return out;
}

/**
 * Computes `$5$...` or `$6$...` for `password` with the salt part of
 * `setting` (`$6$salt`, `$6$rounds=N$salt`, or a whole hash).
 */
export function shaCrypt(password: Uint8Array, setting: string): string {
  const m = /^\$([56])\$(?:rounds=(\d{1,10})\$)?([^$]*)/.exec(setting);
  if (!m) throw new ShaCryptError("not a $5$ or $6$ hash");
  const algo = m[1] === "5" ? "sha256" : "sha512";
  const size = algo === "sha256" ? 32 : 64;
  let rounds = ROUNDS_DEFAULT;
  if (m[2] !== undefined) {
    rounds = Math.min(ROUNDS_MAX, Math.max(ROUNDS_MIN, Number(m[2])));
  }
  const salt = new TextEncoder().encode(m[3]).slice(0, 16);
  const saltText = m[3].slice(0, 16);
  const h = () => createHash(algo);
  const P = password;
  const B = h().update(P).update(salt).update(P).digest();
  const a = h().update(P).update(salt);
  let left = P.length;
  for (; left > size; left -= size) a.update(B);
  a.update(B.subarray(0, left));
  for (let n = P.length; n > 0; n >>>= 1) a.update(n & 1 ? B : P);
  let C: Uint8Array = a.digest();
  const dp = h();
  for (let i = 0; i < P.length; i++) dp.update(P);
  const Pp = repeatTo(dp.digest(), P.length);
  const ds = h();
  for (let i = 0; i < 16 + C[0]; i++) ds.update(salt);
  const Sp = repeatTo(ds.digest(), salt.length);
  for (let i = 0; i < rounds; i++) {
    const c = h();
    c.update(i & 1 ? Pp : C);
    if (i % 3) c.update(Sp);
    if (i % 7) c.update(Pp);
    c.update(i & 1 ? C : Pp);
    C = c.digest();
  }
  let out = "";
  if (size === 64) {
    for (const [x, y, z] of ORDER_512) out += b64(C[x], C[y], C[z], 4);
    out += b64(0, 0, C[63], 2);
  } else {
    for (const [x, y, z] of ORDER_256) out += b64(C[x], C[y], C[z], 4);
    out += b64(0, C[31], C[30], 3);
  }
  const r = m[2] !== undefined ? `rounds=${rounds}$` : "";
  return `$${m[1]}$${r}${saltText}$${out}`;
}

/** True when `password` matches the SHA-crypt `hash`; constant-time comparison. */
export function shaCryptVerify(password: Uint8Array, hash: string): boolean {
  const computed = new TextEncoder().encode(shaCrypt(password, hash));
  const stored = new TextEncoder().encode(hash);
  if (computed.length !== stored.length) return false;
  return timingSafeEqual(computed, stored);
}
