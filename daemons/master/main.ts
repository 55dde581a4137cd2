/**
 * master: the supervisor. Reads master.cf, starts every service as its own
 * `deno run` process with the permission flags from lib/permissions,
 * restarts a service that dies (with a throttle against crash loops),
 * reloads on SIGHUP and stops everything on SIGTERM/SIGINT.
 *
 * One master per queue directory: it holds an flock on `pid/master.lock`.
 *
 * Unlike Postfix's master, each daemon binds its own endpoint (Deno cannot
 * hand a listening socket to a child) and one process serves all of a
 * service's connections concurrently; master.cf's maxproc is therefore
 * not a process count. Runs as given by `postwarden start`; when root and
 * main.cf sets mail_owner, daemons run as that user.
 *
 * Parameters: queue_directory, mail_owner, maillog_file, inet_interfaces,
 * relayhost, mail_spool_directory (for the permission sets).
 */
import {
  type Config,
  loadConfig,
  type MasterService,
  parseMasterCf,
  validateConfig,
} from "../../lib/config/mod.ts";
import { type Logger } from "../../lib/log/mod.ts";
import { daemonGrants, grantFlags, parseResolvConf } from "../../lib/permissions/mod.ts";
import { QueueDir } from "../../lib/queue/mod.ts";
import { formatDaemonArgs } from "../../lib/service/args.ts";
import { makeLogger } from "../../lib/service/mod.ts";
import { acquireMasterLock, releaseMasterLock } from "./pidfile.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** Services that must never run twice at once (they own queue folders). */
const SINGLETONS = new Set(["qmgr", "pickup"]);

interface Child {
  svc: MasterService;
  proc: Deno.ChildProcess | null;
  startedAt: number;
  fastFailures: number;
  timer: ReturnType<typeof setTimeout> | null;
}

interface MasterOptions {
  configDir: string;
  stderrLog: boolean;
  overrides: Record<string, string>;
  /** Developer aid: write V8 CPU profiles of every daemon here (`-P DIR`). */
  profileDir?: string;
}

function parseArgs(argv: string[]): MasterOptions {
  const o: MasterOptions = { configDir: "", stderrLog: false, overrides: {} };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "-c") o.configDir = argv[++i];
    else if (argv[i] === "-l") o.stderrLog = true;
    else if (argv[i] === "-P") o.profileDir = argv[++i];
    else if (argv[i] === "-o") {
      const kv = argv[++i] ?? "";
      const eq = kv.indexOf("=");
      if (eq > 0) o.overrides[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else throw new Error(`master: unexpected argument ${argv[i]}`);
  }
  if (!o.configDir) throw new Error("master: usage: master -c CONFIG_DIR [-l] [-o name=value]");
  return o;
}

/** The user daemons run as, when master runs as root and mail_owner is set. */
async function mailOwnerIds(config: Config): Promise<{ uid: number; gid: number } | null> {
  if (Deno.uid() !== 0 || !config.isSet("mail_owner")) return null;
  const owner = config.str("mail_owner");
  const passwd = await Deno.readTextFile("/etc/passwd");
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f[0] === owner) {
      const uid = Number(f[2]);
      if (uid === 0) {
        throw new Error(`mail_owner ${owner} has uid 0; refusing to run daemons as root`);
      }
      return { uid, gid: Number(f[3]) };
    }
  }
  throw new Error(`mail_owner: unknown user "${owner}"`);
}

class Master {
  config!: Config;
  services: MasterService[] = [];
  children = new Map<string, Child>();
  log!: Logger;
  queue!: QueueDir;
  owner: { uid: number; gid: number } | null = null;
  nameservers: string[] = [];
  stopping = false;

  constructor(readonly opts: MasterOptions) {}

  async load(): Promise<void> {
    const config = await loadConfig(this.opts.configDir, { overrides: this.opts.overrides });
    const bad = validateConfig(config);
    if (bad.length) throw new Error(bad.join("; "));
    const masterCf = await Deno.readTextFile(`${this.opts.configDir}/master.cf`);
    const parsed = parseMasterCf(masterCf);
    this.config = config;
    this.services = parsed.services;
    this.log = makeLogger(config, "master", { stderr: this.opts.stderrLog });
    for (const w of [...config.warnings, ...parsed.warnings]) this.log.warn(w);
    this.queue = new QueueDir(config.str("queue_directory"));
    this.owner = await mailOwnerIds(config);
    try {
      this.nameservers = parseResolvConf(await Deno.readTextFile("/etc/resolv.conf"));
    } catch {
      this.nameservers = [];
    }
  }

  /** The deno command line of one service. */
  commandLine(svc: MasterService): string[] {
    const param = (name: string) =>
      Object.hasOwn(svc.overrides, name) ? svc.overrides[name] : this.config.str(name);
    const grants = daemonGrants(svc, {
      configDir: this.opts.configDir,
      queueDir: this.queue.root,
      maillogFile: this.config.str("maillog_file"),
      nameservers: this.nameservers,
      services: this.services,
      param,
    });
    const overrides = { ...this.opts.overrides, ...svc.overrides };
    return [
      "run",
      `--config=${ROOT}/deno.json`,
      "--no-lock",
      ...grantFlags(grants),
      ...(this.opts.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${this.opts.profileDir}`] : []),
      `${ROOT}/daemons/${svc.command}/main.ts`,
      ...formatDaemonArgs({
        configDir: this.opts.configDir,
        service: svc.name,
        type: svc.type,
        overrides,
        stderrLog: this.opts.stderrLog,
        publicService: svc.type === "unix" && !svc.private,
      }),
    ];
  }

  start(child: Child): void {
    child.timer = null;
    if (this.stopping) return;
    const args = this.commandLine(child.svc);
    const cmd = new Deno.Command(Deno.execPath(), {
      args,
      cwd: this.queue.root,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
      ...(this.owner ?? {}),
    });
    try {
      child.proc = cmd.spawn();
    } catch (e) {
      this.log.error(`spawn ${child.svc.name}: ${(e as Error).message}`);
      this.scheduleRestart(child);
      return;
    }
    child.startedAt = Date.now();
    const proc = child.proc;
    proc.status.then((st) => {
      if (child.proc !== proc) return;
      child.proc = null;
      if (this.stopping) return;
      const how = st.signal ? `killed by signal ${st.signal}` : `exit status ${st.code}`;
      this.log.warn(
        `process ${ROOT}/daemons/${child.svc.command}/main.ts pid ${proc.pid} ${how}`,
      );
      this.scheduleRestart(child);
    });
  }

  scheduleRestart(child: Child): void {
    const ranFor = Date.now() - child.startedAt;
    child.fastFailures = ranFor < 10_000 ? child.fastFailures + 1 : 0;
    // First failure restarts at once; repeated fast failures back off to a minute.
    const delay = child.fastFailures <= 1 ? 0 : Math.min(60_000, 250 * 2 ** child.fastFailures);
    if (delay >= 4000) {
      this.log.warn(
        `${child.svc.name}: service is failing repeatedly; throttling for ${delay / 1000}s`,
      );
    }
    child.timer = setTimeout(() => this.start(child), delay);
  }

  startAll(): void {
    for (const svc of this.services) {
      const key = `${svc.name}/${svc.type}`;
      const child: Child = { svc, proc: null, startedAt: 0, fastFailures: 0, timer: null };
      this.children.set(key, child);
      this.start(child);
    }
  }

  /** Detaches children from restart handling and returns their processes. */
  detach(children: Iterable<Child>): Deno.ChildProcess[] {
    const procs: Deno.ChildProcess[] = [];
    for (const c of children) {
      if (c.timer) clearTimeout(c.timer);
      c.timer = null;
      if (c.proc) procs.push(c.proc);
      c.proc = null;
    }
    return procs;
  }

  /** Old daemons finishing their sessions after a reload. */
  draining = new Set<Deno.ChildProcess>();

  /**
   * Reload, as Postfix's: new daemons take over with the new configuration
   * while the old ones finish what they are doing. qmgr and pickup must not
   * run twice at once, so those are stopped first; every other daemon is
   * replaced first (smtpd binds with SO_REUSEPORT, a unix service's new
   * socket replaces the old path) and the old one is then told to drain
   * (SIGUSR2: stop accepting, finish, exit).
   */
  async reload(): Promise<void> {
    const old = [...this.children.values()];
    this.children = new Map();
    const singletons = old.filter((c) => SINGLETONS.has(c.svc.command));
    await this.terminate(this.detach(singletons), 15_000);
    const rest = this.detach(old.filter((c) => !SINGLETONS.has(c.svc.command)));
    for (const p of rest) {
      this.draining.add(p);
      p.status.finally(() => this.draining.delete(p));
    }
    this.startAll();
    // Give the new daemons time to bind before the old ones stop accepting.
    await new Promise((r) => setTimeout(r, 2000));
    for (const p of rest) {
      try {
        p.kill("SIGUSR2");
      } catch {
        // already gone
      }
    }
  }

  /** SIGTERM, then SIGKILL after `ms`. */
  async terminate(procs: Deno.ChildProcess[], ms: number): Promise<void> {
    for (const p of procs) {
      try {
        p.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
    const all = Promise.allSettled(procs.map((p) => p.status));
    const timeout = new Promise((r) => setTimeout(r, ms, "timeout"));
    if ((await Promise.race([all, timeout])) === "timeout") {
      for (const p of procs) {
        try {
          p.kill("SIGKILL");
        } catch {
          // already gone
        }
      }
      await all;
    }
  }

  async stopAll(): Promise<void> {
    const procs = [...this.detach(this.children.values()), ...this.draining];
    await this.terminate(procs, 5000);
    this.children.clear();
  }
}

async function main(): Promise<void> {
  let opts: MasterOptions;
  try {
    opts = parseArgs(Deno.args);
  } catch (e) {
    console.error(`postwarden/master: fatal: ${(e as Error).message}`);
    Deno.exit(1);
  }
  const m = new Master(opts);
  try {
    await m.load();
    await m.queue.create();
    if (m.owner) await chownForOwner(m, m.owner);
    await acquireMasterLock(m.queue.dir("pid"));
  } catch (e) {
    console.error(`postwarden/master: fatal: ${(e as Error).message}`);
    Deno.exit(1);
  }
  m.log.info(
    `daemon started -- version ${m.config.str("mail_version")}, configuration ${opts.configDir}`,
  );
  m.startAll();

  let reloading = false;
  Deno.addSignalListener("SIGHUP", async () => {
    if (reloading || m.stopping) return;
    reloading = true;
    try {
      const fresh = new Master(opts);
      await fresh.load();
      m.config = fresh.config;
      m.services = fresh.services;
      m.nameservers = fresh.nameservers;
      m.log = fresh.log;
      m.log.info(
        `reload -- version ${m.config.str("mail_version")}, configuration ${opts.configDir}`,
      );
      await m.reload();
    } catch (e) {
      m.log.error(`reload failed, keeping the running configuration: ${(e as Error).message}`);
    } finally {
      reloading = false;
    }
  });
  const stop = async (sig: string) => {
    if (m.stopping) return;
    m.stopping = true;
    m.log.info(`terminating on signal ${sig}`);
    await m.stopAll();
    await releaseMasterLock(m.queue.dir("pid"));
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
}

/**
 * Gives mail_owner what its daemons write: the queue directory tree (but
 * not pid/, which stays master's), the log file and the mail spool root.
 */
async function chownForOwner(
  m: Master,
  owner: { uid: number; gid: number },
): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    await Deno.chown(dir, owner.uid, owner.gid);
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.isFile) await Deno.chown(path, owner.uid, owner.gid);
    }
  };
  await Deno.chown(m.queue.root, owner.uid, owner.gid);
  for await (const e of Deno.readDir(m.queue.root)) {
    if (e.isDirectory && e.name !== "pid") await walk(`${m.queue.root}/${e.name}`);
  }
  const log = m.config.str("maillog_file");
  if (log) {
    await Deno.writeFile(log, new Uint8Array(0), { append: true, create: true });
    await Deno.chown(log, owner.uid, owner.gid);
  }
  const spool = m.config.str("mail_spool_directory").replace(/\/+$/, "");
  if (spool) await Deno.chown(spool, owner.uid, owner.gid).catch(() => {});
}

if (import.meta.main) await main();
