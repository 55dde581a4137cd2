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
import type { Rejection } from "../outcome/mod.ts";
import { type IpcConn, ipcConnect, IpcError } from "../ipc/mod.ts";
import { IdleConns } from "../ipc/idle.ts";
import type { Envelope, Recipient } from "../queue/mod.ts";

/** Envelope and processing flags sent to cleanup. */
export interface CleanupEnvelope {
  sender: string;
  recipients: Recipient[];
  /** Recorded in the queue file's envelope (see lib/queue Envelope). */
  attrs?: Envelope["attrs"];
  /** Take recipients from To/Cc/Bcc (sendmail -t). */
  extractRecipients?: boolean;
  /** DSN NOTIFY of the recipients taken from the headers (sendmail -t -N). */
  extractNotify?: string[];
  /** Arrival time to record, ms (pickup passes the maildrop file's time). */
  arrival?: number;
  /** What smtpd's access tables decided for the whole message (HOLD, DISCARD, ...). */
  actions?: MessageActions;
  /**
   * smtpd: its client may have its mail DKIM-signed (SASL-authenticated, or
   * in postwarden_dkim_internal_hosts). Mail not from smtpd needs no flag.
   */
  dkimSign?: boolean;
}

/**
 * Access-table actions that apply to the whole message, as Postfix's smtpd
 * hands them to cleanup (its saved_flags, saved_redirect, saved_filter and
 * saved_bcc). Cleanup merges them with header_checks/body_checks results:
 * HOLD and DISCARD add up, BCC recipients add up, and for REDIRECT and
 * FILTER the later decision wins (smtpd's before DATA, then the content
 * checks, then smtpd_end_of_data_restrictions).
 */
/** The ARC chain of a message as smtpd validated it, for cleanup's seal (lib/arc sealMessage). */
export interface ArcSealInput {
  cv: "none" | "pass" | "fail";
  /** The newest instance found (0: none). */
  instance: number;
  /** smtpd's Authentication-Results payload (after the authserv-id). */
  authResults: string;
}

export interface MessageActions {
  hold?: boolean;
  /**
   * What cleanup's ARC seal records (late actions only; cleanup seals when
   * postwarden_arc_seal_domain is set): the chain's validation as smtpd
   * found it and smtpd's Authentication-Results payload.
   */
  arcSeal?: ArcSealInput;
  discard?: boolean;
  /** REDIRECT user@domain: the message goes to this address only. */
  redirect?: string;
  /** FILTER transport:destination. */
  filter?: string;
  /** BCC user@domain, each a recipient with NOTIFY=NEVER. */
  bcc?: string[];
  /**
   * More actions may follow the content (smtpd_end_of_data_restrictions,
   * milters): the client sends one {@link CleanupSession.lateActions}
   * message after the last content chunk, and cleanup holds the content
   * until it has it.
   */
  more?: boolean;
  /**
   * Edits milters asked for at the end of the message, in the order they
   * were made (late actions only); cleanup applies them after its own
   * header processing, as Postfix's cleanup applies milter edits to the
   * queue file it has written.
   */
  edits?: ContentEdit[];
  /**
   * A milter replaced the body (late actions only): the new body (CRLF
   * lines, no header) follows the actions message as content frames.
   */
  replaceBody?: boolean;
  /** A milter quarantined the message: it goes to hold/, with this reason logged. */
  quarantine?: string;
}

/**
 * One milter edit (Sendmail milter SMFIR_* requests). Header indexes are
 * the milter's: insertHeader's counts every header field from 0 (before the
 * first), changeHeader's counts the fields of that name from 1; an empty
 * value deletes the field. Recipients and the sender are addresses as the
 * milter gave them (angle brackets optional); `args` are ESMTP parameters.
 */
export type ContentEdit =
  | { op: "addHeader"; name: string; value: string }
  | { op: "insertHeader"; index: number; name: string; value: string }
  | { op: "changeHeader"; index: number; name: string; value: string }
  | { op: "addRcpt"; address: string; args?: string }
  | { op: "deleteRcpt"; address: string }
  | { op: "changeFrom"; address: string; args?: string }
  /**
   * smtpd's message authentication (not a milter's): every
   * Authentication-Results field whose authserv-id is this one goes
   * (RFC 8601 section 5: only this host may claim it).
   */
  | { op: "deleteAuthResults"; authservId: string };

/** Cleanup's final answer. */
export type CleanupResult =
  | { status: "ok"; queueId: string }
  | ({ status: "error" } & Rejection);

/**
 * What smtpd's session writes one message to: a {@link CleanupSession},
 * or for sendmail -bs the maildrop (commands/sendmail_bs.ts).
 */
export interface CleanupSink {
  readonly queueId: string;
  envelope(env: CleanupEnvelope): void;
  /** The late actions; with `body`, the milter's replacement body after them. */
  lateActions(actions: MessageActions, body?: Uint8Array): void;
  write(chunk: Uint8Array): Promise<void>;
  finish(): Promise<CleanupResult>;
  abort(): void;
}

/** One message being submitted to cleanup. */
export class CleanupSession implements CleanupSink {
  #pending = 0;

  private constructor(
    readonly conn: IpcConn,
    readonly queueId: string,
    readonly release?: (conn: IpcConn) => void,
  ) {}

  /**
   * Connects and obtains the queue id. A cleanup that is (re)starting gets
   * `retryMs` to come up; after that this throws IpcError.
   */
  static async open(
    socketPath: string,
    opts: { timeoutMs?: number; retryMs?: number } = {},
  ): Promise<CleanupSession> {
    const conn = await ipcConnect(socketPath, {
      timeoutMs: opts.timeoutMs ?? 300_000,
      retryMs: opts.retryMs ?? 5000,
    });
    try {
      return await CleanupSession.#begin(conn);
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  static async #begin(conn: IpcConn, release?: (conn: IpcConn) => void): Promise<CleanupSession> {
    await conn.send({ op: "open" });
    const reply = await conn.recvMsg<{ queueId?: string }>();
    if (typeof reply.queueId !== "string") throw new IpcError("cleanup: bad open reply");
    return new CleanupSession(conn, reply.queueId, release);
  }

  /**
   * Starts a message on an idle connection from a {@link CleanupClient}.
   * Throws IpcError when the connection turns out dead (cleanup restarted);
   * nothing was submitted then, so the caller may use a fresh connection.
   */
  static resume(conn: IpcConn, release: (conn: IpcConn) => void): Promise<CleanupSession> {
    return CleanupSession.#begin(conn, release);
  }

  /** The same session, returning its connection to a pool when done. */
  withRelease(release: (conn: IpcConn) => void): CleanupSession {
    return new CleanupSession(this.conn, this.queueId, release);
  }

  /** Sends the envelope. */
  envelope(env: CleanupEnvelope): void {
    this.conn.queueMsg({ op: "envelope", ...env });
  }

  /**
   * Sends the actions decided after the content (end-of-data), when the
   * envelope said `actions.more`; exactly once, before {@link finish}.
   */
  lateActions(actions: MessageActions, body?: Uint8Array): void {
    const { replaceBody: _, ...rest } = actions;
    this.conn.queueMsg({
      op: "actions",
      ...rest,
      more: false,
      ...(body ? { replaceBody: true } : {}),
    });
    if (!body) return;
    for (let off = 0; off < body.length; off += 64 * 1024) {
      this.conn.queueData(body.subarray(off, Math.min(body.length, off + 64 * 1024)));
    }
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
    let r: CleanupResult;
    try {
      r = await this.conn.recvMsg<CleanupResult>();
      if (r.status !== "ok" && r.status !== "error") throw new IpcError("cleanup: bad reply");
    } catch (e) {
      this.conn.close();
      throw e;
    }
    // cleanup keeps the connection for the next message after a verdict.
    if (this.release) this.release(this.conn);
    else this.conn.close();
    return r;
  }

  /** Abandons the message; cleanup removes what it wrote. */
  abort(): void {
    this.conn.close();
  }
}

/**
 * Submits one whole message through cleanup at `socket` and returns its
 * queue id once cleanup reports it durable. `write` sends the envelope and
 * content on the session (it may use the queue id, e.g. in a header); a
 * failure there abandons the message.
 *
 * @throws Error when cleanup cannot be reached or does not queue the message.
 */
export async function submitMessage(
  socket: string,
  write: (session: CleanupSession) => Promise<void>,
  opts: { timeoutMs?: number } = {},
): Promise<string> {
  const session = await CleanupSession.open(socket, { timeoutMs: opts.timeoutMs });
  try {
    await write(session);
  } catch (e) {
    session.abort();
    throw e;
  }
  const result = await session.finish();
  if (result.status !== "ok") {
    throw new Error(`cleanup: ${result.code} ${result.dsn} ${result.text}`);
  }
  return result.queueId;
}

/**
 * A client that keeps idle connections to cleanup for the next message
 * (smtpd submits one message after another), saving a connect and an
 * accept per message. Idle connections older than `ipc_idle` (5 s) are
 * closed rather than reused (lib/ipc/idle.ts, as qmgr's to its agents).
 */
export class CleanupClient {
  readonly #idle: IdleConns<"cleanup">;

  constructor(
    readonly socketPath: string,
    readonly opts: { timeoutMs?: number; idleMs?: number } = {},
  ) {
    this.#idle = new IdleConns(opts.idleMs);
  }

  /** Starts a message, on an idle connection when there is one. */
  async open(): Promise<CleanupSession> {
    let conn;
    while ((conn = this.#idle.take("cleanup"))) {
      try {
        return await CleanupSession.resume(conn, (c) => this.#release(c));
      } catch {
        conn.close(); // went away while idle; try the next or a fresh one
      }
    }
    const fresh = await CleanupSession.open(this.socketPath, { timeoutMs: this.opts.timeoutMs });
    return fresh.withRelease((c) => this.#release(c));
  }

  #release(conn: IpcConn): void {
    this.#idle.put("cleanup", conn);
  }

  /** Closes every idle connection. */
  close(): void {
    this.#idle.close();
  }
}
