/**
 * The one logger: Postfix-format lines
 * (`Mon DD HH:MM:SS host postwarden/smtpd[pid]: QUEUEID: ...`) appended to
 * `maillog_file` and, in the foreground, to stderr. Log tools written for
 * Postfix (pflogsumm, fail2ban) read these lines.
 *
 * Like Postfix's msg_text(), which runs printable() over every record,
 * each non-printable character becomes "?" before the line is written: a
 * client that puts CR, LF or NUL into a HELO name or an address can neither
 * split a record nor forge one. Here that means C0 and C1 controls, DEL,
 * U+2028/U+2029 and lone surrogates; other UTF-8 text is kept (Postfix with
 * smtputf8_enable=yes).
 *
 * The clock and the sinks are injected so tests can capture lines. This
 * module does not rotate files; `postlog`-style forwarding is not supported.
 */

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Where formatted lines go. */
export type LogSink = (line: string) => void;

/** Options for {@link Logger}. */
export interface LoggerOptions {
  /** Program name, e.g. `postwarden/smtpd`. */
  program: string;
  /** Host name printed in each line. */
  hostname: string;
  /** Sinks that receive each full line (with trailing newline). */
  sinks: LogSink[];
  /** Clock. @default () => new Date() */
  now?: () => Date;
  /** Process id printed in brackets. @default Deno.pid */
  pid?: number;
}

/** Formats a timestamp the way syslog does: `Nov 30 16:28:42`. */
export function syslogTime(d: Date): string {
  const day = String(d.getDate()).padStart(2, " ");
  const hms = [d.getHours(), d.getMinutes(), d.getSeconds()]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
  return `${MONTHS[d.getMonth()]} ${day} ${hms}`;
}

/** A Postfix-style logger. */
export class Logger {
  readonly #opts: Required<LoggerOptions>;

  constructor(opts: LoggerOptions) {
    this.#opts = { now: () => new Date(), pid: Deno.pid, ...opts };
  }

  /** Writes one informational line. */
  info(msg: string): void {
    this.#emit(msg);
  }

  /** Writes a `warning: ` line. */
  warn(msg: string): void {
    this.#emit(`warning: ${msg}`);
  }

  /** Writes an `error: ` line. */
  error(msg: string): void {
    this.#emit(`error: ${msg}`);
  }

  /** Writes a `fatal: ` line. The caller decides whether to exit. */
  fatal(msg: string): void {
    this.#emit(`fatal: ${msg}`);
  }

  #emit(msg: string): void {
    const o = this.#opts;
    const line = `${syslogTime(o.now())} ${printable(o.hostname)} ${
      printable(o.program)
    }[${o.pid}]: ${printable(msg)}\n`;
    for (const sink of o.sinks) sink(line);
  }
}

/**
 * Characters that must not reach a log record: C0 controls (CR, LF, NUL,
 * TAB, ESC, ...), DEL, C1 controls (NEL), the Unicode line and paragraph
 * separators, and surrogates that are not part of a pair.
 */
const UNPRINTABLE =
  // deno-lint-ignore no-control-regex
  /[\x00-\x1f\x7f-\x9f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Postfix's printable(s, '?') for log text: what a log line may hold of any text. */
export function printable(s: string): string {
  return s.replace(UNPRINTABLE, "?");
}

const encoder = new TextEncoder();

/**
 * A sink appending to a file. Each line is one `write` on an O_APPEND
 * descriptor, so lines from several daemons never interleave mid-line.
 */
export function fileSink(path: string): LogSink {
  const file = Deno.openSync(path, { append: true, create: true });
  return (line) => {
    try {
      file.writeSync(encoder.encode(line));
    } catch {
      // A full disk must not take the daemon down with it; stderr still sees the line.
    }
  };
}

/** A sink writing to standard error. */
export function stderrSink(): LogSink {
  return (line) => {
    try {
      Deno.stderr.writeSync(encoder.encode(line));
    } catch {
      // stderr closed (detached daemon): nothing to do.
    }
  };
}
