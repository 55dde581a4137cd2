/**
 * The SMTP connection cache, like Postfix's scache but inside the agent
 * process: after a completed transaction a connection is parked under its
 * next hop and handed to the next request for that next hop. A parked
 * connection is closed with QUIT after `idleMs` without use
 * (smtp_connection_cache_time_limit), and is not parked again once it is
 * older than `reuseMs` (smtp_connection_reuse_time_limit). Requests running
 * at the same time each take their own connection; the cache only holds
 * idle ones.
 */
import type { SmtpSession } from "./session.ts";

interface Parked {
  session: SmtpSession;
  timer: ReturnType<typeof setTimeout>;
}

/** Time limits applied when a connection is parked. */
export interface ParkLimits {
  /** Close after this long unused (ms). */
  idleMs: number;
  /** Do not park a connection older than this (ms). */
  reuseMs: number;
  /** Time limit for the QUIT exchange (s). */
  quitTimeoutSec: number;
}

/** Idle connections per next hop. */
export class ConnectionCache {
  #idle = new Map<string, Parked[]>();
  #closing = new Set<Promise<void>>();
  #closed = false;

  /** Takes an idle connection for `key`, most recently parked first, or null. */
  take(key: string): SmtpSession | null {
    const list = this.#idle.get(key);
    if (!list) return null;
    while (list.length > 0) {
      const p = list.pop()!;
      clearTimeout(p.timer);
      if (!p.session.broken) {
        if (list.length === 0) this.#idle.delete(key);
        return p.session;
      }
    }
    this.#idle.delete(key);
    return null;
  }

  /**
   * Whether {@link put} would park `session` under `limits` rather than QUIT
   * it: it is not broken, not too old, and the cache is open.
   */
  keeps(session: SmtpSession, limits: ParkLimits): boolean {
    return !this.#closed && !session.broken && limits.idleMs > 0 &&
      Date.now() - session.createdAt < limits.reuseMs;
  }

  /** Parks `session` under `key`, or QUITs it if it is broken, too old, or the cache is closed. */
  put(key: string, session: SmtpSession, limits: ParkLimits): void {
    if (!this.keeps(session, limits)) {
      this.#quit(session, limits.quitTimeoutSec);
      return;
    }
    const parked: Parked = {
      session,
      timer: setTimeout(() => {
        const list = this.#idle.get(key);
        const i = list?.indexOf(parked) ?? -1;
        if (list && i >= 0) {
          list.splice(i, 1);
          if (list.length === 0) this.#idle.delete(key);
        }
        this.#quit(session, limits.quitTimeoutSec);
      }, limits.idleMs),
    };
    let list = this.#idle.get(key);
    if (!list) this.#idle.set(key, list = []);
    list.push(parked);
  }

  /** Number of idle connections (all next hops). */
  get size(): number {
    let n = 0;
    for (const l of this.#idle.values()) n += l.length;
    return n;
  }

  /** QUITs every idle connection and waits for all QUITs to finish; later puts QUIT at once. */
  async close(quitTimeoutSec: number): Promise<void> {
    this.#closed = true;
    for (const list of this.#idle.values()) {
      for (const p of list) {
        clearTimeout(p.timer);
        this.#quit(p.session, quitTimeoutSec);
      }
    }
    this.#idle.clear();
    await Promise.allSettled([...this.#closing]);
  }

  #quit(session: SmtpSession, timeoutSec: number): void {
    const p = session.quit(timeoutSec).finally(() => this.#closing.delete(p));
    this.#closing.add(p);
  }
}
