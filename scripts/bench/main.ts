/**
 * Throughput benchmark: Postwarden against a real Postfix 3.7, same load.
 *
 * Each round, for each system in turn (alternating which goes first), this
 * starts a fresh instance in a temp dir relaying everything to Postfix's
 * `smtp-sink` on a free port, drives it with `smtp-source -s S -m N -l SIZE`
 * and times from the start of smtp-source until the sink has counted N
 * messages (msg/s = N / seconds). While the load runs it samples the summed
 * VmRSS of the system's processes. Afterwards a small SMTP client in this
 * file sends sequential messages and measures end-of-DATA → 250 latency
 * (p50/p99). Fsync stays on for both systems (their defaults).
 *
 * Each run also reports where the time went, from the maillog's
 * `delays=a/b/c/d` of the timed messages (before the queue manager, in it,
 * connection set-up, transmission; both systems log them alike, at
 * delay_logging_resolution_limit = 6), and the fsync and fdatasync calls
 * per message, counted by `perf stat` over a further 1,000 messages sent
 * after the timed run (scripts/bench/stages.ts).
 *
 * `--mode discard` instead sets `default_transport = discard` on both
 * systems and times until the maillog shows N "<id>: removed" lines (no
 * sink); `--mode both` runs relay then discard each round.
 *
 * RSS is the sum of VmRSS, which counts shared pages (libraries, Deno's
 * binary) once per process; PSS (from smaps_rollup) is printed beside it as
 * the fairer total.
 *
 * `deno task bench --lookups [...]` runs the lookup-table benchmark
 * instead (lookups.ts); `deno task bench --proxymap [...]` the cost of a
 * lookup through proxymap against a direct one (proxymap.ts);
 * `deno task bench --connections [...]` the memory per idle SMTP
 * connection, Postwarden against Postfix (connections.ts);
 * `deno task bench --cost [...]` the CPU time per message of each daemon
 * under a fixed load (cost.ts), steadier than msg/s on a busy machine;
 * `deno task bench --fs-ops` the CPU of an async file-system call against
 * a sync one (fs_ops.ts).
 *
 * Usage: deno task bench [--messages N] [--sessions S] [--size BYTES]
 *        [--rounds R] [--json FILE] [--latency K] [--only postwarden|postfix]
 *        [--mode relay|discard|both] [--hosting process|worker] [--dkim [builtin]]
 *
 * Each run appends its means to docs/bench_history.jsonl (`--no-history`
 * not); `deno task bench --history` prints that file as a Markdown table.
 *
 * `--dkim` starts a real OpenDKIM (tests/helpers/milter_peers.ts) for each
 * system's run and sets `smtpd_milters` to it, so both sign every message
 * (the relay benchmark with DKIM signing, issue 11); history rows say
 * "relay+opendkim". `--dkim builtin` has Postwarden sign with its own
 * signer instead (cleanup, postwarden_dkim_signing_table, the same key),
 * against Postfix with OpenDKIM.
 *
 * `--hosting worker` runs Postwarden's daemons as Workers in one worker
 * host (postwarden_daemon_hosting, lib/service/hosting.ts); the default is
 * process.
 *
 * Needs root (Postfix's master, smtp-sink -u nobody) and /usr/sbin/{postfix,
 * smtp-source,smtp-sink}. If Postfix cannot start, its rows say why and the
 * ratio is reported as not available.
 */
import { Sink, smtpSource } from "./smtp_sink.ts";
import { processesOf, startInstance } from "../../tests/helpers/instance.ts";
import { rssKiB, startPostfix } from "../../tests/helpers/postfix.ts";
import { type OpenDkimPeer, startOpenDkim } from "../../tests/helpers/milter_peers.ts";
import { appendHistory, currentCommit, HISTORY_FILE, type SystemFigures } from "./history.ts";
import {
  formatStages,
  FsyncCounter,
  parseDelays,
  type StageFigures,
  type Stages,
  stageSummary,
} from "./stages.ts";

interface Options {
  messages: number;
  sessions: number;
  size: number;
  rounds: number;
  json: string;
  latency: number;
  only?: string;
  mode: string;
  hosting: string;
  /** Both systems sign with a real OpenDKIM behind smtpd_milters (--dkim). */
  dkim: boolean;
  /**
   * --dkim builtin: Postwarden signs with its own signer (cleanup,
   * postwarden_dkim_signing_table) and the same key; Postfix with OpenDKIM.
   */
  dkimBuiltin: boolean;
  /** The history file a summary line is appended to ("" for none). */
  history: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    messages: 2000,
    sessions: 10,
    size: 1000,
    rounds: 1,
    json: ".bench/result.json",
    latency: 200,
    mode: "relay",
    hosting: "process",
    dkim: false,
    dkimBuiltin: false,
    history: HISTORY_FILE,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    const num = () => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new Error(`bad value for ${a}: ${v}`);
      i++;
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
      case "--rounds":
        o.rounds = num();
        break;
      case "--latency":
        o.latency = num();
        break;
      case "--json":
        o.json = v;
        i++;
        break;
      case "--mode":
        o.mode = v;
        i++;
        if (!["relay", "discard", "both"].includes(v)) throw new Error(`bad --mode ${v}`);
        break;
      case "--no-history":
        o.history = "";
        break;
      case "--dkim":
        o.dkim = true;
        if (v === "builtin") {
          o.dkimBuiltin = true;
          i++;
        }
        break;
      case "--hosting":
        o.hosting = v;
        i++;
        if (!["process", "worker"].includes(v)) throw new Error(`bad --hosting ${v}`);
        break;
      case "--only":
        o.only = v;
        i++;
        break;
      default:
        throw new Error(`unknown option ${a}`);
    }
  }
  return o;
}

/** Result of one system in one round. */
interface RunResult {
  system: string;
  mode: string;
  round: number;
  ok: boolean;
  error?: string;
  messages: number;
  seconds?: number;
  msgPerSec?: number;
  rssPeakKiB?: number;
  rssEndKiB?: number;
  pssPeakKiB?: number;
  processes?: number;
  latencyMs?: { n: number; p50: number; p99: number; mean: number } | null;
  /** The maillog's delays= stages over the timed run (stages.ts). */
  stages?: Stages | null;
  /** fsync + fdatasync calls on the machine per message, in the counting pass after the timed run. */
  fsyncsPerMessage?: number | null;
  /** Why fsyncs were not counted. */
  fsyncError?: string;
}

/** A running system under test. */
interface Target {
  port: number;
  maillog: string;
  pids(): Promise<number[]>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pssKiB(pid: number): Promise<number> {
  try {
    const s = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`);
    const m = s.match(/^Pss:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Counts "<id>: removed" lines as a maillog grows. */
class RemovedCounter {
  count = 0;
  /** First "status=deferred" line seen: the run cannot finish as measured. */
  deferred = "";
  #offset = 0;
  #rest = "";
  constructor(private path: string) {}
  async poll(): Promise<number> {
    let f: Deno.FsFile;
    try {
      f = await Deno.open(this.path);
    } catch {
      return this.count;
    }
    try {
      await f.seek(this.#offset, Deno.SeekMode.Start);
      const buf = new Uint8Array(1 << 20);
      const dec = new TextDecoder();
      while (true) {
        const n = await f.read(buf);
        if (n === null || n === 0) break;
        this.#offset += n;
        const lines = (this.#rest + dec.decode(buf.subarray(0, n))).split("\n");
        this.#rest = lines.pop()!;
        for (const l of lines) {
          if (/: removed\s*$/.test(l)) this.count++;
          else if (!this.deferred && l.includes("status=deferred")) this.deferred = l;
        }
      }
    } finally {
      f.close();
    }
    return this.count;
  }
}

async function startPostwarden(
  sinkPort: number,
  mode: string,
  hosting: string,
  extra: string,
): Promise<Target> {
  const inst = await startInstance({
    mainCf: [
      extra,
      `postwarden_daemon_hosting = ${hosting}`,
      `relayhost = [127.0.0.1]:${sinkPort}`,
      mode === "discard" ? "default_transport = discard" : "",
      "mydestination =",
      "smtpd_relay_restrictions = permit_mynetworks, reject",
      "delay_logging_resolution_limit = 6",
    ].join("\n"),
  });
  return {
    port: inst.port,
    maillog: inst.maillog,
    pids: () => processesOf(inst.conf),
    stop: () => inst.stop(),
  };
}

async function startPostfixTarget(sinkPort: number, mode: string, extra: string): Promise<Target> {
  const pf = await startPostfix({
    myhostname: "bench.example",
    mainCf: [
      extra,
      `relayhost = [127.0.0.1]:${sinkPort}`,
      mode === "discard" ? "default_transport = discard" : "",
      "delay_logging_resolution_limit = 6",
    ].join("\n"),
  });
  return { port: pf.port, maillog: pf.maillog, pids: () => pf.pids(), stop: () => pf.stop() };
}

/** Reads SMTP replies (multi-line aware) from a connection. */
class Replies {
  #buf = "";
  #dec = new TextDecoder();
  constructor(private conn: Deno.Conn) {}
  async next(): Promise<string> {
    const chunk = new Uint8Array(16384);
    while (true) {
      const lines = this.#buf.split("\r\n");
      for (let i = 0; i < lines.length - 1; i++) {
        if (/^\d{3} /.test(lines[i]) || /^\d{3}$/.test(lines[i])) {
          this.#buf = lines.slice(i + 1).join("\r\n");
          return lines[i];
        }
      }
      const n = await this.conn.read(chunk);
      if (n === null) throw new Error("connection closed");
      this.#buf += this.#dec.decode(chunk.subarray(0, n));
    }
  }
}

/** Sequential messages over one session; end-of-DATA → 250 times in ms. */
async function measureLatency(port: number, count: number, size: number): Promise<number[]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const enc = new TextEncoder();
  const r = new Replies(conn);
  const send = (s: string) => conn.write(enc.encode(s));
  const expect = async (code: string) => {
    const line = await r.next();
    if (!line.startsWith(code)) throw new Error(`expected ${code}, got: ${line}`);
  };
  const body = "Subject: latency\r\n\r\n" +
    ("x".repeat(78) + "\r\n").repeat(Math.max(1, Math.floor(size / 80)));
  const times: number[] = [];
  try {
    await expect("220");
    await send("EHLO bench.example\r\n");
    await expect("250");
    for (let i = 0; i < count; i++) {
      await send("MAIL FROM:<a@example.com>\r\n");
      await expect("250");
      await send("RCPT TO:<b@example.net>\r\n");
      await expect("250");
      await send("DATA\r\n");
      await expect("354");
      await send(body);
      const t0 = performance.now();
      await send(".\r\n");
      await expect("250");
      times.push(performance.now() - t0);
    }
    await send("QUIT\r\n");
    await r.next().catch(() => "");
  } finally {
    conn.close();
  }
  return times;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function benchOne(
  system: string,
  mode: string,
  round: number,
  o: Options,
): Promise<RunResult> {
  const res: RunResult = { system, mode, round, ok: false, messages: o.messages };
  const sink = new Sink();
  let target: Target | undefined;
  let dkim: OpenDkimPeer | null = null;
  let keyDir: string | null = null;
  try {
    await sink.ready();
    let extra = "";
    if (o.dkim) {
      // smtp-source's mail is From a@example.com: OpenDKIM signs all of it (milter_peers.ts).
      dkim = await startOpenDkim({ domain: "example.com", selector: "bench", mode: "s" });
      if (!dkim) throw new Error("--dkim needs OpenDKIM (scripts/install-peers.sh) and root");
      extra = `smtpd_milters = ${dkim.milter}`;
      if (o.dkimBuiltin && system === "postwarden") {
        // The same key, for cleanup's signer; mail from 127.0.0.1 ($mynetworks) is signed.
        keyDir = await Deno.makeTempDir({ prefix: "bench-dkim-" });
        await Deno.chmod(keyDir, 0o755);
        await Deno.writeTextFile(`${keyDir}/bench.private`, dkim.privateKey, { mode: 0o644 });
        extra = `postwarden_dkim_signing_table = inline:{ example.com=bench:bench.private }\n` +
          `postwarden_dkim_key_directory = ${keyDir}`;
        await dkim.stop();
        dkim = null;
      }
    }
    target = system === "postwarden"
      ? await startPostwarden(sink.port, mode, o.hosting, extra)
      : await startPostfixTarget(sink.port, mode, extra);
    const removed = new RemovedCounter(target.maillog);
    await removed.poll(); // skip startup lines
    removed.count = 0;
    const t = target;
    let peak = 0;
    let pssPeak = 0;
    let last = 0;
    let nproc = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const pids = await t.pids();
        let sum = 0;
        let pss = 0;
        for (const p of pids) {
          sum += await rssKiB(p);
          pss += await pssKiB(p);
        }
        if (sampling) {
          pssPeak = Math.max(pssPeak, pss);
          last = sum;
          nproc = pids.length;
          peak = Math.max(peak, sum);
        }
        await sleep(250);
      }
    })();
    /** Sends `count` messages with smtp-source and waits until all are through. */
    const drive = async (count: number) => {
      const base = mode === "discard" ? removed.count : sink.count;
      const t0 = performance.now();
      const source = smtpSource(t.port, { sessions: o.sessions, count, size: o.size });
      const limitMs = Math.max(120_000, count * 20);
      const done = async () => {
        if (mode !== "discard") return sink.count - base >= count;
        await removed.poll();
        if (removed.deferred) {
          await source.output();
          throw new Error(`mail deferred: ${removed.deferred.replace(/^.*?: (?=\w+: to=)/, "")}`);
        }
        return removed.count - base >= count;
      };
      while (!(await done())) {
        if (performance.now() - t0 > limitMs) {
          const out = await source.output();
          const got = (mode === "discard" ? removed.count : sink.count) - base;
          throw new Error(
            `timed out after ${((performance.now() - t0) / 1000).toFixed(0)}s with ` +
              `${got}/${count} done; ${new TextDecoder().decode(out.stderr).slice(-200)}`,
          );
        }
        await sleep(mode === "discard" ? 20 : 5);
      }
      await source.output();
      return (performance.now() - t0) / 1000;
    };
    let seconds: number;
    try {
      seconds = await drive(o.messages);
    } finally {
      sampling = false;
      await sampler;
    }
    res.stages = stageSummary(await deliveryLines(t.maillog, o.messages));
    // Fsyncs in a pass of their own: perf's syscall tracepoints slow every
    // system call on the machine, so they stay off while the run is timed.
    const counted = Math.min(o.messages, 1000);
    const fsyncs = new FsyncCounter();
    await fsyncs.start();
    await drive(counted);
    const fsyncCount = await fsyncs.stop();
    res.fsyncsPerMessage = fsyncCount === null ? null : fsyncCount / counted;
    if (fsyncs.error) res.fsyncError = fsyncs.error;
    res.seconds = seconds;
    res.msgPerSec = o.messages / seconds;
    res.rssPeakKiB = peak;
    res.rssEndKiB = last;
    res.pssPeakKiB = pssPeak;
    res.processes = nproc;
    if (o.latency > 0) {
      try {
        const times = (await measureLatency(t.port, o.latency, o.size)).sort((a, b) => a - b);
        res.latencyMs = {
          n: times.length,
          p50: pct(times, 50),
          p99: pct(times, 99),
          mean: times.reduce((a, b) => a + b, 0) / times.length,
        };
      } catch (e) {
        res.latencyMs = null;
        console.log(`  ${system}: latency not measured (${(e as Error).message})`);
      }
    }
    res.ok = true;
  } catch (e) {
    res.error = (e as Error).message;
  } finally {
    await target?.stop().catch((e) => console.log(`  ${system}: stop: ${e.message}`));
    await dkim?.stop();
    if (keyDir) await Deno.remove(keyDir, { recursive: true });
    await sink.stop();
  }
  return res;
}

/** The timed run's delivery delays, once the maillog has them all (or after 5 s). */
async function deliveryLines(maillog: string, messages: number): Promise<number[][]> {
  const end = Date.now() + 5000;
  for (;;) {
    const lines = parseDelays(await Deno.readTextFile(maillog).catch(() => ""));
    if (lines.length >= messages || Date.now() > end) return lines.slice(0, messages);
    await sleep(100);
  }
}

function fmtFsyncs(perMessage: number | null | undefined, error?: string): string {
  return perMessage === null || perMessage === undefined
    ? `fsyncs/msg: not measured (${error ?? "no count"})`
    : `fsyncs/msg ${perMessage.toFixed(2)}`;
}

function fmtRun(r: RunResult): string {
  const name = `${r.system} ${r.mode}`.padEnd(18);
  if (!r.ok) return `  ${name} FAILED: ${r.error}`;
  const lat = r.latencyMs
    ? `latency p50 ${r.latencyMs.p50.toFixed(2)} ms p99 ${r.latencyMs.p99.toFixed(2)} ms`
    : "latency: not measured";
  return `  ${name} ${r.msgPerSec!.toFixed(1)} msg/s (${r.messages} in ${
    r.seconds!.toFixed(2)
  } s), RSS peak ${(r.rssPeakKiB! / 1024).toFixed(1)} MiB end ${
    (r.rssEndKiB! / 1024).toFixed(1)
  } MiB, PSS peak ${(r.pssPeakKiB! / 1024).toFixed(1)} MiB (${r.processes} procs), ${lat}\n` +
    `  ${"".padEnd(18)} ${fmtFsyncs(r.fsyncsPerMessage, r.fsyncError)}; ${formatStages(r.stages)}`;
}

/** Each stage's percentiles averaged over rounds. */
function meanStages(all: Stages[]): Stages | null {
  if (!all.length) return null;
  const m = (k: Exclude<keyof Stages, "n">): StageFigures => ({
    p50: mean(all.map((s) => s[k].p50)),
    p99: mean(all.map((s) => s[k].p99)),
  });
  return {
    n: all.reduce((a, s) => a + s.n, 0),
    beforeQueue: m("beforeQueue"),
    inQueue: m("inQueue"),
    connect: m("connect"),
    transmit: m("transmit"),
    total: m("total"),
  };
}

/** The stages' medians, for the history file. */
function stageP50s(s: Stages): Record<string, number> {
  return {
    beforeQmgr: s.beforeQueue.p50,
    inQmgr: s.inQueue.p50,
    connect: s.connect.p50,
    transmit: s.transmit.p50,
  };
}

const mean = (xs: number[]) => xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;

async function main() {
  const o = parseArgs(Deno.args);
  const systems = o.only ? [o.only] : ["postwarden", "postfix"];
  const modes = o.mode === "both" ? ["relay", "discard"] : [o.mode];
  console.log(
    `bench: ${o.messages} messages, ${o.sessions} sessions, ${o.size} bytes, ` +
      `${o.rounds} round(s), mode ${modes.join("+")}, Postwarden hosting ${o.hosting}`,
  );
  const results: RunResult[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    console.log(`round ${round}`);
    const order = round % 2 === 1 ? systems : [...systems].reverse();
    for (const mode of modes) {
      for (const sys of order) {
        const r = await benchOne(sys, mode, round, o);
        results.push(r);
        console.log(fmtRun(r));
      }
    }
  }
  const summary: Record<string, Record<string, unknown>> = {};
  const ratios: Record<string, number | null> = {};
  console.log("summary");
  for (const mode of modes) {
    summary[mode] = {};
    const means: Record<string, number> = {};
    for (const sys of systems) {
      const all = results.filter((r) => r.system === sys && r.mode === mode);
      const ok = all.filter((r) => r.ok);
      const lat = ok.filter((r) => r.latencyMs).map((r) => r.latencyMs!);
      const s = {
        runs: ok.length,
        failures: all.filter((r) => !r.ok).map((r) => r.error),
        meanMsgPerSec: mean(ok.map((r) => r.msgPerSec!)),
        meanRssPeakMiB: mean(ok.map((r) => r.rssPeakKiB! / 1024)),
        meanPssPeakMiB: mean(ok.map((r) => r.pssPeakKiB! / 1024)),
        latencyP50Ms: mean(lat.map((l) => l.p50)),
        latencyP99Ms: mean(lat.map((l) => l.p99)),
        fsyncsPerMessage: ok.every((r) => typeof r.fsyncsPerMessage === "number")
          ? mean(ok.map((r) => r.fsyncsPerMessage!))
          : null,
        stages: meanStages(ok.flatMap((r) => r.stages ? [r.stages] : [])),
      };
      summary[mode][sys] = s;
      const name = `${sys} ${mode}`.padEnd(18);
      if (!ok.length) {
        console.log(`  ${name} not available (${s.failures.join("; ")})`);
        continue;
      }
      means[sys] = s.meanMsgPerSec;
      console.log(
        `  ${name} mean ${s.meanMsgPerSec.toFixed(1)} msg/s, RSS peak ${
          s.meanRssPeakMiB.toFixed(1)
        } MiB, PSS peak ${s.meanPssPeakMiB.toFixed(1)} MiB, ` +
          (lat.length
            ? `latency p50 ${s.latencyP50Ms.toFixed(2)} ms p99 ${s.latencyP99Ms.toFixed(2)} ms`
            : "latency: not measured") +
          `\n  ${"".padEnd(18)} ${fmtFsyncs(s.fsyncsPerMessage)}; ${formatStages(s.stages)}`,
      );
    }
    ratios[mode] = null;
    if (means.postwarden && means.postfix) {
      ratios[mode] = means.postwarden / means.postfix;
      console.log(`  ${mode} ratio Postwarden/Postfix msg/s = ${ratios[mode]!.toFixed(3)}`);
    } else if (systems.includes("postfix") && !means.postfix) {
      const f = (summary[mode].postfix as { failures: string[] }).failures;
      console.log(`  ${mode} ratio: n/a (Postfix baseline: not available (${f.join("; ")}))`);
    }
  }
  const dir = o.json.includes("/") ? o.json.slice(0, o.json.lastIndexOf("/")) : ".";
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    o.json,
    JSON.stringify(
      { date: new Date().toISOString(), options: o, results, summary, ratios },
      null,
      2,
    ) + "\n",
  );
  console.log(`wrote ${o.json}`);
  const commit = await currentCommit();
  const figures = (x: unknown): SystemFigures | undefined => {
    const s = x as {
      runs: number;
      meanMsgPerSec: number;
      meanPssPeakMiB: number;
      latencyP50Ms: number;
      latencyP99Ms: number;
      fsyncsPerMessage: number | null;
      stages: Stages | null;
    } | undefined;
    return s && s.runs > 0
      ? {
        msgPerSec: s.meanMsgPerSec,
        pssPeakMiB: s.meanPssPeakMiB,
        latencyP50Ms: s.latencyP50Ms,
        latencyP99Ms: s.latencyP99Ms,
        ...(s.fsyncsPerMessage === null ? {} : { fsyncsPerMessage: s.fsyncsPerMessage }),
        ...(s.stages ? { stagesP50Ms: stageP50s(s.stages) } : {}),
      }
      : undefined;
  };
  if (o.history) {
    await appendHistory(
      modes.map((mode) => ({
        date: new Date().toISOString(),
        commit,
        messages: o.messages,
        sessions: o.sessions,
        size: o.size,
        rounds: o.rounds,
        hosting: o.hosting,
        mode,
        ...(o.dkim ? { milters: o.dkimBuiltin ? "dkim-builtin" : "opendkim" } : {}),
        postwarden: figures(summary[mode].postwarden),
        postfix: figures(summary[mode].postfix),
        ratio: ratios[mode],
      })),
      o.history,
    );
    console.log(`appended to ${o.history} (deno task bench --history prints it)`);
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--lookups") {
    const { main: lookups } = await import("./lookups.ts");
    Deno.exit(await lookups(Deno.args.slice(1)));
  }
  if (Deno.args[0] === "--connections") {
    const { main: connections } = await import("./connections.ts");
    Deno.exit(await connections(Deno.args.slice(1)));
  }
  if (Deno.args[0] === "--history") {
    const { main: history } = await import("./history.ts");
    Deno.exit(await history(Deno.args.slice(1)));
  }
  if (Deno.args[0] === "--cost") {
    const { main: cost } = await import("./cost.ts");
    Deno.exit(await cost(Deno.args.slice(1)));
  }
  if (Deno.args[0] === "--fs-ops") {
    const { main: fsOps } = await import("./fs_ops.ts");
    Deno.exit(await fsOps(Deno.args.slice(1)));
  }
  if (Deno.args[0] === "--proxymap") {
    const { main: proxymap } = await import("./proxymap.ts");
    Deno.exit(await proxymap(Deno.args.slice(1)));
  }
  await main();
}
