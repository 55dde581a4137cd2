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
import { dirname } from "node:path";
import {
  type Config,
  configDirFrom,
  configPath,
  loadConfig,
  parseMasterCf,
  validateConfig,
} from "../lib/config/mod.ts";
import { daemonGrants, grantFlags, parseResolvConf } from "../lib/permissions/mod.ts";
import { runningMaster } from "../daemons/master/pidfile.ts";
import { QueueDir } from "../lib/queue/mod.ts";
import { endpointText, type InetEndpoint, inetEndpoints } from "../lib/service/endpoints.ts";
import { runAudit } from "./audit.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const PROG = "postwarden";

function fatal(msg: string, code = 1): never {
  console.error(`${PROG}: fatal: ${msg}`);
  Deno.exit(code);
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

/** master's own permission flags. */
export function masterFlags(configDir: string, o: Record<string, string>): string[] {
  const q = o.queue_directory;
  const read = [configDir, q, "/etc/passwd", "/etc/resolv.conf"];
  const write = [q];
  if (o.maillog_file) write.push(o.maillog_file);
  // To hand the mail spool to mail_owner (chown needs write access).
  if (o.mail_spool_directory) write.push(o.mail_spool_directory.replace(/\/+$/, ""));
  return [
    "--no-prompt",
    `--allow-read=${read.join(",")}`,
    `--allow-write=${write.join(",")}`,
    `--allow-run=${Deno.execPath()}`,
    "--allow-sys=uid",
  ];
}

async function prepare(configDir: string) {
  let config: Config;
  try {
    config = await loadConfig(configDir);
  } catch (e) {
    fatal((e as Error).message);
  }
  const o = pathOverrides(config);
  if (!o.queue_directory) fatal("queue_directory is not set");
  await new QueueDir(o.queue_directory).create();
  if (o.maillog_file) await Deno.mkdir(dirname(o.maillog_file), { recursive: true });
  if (o.mail_spool_directory) await Deno.mkdir(o.mail_spool_directory, { recursive: true });
  return { config, o };
}

function masterCommand(configDir: string, o: Record<string, string>, foreground: boolean) {
  const args = ["run", `--config=${ROOT}/deno.json`, "--no-lock", ...masterFlags(configDir, o)];
  args.push(`${ROOT}/daemons/master/main.ts`, "-c", configDir);
  if (foreground) args.push("-l");
  // Developer aid: POSTWARDEN_CPU_PROF=DIR writes a V8 CPU profile per daemon.
  const prof = Deno.env.get("POSTWARDEN_CPU_PROF");
  if (prof) args.push("-P", prof);
  for (const [k, v] of Object.entries(o)) args.push("-o", `${k}=${v}`);
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

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
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
  const usage = `usage: ${PROG} [-c config_dir] start|start-fg|stop|reload|status|check|audit`;
  if (!cmd) fatal(usage, 64);

  const { config, o } = await prepare(configDir);
  const pidDir = `${o.queue_directory}/pid`;
  await Deno.mkdir(pidDir, { recursive: true });
  const running = await runningMaster(pidDir);

  switch (cmd) {
    case "start":
    case "start-fg": {
      if (running !== null) {
        fatal(`the Postwarden mail system is already running (master pid ${running})`);
      }
      for (const w of config.warnings) console.error(`${PROG}: warning: ${w}`);
      const bad = validateConfig(config);
      if (bad.length) fatal(bad.join("\n"));
      const fg = cmd === "start-fg";
      const logStart = await fileSize(o.maillog_file);
      const proc = new Deno.Command(Deno.execPath(), {
        args: masterCommand(configDir, o, fg),
        stdin: "null",
        stdout: fg ? "inherit" : "null",
        stderr: fg ? "inherit" : "null",
        detached: !fg,
      }).spawn();
      if (!fg) {
        proc.unref();
        const up = await waitFor(async () => (await runningMaster(pidDir)) !== null, 15_000);
        if (!up) fatal("master did not start; see the log");
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
        await new Promise((r) => setTimeout(r, 1000));
        for (const line of await newFatalLines(o.maillog_file, logStart)) {
          console.error(`${PROG}: warning: ${line}`);
        }
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
    case "check": {
      let bad = false;
      for (const w of config.warnings) console.error(`${PROG}: warning: ${w}`);
      try {
        const mcf = parseMasterCf(await Deno.readTextFile(`${configDir}/master.cf`));
        for (const w of mcf.warnings) console.error(`${PROG}: warning: ${w}`);
        const ns = parseResolvConf(await Deno.readTextFile("/etc/resolv.conf").catch(() => ""));
        for (const svc of mcf.services) {
          const p = (n: string) =>
            Object.hasOwn(svc.overrides, n) ? svc.overrides[n] : config.str(n);
          grantFlags(daemonGrants(svc, {
            configDir,
            queueDir: o.queue_directory,
            maillogFile: o.maillog_file ?? "",
            nameservers: ns,
            services: mcf.services,
            param: p,
          }));
          try {
            await Deno.stat(`${ROOT}/daemons/${svc.command}/main.ts`);
          } catch {
            console.error(
              `${PROG}: error: master.cf: service ${svc.name}: no such command "${svc.command}"`,
            );
            bad = true;
          }
        }
        for (const e of validateConfig(config)) {
          console.error(`${PROG}: error: ${e}`);
          bad = true;
        }
      } catch (e) {
        console.error(`${PROG}: error: ${(e as Error).message}`);
        bad = true;
      }
      return bad ? 1 : 0;
    }
    case "audit":
      return await runAudit({ configDir, config, overrides: o, root: ROOT });
    default:
      fatal(usage, 64);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
