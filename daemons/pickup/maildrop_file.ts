/**
 * Opening a maildrop file without trusting the user who made it
 * (maildrop.ts says how): lstat, O_NOFOLLOW|O_NONBLOCK open, dev/ino and
 * fstat checks, bounded reads. Apart from maildrop.ts because it needs
 * node:fs (Deno's open has no O_NOFOLLOW), whose compatibility layer costs
 * a process about 2 MiB of heap: pickup loads this module when it first
 * finds a file, and sendmail never does.
 */
import * as fs from "node:fs";
import {
  checkTrailer,
  ContentDecoder,
  decodeHead,
  type Envelope,
  QueueFormatError,
  type QueueHead,
  TRAILER_SIZE,
} from "../../lib/queue/mod.ts";
import { HEAD_LIMIT } from "./maildrop.ts";
/** What {@link openMaildropFile} found. */
export type MaildropOpen =
  | { status: "ok"; file: MaildropFile }
  /** The name no longer exists. */
  | { status: "gone" }
  /** Not a regular file, or more than one link: to be removed, never opened or read. */
  | { status: "unsafe"; uid: number; why: string }
  /** The name now names another file than the one lstat'ed: look again next scan. */
  | { status: "changed"; uid: number }
  /** A regular file that is not a complete maildrop file, or too large. */
  | { status: "corrupt"; uid: number; why: string };

/** The lstat of a maildrop entry, or null if it is gone. */
export function lstatEntry(path: string): fs.BigIntStats | null {
  try {
    return fs.lstatSync(path, { bigint: true }) as fs.BigIntStats;
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return null;
    throw e;
  }
}

/** Why an entry must not be opened, or null if it is a regular file with one link. */
export function entryProblem(st: fs.BigIntStats): string | null {
  if (st.isSymbolicLink()) return "symbolic link";
  if (st.isFIFO()) return "FIFO";
  if (st.isDirectory()) return "directory";
  if (st.isSocket()) return "socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "device";
  if (!st.isFile()) return "not a regular file";
  if (st.nlink > 1n) return `file has ${st.nlink} links`;
  return null;
}

/**
 * Opens a maildrop file for reading after checking it as described in the
 * module comment. `lst` is the entry's lstat from {@link lstatEntry}.
 * Errors other than the outcomes listed in {@link MaildropOpen} (EACCES,
 * EAGAIN from a lease, I/O errors) are thrown.
 */
export function openMaildropFile(
  path: string,
  lst: fs.BigIntStats,
  opts: { maxBytes?: number } = {},
): MaildropOpen {
  const uid = Number(lst.uid);
  const problem = entryProblem(lst);
  if (problem) return { status: "unsafe", uid, why: problem };
  let fd: number;
  try {
    fd = fs.openSync(
      path,
      fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK,
    );
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT") return { status: "gone" };
    if (code === "ELOOP") return { status: "changed", uid }; // a symlink was swapped in
    throw e;
  }
  try {
    const st = fs.fstatSync(fd, { bigint: true }) as fs.BigIntStats;
    if (st.dev !== lst.dev || st.ino !== lst.ino) {
      fs.closeSync(fd);
      return { status: "changed", uid };
    }
    const late = entryProblem(st);
    if (late) {
      fs.closeSync(fd);
      return { status: "unsafe", uid, why: late };
    }
    const size = Number(st.size);
    const max = opts.maxBytes ?? Infinity;
    if (size > max) {
      fs.closeSync(fd);
      return { status: "corrupt", uid, why: `file too large (${size} bytes)` };
    }
    try {
      const { head, prefix } = readHead(fd, size);
      return {
        status: "ok",
        file: new MaildropFile(fd, Number(st.uid), Number(st.mtimeMs), size, head, prefix),
      };
    } catch (e) {
      if (!(e instanceof QueueFormatError)) throw e;
      fs.closeSync(fd);
      return { status: "corrupt", uid, why: e.message };
    }
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      // closed above
    }
    throw e;
  }
}

/** An opened, validated maildrop file. */
export class MaildropFile {
  /** @internal use {@link openMaildropFile} */
  constructor(
    readonly fd: number,
    /** The file's owner: the submitter. */
    readonly uid: number,
    /** The file's mtime, ms. */
    readonly mtimeMs: number,
    /** The size when opened; nothing beyond it is read. */
    readonly size: number,
    readonly head: QueueHead,
    readonly prefix: Uint8Array,
  ) {}

  get envelope(): Envelope {
    return this.head.envelope;
  }

  /** Streams the message content; throws QueueFormatError if it ends without trailer. */
  async *content(): AsyncGenerator<Uint8Array> {
    const dec = new ContentDecoder();
    let pos = this.head.contentOffset;
    if (this.prefix.length > pos) {
      for (const part of dec.push(this.prefix.subarray(pos))) yield part;
      pos = this.prefix.length;
    }
    const buf = new Uint8Array(128 * 1024);
    while (!dec.done && pos < this.size) {
      const n = fs.readSync(this.fd, buf, 0, Math.min(buf.length, this.size - pos), pos);
      if (n === 0) break;
      pos += n;
      for (const part of dec.push(buf.subarray(0, n))) yield part.slice();
      await Promise.resolve();
    }
    if (!dec.done) throw new QueueFormatError("content ends without trailer");
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // closed
    }
  }
}

function preadFull(fd: number, n: number, pos: number): Uint8Array {
  const buf = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = fs.readSync(fd, buf, off, n - off, pos + off);
    if (got === 0) throw new QueueFormatError("unexpected end of file");
    off += got;
  }
  return buf;
}

/** Checks the trailer and decodes the envelope and recipients. */
function readHead(fd: number, size: number): { head: QueueHead; prefix: Uint8Array } {
  if (size < TRAILER_SIZE) throw new QueueFormatError(`truncated (${size} bytes)`);
  if (!checkTrailer(preadFull(fd, TRAILER_SIZE, size - TRAILER_SIZE), size)) {
    throw new QueueFormatError("no valid trailer (truncated or damaged)");
  }
  let want = Math.min(size, 64 * 1024);
  for (;;) {
    const buf = preadFull(fd, want, 0);
    const head = decodeHead(buf);
    if (head) return { head, prefix: buf };
    if (want >= size) throw new QueueFormatError("no content records");
    if (want >= HEAD_LIMIT) throw new QueueFormatError(`envelope longer than ${HEAD_LIMIT} bytes`);
    want = Math.min(size, want * 4, HEAD_LIMIT);
  }
}
