/**
 * The queue manager's scheduler, pure: it holds per-transport and
 * per-destination queues of delivery requests ("entries"), decides which
 * may start now, and adapts each destination's concurrency to the
 * feedback of finished deliveries, with Postfix's semantics
 * (qmgr_queue.c, qmgr_feedback.c, SCHEDULER_README). It does no I/O and
 * reads time only from the clock it is given: the caller feeds it events
 * ({@link Scheduler.enqueue}, {@link Scheduler.done}, {@link Scheduler.flushDead})
 * and asks it what to do ({@link Scheduler.next}), and when to ask again
 * ({@link Scheduler.nextWakeup}).
 *
 * Destinations. A destination queue is named by transport and next hop;
 * when a transport's recipient limit is 1 (local's default) the queue is
 * per recipient, so the concurrency limit is per recipient, as Postfix's.
 * A message's recipients for one destination are cut into entries of at
 * most `<transport>_destination_recipient_limit` recipients.
 *
 * Concurrency (slow start and feedback). A new queue starts with a window
 * of initial_destination_concurrency (capped at the destination
 * concurrency limit) and runs at most `window` deliveries at once.
 * - A delivery that reached the destination (anything but a whole-request
 *   deferral) is positive feedback: while the window is below the limit
 *   and not far above what is in use (window < busy + initial), `success`
 *   grows by the positive feedback (a constant, or "N/concurrency" divided
 *   by the window) and each whole unit widens the window by one. It also
 *   ends a run of failures (the failed cohort count goes back to 0).
 * - A delivery deferred as a whole (the destination could not be reached,
 *   or answered 421) is negative feedback: the failed cohort count grows
 *   by 1/window; at default_destination_concurrency_failed_cohort_limit
 *   (1: as many consecutive failures as the concurrency) the destination
 *   is declared dead. Otherwise `failure` grows by the negative feedback
 *   and each whole unit narrows the window by one, never below 1.
 * - A dead destination gets no deliveries: its waiting entries, and any
 *   entry added while it is dead, come out of {@link Scheduler.next} as
 *   "suspended" with the reason that killed it (the caller defers them,
 *   "delivery temporarily suspended: ..."). It comes back to life with the
 *   initial window after minimal_backoff_time (Postfix's timer), on a flush
 *   ({@link Scheduler.flushDead}, postqueue -f/-i), or when a delivery
 *   still in progress succeeds.
 * - With a destination rate delay, one delivery at a time, each starting
 *   at least that long after the previous one finished; the same for a
 *   whole transport with a transport rate delay (Postfix 3.1's
 *   transport_rate_delay: at most one delivery per delay, any destination).
 * A queue with nothing waiting, nothing running and alive is forgotten,
 * as Postfix's (the next burst starts slowly again).
 *
 * Fairness. Each transport has a process limit (master.cf maxproc). When a
 * slot is free, destinations are served round-robin (the next ready
 * destination after the one served last), as Postfix's transport queue
 * list. Within a destination, entries are taken round-robin over messages
 * rather than first-come-first-served: a small message that arrives behind
 * a 10,000-recipient mailing to the same destination gets the next free
 * delivery slot instead of waiting for the whole mailing. This stands in for
 * nqmgr's job preemption (delivery_slot_cost, _discount, _loan), which
 * reaches the same goal with more bookkeeping; those knobs are not read.
 *
 * Not here: reading or writing queue files, talking to agents, logging.
 */

/** Concurrency feedback, as Postfix parses it: a constant or N/concurrency. */
export interface Feedback {
  /** The value (a constant), or the numerator over the window. */
  base: number;
  /** "N/concurrency": divide by the current window. */
  perWindow: boolean;
}

/**
 * Parses a feedback setting ("1", "0.5", "1/8", "1/concurrency"), or null
 * when malformed or outside 0..1 (Postfix then warns and uses 1).
 */
export function parseFeedback(value: string): Feedback | null {
  const m = /^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?:\/\s*(\S+)\s*)?$/.exec(value);
  if (!m) return null;
  const num = Number(m[1]);
  let fb: Feedback;
  if (m[2] === undefined) fb = { base: num, perWindow: false };
  else if (m[2] === "concurrency") fb = { base: num, perWindow: true };
  else {
    if (!/^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/.test(m[2])) return null;
    const den = Number(m[2]);
    if (!(den > 0)) return null;
    fb = { base: num / den, perWindow: false };
  }
  return fb.base >= 0 && fb.base <= 1 ? fb : null;
}

function feedbackValue(fb: Feedback, window: number): number {
  return fb.perWindow ? fb.base / Math.max(1, window) : fb.base;
}

/** The scheduling limits of one transport's destinations. */
export interface TransportLimits {
  /** <transport>_destination_concurrency_limit; 0: no limit. */
  concurrencyLimit: number;
  /** initial_destination_concurrency. */
  initialConcurrency: number;
  /** <transport>_destination_recipient_limit; 0: no limit. */
  recipientLimit: number;
  positiveFeedback: Feedback;
  negativeFeedback: Feedback;
  /** <transport>_destination_concurrency_failed_cohort_limit; 0: never dead. */
  failedCohortLimit: number;
  /** <transport>_destination_rate_delay, ms; 0: none. */
  rateDelayMs: number;
  /** Deliveries of this transport at once (master.cf maxproc). */
  processLimit: number;
  /** <transport>_transport_rate_delay, ms; 0: none (else one delivery at a time). */
  transportRateDelayMs: number;
}

/** What the scheduler needs from its owner. */
export interface SchedulerOptions {
  /** The clock, ms. */
  now: () => number;
  /** Limits of a transport (read once per new destination queue). */
  limits: (transport: string) => TransportLimits;
  /** How long a dead destination stays dead (minimal_backoff_time), ms. */
  deadTimeMs: number;
  /** Called with each feedback step, for destination_concurrency_feedback_debug. */
  debug?: (line: string) => void;
}

/** One delivery request: recipients of one message for one destination. */
export interface Entry<R> {
  /** The message (queue id). */
  message: string;
  transport: string;
  nexthop: string;
  /** The destination queue's name. */
  queue: string;
  recipients: R[];
}

/** Why a destination is dead, kept to defer what waits for it. */
export interface DeadReason {
  dsn: string;
  reason: string;
}

/** What to do with an entry now. */
export type Action<R> =
  | { kind: "deliver"; entry: Entry<R> }
  | { kind: "suspended"; entry: Entry<R>; why: DeadReason };

/** A destination queue's state, for tests and diagnostics. */
export interface QueueState {
  window: number;
  busy: number;
  waiting: number;
  dead: boolean;
}

interface DestQueue<R> {
  name: string;
  transport: string;
  limits: TransportLimits;
  window: number;
  success: number;
  failure: number;
  failCohorts: number;
  busy: number;
  /** Entries released for a retry ({@link Scheduler.release}), coming back. */
  held: number;
  /** Waiting entries per message, messages in round-robin order. */
  todo: Map<string, Entry<R>[]>;
  waiting: number;
  /** Dead (throttled) until this time, with the reason. */
  deadUntil: number;
  dead: DeadReason | null;
  /** Rate delay: no start before this time. */
  notBefore: number;
}

interface TransportState<R> {
  name: string;
  busy: number;
  processLimit: number;
  /** Transport rate delay (ms), and no start before `notBefore`. */
  rateDelayMs: number;
  notBefore: number;
  queues: Map<string, DestQueue<R>>;
  /**
   * The queues that may start a delivery now, in round-robin order: a
   * served queue goes to the end. Kept up to date on every change, so a
   * dispatch costs the same with 10 or 20,000 destinations.
   */
  ready: Map<string, DestQueue<R>>;
}

/** The scheduler: see the module comment. */
export class Scheduler<R extends { address: string }> {
  #transports = new Map<string, TransportState<R>>();
  /** Dead queues with waiting entries, to come out of next() as suspended. */
  #suspend = new Set<DestQueue<R>>();
  /** Queues waiting for a time: dead ones, and rate-delayed ones with work. */
  #timed = new Set<DestQueue<R>>();

  constructor(readonly opts: SchedulerOptions) {}

  /**
   * Adds a message's recipients for one transport and next hop, cut into
   * entries by the recipient limit (per recipient when the limit is 1).
   * Returns the entries; each comes back once from {@link next}.
   */
  enqueue(message: string, transport: string, nexthop: string, recipients: R[]): Entry<R>[] {
    const t = this.#transport(transport);
    const limits = this.opts.limits(transport);
    const out: Entry<R>[] = [];
    const add = (queueName: string, rcpts: R[]) => {
      const q = this.#queue(t, queueName, limits);
      const step = q.limits.recipientLimit > 0 ? q.limits.recipientLimit : rcpts.length;
      for (let i = 0; i < rcpts.length; i += step) {
        const entry = {
          message,
          transport,
          nexthop,
          queue: queueName,
          recipients: rcpts.slice(i, i + step),
        };
        let list = q.todo.get(message);
        if (!list) q.todo.set(message, list = []);
        list.push(entry);
        q.waiting++;
        out.push(entry);
      }
      this.#refresh(q);
    };
    if (limits.recipientLimit === 1) {
      // Per-recipient queues (Postfix: the recipient's local part @ the next hop).
      for (const r of recipients) {
        const at = r.address.lastIndexOf("@");
        const local = at < 0 ? r.address : r.address.slice(0, at);
        add(`${local.toLowerCase()}@${nexthop}`, [r]);
      }
    } else {
      add(nexthop, recipients);
    }
    return out;
  }

  /**
   * What may happen now: entries to deliver (each counted busy until
   * {@link done} or {@link release}), and entries of dead destinations to
   * defer without contacting them.
   */
  next(): Action<R>[] {
    const now = this.opts.now();
    const out: Action<R>[] = [];
    for (const q of [...this.#timed]) {
      if (q.dead && q.deadUntil <= now) this.#revive(q);
      this.#refresh(q);
    }
    for (const q of [...this.#suspend]) {
      for (const list of q.todo.values()) {
        for (const entry of list) out.push({ kind: "suspended", entry, why: q.dead! });
      }
      q.todo.clear();
      q.waiting = 0;
      this.#refresh(q);
    }
    for (const t of [...this.#transports.values()]) {
      const rated = t.rateDelayMs > 0;
      while (t.busy < (rated ? 1 : t.processLimit) && !(rated && t.notBefore > now)) {
        const q: DestQueue<R> | undefined = t.ready.values().next().value;
        if (!q) break;
        const [message, list] = q.todo.entries().next().value!;
        const entry = list.shift()!;
        q.todo.delete(message);
        // Round-robin over messages: one with more waiting goes to the end.
        if (list.length > 0) q.todo.set(message, list);
        q.waiting--;
        q.busy++;
        t.busy++;
        // Round-robin over destinations: the served one goes to the end.
        t.ready.delete(q.name);
        this.#refresh(q);
        out.push({ kind: "deliver", entry });
      }
    }
    return out;
  }

  /**
   * A delivery finished. `failed` (the whole request was deferred: the
   * destination could not be reached or refused the session) is negative
   * feedback; otherwise positive.
   */
  done(entry: Entry<R>, outcome: { failed: DeadReason | null }): void {
    const q = this.#release(entry);
    if (!q) return;
    if (q.limits.rateDelayMs > 0) q.notBefore = this.opts.now() + q.limits.rateDelayMs;
    if (outcome.failed) this.#throttle(q, outcome.failed);
    else this.#unthrottle(q);
    this.#refresh(q);
  }

  /**
   * A delivery that says nothing about its destination (our own agent
   * failed): the slot is free again, no feedback.
   */
  doneWithoutFeedback(entry: Entry<R>): void {
    const q = this.#release(entry);
    if (q) this.#refresh(q);
  }

  /**
   * A delivery that did not happen (the agent could not be reached): its
   * slot is free again and there is no feedback. The entry is out of the
   * scheduler until {@link requeue} puts it back.
   */
  release(entry: Entry<R>): void {
    const q = this.#release(entry);
    if (!q) return;
    q.held++;
    this.#refresh(q);
  }

  /** Puts a released entry back, first in line for its destination. */
  requeue(entry: Entry<R>): void {
    const t = this.#transport(entry.transport);
    const q = this.#queue(t, entry.queue, this.opts.limits(entry.transport));
    q.held = Math.max(0, q.held - 1);
    const rest = q.todo.get(entry.message) ?? [];
    q.todo.delete(entry.message);
    q.todo = new Map([[entry.message, [entry, ...rest]], ...q.todo]);
    q.waiting++;
    this.#refresh(q);
  }

  /** Dead destinations get another chance now (postqueue -f / -i). */
  flushDead(): void {
    for (const q of [...this.#timed]) {
      if (!q.dead) continue;
      this.#revive(q);
      this.#refresh(q);
    }
  }

  /**
   * The earliest time at which {@link next} may have something new without
   * another event (a dead destination revives, a rate delay ends), or null.
   */
  nextWakeup(): number | null {
    let at: number | null = null;
    const consider = (t: number) => {
      if (at === null || t < at) at = t;
    };
    for (const q of this.#timed) consider(q.dead ? q.deadUntil : q.notBefore);
    for (const t of this.#transports.values()) {
      if (t.rateDelayMs > 0 && t.ready.size > 0 && t.notBefore > this.opts.now()) {
        consider(t.notBefore);
      }
    }
    return at;
  }

  /** A destination queue's state, or null when none is held. */
  state(transport: string, queue: string): QueueState | null {
    const q = this.#transports.get(transport)?.queues.get(queue);
    return q ? { window: q.window, busy: q.busy, waiting: q.waiting, dead: q.dead !== null } : null;
  }

  /** Deliveries in progress, all transports. */
  get busy(): number {
    let n = 0;
    for (const t of this.#transports.values()) n += t.busy;
    return n;
  }

  /** Destination queues held (alive with work, or dead). */
  get queueCount(): number {
    let n = 0;
    for (const t of this.#transports.values()) n += t.queues.size;
    return n;
  }

  #transport(name: string): TransportState<R> {
    let t = this.#transports.get(name);
    if (!t) {
      const limits = this.opts.limits(name);
      t = {
        name,
        busy: 0,
        processLimit: Math.max(1, limits.processLimit),
        rateDelayMs: limits.transportRateDelayMs,
        notBefore: 0,
        queues: new Map(),
        ready: new Map(),
      };
      this.#transports.set(name, t);
    }
    return t;
  }

  #queue(t: TransportState<R>, name: string, limits: TransportLimits): DestQueue<R> {
    let q = t.queues.get(name);
    if (!q) {
      q = {
        name,
        transport: t.name,
        limits,
        window: initialWindow(limits),
        success: 0,
        failure: 0,
        failCohorts: 0,
        busy: 0,
        held: 0,
        todo: new Map(),
        waiting: 0,
        deadUntil: 0,
        dead: null,
        notBefore: 0,
      };
      t.queues.set(name, q);
    }
    return q;
  }

  /**
   * Puts a queue where its state says: in its transport's ready list (at
   * the end when it joins), among the timed and the suspended queues, or
   * forgotten when it is alive with nothing waiting and nothing running.
   */
  #refresh(q: DestQueue<R>): void {
    const t = this.#transports.get(q.transport);
    if (!t || t.queues.get(q.name) !== q) return;
    const now = this.opts.now();
    const rate = q.limits.rateDelayMs > 0;
    const ready = !q.dead && q.waiting > 0 && q.busy < q.window &&
      !(rate && (q.busy > 0 || q.notBefore > now));
    if (!ready) t.ready.delete(q.name);
    else if (!t.ready.has(q.name)) t.ready.set(q.name, q);
    if (q.dead || (rate && q.waiting > 0 && q.busy === 0 && q.notBefore > now)) {
      this.#timed.add(q);
    } else this.#timed.delete(q);
    if (q.dead && q.waiting > 0) this.#suspend.add(q);
    else this.#suspend.delete(q);
    if (!q.dead && q.waiting === 0 && q.busy === 0 && q.held === 0) {
      t.queues.delete(q.name);
      // A transport rate delay still running is kept, or it would be lost.
      const delaying = t.rateDelayMs > 0 && t.notBefore > now;
      if (t.queues.size === 0 && t.busy === 0 && !delaying) this.#transports.delete(t.name);
    }
  }

  #release(entry: Entry<R>): DestQueue<R> | undefined {
    const t = this.#transports.get(entry.transport);
    if (!t) return undefined;
    t.busy = Math.max(0, t.busy - 1);
    if (t.rateDelayMs > 0) t.notBefore = this.opts.now() + t.rateDelayMs;
    const q = t.queues.get(entry.queue);
    if (q) q.busy = Math.max(0, q.busy - 1);
    return q;
  }

  /** Positive feedback (qmgr_queue_unthrottle). */
  #unthrottle(q: DestQueue<R>): void {
    if (q.dead) {
      this.#revive(q);
      this.#debugWindow("unthrottle", q);
      return;
    }
    const { concurrencyLimit: limit, initialConcurrency: init } = q.limits;
    if ((limit === 0 || limit > q.window) && q.window < q.busy + init) {
      const fb = feedbackValue(q.limits.positiveFeedback, q.window);
      this.opts.debug?.(`qmgr_queue_unthrottle: feedback ${fmtG(fb)}`);
      q.success += fb;
      // fb/2 absorbs rounding (1/3 + 1/3 + 1/3 is one whole step).
      while (q.success + fb / 2 >= 1) {
        q.window++;
        q.success -= 1;
        q.failure = 0;
      }
      if (limit > 0 && q.window > limit) q.window = limit;
    }
    q.failCohorts = 0;
    this.#debugWindow("unthrottle", q);
  }

  /**
   * Negative feedback (qmgr_queue_throttle). As Postfix's (checked against
   * its destination_concurrency_feedback_debug lines): the failed cohort
   * count grows by 1/window first, and at the limit the destination is
   * dead; otherwise `failure` goes down by the feedback and the window
   * shrinks while `failure - feedback/2` is negative, so the first failure
   * after a success costs two steps (5 -> 3 with feedback 1), later ones one.
   */
  #throttle(q: DestQueue<R>, why: DeadReason): void {
    if (q.dead) return;
    q.failCohorts += 1 / q.window;
    const cohortLimit = q.limits.failedCohortLimit;
    if (cohortLimit > 0 && q.failCohorts >= cohortLimit) {
      q.dead = why;
      q.deadUntil = this.opts.now() + this.opts.deadTimeMs;
      this.#debugWindow("throttle", q);
      return;
    }
    const fb = feedbackValue(q.limits.negativeFeedback, q.window);
    this.opts.debug?.(`qmgr_queue_throttle: feedback ${fmtG(fb)}`);
    q.failure -= fb;
    while (q.failure - fb / 2 < 0) {
      q.window--;
      q.failure += 1;
      q.success = 0;
    }
    if (q.window < 1) q.window = 1;
    this.#debugWindow("throttle", q);
  }

  #revive(q: DestQueue<R>): void {
    q.dead = null;
    q.deadUntil = 0;
    q.window = initialWindow(q.limits);
    q.success = 0;
    q.failure = 0;
    q.failCohorts = 0;
  }

  /** The window line of Postfix's destination_concurrency_feedback_debug. */
  #debugWindow(fn: string, q: DestQueue<R>): void {
    this.opts.debug?.(
      `qmgr_queue_${fn}: queue ${q.name}: limit ${q.limits.concurrencyLimit} ` +
        `window ${q.dead ? 0 : q.window} success ${fmtG(q.success)} ` +
        `failure ${fmtG(q.failure)} fail_cohorts ${fmtG(q.failCohorts)}`,
    );
  }
}

function initialWindow(l: TransportLimits): number {
  const init = Math.max(1, l.initialConcurrency);
  const w = l.concurrencyLimit > 0 ? Math.min(init, l.concurrencyLimit) : init;
  return l.rateDelayMs > 0 ? 1 : w;
}

/** A number as C's %g prints it (6 significant digits, no trailing zeros). */
export function fmtG(n: number): string {
  return String(Number(n.toPrecision(6)));
}
