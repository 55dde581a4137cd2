/**
 * Starts a whole Postwarden instance for a test: a temporary folder with
 * its own main.cf/master.cf, queue and mail spool, smtpd on a free
 * loopback port, run with `postwarden start-fg` exactly as an admin would.
 */
import { wakeService } from "../../lib/service/wake.ts";
import { processesOf } from "../../lib/testrun/instance.ts";
import { postwardenArgs, start } from "../../mod.ts";
import { run } from "./peers.ts";
import { parsedReply, SmtpClient } from "./smtp_client.ts";
import { playScript } from "./smtp_script.ts";

export { postwardenArgs };

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** A running instance. */
export interface Instance {
  dir: string;
  conf: string;
  port: number;
  queue: string;
  maillog: string;
  spool: string;
  proc: Deno.ChildProcess;
  /** Runs a repo command (postqueue.ts, sendmail.ts, ...) against this instance. */
  command(
    script: string,
    args: string[],
    stdin?: string,
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** Runs `postwarden <cmd>` (start, stop, status, check, audit, ...) for a config directory. */
export function postwarden(
  conf: string,
  cmd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(Deno.execPath(), postwardenArgs(conf, cmd));
}

/**
 * A config folder made from the embedded conf/ (not started): `${dir}/conf`
 * with main.cf plus `myhostname = mx.test.example` and the `mainCf` lines,
 * and master.cf with its "2525 inet" service on a free loopback port
 * (`listen: false` keeps master.cf as it is). `dir` gets `mode`; the mail
 * owner must reach var/ below it when started as root.
 */
export async function makeConf(
  opts: { prefix?: string; mode?: number; mainCf?: string; listen?: boolean } = {},
): Promise<{ dir: string; conf: string; port: number }> {
  const dir = await Deno.makeTempDir({ prefix: opts.prefix ?? "postwarden-conf-" });
  await Deno.chmod(dir, opts.mode ?? 0o755);
  const conf = `${dir}/conf`;
  await Deno.mkdir(conf);
  const port = freePort();
  const main = await Deno.readTextFile(`${ROOT}/conf/main.cf`);
  await Deno.writeTextFile(
    `${conf}/main.cf`,
    `${main}myhostname = mx.test.example\n${hostingLine()}${opts.mainCf ?? ""}`,
  );
  let master = await Deno.readTextFile(`${ROOT}/conf/master.cf`);
  if (opts.listen !== false) master = master.replace(/^2525(\s+inet)/m, `127.0.0.1:${port}$1`);
  await Deno.writeTextFile(`${conf}/master.cf`, master);
  return { dir, conf, port };
}

/**
 * The hosting mode tests run instances in: POSTWARDEN_TEST_HOSTING=worker
 * (.ci/run's second pass) hosts the daemons as Workers; the default is
 * process. As a main.cf line, put before the test's own lines so a test
 * that sets postwarden_daemon_hosting itself wins.
 */
export function testHosting(): "process" | "worker" {
  return Deno.env.get("POSTWARDEN_TEST_HOSTING") === "worker" ? "worker" : "process";
}

function hostingLine(): string {
  return testHosting() === "worker" ? "postwarden_daemon_hosting = worker\n" : "";
}

/** Ports {@link freePort} has handed out in this process. */
const handedOut = new Set<number>();

/**
 * A free TCP port on 127.0.0.1, never the same one twice in a test
 * process: the kernel may offer a closed port again, and two instances
 * started at once would then collide.
 */
export function freePort(): number {
  for (;;) {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

/** Waits until something accepts connections on the port. */
export async function waitPort(port: number, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms}ms`);
}

/** Polls until the predicate holds. */
export async function waitUntil(
  pred: () => Promise<boolean> | boolean,
  ms = 15_000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!(await pred())) throw new Error(`timed out waiting for ${what}`);
}

/**
 * Starts an instance; `mainCf` lines are appended to the test defaults.
 * `env` is added to the environment of `postwarden start-fg`, which master
 * and every daemon inherit. `confFiles` are written into the config
 * directory (mode 0644), where main.cf names them as `$config_directory/x`.
 */
export async function startInstance(
  opts: {
    mainCf?: string;
    masterCf?: string;
    env?: Record<string, string>;
    confFiles?: Record<string, string>;
  } = {},
): Promise<Instance> {
  const dir = await Deno.makeTempDir({ prefix: "postwarden-test-" });
  // makeTempDir gives 0700; started as root the daemons run as mail_owner and
  // must reach var/ (else postwarden start moves the queue to /var/spool/postwarden).
  await Deno.chmod(dir, 0o755);
  const conf = `${dir}/conf`;
  await Deno.mkdir(conf);
  for (const [name, text] of Object.entries(opts.confFiles ?? {})) {
    await Deno.writeTextFile(`${conf}/${name}`, text, { mode: 0o644 });
  }
  const port = freePort();
  await Deno.writeTextFile(
    `${conf}/main.cf`,
    [
      `queue_directory = ${dir}/var`,
      `maillog_file = ${dir}/var/log/maillog`,
      `mail_spool_directory = ${dir}/var/mail/`,
      "compatibility_level = 3.6",
      "myhostname = mx.test.example",
      "inet_interfaces = 127.0.0.1",
      "mydestination = $myhostname, localhost",
      "mynetworks = 127.0.0.0/8",
      "local_recipient_maps =",
      "alias_maps =",
      "alias_database =",
      "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
      "queue_run_delay = 1s",
      "minimal_backoff_time = 1s",
      "maximal_backoff_time = 2s",
      hostingLine(),
      opts.mainCf ?? "",
    ].join("\n") + "\n",
  );
  // A given master.cf's "2525 inet" line gets the free port too.
  const master = (opts.masterCf ?? await Deno.readTextFile(`${ROOT}/conf/master.cf`))
    .replace(/^2525(\s+inet)/m, `127.0.0.1:${port}$1`);
  await Deno.writeTextFile(`${conf}/master.cf`, master);
  const proc = start(conf, { env: opts.env }).process;
  const inst: Instance = {
    dir,
    conf,
    port,
    queue: `${dir}/var`,
    maillog: `${dir}/var/log/maillog`,
    spool: `${dir}/var/mail`,
    proc,
    command(script, args, stdin) {
      return run(
        Deno.execPath(),
        ["run", "-A", `${ROOT}/commands/${script}`, "-c", conf, ...args],
        {
          stdin,
        },
      );
    },
    log: () => Deno.readTextFile(`${dir}/var/log/maillog`).catch(() => ""),
    async stop() {
      // `this.proc`: a test may have restarted the instance with a new process.
      try {
        this.proc.kill("SIGTERM");
      } catch {
        // gone
      }
      await this.proc.status;
      // Everything started for this instance carries its config dir on the command line.
      try {
        await waitUntil(
          async () => (await processesOf(conf)).length === 0,
          15_000,
          "daemons to exit",
        );
      } catch (e) {
        const left = [];
        for (const pid of await processesOf(conf)) {
          const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
          left.push(`${pid}: ${cmd.replaceAll("\0", " ").slice(-120)}`);
          try {
            Deno.kill(pid, "SIGKILL");
          } catch {
            // gone
          }
        }
        throw new Error(`${(e as Error).message}; left running:\n${left.join("\n")}`);
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await waitPort(port);
    // Every daemon started at boot is up once its socket exists; the
    // delivery agents, bounce and anvil start on demand (lib/service/wake.ts).
    const sockets = ["pid/master.sock", ...BOOT_SOCKETS];
    await waitUntil(
      async () => {
        for (const s of sockets) {
          try {
            await Deno.lstat(`${dir}/var/${s}`);
          } catch {
            return false;
          }
        }
        return true;
      },
      60_000,
      "daemon sockets",
    );
  } catch (e) {
    await inst.stop().catch(() => {});
    throw e;
  }
  return inst;
}

/** Pids of processes whose command line mentions the text (lib/testrun's, shared). */
export { processesOf };

/** Pid of the daemon running a master.cf service (by default the one named after the program). */
export async function daemonPid(
  inst: Instance,
  program: string,
  service = program,
): Promise<number | null> {
  let host: number | null = null;
  for (const pid of await processesOf(inst.conf)) {
    const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    if (cmd.includes("/daemons/master/host.ts")) host = pid;
    if (!cmd.includes(`/daemons/${program}/main.ts`)) continue;
    if (program === "master" || cmd.includes(`\0-n\0${service}\0`)) return pid;
    if (program === "smtpd") return pid; // inet services are named by their address
  }
  // Worker hosting: a daemon whose socket is served but that is no process
  // of its own is a Worker in the worker host (the process to signal or watch).
  if (host !== null && program !== "master") {
    if (program === "smtpd") return host;
    const served = (dir: string) =>
      Deno.lstat(`${inst.queue}/${dir}/${service}`).then(() => true, () => false);
    if (await served("private") || await served("public")) return host;
  }
  return null;
}

/** The sockets of the daemons master starts at boot (the rest start on demand, wake.ts). */
const BOOT_SOCKETS = ["public/qmgr", "public/pickup"];

/** True when the process has exited (gone, or a zombie not yet reaped). */
export async function isDead(pid: number): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2)[0];
    return state === "Z" || state === "X";
  } catch {
    return true;
  }
}

/**
 * Kills the process running a daemon with SIGKILL (with worker hosting,
 * the worker host: every daemon it runs) and waits until it is dead and
 * the instance serves again: smtpd's port and the boot daemons' sockets.
 */
export async function killDaemon(inst: Instance, pid: number): Promise<void> {
  Deno.kill(pid, "SIGKILL");
  // Reaped by master: a zombie's other threads may still hold its sockets.
  await waitUntil(
    () => Deno.stat(`/proc/${pid}`).then(() => false, () => true),
    10_000,
    `pid ${pid} to be gone`,
  );
  await waitUntil(
    async () => {
      // Connectable, not just there: a killed daemon leaves its socket files behind.
      for (const s of BOOT_SOCKETS) {
        try {
          (await Deno.connect({ transport: "unix", path: `${inst.queue}/${s}` })).close();
        } catch {
          return false;
        }
      }
      return true;
    },
    30_000,
    "the boot daemons' sockets",
  );
  await waitPort(inst.port);
}

/**
 * Which daemon serves a service now, to tell a restarted one from the
 * old: its pid, or, for a Worker in the worker host, the host's pid and the
 * inode of the socket the Worker bound (a new Worker binds a new one).
 */
export async function daemonId(
  inst: Instance,
  program: string,
  service = program,
): Promise<string | null> {
  const pid = await daemonPid(inst, program, service);
  if (pid === null) return null;
  const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
  if (!cmd.includes("/daemons/master/host.ts")) return String(pid);
  const st = await Deno.lstat(`${inst.queue}/private/${service}`).catch(() => null);
  return st ? `${pid}:${st.ino}` : null;
}

/**
 * Starts a service master starts on demand (lib/service/wake.ts) as a
 * client needing it would, and waits for its socket; its pid.
 */
export async function wakeDaemon(inst: Instance, program: string, service = program) {
  await wakeService(inst.queue, service);
  let pid: number | null = null;
  await waitUntil(
    async () => {
      pid = await daemonPid(inst, program, service);
      return pid !== null && await Deno.lstat(`${inst.queue}/private/${service}`).then(
        () => true,
        () => false,
      );
    },
    30_000,
    `${service} to start`,
  );
  return pid!;
}

/** A minimal SMTP client for tests: returns the final reply of each step. */
export async function smtpSend(
  port: number,
  opts: { from: string; to: string[]; body: string; helo?: string },
): Promise<{ code: number; text: string; replies: string[] }> {
  const conn = await SmtpClient.connect(port);
  const replies: string[] = [];
  // Code and text without the enhanced code, as Postwarden's SMTP client sees a reply.
  const done = (lines: string[]) => {
    const { code, text } = parsedReply(lines);
    replies.push(`${code} ${text}`);
    return { code, text };
  };
  const reply = async () => done(await conn.reply());
  const cmd = async (line: string) => done(await conn.command(line));
  try {
    await reply();
    await cmd(`EHLO ${opts.helo ?? "client.test"}`);
    let r = await cmd(`MAIL FROM:<${opts.from}>`);
    if (r.code !== 250) return { ...r, replies };
    let any = false;
    for (const t of opts.to) {
      r = await cmd(`RCPT TO:<${t}>`);
      if (r.code === 250) any = true;
    }
    if (!any) return { ...r, replies };
    r = await cmd("DATA");
    if (r.code !== 354) return { ...r, replies };
    const body = opts.body.replace(/\r?\n/g, "\r\n").replace(/^\./gm, "..");
    await conn.send(body + (body.endsWith("\r\n") ? "" : "\r\n") + ".\r\n", "the message");
    r = await reply();
    await cmd("QUIT").catch(() => {});
    return { ...r, replies };
  } finally {
    conn.close();
  }
}

/**
 * `postwarden audit` for the instance, by service: the lines under each
 * service's heading (smtpd's under "smtpd", whatever its address), and
 * the whole output for messages.
 */
export async function auditSections(
  inst: Instance,
): Promise<{ sections: Map<string, string[]>; output: string }> {
  const out = await inst.command("postwarden.ts", ["audit"]);
  const sections = new Map<string, string[]>();
  let cur: string[] = [];
  for (const line of out.stdout.split("\n")) {
    const m = /^(\S+)\/(?:inet|unix) \((\w+)\)/.exec(line);
    if (m) sections.set(m[2] === "smtpd" ? "smtpd" : m[1], cur = []);
    else cur.push(line);
  }
  return { sections, output: `${out.stdout}\n${out.stderr}` };
}

/** Files in a Maildir's new/ folder. */
export async function maildirFiles(spool: string, user: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(`${spool}/${user}/new`)) {
      out.push(`${spool}/${user}/new/${e.name}`);
    }
  } catch {
    // no mailbox yet
  }
  return out.sort();
}

/**
 * One SMTP session for differential tests: the reply line (the last line of
 * each reply) to the greeting and to each command, as sent. A reply that
 * does not come within 10 s, or a closed connection, throws.
 */
export async function smtpReplies(port: number, commands: string[]): Promise<string[]> {
  const results = await playScript("127.0.0.1", port, commands, {
    strict: true,
    encoding: "utf-8",
  });
  return results.map((r) => r.replies[0].at(-1)!);
}

/**
 * Replies of {@link smtpReplies} as "COMMAND -> reply" lines for comparing
 * two servers: the greeting and successful EHLO, HELO and QUIT replies
 * name the server, so only their codes are kept.
 */
export function comparableReplies(commands: string[], replies: string[]): string[] {
  return replies.map((l, i) => {
    const cmd = commands[i - 1] ?? "greeting";
    const named = i === 0 || /^(EHLO|HELO|QUIT)/i.test(cmd) && l.startsWith("2");
    return `${cmd} -> ${named ? l.slice(0, 3) : l}`;
  });
}
