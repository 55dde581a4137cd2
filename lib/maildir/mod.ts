/**
 * Maildir delivery for the local and virtual agents: the user name a local recipient maps to,
 * unique Maildir file names, and the durable write of one message into
 * `DIR/tmp/` then `DIR/new/` (https://cr.yp.to/proto/maildir.html).
 *
 * The written file starts with `Return-Path:`, `X-Original-To:` (when
 * given) and `Delivered-To:` lines
 * (addresses quoted as Postfix's quote_822_local() does, control
 * characters masked so no address can add a header line), then the
 * message with LF line ends, the way Postfix's local(8) writes a Maildir
 * file. The file is fsynced before it is renamed into `new/`, and
 * `new/` is fsynced after, so a message reported delivered survives a crash.
 *
 * For an agent running as root (virtual), {@link MaildirOptions} give
 * created folders and the file to the mailbox owner with lchown (never
 * following a link), call a guard on the folder before the file is
 * created and again before it is renamed, and cap the file size.
 *
 * Does not do mbox files (lib/mailbox/mbox.ts), quotas or Maildir++ folders.
 */
import { lchownSync } from "node:fs";
import { headerAddress } from "../address/mod.ts";
import { CrlfToLf } from "../smtp/client_codec.ts";
import { syncDir } from "../queue/mod.ts";

/** A recipient whose local part cannot name a mailbox. */
export class UnknownUserError extends Error {
  override readonly name = "UnknownUserError";
}

/**
 * The mailbox user of a local part: lowercased, with the address extension
 * removed at the first `recipient_delimiter` character (not at position 0).
 * Throws {@link UnknownUserError} for a name that is empty, starts with
 * ".", or holds "/" or a control character: such a name could escape the
 * spool directory or hide a file.
 */
export function mailboxUser(localPart: string, delimiters: string): string {
  let user = localPart.toLowerCase();
  if (delimiters) {
    for (let i = 1; i < user.length; i++) {
      if (delimiters.includes(user[i])) {
        user = user.slice(0, i);
        break;
      }
    }
  }
  // deno-lint-ignore no-control-regex
  if (user === "" || user.startsWith(".") || user.includes("/") || /[\x00-\x1f\x7f]/.test(user)) {
    throw new UnknownUserError(`unknown user: "${user}"`);
  }
  return user;
}

let counter = 0;

/**
 * A Maildir file name `TIME.PID_COUNTER.HOST`, unique per delivery in this
 * process. "/" and ":" in the host name are written as `\057` and `\072`
 * as the Maildir spec asks.
 */
export function maildirName(hostname: string, nowMs = Date.now(), pid = Deno.pid): string {
  const host = hostname.replaceAll("/", "\\057").replaceAll(":", "\\072");
  return `${Math.floor(nowMs / 1000)}.${pid}_${++counter}.${host}`;
}

const encoder = new TextEncoder();

/** What {@link writeMaildir} needs. */
export interface MaildirMessage {
  /** Envelope sender ("" for the null sender). */
  sender: string;
  /** The recipient address for Delivered-To. */
  recipient: string;
  /** The original recipient for X-Original-To (virtual, as Postfix 3.7 writes it); absent: none. */
  original?: string;
  /** The message in canonical CRLF form, streamed. */
  content: () => AsyncIterable<Uint8Array>;
}

/** How {@link writeMaildir} writes. */
export interface MaildirOptions {
  /** For Maildir file names. */
  hostname: string;
  /** Clock in ms. @default Date.now */
  now?: () => number;
  /** Give what is created (folders, the file) to this owner, by lchown. @default keep */
  owner?: { uid: number; gid: number };
  /** Throws when `dir` is not safe to write in; called before and after folders are made, and before the rename. */
  guard?: (dir: string) => Promise<void>;
  /** Largest file to write, in bytes; a bigger one fails with {@link MaildirTooBigError}. @default no limit */
  maxBytes?: number;
}

/** The message is larger than {@link MaildirOptions.maxBytes} (errno EFBIG, as Postfix's file size limit). */
export class MaildirTooBigError extends Error {
  override readonly name = "MaildirTooBigError";
  readonly code = "EFBIG";
}

/**
 * Writes one message into the Maildir at `dir` (created with mode 0700
 * when missing). Returns the path in `new/`. On failure the file in `tmp/`
 * is removed and the error is rethrown.
 */
export async function writeMaildir(
  dir: string,
  msg: MaildirMessage,
  opts: MaildirOptions,
): Promise<string> {
  await opts.guard?.(dir);
  await ensureMaildir(dir, opts.owner);
  await opts.guard?.(dir);
  const now = opts.now ?? Date.now;
  let name = "";
  let file: Deno.FsFile | null = null;
  for (let attempt = 0; file === null; attempt++) {
    name = maildirName(opts.hostname, now());
    try {
      file = await Deno.open(`${dir}/tmp/${name}`, { write: true, createNew: true, mode: 0o600 });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists) || attempt >= 5) {
        throw new Error(`create maildir file ${dir}/tmp/${name}: ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
  }
  const tmp = `${dir}/tmp/${name}`;
  const dest = `${dir}/new/${name}`;
  try {
    if (opts.owner) lchownSync(tmp, opts.owner.uid, opts.owner.gid);
    let size = 0;
    const write = async (bytes: Uint8Array) => {
      size += bytes.length;
      if (opts.maxBytes && size > opts.maxBytes) {
        throw new MaildirTooBigError("File too large");
      }
      await writeAll(file!, bytes);
    };
    await write(
      encoder.encode(
        `Return-Path: <${headerAddress(msg.sender)}>\n` +
          (msg.original !== undefined ? `X-Original-To: ${headerAddress(msg.original)}\n` : "") +
          `Delivered-To: ${headerAddress(msg.recipient)}\n`,
      ),
    );
    const lf = new CrlfToLf();
    for await (const chunk of msg.content()) await write(lf.push(chunk));
    await write(lf.end());
    await file.sync();
    file.close();
    file = null;
    await opts.guard?.(dir);
    await Deno.rename(tmp, dest);
    await syncDir(`${dir}/new`);
  } catch (e) {
    if (file) {
      try {
        file.close();
      } catch {
        // already closed
      }
    }
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`write maildir file ${tmp}: ${(e as Error).message}`, { cause: e });
  }
  return dest;
}

/** Creates DIR and DIR/{tmp,new,cur} as needed (given to `owner`), syncing parents of what was created. */
async function ensureMaildir(dir: string, owner?: { uid: number; gid: number }): Promise<void> {
  try {
    await Deno.stat(`${dir}/new`);
    await Deno.stat(`${dir}/tmp`);
    return;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new Error(`maildir ${dir}: ${(e as Error).message}`, { cause: e });
    }
  }
  try {
    let created = false;
    try {
      await Deno.stat(dir);
    } catch {
      if (owner) await mkdirsOwned(dir, owner);
      else await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      created = true;
    }
    for (const sub of ["tmp", "new", "cur"]) {
      const path = `${dir}/${sub}`;
      if (owner) await mkdirsOwned(path, owner);
      else await Deno.mkdir(path, { recursive: true, mode: 0o700 });
    }
    await syncDir(dir);
    if (created) await syncDir(dir.replace(/\/[^/]*$/, "") || "/");
  } catch (e) {
    throw new Error(`create maildir ${dir}: ${(e as Error).message}`, { cause: e });
  }
}

/** mkdir -p, each folder created given to `owner` (lchown: a link put in its place is not followed). */
async function mkdirsOwned(path: string, owner: { uid: number; gid: number }): Promise<void> {
  const missing: string[] = [];
  for (let p = path; p !== "/" && p !== ""; p = p.replace(/\/[^/]*$/, "") || "/") {
    try {
      await Deno.lstat(p);
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      missing.unshift(p);
    }
  }
  for (const p of missing) {
    try {
      await Deno.mkdir(p, { mode: 0o700 });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      continue;
    }
    lchownSync(p, owner.uid, owner.gid);
  }
}

async function writeAll(file: Deno.FsFile, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) off += await file.write(buf.subarray(off));
}
