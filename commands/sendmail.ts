/**
 * sendmail: the Sendmail-compatible mail posting interface, like Postfix
 * sendmail(1), for every local user. Reads one message from standard
 * input and leaves it in `maildrop/` as a complete queue file, from where
 * pickup submits it to cleanup.
 *
 *     sendmail [-t] [-i] [-oi] [-f sender] [-F fullname] [-N dsn] [-R ret]
 *              [-V envid] [-c DIR | -C DIR] [-bm] [--] [recipient ...]
 *     sendmail -bp | -q | -qRsite | -qIqueueid | -bi | -I | -bs | -bh | -q30m
 *
 * Options are parsed with getopt(3) as Postfix does ("-ti", "-it", "-oi",
 * "-fjoe" and "-f joe" all work; the first recipient ends the options).
 * Input ends at end of file; without -i (or -oi) a line holding only "."
 * ends it too. LF line ends become CRLF. -t takes recipients from the
 * To/Cc/Bcc headers (done by cleanup, which removes Bcc:) in addition to the
 * command line; -N applies to those recipients too, as in Postfix.
 * -f sets the envelope sender; without it the sender is the login name of
 * the invoking uid (pickup decides it from the file's owner, see
 * daemons/pickup/maildrop.ts; sendmail writes its own lookup in
 * /etc/passwd, or USER/LOGNAME for a uid not listed there). An address
 * without "@" given with -f, and bare recipient names, are qualified with
 * `@$myorigin`. -N is "never" or a list of success,delay,failure; -R is
 * full or hdrs; -V is the DSN envelope id. Ignored like Postfix does: -A,
 * -e, -G, -h, -L, -m, -O, -p, -U, -v, -x, other -o options, -B
 * 7BIT/8BITMIME.
 *
 * Other modes, as Postfix's sendmail runs other programs (the checks and
 * messages are Postfix's): -bp is `postqueue -p` (mailq); -q is `postqueue
 * -f`, -qRsite `postqueue -s site`, -qIid `postqueue -i id`, and -q with an
 * interval (-q30m, a daemon's queue run period) does nothing and exits 0;
 * -bi and -I are newaliases (commands/newaliases.ts); -bh and -bH do
 * nothing; -bs speaks SMTP on standard input and output (sendmail_bs.ts).
 * Each of these takes no recipients ("display queue mode requires no
 * recipient", ...); -t only goes with delivery mode. Not supported, with a
 * fatal error: -bd/-bl (start Postwarden with `postwarden start`), -n,
 * -XV (VERP), other -b and -X letters; any other option is an error, never
 * silently ignored.
 *
 * -bv, address verification: standard input is not read; a probe message
 * (From: the sender, Subject: probe, To: the recipients, as Postfix's) is
 * queued with the `verify` attribute, and "Mail Delivery Status Report
 * will be mailed to <sender>." printed. The delivery agents then report
 * what they would do with each recipient instead of delivering (qmgr,
 * settle.ts), and bounce mails the sender the report (verify_template).
 *
 * Submission without privileges. sendmail runs as the invoking user and
 * never reads the queue: maildrop/ (mail owner, mode 1733) lets it create
 * files but not list the folder or touch other users' files. It writes
 * `.NAME.tmp`, where NAME is a queue id and 128 random bits, sets the
 * mode to 0644 (0640 when maildrop/ is setgid, so its group, the mail
 * owner's, can read it), fsyncs, renames it to NAME and fsyncs the file
 * again (on journaling file systems (ext4, XFS, btrfs) this commits the
 * rename). Then the directory entry: root and the mail owner fsync
 * maildrop/ themselves; other users may not open it, so they ask pickup to
 * (`{op: "wakeup", sync: true}` on public/pickup). Only after that does it
 * exit 0 (DESIGN.md invariant 1). When pickup cannot be reached (stopped,
 * or public/pickup closed to the user) the rename committed by the second
 * fsync is what makes the entry durable, and pickup's next scan finds the
 * file.
 *
 * Exit status: 0 queued (or the other mode's program's status); 75
 * (EX_TEMPFAIL) for every fatal error, as Postfix's sendmail (its
 * run-time error handler turns every fatal exit into EX_TEMPFAIL; seen in
 * a live 3.7 run): a bad command line, no recipients, a message larger
 * than message_size_limit, no login name for the uid and no -f, the queue
 * directory missing or not writable, a write error, an unreadable main.cf.
 *
 * Parameters: queue_directory, myorigin, message_size_limit; through the
 * other modes those of postqueue, newaliases and sendmail_bs.ts.
 *
 * Run: deno task sendmail (see deno.json for its permissions).
 *
 * @module
 */

import { parseHeaderAddresses, quoteAddress } from "../lib/address/mod.ts";
import { concat } from "../lib/bytes/mod.ts";
import { type Config, configDirFrom, configPath, loadConfig } from "../lib/config/mod.ts";
import { PasswdFile } from "../lib/passwd/mod.ts";
import { type Envelope, QueueDir, type Recipient } from "../lib/queue/mod.ts";
import { type MaildropAttrs, newMaildropName } from "../daemons/pickup/maildrop.ts";
import { getopt, GetoptError, writeStdout } from "./_cli.ts";
import { MaildropWriter, syncEntry } from "./_maildrop_writer.ts";
import { printHelpIfAsked } from "./_help.ts";

/** sysexits.h codes: what kind each failure is (every fatal exit is TEMPFAIL, as Postfix's). */
export const EX = {
  OK: 0,
  USAGE: 64,
  DATAERR: 65,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  OSERR: 71,
  TEMPFAIL: 75,
  CONFIG: 78,
};

/** The parsed command line. */
export interface SendmailOptions {
  /** -t */
  extract: boolean;
  /** -i / -oi: a lone "." does not end the input. */
  ignoreDots: boolean;
  /** -f / -r, as given. */
  sender?: string;
  /** -F */
  fullName?: string;
  /** -N, upper case: ["NEVER"] or some of SUCCESS, DELAY, FAILURE. */
  notify?: string[];
  /** -R: "FULL" or "HDRS". */
  ret?: string;
  /** -V */
  envid?: string;
  /** -c / -C */
  configDir?: string;
  /**
   * The mode: "m" deliver (the default), "p" list the queue (-bp), "q"
   * flush it (-q), "i" newaliases (-bi, -I), "s" SMTP on stdin (-bs), "d"
   * daemon (-bd, -bl), "h" nothing (-bh, -bH).
   */
  mode: string;
  recipients: string[];
  /** -bv: a delivery report instead of delivery. */
  verify?: boolean;
  /** -qRsite */
  flushSite?: string;
  /** -qIqueueid */
  flushId?: string;
  /** -q with an interval (-q30m): ignored outside daemon mode. */
  qtime?: string;
}

/** A bad command line; the message is printed after "sendmail: fatal: ". */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * Postfix sendmail's getopt(3) option string, except that -c takes the
 * configuration directory as in the other Postwarden commands. A bare
 * "-q" (flush) is not getopt-compatible and is found before getopt runs,
 * as Postfix does.
 */
export const OPTIONS = "A:B:C:F:GIL:N:O:R:UV:X:b:c:e:f:h:imno:p:r:q:tvx";

/** Stands for a bare "-q" among the options: NUL, which no argument can hold. */
const BARE_Q = "\0";

/** `argv` with each "-q" that stands where an option may start replaced by "-" + BARE_Q. */
function markBareQ(argv: string[]): string[] {
  const out = [...argv];
  for (let i = 0; i < out.length; i++) {
    const a = out[i];
    if (a === "--" || !a.startsWith("-") || a === "-") break;
    if (a === "-q") {
      out[i] = `-${BARE_Q}`;
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const at = OPTIONS.indexOf(a[j]);
      if (at >= 0 && a[j] !== ":" && OPTIONS[at + 1] === ":") {
        if (j === a.length - 1) i++; // its value is the next argument
        break;
      }
    }
  }
  return out;
}

/** Parses sendmail's command line with getopt(3), as Postfix does. */
export function parseSendmailArgs(argv: string[]): SendmailOptions {
  const o: SendmailOptions = { extract: false, ignoreDots: false, mode: "m", recipients: [] };
  let parsed: ReturnType<typeof getopt>;
  try {
    parsed = getopt(markBareQ(argv), OPTIONS + BARE_Q);
  } catch (e) {
    if (e instanceof GetoptError) {
      throw new UsageError(`${e.message}; usage: sendmail [options] [recipient ...]`);
    }
    throw e;
  }
  for (const { flag, value = "" } of parsed.opts) {
    switch (flag) {
      case "t":
        o.extract = true;
        break;
      case "i":
        o.ignoreDots = true;
        break;
      case "o":
        if (value === "i") o.ignoreDots = true;
        break;
      case "f":
      case "r":
        o.sender = value;
        break;
      case "F":
        o.fullName = value;
        break;
      case "N":
        o.notify = parseNotify(value);
        break;
      case "R": {
        const v = value.toUpperCase();
        if (v !== "FULL" && v !== "HDRS") throw new UsageError(`bad -R option value: ${value}`);
        o.ret = v;
        break;
      }
      case "V":
        if (value.length > 100 || /[^\x21-\x7e]/.test(value)) {
          throw new UsageError("bad -V option value: use up to 100 printable ASCII characters");
        }
        o.envid = value;
        break;
      case "c":
      case "C":
        o.configDir = value;
        break;
      case BARE_Q:
        o.mode = "q";
        break;
      case "b":
        switch (value[0]) {
          case "d":
          case "l":
            o.mode = "d";
            break;
          case "h":
          case "H":
            o.mode = "h";
            break;
          case "i":
          case "m":
          case "p":
          case "s":
            o.mode = value[0];
            break;
          case "v":
            o.verify = true;
            break;
          default:
            throw new UsageError(`unsupported: -b${value.slice(0, 1)}`);
        }
        break;
      case "B":
        if (value !== "7BIT" && value !== "8BITMIME") {
          throw new UsageError("-B option needs 8BITMIME or 7BIT");
        }
        break;
      case "I":
        o.mode = "i";
        break;
      case "n":
        throw new UsageError("-n option not supported");
      case "q":
        if (/^[0-9]/.test(value)) o.qtime = value;
        else if (value[0] === "R") {
          if (value.length === 1) throw new UsageError("specify: -qRsitename");
          o.flushSite = value.slice(1);
        } else if (value[0] === "I") {
          if (value.length === 1) throw new UsageError("specify: -qIqueueid");
          o.flushId = value.slice(1);
        } else throw new UsageError(`-q${value.slice(0, 1)} is not implemented`);
        break;
      case "X":
        if (value[0] === "V") throw new UsageError(`-X${value} is not supported (VERP)`);
        throw new UsageError(`unsupported: -X${value.slice(0, 1)}`);
      default:
        // A, e, G, h, L, m, O, p, U, v, x: accepted and ignored, as Postfix does.
        break;
    }
  }
  o.recipients = parsed.operands;
  // Postfix's checks of conflicting options, in its order.
  if (o.extract && o.mode !== "m") throw new UsageError("-t can be used only in delivery mode");
  if (o.flushSite && o.mode !== "m") {
    throw new UsageError("-qR can be used only in delivery mode");
  }
  if (o.flushId && o.mode !== "m") throw new UsageError("-qI can be used only in delivery mode");
  if (o.verify) {
    if (o.extract) throw new UsageError("-t option cannot be used with -bv");
    if (o.notify) throw new UsageError("-N option cannot be used with -bv");
    if (o.ret) throw new UsageError("-R option cannot be used with -bv");
  }
  return o;
}

function parseNotify(v: string): string[] {
  const items = v.split(",").map((s) => s.trim().toUpperCase()).filter(Boolean);
  const ok = items.length > 0 && (
    (items.length === 1 && items[0] === "NEVER") ||
    items.every((x) => x === "SUCCESS" || x === "DELAY" || x === "FAILURE")
  );
  if (!ok) throw new UsageError(`bad -N option value: ${v}`);
  return [...new Set(items)];
}

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = new Uint8Array([CR, LF]);
const EMPTY = new Uint8Array(0);

/**
 * Converts sendmail input to canonical content, streaming: LF and CRLF
 * line ends become CRLF (a CR not before LF is kept), a last line without
 * a line end gets one, and unless `ignoreDots` a line holding only "."
 * ends the message (it and anything after it are dropped).
 */
export class InputConverter {
  #lineStart = true;
  #hold: Uint8Array = EMPTY;
  #ended = false;

  constructor(readonly ignoreDots: boolean) {}

  /** True once a lone "." line was seen. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Converts the next chunk of input. */
  push(chunk: Uint8Array): Uint8Array {
    if (this.#ended) return EMPTY;
    const data = this.#hold.length ? concat([this.#hold, chunk]) : chunk;
    this.#hold = EMPTY;
    const out: Uint8Array[] = [];
    let pos = 0;
    while (pos < data.length) {
      const lf = data.indexOf(LF, pos);
      if (lf < 0) {
        const rest = data.subarray(pos);
        if (this.#lineStart && this.#mayEnd(rest)) {
          this.#hold = rest.slice();
        } else if (rest[rest.length - 1] === CR) {
          out.push(rest.subarray(0, rest.length - 1));
          this.#hold = new Uint8Array([CR]);
          this.#lineStart = false;
        } else {
          out.push(rest);
          this.#lineStart = false;
        }
        break;
      }
      const end = lf > pos && data[lf - 1] === CR ? lf - 1 : lf;
      const line = data.subarray(pos, end);
      if (this.#lineStart && !this.ignoreDots && line.length === 1 && line[0] === DOT) {
        this.#ended = true;
        break;
      }
      out.push(line, CRLF);
      this.#lineStart = true;
      pos = lf + 1;
    }
    return concat(out);
  }

  /** Ends the input: terminates a last line that has no line end. */
  end(): Uint8Array {
    if (this.#ended) return EMPTY;
    const hold = this.#hold;
    this.#hold = EMPTY;
    if (this.#lineStart && hold.length === 0) return EMPTY;
    // A held CR (alone or in ".\r") at end of input ends its line.
    const body = hold[hold.length - 1] === CR ? hold.subarray(0, hold.length - 1) : hold;
    if (this.#lineStart && !this.ignoreDots && body.length === 1 && body[0] === DOT) {
      this.#ended = true;
      return EMPTY;
    }
    this.#lineStart = true;
    return concat([body, CRLF]);
  }

  /** A partial line at line start that a later chunk could turn into ".\n". */
  #mayEnd(rest: Uint8Array): boolean {
    if (this.ignoreDots || rest[0] !== DOT) return false;
    return rest.length === 1 || (rest.length === 2 && rest[1] === CR);
  }
}

/** Where sendmail reads, writes and what it knows about its caller. */
export interface SendmailIo {
  stdin: ReadableStream<Uint8Array>;
  /** Standard output (mailq's listing, -bs replies). @default Deno.stdout */
  out?: (text: string) => void | Promise<void>;
  /** Raw standard output for -bs. @default Deno.stdout */
  stdout?: WritableStream<Uint8Array>;
  /** One call per diagnostic line, without newline. */
  err(line: string): void;
  env: { USER?: string; LOGNAME?: string; MAIL_CONFIG?: string };
  /** Submitter's uid. @default Deno.uid() when permitted, else -1 */
  uid?: number;
  /** Login name of a uid, or null. @default a lookup in /etc/passwd */
  loginName?: (uid: number) => string | null;
  /** Host name for the myhostname default. @default Deno.hostname() when permitted */
  hostname?: string;
}

/** Runs sendmail; returns the exit status. */
export async function sendmail(argv: string[], io: SendmailIo): Promise<number> {
  // Every fatal exit is EX_TEMPFAIL, as Postfix's (the status argument says what kind it is).
  const fatal = (_kind: number, msg: string) => {
    io.err(`sendmail: fatal: ${msg}`);
    return EX.TEMPFAIL;
  };
  let opts: SendmailOptions;
  try {
    opts = parseSendmailArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) return fatal(EX.USAGE, e.message);
    throw e;
  }
  if (opts.qtime !== undefined && opts.mode !== "d") return EX.OK;
  if (opts.mode !== "m" || opts.flushSite !== undefined || opts.flushId !== undefined) {
    return await otherMode(opts, io, fatal);
  }

  let config: Config;
  try {
    config = await loadConfig(configDirFrom({ c: opts.configDir }, io.env), {
      hostname: io.hostname,
    });
  } catch (e) {
    return fatal(EX.CONFIG, (e as Error).message);
  }
  let origin: string;
  let sizeLimit: number;
  let queueDir: QueueDir;
  try {
    origin = config.str("myorigin");
    sizeLimit = config.size("message_size_limit");
    queueDir = new QueueDir(configPath(config, "queue_directory"));
  } catch (e) {
    return fatal(EX.CONFIG, (e as Error).message);
  }
  const qualify = (a: string) => (a === "" || a.includes("@") ? a : `${a}@${origin}`);

  const recipients: Recipient[] = [];
  for (const arg of opts.recipients) {
    const addrs = parseHeaderAddresses(arg);
    if (addrs.length === 0) return fatal(EX.USAGE, `bad recipient address syntax: ${arg}`);
    for (const a of addrs) {
      const r: Recipient = { address: qualify(a) };
      if (opts.notify) r.notify = opts.notify;
      recipients.push(r);
    }
  }
  if (recipients.length === 0 && !opts.extract) return fatal(EX.USAGE, "no recipients specified");

  const uid = io.uid ?? currentUid();
  let sender: string;
  let user: string | undefined;
  if (opts.sender !== undefined) {
    const s = opts.sender.trim();
    if (s === "" || s === "<>") sender = "";
    else {
      const a = parseHeaderAddresses(s);
      if (a.length !== 1) return fatal(EX.USAGE, `bad sender address syntax: ${opts.sender}`);
      sender = qualify(a[0]);
    }
  } else {
    // Like Postfix: the login name of the real uid, not $USER; but accounts
    // that /etc/passwd does not list (NSS) have only the environment to go by.
    const loginName = io.loginName ?? ((u: number) => new PasswdFile().byUid(u)?.name ?? null);
    user = loginName(uid) ?? (io.env.USER || io.env.LOGNAME || undefined);
    if (!user) return fatal(EX.OSERR, `no login name found for user ID ${uid}`);
    // Unqualified, as Postfix writes it; cleanup appends @$myorigin.
    sender = user;
  }

  const attrs: MaildropAttrs = { origin: "sendmail", uid };
  if (user !== undefined) {
    attrs.user = user;
    attrs.defaultSender = true;
  }
  if (opts.verify) attrs.verify = true;
  if (opts.extract) {
    attrs.extract = true;
    if (opts.notify) attrs.extractNotify = opts.notify;
  }
  if (opts.fullName !== undefined) attrs.fullName = opts.fullName;
  if (opts.ret) attrs.ret = opts.ret;
  if (opts.envid) attrs.envid = opts.envid;
  const name = newMaildropName();
  const env: Envelope = {
    queueId: name.slice(0, name.indexOf(".")),
    arrival: Date.now(),
    sender,
    attrs,
  };

  const maildrop = queueDir.dir("maildrop");
  let mode: number;
  try {
    const st = await Deno.stat(maildrop);
    if (!st.isDirectory) throw new Error("not a directory");
    // A setgid maildrop gives new files the mail owner's group: no need to let others read.
    mode = (st.mode ?? 0) & 0o2000 ? 0o640 : 0o644;
  } catch (e) {
    return fatal(EX.TEMPFAIL, `queue directory ${maildrop}: ${(e as Error).message}`);
  }
  let writer: MaildropWriter;
  try {
    writer = MaildropWriter.create(maildrop, name, mode, env, recipients);
  } catch (e) {
    return fatal(EX.TEMPFAIL, `create file in ${maildrop}: ${(e as Error).message}`);
  }
  try {
    const conv = new InputConverter(opts.ignoreDots);
    if (opts.verify) writer.write(conv.push(probeMessage(sender, recipients)));
    const reader = io.stdin.getReader();
    try {
      while (!conv.ended && !opts.verify) {
        const { value, done } = await reader.read();
        if (done) break;
        writer.write(conv.push(value));
        if (sizeLimit > 0 && writer.contentBytes > sizeLimit) {
          writer.abort();
          return fatal(EX.DATAERR, "message file too big");
        }
      }
    } finally {
      reader.releaseLock();
    }
    writer.write(conv.end());
    if (sizeLimit > 0 && writer.contentBytes > sizeLimit) {
      writer.abort();
      return fatal(EX.DATAERR, "message file too big");
    }
    writer.commit();
  } catch (e) {
    writer.abort();
    return fatal(EX.TEMPFAIL, `write queue file in ${maildrop}: ${(e as Error).message}`);
  }
  try {
    await syncEntry(queueDir);
  } catch (e) {
    // Not known to be durable: take the file back, so that "failed" means not queued.
    try {
      Deno.removeSync(writer.path);
    } catch {
      // already picked up: delivered, which is what a retry would do too
    }
    return fatal(EX.TEMPFAIL, `fsync ${maildrop}: ${(e as Error).message}`);
  }
  if (opts.verify) {
    const text = `Mail Delivery Status Report will be mailed to <${quoteAddress(sender)}>.\n`;
    await (io.out ?? ((t: string) => writeStdout(new TextEncoder().encode(t))))(text);
  }
  return EX.OK;
}

/**
 * The message sendmail -bv queues in place of standard input: From:,
 * Subject: probe and To:, as Postfix's sendmail writes it (cleanup adds the
 * rest). Control characters in addresses are masked: they must not start
 * a header line of their own.
 */
export function probeMessage(sender: string, recipients: Recipient[]): Uint8Array {
  // deno-lint-ignore no-control-regex
  const safe = (a: string) => quoteAddress(a).replace(/[\x00-\x1f\x7f]/g, "?");
  const lines = [];
  if (sender !== "") lines.push(`From: ${safe(sender)}`);
  lines.push("Subject: probe");
  lines.push(`To: ${recipients.map((r) => safe(r.address)).join(", ")}`);
  return new TextEncoder().encode(lines.join("\n") + "\n");
}

function currentUid(): number {
  try {
    return Deno.uid() ?? -1;
  } catch {
    return -1;
  }
}

/**
 * The modes that run another program in Postfix (postqueue, postalias,
 * smtpd -S): loaded only when asked for, so that plain submission stays
 * small.
 */
async function otherMode(
  opts: SendmailOptions,
  io: SendmailIo,
  fatal: (kind: number, msg: string) => number,
): Promise<number> {
  const c = opts.configDir ? ["-c", opts.configDir] : [];
  const none = (what: string) => fatal(EX.USAGE, `${what} requires no recipient`);
  const hasRcpt = opts.recipients.length > 0;
  const postqueue = async (args: string[]) => {
    const mod = await import("./postqueue.ts");
    return await mod.postqueue([...c, ...args], {
      out: io.out ?? ((text) => writeStdout(new TextEncoder().encode(text))),
      err: io.err,
      env: { MAIL_CONFIG: io.env.MAIL_CONFIG },
    });
  };
  switch (opts.mode) {
    case "m":
      if (opts.flushSite !== undefined) {
        return hasRcpt ? none("flush site") : await postqueue(["-s", opts.flushSite]);
      }
      return hasRcpt ? none("flush queue_id") : await postqueue(["-i", opts.flushId!]);
    case "p":
      return hasRcpt ? none("display queue mode") : await postqueue(["-p"]);
    case "q":
      return hasRcpt ? none("flush queue mode") : await postqueue(["-f"]);
    case "h":
      return EX.OK;
    case "d":
      if (hasRcpt) return none("daemon mode");
      return fatal(EX.USAGE, "-bd is not supported: start Postwarden with postwarden start");
    case "i": {
      if (hasRcpt) return none("alias initialization mode");
      const mod = await import("./newaliases.ts");
      return await mod.newaliases(c, {
        out: (line) => io.err(line),
        err: io.err,
        stdin: () => Promise.resolve(""),
        env: { MAIL_CONFIG: io.env.MAIL_CONFIG },
      });
    }
    case "s": {
      if (hasRcpt) return none("stand-alone mode");
      const mod = await import("./sendmail_bs.ts");
      return await mod.standalone(opts, io);
    }
  }
  return fatal(EX.USAGE, `unsupported mode ${opts.mode}`);
}

if (import.meta.main) {
  if (printHelpIfAsked("sendmail", Deno.args)) Deno.exit(0);
  const env = Deno.env.toObject();
  const status = await sendmail(Deno.args, {
    stdin: Deno.stdin.readable,
    err: (line) => console.error(line),
    env: { USER: env.USER, LOGNAME: env.LOGNAME, MAIL_CONFIG: env.MAIL_CONFIG },
  });
  Deno.exit(status);
}
