/**
 * Idle IPC connections kept for the next request, as Postfix keeps its
 * clients' connections for ipc_idle seconds: qmgr's connections to the
 * delivery agents (one list per transport) and smtpd's to cleanup (one
 * list). A connection idle for the limit is closed: by a timer that
 * sweeps the pool (so that a daemon started on demand sees its clients go
 * and can exit when idle, lib/service/wake.ts), or when it is next looked
 * at, whichever comes first; the newest is reused first.
 * Whether a reused connection still works is the caller's to find out (a
 * peer that restarted closes it while idle).
 *
 * @module
 */
import type { IpcConn } from "./mod.ts";

/** Postfix's ipc_idle default, in ms. */
export const IPC_IDLE_MS = 5000;

/** Idle connections by key. */
export class IdleConns<K = string> {
  #idle = new Map<K, { conn: IpcConn; since: number }[]>();
  #timer: ReturnType<typeof setTimeout> | null = null;

  constructor(readonly idleMs = IPC_IDLE_MS, readonly now: () => number = Date.now) {}

  /** The newest connection idle for less than the limit, or undefined; older ones are closed. */
  take(key: K): IpcConn | undefined {
    const list = this.#idle.get(key);
    let entry;
    while ((entry = list?.pop())) {
      if (this.now() - entry.since < this.idleMs) return entry.conn;
      entry.conn.close();
    }
    return undefined;
  }

  /** Keeps a connection that has just finished a request. */
  put(key: K, conn: IpcConn): void {
    let list = this.#idle.get(key);
    if (!list) this.#idle.set(key, list = []);
    list.push({ conn, since: this.now() });
    this.#arm();
  }

  /** Closes every idle connection. */
  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    for (const list of this.#idle.values()) for (const e of list) e.conn.close();
    this.#idle.clear();
  }

  /** One sweep timer while anything is idle; it never keeps a process alive. */
  #arm(): void {
    if (this.#timer !== null) return;
    const timer = setTimeout(() => {
      this.#timer = null;
      this.#sweep();
    }, this.idleMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #sweep(): void {
    const now = this.now();
    for (const [key, list] of this.#idle) {
      const young = list.filter((e) => {
        if (now - e.since < this.idleMs) return true;
        e.conn.close();
        return false;
      });
      if (young.length) this.#idle.set(key, young);
      else this.#idle.delete(key);
    }
    if (this.#idle.size) this.#arm();
  }
}
