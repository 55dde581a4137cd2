/**
 * qshape: the queue's distribution by domain and age, like Postfix's
 * qshape(1) (a Perl script; this is its behaviour, verified against
 * Debian's /usr/sbin/qshape from Postfix 3.7).
 *
 *     qshape [-s] [-p] [-m min_subdomains] [-b bucket_count] [-t bucket_time]
 *            [-l] [-w terminal_width] [-N batch_msg_count] [-n batch_top_domains]
 *            [-c config_directory] [queue_name ...]
 *
 * Each queue file with recipients not yet delivered counts once per such
 * recipient, under the recipient's domain (lower-cased, the part after the
 * last "@", ".." folded and one leading and trailing dot dropped), or with
 * -s once under its sender's domain (MAILER-DAEMON for the null sender).
 * Ages are counted from the arrival time into buckets: the first holds
 * messages younger than bucket_time minutes (-t, default 5), each next one
 * ages up to twice the previous limit (-l: one more bucket_time), and the
 * last of bucket_count (-b, default 10) has no limit. The first column, T,
 * is the total. The first row is TOTAL; then the domains, the most counted
 * first (a tie: the shorter name first, then by name, where Postfix's
 * order is its hash order). -p also counts each parent domain (shown with
 * a leading dot, never a top-level domain), shown only when it has at
 * least min_subdomains (-m, default 5) subdomains counted. The counts end
 * at column 80 (-w: a wider terminal); a domain name too long for the room
 * left is shown as "+" (".+" for a parent) and its last characters.
 * Options whose value is not above qshape's minimum (-w 80, -b/-t/-m 0)
 * are ignored, as qshape ignores them.
 *
 * When standard output is a terminal, results are shown every
 * batch_msg_count (-N, default 1000) messages, the screen cleared first,
 * and only the top batch_top_domains (-n, default 20) domains are shown;
 * otherwise everything is printed once.
 *
 * Queues: incoming and active by default; names are relative to
 * queue_directory, absolute paths are used as they are, and folders are
 * searched recursively. A file that is not a complete Postwarden queue
 * file (or maildrop file) with a queue file name is skipped, as qshape
 * skips files that are not ready. A queue that does not exist gets
 * "Can't stat PATH: REASON" on stderr and counts as empty.
 *
 * Exit status: 0; 255 with the usage text on stderr for a bad option (or
 * -h, the usage text and 0 would be --help's); 1 for an unreadable main.cf.
 *
 * Parameters: queue_directory.
 *
 * Run: deno task qshape (see deno.json: read-only access).
 *
 * @module
 */

import { configDirFrom, ConfigError, loadConfig } from "../lib/config/mod.ts";
import { isQueueId, QueueFile } from "../lib/queue/mod.ts";
import { MAILDROP_NAME } from "../daemons/pickup/maildrop.ts";
import { hostnameIfPermitted, queueDirectory } from "./postqueue.ts";
import { getopt, GetoptError, writeStdout } from "./_cli.ts";
import { printHelpIfAsked } from "./_help.ts";

/** The layout and counting options. */
export interface ShapeOptions {
  /** -s: sender domains. */
  senders: boolean;
  /** -p: parent domains too. */
  parents: boolean;
  /** -m @default 5 */
  minSubdomains: number;
  /** -b @default 10 */
  buckets: number;
  /** -t, minutes. @default 5 */
  bucketMinutes: number;
  /** -l */
  linear: boolean;
  /** -w @default 80 */
  width: number;
}

/** qshape's defaults. */
export const DEFAULT_SHAPE: ShapeOptions = {
  senders: false,
  parents: false,
  minSubdomains: 5,
  buckets: 10,
  bucketMinutes: 5,
  linear: false,
  width: 80,
};

/** The narrowest domain column qshape allows. */
const MIN_DOMAIN_WIDTH = 18;

/** Counts per domain and age bucket (index 0: total). */
export class Shape {
  readonly counts = new Map<string, number[]>();
  /** Parent domain -> number of distinct subdomains counted. */
  readonly subdomains = new Map<string, number>();

  constructor(readonly opts: ShapeOptions = DEFAULT_SHAPE) {}

  /** The bucket (1..buckets) of a message `ageMs` old. */
  bucket(ageMs: number): number {
    const m = ageMs / (60_000 * this.opts.bucketMinutes);
    if (m < 1) return 1;
    const b = this.opts.linear ? Math.floor(m + 1) : 2 + Math.floor(Math.log(m) / Math.log(2));
    return Math.min(b, this.opts.buckets);
  }

  /** Counts one message: its sender and pending recipients, `ageMs` old. */
  add(ageMs: number, sender: string, recipients: readonly string[]): void {
    if (recipients.length === 0) return;
    const b = this.bucket(ageMs);
    for (const address of this.opts.senders ? [sender] : recipients) {
      this.#inc("TOTAL", b);
      let d = domainOf(address.toLowerCase());
      let isNew = false;
      for (;;) {
        const old = this.#inc(d, b) > 1;
        if (isNew) this.subdomains.set(d, (this.subdomains.get(d) ?? 0) + 1);
        isNew = !old;
        if (!this.opts.parents) break;
        const parent = parentOf(d);
        if (parent === null) break;
        d = parent;
      }
    }
  }

  /** Increments a domain's total and bucket; returns its new total. */
  #inc(d: string, b: number): number {
    let row = this.counts.get(d);
    if (!row) this.counts.set(d, row = new Array(this.opts.buckets + 1).fill(0));
    row[b]++;
    return ++row[0];
  }

  /** The table as qshape prints it (ends with a newline); `top` > 0 limits the rows. */
  format(top = 0): string {
    const { buckets, bucketMinutes, linear } = this.opts;
    const total = this.counts.get("TOTAL") ?? new Array(buckets + 1).fill(0);
    const heads: string[] = [];
    const widths: number[] = [];
    let room = this.opts.width;
    let t: number | string = 0;
    for (let i = 0; i <= buckets;) {
      const head = i === 0 ? "T" : String(t);
      const l = Math.max(String(total[i] ?? 0).length, head.length);
      const w = l > 2 ? l + 1 : 3;
      heads.push(head);
      widths.push(w);
      room -= w;
      if (++i < buckets) t = (t as number) + (t && !linear ? (t as number) : bucketMinutes);
      else t = `${t}+`;
    }
    const dw = Math.max(room, MIN_DOMAIN_WIDTH);
    const row = (d: string, cells: (string | number)[]) => {
      let name: string;
      if (d.length > dw) {
        name = d.startsWith(".")
          ? ".+" + d.slice(d.length - dw + 2)
          : "+" + d.slice(d.length - dw + 1);
      } else name = d.padStart(dw);
      return name + cells.map((c, i) => String(c ?? 0).padStart(widths[i])).join("") + "\n";
    };
    let out = row("", heads);
    const rows = [...this.counts.keys()];
    if (!this.counts.has("TOTAL")) rows.push("TOTAL");
    const totalOf = (d: string) => this.counts.get(d)?.[0] ?? 0;
    rows.sort((a, b) =>
      totalOf(b) - totalOf(a) || a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)
    );
    let n = 0;
    for (const d of rows) {
      if (d.startsWith(".") && (this.subdomains.get(d) ?? 0) < this.opts.minSubdomains) continue;
      if (top > 0 && ++n > top) break;
      out += row(d, this.counts.get(d) ?? total);
    }
    return out;
  }
}

/** qshape's domain of an address: after the last "@", ".." folded, one outer dot dropped. */
export function domainOf(address: string): string {
  if (address === "") return "MAILER-DAEMON";
  let d = address.slice(address.lastIndexOf("@") + 1).replace(/\.\./g, ".");
  const m = /^\.?(.+?)\.?$/s.exec(d);
  if (m) d = m[1];
  return d;
}

/** The parent of a domain as qshape's -p walks up (".b.example" of "a.b.example"), or null at a TLD's child. */
export function parentOf(d: string): string | null {
  const m = /^\.?[^.]+\.(.*\.)/s.exec(d);
  return m ? `.${m[1]}${d.slice(m[0].length)}` : null;
}

const USAGE = [
  "Usage: qshape [ -s ] [ -p ] [ -m <min_subdomains> ] [ -l ]",
  "\t[ -b <bucket_count> ] [ -t <bucket_time> ] [ -w <terminal_width> ]",
  "\t[ -N <batch_msg_count> ] [ -n <batch_top_domains> ]",
  "\t[ -c <config_directory> ] [ <queue_name> ... ]",
];

/** Where qshape writes and what it reads from its environment. */
export interface QshapeIo {
  /** Standard output text. */
  out(text: string): void | Promise<void>;
  /** One diagnostic line (without newline). */
  err(line: string): void;
  /** Environment variables (MAIL_CONFIG). @default {} */
  env?: { MAIL_CONFIG?: string };
  /** Whether stdout is a terminal (interim results). @default false */
  terminal?: boolean;
  /** Clock. @default Date.now */
  now?: () => number;
}

/** A number option, used only when above `min`, as qshape's `$opts{x} > min`. */
function above(value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value.trim());
  return Number.isFinite(n) && n > min ? n : undefined;
}

/** Runs qshape with `args`; returns the exit status. */
export async function qshape(args: string[], io: QshapeIo): Promise<number> {
  let parsed: ReturnType<typeof getopt>;
  try {
    parsed = getopt(args, "lhc:psw:b:t:m:n:N:");
  } catch (e) {
    if (!(e instanceof GetoptError)) throw e;
    // Perl's Getopt::Std words.
    const flag = /'(.)'/.exec(e.message)?.[1] ?? "?";
    io.err(
      `qshape: ${
        e.message.startsWith("option requires")
          ? `Option ${flag} requires an argument`
          : `Unknown option: ${flag}`
      }`,
    );
    for (const l of USAGE) io.err(l);
    return 255;
  }
  const o = new Map(parsed.opts.map((x) => [x.flag, x.value ?? ""]));
  if (o.has("h")) {
    for (const l of USAGE) io.err(l);
    return 255;
  }
  const opts: ShapeOptions = {
    senders: o.has("s"),
    parents: o.has("p"),
    linear: o.has("l"),
    width: above(o.get("w"), 80) ?? 80,
    buckets: Math.floor(above(o.get("b"), 0) ?? 10),
    bucketMinutes: above(o.get("t"), 0) ?? 5,
    minSubdomains: above(o.get("m"), 0) ?? 5,
  };
  const queues = parsed.operands.length > 0 ? parsed.operands : ["incoming", "active"];
  let root = "";
  if (queues.some((q) => !q.startsWith("/"))) {
    try {
      const cfg = await loadConfig(configDirFrom({ c: o.get("c") }, io.env ?? {}), {
        hostname: hostnameIfPermitted(),
      });
      root = queueDirectory(cfg);
    } catch (e) {
      if (e instanceof ConfigError) {
        io.err(`qshape: fatal: ${e.message}`);
        return 1;
      }
      throw e;
    }
  }
  const batch = io.terminal ? Math.floor(above(o.get("N"), -1) ?? 1000) : 0;
  const top = io.terminal ? Math.floor(above(o.get("n"), -1) ?? 20) : 0;
  const shape = new Shape(opts);
  const now = (io.now ?? Date.now)();
  let messages = 0;
  for (const q of queues) {
    const path = q.startsWith("/") ? q : `${root}/${q}`;
    for await (const file of queueFiles(path, io)) {
      let f: QueueFile;
      try {
        f = await QueueFile.open(file);
      } catch {
        continue; // gone, damaged or not ours: qshape skips what is not a ready queue file
      }
      try {
        const pending = f.head.recipients.filter((r) => !r.done).map((r) => r.address);
        shape.add(Math.max(0, now - f.envelope.arrival), f.envelope.sender, pending);
      } finally {
        f.close();
      }
      if (batch > 0 && ++messages % batch === 0) await io.out(CLEAR + shape.format(top));
    }
  }
  await io.out((batch > 0 ? CLEAR : "") + shape.format(top));
  return 0;
}

/** What `clear` prints on common terminals: home, clear screen, clear scrollback. */
const CLEAR = "\x1b[H\x1b[2J\x1b[3J";

/** Queue file paths under `dir`, recursively, never following a link. */
async function* queueFiles(dir: string, io: QshapeIo): AsyncGenerator<string> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.lstat(dir);
  } catch (e) {
    io.err(`Can't stat ${dir}: ${reason(e)}`);
    return;
  }
  if (st.isFile) {
    yield dir;
    return;
  }
  if (!st.isDirectory) return;
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch (e) {
    io.err(`Can't opendir(${dir}): ${reason(e)}`);
    return;
  }
  for (const name of names.sort()) {
    const path = `${dir}/${name}`;
    const s = await Deno.lstat(path).catch(() => null);
    if (s?.isDirectory) yield* queueFiles(path, io);
    else if (s?.isFile && (isQueueId(name) || MAILDROP_NAME.test(name))) yield path;
  }
}

function reason(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "No such file or directory";
  if (e instanceof Deno.errors.PermissionDenied) return "Permission denied";
  return e instanceof Error ? e.message : String(e);
}

/** Entry point on the real standard streams. */
export async function main(args: string[]): Promise<number> {
  const enc = new TextEncoder();
  return await qshape(args, {
    out: (text) => writeStdout(enc.encode(text)),
    err: (line) => Deno.stderr.writeSync(enc.encode(line + "\n")),
    env: { MAIL_CONFIG: Deno.env.get("MAIL_CONFIG") },
    terminal: Deno.stdout.isTerminal(),
  });
}

if (import.meta.main) {
  if (printHelpIfAsked("qshape", Deno.args)) Deno.exit(0);
  Deno.exit(await main(Deno.args));
}
