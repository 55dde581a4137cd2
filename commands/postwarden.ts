/**
 * postwarden: the admin command, like postfix(1).
 *
 *   postwarden [-c DIR] start|start-fg|stop|reload|status|check|audit
 *
 * `start` runs master in the background, `start-fg` in the foreground
 * (logging to stderr too; Ctrl-C stops everything). master itself runs
 * with a scoped permission set computed here: the config directory, the
 * queue directory, the log file, and running `deno` only.
 */
import { masterSocket } from "../lib/service/wake.ts";
import { bindPath } from "../lib/ipc/mod.ts";
import {
  type Config,
  configDirFrom,
  loadConfig,
  type MasterService,
  namedFiles,
  parseMasterCf,
  validateConfig,
} from "../lib/config/mod.ts";
import { pathOverrides, type Prepared, prepareInstance } from "../lib/instance/mod.ts";
import {
  findTestFiles,
  recordTest,
  report,
  type ReportFormat,
  runTests,
} from "../lib/testrun/run.ts";
import { cacheNpmModules } from "../lib/runtime/mod.ts";
import {
  daemonGrants,
  daemonNameservers,
  grantFlags,
  mtaStsAnchorProblems,
  proxymapNpm,
  servicesTableGrants,
  unreadableTableFiles,
} from "../lib/permissions/mod.ts";
import { currentIds, exists, lookupAccount } from "../lib/privilege/mod.ts";
import { checkQueue } from "../lib/queue/layout.ts";
import { paramLookup, planServices, serviceOverrideProblems } from "../lib/service/catalog.ts";
import { runningMaster } from "../daemons/master/pidfile.ts";
import { endpointText, type InetEndpoint, inetEndpoints } from "../lib/service/endpoints.ts";
import { runAudit } from "./audit.ts";
import { smtpdTlsPolicy, tlsWanted } from "../lib/tls/policy.ts";
import { denoStat, servicesTls } from "../lib/tls/material.ts";
import { printHelpIfAsked } from "./_help.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const PROG = "postwarden";

function fatal(msg: string, code = 1): never {
  console.error(`${PROG}: fatal: ${msg}`);
  Deno.exit(code);
}

export { pathOverrides };

/**
 * master's own permission flags: what it reads, writes, runs, and nothing
 * else. `tableFiles`: the files master reads to compute the daemons' table
 * grants (SQL and socketmap .cf files, domain lists), which may live
 * outside the configuration directory.
 */
export function masterFlags(
  configDir: string,
  config: Config,
  p: Prepared,
  tableFiles: string[] = [],
  services: MasterService[] = [],
): string[] {
  const o = p.overrides;
  const q = o.queue_directory;
  const read = [configDir, q, "/etc/passwd", "/etc/resolv.conf"];
  for (const f of tableFiles) if (!f.startsWith(`${configDir}/`)) read.push(f);
  // myorigin = /etc/mailname, bounce_template_file: master reads them for the daemons.
  for (const [, path] of namedFiles(config)) if (!path.startsWith(`${configDir}/`)) read.push(path);
  // postwarden_mta_sts's trust anchors: master checks them at start and reload.
  if (config.bool("postwarden_mta_sts")) {
    const ca = config.str("postwarden_mta_sts_CAfile").trim();
    if (ca.startsWith("/")) read.push(ca);
  }
  const write = [q];
  // The control socket through which daemons ask for the ones started on demand.
  const net: string[] = [`unix:${masterSocket(q)}`, `unix:${bindPath(masterSocket(q))}`];
  // master.cf wakeup times: master connects to those services' own sockets (a reload
  // cannot add one: Deno grants no wildcard socket path).
  for (const s of services) {
    if (s.type === "unix" && s.wakeup > 0) {
      net.push(`unix:${q}/${s.private ? "private" : "public"}/${s.name}`);
    }
  }
  if (o.maillog_file) write.push(o.maillog_file);
  else {
    // syslog: master binds a client socket in pid/ and sends to /dev/log.
    read.push("/dev/log");
    write.push("/dev/log");
    net.push(`unix:${q}/pid/master.syslog.*`);
  }
  const env = config.list("import_environment").map((i) => i.split("=")[0]).filter(Boolean);
  const flags = [
    "--no-prompt",
    "--no-config",
    "--no-lock",
    "--no-remote",
    "--no-npm",
    "--unstable-net",
    `--allow-read=${read.join(",")}`,
    `--allow-write=${write.join(",")}`,
    `--allow-run=${p.runtime.deno}`,
    "--allow-sys=uid,gid,hostname",
  ];
  if (env.length) flags.push(`--allow-env=${env.join(",")}`);
  if (net.length) flags.push(`--allow-net=${net.join(",")}`);
  return flags;
}

/** Queue, log folder and runtime for master (lib/instance), or a fatal error naming what failed. */
async function prepareOrDie(config: Config): Promise<Prepared> {
  try {
    return await prepareInstance(config, {
      source: ROOT,
      deno: Deno.execPath(),
      env: Deno.env.toObject(),
    });
  } catch (e) {
    fatal((e as Error).message);
  }
}

async function loadOrDie(configDir: string): Promise<Config> {
  try {
    return await loadConfig(configDir);
  } catch (e) {
    fatal((e as Error).message);
  }
}

/**
 * The files computing the services' table grants reads, and smtpd's TLS
 * certificate and key files, which master reads for smtpd (lib/tls):
 * what master will read at start and reload. Problems are left to master,
 * which reports them.
 */
async function tableConfigFiles(
  configDir: string,
  services: Awaited<ReturnType<typeof servicePlan>>["run"],
): Promise<string[]> {
  const files = new Set<string>();
  await servicesTableGrants(
    services,
    (svc) => loadConfig(configDir, { overrides: svc.overrides }),
    {
      readTextFile: (path) => {
        files.add(path);
        return Deno.readTextFile(path);
      },
    },
  );
  for (const svc of services) {
    if (svc.command !== "smtpd") continue;
    const { policy } = smtpdTlsPolicy(await loadConfig(configDir, { overrides: svc.overrides }));
    if (!tlsWanted(policy)) continue;
    const tls = policy.chainFiles.length ? policy.chainFiles : [policy.certFile, policy.keyFile];
    for (const f of tls) if (f) files.add(f);
  }
  return [...files];
}

/** The running master's command line, split. */
async function masterArgs(masterPid: number): Promise<string[]> {
  try {
    return (await Deno.readTextFile(`/proc/${masterPid}/cmdline`)).split("\0");
  } catch (e) {
    fatal(`cannot read the running master's command line: ${(e as Error).message}`);
  }
}

/**
 * What a reload needs that master cannot do itself, done before SIGHUP,
 * or a fatal error (the configuration is then not reloaded):
 *
 * - master reads the table files it computes grants from with the read
 *   grants it was started with: a table file outside the configuration
 *   directory named since the start needs a restart;
 * - the npm drivers of the tables proxymap will serve must be in the
 *   running daemons' DENO_DIR (as at start, lib/runtime cacheNpmModules),
 *   so that a pgsql: or mysql: table added to main.cf works after the
 *   reload. The runtime is the one master was given (its -r, -C and -D
 *   arguments); the daemons' user owns that DENO_DIR.
 */
async function prepareReload(masterPid: number, configDir: string, config: Config): Promise<void> {
  const args = await masterArgs(masterPid);
  const script = args.findIndex((a) => a.endsWith("/daemons/master/main.ts"));
  const readable = args.slice(0, Math.max(script, 0))
    .filter((a) => a.startsWith("--allow-read="))
    .flatMap((a) => a.slice("--allow-read=".length).split(","));
  const plan = await servicePlan(configDir, config);
  const unread = (await tableConfigFiles(configDir, plan.run).catch(() => []))
    .filter((f) => !f.startsWith(`${configDir}/`) && !readable.includes(f));
  if (unread.length) {
    fatal(
      `master was started without read access to ${unread.join(", ")} (named since the ` +
        `start, outside ${configDir}): restart (postwarden stop; postwarden start) instead of reload`,
    );
  }
  const npm = await proxymapNpm(paramLookup(config), { readTextFile: (p) => Deno.readTextFile(p) });
  if (npm.modules.length === 0) return;
  const arg = (flag: string) => {
    const i = args.indexOf(flag, script);
    return i > script ? args[i + 1] : undefined;
  };
  const [deno, code, denoDir] = [arg("-r"), arg("-C"), arg("-D")];
  if (script < 0 || !deno || !code || !denoDir) {
    fatal(`cannot tell the running master's DENO_DIR from its command line (pid ${masterPid})`);
  }
  const st = await Deno.stat(denoDir);
  try {
    await cacheNpmModules({ deno, code, denoDir }, npm.modules, {
      user: Deno.uid() === 0 ? { uid: st.uid ?? 0, gid: st.gid ?? 0 } : undefined,
      env: Deno.env.toObject(),
      why: `proxymap's table${npm.tables.length > 1 ? "s" : ""} ${npm.tables.join(", ")}`,
    });
  } catch (e) {
    fatal(`${(e as Error).message}; the configuration was not reloaded`);
  }
}

function masterCommand(
  configDir: string,
  config: Config,
  p: Prepared,
  foreground: boolean,
  tableFiles: string[],
  services: MasterService[],
) {
  // Developer aid: POSTWARDEN_CPU_PROF=DIR writes a V8 CPU profile per daemon and for master.
  const prof = Deno.env.get("POSTWARDEN_CPU_PROF");
  const profFlags = prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : [];
  const args = [
    "run",
    ...masterFlags(configDir, config, p, tableFiles, services),
    ...profFlags,
    `${ROOT}/daemons/master/main.ts`,
  ];
  args.push("-c", configDir, "-r", p.runtime.deno, "-C", p.runtime.code, "-D", p.runtime.denoDir);
  if (foreground) args.push("-l");
  if (prof) args.push("-P", prof);
  for (const [k, v] of Object.entries(p.overrides)) args.push("-o", `${k}=${v}`);
  return args;
}

/** The TCP endpoints of master.cf's inet services. */
async function inetEndpointsOf(configDir: string, config: Config): Promise<InetEndpoint[]> {
  const mcf = parseMasterCf(await Deno.readTextFile(`${configDir}/master.cf`));
  return mcf.services.filter((s) => s.type === "inet").flatMap((s) => {
    const ifaces = (s.overrides.inet_interfaces ?? config.str("inet_interfaces"))
      .split(/[\s,]+/).filter(Boolean);
    return inetEndpoints(s.name, ifaces);
  });
}

/** master.cf's services: which run, which are skipped, what stops the start. */
async function servicePlan(configDir: string, config: Config) {
  const mcf = parseMasterCf(await Deno.readTextFile(`${configDir}/master.cf`));
  const plan = planServices(mcf.services, paramLookup(config));
  return { ...plan, warnings: mcf.warnings, all: mcf.services };
}

async function fileSize(path: string | undefined): Promise<number> {
  if (!path) return 0;
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

/** fatal: lines the daemons logged since `offset` (what made them exit). */
async function newFatalLines(path: string | undefined, offset: number): Promise<string[]> {
  if (!path) return [];
  try {
    const text = new TextDecoder().decode((await Deno.readFile(path)).subarray(offset));
    return [
      ...new Set(
        text.split("\n").filter((l) => / fatal: /.test(l)).map((l) =>
          l.replace(/^.*? \S+\/(\S+)\[\d+\]: /, "$1: ")
        ),
      ),
    ];
  } catch {
    return [];
  }
}

async function canConnect(hostname: string, port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({
      hostname: hostname === "0.0.0.0" ? "127.0.0.1" : hostname,
      port,
    });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether each inet endpoint can be bound, as Postfix's master binds them
 * at start: "bind ...: Address already in use" instead of a start that
 * seems to work. smtpd binds with SO_REUSEPORT (for reloads), and Linux
 * lets every socket of the same user that asks for it share the port: a
 * second instance on the same port would silently take half the
 * connections with its own configuration. This bind asks for no sharing,
 * so it fails when anything listens there.
 */
function bindProblems(endpoints: InetEndpoint[]): string[] {
  const out: string[] = [];
  for (const ep of endpoints) {
    try {
      Deno.listen({ hostname: ep.hostname, port: ep.port }).close();
    } catch (e) {
      out.push(`bind ${endpointText(ep)}: ${(e as Error).message}`);
    }
  }
  return out;
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

/**
 * `postwarden check`, like `postfix check`: every parameter and master.cf
 * service (each with its `-o` overrides), the services Postwarden skips,
 * each daemon's permission set, and the owners and modes of the queue
 * directory. Exit status 1 when something would stop the start.
 */
async function check(
  configDir: string,
  config: Config,
  configured: Record<string, string>,
): Promise<number> {
  let bad = false;
  const warn = (m: string) => console.error(`${PROG}: warning: ${m}`);
  const error = (m: string) => {
    console.error(`${PROG}: error: ${m}`);
    bad = true;
  };
  config.warnings.forEach(warn);
  validateConfig(config).forEach(error);
  try {
    const plan = await servicePlan(configDir, config);
    plan.warnings.forEach(warn);
    plan.skipped.forEach(warn);
    plan.errors.forEach(error);
    const ns = await daemonNameservers(config.str("postwarden_dns_servers"));
    const own = await serviceOverrideProblems(
      plan.run,
      (o) => loadConfig(configDir, { overrides: o }),
    );
    own.fatal.forEach(error);
    own.warnings.forEach(warn);
    const tables = await servicesTableGrants(
      plan.run,
      (svc) => loadConfig(configDir, { overrides: svc.overrides }),
    );
    tables.problems.forEach(error);
    const owner = Deno.uid() === 0 ? await lookupAccount(config.str("mail_owner")) : null;
    if (owner) (await unreadableTableFiles(tables.grants, owner)).forEach(error);
    (await mtaStsAnchorProblems(config, owner)).forEach(error);
    // smtpd's certificate and key, checked as master will read them at start.
    const tls = await servicesTls(
      plan.run,
      (svc) => loadConfig(configDir, { overrides: svc.overrides }),
      { readFile: (p) => Deno.readTextFile(p), stat: denoStat, asRoot: Deno.uid() === 0 },
    );
    tls.errors.forEach(error);
    tls.warnings.forEach(warn);
    for (const svc of plan.run) {
      const p = (n: string) => Object.hasOwn(svc.overrides, n) ? svc.overrides[n] : config.str(n);
      grantFlags(
        daemonGrants(svc, {
          queueDir: configured.queue_directory,
          nameservers: ns,
          services: plan.run,
          param: p,
          tables: tables.grants.get(svc.name),
        }),
        ROOT,
      );
    }
  } catch (e) {
    error((e as Error).message);
  }
  let owners;
  if (Deno.uid() === 0) {
    const name = config.str("mail_owner");
    const a = await lookupAccount(name);
    if (!a) warn(`mail_owner ${name} does not exist; postwarden start creates it`);
    owners = a ? { root: { uid: 0, gid: 0 }, mail: { uid: a.uid, gid: a.gid } } : null;
  } else {
    const me = currentIds();
    owners = { root: me, mail: me };
  }
  if (owners && (await exists(configured.queue_directory))) {
    const q = await Deno.realPath(configured.queue_directory);
    (await checkQueue(q, owners)).forEach(warn);
  }
  return bad ? 1 : 0;
}

/**
 * `postwarden test [--explain] [--format human|tap|junit] [PATH...]`, or
 * `postwarden test --record OUT DIALOG`: the configuration's
 * conformance tests (lib/testrun), by default the `*.dialog` files of
 * CONFIG_DIR/tests, run in an ephemeral instance; exit status 1 when one
 * fails, 2 when the configuration cannot be started.
 */
async function conformance(configDir: string, args: string[]): Promise<number> {
  let format: ReportFormat = "human";
  let explain = false;
  let record: string | undefined;
  const paths: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--explain") explain = true;
    else if (args[i] === "--record") {
      record = args[++i];
      if (!record) fatal("--record needs the file to write", 64);
    } else if (args[i] === "--format") {
      const f = args[++i];
      if (f !== "human" && f !== "tap" && f !== "junit") {
        fatal(`--format: "${f}" is not human, tap or junit`, 64);
      }
      format = f;
    } else if (args[i].startsWith("-")) fatal(`test: unknown option ${args[i]}`, 64);
    else paths.push(args[i]);
  }
  if (record !== undefined) {
    if (paths.length !== 1) fatal("--record OUT takes one dialog to run", 64);
    try {
      await Deno.writeTextFile(record, await recordTest(configDir, paths[0]), { createNew: true });
    } catch (e) {
      console.error(`${PROG}: test --record: ${(e as Error).message}`);
      return 2;
    }
    console.log(`${PROG}: wrote ${record}`);
    return 0;
  }
  let files: string[];
  try {
    files = await findTestFiles(paths.length ? paths : [`${configDir}/tests`]);
  } catch (e) {
    fatal(`test: ${(e as Error).message}`);
  }
  if (files.length === 0) fatal("test: no test files (*.dialog)");
  let results;
  try {
    results = await runTests(configDir, files, { explain });
  } catch (e) {
    console.error(`${PROG}: test: ${(e as Error).message}`);
    return 2;
  }
  console.log(report(results, format).trimEnd());
  return results.every((r) => r.ok) ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  let c: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "-c") c = argv[++i];
    else rest.push(argv[i]);
  }
  const cmd = rest[0];
  const configDir = configDirFrom({ c }, { MAIL_CONFIG: Deno.env.get("MAIL_CONFIG") });
  const usage = `usage: ${PROG} [-c config_dir] start|start-fg|stop|reload|status|check|audit|test`;
  if (!cmd) fatal(usage, 64);

  const config = await loadOrDie(configDir);
  const configured = pathOverrides(config);
  if (!configured.queue_directory) fatal("queue_directory is not set");
  const pidDir = `${configured.queue_directory}/pid`;
  const running = await runningMaster(pidDir);

  switch (cmd) {
    case "start":
    case "start-fg": {
      if (running !== null) {
        fatal(`the Postwarden mail system is already running (master pid ${running})`);
      }
      for (const w of config.warnings) console.error(`${PROG}: warning: ${w}`);
      const bad = validateConfig(config);
      const plan = await servicePlan(configDir, config);
      for (const w of plan.skipped) console.error(`${PROG}: warning: ${w}`);
      bad.push(...plan.errors);
      if (!bad.length) bad.push(...bindProblems(await inetEndpointsOf(configDir, config)));
      if (bad.length) fatal(bad.join("\n"));
      const fg = cmd === "start-fg";
      if (!fg && !configured.maillog_file && !(await exists("/dev/log"))) {
        fatal(
          "maillog_file is empty, which means syslog, and there is no /dev/log: " +
            "set maillog_file (postconf -e maillog_file=/var/log/postwarden.log) " +
            "or start a syslog daemon",
        );
      }
      const prepared = await prepareOrDie(config);
      const tableFiles = await tableConfigFiles(configDir, plan.run);
      const o = prepared.overrides;
      const as = prepared.owner
        ? `daemons run as ${prepared.owner.name} (uid ${prepared.owner.uid})`
        : `daemons run as uid ${Deno.uid()}`;
      console.error(
        `${PROG}: ${as}, queue ${o.queue_directory}, from ${prepared.runtime.code}` +
          (prepared.notes.length ? `; ${prepared.notes.join("; ")}` : ""),
      );
      const logStart = await fileSize(o.maillog_file);
      const proc = new Deno.Command(Deno.execPath(), {
        args: masterCommand(configDir, config, prepared, fg, tableFiles, plan.run),
        stdin: "null",
        stdout: fg ? "inherit" : "null",
        stderr: fg ? "inherit" : "piped",
        detached: !fg,
      }).spawn();
      if (!fg) {
        proc.unref();
        let exited = false;
        proc.status.then(() => (exited = true));
        const up = await waitFor(
          async () => exited || (await runningMaster(`${o.queue_directory}/pid`)) !== null,
          15_000,
        );
        if (!up || exited) {
          const err = exited ? await new Response(proc.stderr).text() : "";
          fatal(`master did not start${err ? `: ${err.trim()}` : "; see the log"}`);
        }
        proc.stderr.cancel().catch(() => {});
        console.error(`${PROG}: starting the Postwarden mail system`);
        // A daemon that cannot start (port in use, bad permissions) would
        // otherwise only show in the log: say so here.
        for (const ep of await inetEndpointsOf(configDir, config)) {
          const listening = await waitFor(() => canConnect(ep.hostname, ep.port), 10_000);
          if (!listening) {
            console.error(
              `${PROG}: warning: nothing listens on ${endpointText(ep)} yet; see the maillog`,
            );
          }
        }
        // A daemon that fails at start logs a fatal line within moments; on a
        // loaded machine (several smtpd processes starting at once) it can
        // take more than a second, so look for up to three.
        let fatals: string[] = [];
        await waitFor(async () => {
          fatals = await newFatalLines(o.maillog_file, logStart);
          return fatals.length > 0;
        }, 3_000);
        for (const line of fatals) console.error(`${PROG}: warning: ${line}`);
        return 0;
      }
      const forward = (sig: Deno.Signal) => () => {
        try {
          proc.kill(sig);
        } catch {
          // already gone
        }
      };
      Deno.addSignalListener("SIGINT", forward("SIGINT"));
      Deno.addSignalListener("SIGTERM", forward("SIGTERM"));
      Deno.addSignalListener("SIGHUP", forward("SIGHUP"));
      const st = await proc.status;
      return st.code;
    }
    case "stop": {
      if (running === null) {
        console.error(`${PROG}: the Postwarden mail system is not running`);
        return 1;
      }
      Deno.kill(running, "SIGTERM");
      const gone = await waitFor(async () => (await runningMaster(pidDir)) === null, 15_000);
      if (!gone) fatal(`master pid ${running} did not stop`);
      console.error(`${PROG}: stopping the Postwarden mail system`);
      return 0;
    }
    case "reload": {
      if (running === null) fatal("the Postwarden mail system is not running");
      await prepareReload(running, configDir, config);
      Deno.kill(running, "SIGHUP");
      console.error(`${PROG}: refreshing the Postwarden mail system`);
      return 0;
    }
    case "status":
      if (running === null) {
        console.error(`${PROG}: the Postwarden mail system is not running`);
        return 1;
      }
      console.error(`${PROG}: the Postwarden mail system is running: PID: ${running}`);
      return 0;
    case "check":
      return await check(configDir, config, configured);
    case "audit": {
      const prepared = await prepareOrDie(config);
      return await runAudit({ configDir, config, prepared });
    }
    case "test":
      return await conformance(configDir, rest.slice(1));
    default:
      fatal(usage, 64);
  }
}

if (import.meta.main) {
  if (printHelpIfAsked("postwarden", Deno.args)) Deno.exit(0);
  Deno.exit(await main(Deno.args));
}
