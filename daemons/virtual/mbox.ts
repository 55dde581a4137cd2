/**
 * virtual(8)'s mbox delivery: appends one message to a mailbox file under
 * virtual_mailbox_base, as Postfix's mail_copy() with MAIL_COPY_MBOX
 * writes it (`From ` line, Return-Path:, X-Original-To:, Delivered-To:,
 * ">From " quoting, a blank line after; checked against a live Postfix
 * 3.7), fsynced, and cut back to its old size when
 * anything fails, so a reader never sees half a message left behind.
 *
 * Locks (virtual_mailbox_lock): `dotlock` (FILE.lock created exclusively,
 * removed after; one older than 500s is stale and removed, as Postfix's
 * stale_lock_time) and `flock`. `fcntl` (Postfix's default, with dotlock)
 * is not available: Deno has no POSIX record locks, and flock() does not
 * exclude a reader that takes fcntl locks. A setting naming fcntl defers
 * the mail with a reason saying to use `dotlock` (which Dovecot's mbox
 * writers also take) or `flock, dotlock`, never appends unlocked.
 *
 * Safety as for Maildirs (virtual.ts): no symbolic link is followed below
 * the base; the mailbox must be a regular file with one link, owned by
 * the mapped uid when this agent runs as root (a new one is created for
 * it, mode 0600, and given with lchown); the opened file must be the one
 * checked. The parent folder must exist (Postfix's virtual does not create
 * it for mbox files either).
 *
 * Does not do: `mailbox_size_limit`-style quotas beyond
 * virtual_mailbox_limit (the largest the file may grow to).
 */
import { lchownSync } from "node:fs";
import { envelopeLines, LineCopier } from "../../lib/deliver/mail_copy.ts";

/** The message to append. */
export interface MboxMessage {
  sender: string;
  recipient: string;
  /** For X-Original-To. */
  original: string;
  content: () => AsyncIterable<Uint8Array>;
}

/** How {@link appendMbox} works. */
export interface MboxOptions {
  /** virtual_mailbox_lock, as listed. */
  locks: string[];
  /** Give a new file to this owner (and require it of an old one). */
  owner?: { uid: number; gid: number };
  /** Largest the file may grow to, in bytes. @default no limit */
  maxBytes?: number;
  /** Throws when the mailbox's folder is not safe (virtual.ts noLinksBelow). */
  guard: () => Promise<void>;
  /** @default Date.now */
  now?: () => number;
  /** Dotlock attempts, one a second (Postfix's deliver_lock_attempts). @default 20 */
  lockAttempts?: number;
}

/** The mailbox cannot be locked as configured; nothing was written. */
export class MboxLockError extends Error {
  override readonly name = "MboxLockError";
}

/** The mailbox would grow over virtual_mailbox_limit (errno EFBIG, as Postfix's file size limit). */
export class MboxTooBigError extends Error {
  override readonly name = "MboxTooBigError";
  readonly code = "EFBIG";
}

/** The lock kinds this agent can take, and why not the others. */
export function lockProblem(locks: string[]): string | null {
  for (const l of locks) {
    if (l === "fcntl") {
      return "virtual_mailbox_lock = fcntl is not supported (Deno has no fcntl locks); " +
        "use dotlock, or flock, dotlock";
    }
    if (l !== "dotlock" && l !== "flock") return `virtual_mailbox_lock: unknown lock type ${l}`;
  }
  return null;
}

/** Postfix's stale_lock_time. */
const STALE_LOCK_MS = 500_000;

/** Appends the message to the mbox file at `path`. */
export async function appendMbox(path: string, msg: MboxMessage, opts: MboxOptions): Promise<void> {
  const problem = lockProblem(opts.locks);
  if (problem) throw new MboxLockError(problem);
  const now = opts.now ?? Date.now;
  await opts.guard();
  const dotlock = opts.locks.includes("dotlock") ? await takeDotlock(path, opts, now) : null;
  try {
    const file = await openMailbox(path, opts);
    try {
      if (opts.locks.includes("flock")) await file.lock(true);
      await opts.guard();
      const start = (await file.stat()).size;
      try {
        let size = start;
        const write = async (bytes: Uint8Array) => {
          size += bytes.length;
          if (opts.maxBytes && size > opts.maxBytes) throw new MboxTooBigError("File too large");
          for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
        };
        const flags = new Set("FROD>B");
        await write(envelopeLines({
          sender: msg.sender,
          recipient: msg.recipient,
          original: msg.original,
          flags,
          eol: "\n",
          now: new Date(now()),
        }));
        const copier = new LineCopier({ flags, eol: "\n" });
        for await (const chunk of msg.content()) {
          for (const out of copier.push(chunk)) await write(out);
        }
        for (const out of copier.end()) await write(out);
        await file.sync();
      } catch (e) {
        // Cut the mailbox back: no partial message stays behind.
        await file.truncate(start).catch(() => {});
        await file.sync().catch(() => {});
        throw e;
      }
    } finally {
      file.close();
    }
  } finally {
    if (dotlock) await Deno.remove(dotlock).catch(() => {});
  }
}

/** Opens the mailbox for appending: an existing regular file checked, or a new one made. */
async function openMailbox(path: string, opts: MboxOptions): Promise<Deno.FsFile> {
  let before: Deno.FileInfo | null = null;
  try {
    before = await Deno.lstat(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (before?.isSymlink) throw new Error(`${path} is a symbolic link; refusing to open it`);
  if (before && !before.isFile) throw new Error(`${path} is not a regular file`);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(
      path,
      before ? { append: true } : { append: true, createNew: true, mode: 0o600 },
    );
  } catch (e) {
    throw new Error(`cannot open file ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = await file.stat();
    if (before && (st.ino !== before.ino || st.dev !== before.dev)) {
      throw new Error(`${path} changed while it was opened; refusing to use it`);
    }
    if (!st.isFile) throw new Error(`${path} is not a regular file`);
    if (st.nlink !== 1) throw new Error(`${path} has ${st.nlink} hard links; refusing to use it`);
    if (opts.owner) {
      if (!before) lchownSync(path, opts.owner.uid, opts.owner.gid);
      else if (st.uid !== opts.owner.uid) {
        throw new Error(`${path} is owned by uid ${st.uid}, not ${opts.owner.uid}`);
      }
    }
  } catch (e) {
    file.close();
    throw e;
  }
  return file;
}

/** Creates PATH.lock exclusively, waiting a second between tries; the lock's path. */
async function takeDotlock(path: string, opts: MboxOptions, now: () => number): Promise<string> {
  const lock = `${path}.lock`;
  const attempts = opts.lockAttempts ?? 20;
  for (let i = 0; i < attempts; i++) {
    try {
      const f = await Deno.open(lock, { write: true, createNew: true, mode: 0o600 });
      f.close();
      return lock;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) {
        throw new MboxLockError(`unable to create lock file ${lock}: ${(e as Error).message}`);
      }
    }
    const st = await Deno.lstat(lock).catch(() => null);
    if (st?.mtime && now() - st.mtime.getTime() > STALE_LOCK_MS) {
      await Deno.remove(lock).catch(() => {});
      continue;
    }
    if (i + 1 < attempts) await new Promise((r) => setTimeout(r, 1000));
  }
  throw new MboxLockError(`unable to lock ${path} for exclusive access: ${lock} exists`);
}
