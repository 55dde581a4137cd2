/**
 * Mailbox delivery for the local agent, as Postfix's src/local/mailbox.c:
 * where a user's mail goes and with whose rights it is written.
 *
 * Where (first that applies): home_mailbox ending in "/" is a Maildir
 * under the user's home directory; another home_mailbox an mbox file
 * there; mail_spool_directory ending in "/" a Maildir
 * `$mail_spool_directory/USER/`; otherwise the mbox file
 * `$mail_spool_directory/USER` (lib/mailbox/mbox.ts: locks, format,
 * limits). Before all of them, mailbox_command (not $name-expanded, as in
 * Postfix) runs with the recipient's rights (special.ts, command.ts).
 * mailbox_command_maps is not implemented: the configuration check refuses
 * a value for it. With mailbox_transport set, local.ts hands the mailbox
 * delivery to that agent (pass.ts) and this module is not reached.
 *
 * Whose rights: the user is looked up in /etc/passwd (lib/passwd). When
 * the agent runs as root (master started as root), a user without an
 * account is unknown (the caller applies luser_relay or bounces 5.1.1 as
 * Postfix's unknown.c), and every write is made by the recipient, as
 * Postfix does with set_eugid(): Maildirs and home directories always as
 * the user; an mbox in the spool as the user when the spool directory is
 * world-writable, as the user with the directory's group when it is
 * group-writable, and otherwise by root, who creates the file and gives it
 * to the user. "As the user" is a short-lived process with the user's uid
 * and gid and write access to that one mailbox only ({@link Writer},
 * privilege.ts). strict_mailbox_ownership then defers (4.2.0) an mbox the
 * user does not own.
 *
 * Not as root (a development instance), every write is made by the user
 * the instance runs as. home_mailbox still needs the account (for its home
 * directory); spool mailboxes do not, so names that are not accounts of
 * this machine get spool mailboxes, as Postwarden always did, and
 * strict_mailbox_ownership is not applied (every file is the instance
 * user's). A mailbox this user may not write is deferred (4.2.0, with a
 * warning that local does not run as root), not bounced as Postfix's
 * root local would: the recipient is not at fault.
 *
 * Outcomes as Postfix logs them: "delivered to mailbox" / "delivered to
 * maildir"; an mbox failure "cannot update mailbox PATH for user USER.
 * REASON" (4.x.x deferred, 5.x.x bounced); a Maildir failure "maildir
 * delivery failed: ..." with the DSN of its errno; mailbox_size_limit
 * smaller than message_size_limit (or message_size_limit = 0 with a
 * mailbox limit) defers everything (Postfix's local will not start so);
 * a passwd file that cannot be read defers 4.0.0 "user lookup error".
 *
 * Address verification ({@link MailboxEnv.verify}): every check above is
 * made, the passwd lookup included, and in place of the write the
 * outcome says where the mail would go, as Postfix's local: "delivers to
 * mailbox", "delivers to maildir", or mailbox_command's "delivers to
 * command: COMMAND" (special.ts).
 *
 * Parameters: home_mailbox, mail_spool_directory, mailbox_delivery_lock,
 * mailbox_size_limit, message_size_limit, deliver_lock_attempts,
 * deliver_lock_delay, stale_lock_time, strict_mailbox_ownership,
 * myhostname (Maildir file names).
 *
 * @module
 */
import { failureStatus } from "../../lib/outcome/mod.ts";
import type { Config } from "../../lib/config/mod.ts";
import { splitOrcpt } from "../../lib/dsn/mod.ts";
import {
  deliverMbox,
  errnoOf,
  MailboxError,
  type MboxMessage,
  type MboxOptions,
  parseMailboxLocks,
} from "../../lib/mailbox/mbox.ts";
import type { PasswdEntry, PasswdFile } from "../../lib/passwd/mod.ts";
import type { MailboxDelivery, Outcome, SpecialDelivery } from "./alias.ts";
import {
  mailboxUser,
  type MaildirMessage,
  type MaildirOptions,
  UnknownUserError,
  writeMaildir,
} from "../../lib/maildir/mod.ts";
import { type ForwardRead, readForward, readInclude } from "./user_files.ts";

/** A mailbox outcome, or "unknown" when the user has no account where one is needed. */
export type MailboxResult = Omit<Outcome, "address" | "orcpt"> | "unknown";

/** The uid and gid to write as. */
export interface Identity {
  uid: number;
  gid: number;
}

/**
 * Who performs a mailbox write: this process (`as` null) or a process
 * with the recipient's uid and gid.
 */
export interface Writer {
  /** Appends to an mbox file. @throws {MailboxError} */
  mbox(path: string, msg: MboxMessage, opts: MboxOptions, as: Identity | null): Promise<void>;
  /** Writes one Maildir file; rethrows the file system error. */
  maildir(
    dir: string,
    msg: {
      sender: string;
      recipient: string;
      originalRecipient?: string;
      content: MboxMessage["content"];
    },
    opts: { hostname: string; now: () => number; sizeLimit?: number },
    as: Identity | null,
  ): Promise<void>;
  /** Reads the first .forward of `paths` for the user `uid` (user_files.ts). */
  readForward(paths: string[], uid: number, as: Identity | null): Promise<ForwardRead>;
  /** Reads an :include: file. @throws {IncludeError} */
  readInclude(path: string, as: Identity | null): Promise<{ content: string; uid: number }>;
}

/** The message as lib/maildir takes it: X-Original-To only for a non-empty original recipient. */
export function maildirMessage(msg: Parameters<Writer["maildir"]>[1]): MaildirMessage {
  return {
    sender: msg.sender,
    recipient: msg.recipient,
    original: msg.originalRecipient || undefined,
    content: msg.content,
  };
}

/** lib/maildir's options: mailbox_size_limit (0: none) caps the file (EFBIG, 5.2.2). */
export function maildirOptions(opts: Parameters<Writer["maildir"]>[2]): MaildirOptions {
  return {
    hostname: opts.hostname,
    now: opts.now,
    maxBytes: opts.sizeLimit && opts.sizeLimit > 0 ? opts.sizeLimit : undefined,
  };
}

/** Writes in this process, as the user it runs as. */
export const inProcessWriter: Writer = {
  mbox: (path, msg, opts) => deliverMbox(path, msg, opts),
  maildir: async (dir, msg, opts) => {
    await writeMaildir(dir, maildirMessage(msg), maildirOptions(opts));
  },
  readForward: (paths, uid) => readForward(paths, uid),
  readInclude: (path) => readInclude(path),
};

/** What mailbox delivery needs besides the recipient. */
export interface MailboxEnv {
  config: Config;
  /** The user database (/etc/passwd). */
  passwd: PasswdFile;
  /** The agent runs as root: write as the recipient. */
  root: boolean;
  writer: Writer;
  /** The message in canonical CRLF form. */
  content: () => AsyncIterable<Uint8Array>;
  now: () => number;
  warn: (message: string) => void;
  /** Address verification: nothing is written, the outcome says where it would be. */
  verify?: boolean;
  /** Runs mailbox_command with the recipient's rights (special.ts). */
  command?: (
    d: SpecialDelivery & { command: string },
  ) => Promise<Omit<Outcome, "address" | "orcpt">>;
}

/** Delivers to the user's mailbox; "unknown" when the user has no account and needs one. */
export async function deliverToMailbox(
  env: MailboxEnv,
  m: MailboxDelivery & { orcpt?: string },
): Promise<MailboxResult> {
  const c = env.config;
  let user: string;
  try {
    user = mailboxUser(m.user, "");
  } catch (e) {
    if (!(e instanceof UnknownUserError)) throw e;
    return { status: "bounced", dsn: "5.1.1", reason: e.message };
  }
  const sizeLimit = c.size("mailbox_size_limit");
  const messageLimit = c.size("message_size_limit");
  // Postfix's local will not start with this (0 is no message limit at all).
  if (sizeLimit > 0 && (sizeLimit < messageLimit || messageLimit === 0)) {
    const reason = "main.cf configuration error: mailbox_size_limit is smaller than " +
      "message_size_limit";
    env.warn(reason);
    return { status: "deferred", dsn: "4.3.0", reason };
  }
  const home = c.str("home_mailbox");
  const spool = c.str("mail_spool_directory");
  const command = (c.raw("mailbox_command") ?? "").trim();
  let account: PasswdEntry | null = null;
  if (env.root || home !== "" || command !== "") {
    account = env.passwd.byName(user);
    if (env.passwd.error) {
      env.warn(`error looking up passwd info for ${user}: ${env.passwd.error.message}`);
      return { status: "deferred", dsn: "4.0.0", reason: "user lookup error" };
    }
    if (!account) return "unknown";
  }
  const as: Identity | null = env.root && account ? { uid: account.uid, gid: account.gid } : null;

  if (command !== "") {
    if (!env.command) {
      return { status: "deferred", dsn: "4.3.0", reason: "mailbox_command is not supported here" };
    }
    return await env.command({
      address: m.address,
      sender: m.sender,
      delivered: m.delivered,
      orcpt: m.orcpt,
      account: account!.name,
      command,
    });
  }

  if (home !== "") {
    const path = `${account!.home.replace(/\/+$/, "")}/${home}`;
    return home.endsWith("/")
      ? await maildir(env, path, m, as)
      : await mbox(env, path, user, m, { as, chown: undefined, account });
  }
  if (spool.endsWith("/")) return await maildir(env, `${spool}${user}`, m, as);
  const path = `${spool.replace(/\/+$/, "")}/${user}`;
  if (!env.root || !account) return await mbox(env, path, user, m, { as: null, account: null });
  return await mbox(env, path, user, m, { ...(await spoolRights(spool, account)), account });
}

/**
 * Postfix's rule for the spool: write as the user when the directory is
 * world-writable (or cannot be examined), as the user with the
 * directory's group when it is group-writable, else as root with the new
 * file given to the user.
 */
async function spoolRights(
  spool: string,
  account: PasswdEntry,
): Promise<{ as: Identity | null; chown?: Identity }> {
  const user = { uid: account.uid, gid: account.gid };
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(spool);
  } catch {
    return { as: user };
  }
  const mode = st.mode ?? 0;
  if (mode & 0o002) return { as: user };
  if (mode & 0o020) return { as: { uid: account.uid, gid: st.gid ?? account.gid } };
  return { as: null, chown: user };
}

async function mbox(
  env: MailboxEnv,
  path: string,
  user: string,
  m: MailboxDelivery & { orcpt?: string },
  rights: { as: Identity | null; chown?: Identity; account: PasswdEntry | null },
): Promise<MailboxResult> {
  const c = env.config;
  const sizeLimit = c.size("mailbox_size_limit");
  try {
    const opts: MboxOptions = {
      locks: parseMailboxLocks(c.str("mailbox_delivery_lock")),
      sizeLimit,
      lockAttempts: c.int("deliver_lock_attempts"),
      lockDelayMs: c.time("deliver_lock_delay") * 1000,
      staleLockMs: c.time("stale_lock_time") * 1000,
      chown: rights.chown,
      owner: env.root && rights.account && c.bool("strict_mailbox_ownership")
        ? rights.account.uid
        : undefined,
      now: () => new Date(env.now()),
      warn: env.warn,
    };
    if (env.verify) return { status: "sent", dsn: "2.0.0", reason: "delivers to mailbox" };
    await env.writer.mbox(
      path,
      {
        sender: m.sender,
        originalRecipient: originalRecipient(m),
        delivered: m.delivered,
        content: env.content,
      },
      opts,
      rights.as,
    );
    return { status: "sent", dsn: "2.0.0", reason: "delivered to mailbox" };
  } catch (e) {
    if (!(e instanceof MailboxError)) throw e;
    if (e.message.startsWith("mailbox_delivery_lock:")) {
      env.warn(e.message);
      return { status: "deferred", dsn: e.dsn, reason: e.message };
    }
    const reason = `cannot update mailbox ${path} for user ${user}. ${e.message}`;
    const code = errnoOf(e);
    if (!env.root && (code === "EACCES" || code === "EPERM")) {
      // Not the recipient's doing: this local lacks the rights Postfix's local has.
      env.warn(
        `${reason}: local does not run as root (master.cf unprivileged = n), so it cannot ` +
          "write mailboxes as their users",
      );
      return { status: "deferred", dsn: "4.2.0", reason };
    }
    return { status: failureStatus(e.dsn), dsn: e.dsn, reason };
  }
}

async function maildir(
  env: MailboxEnv,
  dir: string,
  m: MailboxDelivery,
  as: Identity | null,
): Promise<MailboxResult> {
  if (env.verify) return { status: "sent", dsn: "2.0.0", reason: "delivers to maildir" };
  try {
    await env.writer.maildir(
      dir,
      {
        sender: m.sender,
        recipient: m.delivered,
        originalRecipient: originalRecipient(m),
        content: env.content,
      },
      {
        hostname: env.config.str("myhostname"),
        now: env.now,
        sizeLimit: env.config.size("mailbox_size_limit"),
      },
      as,
    );
    return { status: "sent", dsn: "2.0.0", reason: "delivered to maildir" };
  } catch (e) {
    return { ...maildirFailure(e), reason: `maildir delivery failed: ${(e as Error).message}` };
  }
}

/** X-Original-To: the queue file's original recipient; a DSN ORCPT is the client's claim. */
function originalRecipient(m: MailboxDelivery & { orcpt?: string }): string {
  return m.orcpt && !splitOrcpt(m.orcpt) ? m.orcpt : m.delivered;
}

/** File system errors about the name itself: the mailbox can never exist under it. */
const BAD_NAME_ERRORS = new Set(["ENAMETOOLONG", "EILSEQ", "EINVAL"]);
/** Postfix's MBOX_FULL_ERROR: the mailbox or the message is over its limit. */
const MAILBOX_FULL_ERRORS = new Set(["EDQUOT", "EFBIG"]);

/** Bounce or defer a failed Maildir delivery, and with which DSN code. */
function maildirFailure(e: unknown): Pick<Outcome, "status" | "dsn"> {
  const code = errnoOf(e);
  if (code && BAD_NAME_ERRORS.has(code)) return { status: "bounced", dsn: "5.1.1" };
  if (code && MAILBOX_FULL_ERRORS.has(code)) return { status: "bounced", dsn: "5.2.2" };
  return { status: "deferred", dsn: isPermissionError(e) ? "4.2.0" : "4.3.0" };
}

/** EACCES or EPERM anywhere in the error's cause chain. */
function isPermissionError(e: unknown): boolean {
  for (let x = e; x instanceof Error; x = x.cause) {
    if (x instanceof Deno.errors.PermissionDenied) return true;
    const code = (x as { code?: unknown }).code;
    if (code === "EACCES" || code === "EPERM") return true;
  }
  return false;
}
