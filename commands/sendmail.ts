/**
 * sendmail: the Sendmail-compatible mail posting interface, like Postfix
 * sendmail(1), for every local user. Reads one message from standard
 * input and leaves it in `maildrop/` as a complete queue file, from where
 * pickup submits it to cleanup.
 *
 *     sendmail [-t] [-i] [-oi] [-f sender] [-F fullname] [-N dsn] [-R ret]
 *              [-V envid] [-c DIR | -C DIR] [-bm | -bp] [--] [recipient ...]
 *
 * Options are parsed with getopt(3) as Postfix does ("-ti", "-it", "-oi",
 * "-fjoe" and "-f joe" all work; the first recipient ends the options).
 * Input ends at end of file; without -i (or -oi) a line holding only "."
 * ends it too. LF line ends become CRLF. -t takes recipients from the
 * To/Cc/Bcc headers (done by cleanup) in addition to the command line.
 * -f sets the envelope sender; without it the sender is the login name of
 * the invoking uid (pickup decides it from the file's owner, see
 * daemons/pickup/maildrop.ts; sendmail writes its own lookup in
 * /etc/passwd, or USER/LOGNAME for a uid not listed there). An address
 * without "@" given with -f, and bare recipient names, are qualified with
 * `@$myorigin`. -N is "never" or a list of success,delay,failure; -R is
 * full or hdrs; -V is the DSN envelope id. -bp lists the queue through
 * commands/postqueue.ts. Ignored like Postfix does: -A, -e, -G, -h, -L,
 * -m, -n, -O, -p, -U, -v, -x, other -o options, -B 7BIT/8BITMIME. Not
 * supported (exit 64): -bs, -bd, -bi, -bv and other modes, -I, -q, -X;
 * any other option is an error (exit 64), never silently ignored.
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
 * Exit status: 0 queued; 64 (EX_USAGE) bad command line or no recipients;
 * 65 (EX_DATAERR) message larger than message_size_limit; 71 (EX_OSERR)
 * no login name for the uid and no -f; 75 (EX_TEMPFAIL) queue directory
 * missing or not writable, or any write error; 78 (EX_CONFIG) unreadable
 * main.cf.
 *
 * Parameters: queue_directory, myorigin, message_size_limit.
 *
 * Run: deno task sendmail (see deno.json for its permissions).
 *
 * @module
 */

import * as fs from "node:fs";
import { parseHeaderAddresses } from "../lib/address/mod.ts";
import { concat } from "../lib/bytes/mod.ts";
import { type Config, configDirFrom, configPath, loadConfig } from "../lib/config/mod.ts";
import { ipcRequest } from "../lib/ipc/mod.ts";
import { PasswdFile } from "../lib/passwd/mod.ts";
import {
  CONTENT_CHUNK,
  contentRecordHeader,
  encodeHead,
  encodeTrailer,
  type Envelope,
  QueueDir,
  type Recipient,
  syncDir,
  TRAILER_SIZE,
} from "../lib/queue/mod.ts";
import { type MaildropAttrs, newMaildropName } from "../daemons/pickup/maildrop.ts";
import { getopt, GetoptError } from "./_cli.ts";
import { printHelpIfAsked } from "./_help.ts";

/** sysexits.h codes sendmail uses. */
export const EX = {
  OK: 0,
  USAGE: 64,
  DATAERR: 65,
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
  /** -b mode letter: "m" (deliver, the default) or "p" (list the queue). */
  mode: string;
  recipients: string[];
}

/** A bad command line; the message is printed after "sendmail: fatal: ". */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * Postfix sendmail's getopt(3) option string, except that -c takes the
 * configuration directory as in the other Postwarden commands, and -q
 * takes no argument: every form of it (-q, -qR, -qI, -q30m) is refused.
 */
export const OPTIONS = "A:B:C:F:GIL:N:O:R:UV:X:b:c:e:f:h:imno:p:r:qtvx";

/** Parses sendmail's command line with getopt(3), as Postfix does. */
export function parseSendmailArgs(argv: string[]): SendmailOptions {
  const o: SendmailOptions = { extract: false, ignoreDots: false, mode: "m", recipients: [] };
  let parsed: ReturnType<typeof getopt>;
  try {
    parsed = getopt(argv, OPTIONS);
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
      case "b":
        if (value !== "m" && value !== "p") throw new UsageError(`-b${value} is not supported`);
        o.mode = value;
        break;
      case "B":
        if (value !== "7BIT" && value !== "8BITMIME") {
          throw new UsageError("-B option needs 8BITMIME or 7BIT");
        }
        break;
      case "I":
        throw new UsageError("-I is not supported: use postalias");
      case "q":
        throw new UsageError("-q is not supported: use postqueue -f");
      case "X":
        throw new UsageError(`-X${value} is not supported`);
      default:
        // A, e, G, h, L, m, n, O, p, U, v, x: accepted and ignored, as Postfix does.
        break;
    }
  }
  o.recipients = parsed.operands;
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
  const fatal = (status: number, msg: string) => {
    io.err(`sendmail: fatal: ${msg}`);
    return status;
  };
  let opts: SendmailOptions;
  try {
    opts = parseSendmailArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) return fatal(EX.USAGE, e.message);
    throw e;
  }
  if (opts.mode === "p") return await listQueue(opts, io);

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
  if (opts.extract) attrs.extract = true;
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
    const reader = io.stdin.getReader();
    try {
      while (!conv.ended) {
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
  return EX.OK;
}

/**
 * Makes the new maildrop entry durable and wakes pickup. Whoever may open
 * maildrop/ (root, the mail owner) fsyncs it; anyone else asks pickup to.
 * Throws only when an fsync itself failed.
 */
async function syncEntry(q: QueueDir): Promise<void> {
  const socket = q.publicSocket("pickup");
  try {
    await syncDir(q.dir("maildrop"));
  } catch (e) {
    if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
    // Not ours to open. If pickup is unreachable, the fsync after the rename
    // stands (see the module comment), and pickup's next scan finds the file.
    const reply = await ipcRequest<{ ok?: boolean; synced?: boolean; error?: string }>(
      socket,
      { op: "wakeup", sync: true },
      { timeoutMs: 10_000 },
    ).catch(() => null);
    if (reply && reply.ok === false) throw new Error(reply.error ?? "pickup could not fsync");
    return;
  }
  // pickup also polls the maildrop, so a missing pickup only delays the message.
  await ipcRequest(socket, { op: "wakeup" }, { timeoutMs: 2000 }).catch(() => {});
}

/**
 * Writes one maildrop file in the queue file format (lib/queue/format.ts):
 * created exclusively as `.NAME.tmp` without following symlinks, given
 * its final mode at once (whatever the umask), content in full-size
 * records, and on {@link commit} the trailer, fsync, rename to NAME and a
 * second fsync that commits the rename.
 */
class MaildropWriter {
  readonly tmp: string;
  readonly path: string;
  #fd: number | null;
  #size = 0;
  #contentBytes = 0;
  #pending: Uint8Array[] = [];
  #pendingLen = 0;

  private constructor(dir: string, name: string, fd: number) {
    this.tmp = `${dir}/.${name}.tmp`;
    this.path = `${dir}/${name}`;
    this.#fd = fd;
  }

  static create(
    dir: string,
    name: string,
    mode: number,
    env: Envelope,
    rcpts: Recipient[],
  ): MaildropWriter {
    const c = fs.constants;
    const fd = fs.openSync(
      `${dir}/.${name}.tmp`,
      c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW,
      0o600,
    );
    const w = new MaildropWriter(dir, name, fd);
    try {
      fs.fchmodSync(fd, mode);
      w.#out(encodeHead(env, rcpts));
    } catch (e) {
      w.abort();
      throw e;
    }
    return w;
  }

  get contentBytes(): number {
    return this.#contentBytes;
  }

  /** Appends content (canonical CRLF form). */
  write(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#pending.push(chunk);
    this.#pendingLen += chunk.length;
    this.#contentBytes += chunk.length;
    while (this.#pendingLen >= CONTENT_CHUNK) this.#record(CONTENT_CHUNK);
  }

  /** Writes the last record and the trailer, then makes the file durable under its name. */
  commit(): void {
    const fd = this.#fd!;
    if (this.#pendingLen > 0) this.#record(this.#pendingLen);
    this.#out(encodeTrailer(this.#size + TRAILER_SIZE));
    fs.fsyncSync(fd);
    fs.renameSync(this.tmp, this.path);
    try {
      // Commits the rename too on ext4, XFS and btrfs (the inode's ctime changed with it).
      fs.fsyncSync(fd);
    } catch (e) {
      // Failing means "not queued": the file must not be delivered after all.
      try {
        fs.unlinkSync(this.path);
      } catch {
        // already picked up
      }
      throw e;
    }
    fs.closeSync(fd);
    this.#fd = null;
  }

  /** Discards the temporary file. */
  abort(): void {
    if (this.#fd === null) return;
    try {
      fs.closeSync(this.#fd);
    } catch {
      // closed
    }
    this.#fd = null;
    try {
      fs.unlinkSync(this.tmp);
    } catch {
      // gone
    }
  }

  /** Writes one content record of `len` bytes from the front of the pending chunks. */
  #record(len: number): void {
    this.#out(contentRecordHeader(len));
    for (let need = len; need > 0;) {
      const head = this.#pending[0];
      if (head.length <= need) {
        this.#out(head);
        this.#pending.shift();
        need -= head.length;
      } else {
        this.#out(head.subarray(0, need));
        this.#pending[0] = head.subarray(need);
        need = 0;
      }
    }
    this.#pendingLen -= len;
  }

  #out(b: Uint8Array): void {
    for (let off = 0; off < b.length;) off += fs.writeSync(this.#fd!, b, off, b.length - off);
    this.#size += b.length;
  }
}

function currentUid(): number {
  try {
    return Deno.uid() ?? -1;
  } catch {
    return -1;
  }
}

/** -bp: the same listing as `postqueue -p`, when commands/postqueue.ts provides it. */
async function listQueue(opts: SendmailOptions, io: SendmailIo): Promise<number> {
  let mod: { main?: (argv: string[]) => Promise<number> | number } | null = null;
  try {
    mod = await import(new URL("./postqueue.ts", import.meta.url).href);
  } catch {
    mod = null;
  }
  if (!mod || typeof mod.main !== "function") {
    io.err("sendmail: fatal: sendmail -bp is not supported");
    return EX.USAGE;
  }
  return await mod.main(["-p", ...(opts.configDir ? ["-c", opts.configDir] : [])]);
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
