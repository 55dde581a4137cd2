/**
 * The queue manager: takes mail from `incoming/` and `deferred/` into
 * `active/` (scan.ts), resolves each recipient to a transport and next hop,
 * hands the recipients to the scheduler (scheduler.ts: destination queues,
 * concurrency with slow start and feedback, dead destinations, fairness),
 * sends the delivery requests it releases to the agents (agent_pool.ts),
 * and settles each message as its deliveries finish (settle.ts: removed,
 * deferred with backoff, bounced, delay warnings). A message marked by
 * postsuper -e/-f (lib/queue FORCE_EXPIRE_MODE) is not delivered: at
 * activation it is returned to its sender with each recipient's logged
 * deferral, or "message is administratively expired" (4.7.0), logged
 * "status=force-expired, returned to sender" (under soft_bounce it stays).
 *
 * Scheduling state lives in memory and is rebuilt from the spool at start:
 * files left in `active/` by a crash go back to `incoming/` (recovery),
 * and the scheduler starts over with every destination alive and at its
 * initial concurrency, as Postfix's. The hold queue is never scanned.
 *
 * Active queue limits: a message is taken into active/ only while fewer
 * than qmgr_message_active_limit messages and fewer than
 * qmgr_message_recipient_limit recipients are in it (a message is always
 * taken when the active queue is empty, however many recipients it has:
 * Postwarden reads a message's recipients whole, where Postfix reads them
 * in slices of qmgr_message_recipient_limit).
 *
 * Each recipient is resolved by lib/resolve (trivial-rewrite's role) with
 * the message's sender: the resolved recipient is what is delivered, its
 * transport and next hop (lower-cased, as Postfix's queue names) pick the
 * destination queue. A resolver that cannot answer (a table is down)
 * defers the recipient with 4.3.0 "address resolver failure: transport_maps
 * lookup failure" (naming the parameter) and logs the table's error; bad
 * address syntax goes to the error agent as "5.1.3 bad address syntax".
 * Mail for the error transport (virtual alias domains, relocated users,
 * transport_maps `error:` entries) goes to the error agent, which bounces it.
 *
 * A message with a content filter in its queue file (content_filter or a
 * FILTER action) is not resolved: every recipient goes to the filter's
 * transport and next hop (filter.ts); when that transport is not in
 * master.cf the recipients are deferred ("mail transport unavailable").
 *
 * Feedback: a request whose recipients were all deferred with relay=none
 * (the agent reached no server: connection refused or timed out, greeting
 * or handshake refused, no address; the smtp agent's session-level
 * failures, which Postfix's smtp client reports as a site failure) is
 * negative feedback for its destination; anything else is positive,
 * including per-recipient 4XX replies from a server that answered (a
 * greylisting server is not a dead one) and mailbox deferrals of the local
 * agent (relay=local). An agent that cannot be reached (being restarted)
 * gives no feedback: the request is retried a few times, then deferred.
 *
 * Parameters: queue_run_delay (300s), minimal_backoff_time (300s; also how
 * long a destination stays dead), maximal_backoff_time (4000s),
 * maximal_queue_lifetime (5d), bounce_queue_lifetime (5d),
 * delay_warning_time (0h), initial_destination_concurrency (5),
 * default_destination_concurrency_limit (20),
 * default_destination_recipient_limit (50),
 * default_destination_concurrency_positive_feedback (1),
 * default_destination_concurrency_negative_feedback (1),
 * default_destination_concurrency_failed_cohort_limit (1),
 * default_destination_rate_delay (0s), default_transport_rate_delay (0s),
 * and the <transport>_ variants of these seven,
 * <transport>_initial_destination_concurrency, destination_concurrency_feedback_debug (no),
 * default_process_limit (100), qmgr_message_active_limit (20000),
 * qmgr_message_recipient_limit (20000), default_filter_nexthop (empty),
 * myhostname, soft_bounce, and what the resolver reads (lib/resolve:
 * mydestination, transport_maps, relay_domains, relayhost, ...).
 */
import type { MasterService } from "../../lib/config/mod.ts";
import type { DeliveryRequest, RecipientStatus } from "../../lib/deliver/mod.ts";
import { IpcError } from "../../lib/ipc/mod.ts";
import { quoteAddress } from "../../lib/address/mod.ts";
import {
  type DeferEntry,
  forceExpired,
  isQueueId,
  QueueFile,
  QueueFormatError,
  readDeferLog,
  type StoredRecipient,
} from "../../lib/queue/mod.ts";
import { deliveryRoute, type Resolution, ResolveError, Resolver } from "../../lib/resolve/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import { AgentPool } from "./agent_pool.ts";
import { deferredForSite } from "./flush_site.ts";
import { type FilterParams, filterRoute } from "./filter.ts";
import { recoverActive, Scanner } from "./scan.ts";
import {
  type Action,
  type Entry,
  type Feedback,
  fmtG,
  parseFeedback,
  Scheduler,
  type TransportLimits,
} from "./scheduler.ts";
import { type ActiveMessage, logDecision, Settler } from "./settle.ts";

export type { ActiveMessage } from "./settle.ts";

/** Retries of a request whose agent was unreachable (being restarted) before deferring it. */
const AGENT_RETRIES = 3;
const AGENT_RETRY_MS = 1000;

/** A recipient as scheduled: the queue file's, possibly resolved to another address. */
type Rcpt = StoredRecipient;

/** The queue manager. */
export class Qmgr {
  readonly active = new Map<string, ActiveMessage>();
  readonly scheduler: Scheduler<Rcpt>;
  readonly scanner: Scanner;
  readonly settler: Settler;
  readonly agents: AgentPool;
  /** Times each entry's agent could not be reached. */
  #agentFailures = new WeakMap<Entry<Rcpt>, number>();
  #timers: ReturnType<typeof setInterval>[] = [];
  #wakeup: ReturnType<typeof setTimeout> | undefined;
  #retries = new Set<ReturnType<typeof setTimeout>>();
  #stopping = false;
  /** Ids moved back from active/ at start (they may have a defer log). */
  #recovered = new Set<string>();
  /** destination_concurrency_feedback_debug. */
  #feedbackDebug = false;
  /** Each transport's scheduling limits, read once (the configuration is fixed until a reload). */
  #limits = new Map<string, TransportLimits>();
  /** The active queue limits turned a message away since the last scan they caused. */
  #wasFull = false;
  /** Recipients of the messages in the active queue still to be settled. */
  #recipientsInMemory = 0;
  /** Resolves recipients; its tables are opened once. */
  readonly resolver: Resolver;

  constructor(
    readonly ctx: ServiceContext,
    readonly services: MasterService[],
    readonly now: () => number = Date.now,
  ) {
    this.resolver = Resolver.fromConfig(ctx.config, {
      warn: (m) => ctx.log.warn(m),
      openMaps: ctx.maps,
    });
    this.agents = new AgentPool(services, (name) => ctx.peer(name));
    const debug = ctx.config.bool("destination_concurrency_feedback_debug");
    this.#feedbackDebug = debug;
    this.scheduler = new Scheduler<Rcpt>({
      now,
      limits: (t) => this.limits(t),
      deadTimeMs: this.#cfg.time("minimal_backoff_time") * 1000,
      debug: debug ? (line) => ctx.log.info(line) : undefined,
    });
    this.scanner = new Scanner({
      queue: ctx.queue,
      now,
      warn: (line) => ctx.log.warn(line),
      hasRoom: () => this.#hasRoom(),
      activate: (id, from) => this.activate(id, from),
    });
    this.settler = new Settler(ctx, now, (msg) => this.#settled(msg));
  }

  get #cfg() {
    return this.ctx.config;
  }

  /**
   * The scheduling limits of a transport's destinations: each
   * `<transport>_destination_*` parameter when set, else its `default_`.
   */
  limits(transport: string): TransportLimits {
    let l = this.#limits.get(transport);
    if (!l) this.#limits.set(transport, l = this.#readLimits(transport));
    return l;
  }

  /** {@link limits}, read from the configuration (once per transport: warnings are not repeated). */
  #readLimits(transport: string): TransportLimits {
    const c = this.#cfg;
    const name = (suffix: string) => {
      const own = `${transport}_${suffix}`;
      return c.raw(own) !== undefined ? own : `default_${suffix}`;
    };
    const init = c.int("initial_destination_concurrency");
    const feedback = (suffix: string): Feedback => {
      const p = name(suffix);
      let fb = parseFeedback(c.str(p));
      if (!fb) {
        // Postfix: a warning and the value 1.
        this.ctx.log.warn(`${p}: ignoring malformed or unreasonable feedback: ${c.str(p)}`);
        fb = { base: 1, perWindow: false };
      }
      if (this.#feedbackDebug) {
        this.ctx.log.info(
          `${transport}: ${p} feedback type ${fb.perWindow ? 1 : 0} value at ${init}: ` +
            fmtG(fb.perWindow ? fb.base / init : fb.base),
        );
      }
      return fb;
    };
    return {
      concurrencyLimit: Math.max(0, c.int(name("destination_concurrency_limit"))),
      initialConcurrency: Math.max(
        1,
        c.int(
          c.raw(`${transport}_initial_destination_concurrency`) !== undefined
            ? `${transport}_initial_destination_concurrency`
            : "initial_destination_concurrency",
        ),
      ),
      recipientLimit: Math.max(0, c.int(name("destination_recipient_limit"))),
      positiveFeedback: feedback("destination_concurrency_positive_feedback"),
      negativeFeedback: feedback("destination_concurrency_negative_feedback"),
      failedCohortLimit: Math.max(0, c.int(name("destination_concurrency_failed_cohort_limit"))),
      rateDelayMs: c.time(name("destination_rate_delay")) * 1000,
      transportRateDelayMs: c.time(name("transport_rate_delay")) * 1000,
      processLimit: this.agents.processLimit(transport, c.int("default_process_limit")),
    };
  }

  /** Recovery and periodic scans. */
  async start(): Promise<void> {
    await this.recover();
    await this.scanner.scanIncoming();
    await this.scanner.scanDeferred(false);
    this.#timers.push(setInterval(() => void this.scanner.scanIncoming(), 1000));
    this.#timers.push(setInterval(() => {
      const delay = this.#cfg.time("queue_run_delay") * 1000;
      if (this.now() - this.scanner.lastDeferredScan >= delay) {
        void this.scanner.scanDeferred(false);
      }
    }, 1000));
  }

  /**
   * Stops scheduling and waits (up to `ms`) for deliveries in progress, so
   * a reload or stop does not cut them off and deliver them twice.
   */
  async stop(ms = 10_000): Promise<void> {
    this.#stopping = true;
    for (const t of this.#timers) clearInterval(t);
    clearTimeout(this.#wakeup);
    for (const t of this.#retries) clearTimeout(t);
    const end = Date.now() + ms;
    while (Date.now() < end && this.scheduler.busy > 0) {
      await new Promise((r) => setTimeout(r, 50));
    }
    this.agents.close();
  }

  /** Files left in active/ by a previous run go back to incoming/. */
  async recover(): Promise<void> {
    const ids = await recoverActive(this.ctx.queue);
    for (const id of ids) this.#recovered.add(id);
    if (ids.size) this.ctx.log.info(`recovered ${ids.size} message(s) from the active queue`);
  }

  /** Scans incoming/ now. */
  scanIncoming(): Promise<void> {
    return this.scanner.scanIncoming();
  }

  /** Scans deferred/ now: messages that are due, or all of them. */
  scanDeferred(all: boolean): Promise<void> {
    return this.scanner.scanDeferred(all);
  }

  /** Handles a request on public/qmgr. */
  async command(msg: Record<string, unknown>): Promise<Record<string, unknown>> {
    switch (msg.op) {
      case "new":
        if (Array.isArray(msg.ids)) {
          for (const id of msg.ids) {
            // Over the active limits, the periodic incoming/ scan takes them later.
            if (!this.#hasRoom()) break;
            if (typeof id === "string" && isQueueId(id)) await this.activate(id, "incoming");
          }
        }
        return { ok: true };
      case "wakeup":
        void this.scanner.scanIncoming();
        return { ok: true };
      case "flush":
        // Dead destinations get another chance, for one message too (as Postfix's
        // flush triggers qmgr with "flush dead").
        this.scheduler.flushDead();
        if (msg.site !== undefined) {
          // postqueue -s: the deferred mail for that site now (flush_site.ts).
          if (typeof msg.site !== "string") return { ok: false, error: "invalid site" };
          for (const id of await deferredForSite(this.ctx.queue, msg.site)) {
            if (this.#hasRoom()) await this.activate(id, "deferred");
            else await this.#touchDeferred(id);
          }
          this.#pump();
          return { ok: true };
        }
        if (msg.id !== undefined) {
          // postqueue -i: that message now, if it waits in deferred/ (else nothing).
          if (typeof msg.id !== "string" || !isQueueId(msg.id)) {
            return { ok: false, error: "invalid queue id" };
          }
          if (this.#hasRoom()) {
            await this.activate(msg.id, "deferred");
          } else {
            await this.#touchDeferred(msg.id);
          }
          this.#pump();
          return { ok: true };
        }
        this.#pump();
        await this.scanner.scanDeferred(true);
        return { ok: true };
      default:
        return { ok: false, error: `unknown request ${String(msg.op)}` };
    }
  }

  /** Whether the active queue takes another message (see the module comment). */
  #hasRoom(): boolean {
    if (this.active.size === 0) return true;
    const room = this.active.size < this.#cfg.int("qmgr_message_active_limit") &&
      this.#recipientsInMemory < this.#cfg.int("qmgr_message_recipient_limit");
    if (!room) this.#wasFull = true;
    return room;
  }

  /** Makes a deferred message due now (its mtime is its next attempt), for the next scan. */
  async #touchDeferred(id: string): Promise<void> {
    const now = new Date(this.now());
    await Deno.utime(this.ctx.queue.path("deferred", id), now, now).catch(() => {});
    this.scanner.lastDeferredScan = 0;
  }

  /** Moves one message into active/ and schedules its recipients. */
  async activate(id: string, from: "incoming" | "deferred"): Promise<void> {
    if (this.active.has(id)) return;
    const q = this.ctx.queue;
    const path = q.path("active", id);
    try {
      // Not durable: a move lost in a crash leaves it where a scan takes it again.
      await q.move(id, from, "active", { durable: false });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        this.ctx.log.warn(`${id}: cannot move to the active queue: ${(e as Error).message}`);
      }
      return; // already taken (a scan and a wake-up raced), or gone
    }
    if (this.active.has(id)) return;
    let file: QueueFile;
    try {
      file = await QueueFile.open(path);
    } catch (e) {
      const why = (e as Error).message;
      if (e instanceof QueueFormatError || e instanceof SyntaxError) {
        // Never delivered, never deleted: moved aside, or left in active/
        // (not scheduled; recovery retries the move at the next start).
        try {
          await q.move(id, "active", "corrupt");
          this.ctx.log.warn(`${id}: corrupt queue file moved to corrupt/: ${why}`);
        } catch (err) {
          this.ctx.log.error(
            `${id}: corrupt queue file (${why}); cannot move it to corrupt/: ` +
              `${(err as Error).message}; left in active/`,
          );
        }
      } else {
        try {
          await q.move(id, "active", from);
          this.ctx.log.warn(`${id}: cannot open queue file: ${why}; will retry`);
        } catch (err) {
          this.ctx.log.error(
            `${id}: cannot open queue file: ${why}; cannot move it back to ${from}/: ` +
              `${(err as Error).message}; left in active/`,
          );
        }
      }
      return;
    }
    const env = file.envelope;
    const size = file.size - file.head.contentOffset;
    file.close();
    const pending = file.head.recipients.filter((r) => !r.done);
    const msg: ActiveMessage = {
      id,
      path,
      sender: env.sender,
      arrival: env.arrival,
      activeAt: this.now(),
      envid: env.attrs?.envid,
      ret: env.attrs?.ret,
      ...(env.attrs?.requiretls === true ? { requiretls: true as const } : {}),
      ...(env.attrs?.verify === true ? { verify: true as const, report: [] } : {}),
      recipients: file.head.recipients,
      pendingJobs: 0,
      done: new Set(file.head.recipients.filter((r) => r.done).map((r) => r.index)),
      deferred: new Map(),
      successNotices: [],
      hadDeferLog: from === "deferred" || this.#recovered.has(id),
      mode: file.mode,
    };
    this.active.set(id, msg);
    this.#recipientsInMemory += pending.length;
    if (from === "incoming") {
      this.ctx.log.info(
        `${id}: from=<${quoteAddress(env.sender)}>, size=${size}, ` +
          `nrcpt=${file.head.recipients.length} (queue active)`,
      );
    }
    if (forceExpired(file.mode)) {
      await this.#forceExpire(msg, pending);
      return;
    }
    const byRoute = new Map<string, { transport: string; nexthop: string; rcpts: Rcpt[] }>();
    const route = (transport: string, nexthop: string, r: Rcpt) => {
      const key = `${transport}:${nexthop}`;
      let g = byRoute.get(key);
      if (!g) byRoute.set(key, g = { transport, nexthop, rcpts: [] });
      g.rcpts.push(r);
    };
    const decided: { r: StoredRecipient; st: RecipientStatus }[] = [];
    // A verification is not given to a content filter, which would deliver
    // it (Postfix's qmgr_message_resolve skips the filter for trace-only mail).
    const filter = msg.verify ? undefined : env.filter;
    const filterMissing = filter !== undefined && !this.#filterTransportExists(id, filter);
    for (const r of pending) {
      if (filter !== undefined) {
        // Content filter: every recipient goes there, unresolved (qmgr_message_resolve).
        if (filterMissing) {
          decided.push({ r, st: this.#deferral(r, "mail transport unavailable") });
          continue;
        }
        const { transport, nexthop } = filterRoute(filter, r.address, this.#filterParams);
        route(transport, nexthop, r);
        continue;
      }
      let res: Resolution;
      try {
        res = await this.resolver.resolve(r.address, { sender: env.sender });
      } catch (e) {
        if (!(e instanceof ResolveError)) throw e;
        this.ctx.log.warn(`${id}: ${e.message}`);
        const why = e.parameter ? `: ${e.parameter} lookup failure` : "";
        decided.push({ r, st: this.#deferral(r, `address resolver failure${why}`) });
        continue;
      }
      const { transport, nexthop } = deliveryRoute(res);
      // The resolved recipient is delivered (user%remote@ours goes to user@remote);
      // without an original recipient of its own, the queue file's becomes it (orig_to=).
      route(
        transport,
        nexthop,
        res.recipient === r.address
          ? r
          : { ...r, address: res.recipient, orcpt: r.orcpt ?? r.address },
      );
    }
    for (const g of byRoute.values()) {
      msg.pendingJobs += this.scheduler.enqueue(id, g.transport, g.nexthop, g.rcpts).length;
    }
    if (decided.length > 0) {
      // Settled like a finished request; the message settles once every request has.
      for (const d of decided) logDecision(this.ctx, msg, this.now(), d.r.address, d.st);
      msg.pendingJobs++;
      await this.settler.finish(msg, decided.map((d) => d.r), decided.map((d) => d.st));
    } else if (msg.pendingJobs === 0) {
      await this.settler.settle(msg);
      return;
    }
    this.#pump();
  }

  /**
   * Whether a content filter's transport is a unix service in master.cf;
   * when it is not, the message is deferred (never delivered unfiltered)
   * and this says why.
   */
  #filterTransportExists(id: string, filter: string): boolean {
    const transport = filterRoute(filter, "", this.#filterParams).transport;
    if (this.agents.has(transport)) return true;
    this.ctx.log.warn(
      `${id}: content filter ${filter}: transport "${transport}" is not defined in master.cf ` +
        `-- message deferred`,
    );
    return false;
  }

  get #filterParams(): FilterParams {
    return {
      defaultNexthop: this.ctx.config.str("default_filter_nexthop"),
      myhostname: this.ctx.config.str("myhostname"),
    };
  }

  /**
   * A message postsuper -e/-f marked: nothing is delivered; each pending
   * recipient keeps its logged deferral (status and reason) or, without
   * one, is deferred "message is administratively expired" (4.7.0), and
   * the message is returned to its sender (settle), as Postfix's qmgr does.
   */
  async #forceExpire(msg: ActiveMessage, pending: StoredRecipient[]): Promise<void> {
    const logged = msg.hadDeferLog
      ? await readDeferLog(this.ctx.queue.deferLog(msg.id)).catch(() =>
        new Map<string, DeferEntry>()
      )
      : new Map<string, DeferEntry>();
    for (const r of pending) {
      const e = logged.get(r.address);
      const st: RecipientStatus = e
        ? { index: r.index, status: "deferred", dsn: e.dsn, reason: e.reason, relay: "none" }
        : {
          index: r.index,
          status: "deferred",
          dsn: "4.7.0",
          reason: "message is administratively expired",
          relay: "none",
        };
      if (!e) logDecision(this.ctx, msg, this.now(), r.address, st);
      msg.deferred.set(r.index, st);
    }
    msg.forceExpire = true;
    await this.settler.settle(msg);
  }

  /** A deferral qmgr decides itself (the resolver could not answer). */
  #deferral(r: StoredRecipient, reason: string): RecipientStatus {
    return { index: r.index, status: "deferred", dsn: "4.3.0", reason, relay: "none" };
  }

  /** A message left the active queue: room for more. */
  #settled(msg: ActiveMessage): void {
    if (this.active.delete(msg.id)) {
      this.#recipientsInMemory -= msg.recipients.filter((r) => !r.done).length;
    }
    // Room again: more may be waiting in incoming/ (deferred/ waits for
    // its next scan, as it would in Postfix).
    if (this.active.size === 0 || (this.#wasFull && this.#hasRoom())) {
      this.#wasFull = false;
      void this.scanner.scanIncoming();
    }
  }

  /** Starts what the scheduler releases; arms a timer for what it will release later. */
  #pump(): void {
    // Stopping: what is not yet started stays in active/ for the next qmgr.
    if (this.#stopping) return;
    for (const act of this.scheduler.next()) this.#run(act);
    clearTimeout(this.#wakeup);
    const at = this.scheduler.nextWakeup();
    if (at !== null) {
      this.#wakeup = setTimeout(() => this.#pump(), Math.max(0, at - this.now()) + 5);
    }
  }

  #run(act: Action<Rcpt>): void {
    const msg = this.active.get(act.entry.message);
    if (!msg) return; // cannot happen: a message settles after all its entries
    if (act.kind === "suspended") {
      // The destination is dead: deferred without contacting it, as Postfix does.
      const statuses = act.entry.recipients.map((r): RecipientStatus => ({
        index: r.index,
        status: "deferred",
        dsn: act.why.dsn,
        reason: `delivery temporarily suspended: ${act.why.reason}`,
        relay: "none",
      }));
      act.entry.recipients.forEach((r, i) =>
        logDecision(this.ctx, msg, this.now(), r.address, statuses[i])
      );
      void this.settler.finish(msg, act.entry.recipients, statuses);
      return;
    }
    void this.#deliver(msg, act.entry);
  }

  async #deliver(msg: ActiveMessage, entry: Entry<Rcpt>): Promise<void> {
    const req: DeliveryRequest = {
      op: "deliver",
      queueId: msg.id,
      path: msg.path,
      sender: msg.sender,
      transport: entry.transport,
      nexthop: entry.nexthop,
      recipients: entry.recipients.map((r) => ({
        index: r.index,
        address: r.address,
        orcpt: r.orcpt,
        notify: r.notify,
      })),
      arrival: msg.arrival,
      activeAt: msg.activeAt,
      envid: msg.envid,
      ret: msg.ret,
      ...(msg.requiretls ? { requiretls: true as const } : {}),
      ...(msg.verify ? { verify: true as const } : {}),
    };
    let statuses: RecipientStatus[];
    let agentFailed = false;
    try {
      statuses = await this.agents.request(entry.transport, req);
    } catch (e) {
      agentFailed = true;
      const transient = e instanceof IpcError && !e.timeout;
      const failures = this.#agentFailures.get(entry) ?? 0;
      if (transient && failures < AGENT_RETRIES && !this.#stopping) {
        // Like Postfix's transport throttling: keep the request in the active
        // queue and try again shortly, rather than defer it for a backoff.
        this.#agentFailures.set(entry, failures + 1);
        this.scheduler.release(entry);
        const t = setTimeout(() => {
          this.#retries.delete(t);
          this.scheduler.requeue(entry);
          this.#pump();
        }, AGENT_RETRY_MS * (failures + 1));
        this.#retries.add(t);
        this.#pump();
        return;
      }
      const reason = `unknown mail transport error (${entry.transport}: ${(e as Error).message})`;
      this.ctx.log.warn(`${msg.id}: ${reason}`);
      statuses = entry.recipients.map((r) => ({
        index: r.index,
        status: "deferred",
        dsn: "4.3.0",
        reason,
        relay: "none",
      }));
    }
    const wanted = new Set(entry.recipients.map((r) => r.index));
    statuses = statuses.filter((s) => wanted.has(s.index));
    if (agentFailed) {
      // Our own agent failing says nothing about the destination.
      this.scheduler.doneWithoutFeedback(entry);
    } else {
      // Deferred without a mail transaction (the agent says the next hop
      // failed: no connection, a greeting, EHLO, TLS or AUTH refused; or
      // relay=none, no server at all): the destination failed.
      const failed = statuses.length > 0 &&
        statuses.every((s) => s.status === "deferred" && (s.site || s.relay === "none"));
      this.scheduler.done(entry, {
        failed: failed ? { dsn: statuses[0].dsn, reason: statuses[0].reason } : null,
      });
    }
    this.#pump();
    await this.settler.finish(msg, entry.recipients, statuses);
  }
}
