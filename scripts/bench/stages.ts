/**
 * Where a relayed message's time goes, and what durability costs: the two
 * figures `deno task bench` prints beside msg/s, for both systems alike.
 *
 * Stages come from the maillog, which Postwarden writes as Postfix does:
 * each delivery line's `delays=a/b/c/d` is the time before the queue
 * manager (smtpd, cleanup and its fsyncs), in the queue manager, the
 * agent's connection set-up, and transmission. The bench sets
 * delay_logging_resolution_limit = 6 on both systems so that sub-10 ms
 * stages are not all logged as "0".
 *
 * Fsyncs are counted system-wide by `perf stat` on the fsync and fdatasync
 * syscall tracepoints while a load runs (nothing else on a quiet machine
 * fsyncs; smtp-source and smtp-sink do not), divided by the messages sent.
 * Enabled syscall tracepoints slow every system call, so the bench counts
 * in a pass of its own, not while it times.
 * Without perf or tracefs the figure says why it is missing.
 *
 * @module
 */

/** Percentiles of one stage, in ms. */
export interface StageFigures {
  p50: number;
  p99: number;
}

/** The four `delays=` stages and the total, over a run's delivery lines. */
export interface Stages {
  /** Delivery lines read. */
  n: number;
  beforeQueue: StageFigures;
  inQueue: StageFigures;
  connect: StageFigures;
  transmit: StageFigures;
  total: StageFigures;
}

const DELAYS = /\bdelay=([\d.]+), delays=([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+), .*status=sent /;

/** Each `status=sent` line's [total, a, b, c, d] in ms. */
export function parseDelays(log: string): number[][] {
  const out: number[][] = [];
  for (const line of log.split("\n")) {
    const m = DELAYS.exec(line);
    if (m) out.push(m.slice(1, 6).map((s) => Number(s) * 1000));
  }
  return out;
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** p50 and p99 of each stage; null when no line had delays. */
export function stageSummary(samples: number[][]): Stages | null {
  if (!samples.length) return null;
  const col = (i: number): StageFigures => {
    const xs = samples.map((s) => s[i]).sort((a, b) => a - b);
    return { p50: percentile(xs, 50), p99: percentile(xs, 99) };
  };
  return {
    n: samples.length,
    total: col(0),
    beforeQueue: col(1),
    inQueue: col(2),
    connect: col(3),
    transmit: col(4),
  };
}

/** "before queue 1.2/5.0, in queue ..." (p50/p99 ms). */
export function formatStages(s: Stages | null | undefined): string {
  if (!s) return "stages: not measured";
  const f = (x: StageFigures) => `${x.p50.toFixed(2)}/${x.p99.toFixed(2)}`;
  return `stages p50/p99 ms (${s.n} lines): before qmgr ${f(s.beforeQueue)}, ` +
    `in qmgr ${f(s.inQueue)}, connect ${f(s.connect)}, transmit ${f(s.transmit)}, ` +
    `total ${f(s.total)}`;
}

const TRACEFS = "/sys/kernel/tracing";
const EVENTS = ["syscalls:sys_enter_fsync", "syscalls:sys_enter_fdatasync"];

/** Counts fsync and fdatasync calls on the whole machine between start() and stop(). */
export class FsyncCounter {
  #proc: Deno.ChildProcess | null = null;
  /** Why nothing is counted, when so. */
  error = "";

  async start(): Promise<void> {
    try {
      await Deno.stat(`${TRACEFS}/events/syscalls`).catch(async () => {
        const m = await new Deno.Command("mount", {
          args: ["-t", "tracefs", "nodev", TRACEFS],
          stdout: "null",
          stderr: "null",
        }).output();
        if (!m.success) throw new Error(`tracefs is not mounted at ${TRACEFS}`);
      });
      this.#proc = new Deno.Command("perf", {
        args: ["stat", "-a", "-x", ",", ...EVENTS.flatMap((e) => ["-e", e])],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      // perf needs a moment to open its counters; fsyncs before that are missed.
      await new Promise((r) => setTimeout(r, 300));
    } catch (e) {
      this.#proc = null;
      this.error = e instanceof Deno.errors.NotFound ? "perf is not installed" : String(
        (e as Error).message,
      );
    }
  }

  /** The count, or null (see {@link error}). */
  async stop(): Promise<number | null> {
    const p = this.#proc;
    if (!p) return null;
    this.#proc = null;
    try {
      p.kill("SIGINT");
    } catch {
      // already ended
    }
    const out = await p.output();
    const text = new TextDecoder().decode(out.stderr);
    let total = 0;
    let seen = 0;
    for (const line of text.split("\n")) {
      const [count, , event] = line.split(",");
      if (EVENTS.includes(event) && /^\d+$/.test(count)) {
        total += Number(count);
        seen++;
      }
    }
    if (seen !== EVENTS.length) {
      this.error = `perf stat: ${text.trim().split("\n").slice(-2).join(" / ") || "no output"}`;
      return null;
    }
    return total;
  }
}
