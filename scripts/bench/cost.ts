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
 * for what it is worth on a shared machine.
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
 *        [--main-cf "line\nline"]
 *        deno task bench --cost --summarize DIR [--top K]
 *
 * Needs root (smtp-sink -u nobody) and /usr/sbin/{smtp-source,smtp-sink}.
 */
import { Sink, smtpSource } from "./smtp_sink.ts";
import { processesOf, startInstance } from "../../tests/helpers/instance.ts";

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
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    messages: 10000,
    sessions: 20,
    size: 1000,
    warmup: 500,
    mainCf: "",
    top: 25,
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

/** CPU seconds (utime+stime) of one process, or null once it exited. */
async function cpuSeconds(pid: number): Promise<number | null> {
  try {
    const s = await Deno.readTextFile(`/proc/${pid}/stat`);
    // The command may contain spaces and parentheses: fields start after the last ")".
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return null;
  }
}

/** The daemon a process runs: "master", "smtpd", ... from its command line. */
async function daemonOf(pid: number): Promise<string> {
  const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
  const m = cmd.match(/\/daemons\/([\w-]+)\/main\.ts/);
  if (m) return m[1];
  return cmd.includes("postwarden.ts") ? "postwarden" : "other";
}

/** CPU seconds per process of the instance, with each process's daemon. */
async function snapshot(conf: string): Promise<Map<number, { daemon: string; cpu: number }>> {
  const out = new Map<number, { daemon: string; cpu: number }>();
  for (const pid of await processesOf(conf)) {
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
  let inst: Awaited<ReturnType<typeof startInstance>> | undefined;
  try {
    await sink.ready();
    inst = await startInstance({
      mainCf: [
        `relayhost = [127.0.0.1]:${sink.port}`,
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
    if (o.warmup > 0) await load(inst.port, sink, o.warmup, o.warmup, o);
    await sleep(1000); // let qmgr and smtp go idle
    const before = await snapshot(inst.conf);
    const tracers = [...before].filter(([, p]) => p.daemon === o.strace).map(([pid]) =>
      new Deno.Command("strace", {
        args: ["-c", "-f", "-p", String(pid)],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn()
    );
    if (tracers.length) await sleep(500); // attached
    const t0 = performance.now();
    await load(inst.port, sink, o.messages, o.warmup + o.messages, o);
    const seconds = (performance.now() - t0) / 1000;
    await sleep(1000);
    const after = await snapshot(inst.conf);
    for (const t of tracers) {
      t.kill("SIGINT");
      const out = new TextDecoder().decode((await t.output()).stderr);
      console.log(`strace -c of one ${o.strace} process during the load:\n${out}`);
    }
    const per = new Map<string, { cpu: number; procs: number }>();
    for (const [pid, a] of after) {
      const b = before.get(pid)?.cpu ?? 0; // started during the load: all of it counts
      const e = per.get(a.daemon) ?? { cpu: 0, procs: 0 };
      e.cpu += a.cpu - b;
      e.procs++;
      per.set(a.daemon, e);
    }
    const gone = [...before.keys()].filter((p) => !after.has(p));
    const unit = 1000 / o.messages;
    console.log(
      `cost: ${o.messages} messages, ${o.sessions} sessions, ${o.size} bytes, ` +
        `${seconds.toFixed(1)} s wall (${(o.messages / seconds).toFixed(0)} msg/s), load ${
          (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ")
        }`,
    );
    let total = 0;
    for (const [d, e] of [...per].sort((x, y) => y[1].cpu - x[1].cpu)) {
      total += e.cpu;
      console.log(
        `  ${d.padEnd(10)} ${(e.cpu * 1000 * unit).toFixed(0).padStart(6)} CPU-ms per 1000 msg` +
          ` (${e.cpu.toFixed(2)} s, ${e.procs} proc${e.procs > 1 ? "s" : ""})`,
      );
    }
    console.log(
      `  ${"total".padEnd(10)} ${(total * 1000 * unit).toFixed(0).padStart(6)} CPU-ms per 1000 msg`,
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
