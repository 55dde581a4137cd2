/**
 * Coarse deadlines for many sessions on one timer. Each smtpd session
 * bounds every read and write by smtpd_timeout; a timer per pending read
 * costs a few KiB in Deno, which for 10,000 idle connections is tens of
 * MB. Here a deadline is a small entry in a set that one interval sweeps
 * every {@link TICK_MS}: a deadline fires up to that much late, which is
 * nothing against smtpd_timeout's seconds. The interval runs only while
 * some deadline is pending, so it never keeps an idle process (or a
 * test) alive.
 */

/** Sweep interval; the most a deadline fires late. */
export const TICK_MS = 250;

interface Entry {
  at: number;
  fire: () => void;
}

/** A set of deadlines swept by one timer. */
export class Deadlines {
  #entries = new Set<Entry>();
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(readonly tickMs = TICK_MS, readonly now: () => number = Date.now) {}

  /** Calls `fire` once `ms` have passed, unless the returned function is called first. */
  add(ms: number, fire: () => void): () => void {
    const e: Entry = { at: this.now() + ms, fire };
    this.#entries.add(e);
    this.#timer ??= setInterval(() => this.sweep(), this.tickMs);
    return () => {
      this.#entries.delete(e);
      this.#idle();
    };
  }

  /** Fires what is due (the timer calls this). */
  sweep(): void {
    const now = this.now();
    for (const e of this.#entries) {
      if (e.at > now) continue;
      this.#entries.delete(e);
      e.fire();
    }
    this.#idle();
  }

  /** Deadlines pending. */
  get size(): number {
    return this.#entries.size;
  }

  #idle(): void {
    if (this.#entries.size || this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
  }
}

/** The deadlines of this process's sessions. */
export const sessionDeadlines = new Deadlines();
