/**
 * The master lock: an exclusive flock on `pid/master.lock`, held for the
 * master's lifetime and released by the kernel however the master dies, so
 * a stale lock cannot exist. `pid/master.pid` records the holder's pid for
 * `postwarden stop/status`.
 *
 * pid/ belongs to the user master runs as (root) and nobody else can write
 * it (lib/queue/layout.ts). Even so, nothing here follows a symbolic link
 * left there by an older layout: the lock must lstat as a regular file and
 * open as that inode, and the pid file is written under a fresh name
 * (O_EXCL) and renamed.
 */

/** The pid recorded in a pid file, or null if absent or unreadable. */
export async function readPid(path: string): Promise<number | null> {
  try {
    const n = Number((await Deno.readTextFile(path)).trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** The pid of the running master of a queue directory, or null if none runs. */
export async function runningMaster(pidDir: string): Promise<number | null> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(`${pidDir}/master.lock`, { read: true, write: true });
  } catch {
    return null;
  }
  try {
    if (await f.tryLock(true)) {
      await f.unlock();
      return null;
    }
    return (await readPid(`${pidDir}/master.pid`)) ?? -1;
  } finally {
    f.close();
  }
}

/** Takes the lock and writes the pid file; throws if another master holds it. */
export async function acquireMasterLock(pidDir: string): Promise<Deno.FsFile> {
  const path = `${pidDir}/master.lock`;
  // lstat first: under scoped permissions Deno would follow a link (even with O_NOFOLLOW).
  const before = await Deno.lstat(path).catch(() => null);
  if (before?.isSymlink) throw new Error(`${path} is a symbolic link; remove it`);
  if (before && !before.isFile) throw new Error(`${path} is not a regular file`);
  const f = await Deno.open(path, {
    read: true,
    write: true,
    ...(before ? {} : { createNew: true, mode: 0o600 }),
  });
  if (before && (await f.stat()).ino !== before.ino) {
    f.close();
    throw new Error(`${path} changed while it was opened`);
  }
  if (!(await f.tryLock(true))) {
    f.close();
    const pid = await readPid(`${pidDir}/master.pid`);
    throw new Error(
      `the Postwarden mail system is already running${pid ? ` (master pid ${pid})` : ""}`,
    );
  }
  const tmp = `${pidDir}/.master.pid.tmp`;
  await Deno.remove(tmp).catch(() => {}); // removes a link itself, never its target
  await Deno.writeTextFile(tmp, `${Deno.pid}\n`, { createNew: true, mode: 0o644 });
  await Deno.rename(tmp, `${pidDir}/master.pid`);
  return f;
}

/** Removes the pid file (the lock goes with the process). */
export async function releaseMasterLock(pidDir: string): Promise<void> {
  if ((await readPid(`${pidDir}/master.pid`)) === Deno.pid) {
    await Deno.remove(`${pidDir}/master.pid`).catch(() => {});
  }
}
