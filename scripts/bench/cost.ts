/**
 * Per-message cost benchmark: CPU time per daemon for a fixed relay load,
 * which a busy machine disturbs far less than a msg/s figure.
 *
 * Starts smtp-sink and a Postwarden instance relaying everything to it (as
 * main.ts does), sends a warm-up batch, then reads utime+stime of every
 * process of the instance from /proc/<pid>/stat, drives `smtp-source -s S
 * -m N -l SIZE` (one message per connection, smtp-source's default), waits
 * until the sink has counted all N, reads the CPU times again and prints,
 * per daemon, CPU milliseconds per 1,000 messages (processes of the same
 * daemon summed: two smtpd, several smtp). It also prints the wall time,
 * for what it is worth on a shared machine. Each figure is split into user
 * and kernel time, and a last line gives the whole machine's busy CPU per
 * 1,000 messages from /proc/stat (smtp-source, the sink, interrupts and
 * anything else running included): the figure to set against the machine's
 * capacity (2 cores = 2,000 CPU-ms per second).
 *
 * `--system postfix` puts the same load on a Postfix 3.7 instance instead;
 * `--system none` sends it straight to the sink: the machine line is then
 * what the load generator, the sink and the kernel cost without any MTA.
 * Postfix's smtpd processes exit after max_use (100) sessions, and a process
 * that exits during the load is not in the per-daemon lines: compare the two
 * systems by the machine line.
 *
 * `--smtpd-procs N` sets the maxproc of conf/master.cf's smtpd line (the
 * number of smtpd processes sharing the port, daemons/master/listeners.ts).
 *
 * `--strace DAEMON` attaches `strace -c -f` to each process of that
 * daemon for the measured load and prints its syscall counts (strace
 * slows the daemon: read the counts, not the times).
 *
 * `--profile DIR` sets POSTWARDEN_CPU_PROF=DIR for the instance: every
 * daemon writes a V8 CPU profile there when it exits (open it in Chrome's
 * DevTools, or summarize with `--summarize DIR`, which prints each
 * profile's top functions by self time).
 *
 * Usage: deno task bench --cost [--messages N] [--sessions S] [--size BYTES]
 *        [--warmup N] [--profile DIR] [--strace DAEMON] [--smtpd-procs N]
 *        [--main-cf "line\nline"] [--system postwarden|postfix|none]
 *        deno task bench --cost --summarize DIR [--top K]
 *
 * Needs root (smtp-sink -u nobody) and /usr/sbin/{smtp-source,smtp-sink}.
 */
import { Sink, smtpSource } from "./smtp_sink.ts";
import { processesOf, startInstance } from "../../tests/helpers/instance.ts";
import { startPostfix } from "../../tests/helpers/postfix.ts";

interface Options {
  messages: number;
  sessions: number;
  size: number;
  warmup: number;
  profile?: string;
  mainCf: string;
  summarize?: string;
  top: number;
  strace?: string;
  smtpdProcs?: number;
  system: "postwarden" | "postfix" | "none";
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    messages: 10000,
    sessions: 20,
    size: 1000,
    warmup: 500,
    mainCf: "",
    top: 25,
    system: "postwarden",
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`missing value for ${a}`);
    const num = () => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new Error(`bad value for ${a}: ${v}`);
      return n;
    };
    switch (a) {
      case "--messages":
        o.messages = num();
        break;
      case "--sessions":
        o.sessions = num();
        break;
      case "--size":
        o.size = num();
        break;
      case "--warmup":
        o.warmup = num();
        break;
      case "--top":
        o.top = num();
        break;
      case "--profile":
        o.profile = v;
        break;
      case "--smtpd-procs":
        o.smtpdProcs = num();
        break;
      case "--strace":
        o.strace = v;
        break;
      case "--summarize":
        o.summarize = v;
        break;
      case "--system":
        if (v !== "postwarden" && v !== "postfix" && v !== "none") {
          throw new Error(`bad --system ${v}`);
        }
        o.system = v;
        break;
      case "--main-cf":
        o.mainCf = v.replaceAll("\\n", "\n");
        break;
      default:
        throw new Error(`unknown option ${a}`);
    }
  }
  return o;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TICK = 100; // USER_HZ on Linux

interface Cpu {
  user: number;
  sys: number;
}

/** CPU seconds in user and kernel mode (utime, stime) of one process, or null once it exited. */
async function cpuSeconds(pid: number): Promise<Cpu | null> {
  try {
    const s = await Deno.readTextFile(`/proc/${pid}/stat`);
    // The command may contain spaces and parentheses: fields start after the last ")".
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { user: Number(f[11]) / TICK, sys: Number(f[12]) / TICK };
  } catch {
    return null;
  }
}

/**
 * The whole machine's busy CPU seconds (user+nice, system, irq+softirq)
 * from /proc/stat: what the load costs everything, smtp-source, the sink and
 * the kernel's network and block work included.
 */
async function machineSeconds(): Promise<{ user: number; sys: number; irq: number }> {
  const line = (await Deno.readTextFile("/proc/stat")).split("\n")[0];
  const [user, nice, system, , , irq, softirq] = line.split(/\s+/).slice(1).map(Number);
  return { user: (user + nice) / TICK, sys: system / TICK, irq: (irq + softirq) / TICK };
}

/** The daemon a process runs: "master", "smtpd", ... from its command line. */
async function daemonOf(pid: number): Promise<string> {
  const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
  const m = cmd.match(/\/daemons\/([\w-]+)\/main\.ts/);
  if (m) return m[1];
  if (cmd.includes("postwarden.ts")) return "postwarden";
  // Postfix's daemons: the program name (/usr/lib/postfix/sbin/smtpd -n ...).
  return cmd.split("\0")[0].split("/").pop() || "other";
}

/** The system under load: its SMTP port and its processes now. */
interface Target {
  port: number;
  pids(): Promise<number[]>;
  stop(): Promise<void>;
}

async function startTarget(o: Options, sinkPort: number): Promise<Target> {
  if (o.system === "none") {
    return { port: sinkPort, pids: () => Promise.resolve([]), stop: () => Promise.resolve() };
  }
  if (o.system === "postfix") {
    const pf = await startPostfix({
      myhostname: "bench.example",
      mainCf: [`relayhost = [127.0.0.1]:${sinkPort}`, o.mainCf].join("\n"),
    });
    return { port: pf.port, pids: () => pf.pids(), stop: () => pf.stop() };
  }
  const inst = await startInstance({
    mainCf: [
      `relayhost = [127.0.0.1]:${sinkPort}`,
      "mydestination =",
      "smtpd_relay_restrictions = permit_mynetworks, reject",
      o.mainCf,
    ].join("\n"),
    masterCf: o.smtpdProcs
      ? (await Deno.readTextFile(new URL("../../conf/master.cf", import.meta.url)))
        .replace(/^(2525\s+inet(\s+\S+){4})\s+\S+/m, `$1 ${o.smtpdProcs}`)
      : undefined,
    env: o.profile ? { POSTWARDEN_CPU_PROF: o.profile } : undefined,
  });
  return { port: inst.port, pids: () => processesOf(inst.conf), stop: () => inst.stop() };
}

/** CPU seconds per process of the system, with each process's daemon. */
async function snapshot(t: Target): Promise<Map<number, { daemon: string; cpu: Cpu }>> {
  const out = new Map<number, { daemon: string; cpu: Cpu }>();
  for (const pid of await t.pids()) {
    const cpu = await cpuSeconds(pid);
    if (cpu !== null) out.set(pid, { daemon: await daemonOf(pid), cpu });
  }
  return out;
}

/** Sends `count` messages with smtp-source and waits until the sink holds `until`. */
async function load(port: number, sink: Sink, count: number, until: number, o: Options) {
  const source = smtpSource(port, { sessions: o.sessions, count, size: o.size });
  const end = Date.now() + Math.max(120_000, count * 30);
  while (sink.count < until) {
    if (Date.now() > end) {
      const err = new TextDecoder().decode((await source.output()).stderr).slice(-300);
      throw new Error(`timed out with ${sink.count}/${until} at the sink; ${err}`);
    }
    await sleep(5);
  }
  await source.output();
}

async function measure(o: Options): Promise<number> {
  const sink = new Sink();
  let inst: Target | undefined;
  try {
    await sink.ready();
    inst = await startTarget(o, sink.port);
    if (o.warmup > 0) await load(inst.port, sink, o.warmup, o.warmup, o);
    await sleep(1000); // let qmgr and smtp go idle
    const before = await snapshot(inst);
    const tracers = [...before].filter(([, p]) => p.daemon === o.strace).map(([pid]) =>
      new Deno.Command("strace", {
        args: ["-c", "-f", "-p", String(pid)],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn()
    );
    if (tracers.length) await sleep(500); // attached
    const machine0 = await machineSeconds();
    const t0 = performance.now();
    await load(inst.port, sink, o.messages, o.warmup + o.messages, o);
    const seconds = (performance.now() - t0) / 1000;
    await sleep(1000);
    const after = await snapshot(inst);
    const machine1 = await machineSeconds();
    for (const t of tracers) {
      t.kill("SIGINT");
      const out = new TextDecoder().decode((await t.output()).stderr);
      console.log(`strace -c of one ${o.strace} process during the load:\n${out}`);
    }
    const per = new Map<string, Cpu & { procs: number }>();
    for (const [pid, a] of after) {
      // Started during the load: all of it counts.
      const b = before.get(pid)?.cpu ?? { user: 0, sys: 0 };
      const e = per.get(a.daemon) ?? { user: 0, sys: 0, procs: 0 };
      e.user += a.cpu.user - b.user;
      e.sys += a.cpu.sys - b.sys;
      e.procs++;
      per.set(a.daemon, e);
    }
    const gone = [...before.keys()].filter((p) => !after.has(p));
    const unit = 1000 / o.messages;
    console.log(
      `cost (${o.system}): ${o.messages} messages, ${o.sessions} sessions, ${o.size} bytes, ` +
        `${seconds.toFixed(1)} s wall (${(o.messages / seconds).toFixed(0)} msg/s), load ${
          (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ")
        }`,
    );
    const ms = (s: number) => (s * 1000 * unit).toFixed(0).padStart(6);
    const split = (c: Cpu) => `user ${ms(c.user)}, kernel ${ms(c.sys)}`;
    const total = { user: 0, sys: 0 };
    for (const [d, e] of [...per].sort((x, y) => y[1].user + y[1].sys - x[1].user - x[1].sys)) {
      total.user += e.user;
      total.sys += e.sys;
      console.log(
        `  ${d.padEnd(10)} ${ms(e.user + e.sys)} CPU-ms per 1000 msg (${split(e)};` +
          ` ${(e.user + e.sys).toFixed(2)} s, ${e.procs} proc${e.procs > 1 ? "s" : ""})`,
      );
    }
    console.log(
      `  ${"total".padEnd(10)} ${ms(total.user + total.sys)} CPU-ms per 1000 msg (${split(total)})`,
    );
    const m = {
      user: machine1.user - machine0.user,
      sys: machine1.sys - machine0.sys,
      irq: machine1.irq - machine0.irq,
    };
    console.log(
      `  ${"machine".padEnd(10)} ${ms(m.user + m.sys + m.irq)} CPU-ms per 1000 msg ` +
        `(user ${ms(m.user)}, kernel ${ms(m.sys)}, interrupts ${ms(m.irq)}; ` +
        `smtp-source, the sink and everything else included)`,
    );
    if (gone.length) {
      console.log(`  (${gone.length} process(es) exited during the load, not counted)`);
    }
    return 0;
  } finally {
    await inst?.stop().catch((e) => console.log(`stop: ${e.message}`));
    await sink.stop();
  }
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** Top functions by self time of each .cpuprofile in a folder. */
async function summarize(dir: string, top: number): Promise<number> {
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith(".cpuprofile")) continue;
    const p = JSON.parse(await Deno.readTextFile(`${dir}/${e.name}`)) as {
      nodes: ProfileNode[];
      samples: number[];
      timeDeltas: number[];
    };
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const self = new Map<string, number>();
    let total = 0;
    for (let i = 0; i < p.samples.length; i++) {
      const n = byId.get(p.samples[i])!;
      const dt = p.timeDeltas[i] ?? 0;
      const url = n.callFrame.url.replace(/^.*\/(daemons|lib)\//, "$1/");
      const key = `${n.callFrame.functionName || "(anon)"} ${url}:${n.callFrame.lineNumber + 1}`;
      self.set(key, (self.get(key) ?? 0) + dt);
      if (n.callFrame.functionName !== "(idle)") total += dt;
    }
    const main = p.nodes.map((n) => n.callFrame.url.match(/\/daemons\/([\w-]+)\/main\.ts$/))
      .find((m) => m);
    console.log(`${e.name} (${main ? main[1] : "?"}): ${(total / 1e6).toFixed(2)} s busy`);
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`  ${(v / 1e3).toFixed(0).padStart(7)} ms  ${k}`);
    }
  }
  return 0;
}

/** Entry for `deno task bench --cost`. */
export async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  if (o.summarize) return await summarize(o.summarize, o.top);
  return await measure(o);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
