/**
 * Delivery to a command, as Postfix's local(8) does for `|command` in
 * aliases, :include: files and .forward files, and for mailbox_command
 * (src/local/command.c, src/global/pipe_command.c, sys_exits.c).
 *
 * The command runs through the shell: local_command_shell when set (its
 * words, then the command as one more argument, e.g. `/usr/bin/sh -c`),
 * else `/bin/sh -c COMMAND` (Postfix execs a command without shell
 * metacharacters directly; the shell does the same thing for it, and only
 * the shell needs --allow-run). With the uid and gid of whoever's rights
 * apply (Deno.Command uid/gid, no supplementary groups) when local runs
 * as root, as this process otherwise.
 *
 * Its environment is built from nothing: the export_environment variables
 * local itself has, PATH=/usr/bin:/bin, and HOME, LOGNAME, USER, SHELL,
 * SENDER, RECIPIENT, LOCAL, DOMAIN, EXTENSION, ORIGINAL_RECIPIENT, each
 * value with every character command_expansion_filter does not list
 * replaced by "_". Addresses reach the command only there, never in its
 * command line, so no address can inject shell syntax. The working
 * directory is command_execution_directory (expanded with
 * execution_directory_expansion_filter), else the process's own.
 *
 * Its standard input: the "From " line, Return-Path, X-Original-To and
 * Delivered-To (when prepend_delivered_header lists "command"), then the
 * message with LF line ends (no >From quoting, no blank line added). A
 * command that stops reading early is not an error.
 *
 * Outcomes, with up to 4095 bytes of its output (stdout, then stderr;
 * tabs and newlines as spaces, other unprintable bytes as "_") appended
 * as ". Command output: ...":
 * - exit 0: sent, "delivered to command: COMMAND";
 * - a sendmail exit status (64-78): its text and DSN code, deferred for
 *   EX_OSERR and EX_TEMPFAIL, bounced otherwise;
 * - another status: bounced 5.3.0 `Command died with status N: "COMMAND"`;
 * - killed by a signal: deferred 4.3.0 `Command died with signal N: "COMMAND"`;
 * - over command_time_limit: killed, bounced 5.3.0 `Command time limit
 *   exceeded: "COMMAND"` (Postfix kills the process group; Deno can kill
 *   only the process, so children that outlive the shell are not killed);
 * - not started (no shell, sandbox): deferred 4.3.0.
 *
 * @module
 */
import { headerAddress } from "../../lib/address/mod.ts";
import { asctime } from "../../lib/mailbox/mbox.ts";
import { CrlfToLf } from "../../lib/smtp/client_codec.ts";
import type { Identity } from "./mailbox.ts";

/** A command delivery. */
export interface CommandJob {
  /** The command text as the alias, .forward or mailbox_command gives it. */
  command: string;
  /** local_command_shell ("" for /bin/sh -c). */
  shell: string;
  /** Working directory, or "" for this process's. */
  cwd: string;
  /** The environment, already filtered. */
  env: Record<string, string>;
  /** command_time_limit in ms. */
  timeLimitMs: number;
  /** Whose rights (null: this process's). */
  as: Identity | null;
  sender: string;
  originalRecipient?: string;
  /** Delivered-To, or undefined when prepend_delivered_header does not list "command". */
  delivered?: string;
  /** The message in canonical CRLF form. */
  content: () => AsyncIterable<Uint8Array>;
  /** Clock for the From line. @default new Date() */
  now?: () => Date;
}

/** The outcome of a command delivery. */
export interface CommandOutcome {
  status: "sent" | "deferred" | "bounced";
  dsn: string;
  reason: string;
}

/** sendmail's sysexits.h codes as Postfix's sys_exits.c describes them. */
const SYS_EXITS: Record<number, [dsn: string, text: string]> = {
  64: ["5.3.0", "command line usage error"],
  65: ["5.6.0", "data format error"],
  66: ["5.3.0", "cannot open input"],
  67: ["5.1.1", "user unknown"],
  68: ["5.1.2", "host name unknown"],
  69: ["5.3.0", "service unavailable"],
  70: ["5.3.0", "internal software error"],
  71: ["4.3.0", "system resource problem"],
  72: ["5.3.0", "critical OS file missing"],
  73: ["5.2.0", "can't create user output file"],
  74: ["5.3.0", "input/output error"],
  75: ["4.3.0", "temporary failure"],
  76: ["5.5.0", "remote error in protocol"],
  77: ["5.7.0", "permission denied"],
  78: ["5.3.5", "local configuration error"],
};

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

/** Longest command output kept for the reason. */
const OUTPUT_LIMIT = 4095;

/** The argv a command runs with: local_command_shell's words and the command, or /bin/sh -c. */
export function commandArgv(command: string, shell: string): string[] {
  const words = shell.trim() === "" ? ["/bin/sh", "-c"] : shell.trim().split(/[ \t\r\n]+/);
  return [...words, command];
}

/** Runs one command delivery. Never throws for the command's failures. */
export async function deliverCommand(job: CommandJob): Promise<CommandOutcome> {
  const [program, ...args] = commandArgv(job.command, job.shell);
  const quoted = `"${job.command}"`;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args,
      ...(job.cwd ? { cwd: job.cwd } : {}),
      ...(job.as ? { uid: job.as.uid, gid: job.as.gid } : {}),
      clearEnv: true,
      env: job.env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    return {
      status: "deferred",
      dsn: "4.3.0",
      reason: `Command failed: ${(e as Error).message}: ${quoted}`,
    };
  }
  // One deadline for everything: writing, reading its output, its exit. A
  // child the shell left behind can hold the pipes open after the shell is
  // gone; at the deadline they are let go (Postfix kills the process group).
  const stdout = new Collector(child.stdout);
  const stderr = new Collector(child.stderr);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((r) => {
    timer = setTimeout(() => r("timeout"), job.timeLimitMs);
  });
  const stop = new AbortController();
  const work = (async () => {
    const writeError = await feed(child.stdin, job, stop.signal);
    await Promise.all([stdout.done, stderr.done]);
    return { writeError, status: await child.status };
  })();
  const first = await Promise.race([work, deadline]);
  clearTimeout(timer);
  const timedOut = first === "timeout";
  if (timedOut) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    stop.abort();
    await Promise.all([stdout.cancel(), stderr.cancel()]);
  }
  const { writeError, status } = timedOut
    ? { writeError: "", status: await child.status }
    : first as Awaited<typeof work>;
  work.catch(() => {}); // settles after the cancels; nothing to report any more
  const out = stdout.bytes();
  const err = stderr.bytes();
  const text = printable(concat([out, err]).subarray(0, OUTPUT_LIMIT));
  const tail = text ? `. Command output: ${text}` : "";
  if (timedOut) {
    return {
      status: "bounced",
      dsn: "5.3.0",
      reason: `Command time limit exceeded: ${quoted}${tail}`,
    };
  }
  if (status.signal) {
    const n = SIGNALS[status.signal] ?? status.signal;
    return {
      status: "deferred",
      dsn: "4.3.0",
      reason: `Command died with signal ${n}: ${quoted}${tail}`,
    };
  }
  if (status.code !== 0) {
    const sx = SYS_EXITS[status.code];
    if (sx) {
      return {
        status: sx[0].startsWith("4") ? "deferred" : "bounced",
        dsn: sx[0],
        reason: `${sx[1]}${tail}`,
      };
    }
    return {
      status: "bounced",
      dsn: "5.3.0",
      reason: `Command died with status ${status.code}: ${quoted}${tail}`,
    };
  }
  if (writeError) {
    return {
      status: "deferred",
      dsn: "4.3.0",
      reason: `Command failed: ${writeError}: ${quoted}`,
    };
  }
  return { status: "sent", dsn: "2.0.0", reason: `delivered to command: ${job.command}` };
}

/** The lines a command gets before the message. */
export function commandHeaders(
  job: Pick<CommandJob, "sender" | "originalRecipient" | "delivered">,
  date: Date,
): string {
  const sender = headerAddress(job.sender);
  let out = `From ${job.sender === "" ? "MAILER-DAEMON" : sender}  ${asctime(date)}\n` +
    `Return-Path: <${job.sender === "" ? "" : sender}>\n`;
  if (job.originalRecipient) out += `X-Original-To: ${headerAddress(job.originalRecipient)}\n`;
  if (job.delivered !== undefined) out += `Delivered-To: ${headerAddress(job.delivered)}\n`;
  return out;
}

/**
 * Writes the message to the command. Returns the error text when reading
 * the message failed or writing failed other than by the command closing
 * its input (EPIPE), else "".
 */
async function feed(
  stdin: WritableStream<Uint8Array>,
  job: CommandJob,
  signal: AbortSignal,
): Promise<string> {
  const w = stdin.getWriter();
  signal.addEventListener("abort", () => w.abort().catch(() => {}), { once: true });
  const lf = new CrlfToLf();
  try {
    await w.write(new TextEncoder().encode(commandHeaders(job, (job.now ?? (() => new Date()))())));
    let it: AsyncIterable<Uint8Array>;
    try {
      it = job.content();
    } catch (e) {
      await w.abort().catch(() => {});
      return `error reading message: ${(e as Error).message}`;
    }
    try {
      for await (const chunk of it) await w.write(lf.push(chunk));
    } catch (e) {
      if (isBrokenPipe(e)) return "";
      await w.abort().catch(() => {});
      return (e as Error).message;
    }
    await w.write(lf.end());
    await w.close();
    return "";
  } catch (e) {
    if (isBrokenPipe(e)) return "";
    await w.abort().catch(() => {});
    return (e as Error).message;
  }
}

function isBrokenPipe(e: unknown): boolean {
  return e instanceof Deno.errors.BrokenPipe ||
    (e as { code?: string })?.code === "EPIPE" ||
    /broken pipe/i.test((e as Error)?.message ?? "");
}

/** Reads a stream to its end, keeping the first {@link OUTPUT_LIMIT} bytes; can be let go. */
class Collector {
  #parts: Uint8Array[] = [];
  #n = 0;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  /** Settles at the end of the stream (or when cancelled). */
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
    this.done = this.#run();
  }

  async #run(): Promise<void> {
    try {
      while (true) {
        const r = await this.#reader.read();
        if (r.done) return;
        // Keep reading (a command blocked on a full pipe would never end), keep only the start.
        if (this.#n < OUTPUT_LIMIT) {
          const part = r.value.subarray(0, OUTPUT_LIMIT - this.#n);
          this.#parts.push(part);
          this.#n += part.length;
        }
      }
    } catch {
      // cancelled
    }
  }

  /** Stops reading. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    await this.done;
  }

  bytes(): Uint8Array {
    return concat(this.#parts);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Postfix's translit("\t\n", "  ") then printable(): other unprintable bytes become "_". */
function printable(bytes: Uint8Array): string {
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  // deno-lint-ignore no-control-regex
  return text.replace(/[\t\n]/g, " ").replace(/[\x00-\x1f\x7f\ufffd]/g, "_");
}
