/**
 * The local delivery agent's grants beyond its sockets and the mail
 * spool, and those of the process it starts to write a mailbox with a
 * recipient's rights (daemons/local/as_recipient.ts).
 *
 * Postfix's local(8) runs as root (master.cf unprivileged = n) and
 * switches its effective uid to each recipient around every write. Deno
 * cannot switch the uid of a running process, so when master runs as root
 * and master.cf says `n` for local, local runs as root and starts one
 * short-lived Deno process per write with the recipient's uid and gid:
 * local may run exactly that Deno executable, and the writer may read and
 * write exactly one mailbox. Otherwise (master not root, or master.cf
 * leaves local unprivileged) local runs as mail_owner or the invoking
 * user and runs nothing.
 *
 * @module
 */
import { PasswdFile } from "../passwd/mod.ts";
import type { Grants } from "./mod.ts";

/** What the local agent's grants depend on. */
export interface LocalGrantContext {
  param: (name: string) => string;
  /** Set when local runs as root: the Deno executable it starts as each recipient. */
  root?: { deno: string };
  /** The user database, for the home directory of a non-root instance's user. @default /etc/passwd */
  passwd?: PasswdFile;
  /** The uid the instance runs as when not root. @default Deno.uid() */
  uid?: number;
}

/**
 * Adds local's own needs to `g`: `uid` (whether it runs as root);
 * /etc/passwd (accounts: mailboxes, .forward files, whose rights
 * commands and files get); the
 * shell (local_command_shell's program, else /bin/sh) and the
 * export_environment variables when commands can be reached
 * (allow_mail_to_commands lists a class, or mailbox_command is set) and
 * local would run them (as root, or in an instance not started as root); as
 * root, running its Deno executable (the recipient writer); not as root,
 * the instance user's own ~/.forward (other forward_path entries are not
 * granted) and, with home_mailbox, the one mailbox under that user's
 * home directory (it cannot write anyone else's).
 */
export function addLocalGrants(g: Grants, ctx: LocalGrantContext): void {
  g.sys.push("uid");
  const list = (name: string) => (ctx.param(name) ?? "").split(/[\s,]+/).filter(Boolean);
  // Commands: aliases and .forward files may name them, or mailbox_command is one. A
  // local that a root master leaves as mail_owner refuses to run them (special.ts), so
  // it gets no shell; an instance one user runs runs them as that user.
  const runsCommands = ctx.root !== undefined || (ctx.uid ?? Deno.uid()) !== 0;
  if (
    runsCommands &&
    (list("allow_mail_to_commands").length || (ctx.param("mailbox_command") ?? "").trim())
  ) {
    g.run.push(list("local_command_shell")[0] ?? "/bin/sh");
    for (const v of list("export_environment")) if (!v.includes("=")) g.env.push(v);
  }
  const home = (ctx.param("home_mailbox") ?? "").trim();
  const forward = list("forward_path");
  // Accounts: mailboxes, .forward files, and whose rights commands and files get.
  g.read.push("/etc/passwd");
  if (ctx.root) {
    g.run.push(ctx.root.deno);
    return;
  }
  const me = (ctx.passwd ?? new PasswdFile()).byUid(ctx.uid ?? Deno.uid() ?? -1);
  if (!me) return;
  // Its own ~/.forward: the only .forward an unprivileged local can read.
  if (forward.length && !me.home.includes(",")) {
    g.read.push(`${me.home.replace(/\/+$/, "")}/.forward`);
  }
  if (home === "") return;
  const path = `${me.home.replace(/\/+$/, "")}/${home.replace(/\/+$/, "")}`;
  if (path.includes(",")) return; // Deno's flags cannot name it; local defers such mail.
  if (home.endsWith("/")) {
    g.read.push(path, me.home);
    g.write.push(path);
  } else {
    g.read.push(path, `${path}.lock`);
    g.write.push(path, `${path}.lock`);
  }
}

/** One mailbox write a recipient writer makes. */
export type WriterTarget =
  | { kind: "mbox"; path: string }
  | { kind: "maildir"; dir: string }
  /** Files it only reads (.forward candidates, an :include: file). */
  | { kind: "read"; paths: string[] };

/**
 * The recipient writer's grants: the mbox file and its dotlock, or the
 * Maildir (and its parent, to sync a Maildir it creates), or reading the
 * files it is to read; nothing else.
 */
export function recipientWriterGrants(t: WriterTarget): Grants {
  const paths = t.kind === "mbox" ? [t.path] : t.kind === "maildir" ? [t.dir] : t.paths;
  // Deno's flags separate paths with commas: such a path would grant something else.
  const bad = paths.find((p) => p.includes(","));
  if (bad !== undefined) throw new Error(`path with a comma: ${JSON.stringify(bad)}`);
  const g: Grants = { read: [], write: [], net: [], run: [], sys: [], env: [], npm: [] };
  if (t.kind === "read") {
    g.read.push(...t.paths);
    return g;
  }
  if (t.kind === "mbox") {
    g.read.push(t.path, `${t.path}.lock`);
    g.write.push(t.path, `${t.path}.lock`);
  } else {
    const dir = t.dir.replace(/\/+$/, "");
    g.read.push(dir, dir.replace(/\/[^/]*$/, "") || "/");
    g.write.push(dir);
  }
  return g;
}
