/**
 * One SMTP client connection: connect with a time limit, read replies
 * (through lib/smtp's ReplyParser) and write commands, each under the
 * time limit of the protocol stage it belongs to. A timeout or a broken
 * connection becomes a {@link SessionError} whose message reads like
 * Postfix's ("lost connection with HOST[IP] while sending RCPT TO",
 * "conversation with HOST[IP] timed out while ..."); the connection is
 * closed then and the session is {@link SmtpSession.broken}.
 *
 * After STARTTLS, {@link SmtpSession.upgrade} swaps the TLS stream in
 * (starttls.ts) and drops whatever plaintext arrived after the server's
 * 220: bytes a man in the middle could have injected (CVE-2011-0411).
 *
 * Knows nothing about transactions or next hops; see deliver.ts.
 */
import { type Reply, ReplyParser, SmtpProtocolError } from "../../lib/smtp/mod.ts";
import type { ByteStream, ClientTlsInfo } from "./starttls.ts";

/** How to open a TCP connection; injectable for tests (sandbox errors, fakes). */
export type ConnectFn = (opts: Deno.ConnectOptions) => Promise<Deno.TcpConn>;

/**
 * How to open a UNIX-domain connection (the lmtp client's `unix:` next
 * hops); a TCP one stands in for it in capture mode (lib/deliver/capture.ts).
 */
export type ConnectUnixFn = (
  opts: Deno.UnixConnectOptions,
) => Promise<Deno.UnixConn | Deno.TcpConn>;

/** One address to try: the host name for logs, the address to connect to, the port. */
export interface Destination {
  host: string;
  addr: string;
  port: number;
}

/** A failure to open the TCP connection; `message` is the whole Postfix-style reason. */
export class ConnectError extends Error {
  override readonly name = "ConnectError";
}

/** The connection broke or timed out during a stage of the protocol. */
export class SessionError extends Error {
  override readonly name = "SessionError";
  /** @param kind what happened: "lost" (EOF, reset, bad reply) or "timeout" */
  constructor(readonly kind: "lost" | "timeout", message: string) {
    super(message);
  }
}

/** `host[addr]` as Postfix prints a peer. */
export function peerLabel(d: Destination): string {
  return `${d.host}[${d.addr}]`;
}

/** `host[addr]:port`, the relay= field; `host[path]` for a UNIX-domain server (port 0). */
export function relayLabel(d: Destination): string {
  return d.port === 0 ? `${d.host}[${d.addr}]` : `${d.host}[${d.addr}]:${d.port}`;
}

function connectReason(e: unknown): string {
  if (e instanceof Deno.errors.ConnectionRefused) return "Connection refused";
  if (e instanceof Deno.errors.TimedOut) return "Connection timed out";
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    return "not permitted by this daemon's sandbox";
  }
  if (e instanceof Deno.errors.ConnectionReset) return "Connection reset by peer";
  const msg = (e as Error)?.message ?? String(e);
  return msg.replace(/\s*\(os error \d+\)$/, "");
}

const encoder = new TextEncoder();

/** An open SMTP connection. */
export class SmtpSession {
  /** EHLO keywords (uppercase) after the handshake; empty after HELO. */
  features: Map<string, string> = new Map();
  /** When the connection was opened (ms), for smtp_connection_reuse_time_limit. */
  readonly createdAt = Date.now();
  /** Transactions completed on this connection. */
  transactions = 0;
  /** Deliveries this connection was used for (smtp_connection_reuse_count_limit). */
  uses = 0;
  /** The TLS session after STARTTLS; null in plaintext. */
  tls: ClientTlsInfo | null = null;
  /** Authenticated with SASL (AUTH succeeded). */
  authenticated = false;
  #parser = new ReplyParser();
  #stream: ByteStream;
  #queued: Reply[] = [];
  #closed = false;
  #broken = false;

  private constructor(
    readonly dest: Destination,
    readonly conn: Deno.TcpConn | Deno.UnixConn,
  ) {
    this.#stream = conn;
  }

  /**
   * Opens a connection within `timeoutSec`. Throws {@link ConnectError}
   * "connect to HOST[IP]:PORT: Connection refused" and the like.
   */
  static async open(
    dest: Destination,
    timeoutSec: number,
    connect: ConnectFn,
  ): Promise<SmtpSession> {
    const ac = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        ac.abort();
        reject(new Deno.errors.TimedOut("timed out"));
      }, timeoutSec * 1000);
    });
    const attempt = connect({ hostname: dest.addr, port: dest.port, signal: ac.signal });
    try {
      const conn = await Promise.race([attempt, timeout]);
      try {
        conn.setNoDelay(true);
      } catch {
        // not a TCP socket (tests): no Nagle to disable
      }
      return new SmtpSession(dest, conn);
    } catch (e) {
      // A connection that completes after the deadline is closed, not leaked.
      attempt.then((c) => c.close(), () => {});
      throw new ConnectError(`connect to ${relayLabel(dest)}: ${connectReason(e)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Opens a UNIX-domain connection to `path` (the lmtp client's `unix:`
   * next hops; `dest.addr` is the path as configured, `dest.port` 0).
   * Throws {@link ConnectError} "connect to HOST[PATH]: No such file or
   * directory" and the like.
   */
  static async openUnix(
    dest: Destination,
    path: string,
    timeoutSec: number,
    connect: ConnectUnixFn,
  ): Promise<SmtpSession> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    // 0: no limit but the operating system's, as Postfix's lmtp_connect_timeout = 0s.
    const timeout = new Promise<never>((_, reject) => {
      if (timeoutSec <= 0) return;
      timer = setTimeout(() => reject(new Deno.errors.TimedOut("timed out")), timeoutSec * 1000);
    });
    // An async wrapper: a sandbox refusal thrown at the call becomes a rejection here.
    const attempt = (async () => await connect({ transport: "unix", path }))();
    try {
      return new SmtpSession(dest, await Promise.race([attempt, timeout]));
    } catch (e) {
      attempt.then((c) => c.close(), () => {});
      throw new ConnectError(`connect to ${relayLabel(dest)}: ${connectReason(e)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Continues over `stream` (the TLS session over {@link conn}): replies
   * and bytes read before it are dropped, as Postfix purges its buffers.
   */
  upgrade(stream: ByteStream, info: ClientTlsInfo): void {
    this.#parser = new ReplyParser();
    this.#queued = [];
    this.#stream = stream;
    this.tls = info;
  }

  /** `host[addr]` */
  get label(): string {
    return peerLabel(this.dest);
  }

  /** True once a timeout, EOF or I/O error has ended the connection. */
  get broken(): boolean {
    return this.#broken || this.#closed;
  }

  /**
   * True when the server sent more than was asked for (a reply, or part of
   * one, that no command is waiting for): such a connection must not carry
   * another transaction, whose commands would be answered by those bytes.
   */
  get unsolicited(): boolean {
    return this.#queued.length > 0 || this.#parser.pending;
  }

  /** Reads the next complete reply within `timeoutSec`; `stage` names the step for errors. */
  async readReply(timeoutSec: number, stage: string): Promise<Reply> {
    while (this.#queued.length === 0) {
      const buf = new Uint8Array(8192);
      const n = await this.#deadline(this.#stream.read(buf), timeoutSec, stage);
      if (n === null) throw this.#lost(stage);
      try {
        this.#queued.push(...this.#parser.push(buf.subarray(0, n)));
      } catch (e) {
        if (e instanceof SmtpProtocolError) {
          this.#broken = true;
          this.close();
          throw new SessionError("lost", `${e.message} from ${this.label} while ${stage}`);
        }
        throw e;
      }
    }
    return this.#queued.shift()!;
  }

  /** Writes all of `data` within `timeoutSec` (per write call). */
  async write(data: Uint8Array | string, timeoutSec: number, stage: string): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    let off = 0;
    while (off < bytes.length) {
      off += await this.#deadline(this.#stream.write(bytes.subarray(off)), timeoutSec, stage);
    }
  }

  /** Sends QUIT, waits briefly for the reply, and closes. Never throws. */
  async quit(timeoutSec: number): Promise<void> {
    if (!this.broken) {
      try {
        await this.write("QUIT\r\n", timeoutSec, "sending QUIT");
        await this.readReply(timeoutSec, "sending QUIT");
      } catch {
        // the peer may close first; nothing to report
      }
    }
    this.close();
  }

  /** Closes the connection (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#stream.close();
      if (this.#stream !== this.conn) this.conn.close();
    } catch {
      // already closed
    }
  }

  #lost(stage: string): SessionError {
    this.#broken = true;
    this.close();
    return new SessionError("lost", `lost connection with ${this.label} while ${stage}`);
  }

  async #deadline<T>(op: Promise<T>, timeoutSec: number, stage: string): Promise<T> {
    if (this.#closed) throw this.#lost(stage);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(
          new SessionError("timeout", `conversation with ${this.label} timed out while ${stage}`),
        );
      }, timeoutSec * 1000);
    });
    try {
      return await Promise.race([op, timeout]);
    } catch (e) {
      this.#broken = true;
      this.close();
      op.catch(() => {});
      if (timedOut || e instanceof SessionError) throw e;
      throw this.#lost(stage);
    } finally {
      clearTimeout(timer);
    }
  }
}
