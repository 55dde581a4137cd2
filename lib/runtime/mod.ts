/**
 * The runtime the daemons are started from: which `deno` executable, which
 * copy of the code, and which DENO_DIR.
 *
 * Started as root, the daemons run as the mail owner, who often cannot
 * reach the checkout or the Deno that `npx` put under `/root` (mode 0700).
 * So root stages a copy: the Deno executable once per version, the code
 * (daemons/, lib/, commands/) once per content hash, under
 * `/usr/local/lib/postwarden` (root-owned, world-readable, as a package
 * would install it). Started as another user, the daemons run the
 * checkout and the caller's Deno as they are.
 *
 * Either way the daemons get a DENO_DIR of their own that holds every
 * daemon already transpiled and that they cannot write: Deno keeps
 * localStorage, the Cache API and a path-less `Deno.openKv()` there, below
 * its permission checks, so a read-only DENO_DIR is what takes implicit
 * storage away from a daemon (as root: root-owned; as a user: mode 0555).
 *
 * @module
 */
import * as fs from "node:fs";
import { dirname, join, relative } from "node:path";

/** What master starts daemons with. */
export interface Runtime {
  /** The Deno executable. */
  deno: string;
  /** Root of the code tree (the folder holding daemons/ and lib/). */
  code: string;
  /** DENO_DIR for daemons: pre-filled and read-only to them. */
  denoDir: string;
}

/** Folders of the checkout the daemons and client programs need at run time. */
const CODE_DIRS = ["daemons", "lib", "commands"];

/** Where root stages runtimes unless told otherwise. */
export const SYSTEM_RUNTIME_DIR = "/usr/local/lib/postwarden";

/** Where a user's runtimes go: the caller's cache folder. */
export function userRuntimeDir(env: { HOME?: string; XDG_CACHE_HOME?: string }): string {
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, "postwarden");
  if (env.HOME) return join(env.HOME, ".cache", "postwarden");
  throw new Error("cannot tell where to keep the daemons' Deno cache: HOME is not set");
}

/** Runtime files of a checkout, relative paths, sorted: no tests, no test data. */
export async function codeFiles(source: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) {
        if (e.name !== "testdata" && !e.name.startsWith(".")) await walk(p);
      } else if (e.isFile && e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) {
        out.push(relative(source, p));
      }
    }
  };
  for (const d of CODE_DIRS) await walk(join(source, d));
  return out.sort();
}

async function sha256Hex(parts: Uint8Array[]): Promise<string> {
  let n = 0;
  for (const p of parts) n += p.length;
  const all = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...h].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Daemon entry points (and the audit probe) below a code root. */
export function entryPoints(code: string, files: string[]): string[] {
  return files
    .filter((f) => /^daemons\/[^/]+\/main\.ts$/.test(f) || f === "commands/audit_probe.ts")
    .map((f) => join(code, f));
}

/** Flags that `deno cache` and the daemons share, so the cache matches what runs. */
export const MODULE_FLAGS = ["--no-config", "--no-lock", "--no-remote", "--no-npm"];

async function fillCache(deno: string, denoDir: string, entries: string[]): Promise<void> {
  const out = await new Deno.Command(deno, {
    args: ["cache", ...MODULE_FLAGS, ...entries],
    env: { DENO_DIR: denoDir, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno cache failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/** chmod -R a-w, so the owner's own processes cannot write either. */
async function makeReadOnly(path: string): Promise<void> {
  const st = await Deno.lstat(path);
  if (st.isDirectory) {
    for await (const e of Deno.readDir(path)) await makeReadOnly(join(path, e.name));
    await Deno.chmod(path, 0o555);
  } else if (st.isFile) {
    await Deno.chmod(path, 0o444);
  }
}

async function removeTree(path: string): Promise<void> {
  // A read-only tree needs its folders writable again before it can go.
  const walk = async (p: string) => {
    const st = await Deno.lstat(p).catch(() => null);
    if (!st?.isDirectory) return;
    await Deno.chmod(p, 0o755);
    for await (const e of Deno.readDir(p)) await walk(join(p, e.name));
  };
  await walk(path);
  await Deno.remove(path, { recursive: true }).catch(() => {});
}

async function withLock<T>(path: string, f: () => Promise<T>): Promise<T> {
  const lock = await Deno.open(path, { read: true, write: true, create: true });
  try {
    await lock.lock(true);
    return await f();
  } finally {
    lock.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Options for {@link prepareRuntime}. */
export interface PrepareOptions {
  /** The checkout (folder with daemons/ and lib/). */
  source: string;
  /** The Deno executable running now. */
  deno: string;
  /** Where runtimes are kept ({@link SYSTEM_RUNTIME_DIR} or {@link userRuntimeDir}). */
  dir: string;
  /** Copy Deno and the code there (root, for daemons running as the mail owner). */
  stage: boolean;
}

/**
 * Prepares (or reuses) a runtime and returns it, with a note when it had to
 * build one. Idempotent and safe to call from several starts at once.
 */
export async function prepareRuntime(
  o: PrepareOptions,
): Promise<{ runtime: Runtime; note?: string }> {
  const files = await codeFiles(o.source);
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [enc.encode(`${Deno.version.deno}\0${o.stage ? "" : o.source}\0`)];
  for (const f of files) {
    parts.push(enc.encode(`${f}\0`), await Deno.readFile(join(o.source, f)), enc.encode("\0"));
  }
  const key = (await sha256Hex(parts)).slice(0, 16);
  await Deno.mkdir(o.dir, { recursive: true, mode: 0o755 });
  const home = join(o.dir, key);
  const deno = o.stage ? join(o.dir, `deno-${Deno.version.deno}`) : o.deno;
  const runtime: Runtime = {
    deno,
    code: o.stage ? join(home, "code") : o.source,
    denoDir: join(home, "deno-dir"),
  };
  return await withLock(join(o.dir, ".lock"), async () => {
    const done = join(home, ".complete");
    if (await exists(done) && (!o.stage || await sameSize(o.deno, deno))) return { runtime };
    if (await exists(home)) await removeTree(home);
    await Deno.mkdir(home, { mode: 0o755 });
    if (o.stage) {
      if (!(await sameSize(o.deno, deno))) {
        const tmp = `${deno}.tmp-${Deno.pid}`;
        await Deno.copyFile(o.deno, tmp);
        await Deno.chmod(tmp, 0o755);
        await Deno.rename(tmp, deno);
      }
      for (const f of files) {
        const to = join(runtime.code, f);
        await Deno.mkdir(dirname(to), { recursive: true, mode: 0o755 });
        await Deno.copyFile(join(o.source, f), to);
        await Deno.chmod(to, 0o644);
      }
    }
    await Deno.mkdir(runtime.denoDir, { mode: 0o755 });
    await fillCache(deno, runtime.denoDir, entryPoints(runtime.code, files));
    if (!o.stage) await makeReadOnly(runtime.denoDir);
    else fixModes(home);
    await Deno.writeTextFile(done, `${new Date().toISOString()}\n`, { mode: 0o644 });
    if (!o.stage) await pruneOld(o.dir, key);
    return {
      runtime,
      note: o.stage
        ? `staged Deno ${Deno.version.deno} and the daemons' code in ${home}`
        : undefined,
    };
  });
}

async function sameSize(a: string, b: string): Promise<boolean> {
  try {
    return (await Deno.stat(a)).size === (await Deno.stat(b)).size;
  } catch {
    return false;
  }
}

/** Root's staged tree: folders 0755, files 0644, so the mail owner reads and never writes. */
function fixModes(path: string): void {
  const st = fs.lstatSync(path);
  if (st.isDirectory()) {
    fs.chmodSync(path, 0o755);
    for (const e of fs.readdirSync(path)) fixModes(join(path, e));
  } else if (st.isFile()) {
    fs.chmodSync(path, 0o644);
  }
}

/** A user's cache keeps the five newest runtimes (each code change makes one). */
async function pruneOld(dir: string, keep: string): Promise<void> {
  const all: { name: string; mtime: number }[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isDirectory || !/^[0-9a-f]{16}$/.test(e.name) || e.name === keep) continue;
    const st = await Deno.stat(join(dir, e.name)).catch(() => null);
    all.push({ name: e.name, mtime: st?.mtime?.getTime() ?? 0 });
  }
  all.sort((a, b) => b.mtime - a.mtime);
  for (const old of all.slice(4)) await removeTree(join(dir, old.name));
}
