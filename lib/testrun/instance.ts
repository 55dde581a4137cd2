/**
 * The ephemeral instance `postwarden test` runs an admin's configuration
 * in: a copy of the configuration directory in a temporary folder, started
 * with the same master, daemons, tables and permission sets, but
 *
 * - its own queue, data directory, log and mail spool in that folder;
 * - every master.cf inet service moved to a free port on 127.0.0.1 (so it
 *   runs beside a live instance without touching its ports or queue);
 * - smtpd trusting XCLIENT from 127.0.0.1 only (the runner sets each test's
 *   client name and address with it);
 * - the daemons asking a name server of its own for the test zone
 *   (postwarden_dns_servers; every name it is not given is NXDOMAIN, so
 *   no query leaves the machine);
 * - nothing leaving it (postwarden_capture, lib/deliver/capture.ts): smtp
 *   and lmtp send every session to the runner's sink ({@link TestSink})
 *   and log the next hop they chose, pipe and local log the commands and
 *   files they would have delivered to; mailboxes (mail_spool_directory,
 *   virtual_mailbox_base) are folders of the instance.
 *
 * Tables named by absolute paths outside the configuration directory are
 * read where they are (read-only, as the daemons read them).
 *
 * @module
 */
import { loadConfig, parseMasterCf } from "../config/mod.ts";
import { startDnsServer, type Zone } from "../dns/server.ts";
import { TestSink } from "./sink.ts";
import { postwardenArgs, start } from "../../mod.ts";

/** A running ephemeral instance. */
export interface Ephemeral {
  dir: string;
  /** The copied configuration directory. */
  conf: string;
  /** The configuration directory it was copied from. */
  source: string;
  queue: string;
  maillog: string;
  /** master.cf inet service name (as the admin wrote it) -> its port on 127.0.0.1. */
  ports: Map<string, number>;
  /** The smtpd inet services, in master.cf order. */
  smtpd: string[];
  /** Where smtp and lmtp sessions went. */
  sink: TestSink;
  /** The mailboxes: mail_spool_directory (without a trailing "/") and virtual_mailbox_base. */
  mailboxes: string[];
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Copies a folder with its subfolders; symbolic links are copied as links. */
export async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    const a = `${from}/${e.name}`;
    const b = `${to}/${e.name}`;
    if (e.isSymlink) await Deno.symlink(await Deno.readLink(a), b);
    else if (e.isDirectory) await copyTree(a, b);
    else if (e.isFile) await Deno.copyFile(a, b);
  }
}

/** master.cf with each inet service on 127.0.0.1:PORT; `ports` gets each inet service's port. */
export function ephemeralMasterCf(
  text: string,
  ports: Map<string, number>,
  port: () => number,
): string {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const tokens = line.trim().split(/\s+/);
    if (!/^[\s#]/.test(line) && tokens.length >= 8 && tokens[1] === "inet") {
      const p = port();
      ports.set(tokens[0], p);
      out.push(line.replace(/^\S+/, `127.0.0.1:${p}`));
      continue;
    }
    out.push(line);
  }
  return out.join("\n");
}

/** Starts `configDir`'s configuration as an ephemeral instance answering `zone`. */
export async function startEphemeral(
  configDir: string,
  zone: Zone,
  opts: { mainCf?: string[] } = {},
): Promise<Ephemeral> {
  const dir = await Deno.makeTempDir({ prefix: "postwarden-conformance-" });
  // Started as root, the daemons run as mail_owner and must reach what is below.
  await Deno.chmod(dir, 0o755);
  const conf = `${dir}/conf`;
  const dns = startDnsServer("127.0.0.1", 0, { ...zone, ttl: 0 });
  const sink = new TestSink(freePort());
  sink.start();
  let running: ReturnType<typeof start> | null = null;
  const stop = async () => {
    await running?.stop();
    await daemonsGone(conf);
    dns.close();
    sink.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await copyTree(configDir, conf);
    const ports = new Map<string, number>();
    const masterText = await Deno.readTextFile(`${conf}/master.cf`);
    const smtpd = parseMasterCf(masterText).services
      .filter((s) => s.type === "inet" && s.command === "smtpd").map((s) => s.name);
    await Deno.writeTextFile(`${conf}/master.cf`, ephemeralMasterCf(masterText, ports, freePort));
    const main = await Deno.readTextFile(`${conf}/main.cf`);
    // Mailboxes as the admin has them (a spool ending in "/" is of Maildirs), here.
    let maildirs = false;
    try {
      maildirs = (await loadConfig(conf)).str("mail_spool_directory").endsWith("/");
    } catch {
      // `postwarden check` below says what is wrong with it
    }
    const mailboxes = [`${dir}/var/mail`, `${dir}/var/virtual`];
    for (const m of mailboxes) {
      await Deno.mkdir(m, { recursive: true });
      // The agents write as mail_owner, a recipient or virtual_uid_maps' uid, as /tmp is.
      await Deno.chmod(m, 0o1777);
    }
    await Deno.writeTextFile(
      `${conf}/main.cf`,
      [
        main,
        "# postwarden test: an ephemeral instance",
        `queue_directory = ${dir}/var`,
        `data_directory = ${dir}/var/data`,
        `maillog_file = ${dir}/var/log/maillog`,
        `mail_spool_directory = ${mailboxes[0]}${maildirs ? "/" : ""}`,
        `virtual_mailbox_base = ${mailboxes[1]}`,
        `postwarden_capture = 127.0.0.1:${sink.port}`,
        `postwarden_dns_servers = 127.0.0.1:${dns.port}`,
        "smtpd_authorized_xclient_hosts = 127.0.0.1",
        ...(opts.mainCf ?? []),
        "",
      ].join("\n"),
    );
    // A configuration that cannot start says why here, as `postwarden check` does.
    const check = await new Deno.Command(Deno.execPath(), {
      args: postwardenArgs(conf, "check"),
      stdin: "null",
    }).output();
    if (!check.success) {
      throw new Error(
        `the configuration does not pass postwarden check:\n` +
          new TextDecoder().decode(check.stderr).trim(),
      );
    }
    running = start(conf);
    for (const p of ports.values()) await waitPort(p, running.process);
    return {
      dir,
      conf,
      source: configDir.replace(/\/+$/, ""),
      queue: `${dir}/var`,
      maillog: `${dir}/var/log/maillog`,
      ports,
      smtpd,
      sink,
      mailboxes,
      stop,
    };
  } catch (e) {
    const log = await Deno.readTextFile(`${dir}/var/log/maillog`).catch(() => "");
    await stop();
    const tail = log.trim().split("\n").slice(-10).join("\n");
    throw new Error(`${(e as Error).message}${tail ? `\n${tail}` : ""}`);
  }
}

/** Waits until the port accepts connections (or the instance has exited). */
async function waitPort(port: number, proc: Deno.ChildProcess): Promise<void> {
  let exited = false;
  proc.status.then(() => exited = true);
  const end = Date.now() + 60_000;
  while (Date.now() < end && !exited) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(
    exited
      ? "the configuration did not start (postwarden start-fg exited)"
      : `nothing listens on 127.0.0.1:${port} after 60 s`,
  );
}

/** Pids of the processes whose command line names `text` (Linux /proc; none elsewhere). */
export async function processesOf(text: string): Promise<number[]> {
  const pids: number[] = [];
  try {
    for await (const e of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
      const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`).catch(() => "");
      if (cmd.includes(text)) pids.push(Number(e.name));
    }
  } catch {
    // no /proc
  }
  return pids;
}

/**
 * Waits until every daemon of the instance (each carries the configuration
 * directory on its command line) has exited; kills what is left after 15 s.
 */
async function daemonsGone(conf: string): Promise<void> {
  const end = Date.now() + 15_000;
  while (Date.now() < end) {
    if ((await processesOf(conf)).length === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const pid of await processesOf(conf)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}
