/**
 * The maildrop contract between sendmail (any local user) and pickup (the
 * mail owner): how files are named, what their envelope may say, and how
 * pickup opens one without trusting the user who made it.
 *
 * Layout. `maildrop/` belongs to the mail owner, mode 1733: every user
 * may create files in it, nobody but the owner may list it, and the
 * sticky bit keeps users from removing or renaming each other's files.
 * sendmail cannot chown, so its file stays owned by the submitter and is
 * made readable by the mail owner: mode 0644, or 0640 when maildrop is
 * setgid (mode 3733) and so hands its group, the mail owner's, to new
 * files. With 0644 what keeps other users out is that they cannot list
 * the folder and cannot guess a name: `QUEUEID.RANDOM` carries 128 random
 * bits. The random part is therefore never logged ({@link logName}).
 * sendmail writes `.NAME.tmp` and renames it when complete, so names
 * starting with "." are not (yet) messages.
 *
 * Trust. The submitter owns the file and may have crafted anything in it,
 * so pickup takes from the kernel what the kernel knows: the uid is the
 * file's owner (st_uid), never a uid written inside; the arrival time is
 * the file's mtime. {@link openMaildropFile} refuses anything that is not
 * a regular file with one link, opens with O_NOFOLLOW|O_NONBLOCK (a
 * symlink is not followed, a FIFO or a lease cannot block pickup), checks
 * that what it opened is what it lstat'ed (same dev/ino) and, since an
 * inode number may be reused, checks the opened file itself again (fstat:
 * regular, one link, and its owner is the uid reported); it bounds the
 * size and reads no further than the size it saw, so a file growing under
 * it cannot keep it reading.
 */
import * as fs from "node:fs";
import {
  checkTrailer,
  ContentDecoder,
  decodeHead,
  type Envelope,
  newQueueId,
  QueueFormatError,
  type QueueHead,
  TRAILER_SIZE,
} from "../../lib/queue/mod.ts";

/** The envelope attributes of a maildrop file: the queue format's plus sendmail's. */
export type MaildropAttrs = NonNullable<Envelope["attrs"]> & {
  /** Submitter's uid as sendmail saw it. Informational: pickup uses the file owner. */
  uid?: number;
  /** Submitter's login name as sendmail saw it. */
  user?: string;
  /**
   * No -f was given: the sender is the submitter's login name, which
   * pickup derives from the file's owner (sendmail's guess is the fallback).
   */
  defaultSender?: boolean;
  /** Take recipients from the message headers (sendmail -t). */
  extract?: boolean;
  /** DSN NOTIFY for the recipients taken from the headers (sendmail -t -N). */
  extractNotify?: string[];
  /** Full name for the From: header (sendmail -F). */
  fullName?: string;
};

/** A name sendmail gives a maildrop file: queue id, ".", 32 hex digits of randomness. */
export const MAILDROP_NAME = /^([0-9A-F]{15})\.[0-9a-f]{32}$/;

/** A fresh maildrop file name: arrival order first, then 128 random bits. */
export function newMaildropName(queueId = newQueueId()): string {
  const rand = crypto.getRandomValues(new Uint8Array(16));
  return `${queueId}.${Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * How a maildrop file is named in logs: `QUEUEID.*`, without its random
 * part (which would let a log reader open the file), and with anything
 * unprintable in a user-chosen name replaced, so that a name cannot forge
 * log lines.
 */
export function logName(name: string): string {
  const m = MAILDROP_NAME.exec(name);
  if (m) return `${m[1]}.*`;
  const safe = name.replace(/[^\x21-\x7e]/g, "?");
  return safe.length > 40 ? `${safe.slice(0, 40)}...` : safe;
}

/** Where the envelope records must end; a longer head is refused. */
export const HEAD_LIMIT = 4 * 1024 * 1024;

/** Largest maildrop file accepted for a message_size_limit (0: no limit). */
export function maxMaildropBytes(messageSizeLimit: number): number {
  // Content records cost 5 bytes each; twice the limit leaves room for
  // files written in small records by older sendmails.
  return messageSizeLimit > 0 ? 2 * messageSizeLimit + HEAD_LIMIT : Infinity;
}

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
