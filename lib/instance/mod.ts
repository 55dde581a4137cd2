/**
 * Everything `postwarden start` does before master runs, as Postfix's
 * package scripts and `postfix set-permissions` do for Postfix:
 *
 * - as root: find or create the mail owner account; make sure the mail
 *   owner can reach the queue directory (if the configured one is below a
 *   folder it cannot search, such as a checkout under /root, the queue
 *   lives under /var/spool/postwarden and a link at the configured path
 *   leads there, so the admin commands find it); lay out the queue
 *   directory with Postfix's owners and modes (lib/queue/layout.ts); stage
 *   Deno and the code where the mail owner can run them (lib/runtime);
 * - as another user: the same layout with that user as owner, and the
 *   checkout as it is;
 * - either way, when proxymap will serve a table with an npm driver
 *   (pgsql:, mysql:), put the driver in the daemons' DENO_DIR as the
 *   daemons' user (lib/runtime cacheNpmModules): proxymap loads it from
 *   there and may not reach the registry.
 *
 * As root it also writes a submission kit for local users (see
 * {@link writeSubmissionKit}): they may not be able to read the checkout or
 * the configuration directory either.
 *
 * The result is the set of absolute path overrides master and the daemons
 * run with, the runtime, and one line per thing it had to set up.
 *
 * @module
 */
import { cacheMapPath } from "../config/postscreen.ts";
import { basename, dirname } from "node:path";
import { type Config, configPath } from "../config/mod.ts";
import {
  type Account,
  blockedAt,
  classBits,
  currentIds,
  ensureMailOwner,
  unsafeAncestor,
} from "../privilege/mod.ts";
import {
  adoptQueueFiles,
  ensureDir,
  type LayoutOwners,
  setupQueue,
  setupRootDir,
} from "../queue/layout.ts";
import { AUTH_NPM, proxymapNpm } from "../permissions/mod.ts";
import { paramLookup, passwdFileUsers } from "../service/catalog.ts";
import { parseMasterCf } from "../config/mod.ts";
import {
  cacheNpmModules,
  prepareDenoDir,
  prepareRootDenoDir,
  prepareRuntime,
  rootDenoDir,
  type Runtime,
  SYSTEM_RUNTIME_DIR,
  userDenoDir,
} from "../runtime/mod.ts";

/** Where a queue directory the mail owner cannot reach is kept instead. */
export const RELOCATED_QUEUES = "/var/spool/postwarden";

/** What master needs from the preparation. */
export interface Prepared {
  /** Absolute paths (queue_directory, maillog_file, mail_spool_directory, myhostname). */
  overrides: Record<string, string>;
  runtime: Runtime;
  /** The account daemons run as (root only). */
  owner: Account | null;
  /** One line per thing set up ("created the mail_owner account postfix", ...). */
  notes: string[];
}

/** Path parameters made absolute and normalized, passed to master as overrides. */
export function pathOverrides(config: Config): Record<string, string> {
  const o: Record<string, string> = {};
  for (const name of ["queue_directory", "maillog_file", "mail_spool_directory"]) {
    const v = configPath(config, name);
    if (v) o[name] = v;
  }
  if (!config.isSet("myhostname")) o.myhostname = config.str("myhostname");
  return o;
}

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/** Short, stable name for a path: its last two parts and a hash. */
async function relocatedName(path: string): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(path)));
  const tag = [...h.slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const label = `${basename(dirname(path))}-${basename(path)}`.replace(/[^A-Za-z0-9._-]/g, "_");
  return `${label}-${tag}`;
}

/**
 * The queue directory the mail owner will use: the configured one when it
 * can reach it, else a relocated one linked from the configured path.
 */
async function reachableQueue(q: string, owner: Account, notes: string[]): Promise<string> {
  const blocked = await blockedAt(q, owner);
  if (!blocked) return q;
  let st: Deno.FileInfo | null = null;
  try {
    st = await Deno.lstat(q);
  } catch {
    st = null;
  }
  const target = `${RELOCATED_QUEUES}/${await relocatedName(q)}`;
  if (st?.isSymlink) {
    const to = await Deno.readLink(q);
    if (to === target) return target;
    throw new Error(
      `queue_directory ${q} is a link to ${to}, which mail_owner ${owner.name} cannot reach`,
    );
  }
  if (st?.isDirectory) {
    let empty = true;
    for await (const _ of Deno.readDir(q)) {
      empty = false;
      break;
    }
    if (!empty) {
      throw new Error(
        `queue_directory ${q} cannot be reached by mail_owner ${owner.name} ` +
          `(no search permission on ${blocked}) and already holds files: move it where ` +
          `${owner.name} can reach it, or set queue_directory`,
      );
    }
    await Deno.remove(q);
  } else if (st) {
    throw new Error(`queue_directory ${q} is not a directory`);
  }
  await Deno.mkdir(RELOCATED_QUEUES, { recursive: true, mode: 0o755 });
  await Deno.mkdir(dirname(q), { recursive: true });
  await Deno.symlink(target, q);
  notes.push(
    `queue_directory ${q} is not reachable by ${owner.name} (${blocked} is closed to it): ` +
      `the queue is ${target}, linked from ${q}`,
  );
  return target;
}

/** Options for {@link prepareInstance}. */
export interface PrepareInstanceOptions {
  /** The checkout the daemons come from. */
  source: string;
  /** The running Deno. */
  deno: string;
  /**
   * The caller's environment: HOME (or XDG_CACHE_HOME) for a user's
   * DENO_DIR, proxy settings (HTTPS_PROXY, ...) for fetching npm drivers.
   */
  env: { HOME?: string; XDG_CACHE_HOME?: string; [name: string]: string | undefined };
}

/** Prepares the queue, the log's folder and the runtime for master. */
export async function prepareInstance(
  config: Config,
  opts: PrepareInstanceOptions,
): Promise<Prepared> {
  const notes: string[] = [];
  const o = pathOverrides(config);
  if (!o.queue_directory) throw new Error("queue_directory is not set");
  const asRoot = Deno.uid() === 0;
  let owner: Account | null = null;
  let owners: LayoutOwners;
  if (asRoot) {
    const r = await ensureMailOwner(config.str("mail_owner"));
    owner = r.account;
    if (r.created) {
      notes.push(`created the mail_owner account ${owner.name} (uid ${owner.uid})`);
    }
    owners = { root: { uid: 0, gid: 0 }, mail: { uid: owner.uid, gid: owner.gid } };
    const configured = o.queue_directory;
    const q = await reachableQueue(configured, owner, notes);
    if (q !== configured) {
      for (const k of ["maillog_file", "mail_spool_directory"]) {
        if (o[k] && under(o[k], configured)) o[k] = q + o[k].slice(configured.length);
      }
      o.queue_directory = q;
    }
  } else {
    const me = currentIds();
    owners = { root: me, mail: me };
  }
  await Deno.mkdir(dirname(o.queue_directory), { recursive: true });
  await setupQueue(o.queue_directory, owners);
  o.queue_directory = await Deno.realPath(o.queue_directory);
  if (asRoot) notes.push(...await adoptQueueFiles(o.queue_directory, owners));
  const q = o.queue_directory;

  if (o.maillog_file) {
    const dir = dirname(o.maillog_file);
    if (dir === `${q}/log`) await setupRootDir(dir, owners);
    else await Deno.mkdir(dir, { recursive: true });
    const bad = await unsafeAncestor(o.maillog_file, owners.root.uid);
    if (bad) {
      throw new Error(
        `maillog_file ${o.maillog_file}: ${bad} can be changed by users other than ` +
          `${asRoot ? "root" : "you"}; put the log in a folder only master can change`,
      );
    }
  }

  const spool = o.mail_spool_directory?.replace(/\/+$/, "");
  if (spool) {
    if (under(spool, q)) {
      await ensureDir(spool, { ...owners.mail, mode: 0o700 });
    } else {
      await Deno.mkdir(spool, { recursive: true }).catch(() => {});
      if (owner) {
        const st = await Deno.stat(spool).catch(() => null);
        const blocked = await blockedAt(spool, owner);
        const p = st ? { uid: st.uid ?? -1, gid: st.gid ?? -1, mode: st.mode ?? 0 } : null;
        if (blocked || !p || (classBits(p, owner) & 3) !== 3) {
          notes.push(
            `warning: mail_spool_directory ${spool} is not writable by ${owner.name}; ` +
              `local delivery there will be deferred`,
          );
        }
      }
    }
  }

  const rt = await prepareRuntime({ source: opts.source, deno: opts.deno, stage: asRoot });
  if (rt.note) notes.push(rt.note);
  const denoDir = asRoot
    ? `${SYSTEM_RUNTIME_DIR}/deno-dir-${owners.mail.uid}`
    : userDenoDir(opts.env);
  if (!asRoot) await Deno.mkdir(dirname(denoDir), { recursive: true });
  await prepareDenoDir(denoDir, owners.mail, owners.root);
  const runtime = { ...rt.runtime, denoDir };
  // local, pipe and virtual run as root (catalog.ts runsAsRoot), with a DENO_DIR of their own.
  if (asRoot) await prepareRootDenoDir(rootDenoDir(runtime));
  const npm = await proxymapNpm(paramLookup(config), { readTextFile: (p) => Deno.readTextFile(p) });
  if (npm.modules.length) {
    await cacheNpmModules(runtime, npm.modules, {
      user: asRoot ? owners.mail : undefined,
      env: opts.env,
      why: `proxymap's table${npm.tables.length > 1 ? "s" : ""} ${npm.tables.join(", ")}`,
    });
  }
  // The auth daemon (smtpd_sasl_type = passwd-file) loads bcryptjs and hash-wasm.
  const master = await Deno.readTextFile(`${config.str("config_directory")}/master.cf`)
    .catch(() => "");
  const services = master ? parseMasterCf(master).services : [];
  if (
    services.some((s) => s.command === "auth") &&
    passwdFileUsers(services, paramLookup(config)).length > 0
  ) {
    await cacheNpmModules(runtime, AUTH_NPM, {
      user: asRoot ? owners.mail : undefined,
      env: opts.env,
      why: "the auth daemon (smtpd_sasl_type = passwd-file)",
    });
  }
  // postscreen's cache (postscreen_cache_map): a folder that is missing is made the
  // mail owner's; one that exists (Postfix's /var/lib/postfix) is left as it is.
  if (services.some((s) => s.command === "postscreen")) {
    const cache = cacheMapPath(config.str("postscreen_cache_map"));
    if (cache && !(await Deno.stat(dirname(cache)).catch(() => null))) {
      await Deno.mkdir(dirname(dirname(cache)), { recursive: true });
      await ensureDir(dirname(cache), { ...owners.mail, mode: 0o700 });
    }
  }
  // The mtasts service's policy cache (postwarden_mta_sts_cache), the same way.
  if (services.some((s) => s.command === "mtasts") && config.bool("postwarden_mta_sts")) {
    const cache = config.str("postwarden_mta_sts_cache").trim();
    if (cache.startsWith("/") && !(await Deno.stat(dirname(cache)).catch(() => null))) {
      await Deno.mkdir(dirname(dirname(cache)), { recursive: true });
      await ensureDir(dirname(cache), { ...owners.mail, mode: 0o700 });
    }
  }
  if (asRoot) {
    const kit = await writeSubmissionKit(config, o, runtime);
    notes.push(`local users submit mail with ${kit}`);
  }
  return { overrides: o, runtime, owner, notes };
}

/** The folder of the submission kit for a configuration directory. */
export async function submissionKitDir(configDir: string): Promise<string> {
  return `${SYSTEM_RUNTIME_DIR}/submit/${await relocatedName(configDir)}`;
}

/** `deno run` flags of sendmail, as `deno task sendmail` has them. */
export const SENDMAIL_FLAGS = [
  "--no-config",
  "--no-lock",
  "--no-remote",
  "--no-npm",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-sys=hostname,uid",
];

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Local submission for every user when root runs Postwarden from a
 * checkout others cannot read (under /root): a world-readable copy of
 * main.cf with the paths master uses (and no log file: a user's sendmail
 * cannot write root's log and reports on stderr), and a `sendmail` script
 * that runs the staged Deno and code on it. Returns the script's path.
 * Rewritten at every start, so it follows main.cf.
 */
export async function writeSubmissionKit(
  config: Config,
  paths: Record<string, string>,
  runtime: Runtime,
): Promise<string> {
  const dir = await submissionKitDir(config.dir);
  await Deno.mkdir(`${dir}/conf`, { recursive: true, mode: 0o755 });
  const main = await Deno.readTextFile(`${config.dir}/main.cf`);
  const extra = [
    "",
    "# Written by postwarden start for local users' sendmail: the paths master uses.",
    ...["queue_directory", "mail_spool_directory", "myhostname"]
      .filter((k) => paths[k] !== undefined)
      .map((k) => `${k} = ${paths[k]}`),
    `config_directory = ${config.dir}`,
    "maillog_file =",
    "",
  ].join("\n");
  const write = async (path: string, text: string, mode: number) => {
    const tmp = `${path}.tmp-${Deno.pid}`;
    await Deno.writeTextFile(tmp, text, { mode });
    await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
  };
  await write(`${dir}/conf/main.cf`, main + extra, 0o644);
  const script = `${dir}/sendmail`;
  await write(
    script,
    [
      "#!/bin/sh",
      `# Local submission for ${config.dir}, written by postwarden start.`,
      `exec ${shellQuote(runtime.deno)} run ${SENDMAIL_FLAGS.join(" ")} \\`,
      `  ${shellQuote(`${runtime.code}/commands/sendmail.ts`)} -c ${
        shellQuote(`${dir}/conf`)
      } "$@"`,
      "",
    ].join("\n"),
    0o755,
  );
  return script;
}
