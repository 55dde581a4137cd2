/**
 * postqueue: list and flush the mail queue, like Postfix postqueue(1) and
 * mailq(1).
 *
 *     postqueue [-v] [-c DIR] -p      list the queue (mailq)
 *     postqueue [-v] [-c DIR] -j      list the queue as JSON, one object a line
 *     postqueue [-v] [-c DIR] -f      ask qmgr to retry deferred mail now
 *     postqueue [-v] [-c DIR] -i ID   ask qmgr to retry that deferred message now
 *     postqueue [-v] [-c DIR] -s SITE ask qmgr to retry the deferred mail for SITE now
 *
 * -c DIR (else MAIL_CONFIG, else the repo's conf/) names the configuration;
 * the queue is `queue_directory`, resolved against the configuration
 * directory when relative (lib/config configPath). -v is accepted and ignored.
 *
 * Listing reads the queue files directly (Postfix asks its showq daemon,
 * or runs it stand-alone when mail is down; there is no showq here). The
 * output is Postfix's byte for byte, in its long-queue-id layout because
 * Postwarden queue ids are 15 characters: a header line; per message the
 * queue id with `*` (active) or `!` (hold), the size, the arrival time as
 * asctime(3) prints it in local time, the sender (MAILER-DAEMON, i.e.
 * `empty_address_recipient`, for the null sender); then each recipient not
 * yet delivered, 47 columns in. Recipients with a deferral reason (from
 * `defer/<queue id>`, written by qmgr) come first, each run of equal reasons
 * under one "(reason)" line right-aligned to column 78 and not wrapped,
 * like Postfix 3.x; "(reason unavailable)" when a recipient without a reason
 * follows one with. The summary is "-- N Kbytes in M Request(s)." with N the
 * total size divided by 1024 and rounded down, or "Mail queue is empty".
 * The size is that of the queue file's content part (content records and
 * trailer), as qmgr counts it. Queues are listed in Postfix's showq order
 * (maildrop, active, incoming, deferred, hold), each in queue id order,
 * which is arrival order. A file that cannot be opened or is corrupt is
 * skipped with a warning on stderr; one that vanished mid-scan is skipped
 * silently.
 *
 * -j prints what Postfix 3.5+ prints: queue_name, queue_id, arrival_time
 * (seconds), message_size, forced_expire (postsuper -e/-f),
 * sender and recipients [{address, delay_reason?}].
 *
 * -f sends {op: "flush"} to qmgr on `public/qmgr` and wakes pickup (best
 * effort: pickup also polls the maildrop). -i sends {op: "flush", id}: qmgr
 * takes that message from deferred/ now (when the active queue is full, it
 * is made due for the next deferred scan); an id that is not deferred is
 * nothing to do, as in Postfix, and a malformed one is refused (exit 64,
 * "Cannot flush queue ID - invalid name").
 *
 * -s SITE: a host name or an address literal (else "Cannot flush mail
 * queue - invalid destination: "SITE"", exit 69) that fast_flush_domains
 * lists (a domain list, default $relay_domains, so that with Postfix's
 * default of an empty relay_domains no site is eligible: "Flush service is
 * not configured for destination "SITE"", exit 69), Postfix's words from a
 * live 3.7 run. Then {op: "flush", site} asks qmgr to take now every
 * deferred message with a recipient not yet delivered in that domain
 * (daemons/qmgr/flush_site.ts; Postfix's flush service keeps per-site
 * logs for this, Postwarden reads the deferred envelopes).
 *
 * Exit status: 0 done; 64 (EX_USAGE) bad command line; 69 (EX_UNAVAILABLE)
 * for every fatal error, as Postfix's postqueue does: main.cf unreadable,
 * queue directory missing ("chdir DIR: No such file or directory"), or
 * "Cannot flush mail queue - mail system is down".
 *
 * Parameters: queue_directory, empty_address_recipient, fast_flush_domains
 * (with parent_domain_matches_subdomains).
 *
 * Run: deno task mailq, deno task postqueue (see deno.json for permissions;
 * -f needs --allow-write and --allow-net to reach the qmgr socket).
 *
 * @module
 */

import { quoteAddress } from "../lib/address/mod.ts";
import { printable } from "../lib/log/mod.ts";
import {
  type Config,
  configDirFrom,
  ConfigError,
  configPath,
  loadConfig,
} from "../lib/config/mod.ts";
import { IpcError, ipcRequest } from "../lib/ipc/mod.ts";
import { DictError } from "../lib/maps/mod.ts";
import { MatchList, validHostname } from "../lib/resolve/mod.ts";
import { validMailhostAddr } from "../daemons/smtpd/xclient.ts";
import {
  forceExpired,
  isQueueId,
  QueueDir,
  QueueFile,
  type QueueName,
  readDeferLog,
} from "../lib/queue/mod.ts";
import { getopt, GetoptError, writeStdout } from "./_cli.ts";
import { printHelpIfAsked } from "./_help.ts";

/** sysexits.h codes postqueue uses. */
export const EX = { OK: 0, USAGE: 64, UNAVAILABLE: 69 } as const;

/** Queues listed, in Postfix showq's order. */
export const LISTED_QUEUES: readonly QueueName[] = [
  "maildrop",
  "active",
  "incoming",
  "deferred",
  "hold",
];

const USAGE =
  "usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site";

/** One queued message as listed. */
export interface QueueEntry {
  queueName: QueueName;
  queueId: string;
  /** Arrival time, ms since the epoch. */
  arrival: number;
  /** Bytes, as shown in the listing. */
  size: number;
  /** Envelope sender, "" for the null sender. */
  sender: string;
  /** Recipients not yet done, those with a deferral reason first. */
  recipients: { address: string; reason: string }[];
  /** postsuper -e/-f asked for its return to the sender. */
  forcedExpire: boolean;
}

/** Options for reading and formatting the queue. */
export interface ShowQueueOptions {
  /** Shown for the null sender. @default "MAILER-DAEMON" */
  emptyAddress?: string;
  /** IANA zone for arrival times. @default the local zone (TZ) */
  timeZone?: string;
  /** Receives each warning line (with the "postqueue: warning: " prefix). @default ignore */
  warn?: (line: string) => void;
}

/** A fatal error: printed as "postqueue: fatal: MESSAGE", exit status `code`. */
class FatalError extends Error {
  override readonly name = "FatalError";
  constructor(message: string, readonly code: number) {
    super(message);
  }
}

async function readEntry(q: QueueDir, queueName: QueueName, id: string): Promise<QueueEntry> {
  const f = await QueueFile.open(q.path(queueName, id));
  try {
    const pending = f.head.recipients.filter((r) => !r.done).map((r) => r.address);
    const reasons = new Map([...await readDeferLog(q.deferLog(id))].map(([a, e]) => [a, e.reason]));
    const pendingSet = new Set(pending);
    const recipients: QueueEntry["recipients"] = [];
    // Like showq: logged recipients first, in log order, then the others.
    for (const [address, reason] of reasons) {
      if (pendingSet.has(address)) recipients.push({ address, reason });
    }
    for (const address of pending) {
      if (!reasons.has(address)) recipients.push({ address, reason: "" });
    }
    return {
      queueName,
      queueId: id,
      arrival: f.envelope.arrival,
      size: f.size - f.head.contentOffset,
      sender: f.envelope.sender,
      recipients,
      forcedExpire: forceExpired(f.mode),
    };
  } finally {
    f.close();
  }
}

/**
 * Reads every listed queue under `queueDir`. Throws a FatalError when the
 * queue directory itself is missing or unreadable.
 */
export async function readQueue(
  queueDir: string,
  opts: ShowQueueOptions = {},
): Promise<QueueEntry[]> {
  try {
    await Deno.stat(queueDir);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "No such file or directory" : errText(e);
    throw new FatalError(`chdir ${queueDir}: ${why}`, EX.UNAVAILABLE);
  }
  const q = new QueueDir(queueDir);
  const entries: QueueEntry[] = [];
  for (const queueName of LISTED_QUEUES) {
    const ids: string[] = [];
    try {
      for await (const e of Deno.readDir(q.dir(queueName))) {
        if (e.isFile && isQueueId(e.name)) ids.push(e.name);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        opts.warn?.(`postqueue: warning: scan ${q.dir(queueName)}: ${errText(e)}`);
      }
      continue;
    }
    for (const id of ids.sort()) {
      try {
        entries.push(await readEntry(q, queueName, id));
      } catch (e) {
        // Moved to another queue or removed since the scan: not an error.
        if (e instanceof Deno.errors.NotFound) continue;
        opts.warn?.(`postqueue: warning: ${queueName} ${id}: ${errText(e)}`);
      }
    }
  }
  return entries;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** An address as showq shows it: local part quoted when needed, null sender named. */
function displayAddress(address: string, emptyAddress: string): string {
  return address === "" ? emptyAddress : quoteAddress(address);
}

/**
 * asctime(3) in `timeZone`: "Mon Nov  3 16:41:28 2025", or without the year,
 * its first 19 characters as showq prints them.
 */
export function asctime(ms: number, timeZone?: string, opts: { year?: boolean } = {}): string {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    weekday: "short",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
    ...(opts.year ? { year: "numeric" } : {}),
  }).formatToParts(new Date(Math.floor(ms / 1000) * 1000));
  const p = (t: Intl.DateTimeFormatPartTypes) => parts.find((x) => x.type === t)?.value ?? "";
  return `${p("weekday")} ${p("month")} ${p("day").padStart(2)} ` +
    `${p("hour").padStart(2, "0")}:${p("minute")}:${p("second")}` +
    (opts.year ? ` ${p("year")}` : "");
}

/** Postfix's long-queue-id columns: "%-17s %8s %-19s %s". */
function columns(id: string, size: string, time: string, addr: string): string {
  return `${id.padEnd(17)} ${size.padStart(8)} ${time.padEnd(19)} ${addr}`;
}

/** Formats entries the way `postqueue -p` prints them (ends with a newline). */
export function formatMailq(entries: QueueEntry[], opts: ShowQueueOptions = {}): string {
  if (entries.length === 0) return "Mail queue is empty\n";
  const empty = opts.emptyAddress ?? "MAILER-DAEMON";
  const out = [
    columns("----Queue ID-----", "--Size--", "---Arrival Time----", "--Sender/Recipient------"),
  ];
  let total = 0;
  entries.forEach((m, i) => {
    if (i > 0) out.push("");
    const status = m.queueName === "active"
      ? "*"
      : m.queueName === "hold"
      ? "!"
      : m.forcedExpire
      ? "#"
      : " ";
    const sender = printable(displayAddress(m.sender, empty));
    out.push(
      columns(m.queueId + status, String(m.size), asctime(m.arrival, opts.timeZone), sender),
    );
    let shown = "";
    for (const r of m.recipients) {
      if (r.reason !== shown) {
        shown = r.reason;
        const why = printable(shown || "reason unavailable");
        out.push(`${" ".repeat(Math.max(0, 76 - why.length))}(${why})`);
      }
      out.push(columns("", "", "", printable(displayAddress(r.address, empty))));
    }
    total += m.size;
  });
  const n = entries.length;
  out.push("", `-- ${Math.floor(total / 1024)} Kbytes in ${n} Request${n === 1 ? "" : "s"}.`);
  return out.join("\n") + "\n";
}

/** Formats entries the way `postqueue -j` prints them: one JSON object a line. */
export function formatJson(entries: QueueEntry[], opts: ShowQueueOptions = {}): string {
  const empty = opts.emptyAddress ?? "MAILER-DAEMON";
  const q = (s: string) => JSON.stringify(s);
  return entries.map((m) => {
    const rcpts = m.recipients.map((r) =>
      `{"address": ${q(displayAddress(r.address, empty))}` +
      (r.reason ? `, "delay_reason": ${q(r.reason)}}` : "}")
    );
    return `{"queue_name": ${q(m.queueName)}, "queue_id": ${q(m.queueId)}, ` +
      `"arrival_time": ${Math.floor(m.arrival / 1000)}, "message_size": ${m.size}, ` +
      `"forced_expire": ${m.forcedExpire}, "sender": ${q(displayAddress(m.sender, empty))}, ` +
      `"recipients": [${rcpts.join(", ")}]}\n`;
  }).join("");
}

/** The `postqueue -p` listing of the queue under `queueDir`. */
export async function showQueue(queueDir: string, opts: ShowQueueOptions = {}): Promise<string> {
  return formatMailq(await readQueue(queueDir, opts), opts);
}

/** Options for {@link flushQueue}. */
export interface FlushOptions {
  /** How long to wait for qmgr's reply. @default 60_000 */
  timeoutMs?: number;
  /** Only this deferred message (postqueue -i); pickup is not woken then. */
  id?: string;
  /** Only the deferred mail for this site (postqueue -s); pickup is not woken then. */
  site?: string;
}

/**
 * Asks qmgr to retry all deferred mail now (or one message), and wakes
 * pickup. Throws a FatalError (exit 69) when qmgr cannot be reached or
 * refuses.
 */
export async function flushQueue(queueDir: string, opts: FlushOptions = {}): Promise<void> {
  const q = new QueueDir(queueDir);
  const down = "Cannot flush mail queue - mail system is down";
  let reply: { ok?: boolean; error?: string };
  try {
    const request = opts.id !== undefined
      ? { op: "flush", id: opts.id }
      : opts.site !== undefined
      ? { op: "flush", site: opts.site }
      : { op: "flush" };
    reply = await ipcRequest(q.publicSocket("qmgr"), request, {
      timeoutMs: opts.timeoutMs ?? 60_000,
    });
  } catch (e) {
    if (e instanceof IpcError || e instanceof Deno.errors.NotCapable) {
      throw new FatalError(down, EX.UNAVAILABLE);
    }
    throw e;
  }
  if (reply?.ok !== true) {
    throw new FatalError(`${down}${reply?.error ? ` (${reply.error})` : ""}`, EX.UNAVAILABLE);
  }
  if (opts.id !== undefined || opts.site !== undefined) return;
  await ipcRequest(q.publicSocket("pickup"), { op: "wakeup" }, { timeoutMs: 2000 })
    .catch(() => {});
}

/** Where postqueue writes and what it reads from its environment. */
export interface PostqueueIo {
  /** Standard output text (whole lines, with newlines). */
  out(text: string): void | Promise<void>;
  /** One diagnostic line (without newline). */
  err(line: string): void;
  /** Environment variables (MAIL_CONFIG). @default {} */
  env?: { MAIL_CONFIG?: string };
  /** Passed to the listing. */
  timeZone?: string;
}

type Mode = "f" | "i" | "j" | "p" | "s";

/** getopt(3) over "c:fi:jps:v"; returns the mode, -c, -i's queue id and -s's site. */
function parseArgs(args: string[]): { mode: Mode; c?: string; id?: string; site?: string } {
  let mode: Mode | undefined;
  let c: string | undefined;
  let id: string | undefined;
  let site: string | undefined;
  let parsed;
  try {
    parsed = getopt(args, "c:fi:js:pv");
  } catch (e) {
    if (e instanceof GetoptError) throw new FatalError(USAGE, EX.USAGE);
    throw e;
  }
  for (const { flag, value } of parsed.opts) {
    if (flag === "c") c = value;
    else if (flag === "v") continue;
    else if (mode) throw new FatalError(USAGE, EX.USAGE);
    else {
      mode = flag as Mode;
      if (flag === "i") id = value;
      if (flag === "s") site = value;
    }
  }
  if (parsed.operands.length > 0 || !mode) throw new FatalError(USAGE, EX.USAGE);
  if (id !== undefined && !isQueueId(id)) {
    const shown = id.length > 100 ? `${id.slice(0, 100)}...` : id;
    throw new FatalError(`Cannot flush queue ID - invalid name: "${shown}"`, EX.USAGE);
  }
  return { mode, c, id, site };
}

/** Postfix's check of a -s site: a host name or an address literal. */
export function validSite(site: string): boolean {
  const literal = /^\[(.*)\]$/.exec(site);
  return literal ? validMailhostAddr(literal[1]) !== null : validHostname(site);
}

/**
 * Whether fast_flush_domains lists `site` (Postfix's flush_policy_ok), as
 * a domain list, parent style when parent_domain_matches_subdomains names it.
 */
export async function flushEligible(cfg: Config, site: string): Promise<boolean> {
  const parent = cfg.list("parent_domain_matches_subdomains").includes("fast_flush_domains");
  let list: MatchList;
  try {
    list = await MatchList.open(
      "fast_flush_domains",
      cfg.str("fast_flush_domains"),
      parent ? "parent" : "domain",
    );
  } catch (e) {
    if (e instanceof DictError) throw new FatalError(e.message, EX.UNAVAILABLE);
    throw e;
  }
  try {
    return await list.match(site);
  } catch (e) {
    if (e instanceof DictError) {
      throw new FatalError(`fast_flush_domains: lookup of ${site}: ${e.message}`, EX.UNAVAILABLE);
    }
    throw e;
  } finally {
    await list.close();
  }
}

/** The host name for $myhostname, only when readable without a permission prompt. */
export function hostnameIfPermitted(): string {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") {
      return Deno.hostname();
    }
  } catch {
    // fall through
  }
  return "localhost";
}

/**
 * The queue directory of a configuration: `queue_directory`, resolved
 * against the configuration directory when relative, as `postwarden`
 * resolves it for master and the daemons. Shared by the queue commands.
 */
export function queueDirectory(cfg: Config): string {
  return configPath(cfg, "queue_directory");
}

/** Run postqueue with `args`; returns the exit status. */
export async function postqueue(args: string[], io: PostqueueIo): Promise<number> {
  try {
    const { mode, c, id, site } = parseArgs(args);
    const dir = configDirFrom({ c }, io.env ?? {});
    let cfg;
    try {
      cfg = await loadConfig(dir, { hostname: hostnameIfPermitted() });
    } catch (e) {
      if (e instanceof ConfigError) throw new FatalError(e.message, EX.UNAVAILABLE);
      throw e;
    }
    const queueDir = queueDirectory(cfg);
    if (mode === "s") {
      const shown = site!.length > 100 ? `${printable(site!.slice(0, 100))}...` : printable(site!);
      if (!validSite(site!)) {
        throw new FatalError(
          `Cannot flush mail queue - invalid destination: "${shown}"`,
          EX.UNAVAILABLE,
        );
      }
      if (!await flushEligible(cfg, site!)) {
        throw new FatalError(
          `Flush service is not configured for destination "${shown}"`,
          EX.UNAVAILABLE,
        );
      }
      await flushQueue(queueDir, { site: site!.toLowerCase() });
      return EX.OK;
    }
    if (mode === "f" || mode === "i") {
      await flushQueue(queueDir, { id });
      return EX.OK;
    }
    const opts: ShowQueueOptions = {
      emptyAddress: cfg.str("empty_address_recipient"),
      timeZone: io.timeZone,
      warn: (line) => io.err(line),
    };
    const entries = await readQueue(queueDir, opts);
    await io.out(mode === "j" ? formatJson(entries, opts) : formatMailq(entries, opts));
    return EX.OK;
  } catch (e) {
    if (e instanceof FatalError) {
      io.err(`postqueue: fatal: ${e.message}`);
      return e.code;
    }
    if (e instanceof ConfigError) {
      io.err(`postqueue: fatal: ${e.message}`);
      return EX.UNAVAILABLE;
    }
    throw e;
  }
}

/** Entry point on the real standard streams (also used by `sendmail -bp`). */
export async function main(args: string[]): Promise<number> {
  const enc = new TextEncoder();
  return await postqueue(args, {
    out: (text) => writeStdout(enc.encode(text)),
    err: (line) => Deno.stderr.writeSync(enc.encode(line + "\n")),
    env: { MAIL_CONFIG: Deno.env.get("MAIL_CONFIG") },
  });
}

if (import.meta.main) {
  if (printHelpIfAsked("postqueue", Deno.args)) Deno.exit(0);
  Deno.exit(await main(Deno.args));
}
