/**
 * UNIX mbox delivery, as Postfix's local(8) and virtual(8) append to a
 * mailbox file (src/global/mbox_open.c, mail_copy.c, dot_lockfile.c,
 * src/util/safe_open.c): shared by the local agent and, later, virtual.
 *
 * One delivery appends
 *
 *   From SENDER  Wed Dec  2 06:08:10 2026      (MAILER-DAEMON for <>)
 *   Return-Path: <SENDER>
 *   X-Original-To: ORIGINAL-RECIPIENT            (when there is one)
 *   Delivered-To: RECIPIENT
 *   the message, LF line ends, ">From " for each line starting "From "
 *   an empty line
 *
 * to the file, under the locks `mailbox_delivery_lock` names, and fsyncs
 * it. When anything fails after the first byte, the file is truncated back
 * to its old size before the locks are let go, as Postfix does, so a
 * reader never sees half a message and a retry does not leave a fragment.
 *
 * The file is opened as Postfix's safe_open() does: an existing file must
 * have exactly one hard link, must not be a symbolic link (unless root owns
 * the link) nor a directory, and must still be the file lstat() names after
 * the open; a new file is created with O_CREAT|O_EXCL, which follows no
 * link. Unlike Postfix (which opens with O_NONBLOCK) Deno cannot open
 * without blocking, so a path that is not a regular file is refused before
 * the open, and an open that does not return within `openTimeoutMs` (a
 * FIFO swapped in between lstat and open) fails with a temporary error.
 *
 * Locks: "dotlock" (FILE.lock, created exclusively; one older than
 * stale_lock_time is removed; deliver_lock_attempts tries,
 * deliver_lock_delay apart) and "flock" (Deno's FsFile.tryLock, an
 * flock(2) lock, same retries). "fcntl" (POSIX record locks) cannot be
 * taken from Deno: {@link parseMailboxLocks} refuses it with a message that
 * says so, and the caller defers the mail.
 *
 * Outcomes are {@link MailboxError}s with Postfix's text and DSN code
 * (mbox_dsn()): a lock held by someone else or a file that changed is
 * 4.2.0, a full disk 4.3.0, a mailbox over mailbox_size_limit 5.2.2 ("File
 * too large", as the file size rlimit Postfix sets produces), anything else
 * on open 5.2.0 and on write 5.3.0. Errors that are not the file system's
 * (the sandbox denying a path, reading the queue file) are 4.3.0.
 *
 * Does not do: running as another user (the caller's process runs as the
 * user that must own the writes), biff, Sun mailtool compatibility.
 *
 * @module
 */
import { headerAddress } from "../address/mod.ts";
import { CrlfToLf } from "../smtp/client_codec.ts";

/** A failed mailbox delivery: Postfix's reason text and DSN code (4.x.x defers, 5.x.x bounces). */
export class MailboxError extends Error {
  override readonly name = "MailboxError";
  constructor(message: string, readonly dsn: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A lock style of mailbox_delivery_lock that Postwarden can take. */
export type MailboxLock = "flock" | "dotlock";

/**
 * mailbox_delivery_lock as a list of lock styles.
 *
 * @throws {MailboxError} (4.3.0) for "fcntl", which Deno cannot take, and for unknown names.
 */
export function parseMailboxLocks(value: string, param = "mailbox_delivery_lock"): MailboxLock[] {
  const out: MailboxLock[] = [];
  for (const w of value.split(/[\s,]+/).filter((x) => x !== "")) {
    const name = w.toLowerCase();
    if (name === "flock" || name === "dotlock") {
      if (!out.includes(name)) out.push(name);
    } else if (name === "fcntl") {
      throw new MailboxError(
        `${param}: fcntl locking is not supported (Deno has flock(2) locks only); ` +
          `set "${param} = flock, dotlock"`,
        "4.3.0",
      );
    } else {
      throw new MailboxError(`${param}: unknown lock style "${w}"`, "4.3.0");
    }
  }
  return out;
}

/** What goes into the mailbox. */
export interface MboxMessage {
  /** Envelope sender ("" for the null sender). */
  sender: string;
  /** X-Original-To, when there is an original recipient. */
  originalRecipient?: string;
  /** Delivered-To (omitted when undefined). */
  delivered?: string;
  /** The message in canonical CRLF form, streamed. */
  content: () => AsyncIterable<Uint8Array>;
}

/** How to deliver. */
export interface MboxOptions {
  /** mailbox_delivery_lock, parsed. */
  locks: MailboxLock[];
  /** mailbox_size_limit in bytes (0: none). @default 0 */
  sizeLimit?: number;
  /** deliver_lock_attempts. @default 20 */
  lockAttempts?: number;
  /** deliver_lock_delay in ms. @default 1000 */
  lockDelayMs?: number;
  /** stale_lock_time in ms. @default 500000 */
  staleLockMs?: number;
  /** Owner for a file this delivery creates (root delivering into a root-only spool). */
  chown?: { uid: number; gid: number };
  /** strict_mailbox_ownership: the uid the file must belong to, or undefined for no check. */
  owner?: number;
  /** How long an open may block before it counts as failed. @default 10000 */
  openTimeoutMs?: number;
  /** Clock. @default () => new Date() */
  now?: () => Date;
  /** Sleep between lock attempts (tests pass a fast one). */
  sleep?: (ms: number) => Promise<void>;
  /** A warning for the log ("specify strict_mailbox_ownership = no ..."). */
  warn?: (message: string) => void;
}

const encoder = new TextEncoder();
const LF = 0x0a;
const FROM_ = encoder.encode("From ");
const GT = encoder.encode(">");
const EMPTY = new Uint8Array(0);

/**
 * Appends one message to the mbox file at `path` (created with mode 0600
 * when missing).
 *
 * @throws {MailboxError} with Postfix's reason and DSN code; the file is as it was.
 */
export async function deliverMbox(
  path: string,
  msg: MboxMessage,
  opts: MboxOptions,
): Promise<void> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const { file, info } = await safeOpen(path, opts);
  let dotlocked = false;
  try {
    if (!info.isFile) {
      throw new MailboxError(`destination ${path} is not a regular file`, "5.2.0");
    }
    if (opts.owner !== undefined && info.uid !== opts.owner) {
      opts.warn?.('specify "strict_mailbox_ownership = no" to ignore mailbox ownership mismatch');
      throw new MailboxError(`destination ${path} is not owned by recipient`, "4.2.0");
    }
    if (opts.locks.includes("dotlock")) {
      await dotLock(path, opts, sleep);
      dotlocked = true;
    }
    if (opts.locks.includes("flock")) await flock(file, opts, sleep);
    const now = await file.stat();
    if (now.nlink !== 1) {
      opts.warn?.(`${path}: file status changed unexpectedly`);
      throw new MailboxError("target file status changed unexpectedly", "4.2.0");
    }
    await append(file, msg, opts);
  } finally {
    // Closing drops the flock; the dotlock goes after it, as Postfix's mbox_release().
    file.close();
    if (dotlocked) await Deno.remove(`${path}.lock`).catch(() => {});
  }
}

/** Writes the message at the end of the file; truncates back on any failure. */
async function append(file: Deno.FsFile, msg: MboxMessage, opts: MboxOptions): Promise<void> {
  const start = await file.seek(0, Deno.SeekMode.End);
  const limit = opts.sizeLimit ?? 0;
  let size = start;
  const write = async (buf: Uint8Array) => {
    if (limit > 0 && size + buf.length > limit) {
      throw new MailboxError("error writing message: File too large", "5.2.2");
    }
    let off = 0;
    while (off < buf.length) off += await file.write(buf.subarray(off));
    size += buf.length;
  };
  try {
    await write(encoder.encode(mboxHeaders(msg, (opts.now ?? (() => new Date()))())));
    const body = new MboxBody();
    let chunks: AsyncIterable<Uint8Array>;
    try {
      chunks = msg.content();
    } catch (e) {
      throw readError(e);
    }
    const it = chunks[Symbol.asyncIterator]();
    while (true) {
      let r: IteratorResult<Uint8Array>;
      try {
        r = await it.next();
      } catch (e) {
        throw readError(e);
      }
      if (r.done) break;
      await write(body.push(r.value));
    }
    await write(body.end());
    await file.sync();
  } catch (e) {
    try {
      await file.truncate(start);
    } catch {
      // Reported by the error below; Postfix ignores ftruncate() failures too.
    }
    if (e instanceof MailboxError) throw e;
    throw new MailboxError(
      `error writing message: ${osErrorText(e)}`,
      mboxDsn(e, "5.3.0"),
      { cause: e },
    );
  }
}

function readError(e: unknown): MailboxError {
  return new MailboxError(`error reading message: ${osErrorText(e)}`, "4.3.0", { cause: e });
}

/**
 * The lines put in front of the message: the "From " line and the
 * Return-Path, X-Original-To and Delivered-To headers, as Postfix's
 * mail_copy() writes them (addresses quoted, control characters masked).
 */
export function mboxHeaders(msg: Omit<MboxMessage, "content">, date: Date): string {
  const sender = headerAddress(msg.sender);
  let out = `From ${msg.sender === "" ? "MAILER-DAEMON" : sender}  ${asctime(date)}\n` +
    `Return-Path: <${msg.sender === "" ? "" : sender}>\n`;
  if (msg.originalRecipient) out += `X-Original-To: ${headerAddress(msg.originalRecipient)}\n`;
  if (msg.delivered !== undefined) out += `Delivered-To: ${headerAddress(msg.delivered)}\n`;
  return out;
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** asctime(localtime()) without its newline: "Wed Dec  2 06:08:10 2026". */
export function asctime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${d.getFullYear()}`;
}

/**
 * The message body as mbox holds it: CRLF to LF, ">" before each line
 * that starts with "From ", a final LF when the content lacks one, then an
 * empty line. Streaming; holds back at most four bytes.
 */
export class MboxBody {
  #lf = new CrlfToLf();
  #pending: Uint8Array = EMPTY;
  #atStart = true;
  #endsWithLf = true;

  /** Converts the next piece of content. */
  push(chunk: Uint8Array): Uint8Array {
    const conv = this.#lf.push(chunk);
    return this.#convert(this.#pending.length ? concat([this.#pending, conv]) : conv, false);
  }

  /** What is left, the missing final LF and the empty line. */
  end(): Uint8Array {
    const tail = this.#convert(concat([this.#pending, this.#lf.end()]), true);
    const out = [tail];
    if (!this.#endsWithLf) out.push(new Uint8Array([LF]));
    out.push(new Uint8Array([LF]));
    return concat(out);
  }

  #convert(buf: Uint8Array, final: boolean): Uint8Array {
    this.#pending = EMPTY;
    const out: Uint8Array[] = [];
    let i = 0;
    while (i < buf.length) {
      if (this.#atStart) {
        const rest = buf.length - i;
        if (!final && rest < FROM_.length && sameBytes(buf, i, FROM_, rest)) {
          this.#pending = buf.slice(i);
          break;
        }
        if (rest >= FROM_.length && sameBytes(buf, i, FROM_, FROM_.length)) out.push(GT);
        this.#atStart = false;
      }
      const nl = buf.indexOf(LF, i);
      const stop = nl < 0 ? buf.length : nl + 1;
      out.push(buf.subarray(i, stop));
      i = stop;
      if (nl >= 0) this.#atStart = true;
    }
    const res = concat(out);
    if (res.length) this.#endsWithLf = res[res.length - 1] === LF;
    return res;
  }
}

function sameBytes(buf: Uint8Array, at: number, want: Uint8Array, n: number): boolean {
  for (let k = 0; k < n; k++) if (buf[at + k] !== want[k]) return false;
  return true;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const nonEmpty = parts.filter((p) => p.length > 0);
  if (nonEmpty.length === 0) return EMPTY;
  if (nonEmpty.length === 1) return nonEmpty[0];
  const out = new Uint8Array(nonEmpty.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of nonEmpty) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** safe_open(O_CREAT): an existing file carefully, else a new one exclusively. */
async function safeOpen(
  path: string,
  opts: MboxOptions,
): Promise<{ file: Deno.FsFile; info: Deno.FileInfo }> {
  for (let attempt = 0; attempt < 2; attempt++) {
    let before: Deno.FileInfo | null = null;
    try {
      before = await Deno.lstat(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw openError("cannot open file", e);
    }
    if (before === null) {
      let file: Deno.FsFile;
      try {
        file = await withTimeout(
          Deno.open(path, { write: true, append: true, createNew: true, mode: 0o600 }),
          opts.openTimeoutMs,
        );
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists && attempt === 0) continue;
        throw openError("cannot create file exclusively", e);
      }
      if (opts.chown) {
        // The directory is root's alone (the caller checked), so the name cannot be swapped.
        await Deno.chown(path, opts.chown.uid, opts.chown.gid).catch((e) => {
          opts.warn?.(`${path}: cannot change file ownership: ${osErrorText(e)}`);
        });
      }
      return { file, info: await file.stat() };
    }
    return await openExisting(path, before, opts);
  }
  throw new MailboxError("cannot create file exclusively: File exists", "5.2.0");
}

async function openExisting(
  path: string,
  before: Deno.FileInfo,
  opts: MboxOptions,
): Promise<{ file: Deno.FsFile; info: Deno.FileInfo }> {
  if (before.isSymlink) {
    // Postfix trusts a symlink root owns (Solaris /dev); never a user's.
    if (before.uid !== 0) throw new MailboxError("file is a symbolic link", "5.2.0");
    const target = await Deno.stat(path).catch((e) => {
      throw openError("cannot open file", e);
    });
    if (!target.isFile) refuseSpecial(path);
  } else if (before.isDirectory) {
    throw new MailboxError("file is a directory", "5.2.0");
  } else if (!before.isFile) {
    refuseSpecial(path);
  }
  let file: Deno.FsFile;
  try {
    file = await withTimeout(Deno.open(path, { write: true, append: true }), opts.openTimeoutMs);
  } catch (e) {
    throw openError("cannot open file", e);
  }
  try {
    const info = await file.stat();
    if (info.nlink !== 1) {
      throw new MailboxError(`file has ${info.nlink} hard links`, "5.2.0");
    }
    if (info.isDirectory) throw new MailboxError("file is a directory", "5.2.0");
    let after: Deno.FileInfo;
    try {
      after = await Deno.lstat(path);
    } catch (e) {
      throw new MailboxError(`file status changed unexpectedly: ${osErrorText(e)}`, "5.2.0");
    }
    if (after.isSymlink && after.uid === 0) return { file, info };
    if (after.isSymlink) throw new MailboxError("file is a symbolic link", "5.2.0");
    if (
      after.dev !== info.dev || after.ino !== info.ino || after.nlink !== info.nlink ||
      after.mode !== info.mode
    ) {
      throw new MailboxError("file status changed unexpectedly", "5.2.0");
    }
    return { file, info };
  } catch (e) {
    file.close();
    throw e;
  }
}

/**
 * A path that is neither a regular file nor a directory. Postfix opens it
 * non-blocking and then says "is not a regular file"; Deno would block on
 * a FIFO, so this says it without opening.
 */
function refuseSpecial(path: string): never {
  throw new MailboxError(`destination ${path} is not a regular file`, "5.2.0");
}

/** FILE.lock, as Postfix's dot_lockfile(). */
async function dotLock(
  path: string,
  opts: MboxOptions,
  sleep: (ms: number) => Promise<void>,
): Promise<void> {
  const lock = `${path}.lock`;
  const attempts = Math.max(1, opts.lockAttempts ?? 20);
  const stale = opts.staleLockMs ?? 500_000;
  const now = opts.now ?? (() => new Date());
  for (let count = 1;; count++) {
    try {
      (await Deno.open(lock, { write: true, createNew: true, mode: 0 })).close();
      return;
    } catch (e) {
      const exists = e instanceof Deno.errors.AlreadyExists;
      if (count >= attempts || !exists) {
        throw new MailboxError(
          `unable to create lock file ${lock}: ${osErrorText(e)}`,
          exists ? "4.2.0" : mboxDsn(e, "5.2.0"),
          { cause: e },
        );
      }
    }
    await sleep(opts.lockDelayMs ?? 1000);
    try {
      const st = await Deno.lstat(lock);
      const changed = (st.ctime ?? st.mtime)?.getTime() ?? now().getTime();
      if (now().getTime() > changed + stale) await Deno.remove(lock);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new MailboxError(
          `unable to create lock file ${lock}: ${osErrorText(e)}`,
          mboxDsn(e, "5.2.0"),
        );
      }
    }
  }
}

/** An exclusive flock(2), tried as Postfix's deliver_flock() tries. */
async function flock(
  file: Deno.FsFile,
  opts: MboxOptions,
  sleep: (ms: number) => Promise<void>,
): Promise<void> {
  const attempts = Math.max(1, opts.lockAttempts ?? 20);
  for (let count = 1;; count++) {
    let got: boolean;
    try {
      got = await file.tryLock(true);
    } catch (e) {
      throw new MailboxError(
        `unable to lock for exclusive access: ${osErrorText(e)}`,
        mboxDsn(e, "5.2.0"),
      );
    }
    if (got) return;
    if (count >= attempts) {
      throw new MailboxError(
        "unable to lock for exclusive access: Resource temporarily unavailable",
        "4.2.0",
      );
    }
    await sleep(opts.lockDelayMs ?? 1000);
  }
}

function withTimeout<T>(p: Promise<T>, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // The blocked open finishes (or not) in the background; its file is closed then.
      p.then((f) => (f as { close?: () => void }).close?.(), () => {});
      reject(Object.assign(new Error("Resource temporarily unavailable"), { code: "EAGAIN" }));
    }, ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function openError(what: string, e: unknown): MailboxError {
  return new MailboxError(`${what}: ${osErrorText(e)}`, mboxDsn(e, "5.2.0"), { cause: e });
}

/** strerror(3) text of the errno names Deno reports in `code`. */
const STRERROR: Record<string, string> = {
  EACCES: "Permission denied",
  EPERM: "Operation not permitted",
  ENOENT: "No such file or directory",
  EEXIST: "File exists",
  EISDIR: "Is a directory",
  ENOTDIR: "Not a directory",
  ENOSPC: "No space left on device",
  EDQUOT: "Disk quota exceeded",
  EFBIG: "File too large",
  ENXIO: "No such device or address",
  ELOOP: "Too many levels of symbolic links",
  EROFS: "Read-only file system",
  EAGAIN: "Resource temporarily unavailable",
  EWOULDBLOCK: "Resource temporarily unavailable",
  ESTALE: "Stale file handle",
  EIO: "Input/output error",
  ENAMETOOLONG: "File name too long",
};

/** The errno name of an error, when the operating system gave one. */
export function errnoOf(e: unknown): string | undefined {
  for (let x = e; x instanceof Error; x = x.cause) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

/** Postfix's `%m`: the strerror text, else the error's own message without Deno's suffixes. */
export function osErrorText(e: unknown): string {
  const code = errnoOf(e);
  if (code && STRERROR[code]) return STRERROR[code];
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/ \(os error \d+\)/, "").replace(/: (open|stat|lstat|chown) '.*$/, "");
}

/**
 * Postfix's mbox_dsn(): try again (4.2.0), system full (4.3.0), mailbox
 * full (5.2.2), else the default. An error without an errno (the sandbox
 * refused, an internal failure) is 4.3.0: no retry is refused for it.
 */
export function mboxDsn(e: unknown, def: string): string {
  const code = errnoOf(e);
  if (code === undefined) return "4.3.0";
  if (code === "EAGAIN" || code === "EWOULDBLOCK" || code === "ESTALE") return "4.2.0";
  if (code === "ENOSPC") return "4.3.0";
  if (code === "EDQUOT" || code === "EFBIG") return "5.2.2";
  return def;
}
