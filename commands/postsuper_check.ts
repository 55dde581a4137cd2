/**
 * postsuper -p and -s: purge old temporary files and check (and repair)
 * the structure of the queue, Postwarden's version of Postfix postsuper's
 * `super()` pass.
 *
 * One pass over each named queue folder (by default, in Postfix's order:
 * defer before the message queues, then maildrop, incoming, active,
 * deferred, hold). Entries are looked at with lstat, never followed:
 *
 * - Always (as Postfix, whatever the action): an object that is neither a
 *   regular file nor a directory (a symbolic link, FIFO, socket, device) is
 *   removed (the link itself, never what it names); a subdirectory with a
 *   one-character name (a Postfix hash level, `hash_queue_names`) is entered
 *   and, with -s, its queue files are moved up into the queue folder, since
 *   Postwarden's queues are not hashed; every subdirectory is then removed
 *   when empty, with "warning: remove subdirectory PATH: REASON" when not.
 * - -p: temporary files older than 24 hours (Postfix's MAX_TEMP_AGE) are
 *   removed: `.NAME.tmp` in a queue folder (cleanup's and sendmail's files
 *   being written, left by a crash) and `ID.tmp` in defer/ (qmgr's
 *   deferral log being rewritten). A younger one may still be written.
 *   Silent, as Postfix.
 * - -s: a name that is not a queue id (maildrop: a maildrop name, see
 *   daemons/pickup/maildrop.ts) gets "warning: bogus file name:
 *   QUEUE/NAME", Postfix's words, and is left alone. In incoming, deferred
 *   and hold, each queue file is opened: one that is damaged (no valid
 *   trailer) is moved to corrupt/ (qmgr would do the same when it takes it,
 *   but never takes held mail); one whose envelope names another queue id
 *   than its file name (a queue restored or copied by hand) is renamed,
 *   deferral log first, to the id its content carries, as Postfix renames
 *   a file to match its inode number ("Renamed to match queue id: N
 *   messages"), unless that id is already taken, which is reported. A
 *   message file readable or writable by group or others
 *   loses those bits (mail content is private; the forced-expiry bit
 *   stays); one not owned by the queue folder's owner is reported. active/
 *   belongs to qmgr: only names and objects there are checked.
 *
 * Moves never replace an existing file (link, then unlink), so a repair
 * can never lose a message; a file that qmgr moves meanwhile is skipped.
 * As Postfix advises for its -s, run it while Postwarden is stopped: on a
 * live queue, a message qmgr takes in the instant between the link and
 * the unlink of a repair may be delivered twice (never lost). -p is safe
 * on a live queue. Every folder changed is fsync'ed by the caller
 * (`changedDirs`).
 *
 * @module
 */

import * as fs from "node:fs";
import { printable } from "../lib/log/mod.ts";
import { isQueueId, QueueDir, QueueFile, QueueFormatError } from "../lib/queue/mod.ts";
import { MAILDROP_NAME } from "../daemons/pickup/maildrop.ts";

/** Folders the pass can work on: the message queues and the deferral logs. */
export const CHECKED_QUEUES = [
  "defer",
  "maildrop",
  "incoming",
  "active",
  "deferred",
  "hold",
] as const;
export type CheckedQueue = typeof CHECKED_QUEUES[number];

/** Postfix's MAX_TEMP_AGE: a temporary file this old is left over by a crash. */
export const MAX_TEMP_AGE_MS = 24 * 60 * 60 * 1000;

/** What the pass does. */
export interface CheckOptions {
  /** -p: remove old temporary files. */
  purge: boolean;
  /** -s: check and repair names, content ids, positions and modes. */
  structure: boolean;
  /** Clock. @default Date.now */
  now?: () => number;
}

/** What the pass did, and what the caller must report. */
export interface CheckResult {
  /** Warning texts (without "postsuper: warning: "), in the order found. */
  warnings: string[];
  /** Messages renamed to the queue id their content carries. */
  renamed: number;
  /** Folders whose entries changed (to fsync). */
  changedDirs: Set<string>;
}

const QUEUE_TEMP = /^\..+\.tmp$/;
const DEFER_TEMP = /^[0-9A-F]{15}\.tmp$/;

/** Runs the -p/-s pass over `queues` of the queue directory `q`. */
export async function checkQueues(
  q: QueueDir,
  queues: readonly CheckedQueue[],
  opts: CheckOptions,
): Promise<CheckResult> {
  const res: CheckResult = { warnings: [], renamed: 0, changedDirs: new Set() };
  const now = opts.now ?? Date.now;
  for (const queue of queues) {
    const dir = q.dir(queue);
    let owner: number | null;
    try {
      owner = (await Deno.lstat(dir)).uid;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    for (const name of await names(dir)) {
      await checkEntry(q, queue, "", name, owner, opts, now, res);
    }
  }
  // A hash level emptied and removed needs no fsync; its parent has one.
  for (const d of [...res.changedDirs]) if (!await exists(d)) res.changedDirs.delete(d);
  return res;
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/** One entry `queue/sub/name` (sub: "" or a hash level). */
async function checkEntry(
  q: QueueDir,
  queue: CheckedQueue,
  sub: string,
  name: string,
  owner: number | null,
  opts: CheckOptions,
  now: () => number,
  res: CheckResult,
): Promise<void> {
  const dir = sub ? `${q.dir(queue)}/${sub}` : q.dir(queue);
  const path = `${dir}/${name}`;
  const shown = printable(`${queue}/${sub ? `${sub}/` : ""}${name}`);
  let st: Deno.FileInfo;
  try {
    st = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return; // taken by qmgr or pickup meanwhile
    throw e;
  }
  if (st.isDirectory) {
    // A hash level (one character, as Postfix names them) holds queue files
    // to move up; anything else is removed if empty. Only one level deep.
    if (sub === "" && name.length === 1 && queue !== "maildrop") {
      for (const inner of await names(path)) {
        await checkEntry(q, queue, name, inner, owner, opts, now, res);
      }
    }
    try {
      await Deno.remove(path);
      res.changedDirs.add(dir);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        res.warnings.push(`remove subdirectory ${shown}: ${(e as Error).message}`);
      }
    }
    return;
  }
  if (!st.isFile) {
    // A link, FIFO, socket or device has no business in a queue (Postfix removes them too).
    await removeQuietly(path, dir, res);
    return;
  }
  const temp = queue === "defer" ? DEFER_TEMP.test(name) : QUEUE_TEMP.test(name);
  if (temp) {
    const age = now() - (st.mtime?.getTime() ?? now());
    if (opts.purge && age > MAX_TEMP_AGE_MS) await removeQuietly(path, dir, res);
    return;
  }
  if (!opts.structure) return;
  const validName = queue === "maildrop" ? MAILDROP_NAME.test(name) : isQueueId(name);
  if (!validName) {
    res.warnings.push(`bogus file name: ${shown}`);
    return;
  }
  if (sub !== "") {
    // Hashed position: up into the queue folder, unless the name is taken there.
    const to = q.dir(queue) + `/${name}`;
    if (!await moveNoReplace(path, to)) {
      res.warnings.push(`${shown}: ${queue}/${name} exists; left in place`);
      return;
    }
    res.changedDirs.add(q.dir(queue)); // the subdirectory goes once empty
    return await checkEntry(q, queue, "", name, owner, opts, now, res);
  }
  // maildrop: the submitter's file, pickup checks it; defer/ holds no mail content.
  if (queue === "maildrop" || queue === "defer") return;
  fixMode(path, st, shown, owner, res);
  if (queue === "active") return;
  await checkContent(q, queue, name, shown, st, res);
}

/** Removes group and other access from a message file or log; reports a foreign owner. */
function fixMode(
  path: string,
  st: Deno.FileInfo,
  shown: string,
  owner: number | null,
  res: CheckResult,
): void {
  if (owner !== null && st.uid !== null && st.uid !== owner) {
    res.warnings.push(`${shown}: owner uid ${st.uid}, not the queue folder's owner (${owner})`);
  }
  const mode = (st.mode ?? 0) & 0o7777;
  if ((mode & 0o077) === 0) return;
  const c = fs.constants;
  let fd: number;
  try {
    // O_NOFOLLOW: the entry may have been replaced by a link since lstat.
    fd = fs.openSync(path, c.O_RDONLY | c.O_NOFOLLOW | c.O_NONBLOCK);
  } catch {
    return; // gone (moved by qmgr) or replaced: the next pass sees it
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return;
    const fixed = mode & 0o700;
    fs.fchmodSync(fd, fixed);
    res.warnings.push(
      `${shown}: mode ${octal(mode)} gave group or other access; changed to ${octal(fixed)}`,
    );
  } finally {
    fs.closeSync(fd);
  }
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, "0");
}

/** Damaged files to corrupt/, files named unlike their content to their id. */
async function checkContent(
  q: QueueDir,
  queue: "incoming" | "deferred" | "hold",
  name: string,
  shown: string,
  seen: Deno.FileInfo,
  res: CheckResult,
): Promise<void> {
  const path = q.path(queue, name);
  // QueueFile.open follows links: the entry must still be the regular file lstat saw,
  // so that root never reads what a link swapped in names (nor blocks on a FIFO).
  const again = await Deno.lstat(path).catch(() => null);
  if (!again?.isFile || again.ino !== seen.ino || again.dev !== seen.dev) return;
  let id: string;
  try {
    const f = await QueueFile.open(path);
    id = f.envelope.queueId;
    f.close();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    if (!(e instanceof QueueFormatError || e instanceof SyntaxError)) {
      res.warnings.push(`${shown}: cannot read: ${(e as Error).message}`);
      return;
    }
    // A JSON parser's message quotes the file's bytes: only the format error's own words.
    const why = e instanceof SyntaxError ? "bad envelope record" : errText(e);
    if (await moveNoReplace(path, q.path("corrupt", name))) {
      res.changedDirs.add(q.dir(queue)).add(q.dir("corrupt"));
      res.warnings.push(`${shown}: damaged queue file moved to corrupt/: ${printable(why)}`);
    } else {
      res.warnings.push(`${shown}: damaged queue file; corrupt/${name} exists, left in place`);
    }
    return;
  }
  if (id === name) return;
  const want = typeof id === "string" && isQueueId(id) ? id : null;
  if (want === null) {
    res.warnings.push(`${shown}: its envelope names no valid queue id; left alone`);
    return;
  }
  for (const other of ["maildrop", "incoming", "active", "deferred", "hold", "corrupt"] as const) {
    if (await exists(q.path(other, want))) {
      res.warnings.push(
        `queue id mismatch: ${shown} holds message ${want}, which ${other}/${want} already is; ` +
          "left alone (a copy: delete one with postsuper -d)",
      );
      return;
    }
  }
  // The deferral log first, so that an interrupted run leaves it with its message's new id.
  if (await moveNoReplace(q.deferLog(name), q.deferLog(want))) res.changedDirs.add(q.dir("defer"));
  if (await moveNoReplace(path, q.path(queue, want))) {
    res.changedDirs.add(q.dir(queue));
    res.renamed++;
  }
}

/** Renames without ever replacing `to`; false when `from` is gone or `to` exists. */
async function moveNoReplace(from: string, to: string): Promise<boolean> {
  try {
    await Deno.link(from, to);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.AlreadyExists) return false;
    throw e;
  }
  try {
    await Deno.remove(from);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return true;
}

async function removeQuietly(path: string, dir: string, res: CheckResult): Promise<void> {
  try {
    await Deno.remove(path);
    res.changedDirs.add(dir);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
