/**
 * Who owns what under `queue_directory`: Postwarden's version of Postfix's
 * `postfix-files` table, applied at start (`postfix set-permissions`) and
 * checked by `postwarden check` (`postfix check`).
 *
 * The rule that keeps root safe: everything root writes (the queue
 * directory itself, `pid/`, `log/`) is owned by root and writable
 * by nobody else, so the mail owner can never put a symbolic link where
 * root will follow it. The folders the daemons write belong to the mail
 * owner and root never looks inside them, except to take over queue files
 * left by an older layout ({@link adoptQueueFiles}), which it does with the
 * folder temporarily root-owned.
 *
 * maildrop is 1733 (sticky, others may create but not list or remove): any
 * local user can submit with sendmail; the kernel records the submitter as
 * the file's owner. Postfix uses 1730 with a setgid postdrop program, which
 * a Deno script cannot be.
 *
 * Started without root, every entry belongs to the invoking user with the
 * same modes.
 *
 * @module
 */
import * as fs from "node:fs";
import { unsafeAncestor } from "../privilege/mod.ts";

/** One row of the table. */
export interface LayoutEntry {
  /** Path relative to queue_directory ("" for the directory itself). */
  path: string;
  /** Who owns it: root (master's) or the mail owner (the daemons'). */
  owner: "root" | "mail";
  mode: number;
  /** Why it has this owner and mode. */
  doc: string;
}

/** The table. Folders not listed here are not Postwarden's. */
export const QUEUE_LAYOUT: readonly LayoutEntry[] = [
  { path: "", owner: "root", mode: 0o755, doc: "queue root: only root may add or replace entries" },
  { path: "incoming", owner: "mail", mode: 0o700, doc: "new mail from cleanup" },
  { path: "active", owner: "mail", mode: 0o700, doc: "mail qmgr is delivering" },
  { path: "deferred", owner: "mail", mode: 0o700, doc: "mail waiting for a retry" },
  { path: "hold", owner: "mail", mode: 0o700, doc: "mail on hold (postsuper -h)" },
  { path: "corrupt", owner: "mail", mode: 0o700, doc: "damaged queue files" },
  { path: "defer", owner: "mail", mode: 0o700, doc: "deferral reasons per message" },
  { path: "kv", owner: "mail", mode: 0o700, doc: "derived data and caches" },
  {
    path: "maildrop",
    owner: "mail",
    mode: 0o1733,
    doc: "local submissions: anyone may create, nobody but the owner may list or remove",
  },
  { path: "private", owner: "mail", mode: 0o700, doc: "daemon sockets" },
  {
    path: "public",
    owner: "mail",
    mode: 0o711,
    doc: "sockets for local users' commands: reachable by name, not listable",
  },
  {
    path: "peer",
    owner: "mail",
    mode: 0o700,
    doc: "one socket per daemon and client (lib/permissions): each client may use only its own",
  },
  { path: "pid", owner: "root", mode: 0o755, doc: "master's lock and pid file" },
];

/** Numeric ids for the two owners. */
export interface LayoutOwners {
  root: { uid: number; gid: number };
  mail: { uid: number; gid: number };
}

function ids(o: LayoutOwners, e: LayoutEntry) {
  return e.owner === "root" ? o.root : o.mail;
}

/**
 * Creates or repairs the queue directory as the table says. The queue
 * directory's ancestors must be safe for root ({@link unsafeAncestor});
 * a symbolic link where a folder should be is an error naming it.
 */
export async function setupQueue(root: string, owners: LayoutOwners): Promise<void> {
  const bad = await unsafeAncestor(root, owners.root.uid);
  if (bad) {
    throw new Error(
      `queue_directory ${root}: ${bad} can be changed by users other than root; ` +
        `choose a queue directory whose parents only root can change`,
    );
  }
  for (const e of QUEUE_LAYOUT) {
    const path = e.path ? `${root}/${e.path}` : root;
    await ensureDir(path, { ...ids(owners, e), mode: e.mode });
  }
}

/** A directory owned by root (or the owner), not writable by anyone else, for root's own files. */
export async function setupRootDir(path: string, owners: LayoutOwners): Promise<void> {
  const bad = await unsafeAncestor(path, owners.root.uid);
  if (bad) {
    throw new Error(`${path}: ${bad} can be changed by users other than root`);
  }
  await ensureDir(path, { ...owners.root, mode: 0o755 });
}

/**
 * Gives the mail owner the queue files an older layout left with another
 * owner (daemons that ran as root). The folder is made root-only while its
 * entries are changed, so nothing in it can be swapped for a link; only
 * regular files are touched, anything else is reported.
 */
export async function adoptQueueFiles(root: string, owners: LayoutOwners): Promise<string[]> {
  const notes: string[] = [];
  if (owners.mail.uid === owners.root.uid) return notes;
  for (const e of QUEUE_LAYOUT) {
    if (e.owner !== "mail" || e.path === "" || e.path === "maildrop") continue;
    const dir = `${root}/${e.path}`;
    let foreign = false;
    for await (const ent of Deno.readDir(dir)) {
      const st = await Deno.lstat(`${dir}/${ent.name}`).catch(() => null);
      if (st && st.uid !== owners.mail.uid) {
        foreign = true;
        break;
      }
    }
    if (!foreign) continue;
    fs.lchownSync(dir, owners.root.uid, owners.root.gid);
    await Deno.chmod(dir, 0o700);
    try {
      let n = 0;
      for await (const ent of Deno.readDir(dir)) {
        const p = `${dir}/${ent.name}`;
        const st = await Deno.lstat(p);
        if (st.uid === owners.mail.uid) continue;
        if (!st.isFile) {
          notes.push(`${p}: not a regular file; left alone`);
          continue;
        }
        fs.lchownSync(p, owners.mail.uid, owners.mail.gid);
        n++;
      }
      if (n) notes.push(`${dir}: ${n} file(s) given to the mail owner`);
    } finally {
      await ensureDir(dir, { ...owners.mail, mode: e.mode });
    }
  }
  return notes;
}

/**
 * What `postwarden check` says about the queue directory: each entry with
 * the wrong owner or mode, or a link where a folder should be. Empty when
 * all is as the table says (or nothing exists yet).
 */
export async function checkQueue(root: string, owners: LayoutOwners): Promise<string[]> {
  const out: string[] = [];
  const bad = await unsafeAncestor(root, owners.root.uid);
  if (bad) out.push(`${bad} can be changed by users other than root (parent of queue_directory)`);
  for (const e of QUEUE_LAYOUT) {
    const path = e.path ? `${root}/${e.path}` : root;
    let st: Deno.FileInfo;
    try {
      st = await Deno.lstat(path);
    } catch {
      continue;
    }
    const want = ids(owners, e);
    if (st.isSymlink) out.push(`${path} is a symbolic link (must be a directory)`);
    else if (!st.isDirectory) out.push(`${path} is not a directory`);
    else {
      if (st.uid !== want.uid) {
        out.push(`not owned by ${e.owner === "root" ? "root" : "mail_owner"}: ${path}`);
      }
      const mode = (st.mode ?? 0) & 0o7777;
      if (mode !== e.mode) {
        out.push(`${path}: mode ${mode.toString(8)}, should be ${e.mode.toString(8)}`);
      }
    }
  }
  return out;
}

/**
 * Makes `path` a directory with this owner and mode, without following a
 * symbolic link: a missing directory is created; a link or another kind of
 * file is an error naming it (root never fixes those by path). The parent
 * must already be safe (lib/privilege unsafeAncestor).
 */
export async function ensureDir(
  path: string,
  want: { uid: number; gid: number; mode: number },
): Promise<void> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.lstat(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    await Deno.mkdir(path, { mode: want.mode & 0o777 });
    st = await Deno.lstat(path);
  }
  if (st.isSymlink) {
    throw new Error(`${path} is a symbolic link; remove it (it must be a directory)`);
  }
  if (!st.isDirectory) throw new Error(`${path} is not a directory`);
  if (st.uid !== want.uid || st.gid !== want.gid) {
    // lchown: even if the entry were swapped since lstat, no link is followed.
    fs.lchownSync(path, want.uid, want.gid);
  }
  if (((st.mode ?? 0) & 0o7777) !== want.mode) {
    const again = await Deno.lstat(path);
    if (!again.isDirectory || again.isSymlink) throw new Error(`${path} changed while fixing it`);
    await Deno.chmod(path, want.mode);
  }
}
