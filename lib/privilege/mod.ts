/**
 * Who runs what, and what root may touch. Started as root, Postwarden runs
 * no daemon as root: they run as `mail_owner` (default `postfix`, created
 * here as Postfix's packages create it). This module finds or creates that
 * account, tells whether a user can reach a path (search permission on
 * every ancestor, as the kernel checks it), and opens files for root
 * without following symbolic links, so that a file the mail owner can
 * replace never redirects a root write.
 *
 * Daemons are spawned with the mail owner's uid and primary gid and no
 * supplementary groups (Deno.Command drops them), so reachability is
 * computed for exactly that uid and gid.
 *
 * Parsing is pure; the I/O helpers take paths.
 *
 * @module
 */
import { parentPath, resolvePath } from "../path/mod.ts";
import { type PasswdEntry, PasswdFile } from "../passwd/mod.ts";

/** A user account from /etc/passwd. */
export type Account = PasswdEntry;

/** The account named `name`, or null. */
export function lookupAccount(name: string): Promise<Account | null> {
  return Promise.resolve(new PasswdFile().byName(name));
}

/** The account daemons run as is unusable for that. */
export class MailOwnerError extends Error {
  override readonly name = "MailOwnerError";
}

/**
 * Checks that an account may own the mail system: not root, not sharing
 * root's group. Postfix refuses the same (`mail_owner: ... has privileged
 * user ID`).
 */
export function checkMailOwner(a: Account): void {
  if (a.uid === 0) {
    throw new MailOwnerError(`mail_owner ${a.name} has privileged user ID 0; choose another user`);
  }
  if (a.gid === 0) {
    throw new MailOwnerError(
      `mail_owner ${a.name} has privileged group ID 0; choose another user`,
    );
  }
}

/**
 * The mail owner account, created when missing as a system account with
 * its own group, no home directory and no login shell (as Debian's postfix
 * package creates `postfix`). Needs root and `useradd`.
 */
export async function ensureMailOwner(
  name: string,
): Promise<{ account: Account; created: boolean }> {
  if (!/^[a-z_][a-z0-9_-]*$/.test(name)) {
    throw new MailOwnerError(`mail_owner "${name}" is not a valid user name`);
  }
  let account = await lookupAccount(name);
  let created = false;
  if (!account) {
    const out = await new Deno.Command("useradd", {
      args: [
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        "--comment",
        "Postwarden mail system",
        name,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output().catch((e: Error) => ({
      success: false,
      stderr: new TextEncoder().encode(e.message),
    }));
    if (!out.success) {
      throw new MailOwnerError(
        `cannot create mail_owner account ${name}: ${new TextDecoder().decode(out.stderr).trim()}`,
      );
    }
    account = await lookupAccount(name);
    if (!account) throw new MailOwnerError(`useradd ${name} succeeded but the account is missing`);
    created = true;
  }
  checkMailOwner(account);
  return { account, created };
}

/** True when something (even a dangling link) is at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** The uid and gid this process runs as. */
export function currentIds(): { uid: number; gid: number } {
  return { uid: Deno.uid() ?? -1, gid: Deno.gid() ?? -1 };
}

/** Owner and mode of a file, as the permission checks need them. */
export interface Perms {
  uid: number;
  gid: number;
  mode: number;
}

/** The permission bits (rwx as 4/2/1) that apply to `who` on a file. */
export function classBits(p: Perms, who: { uid: number; gid: number }): number {
  if (who.uid === 0) return 7;
  if (p.uid === who.uid) return (p.mode >> 6) & 7;
  if (p.gid === who.gid) return (p.mode >> 3) & 7;
  return p.mode & 7;
}

function perms(st: Deno.FileInfo): Perms {
  return { uid: st.uid ?? -1, gid: st.gid ?? -1, mode: st.mode ?? 0 };
}

/** `path` and each of its ancestors, from the root down. */
export function ancestors(path: string): string[] {
  const out: string[] = [];
  let p = resolvePath(path);
  for (;;) {
    out.unshift(p);
    const up = parentPath(p);
    if (up === p) break;
    p = up;
  }
  return out;
}

/**
 * The first directory on the way to `path` (its existing ancestors and
 * itself) that `who` cannot search, or null when the whole way is open.
 * Symbolic links on the way are followed, as the kernel follows them.
 */
export async function blockedAt(path: string, who: { uid: number; gid: number }): Promise<
  string | null
> {
  for (const dir of ancestors(path)) {
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(dir);
    } catch {
      return null; // does not exist yet: created later with the right owner
    }
    if (!st.isDirectory) continue;
    if ((classBits(perms(st), who) & 1) === 0) return dir;
  }
  return null;
}

/**
 * The first ancestor of `path` (not `path` itself) that someone other than
 * root or `owner` could modify: not owned by one of them, or writable by
 * group or others without the sticky bit. Root must not write below such
 * a directory: an entry in it can be swapped for a symbolic link.
 */
export async function unsafeAncestor(path: string, owner = 0): Promise<string | null> {
  const chain = ancestors(path);
  chain.pop();
  for (const dir of chain) {
    let st: Deno.FileInfo;
    try {
      st = await Deno.lstat(dir);
    } catch {
      return null;
    }
    if (st.isSymlink) {
      // A link is as safe as where it points and who could change it.
      const lst = perms(st);
      if (lst.uid !== 0 && lst.uid !== owner) return dir;
      continue;
    }
    const p = perms(st);
    if (p.uid !== 0 && p.uid !== owner) return dir;
    const sticky = (p.mode & 0o1000) !== 0;
    if ((p.mode & 0o022) !== 0 && !sticky) return dir;
  }
  return null;
}

/** A file opened by {@link openNoFollow}. */
export interface SafeFile {
  write(bytes: Uint8Array): void;
  close(): void;
}

/**
 * Opens a file for appending without following a symbolic link and
 * without opening a FIFO or device, then checks what was opened: the
 * regular file just lstat'ed, with one link, owned by `uid` (a file with
 * another owner is taken over when `takeOver` is set). The parent
 * directory must be one that only root (or the owner) can change (check
 * it with {@link unsafeAncestor}): then nothing can be swapped in between
 * the checks and the open.
 *
 * O_NOFOLLOW would not do: under path-scoped permissions Deno resolves a
 * link before it opens a file and ignores O_NOFOLLOW, so the entry is
 * lstat'ed first and the opened file must be that same inode.
 */
export function openNoFollow(
  path: string,
  opts: { mode: number; uid: number; gid: number; takeOver?: boolean },
): SafeFile {
  let before: Deno.FileInfo | null = null;
  try {
    before = Deno.lstatSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (before?.isSymlink) throw new Error(`${path} is a symbolic link; refusing to open it`);
  if (before && !before.isFile) throw new Error(`${path} is not a regular file`);
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(
      path,
      before ? { append: true } : { append: true, createNew: true, mode: opts.mode },
    );
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new Error(`${path} changed while it was opened; refusing to use it`);
    }
    throw new Error(`open ${path}: ${(e as Error).message}`);
  }
  try {
    const st = file.statSync();
    if (before && (st.ino !== before.ino || st.dev !== before.dev)) {
      throw new Error(`${path} changed while it was opened; refusing to use it`);
    }
    if (!st.isFile) throw new Error(`${path} is not a regular file`);
    if (st.nlink !== 1) throw new Error(`${path} has ${st.nlink} hard links; refusing to use it`);
    if (st.uid !== opts.uid && !opts.takeOver) {
      throw new Error(`${path} is owned by uid ${st.uid}, not ${opts.uid}`);
    }
    if (st.uid !== opts.uid || st.gid !== opts.gid) Deno.chownSync(path, opts.uid, opts.gid);
    if (((st.mode ?? 0) & 0o7777) !== opts.mode) Deno.chmodSync(path, opts.mode);
  } catch (e) {
    file.close();
    throw e;
  }
  return {
    write(bytes) {
      let off = 0;
      while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
    },
    close() {
      try {
        file.close();
      } catch {
        // closed
      }
    },
  };
}
