/**
 * master: the supervisor. Reads master.cf, starts every service as its own
 * `deno run` process with the command line from lib/permissions (scoped
 * grants, no remote code, no implicit storage) — the delivery agents,
 * bounce and anvil only when a client wakes them through master's control
 * socket (lib/service/wake.ts), as Postfix starts its services on demand;
 * they exit after max_idle and stay down until woken — hands each daemon its
 * configuration on stdin, writes the log for all of them (log_writer.ts),
 * restarts a service that dies (with a throttle against crash loops),
 * reloads on SIGHUP (and reopens the log) and stops everything on
 * SIGTERM/SIGINT. A unix service with a wakeup time in master.cf gets a
 * wake-up request that often (pickup scans maildrop, qmgr incoming/,
 * mtasts sends the TLS reports that are due).
 *
 * One master per queue directory: it holds an flock on `pid/master.lock`.
 *
 * Started as root, master runs no daemon as root but the pipe and virtual
 * delivery agents with unprivileged=n (catalog.ts runsAsRoot: they start
 * commands as user= and give mailbox files to their owners, inside their
 * sandboxes): each runs as mail_owner
 * (its uid and primary gid, no supplementary groups), from the runtime
 * `postwarden start` staged (lib/runtime). Started as another user,
 * everything runs as that user. `postwarden start` prepares the queue
 * directory (lib/queue/layout.ts) before master starts; master writes only
 * where root owns the folder (pid/ and the log's folder).
 *
 * Unlike Postfix's master, each daemon binds its own endpoint (Deno cannot
 * hand a listening socket to a child) and one process serves many
 * connections concurrently; master.cf's maxproc is therefore not a cap on
 * one-connection processes: an inet service runs as a few processes
 * sharing its port with SO_REUSEPORT (listeners.ts says how many). Services Postwarden has no daemon for are handled
 * by lib/service/catalog.ts (skipped with a log line, or a fatal error).
 *
 * With postwarden_daemon_hosting = worker (lib/service/hosting.ts) a daemon
 * is a Deno Worker in a worker host (host.ts) instead of a process: master
 * starts one host per configuration (a new one at each reload) and treats
 * each Worker as it treats a child process (start, signals, exit status,
 * restart).
 *
 * Parameters: queue_directory, mail_owner, maillog_file, import_environment,
 * inet_interfaces, relayhost, mail_spool_directory and the others
 * lib/permissions reads for the permission sets.
 */
import {
  type Config,
  loadConfig,
  type MasterService,
  parseMasterCf,
  validateConfig,
} from "../../lib/config/mod.ts";
import { Logger } from "../../lib/log/mod.ts";
import type { DictGrants } from "../../lib/maps/mod.ts";
import {
  daemonCommand,
  daemonEnv,
  daemonGrants,
  daemonNameservers,
  type Grants,
  hostCommand,
  mtaStsAnchorProblems,
  type PermissionContext,
  serviceContext,
  servicesTableGrants,
  unreadableTableFiles,
} from "../../lib/permissions/mod.ts";
import {
  type Hosting,
  hostingOf,
  type Running,
  WorkerHost,
  workerPermissions,
} from "../../lib/service/hosting.ts";
import {
  type Account,
  checkMailOwner,
  currentIds,
  lookupAccount,
} from "../../lib/privilege/mod.ts";
import { QueueDir } from "../../lib/queue/mod.ts";
import { rootDenoDir, type Runtime } from "../../lib/runtime/mod.ts";
import { formatDaemonArgs } from "../../lib/service/args.ts";
import { paramLookup, planServices, serviceOverrideProblems } from "../../lib/service/catalog.ts";
import type { DaemonHandoff } from "../../lib/service/mod.ts";
import { denoStat, servicesTls, type TlsMaterial } from "../../lib/tls/material.ts";
import { ipcListen, ipcRequest, type IpcServer, UNIX_PATH_MAX } from "../../lib/ipc/mod.ts";
import {
  masterSocket,
  startsOnDemand,
  type WakeReply,
  type WakeRequest,
} from "../../lib/service/wake.ts";
import { LogWriter } from "./log_writer.ts";
import { acquireMasterLock, releaseMasterLock } from "./pidfile.ts";
import { listenerProcesses } from "./listeners.ts";

/** A daemon started this recently may still be binding its socket. */
const WAKE_STARTUP_MS = 10_000;

/** Services that must never run twice at once (they own queue folders). */
const SINGLETONS = new Set(["qmgr", "pickup"]);

interface Child {
  svc: MasterService;
  /** The daemon: a process, or a Worker in a worker host. */
  proc: Running | null;
  startedAt: number;
  fastFailures: number;
  timer: ReturnType<typeof setTimeout> | null;
  /** Started on demand (lib/service/wake.ts): not at boot, and not again after an idle exit. */
  onDemand: boolean;
  /** A client asked for it while it was exiting: start it again once it has. */
  wanted: boolean;
}

interface MasterOptions {
  configDir: string;
  /** Foreground: copy the log to stderr. */
  foreground: boolean;
  overrides: Record<string, string>;
  runtime: Runtime;
  /** Developer aid: write V8 CPU profiles of every daemon here (`-P DIR`). */
  profileDir?: string;
}

function parseArgs(argv: string[]): MasterOptions {
  const o: MasterOptions = {
    configDir: "",
    foreground: false,
    overrides: {},
    runtime: { deno: "", code: "", denoDir: "" },
  };
  for (let i = 0; i < argv.length; i++) {
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value after ${argv[i]}`);
      return argv[++i];
    };
    if (argv[i] === "-c") o.configDir = next();
    else if (argv[i] === "-l") o.foreground = true;
    else if (argv[i] === "-P") o.profileDir = next();
    else if (argv[i] === "-r") o.runtime.deno = next();
    else if (argv[i] === "-C") o.runtime.code = next();
    else if (argv[i] === "-D") o.runtime.denoDir = next();
    else if (argv[i] === "-o") {
      const kv = next();
      const eq = kv.indexOf("=");
      if (eq > 0) o.overrides[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else throw new Error(`unexpected argument ${argv[i]}`);
  }
  const rt = o.runtime;
  if (!o.configDir || !rt.deno || !rt.code || !rt.denoDir) {
    throw new Error(
      "usage: master -c CONFIG_DIR -r DENO -C CODE_DIR -D DENO_DIR [-l] [-o name=value]",
    );
  }
  return o;
}

/**
 * The environment master passes on, as Postfix's import_environment: only
 * the names listed (with `name=value` setting a value).
 */
export function importedEnvironment(
  spec: string,
  getenv: (name: string) => string | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of spec.split(/[\s,]+/).filter(Boolean)) {
    const eq = item.indexOf("=");
    if (eq > 0) out[item.slice(0, eq)] = item.slice(eq + 1);
    else {
      const v = getenv(item);
      if (v !== undefined) out[item] = v;
    }
  }
  return out;
}

/** An environment variable master was allowed to read (import_environment only). */
function getenv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** What one configuration load gives master. */
interface Loaded {
  config: Config;
  mainCf: string;
  /** Files main.cf values name (myorigin = /etc/mailname), read here for the daemons. */
  files: Record<string, string>;
  services: MasterService[];
  notes: string[];
  owner: Account | null;
  nameservers: string[];
  /** What each service's lookup tables need from its sandbox, by service name. */
  tables: Map<string, DictGrants>;
  /** smtpd services' certificate and key, read here (smtpd cannot read the key file). */
  tls: Map<string, TlsMaterial>;
  /** How each service is hosted (postwarden_daemon_hosting), by service name. */
  hosting: Map<string, Hosting>;
}

async function loadAll(opts: MasterOptions): Promise<Loaded> {
  const config = await loadConfig(opts.configDir, { overrides: opts.overrides });
  const bad = validateConfig(config);
  if (bad.length) throw new Error(bad.join("; "));
  const mainCf = await Deno.readTextFile(`${opts.configDir}/main.cf`);
  const parsed = parseMasterCf(await Deno.readTextFile(`${opts.configDir}/master.cf`));
  const plan = planServices(parsed.services, paramLookup(config));
  const own = await serviceOverrideProblems(
    plan.run,
    (o) => loadConfig(opts.configDir, { overrides: { ...opts.overrides, ...o } }),
  );
  const tables = await servicesTableGrants(
    plan.run,
    (svc) =>
      Object.keys(svc.overrides).length === 0 ? Promise.resolve(config) : loadConfig(
        opts.configDir,
        { overrides: { ...opts.overrides, ...svc.overrides } },
      ),
  );
  const errors = [...plan.errors, ...own.fatal, ...tables.problems];
  const notes = own.warnings;
  if (errors.length) throw new Error(errors.join("; "));
  const files = config.readFiles();
  let owner: Account | null = null;
  if (Deno.uid() === 0) {
    const name = config.str("mail_owner");
    owner = await lookupAccount(name);
    if (!owner) throw new Error(`mail_owner: unknown user "${name}" (postwarden start creates it)`);
    checkMailOwner(owner);
    const unreadable = await unreadableTableFiles(tables.grants, owner);
    if (unreadable.length) throw new Error(unreadable.join("; "));
  }
  const anchors = await mtaStsAnchorProblems(config, owner);
  if (anchors.length) throw new Error(anchors.join("; "));
  const tls = await servicesTls(
    plan.run,
    (svc) =>
      Object.keys(svc.overrides).length === 0 ? Promise.resolve(config) : loadConfig(
        opts.configDir,
        { overrides: { ...opts.overrides, ...svc.overrides } },
      ),
    { readFile: (p) => Deno.readTextFile(p), stat: denoStat, asRoot: Deno.uid() === 0 },
  );
  if (tls.errors.length) throw new Error(tls.errors.join("; "));
  const nameservers = await daemonNameservers(config.str("postwarden_dns_servers"));
  const loaded: Loaded = {
    config,
    mainCf,
    files,
    services: plan.run,
    notes: [...config.warnings, ...parsed.warnings, ...plan.skipped, ...notes, ...tls.warnings],
    owner,
    nameservers,
    tables: tables.grants,
    tls: tls.material,
    hosting: new Map(),
  };
  // Every socket a daemon binds or reaches (lib/ipc binds under a name one
  // character longer first): one too long for sun_path stops the start here.
  const long = new Set<string>();
  for (const svc of plan.run) {
    for (const n of grantsOf(loaded, svc).net) {
      if (n.startsWith("unix:") && n.length - "unix:".length > UNIX_PATH_MAX) long.add(n.slice(5));
    }
  }
  if (long.size) {
    throw new Error(
      `socket paths longer than ${UNIX_PATH_MAX} bytes (choose a shorter queue_directory): ` +
        [...long].join(", "),
    );
  }
  for (const svc of plan.run) {
    const ctx = permissionContext(loaded, svc, "");
    const h = hostingOf({
      param: ctx.param,
      grants: daemonGrants(svc, ctx),
      asRoot: ctx.root !== undefined,
    });
    loaded.hosting.set(svc.name, h.hosting);
    if (h.reason) loaded.notes.push(`service ${svc.name} runs as a process: ${h.reason}`);
  }
  return loaded;
}

/** True when master runs this service's daemon as root (root master, unprivileged = n). */
function asRoot(l: Loaded, svc: MasterService): boolean {
  return permissionContext(l, svc, "").root !== undefined;
}

/** What lib/permissions needs to compute a service's grants. */
function permissionContext(
  l: Loaded,
  svc: MasterService,
  deno: string,
): PermissionContext {
  return serviceContext(svc, {
    queueDir: l.config.str("queue_directory"),
    nameservers: l.nameservers,
    services: l.services,
    mainCf: (n) => l.config.str(n),
    tables: l.tables,
    rootMaster: l.owner !== null,
    deno,
  });
}

/** A service's grants, as its process flags or its Worker permissions give them. */
function grantsOf(l: Loaded, svc: MasterService): Grants {
  // The Deno path matters only to a root daemon, which is never a Worker.
  return daemonGrants(svc, permissionContext(l, svc, ""));
}

class Master {
  cur!: Loaded;
  children = new Map<string, Child>();
  log!: Logger;
  writer!: LogWriter;
  queue!: QueueDir;
  stopping = false;
  /** Old daemons finishing their sessions after a reload. */
  draining = new Set<Running>();
  /** The worker host new Workers start in (null: none yet, or retired by a reload). */
  host: WorkerHost | null = null;
  /** Every worker host still running, the retired ones included. */
  hosts = new Set<WorkerHost>();
  /** Readers of the daemons' stderr, finished when each daemon has exited. */
  pumps = new Set<Promise<void>>();
  /** The control socket (wake requests). */
  control: IpcServer | null = null;
  /** master.cf wakeup timers, one per unix service with a wakeup time. */
  wakeups: ReturnType<typeof setInterval>[] = [];
  constructor(readonly opts: MasterOptions) {}

  get config(): Config {
    return this.cur.config;
  }

  /** Loads the configuration and (re)opens the log. */
  async load(): Promise<void> {
    const next = await loadAll(this.opts);
    this.cur = next;
    this.queue = new QueueDir(next.config.str("queue_directory"));
    const hostname = next.config.str("myhostname");
    this.writer?.close();
    this.writer = new LogWriter({
      file: next.config.str("maillog_file"),
      hostname,
      stderr: this.opts.foreground,
      syslogClientDir: this.queue.dir("pid"),
      owner: currentIds(),
    });
    this.writer.open();
    const writer = this.writer;
    this.log = new Logger({
      program: `${next.config.str("syslog_name")}/master`,
      hostname,
      sinks: [(line) => writer.line(line)],
    });
    for (const n of next.notes) this.log.warn(n);
  }

  /** The configuration handed to one service's daemon. */
  handoff(svc: MasterService): DaemonHandoff {
    return {
      configDir: this.opts.configDir,
      mainCf: this.cur.mainCf,
      // $service_name and $process_name, as Postfix's master sets them
      // (stock master.cf: -o syslog_name=postfix/$service_name).
      overrides: {
        ...this.opts.overrides,
        service_name: svc.name,
        process_name: svc.command,
        ...svc.overrides,
      },
      hostname: this.config.str("myhostname"),
      files: this.cur.files,
      services: this.cur.services,
      tls: this.cur.tls.get(svc.name),
    };
  }

  /** The arguments a daemon is started with (lib/service/args.ts). */
  daemonArgs(svc: MasterService): string[] {
    return formatDaemonArgs({
      configDir: this.opts.configDir,
      service: svc.name,
      type: svc.type,
      overrides: {},
      publicService: svc.type === "unix" && !svc.private,
    });
  }

  get extraFlags(): string[] {
    return this.opts.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${this.opts.profileDir}`] : [];
  }

  commandOf(svc: MasterService) {
    return daemonCommand(svc, {
      ...permissionContext(this.cur, svc, this.opts.runtime.deno),
      runtime: this.opts.runtime,
      daemonArgs: this.daemonArgs(svc),
      extraFlags: this.extraFlags,
    });
  }

  /** The environment of a daemon process or worker host. */
  envOf(root: boolean): Record<string, string> {
    const imported = importedEnvironment(this.config.str("import_environment"), getenv);
    const rt = this.opts.runtime;
    return daemonEnv(root ? { ...rt, denoDir: rootDenoDir(rt) } : rt, imported);
  }

  /** Reads a daemon's (or host's) stderr into the log until it exits. */
  pumpLog(stderr: ReadableStream<Uint8Array>, command: string, pid: number): void {
    const pump = this.writer.pump(stderr, `${this.config.str("syslog_name")}/${command}`, pid);
    this.pumps.add(pump);
    pump.finally(() => this.pumps.delete(pump));
  }

  /** Starts a daemon as its own process. */
  spawn(svc: MasterService): Running {
    const { program, args } = this.commandOf(svc);
    const root = asRoot(this.cur, svc);
    const proc = new Deno.Command(program, {
      args,
      cwd: this.queue.root,
      clearEnv: true,
      env: this.envOf(root),
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
      ...(this.cur.owner && !root ? { uid: this.cur.owner.uid, gid: this.cur.owner.gid } : {}),
    }).spawn();
    this.pumpLog(proc.stderr, svc.command, proc.pid);
    const w = proc.stdin.getWriter();
    w.write(new TextEncoder().encode(JSON.stringify(this.handoff(svc))))
      .then(() => w.close())
      .catch(() => {}); // the daemon died first; its exit is handled by start()
    return proc;
  }

  /**
   * The worker host for this configuration, started on first use as the
   * mail owner, with the union of the grants of every service the
   * configuration hosts as a Worker (a Worker cannot get more than its host).
   */
  workerHost(): WorkerHost {
    if (this.host) return this.host;
    const hosted = this.cur.services
      .filter((s) => this.cur.hosting.get(s.name) === "worker")
      .map((s) => ({ command: s.command, grants: grantsOf(this.cur, s) }));
    const { program, args } = hostCommand(hosted, {
      runtime: this.opts.runtime,
      extraFlags: this.extraFlags,
      hostArgs: ["-c", this.opts.configDir],
    });
    const proc = new Deno.Command(program, {
      args,
      cwd: this.queue.root,
      clearEnv: true,
      env: this.envOf(false),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      ...(this.cur.owner ? { uid: this.cur.owner.uid, gid: this.cur.owner.gid } : {}),
    }).spawn();
    this.pumpLog(proc.stderr, "host", proc.pid);
    const host = new WorkerHost(proc);
    this.host = host;
    this.hosts.add(host);
    host.exited.then((st) => {
      this.hosts.delete(host);
      if (this.host === host) this.host = null;
      if (!this.stopping && !st.success) {
        const how = st.signal ? `killed by signal ${st.signal}` : `exit status ${st.code}`;
        this.log.warn(
          `process ${this.opts.runtime.code}/daemons/master/host.ts pid ${proc.pid} ${how}`,
        );
      }
    });
    return host;
  }

  /** Starts a daemon as a Worker in the worker host. */
  startWorker(svc: MasterService): Running {
    return this.workerHost().start({
      script: `daemons/${svc.command}/main.ts`,
      name: svc.name,
      permissions: workerPermissions(grantsOf(this.cur, svc)),
      args: this.daemonArgs(svc),
      handoff: this.handoff(svc),
    });
  }

  start(child: Child): void {
    child.timer = null;
    child.wanted = false;
    if (this.stopping) return;
    const worker = this.cur.hosting.get(child.svc.name) === "worker";
    let proc: Running;
    try {
      proc = worker ? this.startWorker(child.svc) : this.spawn(child.svc);
    } catch (e) {
      this.log.error(`spawn ${child.svc.name}: ${(e as Error).message}`);
      this.scheduleRestart(child);
      return;
    }
    child.proc = proc;
    child.startedAt = Date.now();
    proc.status.then((st) => {
      if (child.proc !== proc) return;
      child.proc = null;
      if (this.stopping) return;
      if (child.onDemand && st.success) {
        // Idle for max_idle: it stays down until a client wakes it.
        if (child.wanted) this.start(child);
        return;
      }
      const how = st.signal ? `killed by signal ${st.signal}` : `exit status ${st.code}`;
      const what = worker ? "worker" : "process";
      this.log.warn(
        `${what} ${this.opts.runtime.code}/daemons/${child.svc.command}/main.ts pid ${proc.pid} ${how}`,
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

  /**
   * Starts every service but those started on demand, which start only
   * when a client wakes them, or when `running` names them (a reload
   * replaces the ones that were running).
   */
  startAll(running: ReadonlySet<string> = new Set()): void {
    const cpus = navigator.hardwareConcurrency;
    for (const svc of this.cur.services) {
      for (let i = 0; i < listenerProcesses(svc, cpus); i++) {
        const key = `${svc.name}/${svc.type}${i ? `#${i}` : ""}`;
        const child: Child = {
          svc,
          proc: null,
          startedAt: 0,
          fastFailures: 0,
          timer: null,
          onDemand: startsOnDemand(svc),
          wanted: false,
        };
        this.children.set(key, child);
        if (!child.onDemand || running.has(key)) this.start(child);
      }
      const child = this.children.get(`${svc.name}/${svc.type}`);
      if (svc.type === "unix" && svc.wakeup > 0 && child) {
        const lazy = svc.raw?.wakeup.endsWith("?") ?? false;
        this.wakeups.push(setInterval(() => this.sendWakeup(child, lazy), svc.wakeup * 1000));
      }
    }
  }

  /**
   * master.cf's wakeup field, as Postfix's master: every N seconds the
   * service gets a wake-up request ({op: "wakeup"} on its own socket),
   * which starts a service started on demand. "N?": none before the
   * service has run once. A service that cannot be reached is logged, and
   * tried again at the next tick.
   */
  async sendWakeup(child: Child, lazy: boolean): Promise<void> {
    if (this.stopping || (lazy && child.startedAt === 0)) return;
    const svc = child.svc;
    if (child.onDemand && !child.proc) this.wake(svc.name);
    const path = svc.private
      ? this.queue.privateSocket(svc.name)
      : this.queue.publicSocket(svc.name);
    try {
      await ipcRequest(path, { op: "wakeup" }, { timeoutMs: 30_000, retryMs: 30_000 });
    } catch (e) {
      if (this.stopping) return;
      // postwarden start grants master the sockets of the services with a wakeup time.
      const why = e instanceof Deno.errors.NotCapable || /Requires net access/.test(String(e))
        ? "master may not connect to its socket: a wakeup time added by a reload " +
          "takes effect at the next postwarden start"
        : (e as Error).message;
      this.log.warn(`${svc.name}: wakeup: ${why}`);
    }
  }

  clearWakeups(): void {
    for (const t of this.wakeups) clearInterval(t);
    this.wakeups = [];
  }

  /**
   * A client found no daemon behind `service`'s socket (lib/service
   * wake.ts): starts it, unless it is running, starting, or about to be
   * restarted. One that is running but was not reachable is exiting idle:
   * it is started again when it has exited.
   */
  wake(service: string): WakeReply {
    const child = this.children.get(`${service}/unix`);
    if (!child) return { status: "error", text: `no unix service ${service} in master.cf` };
    if (!child.onDemand) return { status: "ok" }; // runs anyway (or is being restarted)
    if (child.timer) return { status: "ok" };
    if (child.proc) {
      // Just started: it is binding its socket, and that is all.
      if (Date.now() - child.startedAt > WAKE_STARTUP_MS) child.wanted = true;
      return { status: "ok" };
    }
    this.start(child);
    return { status: "ok" };
  }

  /**
   * Serves master's control socket (wake.ts). Started as root: root's,
   * group the mail owner's, mode 0660, in root's pid/ folder, so the
   * daemons can connect but none can remove, replace or chmod it, and
   * local users cannot connect. Otherwise everything is one user's: 0600.
   */
  listenControl(): void {
    const path = masterSocket(this.queue.root);
    this.control = ipcListen(path, async (conn) => {
      const req = await conn.recvMsg<WakeRequest>();
      const reply: WakeReply = req.op === "wake" && typeof req.service === "string"
        ? this.wake(req.service)
        : { status: "error", text: "bad request" };
      await conn.send(reply);
    }, { timeoutMs: 10_000, onError: (e) => this.log.warn(`control socket: ${e.message}`) });
    if (this.cur.owner) {
      Deno.chownSync(path, 0, this.cur.owner.gid);
      Deno.chmodSync(path, 0o660);
    } else Deno.chmodSync(path, 0o600);
  }

  /** Detaches children from restart handling and returns their processes. */
  detach(children: Iterable<Child>): Running[] {
    const procs: Running[] = [];
    for (const c of children) {
      if (c.timer) clearTimeout(c.timer);
      c.timer = null;
      if (c.proc) procs.push(c.proc);
      c.proc = null;
    }
    return procs;
  }

  /**
   * Reload, as Postfix's: new daemons take over with the new configuration
   * while the old ones finish what they are doing. qmgr and pickup must not
   * run twice at once, so those are stopped first; every other daemon is
   * replaced first (smtpd binds with SO_REUSEPORT, a unix service's new
   * socket replaces the old path) and the old one is then told to drain
   * (SIGUSR2: stop accepting, finish, exit).
   */
  async reload(): Promise<void> {
    this.clearWakeups();
    const oldKeys = [...this.children.entries()];
    const old = [...this.children.values()];
    this.children = new Map();
    const singletons = old.filter((c) => SINGLETONS.has(c.svc.command));
    await this.terminate(this.detach(singletons), 15_000);
    // New Workers go to a new host with the new configuration's grants; the
    // old host exits when its last daemon has drained.
    this.host?.retire();
    this.host = null;
    // Services started on demand that are running are replaced too; the rest stay down.
    const running = new Set(
      [...oldKeys].filter(([, c]) => c.onDemand && c.proc !== null).map(([k]) => k),
    );
    const rest = this.detach(old.filter((c) => !SINGLETONS.has(c.svc.command)));
    for (const p of rest) {
      this.draining.add(p);
      p.status.finally(() => this.draining.delete(p));
    }
    this.startAll(running);
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
  async terminate(procs: Running[], ms: number): Promise<void> {
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
    this.clearWakeups();
    this.control?.close();
    const procs = [...this.detach(this.children.values()), ...this.draining];
    await this.terminate(procs, 5000);
    this.children.clear();
    // Every Worker has ended: the hosts exit when told so.
    const hosts = [...this.hosts];
    for (const h of hosts) h.close();
    await this.terminate(hosts, 5000);
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
    await acquireMasterLock(m.queue.dir("pid"));
  } catch (e) {
    console.error(`postwarden/master: fatal: ${(e as Error).message}`);
    Deno.exit(1);
  }
  const who = m.cur.owner ? `, daemons run as ${m.cur.owner.name}` : "";
  m.log.info(
    `daemon started -- version ${
      m.config.str("mail_version")
    }, configuration ${opts.configDir}${who}`,
  );
  try {
    m.listenControl();
  } catch (e) {
    m.log.fatal(`control socket ${masterSocket(m.queue.root)}: ${(e as Error).message}`);
    await releaseMasterLock(m.queue.dir("pid"));
    Deno.exit(1);
  }
  m.startAll();

  let reloading = false;
  Deno.addSignalListener("SIGHUP", async () => {
    if (reloading || m.stopping) return;
    reloading = true;
    const before = m.cur;
    try {
      await m.load();
      m.log.info(
        `reload -- version ${m.config.str("mail_version")}, configuration ${opts.configDir}`,
      );
      await m.reload();
    } catch (e) {
      m.cur = before;
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
    // The daemons' last lines, then the log is closed.
    await Promise.race([Promise.allSettled([...m.pumps]), new Promise((r) => setTimeout(r, 1000))]);
    await releaseMasterLock(m.queue.dir("pid"));
    m.writer.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
}

if (import.meta.main) await main();
