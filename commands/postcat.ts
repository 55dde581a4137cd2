/**
 * postcat: show queue files in human-readable form, like Postfix postcat(1).
 *
 *     postcat [-behv] [-c DIR] FILE...        read the named files
 *     postcat [-behv] [-c DIR] -q QUEUEID...  find each id in the queue
 *
 * -c DIR (else MAIL_CONFIG, else the repo's conf/) names the configuration;
 * it is only read for -q, to find `queue_directory`. -q looks for each id in
 * maildrop, incoming, active, deferred, hold and corrupt, in that order, and
 * names the file "QUEUE/QUEUEID" in the section lines, as Postfix does
 * (relative to the queue directory). -v is accepted and ignored.
 *
 * Output, as Postfix prints it for its own queue files:
 *
 *     *** ENVELOPE RECORDS PATH ***
 *     message_size:  CONTENT  OFFSET  NRCPT    (Postfix's first three fields)
 *     message_arrival_time: Mon Nov 30 16:41:28 2020
 *     create_time: Mon Nov 30 16:41:28 2020
 *     sender: ADDRESS                          (empty for the null sender)
 *     named_attribute: client_name=...          (one per envelope attribute)
 *     content_filter: TRANSPORT:NEXTHOP        (when the message has one)
 *     original_recipient: ADDRESS              (per recipient, when it has one)
 *     recipient: ADDRESS                       (done_recipient: once delivered)
 *     *** MESSAGE CONTENTS PATH ***
 *     the message, CRLF line ends shown as LF
 *     *** HEADER EXTRACTED PATH ***
 *     *** MESSAGE FILE END PATH ***
 *
 * Differences from Postfix, because the queue format differs: there is no
 * separate creation time, so create_time is the arrival time; envelope
 * attributes are shown as named attributes with Postfix's names and values
 * where it has one (client_name, client_address, helo_name, protocol_name,
 * envelope_id, ret_flags; per recipient notify_flags and dsn_orig_rcpt, the
 * DSN ORCPT) and snake_case otherwise (message_origin, dsn_kind, smtputf8); the HEADER EXTRACTED section is always empty (cleanup keeps
 * nothing extracted from headers). A delivered recipient is shown as
 * `done_recipient:` always (Postfix shows its done records so too).
 *
 * -e, -h and -b select the envelope, the message header (up to the first
 * empty line) and the body (after it); they combine, and no option means
 * all three. The "***" section lines are printed only when the envelope is
 * selected, so `postcat -bh` prints the bare message, as Postfix does.
 * Postfix's -d, -o, -r and -s (record-level views of its own format) are
 * not supported; reading a queue file from standard input is not
 * supported either (name the file).
 *
 * A file that fails validation (bad trailer, bad record) is reported as
 * "postcat: fatal: MESSAGE" and ends the run with status 1, even in
 * corrupt/: nothing of a damaged file is shown. Exit status 0 otherwise; 1
 * for a bad command line, an unreadable main.cf, or a file or queue id not
 * found.
 *
 * Parameters: queue_directory.
 *
 * Run: deno task postcat (see deno.json for permissions).
 *
 * @module
 */

import { configDirFrom, ConfigError, loadConfig } from "../lib/config/mod.ts";
import { type Envelope, QueueDir, QueueFile, QueueFormatError } from "../lib/queue/mod.ts";
import { asctime, hostnameIfPermitted, queueDirectory } from "./postqueue.ts";
import { getopt, GetoptError, writeStdout } from "./_cli.ts";
import { printHelpIfAsked } from "./_help.ts";

/** Queues searched by -q, in order. */
export const SEARCHED_QUEUES = [
  "maildrop",
  "incoming",
  "active",
  "deferred",
  "hold",
  "corrupt",
] as const;

const USAGE = "usage: postcat [-b (body text)] [-c config_dir] [-e (envelope records)] " +
  "[-h (header text)] [-q (access queue)] [-v] [file(s)...]";

/** Where postcat writes and what it reads from its environment. */
export interface PostcatIo {
  /** Standard output bytes. */
  out(bytes: Uint8Array): void | Promise<void>;
  /** One diagnostic line (without newline). */
  err(line: string): void;
  /** Environment variables (MAIL_CONFIG). @default {} */
  env?: { MAIL_CONFIG?: string };
  /** IANA zone for times. @default the local zone (TZ) */
  timeZone?: string;
}

/** A fatal error: printed as "postcat: fatal: MESSAGE", exit status 1. */
class FatalError extends Error {
  override readonly name = "FatalError";
}

interface Options {
  envelope: boolean;
  header: boolean;
  body: boolean;
  queue: boolean;
  c?: string;
  names: string[];
}

/** getopt(3) over "bc:ehqv". */
function parseArgs(args: string[]): Options {
  const o: Options = { envelope: false, header: false, body: false, queue: false, names: [] };
  let parsed;
  try {
    parsed = getopt(args, "bc:ehqv");
  } catch (e) {
    if (e instanceof GetoptError) throw new FatalError(USAGE);
    throw e;
  }
  for (const { flag, value } of parsed.opts) {
    if (flag === "c") o.c = value;
    else if (flag === "b") o.body = true;
    else if (flag === "e") o.envelope = true;
    else if (flag === "h") o.header = true;
    else if (flag === "q") o.queue = true;
  }
  o.names = parsed.operands;
  if (o.names.length === 0) throw new FatalError(USAGE);
  if (!o.envelope && !o.header && !o.body) o.envelope = o.header = o.body = true;
  return o;
}

/** Postfix names for envelope attributes; others are shown in snake_case. */
const ATTR_NAMES: Record<string, string> = {
  clientName: "client_name",
  clientAddr: "client_address",
  helo: "helo_name",
  protocol: "protocol_name",
  origin: "message_origin",
  envid: "envelope_id",
  ret: "ret_flags",
  dsnKind: "dsn_kind",
};

/** The envelope section lines of an open queue file. */
export function envelopeLines(f: QueueFile, timeZone?: string): string[] {
  const env: Envelope = f.envelope;
  const num = (n: number) => String(n).padStart(15);
  const when = asctime(env.arrival, timeZone, { year: true });
  const lines = [
    `message_size: ${num(f.size - f.head.contentOffset)} ${num(f.head.contentOffset)} ` +
    num(f.head.recipients.length),
    `message_arrival_time: ${when}`,
    `create_time: ${when}`,
    `sender: ${env.sender}`,
  ];
  for (const [key, value] of Object.entries(env.attrs ?? {})) {
    if (value === undefined) continue;
    const name = (Object.hasOwn(ATTR_NAMES, key) ? ATTR_NAMES[key] : undefined) ??
      key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    // Postfix's DSN_RET_FULL and DSN_RET_HDRS.
    const shownValue = key === "ret" ? ({ FULL: 1, HDRS: 2 }[String(value)] ?? value) : value;
    lines.push(`named_attribute: ${name}=${shownValue}`);
  }
  // Postfix writes its FILT record where the recipient records begin.
  if (env.filter !== undefined) lines.push(`content_filter: ${env.filter}`);
  for (const r of f.head.recipients) {
    if (r.notify?.length) {
      // Postfix's DSN_NOTIFY_* bits.
      const bits: Record<string, number> = { NEVER: 1, SUCCESS: 2, FAILURE: 4, DELAY: 8 };
      const flags = r.notify.reduce((n, k) => n | (Object.hasOwn(bits, k) ? bits[k] : 0), 0);
      lines.push(`named_attribute: notify_flags=${flags}`);
    }
    // A DSN ORCPT ("type;address") is Postfix's dsn_orig_rcpt; else the address before rewriting.
    if (r.orcpt?.includes(";")) lines.push(`named_attribute: dsn_orig_rcpt=${r.orcpt}`);
    else if (r.orcpt) lines.push(`original_recipient: ${r.orcpt}`);
    lines.push(`${r.done ? "done_recipient" : "recipient"}: ${r.address}`);
  }
  return lines;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits content into LF-terminated lines (CR before LF dropped), calling
 * `line` with each and whether it belongs to the header. The header ends at
 * the first empty line, which counts as body.
 */
async function eachLine(
  content: AsyncIterable<Uint8Array>,
  line: (bytes: Uint8Array, inHeader: boolean) => void | Promise<void>,
): Promise<void> {
  let pending: Uint8Array[] = [];
  let inHeader = true;
  const emit = async (parts: Uint8Array[], withLf: boolean) => {
    let n = parts.reduce((s, p) => s + p.length, 0);
    const buf = new Uint8Array(n + 1);
    let off = 0;
    for (const p of parts) {
      buf.set(p, off);
      off += p.length;
    }
    if (withLf && n > 0 && buf[n - 1] === CR) n--;
    if (withLf) buf[n++] = LF;
    if (inHeader && withLf && n === 1) inHeader = false;
    await line(buf.subarray(0, n), inHeader);
  };
  for await (const chunk of content) {
    let start = 0;
    for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, start)) {
      pending.push(chunk.subarray(start, i));
      await emit(pending, true);
      pending = [];
      start = i + 1;
    }
    if (start < chunk.length) pending.push(chunk.slice(start));
  }
  if (pending.length > 0) await emit(pending, false);
}

const enc = new TextEncoder();

async function catFile(f: QueueFile, name: string, o: Options, io: PostcatIo): Promise<void> {
  const text = (s: string) => io.out(enc.encode(s));
  if (o.envelope) {
    await text(`*** ENVELOPE RECORDS ${name} ***\n`);
    await text(envelopeLines(f, io.timeZone).map((l) => l + "\n").join(""));
  }
  if (o.header || o.body) {
    if (o.envelope) await text(`*** MESSAGE CONTENTS ${name} ***\n`);
    await eachLine(f.content(), async (line, inHeader) => {
      if (inHeader ? o.header : o.body) await io.out(line);
    });
  }
  if (o.envelope) {
    await text(`*** HEADER EXTRACTED ${name} ***\n`);
    await text(`*** MESSAGE FILE END ${name} ***\n`);
  }
}

/** Finds a queue id in the searched queues; returns its path and display name. */
async function findQueued(q: QueueDir, id: string): Promise<{ path: string; name: string }> {
  if (id.includes("/") || id === "." || id === "..") {
    throw new FatalError(`open queue file ${id}: invalid queue id`);
  }
  for (const queue of SEARCHED_QUEUES) {
    try {
      await Deno.lstat(q.path(queue, id));
      return { path: q.path(queue, id), name: `${queue}/${id}` };
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  throw new FatalError(`open queue file ${id}: No such file or directory`);
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Run postcat with `args`; returns the exit status. */
export async function postcat(args: string[], io: PostcatIo): Promise<number> {
  try {
    const o = parseArgs(args);
    let q: QueueDir | null = null;
    if (o.queue) {
      const cfg = await loadConfig(configDirFrom({ c: o.c }, io.env ?? {}), {
        hostname: hostnameIfPermitted(),
      });
      q = new QueueDir(queueDirectory(cfg));
    }
    for (const n of o.names) {
      const { path, name } = q ? await findQueued(q, n) : { path: n, name: n };
      let f: QueueFile;
      try {
        f = await QueueFile.open(path);
      } catch (e) {
        if (e instanceof QueueFormatError) throw new FatalError(e.message);
        if (e instanceof Deno.errors.NotFound) {
          throw new FatalError(`open ${name}: No such file or directory`);
        }
        throw new FatalError(`open ${name}: ${errText(e)}`);
      }
      try {
        await catFile(f, name, o, io);
      } catch (e) {
        if (e instanceof QueueFormatError) throw new FatalError(e.message);
        throw e;
      } finally {
        f.close();
      }
    }
    return 0;
  } catch (e) {
    if (e instanceof FatalError || e instanceof ConfigError) {
      io.err(`postcat: fatal: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

/** Entry point on the real standard streams. */
export async function main(args: string[]): Promise<number> {
  return await postcat(args, {
    out: writeStdout,
    err: (line) => Deno.stderr.writeSync(enc.encode(line + "\n")),
    env: { MAIL_CONFIG: Deno.env.get("MAIL_CONFIG") },
  });
}

if (import.meta.main) {
  if (printHelpIfAsked("postcat", Deno.args)) Deno.exit(0);
  Deno.exit(await main(Deno.args));
}
