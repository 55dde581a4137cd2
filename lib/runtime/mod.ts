/**
 * The runtime the daemons are started from: which `deno` executable,
 * which copy of the code, and which DENO_DIR.
 *
 * Started as root, the daemons run as the mail owner, who often cannot
 * reach the checkout or the Deno that `npx` put under `/root` (mode 0700).
 * So root stages a copy: the Deno executable once per version, the code
 * (daemons/, lib/, commands/) once per content hash, under
 * `/usr/local/lib/postwarden` (root-owned, world-readable, as a package
 * would install it). Started as another user, the daemons run the
 * checkout and the caller's Deno as they are.
 *
 * The daemons' DENO_DIR is their own (one per runtime and user, shared by
 * instances so compiled code stays warm), and its `location_data` folder,
 * where Deno keeps localStorage, Cache API data and a path-less Deno KV
 * outside its permission checks, is made unwritable to them: root-owned
 * mode 0555 (as a user: theirs, 0555). That is what takes implicit storage
 * away from a daemon while Deno keeps its compiled-code caches (a wholly
 * read-only DENO_DIR costs each daemon about 6 MB: V8 cannot keep its code
 * cache).
 *
 * A configuration with a pgsql: or mysql: table needs their npm drivers in
 * the daemons' DENO_DIR, since proxymap loads them with `--cached-only`
 * (lib/permissions): {@link cacheNpmModules} puts them there at start, as
 * the daemons' user, from the code tree's deno.json (the pinned versions)
 * and deno.lock (the integrity hashes, frozen). The code tree root stages
 * includes those two files.
 *
 * @module
 */
import * as fs from "node:fs";
import { dirname, join, relative } from "node:path";
import { concat } from "../bytes/mod.ts";
import { exists } from "../privilege/mod.ts";

/** What master starts daemons with. */
export interface Runtime {
  /** The Deno executable. */
  deno: string;
  /** Root of the code tree (the folder holding daemons/ and lib/). */
  code: string;
  /** DENO_DIR for daemons: theirs, with location_data closed. */
  denoDir: string;
}

/** Folders of the checkout the daemons and client programs need at run time. */
const CODE_DIRS = ["daemons", "lib", "commands"];

/** Files at the checkout's top the daemons need: the import map and lock of npm drivers. */
const CODE_FILES = ["deno.json", "deno.lock"];

/** Where root stages runtimes. */
export const SYSTEM_RUNTIME_DIR = "/usr/local/lib/postwarden";

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
  for (const f of CODE_FILES) if (await exists(join(source, f))) out.push(f);
  return out.sort();
}

async function contentKey(source: string, files: string[]): Promise<string> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [enc.encode(`${Deno.version.deno}\0`)];
  for (const f of files) {
    parts.push(enc.encode(`${f}\0`), await Deno.readFile(join(source, f)), enc.encode("\0"));
  }
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", concat(parts).slice()));
  return [...h.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function withLock<T>(path: string, f: () => Promise<T>): Promise<T> {
  const lock = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  try {
    await lock.lock(true);
    return await f();
  } finally {
    lock.close();
  }
}

async function sameSize(a: string, b: string): Promise<boolean> {
  try {
    return (await Deno.stat(a)).size === (await Deno.stat(b)).size;
  } catch {
    return false;
  }
}

/**
 * Makes `dir` the daemons' DENO_DIR: owned by `owner`, mode 0700, with
 * `location_data` owned by `closer` and mode 0555. Root does this with
 * lstat, mkdir and lchown only, so a link the owner put there is removed,
 * never followed. The parent of `dir` must be root's (or the caller's).
 */
export async function prepareDenoDir(
  dir: string,
  owner: { uid: number; gid: number },
  closer: { uid: number; gid: number },
): Promise<void> {
  const st = await Deno.lstat(dir).catch(() => null);
  if (st && (st.isSymlink || !st.isDirectory)) await Deno.remove(dir);
  if (!st || st.isSymlink || !st.isDirectory) await Deno.mkdir(dir, { mode: 0o700 });
  fs.lchownSync(dir, owner.uid, owner.gid);
  const loc = join(dir, "location_data");
  const l = await Deno.lstat(loc).catch(() => null);
  const closed = l?.isDirectory && !l.isSymlink && l.uid === closer.uid &&
    ((l.mode ?? 0) & 0o7777) === 0o555;
  if (closed) return;
  if (l) {
    if (l.isDirectory && !l.isSymlink) await makeWritable(loc);
    await Deno.remove(loc, { recursive: true });
  }
  await Deno.mkdir(loc, { mode: 0o555 });
  fs.lchownSync(loc, closer.uid, closer.gid);
}

/**
 * The DENO_DIR of the daemons master starts as root (pipe, virtual; see
 * lib/service/catalog.ts runsAsRoot): `deno-dir-0` beside the mail owner's.
 */
export function rootDenoDir(runtime: Runtime): string {
  return join(dirname(runtime.denoDir), "deno-dir-0");
}

/**
 * Makes `dir` the DENO_DIR of the daemons that run as root: root's, mode
 * 0700, with `location_data` an empty root-owned file. A 0555 folder
 * (prepareDenoDir) does not stop root; a file does: localStorage, the
 * Cache API and a path-less Deno KV all fail under it (ENOTDIR). Root
 * alone can change the folder, so nobody can swap the file for a folder.
 */
export async function prepareRootDenoDir(dir: string): Promise<void> {
  const st = await Deno.lstat(dir).catch(() => null);
  if (st && (st.isSymlink || !st.isDirectory)) await Deno.remove(dir);
  if (!st || st.isSymlink || !st.isDirectory) await Deno.mkdir(dir, { mode: 0o700 });
  fs.lchownSync(dir, 0, 0);
  await Deno.chmod(dir, 0o700);
  const loc = join(dir, "location_data");
  const l = await Deno.lstat(loc).catch(() => null);
  if (l?.isFile && l.size === 0 && l.uid === 0 && ((l.mode ?? 0) & 0o7777) === 0o444) return;
  if (l) {
    if (l.isDirectory && !l.isSymlink) await makeWritable(loc);
    await Deno.remove(loc, { recursive: true });
  }
  await Deno.writeFile(loc, new Uint8Array(), { mode: 0o444, createNew: true });
  await Deno.chmod(loc, 0o444);
}

async function makeWritable(path: string): Promise<void> {
  await Deno.chmod(path, 0o755).catch(() => {});
  for await (const e of Deno.readDir(path)) {
    if (e.isDirectory) await makeWritable(join(path, e.name));
  }
}

/** Where a user's daemons keep their DENO_DIR. */
export function userDenoDir(env: { HOME?: string; XDG_CACHE_HOME?: string }): string {
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, "postwarden", "deno-dir");
  if (env.HOME) return join(env.HOME, ".cache", "postwarden", "deno-dir");
  throw new Error("cannot tell where the daemons' DENO_DIR goes: HOME is not set");
}

/** Options for {@link prepareRuntime}. */
export interface PrepareOptions {
  /** The checkout (folder with daemons/ and lib/). */
  source: string;
  /** The Deno executable running now. */
  deno: string;
  /** Copy Deno and the code to {@link dir} (root, for daemons running as the mail owner). */
  stage: boolean;
  /** Where staged runtimes are kept. @default SYSTEM_RUNTIME_DIR */
  dir?: string;
}

/**
 * The runtime for the daemons (its denoDir still empty), with a note when
 * it had to stage one. Staging is idempotent and safe to run from several
 * starts at once.
 */
export async function prepareRuntime(
  o: PrepareOptions,
): Promise<{ runtime: Runtime; note?: string }> {
  if (!o.stage) return { runtime: { deno: o.deno, code: o.source, denoDir: "" } };
  const dir = o.dir ?? SYSTEM_RUNTIME_DIR;
  const files = await codeFiles(o.source);
  const home = join(dir, await contentKey(o.source, files));
  const runtime: Runtime = {
    deno: join(dir, `deno-${Deno.version.deno}`),
    code: join(home, "code"),
    denoDir: "",
  };
  await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
  await Deno.chmod(dir, 0o755);
  return await withLock(join(dir, ".lock"), async () => {
    const done = join(home, ".complete");
    if (await exists(done) && await sameSize(o.deno, runtime.deno)) return { runtime };
    if (!(await sameSize(o.deno, runtime.deno))) {
      const tmp = `${runtime.deno}.tmp-${Deno.pid}`;
      await Deno.copyFile(o.deno, tmp);
      await Deno.chmod(tmp, 0o755);
      await Deno.rename(tmp, runtime.deno);
    }
    await Deno.remove(home, { recursive: true }).catch(() => {});
    for (const f of files) {
      const to = join(runtime.code, f);
      await Deno.mkdir(dirname(to), { recursive: true, mode: 0o755 });
      await Deno.copyFile(join(o.source, f), to);
    }
    fixModes(home);
    await Deno.writeTextFile(done, `${new Date().toISOString()}\n`, { mode: 0o644 });
    return { runtime, note: `staged Deno ${Deno.version.deno} and the daemons' code in ${home}` };
  });
}

/** Options for {@link cacheNpmModules}. */
export interface NpmCacheOptions {
  /** Run Deno as this user (root, for daemons running as the mail owner). @default the caller */
  user?: { uid: number; gid: number };
  /**
   * The caller's environment: its proxy and TLS trust settings
   * ({@link REGISTRY_ENV}) reach Deno; nothing else does.
   * @default {}
   */
  env?: Record<string, string | undefined>;
  /** Why the modules are needed, for the error ("pgsql: table pgsql:/etc/postfix/pg.cf"). */
  why?: string;
}

/**
 * What Deno reads to reach the npm registry: proxies (either case) and the
 * certificates to trust (an intercepting proxy's CA). NPM_CONFIG_REGISTRY
 * is not passed: the cache is kept per registry host, and proxymap, which
 * does not get it, looks under registry.npmjs.org.
 */
export const REGISTRY_ENV = [
  "HTTPS_PROXY",
  "HTTP_PROXY",
  "NO_PROXY",
  "ALL_PROXY",
  "DENO_CERT",
  "DENO_TLS_CA_STORE",
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
];

/**
 * The npm specifiers (`npm:postgres@3.4.9`) of modules named as in the
 * code tree's deno.json "imports"; an error when one is not there.
 */
export async function npmSpecifiers(code: string, modules: string[]): Promise<string[]> {
  const file = join(code, "deno.json");
  let imports: Record<string, unknown>;
  try {
    imports = JSON.parse(await Deno.readTextFile(file)).imports ?? {};
  } catch (e) {
    throw new Error(`${file}: cannot read the npm import map: ${(e as Error).message}`);
  }
  return modules.map((m) => {
    const spec = imports[m];
    if (typeof spec !== "string" || !spec.startsWith("npm:")) {
      throw new Error(`${file}: "imports" has no npm: entry for ${m}`);
    }
    return spec;
  });
}

/**
 * Puts npm modules (deno.json "imports" names) in the runtime's DENO_DIR,
 * as `opts.user`, with the code tree's deno.lock frozen (each package's
 * integrity is checked against it, and the lock is never rewritten). When
 * they are there already this costs one short Deno run and no network.
 * A failure (no network, registry down, a lock mismatch) is an Error that
 * says what needs them and what to do.
 */
export async function cacheNpmModules(
  runtime: Runtime,
  modules: string[],
  opts: NpmCacheOptions = {},
): Promise<void> {
  if (modules.length === 0) return;
  const specs = await npmSpecifiers(runtime.code, modules);
  const env: Record<string, string> = {
    DENO_DIR: runtime.denoDir,
    HOME: runtime.denoDir,
    DENO_NO_UPDATE_CHECK: "1",
    NO_COLOR: "1",
  };
  for (const k of REGISTRY_ENV) {
    for (const name of [k, k.toLowerCase()]) {
      const v = opts.env?.[name];
      if (v !== undefined) env[name] = v;
    }
  }
  const out = await new Deno.Command(runtime.deno, {
    args: [
      "cache",
      "--quiet",
      `--config=${runtime.code}/deno.json`,
      `--lock=${runtime.code}/deno.lock`,
      "--frozen",
      ...specs,
    ],
    cwd: runtime.denoDir,
    clearEnv: true,
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    ...(opts.user ? { uid: opts.user.uid, gid: opts.user.gid } : {}),
  }).output();
  if (out.success) return;
  const why = new TextDecoder().decode(out.stderr).split("\n")
    .map((l) => l.trim()).filter((l) => l && !/^Stack backtrace|^\d+: <unknown>/.test(l))
    .slice(0, 3).join(" / ");
  const what = `${opts.why ?? "a lookup table"} needs the npm package` +
    `${specs.length > 1 ? "s" : ""} ${specs.join(", ")} in the daemons' DENO_DIR ` +
    `${runtime.denoDir}, and Deno could not put ${specs.length > 1 ? "them" : "it"} there ` +
    `(${why || `exit ${out.code}`}).`;
  if (/checksum did not match|integrity/i.test(why)) {
    throw new Error(
      `${what} What the registry sent does not match deno.lock: the download was altered on ` +
        `the way or deno.lock is wrong; find out which before starting again.`,
    );
  }
  throw new Error(
    `${what} The first start with such a table needs the npm registry (set HTTPS_PROXY, and ` +
      `NODE_EXTRA_CA_CERTS or DENO_CERT, if it is reached through a proxy), or fill that ` +
      `folder beforehand as the daemons' user: DENO_DIR=${runtime.denoDir} deno cache ` +
      `--config=${runtime.code}/deno.json --lock=${runtime.code}/deno.lock --frozen ` +
      specs.join(" "),
  );
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
