/**
 * Maildir delivery for the local agent: the user name a recipient maps to,
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
 * A file over `sizeLimit` (mailbox_size_limit) fails with EFBIG, as the
 * file size limit Postfix's local sets makes it fail. Does not do mbox
 * files (lib/mailbox/mbox.ts), quotas or Maildir++ folders.
 */
import { headerAddress } from "../../lib/address/mod.ts";
import { CrlfToLf } from "../../lib/smtp/client_codec.ts";
import { syncDir } from "../../lib/queue/mod.ts";

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
  /** X-Original-To, when there is an original recipient (as Postfix's maildir.c writes it). */
  originalRecipient?: string;
  /** The message in canonical CRLF form, streamed. */
  content: () => AsyncIterable<Uint8Array>;
}

/**
 * Writes one message into the Maildir at `dir` (created with mode 0700
 * when missing). Returns the path in `new/`. On failure the file in `tmp/`
 * is removed and the error is rethrown.
 */
export async function writeMaildir(
  dir: string,
  msg: MaildirMessage,
  opts: { hostname: string; now?: () => number; sizeLimit?: number },
): Promise<string> {
  await ensureMaildir(dir);
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
    const lf = new CrlfToLf();
    // mailbox_size_limit caps each Maildir file, as Postfix's file size rlimit does (EFBIG).
    const limit = opts.sizeLimit ?? 0;
    let size = 0;
    const put = async (buf: Uint8Array) => {
      size += buf.length;
      if (limit > 0 && size > limit) {
        throw Object.assign(new Error("File too large"), { code: "EFBIG" });
      }
      await writeAll(file!, buf);
    };
    await put(
      encoder.encode(
        `Return-Path: <${headerAddress(msg.sender)}>\n` +
          (msg.originalRecipient
            ? `X-Original-To: ${headerAddress(msg.originalRecipient)}\n`
            : "") +
          `Delivered-To: ${headerAddress(msg.recipient)}\n`,
      ),
    );
    for await (const chunk of msg.content()) await put(lf.push(chunk));
    await put(lf.end());
    await file.sync();
    file.close();
    file = null;
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

/** Creates DIR and DIR/{tmp,new,cur} as needed, syncing parents of what was created. */
async function ensureMaildir(dir: string): Promise<void> {
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
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      created = true;
    }
    for (const sub of ["tmp", "new", "cur"]) {
      await Deno.mkdir(`${dir}/${sub}`, { recursive: true, mode: 0o700 });
    }
    await syncDir(dir);
    if (created) await syncDir(dir.replace(/\/[^/]*$/, "") || "/");
  } catch (e) {
    throw new Error(`create maildir ${dir}: ${(e as Error).message}`, { cause: e });
  }
}

async function writeAll(file: Deno.FsFile, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) off += await file.write(buf.subarray(off));
}
