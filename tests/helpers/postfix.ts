/**
 * Starts a real Postfix (3.7, Debian's /usr/sbin/postfix) in a temporary
 * folder for interop tests and the benchmark: its own main.cf/master.cf,
 * queue, data directory and maillog, smtpd on a free loopback port, no
 * chroot. Needs root (Postfix's master). Always `stop()` it in a finally:
 * stop waits until no process of the instance is left (killing stragglers)
 * and removes the folder.
 *
 * `virtualDomains` makes Postfix accept mail for those domains and deliver
 * every recipient with the virtual(8) agent into one Maildir,
 * `${dir}/vmail/box/` (read it with `mailbox()`), owned by the postfix user.
 */
import { run as runPeer } from "./peers.ts";
import { freePort } from "./instance.ts";

export const POSTFIX = "/usr/sbin/postfix";
export const POSTFIX_SENDMAIL = "/usr/sbin/sendmail";

export interface PostfixOptions {
  /** main.cf lines; a parameter given here replaces the default of the same name. */
  mainCf?: string;
  /** smtpd port on 127.0.0.1 (default: a free one). Ignored when `listen` is given. */
  smtpPort?: number;
  /**
   * smtpd endpoint "127.0.0.x:port" (the master.cf service name; inet_interfaces stays
   * 127.0.0.1, as Postfix refuses an address not configured on an interface there).
   */
  listen?: string;
  /** Domains delivered by virtual(8) into the Maildir `${dir}/vmail/box/`. */
  virtualDomains?: string;
  /** myhostname (default postfix.test.example). */
  myhostname?: string;
  /** How long to wait for smtpd to accept connections. */
  startTimeoutMs?: number;
}

/** A running Postfix instance. */
export interface PostfixInstance {
  /** The config directory (`postfix -c dir`); queue/, data/, maillog beside. */
  dir: string;
  /** smtpd's address and port. */
  host: string;
  port: number;
  queue: string;
  maillog: string;
  /** virtual_mailbox_base (only used with `virtualDomains`). */
  vmail: string;
  /** Pid of master(8) from its pid file, 0 if none. */
  masterPid(): Promise<number>;
  /** master and all its descendants (pids). */
  pids(): Promise<number[]>;
  /** Every process working in this instance's queue directory (master and its daemons). */
  processes(): Promise<number[]>;
  /** Files in `${vmail}/<box>/new` (default box "box"), sorted. */
  mailbox(box?: string): Promise<string[]>;
  /** The maillog so far ("" if none yet). */
  log(): Promise<string>;
  /** Postfix's sendmail(1) against this instance (`sendmail -C dir args`). */
  sendmail(args: string[], stdin: string): Promise<{ code: number; output: string }>;
  /** `postfix -c dir flush`: retry deferred mail now. */
  flush(): Promise<void>;
  /** Stops Postfix, waits for every process to exit, removes the folder. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A program's exit code and its stdout and stderr together. */
async function run(cmd: string, args: string[], stdin?: string) {
  const r = await runPeer(cmd, args, { stdin });
  return { code: r.code, text: r.stdout + r.stderr };
}

/** Resident set size of a process in KiB (0 if gone). */
export async function rssKiB(pid: number): Promise<number> {
  try {
    const s = await Deno.readTextFile(`/proc/${pid}/status`);
    const m = s.match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function alive(pid: number): boolean {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // A zombie has exited; it only waits for its parent.
    return !/^\d+ \(.*\) Z /.test(s);
  } catch {
    return false;
  }
}

/** All descendants of a pid (inclusive), via /proc/<pid>/status PPid. */
export async function treeOf(root: number): Promise<number[]> {
  const parent = new Map<number, number>();
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const s = await Deno.readTextFile(`/proc/${e.name}/status`);
      const m = s.match(/^PPid:\s+(\d+)/m);
      if (m) parent.set(Number(e.name), Number(m[1]));
    } catch {
      // gone
    }
  }
  const out = new Set<number>([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, pp] of parent) {
      if (!out.has(pid) && out.has(pp)) {
        out.add(pid);
        grew = true;
      }
    }
  }
  return [...out].filter((p) => parent.has(p));
}

/** Pids of live processes whose working directory is `cwd` (Postfix daemons chdir to the queue). */
export async function processesIn(cwd: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if ((await Deno.readLink(`/proc/${e.name}/cwd`)) === cwd && alive(Number(e.name))) {
        pids.push(Number(e.name));
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** Merges main.cf text over defaults: same-named parameters are replaced in place. */
function mergeMainCf(defaults: string[], extra: string): string {
  const order: string[] = [];
  const values = new Map<string, string>();
  const put = (line: string) => {
    const m = line.match(/^([A-Za-z0-9_]+)\s*=\s*(.*)$/);
    if (!m) return;
    if (!values.has(m[1])) order.push(m[1]);
    values.set(m[1], m[2]);
  };
  defaults.forEach(put);
  // Continuation lines (leading whitespace) belong to the parameter before them.
  const lines: string[] = [];
  for (const l of extra.split("\n")) {
    if (/^\s+\S/.test(l) && lines.length) lines[lines.length - 1] += " " + l.trim();
    else if (l.trim() && !l.trimStart().startsWith("#")) lines.push(l.trim());
  }
  lines.forEach(put);
  return order.map((k) => `${k} = ${values.get(k)}`).join("\n") + "\n";
}

/** Starts Postfix in a temp dir; throws (after cleaning up) if smtpd does not come up. */
export async function startPostfix(opts: PostfixOptions = {}): Promise<PostfixInstance> {
  let host = "127.0.0.1";
  let port = opts.smtpPort ?? 0;
  if (opts.listen) {
    const m = opts.listen.match(/^(127\.\d+\.\d+\.\d+):(\d+)$/);
    if (!m) throw new Error(`listen must be 127.x.y.z:port, got ${opts.listen}`);
    host = m[1];
    port = Number(m[2]);
  }
  if (!port) port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "postfix-test-" });
  const queue = `${dir}/queue`;
  const maillog = `${dir}/maillog`;
  const vmail = `${dir}/vmail`;
  await Deno.chmod(dir, 0o755); // the postfix user must reach data/, queue/ and vmail/
  await Deno.mkdir(queue);
  await Deno.mkdir(`${dir}/data`);
  await run("chown", ["postfix", `${dir}/data`]);
  const defaults = [
    "compatibility_level = 3.6",
    `queue_directory = ${queue}`,
    `data_directory = ${dir}/data`,
    "mail_owner = postfix",
    "setgid_group = postdrop",
    "inet_interfaces = 127.0.0.1",
    "inet_protocols = ipv4",
    `myhostname = ${opts.myhostname ?? "postfix.test.example"}`,
    "mydestination =",
    "mynetworks = 127.0.0.0/8",
    `maillog_file = ${maillog}`,
    `maillog_file_prefixes = ${dir}`,
    "smtpd_relay_restrictions = permit_mynetworks, reject",
    "alias_maps =",
    "alias_database =",
    "biff = no",
  ];
  if (opts.virtualDomains) {
    const uid = (await run("id", ["-u", "postfix"])).text.trim();
    const gid = (await run("id", ["-g", "postfix"])).text.trim();
    await Deno.mkdir(vmail);
    await run("chown", ["postfix:postfix", vmail]);
    defaults.push(
      `virtual_mailbox_domains = ${opts.virtualDomains}`,
      `virtual_mailbox_base = ${vmail}`,
      "virtual_mailbox_maps = static:box/",
      `virtual_uid_maps = static:${uid}`,
      `virtual_gid_maps = static:${gid}`,
      "virtual_minimum_uid = 1",
    );
  }
  await Deno.writeTextFile(`${dir}/main.cf`, mergeMainCf(defaults, opts.mainCf ?? ""));
  // Stock master.cf, smtpd on our endpoint, no chroot anywhere.
  const master = (await Deno.readTextFile("/etc/postfix/master.cf")).split("\n").map((l) => {
    if (/^[#\s]/.test(l) || l.trim() === "") return l;
    const f = l.split(/\s+/);
    if (f.length < 8) return l;
    if (f[0] === "smtp" && f[1] === "inet") f[0] = `${host}:${port}`;
    f[4] = "n";
    return f.join("\t");
  }).join("\n");
  await Deno.writeTextFile(`${dir}/master.cf`, master);

  const masterPid = async () => {
    try {
      return Number((await Deno.readTextFile(`${queue}/pid/master.pid`)).trim()) || 0;
    } catch {
      return 0;
    }
  };
  const pids = async () => {
    const pid = await masterPid();
    return pid && alive(pid) ? await treeOf(pid) : [];
  };
  const all = async () => [...new Set([...(await pids()), ...(await processesIn(queue))])];
  const log = () => Deno.readTextFile(maillog).catch(() => "");
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await run(POSTFIX, ["-c", dir, "stop"]);
    const end = Date.now() + 15_000;
    let left = await all();
    while (left.length && Date.now() < end) {
      await sleep(100);
      left = await all();
    }
    const report: string[] = [];
    for (const pid of left) {
      const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
      report.push(`${pid}: ${cmd.replaceAll("\0", " ").trim()}`);
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    if (report.length) {
      throw new Error(`Postfix in ${dir} left processes running (killed):\n${report.join("\n")}`);
    }
  };

  const start = await run(POSTFIX, ["-c", dir, "start"]);
  const end = Date.now() + (opts.startTimeoutMs ?? 20_000);
  while (true) {
    try {
      (await Deno.connect({ hostname: host, port })).close();
      break;
    } catch {
      if (Date.now() > end) {
        const why = (start.text + (await log())).split("\n").filter((l) => /fatal|error/.test(l))
          .slice(-3).join(" | ");
        await stop().catch(() => {});
        throw new Error(`Postfix did not start: ${why || "no listener"}`);
      }
      await sleep(100);
    }
  }
  return {
    dir,
    host,
    port,
    queue,
    maillog,
    vmail,
    masterPid,
    pids,
    processes: all,
    async mailbox(box = "box") {
      const out: string[] = [];
      try {
        for await (const e of Deno.readDir(`${vmail}/${box}/new`)) {
          out.push(`${vmail}/${box}/new/${e.name}`);
        }
      } catch {
        // no mailbox yet
      }
      return out.sort();
    },
    log,
    async sendmail(args, stdin) {
      const r = await run(POSTFIX_SENDMAIL, ["-C", dir, ...args], stdin);
      return { code: r.code, output: r.text };
    },
    async flush() {
      await run(POSTFIX, ["-c", dir, "flush"]);
    },
    stop,
  };
}
