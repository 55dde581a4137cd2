/**
 * The client side of the cleanup service, shared by smtpd, pickup and
 * bounce. One session submits one message:
 *
 *   client: {op:"open"}                 cleanup: {queueId}
 *   client: {op:"envelope", ...}, content frames, end frame
 *   cleanup: {status:"ok", queueId} | {status:"error", code, dsn, text}
 *
 * "ok" means the queue file is durable (DESIGN.md invariant 1); only then
 * may the caller acknowledge the message to its own client.
 */
import { type IpcConn, ipcConnect, IpcError } from "../ipc/mod.ts";
import type { Envelope, Recipient } from "../queue/mod.ts";

/** Envelope and processing flags sent to cleanup. */
export interface CleanupEnvelope {
  sender: string;
  recipients: Recipient[];
  /** Recorded in the queue file's envelope (see lib/queue Envelope). */
  attrs?: Envelope["attrs"];
  /** Take recipients from To/Cc/Bcc (sendmail -t). */
  extractRecipients?: boolean;
  /** Arrival time to record, ms (pickup passes the maildrop file's time). */
  arrival?: number;
}

/** Cleanup's final answer. */
export type CleanupResult =
  | { status: "ok"; queueId: string }
  | { status: "error"; code: number; dsn: string; text: string };

/** One message being submitted to cleanup. */
export class CleanupSession {
  #pending = 0;

  private constructor(readonly conn: IpcConn, readonly queueId: string) {}

  /**
   * Connects and obtains the queue id. A cleanup that is (re)starting gets
   * `retryMs` to come up; after that this throws IpcError.
   */
  static async open(
    socketPath: string,
    opts: { timeoutMs?: number; retryMs?: number } = {},
  ): Promise<CleanupSession> {
    const deadline = Date.now() + (opts.retryMs ?? 5000);
    let conn: IpcConn;
    for (let delay = 50;; delay = Math.min(delay * 2, 500)) {
      try {
        conn = await ipcConnect(socketPath, { timeoutMs: opts.timeoutMs ?? 300_000 });
        break;
      } catch (e) {
        if (Date.now() + delay > deadline) throw e;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    try {
      const reply = await conn.send({ op: "open" }).then(() =>
        conn.recvMsg<{ queueId?: string }>()
      );
      if (typeof reply.queueId !== "string") throw new IpcError("cleanup: bad open reply");
      return new CleanupSession(conn, reply.queueId);
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  /** Sends the envelope. */
  envelope(env: CleanupEnvelope): void {
    this.conn.queueMsg({ op: "envelope", ...env });
  }

  /** Sends a content chunk (canonical CRLF form); flushes when enough is queued. */
  async write(chunk: Uint8Array): Promise<void> {
    this.conn.queueData(chunk);
    this.#pending += chunk.length;
    if (this.#pending >= 64 * 1024) {
      this.#pending = 0;
      await this.conn.flush();
    }
  }

  /** Ends the content and waits for cleanup's verdict. */
  async finish(): Promise<CleanupResult> {
    this.conn.queueEnd();
    await this.conn.flush();
    try {
      const r = await this.conn.recvMsg<CleanupResult>();
      if (r.status !== "ok" && r.status !== "error") throw new IpcError("cleanup: bad reply");
      return r;
    } finally {
      this.conn.close();
    }
  }

  /** Abandons the message; cleanup removes what it wrote. */
  abort(): void {
    this.conn.close();
  }
}
