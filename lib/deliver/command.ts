/**
 * Runs one delivery command, for pipe(8) and for local(8)'s commands
 * (|command, mailbox_command), as Postfix's pipe_command() serves both:
 * spawns the program directly with the argv it is given (local's argv is
 * its shell and the command), as the given uid/gid, in the environment it
 * is given, feeds it the message, keeps the first 4096 bytes of its
 * standard output and error (Postfix keeps one buffer of it), and kills
 * it at the time limit. {@link commandOutcome} turns the result into a
 * delivery status with Postfix's texts and DSN codes (sys_exits.c,
 * pipe_command.c).
 *
 * Not done: killing the command's own children at the time limit
 * (Postfix kills the process group; Deno.kill on a group needs an
 * unscoped --allow-run): at the deadline their output is let go.
 */
import { type DeliveryOutcome, failureStatus } from "../outcome/mod.ts";

/** How the command ended. */
export type CommandResult =
  | { kind: "exit"; code: number; output: string }
  | { kind: "signal"; signal: number; output: string }
  | { kind: "timeout"; output: string }
  /** It could not be started (missing program, bad directory, permission). */
  | { kind: "spawn"; message: string; notFound: boolean }
  /** Writing the message failed for a reason other than the command closing its input. */
  | { kind: "write"; message: string; output: string };

/** What {@link runCommand} needs. */
export interface CommandSpec {
  argv: string[];
  /** Run as this user and group (only when this process may: root). */
  uid?: number;
  gid?: number;
  /** Working directory; "" for this process's. */
  cwd: string;
  env: Record<string, string>;
  /** The whole run, in ms. */
  timeLimitMs: number;
  input: AsyncIterable<Uint8Array>;
}

/** Bytes of command output kept for logs and bounces (Postfix's VSTREAM_BUFSIZE). */
export const OUTPUT_LIMIT = 4096;

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
  SIGXCPU: 24,
  SIGXFSZ: 25,
};

/** Runs the command; never throws. */
export async function runCommand(spec: CommandSpec): Promise<CommandResult> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(spec.argv[0], {
      args: spec.argv.slice(1),
      ...(spec.cwd ? { cwd: spec.cwd } : {}),
      clearEnv: true,
      env: spec.env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      ...(spec.uid !== undefined ? { uid: spec.uid, gid: spec.gid } : {}),
    }).spawn();
  } catch (e) {
    return {
      kind: "spawn",
      message: (e as Error).message,
      notFound: e instanceof Deno.errors.NotFound,
    };
  }
  // One deadline for everything: writing the message, reading the output to
  // its end, the exit. A child the command left behind holding the output
  // open holds the delivery until the deadline, as in Postfix (whose
  // pipe_command() reads to end of file): then it is a time-out.
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => {
      timedOut = true;
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      resolve("timeout");
    }, spec.timeLimitMs);
  });
  const output = new OutputCollector();
  const readers = [drain(child.stdout, output), drain(child.stderr, output)];
  let writeError: Error | null = null;
  try {
    const w = child.stdin.getWriter();
    try {
      for await (const chunk of spec.input) {
        if (timedOut) break;
        await w.write(chunk);
      }
      await w.close();
    } catch (e) {
      // The command may stop reading early; that is not an error (EPIPE).
      if (!(e instanceof Deno.errors.BrokenPipe) && !timedOut) writeError = e as Error;
      await w.abort().catch(() => {});
    }
  } catch (e) {
    writeError = e as Error;
  }
  const work = (async () => {
    await Promise.all(readers);
    return await child.status;
  })();
  const first = await Promise.race([work, deadline]);
  clearTimeout(timer);
  if (first === "timeout" || timedOut) {
    for (const s of [child.stdout, child.stderr]) s.cancel().catch(() => {});
    work.catch(() => {}); // settles once the streams are cancelled
    await child.status;
    return { kind: "timeout", output: output.text() };
  }
  const status = first;
  const text = output.text();
  if (status.signal) {
    return { kind: "signal", signal: SIGNALS[status.signal] ?? 0, output: text };
  }
  if (status.code === 0 && writeError) {
    return { kind: "write", message: writeError.message, output: text };
  }
  return { kind: "exit", code: status.code, output: text };
}

async function drain(stream: ReadableStream<Uint8Array>, out: OutputCollector): Promise<void> {
  try {
    for await (const chunk of stream) out.add(chunk);
  } catch {
    // cancelled after the command exited
  }
}

/** The first {@link OUTPUT_LIMIT} bytes of output; the rest is read and dropped. */
class OutputCollector {
  #parts: Uint8Array[] = [];
  #len = 0;

  add(chunk: Uint8Array): void {
    if (this.#len >= OUTPUT_LIMIT) return;
    const part = chunk.subarray(0, OUTPUT_LIMIT - this.#len);
    this.#parts.push(part.slice());
    this.#len += part.length;
  }

  /** Tabs and newlines as spaces, other control characters and invalid UTF-8 as "_". */
  text(): string {
    const all = new Uint8Array(this.#len);
    let off = 0;
    for (const p of this.#parts) {
      all.set(p, off);
      off += p.length;
    }
    return printable(new TextDecoder().decode(all));
  }
}

/** Postfix's translit("\t\n", "  ") and printable('_'). */
export function printable(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/[\t\n]/g, " ").replace(/[\x00-\x1f\x7f\ufffd]/g, "_");
}

/** A delivery status for every recipient of the request. */
export type CommandOutcome = DeliveryOutcome;

/** sendmail exit codes (sysexits.h) with Postfix's DSN code and text (sys_exits.c). */
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

/**
 * The status of a command run, as Postfix's pipe(8) reports it. A failed
 * command whose output starts with an enhanced status code (4.X.X or
 * 5.X.X) gets that code, the status it implies and the rest of its output
 * as the reason. Texts as a live Postfix 3.7 logged them.
 */
export function commandOutcome(
  r: CommandResult,
  names: {
    /** The program or command as quoted in failure texts. */
    command: string;
    /** The reason for exit status 0, given the command's output. */
    sent: (output: string) => string;
  },
): CommandOutcome {
  const program = `"${names.command}"`;
  const withOutput = (text: string, output: string) =>
    output ? `${text}. Command output: ${output}` : text;
  const byCode = (dsn: string, text: string, output: string): CommandOutcome => {
    // Output that starts with an enhanced code is the whole reason (Postfix 3.7 shows
    // "status=bounced (go away )" for "5.7.1 go away").
    const own = /^([45])\.\d{1,3}\.\d{1,3}(?=\s|$)/.exec(output);
    if (own) {
      return {
        status: failureStatus(own[0]),
        dsn: own[0],
        reason: output.slice(own[0].length).trimStart(),
      };
    }
    return {
      status: failureStatus(dsn),
      dsn,
      reason: withOutput(text, output),
    };
  };
  switch (r.kind) {
    case "exit":
      if (r.code === 0) {
        return { status: "sent", dsn: "2.0.0", reason: names.sent(r.output) };
      }
      if (SYS_EXITS[r.code]) {
        const [dsn, text] = SYS_EXITS[r.code];
        return byCode(dsn, text, r.output);
      }
      return byCode("5.3.0", `Command died with status ${r.code}: ${program}`, r.output);
    case "signal":
      return byCode("4.3.0", `Command died with signal ${r.signal}: ${program}`, r.output);
    case "timeout":
      return byCode("5.3.0", `Command time limit exceeded: ${program}`, r.output);
    case "spawn":
      return { status: "deferred", dsn: "4.3.0", reason: `Delivery failed: ${r.message}` };
    case "write":
      return {
        status: "deferred",
        dsn: "4.3.0",
        reason: `Command failed: ${r.message}: ${program}`,
      };
  }
}
