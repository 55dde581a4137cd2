/**
 * Commands and files for the local agent: whose rights they run with,
 * their environment, and the file appends (Postfix's src/local/command.c
 * and file.c; the command itself is command.ts).
 *
 * Rights, as Postfix's usr_attr: a .forward's entries (and
 * mailbox_command) run as the recipient's account; alias entries as
 * default_privs (Postfix does so for a root-owned alias database;
 * Postwarden's tables have no owner to go by, so aliases always get
 * default_privs); a uid or gid 0 (mail for root) becomes default_privs'
 * too, as in Postfix, and a privileged default_privs is refused.
 *
 * When local does not run as root, everything runs as the user it runs
 * as, which is right for an instance that one user runs for themselves.
 * But when that user is mail_owner (master started as root, local left
 * unprivileged in master.cf), a command or file named by a user's
 * .forward or an alias would run with the queue owner's rights, so it is
 * deferred (4.3.0) with a reason that says to run local as root (master.cf
 * unprivileged = n) instead.
 *
 * Files: `/dev/null` is delivered without a write; a path ending in "/"
 * is a Maildir; any other path is appended to in mbox format with the
 * mbox locks (lib/mailbox/mbox.ts), as the rights' user through the
 * recipient writer when local is root. A file outside what local's
 * sandbox allows is deferred with the sandbox's reason when local is not
 * root. Outcomes: "delivered to file: PATH", "cannot append message to
 * file PATH: REASON" (4.x.x deferred, 5.x.x bounced).
 *
 * Address verification ({@link SpecialEnv.verify}): whose rights, and
 * command_execution_directory, are worked out as for a delivery (a
 * failure is reported as a delivery reports it), then nothing is run or
 * written: "delivers to command: COMMAND", "delivers to file: PATH", as
 * Postfix's local says (which asks less: it skips the rights).
 *
 * Parameters: default_privs, mail_owner, local_command_shell,
 * command_time_limit, command_execution_directory,
 * command_expansion_filter, execution_directory_expansion_filter,
 * export_environment, prepend_delivered_header, recipient_delimiter,
 * mailbox_delivery_lock and the other mbox parameters (mailbox.ts).
 *
 * @module
 */
import { capturing } from "../../lib/deliver/capture.ts";
import { failureStatus } from "../../lib/outcome/mod.ts";
import { splitAddress, splitExtension } from "../../lib/address/mod.ts";
import { type Config, configPath } from "../../lib/config/mod.ts";
import { ConfigError } from "../../lib/config/errors.ts";
import { splitOrcpt } from "../../lib/dsn/mod.ts";
import { MailboxError, parseMailboxLocks } from "../../lib/mailbox/mbox.ts";
import type { PasswdEntry, PasswdFile } from "../../lib/passwd/mod.ts";
import type { Outcome, SpecialDelivery } from "./alias.ts";
import { type CommandOutcome, deliverCommand } from "./command.ts";
import { type LocalAttributes, localExpand, recipientAttributes } from "./expand.ts";
import type { Identity, Writer } from "./mailbox.ts";

/** What commands and files need from the host. */
export interface SpecialEnv {
  config: Config;
  passwd: PasswdFile;
  /** local runs as root. */
  root: boolean;
  writer: Writer;
  content: () => AsyncIterable<Uint8Array>;
  now: () => number;
  warn: (message: string) => void;
  /** The uid this process runs as. @default Deno.uid() */
  uid?: number;
  /** Reads an environment variable of this process (export_environment). @default Deno.env.get */
  getenv?: (name: string) => string | undefined;
  /** Address verification: nothing is run or written, the outcome says what would be. */
  verify?: boolean;
}

type Result = Omit<Outcome, "address" | "orcpt">;

/** The rights a command or file runs with. */
export interface Rights {
  /** The uid/gid to switch to, or null for this process's own. */
  as: Identity | null;
  /** The account whose home and shell the environment names (null for default_privs). */
  account: PasswdEntry | null;
}

/** Resolves whose rights apply; a Result when it must not run at all. */
export function rightsFor(env: SpecialEnv, account: string | null): Rights | Result {
  const c = env.config;
  if (!env.root) {
    const uid = env.uid ?? Deno.uid() ?? -1;
    const me = env.passwd.byUid(uid);
    if (env.passwd.error) {
      // Without the accounts, whether this is the mail owner is unknown: fail closed.
      env.warn(`error looking up passwd info for uid ${uid}: ${env.passwd.error.message}`);
      return { status: "deferred", dsn: "4.0.0", reason: "user lookup error" };
    }
    if (me && me.name === c.str("mail_owner")) {
      const reason = "delivery to commands and files as the mail owner is not supported: " +
        "run local as root (master.cf unprivileged = n)";
      env.warn(reason);
      return { status: "deferred", dsn: "4.3.0", reason };
    }
    return { as: null, account: account === null ? null : env.passwd.byName(account) };
  }
  const own = account === null ? null : env.passwd.byName(account);
  if (account !== null && !own) {
    env.warn(`unknown user: ${account}`);
    return { status: "deferred", dsn: "4.3.0", reason: "mail system configuration error" };
  }
  // As command.c: root's (uid or gid 0) rights become default_privs'.
  let uid = own?.uid ?? 0;
  let gid = own?.gid ?? 0;
  if (uid === 0 || gid === 0) {
    const privs = c.str("default_privs");
    const dp = env.passwd.byName(privs);
    if (!dp || dp.uid === 0 || dp.gid === 0) {
      env.warn(
        dp ? `default_privs: privileged user ${privs}` : `default_privs: unknown user ${privs}`,
      );
      return { status: "deferred", dsn: "4.3.0", reason: "mail system configuration error" };
    }
    if (uid === 0) uid = dp.uid;
    if (gid === 0) gid = dp.gid;
  }
  return { as: { uid, gid }, account: own };
}

/** The recipient user of an address: its local part folded, without extension. */
function userOf(address: string, delimiters: string): string {
  const local = splitAddress(address).local.toLowerCase();
  return splitExtension(local, delimiters).user;
}

/** The original recipient for X-Original-To and ORIGINAL_RECIPIENT. */
function originalOf(d: SpecialDelivery): string {
  return d.orcpt && !splitOrcpt(d.orcpt) ? d.orcpt : d.delivered;
}

/**
 * The environment of a command: export_environment, PATH, then the
 * recipient attributes, each value through command_expansion_filter.
 */
export function commandEnvironment(
  env: Pick<SpecialEnv, "config" | "getenv">,
  d: SpecialDelivery,
  account: PasswdEntry | null,
): Record<string, string> {
  const c = env.config;
  const filter = c.str("command_expansion_filter");
  const clean = (v: string) => [...v].map((ch) => (filter.includes(ch) ? ch : "_")).join("");
  const out: Record<string, string> = {};
  const getenv = env.getenv ?? ((n: string) => Deno.env.get(n));
  for (const name of c.list("export_environment")) {
    const [k, ...rest] = name.split("=");
    const v = rest.length ? rest.join("=") : getenv(k);
    if (v !== undefined && /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && !v.includes("\0")) out[k] = v;
  }
  out.PATH = "/usr/bin:/bin";
  const user = userOf(d.address, c.str("recipient_delimiter"));
  const attrs = recipientAttributes(d.address, c.str("recipient_delimiter"), account, user);
  const add = (k: string, v: string | undefined) => {
    if (v !== undefined && v !== "") out[k] = clean(v);
  };
  add("HOME", account?.home);
  out.LOGNAME = clean(user);
  out.USER = clean(user);
  out.SENDER = clean(d.sender);
  out.RECIPIENT = clean(d.address);
  out.LOCAL = clean(attrs.local);
  add("SHELL", account?.shell);
  add("DOMAIN", attrs.domain);
  add("EXTENSION", attrs.extension);
  add("ORIGINAL_RECIPIENT", originalOf(d));
  return out;
}

/** Delivers to a command with the rights of `d.account` (default_privs when null). */
export async function deliverToCommand(
  env: SpecialEnv,
  d: SpecialDelivery & { command: string },
): Promise<Result> {
  const rights = rightsFor(env, d.account);
  if ("status" in rights) return rights;
  const c = env.config;
  // "The current working directory is the mail queue directory" (local(8)),
  // unless command_execution_directory names another.
  let cwd = configPath(c, "queue_directory");
  const dirTemplate = c.raw("command_execution_directory") ?? "";
  if (dirTemplate.trim() !== "") {
    try {
      const user = userOf(d.address, c.str("recipient_delimiter"));
      cwd = localExpand(
        dirTemplate.trim(),
        recipientAttributes(d.address, c.str("recipient_delimiter"), rights.account, user),
        c.str("execution_directory_expansion_filter"),
      );
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      env.warn(`bad parameter value syntax for command_execution_directory: ${dirTemplate}`);
      return { status: "deferred", dsn: "4.3.5", reason: "mail system configuration error" };
    }
  }
  if (env.verify) {
    return { status: "sent", dsn: "2.0.0", reason: `delivers to command: ${d.command}` };
  }
  if (capturing(c)) {
    return { status: "sent", dsn: "2.0.0", reason: `captured: would run command: ${d.command}` };
  }
  const out: CommandOutcome = await deliverCommand({
    command: d.command,
    shell: c.str("local_command_shell"),
    cwd,
    env: commandEnvironment(env, d, rights.account),
    timeLimitMs: c.time("command_time_limit") * 1000,
    as: rights.as,
    sender: d.sender,
    originalRecipient: originalOf(d),
    delivered: prependsDelivered(c, "command") ? d.delivered : undefined,
    content: env.content,
    now: () => new Date(env.now()),
  });
  return out;
}

/** Appends to a file (or writes a Maildir) with the rights of `d.account`. */
export async function deliverToFile(
  env: SpecialEnv,
  d: SpecialDelivery & { path: string },
): Promise<Result> {
  const verified: Result = { status: "sent", dsn: "2.0.0", reason: `delivers to file: ${d.path}` };
  if (d.path === "/dev/null") {
    if (env.verify) return verified;
    return { status: "sent", dsn: "2.0.0", reason: "delivered to file: /dev/null" };
  }
  const rights = rightsFor(env, d.account);
  if ("status" in rights) return rights;
  if (env.verify) return verified;
  const c = env.config;
  if (capturing(c)) {
    return { status: "sent", dsn: "2.0.0", reason: `captured: would deliver to file: ${d.path}` };
  }
  if (d.path.endsWith("/")) {
    try {
      await env.writer.maildir(
        d.path.replace(/\/+$/, ""),
        {
          sender: d.sender,
          recipient: d.delivered,
          originalRecipient: originalOf(d),
          content: env.content,
        },
        { hostname: c.str("myhostname"), now: env.now },
        rights.as,
      );
      return { status: "sent", dsn: "2.0.0", reason: "delivered to maildir" };
    } catch (e) {
      return {
        status: "deferred",
        dsn: "4.3.0",
        reason: `maildir delivery failed: ${(e as Error).message}`,
      };
    }
  }
  try {
    await env.writer.mbox(d.path, {
      sender: d.sender,
      originalRecipient: originalOf(d),
      delivered: prependsDelivered(c, "file") ? d.delivered : undefined,
      content: env.content,
    }, {
      locks: parseMailboxLocks(c.str("mailbox_delivery_lock")),
      sizeLimit: c.size("mailbox_size_limit"),
      lockAttempts: c.int("deliver_lock_attempts"),
      lockDelayMs: c.time("deliver_lock_delay") * 1000,
      staleLockMs: c.time("stale_lock_time") * 1000,
      now: () => new Date(env.now()),
      warn: env.warn,
    }, rights.as);
    return { status: "sent", dsn: "2.0.0", reason: `delivered to file: ${d.path}` };
  } catch (e) {
    if (!(e instanceof MailboxError)) throw e;
    return {
      status: failureStatus(e.dsn),
      dsn: e.dsn,
      reason: `cannot append message to file ${d.path}: ${e.message}`,
    };
  }
}

/** prepend_delivered_header lists this class (command, file, forward). */
function prependsDelivered(c: Config, what: string): boolean {
  return c.list("prepend_delivered_header").map((x) => x.toLowerCase()).includes(what);
}

/** A user's .forward, ready to expand. */
export interface ForwardFound {
  path: string;
  content: string;
  /** The recipient's account name: the rights for what the file names. */
  account: string;
  /** The recipient's home directory, for `~/file` entries. */
  home: string;
}

/**
 * The .forward file of `user` (forward_path, first that exists), or null
 * when there is none, the user has no account, or the file is unusable
 * (warned). Not as root, only the instance user's own .forward is read:
 * nobody else's mail can be delivered with their rights.
 */
export async function forwardFor(
  env: SpecialEnv,
  address: string,
  user: string,
): Promise<ForwardFound | null | Result> {
  const c = env.config;
  const template = (c.raw("forward_path") ?? "").trim();
  if (template === "") return null;
  const account = env.passwd.byName(user);
  if (!account) return null;
  if (!env.root && account.uid !== (env.uid ?? Deno.uid())) return null;
  const attrs = recipientAttributes(address, c.str("recipient_delimiter"), account, user);
  const filter = c.str("forward_expansion_filter");
  const paths: string[] = [];
  for (const item of template.split(/[, \t\r\n]+/).filter(Boolean)) {
    if (usesUndefined(item, attrs)) continue;
    try {
      paths.push(localExpand(item, attrs, filter));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      env.warn(`bad parameter value syntax for forward_path: ${item}`);
    }
  }
  // As root, even root's own .forward is read by a writer process: local's sandbox holds no home.
  const as = env.root ? { uid: account.uid, gid: account.gid } : null;
  let r;
  try {
    r = await env.writer.readForward(paths, account.uid, as);
  } catch (e) {
    env.warn(`cannot read .forward of ${user}: ${(e as Error).message}`);
    return { status: "deferred", dsn: "4.3.0", reason: "cannot read .forward file" };
  }
  for (const w of r.warnings) env.warn(w);
  if (!r.found) return null;
  return { path: r.path, content: r.content, account: account.name, home: account.home };
}

/**
 * Names referenced as plain `$name` / `${name}` whose attribute is empty:
 * Postfix skips a forward_path entry that uses one.
 */
function usesUndefined(template: string, attrs: LocalAttributes): boolean {
  const re = /\$(?:\$|\{\s*([A-Za-z0-9_]+)\s*\}|\(\s*([A-Za-z0-9_]+)\s*\)|([A-Za-z0-9_]+))/g;
  for (const m of template.matchAll(re)) {
    const name = m[1] ?? m[2] ?? m[3];
    if (name !== undefined && !(attrs as unknown as Record<string, string>)[name]) return true;
  }
  return false;
}

/** An :include: file's destinations and the rights they run with. */
export interface IncludeFound {
  content: string;
  /** The account whose rights the file's commands and files get (null: default_privs). */
  account: string | null;
}

/**
 * Reads an :include: file with the current rights (root's when there are
 * none yet, as Postfix); its owner's rights apply to what it names when
 * the rights were default_privs and the owner is not root.
 */
export async function includeFor(
  env: SpecialEnv,
  path: string,
  account: string | null,
): Promise<IncludeFound | Result> {
  const config = {
    status: "bounced",
    dsn: "5.3.5",
    reason: "mail system configuration error",
  } as const;
  if (!path.startsWith("/")) {
    env.warn(`:include:${path} uses a relative path`);
    return config;
  }
  // Read with the current rights; with none yet (a root-owned alias), as root, as Postfix does,
  // through a writer process all the same: local's own sandbox does not reach the file.
  let as: Identity | null = null;
  if (env.root) {
    if (account === null) {
      as = { uid: 0, gid: 0 };
    } else {
      const r = rightsFor(env, account);
      if ("status" in r) return r;
      as = r.as;
    }
  }
  let found: { content: string; uid: number };
  try {
    found = await env.writer.readInclude(path, as);
  } catch (e) {
    if (errorIsSandbox(e)) {
      const reason = `:include: file ${path} is outside local's sandbox: ` +
        "run local as root (master.cf unprivileged = n) to read it with the owner's rights";
      env.warn(reason);
      return { status: "deferred", dsn: "4.3.0", reason };
    }
    env.warn((e as Error).message);
    return config;
  }
  if (account !== null) return { content: found.content, account };
  const owner = env.passwd.byUid(found.uid);
  if (!owner) {
    env.warn(`cannot find username for uid ${found.uid}`);
    env.warn(`${path}: cannot find :include: file owner username`);
    return { status: "deferred", dsn: "4.3.5", reason: "mail system configuration error" };
  }
  return { content: found.content, account: owner.uid === 0 ? null : owner.name };
}

function errorIsSandbox(e: unknown): boolean {
  for (let x = e; x instanceof Error; x = x.cause) {
    if (x instanceof Deno.errors.NotCapable) return true;
  }
  return false;
}
