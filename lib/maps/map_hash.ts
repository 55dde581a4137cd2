/**
 * `hash:`, `btree:`, `lmdb:` and `cdb:` tables: a text source compiled by
 * `postmap` (or `postalias`) into an index file beside it, which daemons
 * open read-only. Lookups never parse the text; a daemon needs read
 * permission for exactly one file, `<source>.<type>.pwdb` (the four types
 * share the format and differ only in the file name, so that an admin's
 * `hash:` and `cdb:` builds of one source do not overwrite each other, and
 * the name never collides with Postfix's own `.db`/`.lmdb`/`.cdb` files).
 *
 * WHY NOT DENO KV (measured 2026-12-01 on the build machine, 100,000 keys
 * "keyN@example.com value N", Deno 2.9.6, Postfix 3.7.11):
 *
 * | store                      | build      | lookups/s | read-only open          |
 * |----------------------------|------------|-----------|-------------------------|
 * | Deno KV, atomic batches 1k | 756 ms     | 7,600     | no: needs --allow-write |
 * | node:sqlite, one txn       | 234-262 ms | 94,000    | yes (readOnly: true)    |
 * | this file (see below)      | see bench  | see bench | yes, one read grant     |
 * | Postfix postmap hash:      | 136 ms     |           |                         |
 * | Postfix postmap lmdb:      | 67 ms      |           |                         |
 * | Postfix postmap cdb:       | 52 ms      |           |                         |
 *
 * Deno.openKv on an existing file fails with "Requires write access" when
 * the process has only --allow-read of it, and as user nobody on a
 * root-owned 0644 file it fails with "attempt to write a readonly
 * database" even with --allow-write of the file and its -wal/-shm/-journal
 * companions: a daemon cannot open a KV table read-only. It also builds 5x
 * slower than postmap and answers 7,600 lookups/s. node:sqlite opens
 * read-only but builds slower than postmap. So the index is a file of our
 * own, built in one pass and read whole at open (`deno task bench
 * --lookups` prints the current figures).
 *
 * FILE FORMAT (all integers little-endian u32):
 *
 * ```
 * 0   "PWDB0001"                 magic and version
 * 8   nslots                     power of two, >= 2 x count
 * 12  count                      number of entries
 * 16  slots[nslots]              offset of a record, 0 = empty slot
 * ... records: klen vlen key value (UTF-8), in source order
 * ```
 *
 * A key's slot is FNV-1a of its UTF-8 bytes modulo nslots, with linear
 * probing. Keys are stored as postmap was told (folded unless -f); lookups
 * fold the query unless opened without folding, as Postfix.
 *
 * The file is written to a temporary name beside the target and renamed
 * over it, so a reader sees the old table or the new one, never half of
 * one; `postmap -i` and `-d` rewrite the whole file the same way.
 * `postmap -N`/`-n` (NUL-terminated keys and values for old sendmail/NIS
 * readers) are accepted and change nothing: the format stores lengths.
 * Postfix daemons notice a changed table and restart; a Postwarden dict
 * keeps what it read at open until it is reopened.
 *
 * @module
 */
import { type Dict, DictError, type DictOpener, type DictOpenOptions } from "./dict.ts";
import { foldKey } from "./source.ts";

/** The table types stored in this format. */
export const COMPILED_TYPES = ["hash", "btree", "lmdb", "cdb"] as const;

const MAGIC = "PWDB0001";
const HEADER = 16;
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

/**
 * Encodes entries (in the order given; keys must be unique) into the file
 * format above.
 */
export function encodeTable(entries: ReadonlyArray<readonly [string, string]>): Uint8Array {
  let nslots = 16;
  while (nslots < entries.length * 2) nslots *= 2;
  let size = HEADER + nslots * 4;
  // Worst case 3 bytes per UTF-16 unit; trimmed at the end.
  for (const [k, v] of entries) size += 8 + (k.length + v.length) * 3;
  if (size > 0xffffffff) throw new DictError("table too large for one index file", "config");
  const buf = new Uint8Array(size);
  const view = new DataView(buf.buffer);
  buf.set(enc.encode(MAGIC), 0);
  view.setUint32(8, nslots, true);
  view.setUint32(12, entries.length, true);
  const mask = nslots - 1;
  let pos = HEADER + nslots * 4;
  for (const [k, v] of entries) {
    const rec = pos;
    const kw = enc.encodeInto(k, buf.subarray(rec + 8)).written;
    const vw = enc.encodeInto(v, buf.subarray(rec + 8 + kw)).written;
    view.setUint32(rec, kw, true);
    view.setUint32(rec + 4, vw, true);
    let slot = fnv1a(buf, rec + 8, rec + 8 + kw) & mask;
    while (view.getUint32(HEADER + slot * 4, true) !== 0) slot = (slot + 1) & mask;
    view.setUint32(HEADER + slot * 4, rec, true);
    pos = rec + 8 + kw + vw;
  }
  return buf.subarray(0, pos);
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
    if (
      this.#nslots === 0 || (this.#nslots & (this.#nslots - 1)) !== 0 ||
      HEADER + this.#nslots * 4 > bytes.length
    ) {
      throw new DictError(`${what}: corrupt table index (rebuild it with postmap)`, "config");
    }
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
      const klen = view.getUint32(rec, true);
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
    for (let n = 0; n < this.count && pos + 8 <= this.#buf.length; n++) {
      const klen = this.#view.getUint32(pos, true);
      const vlen = this.#view.getUint32(pos + 4, true);
      const k = dec.decode(this.#buf.subarray(pos + 8, pos + 8 + klen));
      const v = dec.decode(this.#buf.subarray(pos + 8 + klen, pos + 8 + klen + vlen));
      yield [k, v];
      pos += 8 + klen + vlen;
    }
  }
}

/**
 * Writes an index atomically: a temporary file beside the target, synced,
 * then renamed over it. `mode` is the new file's permission bits.
 */
export async function writeCompiled(path: string, bytes: Uint8Array, mode = 0o644): Promise<void> {
  const slash = path.lastIndexOf("/");
  const tmp = `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.${Deno.pid}.tmp`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode });
  try {
    let off = 0;
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
    await f.sync();
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
  return async (name: string, opts: Required<DictOpenOptions>): Promise<Dict> => {
    const table = await readCompiled(type, name, opts.warn);
    return {
      type,
      name,
      pattern: false,
      lookup: (key) => Promise.resolve(table.get(opts.fold ? foldKey(key) : key)),
      close: () => Promise.resolve(),
    };
  };
}

/** Openers and grants for hash:, btree:, lmdb: and cdb: (registry.ts). */
export const compiledBackend = (type: string) => ({
  open: opener(type),
  grants: (name: string) => Promise.resolve({ read: [compiledPath(type, name)] }),
});
