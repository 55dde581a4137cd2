/**
 * The one log writer, as Postfix 3.4+'s postlogd: every daemon writes its
 * log lines to stderr, a pipe to master, and only master writes them to
 * `maillog_file` (or to syslog through /dev/log when maillog_file is
 * empty, Postfix's default), and in the foreground to its own stderr too.
 * No daemon holds a write grant on the log, so none can truncate, rewrite
 * or remove it.
 *
 * A line from a daemon is written as it came only when it names the pid
 * master knows for that pipe and holds no control character (the daemon's
 * Logger already masked them); any other line is re-headed with master's
 * clock and host name and that pid, and masked, so a daemon cannot log in
 * the name of another process nor split or forge a line. Anything a daemon
 * prints that is not a log line (an uncaught exception from Deno) is
 * logged as a warning of that daemon. Writes to the file are batched: one
 * write per turn of the event loop, whatever number of lines came in.
 *
 * The file is opened without following symbolic links, must be a regular
 * file with one link, and is made mode 0600 and owned by the user master
 * runs as (lib/privilege openNoFollow); its folder must be one that only
 * that user can change.
 *
 * @module
 */
import { concat } from "../../lib/bytes/mod.ts";
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
const decoder = new TextDecoder();

/**
 * True when a daemon's line can be written as it is: its header names the
 * pid of the pipe it came from (the first "]: " follows "[pid"), and it has
 * no control character, C0, DEL or C1 (the Logger masks them; anything else
 * went around it).
 */
export function cleanLine(line: Uint8Array, tag: Uint8Array): boolean {
  let at = -1;
  for (let i = 0; i + 2 < line.length && i < 512; i++) {
    if (line[i] === 0x5d && line[i + 1] === 0x3a && line[i + 2] === 0x20) {
      at = i + 3 - tag.length;
      break;
    }
  }
  if (at < 1) return false;
  for (let k = 0; k < tag.length; k++) if (line[at + k] !== tag[k]) return false;
  if (line[at - 1] === 0x5b) return false; // "[[pid]: " is not a program name
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c < 0x20 || c === 0x7f) return false;
    if (c === 0xc2 && line[i + 1] >= 0x80 && line[i + 1] <= 0x9f) return false;
  }
  return true;
}

/** Syslog severity of a message, from its Postfix-style prefix. */
function severity(text: string): number {
  if (text.startsWith("fatal: ") || text.startsWith("panic: ")) return 2;
  if (text.startsWith("error: ")) return 3;
  if (text.startsWith("warning: ")) return 4;
  return 6;
}

/** Reads closer together than this mean a busy daemon (see pump). */
const PUMP_BUSY_MS = 10;
/** Pause after a small read from a busy daemon's stderr. */
const PUMP_PAUSE_MS = 20;

/** LOG_MAIL */
const FACILITY = 2;

/** Writes the log for master and every daemon. */
export class LogWriter {
  #file: SafeFile | null = null;
  #syslog: Deno.DatagramConn | null = null;
  #syslogClient = "";
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #flushTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(readonly opts: LogWriterOptions) {}

  /** Opens (or reopens, after rotation) the destinations. */
  open(): void {
    this.#flush();
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

  /** Queues bytes for the file and stderr; written once per event loop turn. */
  #queue(bytes: Uint8Array): void {
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
    if (this.#pendingBytes >= 256 * 1024) this.#flush();
    else this.#flushTimer ??= setTimeout(() => this.#flush(), 0);
  }

  #flush(): void {
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#pendingBytes === 0) return;
    const out = concat(this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.opts.stderr) {
      try {
        Deno.stderr.writeSync(out);
      } catch {
        // stderr gone
      }
    }
    try {
      this.#file?.write(out);
    } catch {
      // A full disk must not stop mail; the lines are lost, as with syslog.
    }
  }

  #emit(lines: string[]): void {
    if (this.#file || this.opts.stderr) this.#queue(encoder.encode(lines.join("")));
    if (!this.#file && this.#syslog) {
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
    const tag = encoder.encode(`[${pid}]: `);
    let partial: Uint8Array | null = null;
    let last = 0;
    try {
      for await (const chunk of stream) {
        let data = chunk;
        if (partial) {
          data = new Uint8Array(partial.length + chunk.length);
          data.set(partial);
          data.set(chunk, partial.length);
          partial = null;
        }
        let start = 0;
        for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10, start)) {
          this.#daemonLine(data.subarray(start, nl), tag, program, pid);
          start = nl + 1;
        }
        if (start < data.length) {
          partial = data.slice(start);
          if (partial.length > 64 * 1024) {
            this.#daemonLine(partial, tag, program, pid);
            partial = null;
          }
        }
        // A busy daemon logs a line at a time: let a few gather in the pipe
        // (64 KiB) rather than wake for each, which costs master more CPU
        // than the lines themselves. A quiet daemon's lines go out at once.
        const now = Date.now();
        if (now - last < PUMP_BUSY_MS && chunk.length < 8192) {
          await new Promise((r) => setTimeout(r, PUMP_PAUSE_MS));
        }
        last = now;
      }
    } catch {
      // pipe closed
    }
    if (partial) this.#daemonLine(partial, tag, program, pid);
  }

  /** One line from a daemon: as it came if it is clean and names its pid, else re-headed. */
  #daemonLine(line: Uint8Array, tag: Uint8Array, program: string, pid: number): void {
    if (line.length === 0) return;
    if (!this.#syslog && cleanLine(line, tag)) {
      const out = new Uint8Array(line.length + 1);
      out.set(line);
      out[line.length] = 10;
      this.#queue(out);
      return;
    }
    this.daemonLines(program, pid, [decoder.decode(line)]);
  }

  close(): void {
    this.#flush();
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
