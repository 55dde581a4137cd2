/**
 * One anvil connection shared by all the sessions of an smtpd process, as
 * Postfix's smtpd keeps one anvil client per process (anvil_clnt.c)
 * rather than one per SMTP session. A connection per session cost a UNIX
 * socket connect and an accept in anvil for every client outside
 * smtpd_client_event_limit_exceptions, the usual case for an MX: with it,
 * relaying 10,000 messages took about 200 CPU-ms more in smtpd and 290 in
 * anvil per 1,000 messages (scripts/bench/cost.ts, issue 10 perf).
 *
 * Requests are pipelined: each is written at once, and anvil, which
 * answers one connection's requests in order, replies in the same order,
 * so the replies are matched first in, first out. Each request has its own
 * deadline counted from when it was asked, so a slow anvil never makes a
 * session wait behind others' requests longer than that. When anvil is
 * unreachable, closes the connection, sends something unexpected or misses
 * a deadline, every request in flight fails (the sessions go unlimited
 * with a warning, anvil.ts) and the next request connects again.
 *
 * anvil counts a connection under the IPC connection that registered it
 * (daemons/anvil/state.ts, the "owner"): when this smtpd dies, anvil drops
 * all of its sessions' counts, as it dropped one session's before. After a
 * reconnect, the disconnects of sessions registered on the old connection
 * match nothing (anvil dropped those counts when it closed).
 *
 * Not here: which events are asked and what the answers mean (anvil.ts).
 */
import type { IpcConn } from "../../lib/ipc/mod.ts";

/** A request waiting for its reply. */
interface Pending {
  resolve: (reply: Record<string, unknown>) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** How long the reader waits for a frame while nothing is asked (the deadlines are per request). */
const IDLE_READ_MS = 24 * 3600 * 1000;

/** The process's connection to anvil, opened on first use. */
export class AnvilChannel {
  #conn: IpcConn | null = null;
  #opening: Promise<IpcConn> | null = null;
  #pending: Pending[] = [];

  /**
   * @param open connects to anvil
   * @param timeoutMs the longest wait for one reply, from when it is asked
   */
  constructor(
    readonly open: () => Promise<IpcConn>,
    readonly timeoutMs: number,
  ) {}

  /** Requests in flight. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Sends one request and resolves with anvil's reply; rejects when anvil cannot answer. */
  request(msg: Record<string, unknown>): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      let done = false;
      let on: IpcConn | null = null;
      const p: Pending = {
        resolve: (reply) => {
          if (done) return;
          done = true;
          clearTimeout(p.timer);
          resolve(reply);
        },
        reject: (e) => {
          if (done) return;
          done = true;
          clearTimeout(p.timer);
          reject(e);
        },
        timer: setTimeout(() => {
          const e = new Error(`read timeout after ${this.timeoutMs}ms`);
          // Still connecting: only this request gives up. Waiting for its reply: anvil
          // hangs, so the connection goes and everything on it fails.
          if (on && on === this.#conn) this.#fail(e, on);
          else p.reject(e);
        }, this.timeoutMs),
      };
      this.#connection().then((conn) => {
        if (done) return; // gave up while connecting
        if (conn !== this.#conn) {
          p.reject(new Error("connection closed by anvil")); // lost before this request went out
          return;
        }
        on = conn;
        this.#pending.push(p);
        conn.send(msg).catch((e) => this.#fail(e as Error, conn));
      }, (e) => p.reject(e as Error));
    });
  }

  /** Closes the connection; requests in flight fail. */
  close(): void {
    this.#fail(new Error("anvil client closed"));
  }

  #connection(): Promise<IpcConn> {
    if (this.#conn) return Promise.resolve(this.#conn);
    this.#opening ??= this.open().then((conn) => {
      this.#opening = null;
      this.#conn = conn;
      this.#read(conn);
      return conn;
    }, (e) => {
      this.#opening = null;
      throw e;
    });
    return this.#opening;
  }

  /** Matches replies to requests in order until the connection ends. */
  async #read(conn: IpcConn): Promise<void> {
    try {
      for (;;) {
        const f = await conn.recv(IDLE_READ_MS);
        if (f === null) throw new Error("connection closed by anvil");
        const p = this.#pending.shift();
        if (!p || f.kind !== "msg") throw new Error("unexpected reply from anvil");
        p.resolve(f.msg);
      }
    } catch (e) {
      this.#fail(e as Error, conn);
    }
  }

  /** Drops the connection (if it is still `which`) and fails what waits on it. */
  #fail(e: Error, which: IpcConn | null = this.#conn): void {
    if (which !== this.#conn) return; // an older connection, already replaced
    this.#conn?.close();
    this.#conn = null;
    const pending = this.#pending;
    this.#pending = [];
    for (const p of pending) p.reject(e);
  }
}
