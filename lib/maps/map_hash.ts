/**
 * `hash:`, `btree:`, `lmdb:` and `cdb:` tables: a text source compiled by
 * `postmap` (or `postalias`) into an index file beside it, which daemons
 * open read-only. Lookups never parse the text; a daemon needs read
 * permission for exactly one file, `<source>.<type>.pwdb` (the four types
 * share the format and differ only in the file name, so that an admin's
 * `hash:` and `cdb:` builds of one source do not overwrite each other, and
 * the name never collides with Postfix's own `.db`/`.lmdb`/`.cdb` files).
 *
 * WHY NOT DENO KV (measured 2026-12-01 on the 2-CPU build machine, 100,000
 * keys "keyN@example.com value N", Deno 2.9.6, Postfix 3.7.11):
 *
 * | store                        | build (ms) | lookups/s | daemon opens read-only  |
 * |------------------------------|------------|-----------|-------------------------|
 * | Deno KV, atomic batches 1k   | 756 (a)    | 7,600     | no (see below)          |
 * | node:sqlite, one transaction | 234-262 (a)| 94,000    | yes (readOnly: true)    |
 * | this format                  | 42-60 (a)  | 230,000-  | yes, one read grant     |
 * |                              |            | 440,000   |                         |
 * | this format, whole postmap   | 115 (b)    |           |                         |
 * | Postfix postmap hash:        | 116-136 (b)|           |                         |
 * | Postfix postmap lmdb: / cdb: | 67 / 52 (b)|           |                         |
 *
 * (a) in-process, no process start; (b) whole process, best of 5 on a
 * quiet machine (with a load average of 14: 347 ms ours, 355 Postfix's).
 * `postmap -q -` with 100,000 keys: ours 204,000-379,000 lookups/s after a
 * 53-129 ms start (Deno and lib/config), Postfix's 149,000-230,000 after
 * 5-11 ms. `deno task bench --lookups` prints the current figures.
 *
 * Deno.openKv on an existing file fails with "Requires write access" when
 * the process has only --allow-read of it, and as user nobody on a
 * root-owned 0644 file it fails with "attempt to write a readonly
 * database" even with --allow-write of the file and its -wal/-shm/-journal
 * companions: a daemon cannot open a KV table read-only. It also builds
 * 5x slower than postmap and answers 7,600 lookups/s. node:sqlite opens
 * read-only but builds 2x slower than postmap. So the index is a file of
 * our own, built in one pass and read whole at open.
 *
 * The "older than source" check needs to stat the source, so a daemon is
 * granted read access to the source as well as the index (the same data);
 * it never reads the text.
 *
 * FILE FORMAT (all integers little-endian u32):
 *
 * ```
 * 0   "PWDB0001"                 magic and version
 * 8   nslots                     power of two, >= 2 x count
 * 12  count                      number of entries
 * 16  length                     length of the whole file
 * 20  slots[nslots]              offset of a record, 0 = empty slot
 * ... records: klen vlen key value (UTF-8), in source order; a record
 *     replaced by a later one (postmap -r) has the top bit of klen set
 * ```
 *
 * A key's slot is FNV-1a of its UTF-8 bytes modulo nslots, with linear
 * probing. Keys are stored as postmap was told (folded unless -f); lookups
 * fold the query unless opened without folding, as Postfix.
 *
 * The file is written to a temporary name beside the target and renamed
 * over it, so a reader sees the old table or the new one, never half of
 * one; `postmap -i` and `-d` rewrite the whole file the same way. The
 * header holds the file's length, so a file torn by a crash is reported
 * as corrupt, never read; record bounds are checked on every read.
 * `postmap -N`/`-n` (NUL-terminated keys and values for old sendmail/NIS
 * readers) are accepted and change nothing: the format stores lengths.
 * Postfix daemons notice a changed table and restart; a Postwarden dict
 * keeps what it read at open until it is reopened.
 *
 * @module
 */
import { type Dict, DictError, type DictOpenContext, type DictOpener } from "./dict.ts";
import {
  decodeSource,
  type DuplicatePolicy,
  foldKey,
  parseMapLine,
  parseMapSource,
  type SourceOptions,
} from "./source.ts";

/** The table types stored in this format. */
export const COMPILED_TYPES = ["hash", "btree", "lmdb", "cdb"] as const;

const MAGIC = "PWDB0001";
const HEADER = 20;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** The index file of `type:name`. */
export function compiledPath(type: string, name: string): string {
  return `${name}.${type}.pwdb`;
}

function fnv1a(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

const DEAD = 0x80000000;

/**
 * Builds an index file in one pass: records are appended as they come and
 * placed in the slot table at once, so a duplicate key is found where it
 * would be stored. `capacity` is an upper bound on the number of entries
 * (the number of source lines will do).
 */
export class TableBuilder {
  #buf: Uint8Array;
  #pos: number;
  readonly #slots: Uint32Array;
  /** Hash of the key in each slot, to compare only keys that may match. */
  readonly #hashes: Uint32Array;
  readonly #mask: number;
  #count = 0;

  constructor(capacity: number) {
    let nslots = 16;
    while (nslots < capacity * 2) nslots *= 2;
    this.#mask = nslots - 1;
    this.#slots = new Uint32Array(nslots);
    this.#hashes = new Uint32Array(nslots);
    this.#pos = HEADER + nslots * 4;
    this.#buf = new Uint8Array(this.#pos + Math.max(4096, capacity * 48));
  }

  #reserve(n: number) {
    if (this.#pos + n <= this.#buf.length) return;
    if (this.#pos + n > 0xffffffff) {
      throw new DictError("table too large for one index file", "config");
    }
    const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.#pos + n));
    grown.set(this.#buf.subarray(0, this.#pos));
    this.#buf = grown;
  }

  /**
   * Adds key/value (UTF-8 bytes, taken from `src` at the given ranges).
   * When the key is already there, keeps the old value (returns
   * "duplicate") or, with `replace`, the new one (returns "replaced").
   */
  add(
    src: Uint8Array,
    k0: number,
    k1: number,
    v0: number,
    v1: number,
    replace = false,
  ): "added" | "duplicate" | "replaced" {
    const klen = k1 - k0;
    const vlen = v1 - v0;
    const mask = this.#mask;
    const slots = this.#slots;
    const hashes = this.#hashes;
    const h = fnv1a(src, k0, k1);
    let slot = h & mask;
    let rec: number;
    let replaced = false;
    while ((rec = slots[slot]) !== 0) {
      if (
        hashes[slot] === h && readU32(this.#buf, rec) === klen && this.#same(rec + 8, src, k0, klen)
      ) {
        if (!replace) return "duplicate";
        writeU32(this.#buf, rec, (klen | DEAD) >>> 0);
        this.#count--;
        replaced = true;
        break;
      }
      slot = (slot + 1) & mask;
    }
    if (this.#count >= (mask + 1) / 2) throw new Error("TableBuilder: capacity exceeded");
    this.#reserve(8 + klen + vlen);
    const buf = this.#buf;
    const at = this.#pos;
    writeU32(buf, at, klen);
    writeU32(buf, at + 4, vlen);
    let o = at + 8;
    for (let i = k0; i < k1; i++) buf[o++] = src[i];
    for (let i = v0; i < v1; i++) buf[o++] = src[i];
    slots[slot] = at;
    hashes[slot] = h;
    this.#pos = o;
    this.#count++;
    return replaced ? "replaced" : "added";
  }

  /** {@link add} for strings. */
  addText(key: string, value: string, replace = false): "added" | "duplicate" | "replaced" {
    const k = enc.encode(key);
    const v = enc.encode(value);
    const both = new Uint8Array(k.length + v.length);
    both.set(k);
    both.set(v, k.length);
    return this.add(both, 0, k.length, k.length, both.length, replace);
  }

  #same(at: number, src: Uint8Array, k0: number, len: number): boolean {
    const buf = this.#buf;
    for (let i = 0; i < len; i++) if (buf[at + i] !== src[k0 + i]) return false;
    return true;
  }

  /** Number of entries so far. */
  get count(): number {
    return this.#count;
  }

  /** The finished file. */
  finish(): Uint8Array {
    const buf = this.#buf;
    buf.set(enc.encode(MAGIC), 0);
    writeU32(buf, 8, this.#slots.length);
    writeU32(buf, 12, this.#count);
    writeU32(buf, 16, this.#pos);
    const slots = this.#slots;
    for (let i = 0; i < slots.length; i++) writeU32(buf, HEADER + i * 4, slots[i]);
    return buf.subarray(0, this.#pos);
  }
}

function readU32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}

/**
 * Encodes entries (keys unique; a later duplicate is dropped) into the
 * file format above, in the order given.
 */
export function encodeTable(entries: ReadonlyArray<readonly [string, string]>): Uint8Array {
  const b = new TableBuilder(entries.length);
  for (const [k, v] of entries) b.addText(k, v);
  return b.finish();
}

/** Options for {@link compileMapSource}. */
export interface CompileOptions extends SourceOptions {
  fold: boolean;
  policy: DuplicatePolicy;
  /** Entries already in the table (postmap -i), added first. */
  existing?: Iterable<[string, string]>;
}

const isSpaceByte = (b: number) => b === 32 || (b >= 9 && b <= 13);

/**
 * Compiles a postmap-format source into an index, with the same entries
 * and warnings as parseMapSource + resolveDuplicates (source.ts), but
 * working on bytes: an ASCII line with no quotes or backslashes (nearly
 * every line of a real table) is split and folded without making strings.
 * Other lines, and files that are not all ASCII, go through the string
 * parser.
 */
export function compileMapSource(bytes: Uint8Array, opts: CompileOptions): Uint8Array {
  let lines = 1;
  for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, i + 1)) lines++;
  const ascii = isAscii(bytes);
  const existing = [...(opts.existing ?? [])];
  const builder = new TableBuilder(lines + existing.length);
  const replace = opts.policy === "replace";
  const duplicate = (key: string, line: number) => {
    if (opts.policy === "warn") opts.warn(`${opts.path}, line ${line}: duplicate entry: "${key}"`);
  };
  for (const [k, v] of existing) builder.addText(k, v);
  const addEntry = (key: string, value: string, line: number) => {
    const k = opts.fold ? foldKey(key, opts.utf8 ?? true) : key;
    if (builder.addText(k, value, replace) === "duplicate") duplicate(k, line);
  };
  if (!ascii) {
    for (const e of parseMapSource(decodeSource(bytes, opts), opts)) {
      addEntry(e.key, e.value, e.line);
    }
    return builder.finish();
  }
  const latin1 = new TextDecoder("latin1");
  // The logical line being collected: [start, end) of its first physical
  // line, and the joined text once a continuation line was seen.
  let curStart = -1;
  let curEnd = -1;
  let curLine = 0;
  let joined: string | undefined;
  const flush = () => {
    if (curStart < 0) return;
    if (joined === undefined && simple(bytes, curStart, curEnd)) {
      let k1 = curStart;
      while (k1 < curEnd && !isSpaceByte(bytes[k1])) k1++;
      let v0 = k1;
      while (v0 < curEnd && isSpaceByte(bytes[v0])) v0++;
      let v1 = curEnd;
      while (v1 > v0 && isSpaceByte(bytes[v1 - 1])) v1--;
      if (k1 === curStart || v0 === v1) {
        opts.warn(
          `${opts.path}, line ${curLine}: expected format: key whitespace value` +
            (opts.ignoringSuffix ? " -- ignoring this line" : ""),
        );
      } else {
        if (bytes[k1 - 1] === 58) {
          opts.warn(
            `${opts.path}, line ${curLine}: record is in "key: value" format; is this an alias file?`,
          );
        }
        if (opts.fold) {
          for (let i = curStart; i < k1; i++) {
            const b = bytes[i];
            if (b >= 65 && b <= 90) bytes[i] = b + 32;
          }
        }
        if (builder.add(bytes, curStart, k1, v0, v1, replace) === "duplicate") {
          duplicate(latin1.decode(bytes.subarray(curStart, k1)), curLine);
        }
      }
    } else {
      const text = joined ?? latin1.decode(bytes.subarray(curStart, curEnd));
      const e = parseMapLine(text, curLine, opts);
      if (e !== undefined) addEntry(e.key, e.value, e.line);
    }
    curStart = -1;
    joined = undefined;
  };
  let pos = 0;
  let n = 0;
  while (pos < bytes.length) {
    let end = bytes.indexOf(10, pos);
    if (end < 0) end = bytes.length;
    n++;
    let e = end;
    if (e > pos && bytes[e - 1] === 13) e--;
    let j = pos;
    while (j < e && isSpaceByte(bytes[j])) j++;
    if (j < e && bytes[j] !== 35) {
      if (j > pos) {
        const raw = latin1.decode(bytes.subarray(pos, e));
        if (curStart >= 0) {
          joined = (joined ?? latin1.decode(bytes.subarray(curStart, curEnd))) + raw;
        } else {
          const shown = raw.length > 30 ? raw.slice(0, 30) + "..." : raw;
          opts.warn(`${opts.path}: logical line must not start with whitespace: "${shown}"`);
        }
      } else {
        flush();
        curStart = pos;
        curEnd = e;
        curLine = n;
      }
    }
    pos = end + 1;
  }
  flush();
  return builder.finish();
}

/** True when no byte has the top bit set (four bytes at a time). */
function isAscii(bytes: Uint8Array): boolean {
  let i = 0;
  const head = (4 - (bytes.byteOffset & 3)) & 3;
  for (; i < head; i++) {
    if (i >= bytes.length) return true;
    if (bytes[i] & 0x80) return false;
  }
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset + i, (bytes.length - i) >>> 2);
  let acc = 0;
  for (let w = 0; w < words.length; w++) acc |= words[w];
  if (acc & 0x80808080) return false;
  for (i += words.length * 4; i < bytes.length; i++) if (bytes[i] & 0x80) return false;
  return true;
}

/** A line the byte path handles: no quote, no backslash. */
function simple(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = bytes[i];
    if (b === 34 || b === 92) return false;
  }
  return true;
}

/** A decoded index file: exact-match lookups and the entries in order. */
export class CompiledTable {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  readonly #nslots: number;
  readonly count: number;

  /** @throws {DictError} (kind "config") when bytes are not an index file. */
  constructor(bytes: Uint8Array, what: string) {
    if (bytes.length < HEADER || dec.decode(bytes.subarray(0, 8)) !== MAGIC) {
      throw new DictError(
        `${what}: not a Postwarden table index (rebuild it with postmap)`,
        "config",
      );
    }
    this.#buf = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#nslots = this.#view.getUint32(8, true);
    this.count = this.#view.getUint32(12, true);
    this.#what = what;
    if (
      this.#nslots === 0 || (this.#nslots & (this.#nslots - 1)) !== 0 ||
      HEADER + this.#nslots * 4 > bytes.length || this.#view.getUint32(16, true) !== bytes.length
    ) {
      throw this.#corrupt();
    }
  }

  readonly #what: string;

  #corrupt(): DictError {
    return new DictError(`${this.#what}: corrupt table index (rebuild it with postmap)`, "config");
  }

  /** The value stored under exactly this key. */
  get(key: string): string | undefined {
    const k = enc.encode(key);
    const buf = this.#buf;
    const view = this.#view;
    const mask = this.#nslots - 1;
    let slot = fnv1a(k, 0, k.length) & mask;
    for (let probes = 0; probes <= mask; probes++) {
      const rec = view.getUint32(HEADER + slot * 4, true);
      if (rec === 0) return undefined;
      if (rec + 8 > buf.length) throw this.#corrupt();
      const klen = view.getUint32(rec, true); // a dead record is never in a slot
      if (klen === k.length) {
        let same = true;
        for (let i = 0; i < klen; i++) {
          if (buf[rec + 8 + i] !== k[i]) {
            same = false;
            break;
          }
        }
        if (same) {
          const vlen = view.getUint32(rec + 4, true);
          if (rec + 8 + klen + vlen > buf.length) throw this.#corrupt();
          return dec.decode(buf.subarray(rec + 8 + klen, rec + 8 + klen + vlen));
        }
      }
      slot = (slot + 1) & mask;
    }
    return undefined;
  }

  /** All entries in source order (postmap -s). */
  *entries(): Generator<[string, string]> {
    let pos = HEADER + this.#nslots * 4;
    while (pos + 8 <= this.#buf.length) {
      const word = this.#view.getUint32(pos, true);
      const klen = word & ~DEAD & 0x7fffffff;
      const vlen = this.#view.getUint32(pos + 4, true);
      if (pos + 8 + klen + vlen > this.#buf.length) throw this.#corrupt();
      if (word & DEAD) {
        pos += 8 + klen + vlen;
        continue;
      }
      const k = dec.decode(this.#buf.subarray(pos + 8, pos + 8 + klen));
      const v = dec.decode(this.#buf.subarray(pos + 8 + klen, pos + 8 + klen + vlen));
      yield [k, v];
      pos += 8 + klen + vlen;
    }
  }
}

/** Options for {@link writeCompiled}. */
export interface WriteOptions {
  /** Permission bits of the new file. @default 0o644 */
  mode?: number;
  /**
   * fsync the file before the rename. postmap does not, as Postfix's
   * postmap does not: the index is derived from its source, and a file
   * torn by a crash fails the length check at open ("corrupt table index
   * (rebuild it with postmap)") rather than answering wrongly. @default true
   */
  sync?: boolean;
}

/**
 * Writes an index atomically: a temporary file beside the target, then
 * renamed over it, so a reader sees the old file or the new one.
 */
export async function writeCompiled(
  path: string,
  bytes: Uint8Array,
  opts: WriteOptions = {},
): Promise<void> {
  const mode = opts.mode ?? 0o644;
  const slash = path.lastIndexOf("/");
  const tmp = `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.${Deno.pid}.tmp`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode });
  try {
    let off = 0;
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
    if (opts.sync ?? true) await f.sync();
  } catch (e) {
    f.close();
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  f.close();
  await Deno.rename(tmp, path);
}

/**
 * Reads the index of `type:name`, warning as Postfix when it is older than
 * its source.
 *
 * @throws {DictError} (kind "config") when the index is missing or corrupt.
 */
export async function readCompiled(
  type: string,
  name: string,
  warn: (message: string) => void,
): Promise<CompiledTable> {
  const file = compiledPath(type, name);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? `No such file or directory; run "postmap ${type}:${name}" to build it`
      : (e as Error).message;
    throw new DictError(`open database ${file}: ${why}`, "config");
  }
  try {
    const [src, db] = await Promise.all([Deno.stat(name), Deno.stat(file)]);
    if (src.mtime && db.mtime && src.mtime.getTime() > db.mtime.getTime()) {
      warn(`database ${file} is older than source file ${name}`);
    }
  } catch {
    // No source (or no permission to stat it): nothing to compare, as Postfix.
  }
  return new CompiledTable(bytes, file);
}

/** Opens `type:name` from its index (one opener per type). */
function opener(type: string): DictOpener {
  return async (name: string, opts: DictOpenContext): Promise<Dict> => {
    const table = await readCompiled(type, name, opts.warn);
    return {
      type,
      name,
      pattern: false,
      lookup: (key) => Promise.resolve(table.get(opts.fold ? foldKey(key, opts.utf8) : key)),
      close: () => Promise.resolve(),
    };
  };
}

/** Openers and grants for hash:, btree:, lmdb: and cdb: (registry.ts). */
export const compiledBackend = (type: string) => ({
  open: opener(type),
  grants: (name: string) => Promise.resolve({ read: [compiledPath(type, name), name] }),
});
