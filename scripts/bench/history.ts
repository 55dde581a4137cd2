/**
 * The benchmark's history: `deno task bench` appends one line per run to
 * docs/bench_history.jsonl (the commit, the options and each system's
 * means), and `deno task bench --history` prints it as the Markdown table
 * the README's benchmark section shows.
 */

/** One run, as appended. */
export interface HistoryEntry {
  date: string;
  commit: string;
  messages: number;
  sessions: number;
  size: number;
  rounds: number;
  hosting: string;
  mode: string;
  /** The milters both systems ran ("opendkim" with --dkim); absent: none. */
  milters?: string;
  postwarden?: SystemFigures;
  postfix?: SystemFigures;
  ratio: number | null;
}

/** One system's means over the run's rounds. */
export interface SystemFigures {
  msgPerSec: number;
  pssPeakMiB: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** fsync + fdatasync calls per message (perf stat, system-wide); absent before they were counted. */
  fsyncsPerMessage?: number;
  /** Median ms of the maillog's delays= stages (beforeQmgr, inQmgr, connect, transmit). */
  stagesP50Ms?: Record<string, number>;
}

export const HISTORY_FILE = new URL("../../docs/bench_history.jsonl", import.meta.url).pathname;

/**
 * The checkout's commit, "+" after it when tracked files differ from it (the
 * figures are then of uncommitted code), or "unknown" outside git.
 */
export async function currentCommit(): Promise<string> {
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", {
      args: ["-C", new URL("../..", import.meta.url).pathname, ...args],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  };
  try {
    const head = await git("rev-parse", "--short", "HEAD");
    if (head === null) return "unknown";
    const changes = await git("status", "--porcelain", "--untracked-files=no");
    return changes ? `${head}+` : head;
  } catch {
    return "unknown";
  }
}

/** Appends entries to the history file. */
export async function appendHistory(entries: HistoryEntry[], file = HISTORY_FILE): Promise<void> {
  const lines = entries.map((e) => JSON.stringify(e)).join("\n") + "\n";
  await Deno.writeTextFile(file, lines, { append: true });
}

/** The history as a Markdown table, oldest first. */
export function historyTable(text: string): string {
  const rows = text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as HistoryEntry);
  const n = (x: number | undefined, d = 0) =>
    x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(d);
  const out = [
    "| date | commit | mode | hosting | messages × sessions | Postwarden msg/s | Postfix msg/s | ratio | PSS peak MiB (PW / PF) | p99 ms (PW / PF) | fsyncs/msg (PW / PF) |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    out.push(
      `| ${r.date.slice(0, 10)} | ${r.commit} | ${r.mode}${
        r.milters ? `+${r.milters}` : ""
      } | ${r.hosting} | ` +
        `${r.messages} × ${r.sessions} | ` +
        `${n(r.postwarden?.msgPerSec)} | ${n(r.postfix?.msgPerSec)} | ${
          n(r.ratio ?? undefined, 2)
        } | ` +
        `${n(r.postwarden?.pssPeakMiB)} / ${n(r.postfix?.pssPeakMiB)} | ` +
        `${n(r.postwarden?.latencyP99Ms, 2)} / ${n(r.postfix?.latencyP99Ms, 2)} | ` +
        `${n(r.postwarden?.fsyncsPerMessage, 2)} / ${n(r.postfix?.fsyncsPerMessage, 2)} |`,
    );
  }
  return out.join("\n");
}

/** `deno task bench --history [FILE]`: prints the table. */
export async function main(args: string[]): Promise<number> {
  const file = args[0] ?? HISTORY_FILE;
  const text = await Deno.readTextFile(file).catch(() => "");
  if (!text.trim()) {
    console.error(`no benchmark history in ${file}`);
    return 1;
  }
  console.log(historyTable(text));
  return 0;
}
