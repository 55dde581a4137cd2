/**
 * The one log writer, as Postfix 3.4+'s postlogd: every daemon writes its
 * log lines to stderr, a pipe to master, and only master writes them to
 * `maillog_file` (or to syslog through /dev/log when maillog_file is
 * empty, Postfix's default), and in the foreground to its own stderr too.
 * No daemon holds a write grant on the log, so none can truncate, rewrite
 * or remove it.
 *
 * Each line from a daemon is re-headed with master's clock and host name
 * and the pid master knows for that pipe, so a daemon cannot log in the
 * name of another process; control characters are escaped so no line can
 * be split or forged. Anything a daemon prints that is not a log line (an
 * uncaught exception from Deno) is logged as a warning of that daemon.
 *
 * The file is opened without following symbolic links, must be a regular
 * file with one link, and is made mode 0600 and owned by the user master
 * runs as (lib/privilege openNoFollow); its folder must be one that only
 * that user can change.
 *
 * @module
 */
import { printable, syslogTime } from "../../lib/log/mod.ts";
import { openNoFollow, type SafeFile } from "../../lib/privilege/mod.ts";

/** Where lines go. */
export interface LogWriterOptions {
  /** maillog_file, or "" for syslog. */
  file: string;
  /** Host name in each line. */
  hostname: string;
  /** Also copy each line to stderr (foreground). */
  stderr: boolean;
  /** The syslog socket. @default "/dev/log" */
  syslogPath?: string;
  /** Where master may bind its syslog client socket (a folder only master can change). */
  syslogClientDir: string;
  /** Owner of the log file. */
  owner: { uid: number; gid: number };
}

/** `Mon DD HH:MM:SS host program[pid]: text` as our Logger writes it. */
const LINE = /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ ([^\s[\]]+)\[\d+\]: (.*)$/;

const encoder = new TextEncoder();

/** Syslog severity of a message, from its Postfix-style prefix. */
function severity(text: string): number {
  if (text.startsWith("fatal: ") || text.startsWith("panic: ")) return 2;
  if (text.startsWith("error: ")) return 3;
  if (text.startsWith("warning: ")) return 4;
  return 6;
}

/** LOG_MAIL */
const FACILITY = 2;

/** Writes the log for master and every daemon. */
export class LogWriter {
  #file: SafeFile | null = null;
  #syslog: Deno.DatagramConn | null = null;
  #syslogClient = "";

  constructor(readonly opts: LogWriterOptions) {}

  /** Opens (or reopens, after rotation) the destinations. */
  open(): void {
    this.#file?.close();
    this.#file = null;
    if (this.opts.file) {
      this.#file = openNoFollow(this.opts.file, {
        mode: 0o600,
        ...this.opts.owner,
        takeOver: true,
      });
      return;
    }
    if (this.#syslog) return;
    const path = this.opts.syslogPath ?? "/dev/log";
    try {
      Deno.lstatSync(path);
    } catch {
      return; // no syslog here: stderr only (postwarden start refuses this in the background)
    }
    this.#syslogClient = `${this.opts.syslogClientDir}/master.syslog.${Deno.pid}`;
    try {
      Deno.removeSync(this.#syslogClient);
    } catch {
      // none left over
    }
    this.#syslog = Deno.listenDatagram({ transport: "unixpacket", path: this.#syslogClient });
  }

  /** Writes lines that are already formatted by a Logger of master's own. */
  line(line: string): void {
    this.#emit([line.endsWith("\n") ? line : `${line}\n`]);
  }

  /** Writes what a daemon printed: re-headed with its pid, escaped. */
  daemonLines(program: string, pid: number, texts: string[]): void {
    const now = syslogTime(new Date());
    const out: string[] = [];
    for (const raw of texts) {
      if (raw === "") continue;
      const m = LINE.exec(raw);
      const prog = m ? m[1] : program;
      const text = m ? m[2] : `warning: ${raw}`;
      out.push(`${now} ${this.opts.hostname} ${prog}[${pid}]: ${printable(text)}\n`);
    }
    if (out.length) this.#emit(out);
  }

  #emit(lines: string[]): void {
    if (this.opts.stderr) {
      try {
        Deno.stderr.writeSync(encoder.encode(lines.join("")));
      } catch {
        // stderr gone
      }
    }
    if (this.#file) {
      try {
        this.#file.write(encoder.encode(lines.join("")));
      } catch {
        // A full disk must not stop mail; the line is lost, as with syslog.
      }
    } else if (this.#syslog) {
      for (const l of lines) {
        // RFC 3164 on the local socket: <PRI>TIMESTAMP TAG: MSG, no host name.
        const m = /^(\S+ +\S+ \S+) \S+ (.*)\n$/.exec(l);
        if (!m) continue;
        const text = m[2].slice(m[2].indexOf("]: ") + 3);
        const pri = FACILITY * 8 + severity(text);
        this.#syslog.send(encoder.encode(`<${pri}>${m[1]} ${m[2]}`), {
          transport: "unixpacket",
          path: this.opts.syslogPath ?? "/dev/log",
        }).catch(() => {});
      }
    }
  }

  /** Reads a daemon's stderr to its end, logging each line. */
  async pump(stream: ReadableStream<Uint8Array>, program: string, pid: number): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    try {
      for await (const chunk of stream) {
        const text = partial + decoder.decode(chunk, { stream: true });
        const lines = text.split("\n");
        partial = lines.pop() ?? "";
        if (partial.length > 64 * 1024) {
          lines.push(partial);
          partial = "";
        }
        this.daemonLines(program, pid, lines);
      }
    } catch {
      // pipe closed
    }
    partial += decoder.decode();
    if (partial) this.daemonLines(program, pid, [partial]);
  }

  close(): void {
    this.#file?.close();
    this.#file = null;
    if (this.#syslog) {
      try {
        this.#syslog.close();
      } catch {
        // closed
      }
      this.#syslog = null;
      try {
        Deno.removeSync(this.#syslogClient);
      } catch {
        // gone
      }
    }
  }
}
