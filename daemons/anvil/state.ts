/**
 * anvil's state machine, Postfix's anvil(8) semantics without its I/O:
 * per ident (`service:client address`), the number of simultaneous
 * connections and, over anvil_rate_time_unit, the rates of connections,
 * messages, recipients, new TLS sessions and AUTH commands.
 *
 * - A rate counts events since the ident's rate window started; an event
 *   more than one time unit after that start opens a new window (all rates
 *   reset, then the event counts), as Postfix's ANVIL_REMOTE_INCR_RATE.
 * - An ident whose connection count drops to 0 is forgotten one time unit
 *   later, unless it connects again in between.
 * - Each client of anvil (an smtpd session's IPC connection) is an
 *   "owner": when it goes away without disconnecting (a crashed smtpd),
 *   its connections are dropped, as Postfix's ANVIL_LOCAL_DROP_ALL.
 * - The peak count and rates since the last report, with their ident and
 *   time, are reported as Postfix's "statistics:" lines.
 *
 * Pure: the clock is passed in (seconds).
 *
 * @module
 */

/** One (service, client) combination. */
interface Remote {
  ident: string;
  count: number;
  rate: number;
  mail: number;
  rcpt: number;
  ntls: number;
  auth: number;
  /** Start of the rate window (seconds). */
  start: number;
  /** When an idle entry (count 0) is forgotten. */
  expires: number;
}

/** The rate events anvil counts besides connections. */
export type RateEvent = "message" | "recipient" | "newtls" | "auth";

const FIELD: Record<RateEvent, "mail" | "rcpt" | "ntls" | "auth"> = {
  message: "mail",
  recipient: "rcpt",
  newtls: "ntls",
  auth: "auth",
};

/** A peak and where it was seen. */
interface Peak {
  value: number;
  ident: string;
  when: number;
}

/** anvil's in-memory table. */
export class AnvilState {
  readonly #remotes = new Map<string, Remote>();
  /** Each owner's connections, by ident (an owner may hold several). */
  readonly #owners = new Map<unknown, Map<string, number>>();
  readonly #peaks = {
    connRate: null as Peak | null,
    connCount: null as Peak | null,
    mail: null as Peak | null,
    rcpt: null as Peak | null,
    ntls: null as Peak | null,
    auth: null as Peak | null,
  };
  #maxCache: Peak | null = null;

  /** @param timeUnit anvil_rate_time_unit in seconds. */
  constructor(readonly timeUnit: number) {}

  /** How many idents are known (the "cache size"). */
  get size(): number {
    return this.#remotes.size;
  }

  /** A new connection: the count and connection rate after it. */
  connect(owner: unknown, ident: string, now: number): { count: number; rate: number } {
    this.expire(now);
    let r = this.#remotes.get(ident);
    if (!r) {
      r = { ident, count: 1, rate: 1, mail: 0, rcpt: 0, ntls: 0, auth: 0, start: now, expires: 0 };
      this.#remotes.set(ident, r);
    } else {
      this.#incr(r, "rate", now);
      r.count++;
    }
    const mine = this.#owners.get(owner) ?? new Map<string, number>();
    mine.set(ident, (mine.get(ident) ?? 0) + 1);
    this.#owners.set(owner, mine);
    this.#peak("connRate", r.rate, ident, now);
    this.#peak("connCount", r.count, ident, now);
    this.#cachePeak(now);
    return { count: r.count, rate: r.rate };
  }

  /** A connection ended (only one the owner registered counts). */
  disconnect(owner: unknown, ident: string, now: number): void {
    const mine = this.#owners.get(owner);
    const n = mine?.get(ident) ?? 0;
    if (n === 0) return;
    if (n === 1) mine!.delete(ident);
    else mine!.set(ident, n - 1);
    if (mine!.size === 0) this.#owners.delete(owner);
    this.#drop(ident, now);
  }

  /** The owner went away: its connections end. */
  dropOwner(owner: unknown, now: number): void {
    const mine = this.#owners.get(owner);
    if (!mine) return;
    this.#owners.delete(owner);
    for (const [ident, n] of mine) for (let i = 0; i < n; i++) this.#drop(ident, now);
  }

  /** A message, recipient, new TLS session or AUTH event: its rate after it. */
  event(what: RateEvent, ident: string, now: number): number {
    this.expire(now);
    const field = FIELD[what];
    let r = this.#remotes.get(ident);
    if (!r) {
      // Not connected (a client that was an exception at connect): kept for one time unit.
      r = {
        ident,
        count: 0,
        rate: 0,
        mail: 0,
        rcpt: 0,
        ntls: 0,
        auth: 0,
        start: now,
        expires: now + this.timeUnit,
      };
      this.#remotes.set(ident, r);
      r[field] = 1;
    } else this.#incr(r, field, now);
    const peak = { mail: "mail", rcpt: "rcpt", ntls: "ntls", auth: "auth" } as const;
    this.#peak(peak[field], r[field], ident, now);
    this.#cachePeak(now);
    return r[field];
  }

  /** The new TLS session rate without counting an event (Postfix's newtls_report). */
  newtlsReport(ident: string, now: number): number {
    this.expire(now);
    const r = this.#remotes.get(ident);
    if (!r || r.start + this.timeUnit < now) return 0;
    return r.ntls;
  }

  /** Everything known about an ident (Postfix's lookup); stale rates read 0. */
  lookup(ident: string, now: number) {
    this.expire(now);
    const r = this.#remotes.get(ident);
    if (!r) return { count: 0, rate: 0, mail: 0, rcpt: 0, ntls: 0, auth: 0 };
    const stale = r.start + this.timeUnit < now;
    const v = (n: number) => (stale ? 0 : n);
    return {
      count: r.count,
      rate: v(r.rate),
      mail: v(r.mail),
      rcpt: v(r.rcpt),
      ntls: v(r.ntls),
      auth: v(r.auth),
    };
  }

  /** Forgets idle idents whose time has come. */
  expire(now: number): void {
    for (const [ident, r] of this.#remotes) {
      if (r.count === 0 && r.expires <= now) this.#remotes.delete(ident);
    }
  }

  /**
   * Postfix's "statistics:" lines for the peaks since the last report
   * (which they reset); `when` formats a time as ctime()'s "Mmm dd hh:mm:ss".
   */
  report(when: (seconds: number) => string): string[] {
    const out: string[] = [];
    const rate = (p: Peak | null, name: string) => {
      if (p && p.value > 0) {
        out.push(
          `statistics: max ${name} rate ${p.value}/${this.timeUnit}s for (${p.ident}) at ${
            when(p.when)
          }`,
        );
      }
    };
    const k = this.#peaks;
    rate(k.connRate, "connection");
    if (k.connCount && k.connCount.value > 0) {
      out.push(
        `statistics: max connection count ${k.connCount.value} for (${k.connCount.ident}) at ${
          when(k.connCount.when)
        }`,
      );
    }
    rate(k.mail, "message");
    rate(k.rcpt, "recipient");
    rate(k.ntls, "newtls");
    rate(k.auth, "auth");
    if (this.#maxCache && this.#maxCache.value > 0) {
      out.push(
        `statistics: max cache size ${this.#maxCache.value} at ${when(this.#maxCache.when)}`,
      );
    }
    for (const key of Object.keys(k) as (keyof typeof k)[]) k[key] = null;
    this.#maxCache = null;
    return out;
  }

  #incr(r: Remote, field: "rate" | "mail" | "rcpt" | "ntls" | "auth", now: number): void {
    if (r.start + this.timeUnit < now) {
      r.rate =
        r.mail =
        r.rcpt =
        r.ntls =
        r.auth =
          0;
      r.start = now;
    }
    if (r[field] < Number.MAX_SAFE_INTEGER) r[field]++;
  }

  #drop(ident: string, now: number): void {
    const r = this.#remotes.get(ident);
    if (!r || r.count === 0) return;
    if (--r.count === 0) r.expires = now + this.timeUnit;
  }

  #peak(key: string, value: number, ident: string, now: number): void {
    const peaks = this.#peaks as Record<string, Peak | null>;
    const p = peaks[key];
    if (!p || value > p.value) peaks[key] = { value, ident, when: now };
  }

  #cachePeak(now: number): void {
    const size = this.#remotes.size;
    if (!this.#maxCache || size > this.#maxCache.value) {
      this.#maxCache = { value: size, ident: "", when: now };
    }
  }
}

/** ctime()'s month, day and time ("Dec  2 00:30:00"), local time. */
export function ctimeShort(seconds: number): string {
  const d = new Date(seconds * 1000);
  const months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(" ");
  const p = (n: number) => String(n).padStart(2, "0");
  return `${months[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ${p(d.getHours())}:${
    p(d.getMinutes())
  }:${p(d.getSeconds())}`;
}
