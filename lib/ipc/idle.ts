/**
 * Idle IPC connections kept for the next request, as Postfix keeps its
 * clients' connections for ipc_idle seconds: qmgr's connections to the
 * delivery agents (one list per transport) and smtpd's to cleanup (one
 * list). A connection idle for longer than the limit is closed when it is
 * next looked at instead of being reused; the newest is reused first.
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
  }

  /** Closes every idle connection. */
  close(): void {
    for (const list of this.#idle.values()) for (const e of list) e.conn.close();
    this.#idle.clear();
  }
}
