/**
 * The queue manager: moves mail from `incoming/` to `active/`, resolves
 * each recipient to a transport and next hop, hands delivery requests to
 * the delivery agents under per-destination concurrency limits, and
 * settles each message: removed when every recipient is done, otherwise
 * moved to `deferred/` with its next attempt time as the file's mtime
 * (as Postfix does), or bounced when past its lifetime. A message marked
 * by postsuper -e/-f (lib/queue FORCE_EXPIRE_MODE) is not delivered: at
 * activation it is returned to its sender with each recipient's logged
 * deferral, or "message is administratively expired" (4.7.0), logged
 * "status=force-expired, returned to sender" (under soft_bounce it stays).
 *
 * Scheduling state lives in memory and is rebuilt from the spool at start:
 * files left in `active/` by a crash go back to `incoming/` (recovery).
 * A recipient is marked done in the queue file only when others remain, so
 * a crash can repeat a delivery but never lose one (DESIGN.md invariant 2).
 *
 * Each recipient is resolved by lib/resolve (trivial-rewrite's role) with
 * the message's sender: the resolved recipient is what is delivered, its
 * transport and next hop (lower-cased, as Postfix's queue names) pick the
 * destination queue. A resolver that cannot answer (a table is down)
 * defers the recipient with 4.3.0 "address resolver failure: transport_maps
 * lookup failure" (naming the parameter) and logs the table's error; bad address syntax goes to the error agent as "5.1.3 bad
 * address syntax". Mail for the error transport (virtual alias domains, relocated users, transport_maps
 * `error:` entries) goes to the error agent, which bounces it.
 *
 * A message with a content filter in its queue file (content_filter or a
 * FILTER action) is not resolved: every recipient goes to the filter's
 * transport and next hop (filter.ts); when that transport is not in
 * master.cf the recipients are deferred ("mail transport unavailable").
 *
 * Not implemented yet: slow start, delay warnings (delay_warning_time),
 * hold queue management from postsuper.
 *
 * Parameters: queue_run_delay (300s), minimal_backoff_time (300s),
 * maximal_backoff_time (4000s), maximal_queue_lifetime (5d),
 * bounce_queue_lifetime (5d), default_destination_concurrency_limit (20),
 * default_destination_recipient_limit (50), <transport>_destination_*
 * variants, default_process_limit (100), qmgr_message_active_limit (20000),
 * default_filter_nexthop (empty), myhostname, and what the resolver reads
 * (lib/resolve: mydestination, transport_maps, relay_domains, relayhost, ...).
 */
import { quoteAddress } from "../../lib/address/mod.ts";
import type { BounceRecipient } from "../../lib/bounce/client.ts";
import { requestBounce } from "../../lib/bounce/client.ts";
import type { MasterService } from "../../lib/config/mod.ts";
import type { DeliveryRequest, DeliveryResult, RecipientStatus } from "../../lib/deliver/mod.ts";
import { type IpcConn, ipcConnect, IpcError } from "../../lib/ipc/mod.ts";
import { deferredForSite } from "./flush_site.ts";

/** Idle agent connections older than this are closed instead of reused (Postfix ipc_idle). */
const IDLE_CONN_MS = 5000;
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
import { type FilterParams, filterRoute } from "./filter.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";

/** A message in the active queue. */
interface ActiveMessage {
  id: string;
  path: string;
  sender: string;
  arrival: number;
  activeAt: number;
  envid?: string;
  ret?: string;
  recipients: StoredRecipient[];
  /** Jobs not yet finished. */
  pendingJobs: number;
  done: Set<number>;
  deferred: Map<number, RecipientStatus>;
  /** Successful deliveries whose sender asked for NOTIFY=SUCCESS. */
  successNotices: BounceRecipient[];
  /** Came from deferred/, so defer/<id> may exist. */
  hadDeferLog: boolean;
  /** postsuper -e/-f marked it: returned to the sender, not delivered. */
  forceExpire?: boolean;
}

/** Recipients of one message for one destination. */
interface Job {
  msg: ActiveMessage;
  recipients: StoredRecipient[];
  /** Times the delivery agent could not be reached for this job. */
  agentFailures?: number;
}

/** Retries of a job whose agent was unreachable (being restarted) before deferring it. */
const AGENT_RETRIES = 3;
const AGENT_RETRY_MS = 1000;

interface Destination {
  key: string;
  transport: string;
  nexthop: string;
  jobs: Job[];
  running: number;
  limit: number;
  recipientLimit: number;
  /** Delivery suspended after a failure, until this time (ms). */
  deadUntil: number;
  deadReason: RecipientStatus | null;
}

/** The queue manager. */
export class Qmgr {
  readonly active = new Map<string, ActiveMessage>();
  readonly destinations = new Map<string, Destination>();
  readonly transportRunning = new Map<string, number>();
  #scanningIncoming = false;
  #incomingAgain = false;
  #lastDeferredScan = 0;
  #timers: ReturnType<typeof setInterval>[] = [];
  #stopping = false;
  /** Idle connections to delivery agents, per transport. */
  #idleConns = new Map<string, IpcConn[]>();
  #idleSince = new WeakMap<IpcConn, number>();
  /** Ids moved back from active/ at start (they may have a defer log). */
  #recovered = new Set<string>();
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
  }

  get #cfg() {
    return this.ctx.config;
  }

  /** Recovery and periodic scans. */
  async start(): Promise<void> {
    await this.recover();
    await this.scanIncoming();
    await this.scanDeferred(false);
    this.#timers.push(setInterval(() => void this.scanIncoming(), 1000));
    this.#timers.push(setInterval(() => {
      const delay = this.#cfg.time("queue_run_delay") * 1000;
      if (this.now() - this.#lastDeferredScan >= delay) void this.scanDeferred(false);
    }, 1000));
  }

  /**
   * Stops scheduling and waits (up to `ms`) for deliveries in progress, so
   * a reload or stop does not cut them off and deliver them twice.
   */
  async stop(ms = 10_000): Promise<void> {
    this.#stopping = true;
    for (const t of this.#timers) clearInterval(t);
    const end = Date.now() + ms;
    while (Date.now() < end && [...this.destinations.values()].some((d) => d.running > 0)) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Files left in active/ by a previous run go back to incoming/. */
  async recover(): Promise<void> {
    const q = this.ctx.queue;
    let n = 0;
    for await (const e of Deno.readDir(q.dir("active"))) {
      if (!e.isFile || !isQueueId(e.name)) continue;
      await Deno.rename(q.path("active", e.name), q.path("incoming", e.name));
      this.#recovered.add(e.name);
      n++;
    }
    if (n) this.ctx.log.info(`recovered ${n} message(s) from the active queue`);
  }

  /** Handles a request on public/qmgr. */
  async command(msg: Record<string, unknown>): Promise<Record<string, unknown>> {
    switch (msg.op) {
      case "new":
        if (Array.isArray(msg.ids)) {
          for (const id of msg.ids) {
            // Over the active limit, the periodic incoming/ scan takes them later.
            if (this.active.size >= this.#cfg.int("qmgr_message_active_limit")) break;
            if (typeof id === "string" && isQueueId(id)) await this.activate(id, "incoming");
          }
        }
        return { ok: true };
      case "wakeup":
        void this.scanIncoming();
        return { ok: true };
      case "flush":
        // Dead destinations get another chance, for one message too (as Postfix's
        // flush triggers qmgr with "flush dead").
        for (const d of this.destinations.values()) d.deadUntil = 0;
        if (msg.site !== undefined) {
          // postqueue -s: the deferred mail for that site now (flush_site.ts).
          if (typeof msg.site !== "string") return { ok: false, error: "invalid site" };
          for (const id of await deferredForSite(this.ctx.queue, msg.site)) {
            if (this.active.size < this.#cfg.int("qmgr_message_active_limit")) {
              await this.activate(id, "deferred");
            } else await this.#touchDeferred(id);
          }
          return { ok: true };
        }
        if (msg.id !== undefined) {
          // postqueue -i: that message now, if it waits in deferred/ (else nothing).
          if (typeof msg.id !== "string" || !isQueueId(msg.id)) {
            return { ok: false, error: "invalid queue id" };
          }
          if (this.active.size < this.#cfg.int("qmgr_message_active_limit")) {
            await this.activate(msg.id, "deferred");
          } else {
            await this.#touchDeferred(msg.id);
          }
          return { ok: true };
        }
        await this.scanDeferred(true);
        return { ok: true };
      default:
        return { ok: false, error: `unknown request ${String(msg.op)}` };
    }
  }

  /** Makes a deferred message due now (its mtime is its next attempt), for the next scan. */
  async #touchDeferred(id: string): Promise<void> {
    const now = new Date(this.now());
    await Deno.utime(this.ctx.queue.path("deferred", id), now, now).catch(() => {});
    this.#lastDeferredScan = 0;
  }

  async scanIncoming(): Promise<void> {
    if (this.#scanningIncoming) {
      this.#incomingAgain = true;
      return;
    }
    this.#scanningIncoming = true;
    try {
      do {
        this.#incomingAgain = false;
        const ids: string[] = [];
        for await (const e of Deno.readDir(this.ctx.queue.dir("incoming"))) {
          if (e.isFile && isQueueId(e.name)) ids.push(e.name);
        }
        ids.sort();
        for (const id of ids) {
          if (this.active.size >= this.#cfg.int("qmgr_message_active_limit")) break;
          await this.activate(id, "incoming");
        }
      } while (this.#incomingAgain);
    } catch (e) {
      this.ctx.log.warn(`scan incoming: ${(e as Error).message}`);
    } finally {
      this.#scanningIncoming = false;
    }
  }

  /** Moves deferred messages whose time has come (or all, for a flush) to active. */
  async scanDeferred(all: boolean): Promise<void> {
    this.#lastDeferredScan = this.now();
    const q = this.ctx.queue;
    try {
      const due: string[] = [];
      for await (const e of Deno.readDir(q.dir("deferred"))) {
        if (!e.isFile || !isQueueId(e.name)) continue;
        if (!all) {
          const st = await Deno.stat(q.path("deferred", e.name)).catch(() => null);
          if (!st || (st.mtime && st.mtime.getTime() > this.now())) continue;
        }
        due.push(e.name);
      }
      due.sort();
      for (const id of due) {
        if (this.active.size >= this.#cfg.int("qmgr_message_active_limit")) break;
        await this.activate(id, "deferred");
      }
    } catch (e) {
      this.ctx.log.warn(`scan deferred: ${(e as Error).message}`);
    }
  }

  /** Moves one message into active/ and schedules its recipients. */
  async activate(id: string, from: "incoming" | "deferred"): Promise<void> {
    if (this.active.has(id)) return;
    const q = this.ctx.queue;
    const path = q.path("active", id);
    try {
      Deno.renameSync(q.path(from, id), path);
    } catch {
      return; // already taken (a scan and a wake-up raced), or gone
    }
    let file: QueueFile;
    try {
      file = await QueueFile.open(path);
    } catch (e) {
      const why = (e as Error).message;
      if (e instanceof QueueFormatError || e instanceof SyntaxError) {
        // Never delivered, never deleted: moved aside, or left in active/
        // (not scheduled; recovery retries the move at the next start).
        try {
          await Deno.rename(path, q.path("corrupt", id));
          this.ctx.log.warn(`${id}: corrupt queue file moved to corrupt/: ${why}`);
        } catch (err) {
          this.ctx.log.error(
            `${id}: corrupt queue file (${why}); cannot move it to corrupt/: ` +
              `${(err as Error).message}; left in active/`,
          );
        }
      } else {
        try {
          await Deno.rename(path, q.path(from, id));
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
    const expired = forceExpired(file.mode);
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
      recipients: file.head.recipients,
      pendingJobs: 0,
      done: new Set(file.head.recipients.filter((r) => r.done).map((r) => r.index)),
      deferred: new Map(),
      successNotices: [],
      hadDeferLog: from === "deferred" || this.#recovered.has(id),
    };
    this.active.set(id, msg);
    if (from === "incoming") {
      this.ctx.log.info(
        `${id}: from=<${quoteAddress(env.sender)}>, size=${size}, ` +
          `nrcpt=${file.head.recipients.length} (queue active)`,
      );
    }
    if (expired) {
      await this.#forceExpire(msg, pending);
      return;
    }
    const byDest = new Map<string, StoredRecipient[]>();
    const decided: { r: StoredRecipient; st: RecipientStatus }[] = [];
    const filter = env.filter;
    const filterMissing = filter !== undefined && !this.#filterTransportExists(id, filter);
    for (const r of pending) {
      if (filter !== undefined) {
        // Content filter: every recipient goes there, unresolved (qmgr_message_resolve).
        if (filterMissing) {
          decided.push({ r, st: this.#deferral(r, "mail transport unavailable") });
          continue;
        }
        const { transport, nexthop } = filterRoute(filter, r.address, this.#filterParams);
        const dest = this.#destination(`${transport}:${nexthop}`, transport, nexthop);
        let list = byDest.get(dest.key);
        if (!list) byDest.set(dest.key, list = []);
        list.push(r);
        continue;
      }
      let route: Resolution;
      try {
        route = await this.resolver.resolve(r.address, { sender: env.sender });
      } catch (e) {
        if (!(e instanceof ResolveError)) throw e;
        this.ctx.log.warn(`${id}: ${e.message}`);
        const why = e.parameter ? `: ${e.parameter} lookup failure` : "";
        decided.push({ r, st: this.#deferral(r, `address resolver failure${why}`) });
        continue;
      }
      const { transport, nexthop } = deliveryRoute(route);
      const key = `${transport}:${nexthop}`;
      const dest = this.#destination(key, transport, nexthop);
      let list = byDest.get(dest.key);
      if (!list) byDest.set(dest.key, list = []);
      // The resolved recipient is delivered (user%remote@ours goes to user@remote);
      // without an original recipient of its own, the queue file's becomes it (orig_to=).
      list.push(
        route.recipient === r.address
          ? r
          : { ...r, address: route.recipient, orcpt: r.orcpt ?? r.address },
      );
    }
    for (const [key, rcpts] of byDest) {
      const dest = this.destinations.get(key)!;
      for (let i = 0; i < rcpts.length; i += dest.recipientLimit) {
        dest.jobs.push({ msg, recipients: rcpts.slice(i, i + dest.recipientLimit) });
        msg.pendingJobs++;
      }
    }
    if (decided.length > 0) {
      // Settled like a finished job; the message settles once every job has.
      const job: Job = { msg, recipients: decided.map((d) => d.r) };
      for (const d of decided) this.#logStatus(msg, d.r.address, d.st);
      msg.pendingJobs++;
      await this.#finishJob(job, decided.map((d) => d.st));
      if (byDest.size === 0) return;
    } else if (msg.pendingJobs === 0) {
      await this.settle(msg);
      return;
    }
    for (const key of byDest.keys()) this.#pump(this.destinations.get(key)!);
  }

  /**
   * Whether a content filter's transport is a unix service in master.cf;
   * when it is not, the message is deferred (never delivered unfiltered)
   * and this says why.
   */
  #filterTransportExists(id: string, filter: string): boolean {
    const transport = filterRoute(filter, "", this.#filterParams).transport;
    if (this.services.some((s) => s.name === transport && s.type === "unix")) return true;
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
      if (!e) this.#logStatus(msg, r.address, st);
      msg.deferred.set(r.index, st);
    }
    msg.forceExpire = true;
    await this.settle(msg);
  }

  /** A deferral qmgr decides itself (the resolver could not answer). */
  #deferral(r: StoredRecipient, reason: string): RecipientStatus {
    return { index: r.index, status: "deferred", dsn: "4.3.0", reason, relay: "none" };
  }

  #logStatus(msg: ActiveMessage, address: string, st: RecipientStatus): void {
    const delay = ((this.now() - msg.arrival) / 1000).toFixed(2).replace(/\.?0+$/, "") || "0";
    this.ctx.log.info(
      `${msg.id}: to=<${quoteAddress(address)}>, relay=none, delay=${delay}, ` +
        `delays=0/0/0/0, dsn=${st.dsn}, status=${st.status} (${st.reason})`,
    );
  }

  #destination(key: string, transport: string, nexthop: string): Destination {
    let d = this.destinations.get(key);
    if (!d) {
      const c = this.#cfg;
      const perTransport = (suffix: string, fallback: string) => {
        const name = `${transport}_${suffix}`;
        return c.raw(name) !== undefined ? c.int(name) : c.int(fallback);
      };
      d = {
        key,
        transport,
        nexthop,
        jobs: [],
        running: 0,
        limit: Math.max(
          1,
          perTransport("destination_concurrency_limit", "default_destination_concurrency_limit"),
        ),
        recipientLimit: Math.max(
          1,
          perTransport("destination_recipient_limit", "default_destination_recipient_limit"),
        ),
        deadUntil: 0,
        deadReason: null,
      };
      this.destinations.set(key, d);
    }
    return d;
  }

  #transportLimit(transport: string): number {
    const svc = this.services.find((s) => s.name === transport && s.type === "unix");
    return svc && svc.maxproc > 0 ? svc.maxproc : this.#cfg.int("default_process_limit");
  }

  /** Starts as many jobs for a destination as its limits allow. */
  #pump(dest: Destination): void {
    // Stopping: what is not yet started stays in active/ for the next qmgr.
    while (dest.jobs.length > 0 && !this.#stopping) {
      if (dest.deadUntil > this.now() && dest.deadReason) {
        // Destination is down: defer without contacting it, as Postfix does.
        const job = dest.jobs.shift()!;
        const reason = dest.deadReason;
        const statuses = job.recipients.map((r) => ({
          ...reason,
          index: r.index,
          reason: `delivery temporarily suspended: ${reason.reason}`,
        }));
        for (const st of statuses) {
          this.ctx.log.info(
            `${job.msg.id}: to=<${
              quoteAddress(job.recipients.find((r) => r.index === st.index)!.address)
            }>, relay=none, ` +
              `delay=${
                ((this.now() - job.msg.arrival) / 1000).toFixed(2).replace(/\.?0+$/, "") || "0"
              }, ` +
              `delays=0/0/0/0, dsn=${st.dsn}, status=deferred (${st.reason})`,
          );
        }
        void this.#finishJob(job, statuses);
        continue;
      }
      const tRunning = this.transportRunning.get(dest.transport) ?? 0;
      if (dest.running >= dest.limit || tRunning >= this.#transportLimit(dest.transport)) return;
      const job = dest.jobs.shift()!;
      dest.running++;
      this.transportRunning.set(dest.transport, tRunning + 1);
      void this.#deliver(dest, job).finally(() => {
        dest.running--;
        this.transportRunning.set(
          dest.transport,
          (this.transportRunning.get(dest.transport) ?? 1) - 1,
        );
        this.#pump(dest);
        // Another destination of the same transport may have been waiting.
        for (const d of this.destinations.values()) {
          if (d !== dest && d.transport === dest.transport && d.jobs.length) this.#pump(d);
        }
        // Forget idle destinations (a relay sees many domains over time),
        // but keep a suspended one until its suspension ends.
        if (dest.jobs.length === 0 && dest.running === 0 && dest.deadUntil <= this.now()) {
          this.destinations.delete(dest.key);
        }
      });
    }
  }

  async #deliver(dest: Destination, job: Job): Promise<void> {
    const msg = job.msg;
    const req: DeliveryRequest = {
      op: "deliver",
      queueId: msg.id,
      path: msg.path,
      sender: msg.sender,
      transport: dest.transport,
      nexthop: dest.nexthop,
      recipients: job.recipients.map((r) => ({
        index: r.index,
        address: r.address,
        orcpt: r.orcpt,
        notify: r.notify,
      })),
      arrival: msg.arrival,
      activeAt: msg.activeAt,
      envid: msg.envid,
      ret: msg.ret,
    };
    let statuses: RecipientStatus[];
    let agentFailed = false;
    try {
      statuses = await this.#request(dest.transport, req);
    } catch (e) {
      agentFailed = true;
      const transient = e instanceof IpcError && !/timeout/.test(e.message);
      if (transient && (job.agentFailures ?? 0) < AGENT_RETRIES) {
        // Like Postfix's transport throttling: keep the job in the active
        // queue and try again shortly, rather than defer it for a backoff.
        job.agentFailures = (job.agentFailures ?? 0) + 1;
        setTimeout(() => {
          // The destination may have been forgotten meanwhile: look it up again.
          const d = this.#destination(dest.key, dest.transport, dest.nexthop);
          d.jobs.unshift(job);
          this.#pump(d);
        }, AGENT_RETRY_MS * job.agentFailures);
        return;
      }
      const reason = `unknown mail transport error (${dest.transport}: ${(e as Error).message})`;
      this.ctx.log.warn(`${msg.id}: ${reason}`);
      statuses = job.recipients.map((r) => ({
        index: r.index,
        status: "deferred",
        dsn: "4.3.0",
        reason,
        relay: "none",
      }));
    }
    const wanted = new Set(job.recipients.map((r) => r.index));
    statuses = statuses.filter((s) => wanted.has(s.index));
    // A destination that deferred everything is suspended for a while. A
    // failure to reach our own delivery agent says nothing about the
    // destination (the agent is being restarted): no suspension then.
    if (
      !agentFailed && statuses.length > 0 && statuses.every((s) => s.status === "deferred") &&
      dest.transport !== "local"
    ) {
      dest.deadUntil = this.now() + this.#cfg.time("minimal_backoff_time") * 1000;
      dest.deadReason = statuses[0];
    } else if (statuses.some((s) => s.status === "sent")) {
      dest.deadUntil = 0;
      dest.deadReason = null;
    }
    await this.#finishJob(job, statuses);
  }

  /**
   * One delivery request over a pooled connection to the transport's agent.
   * A pooled connection that turns out dead before the request is sent (the
   * agent restarted) is replaced by a fresh one; once the request is out, a
   * failure is reported to the caller (the recipients are deferred).
   */
  async #request(transport: string, req: DeliveryRequest): Promise<RecipientStatus[]> {
    const idle = this.#idleConns.get(transport) ?? [];
    this.#idleConns.set(transport, idle);
    let conn: IpcConn | undefined;
    while ((conn = idle.pop())) {
      if (Date.now() - (this.#idleSince.get(conn) ?? 0) < IDLE_CONN_MS) break;
      conn.close();
    }
    let res: DeliveryResult | null = null;
    if (conn) {
      try {
        await conn.send(req);
        res = await conn.recvMsg<DeliveryResult>();
      } catch (e) {
        conn.close();
        conn = undefined;
        // A connection closed while idle fails at once with no reply: retry
        // fresh. Anything else (a timeout) is a real failure.
        if (!(e instanceof IpcError) || /timeout/.test(e.message)) throw e;
      }
    }
    if (!conn) {
      conn = await ipcConnect(this.#transportSocket(transport), { timeoutMs: 3_600_000 });
      try {
        await conn.send(req);
        res = await conn.recvMsg<DeliveryResult>();
      } catch (e) {
        conn.close();
        throw e;
      }
    }
    if (!res || !Array.isArray(res.recipients)) {
      conn.close();
      throw new Error("bad reply from delivery agent");
    }
    this.#idleSince.set(conn, Date.now());
    idle.push(conn);
    return res.recipients;
  }

  #transportSocket(transport: string): string {
    const svc = this.services.find((s) => s.name === transport && s.type === "unix");
    if (!svc) throw new Error(`transport "${transport}" is not defined in master.cf`);
    return this.ctx.peer(svc.name);
  }

  async #finishJob(job: Job, statuses: RecipientStatus[]): Promise<void> {
    const msg = job.msg;
    const byIndex = new Map(statuses.map((s) => [s.index, s]));
    const bounced: BounceRecipient[] = [];
    const bouncedIdx: number[] = [];
    for (const r of job.recipients) {
      const st = byIndex.get(r.index) ?? {
        index: r.index,
        status: "deferred" as const,
        dsn: "4.3.0",
        reason: "no status from delivery agent",
        relay: "none",
      };
      if (st.status === "sent") {
        msg.done.add(r.index);
        if (r.notify?.includes("SUCCESS")) {
          msg.successNotices.push({
            address: r.address,
            orcpt: r.orcpt,
            action: st.action ??
              (st.relay === "local" || st.relay === "none" ? "delivered" : "relayed"),
            status: st.dsn,
            reason: st.reason,
            diagnostic: st.diagnostic,
            remoteMta: st.remoteMta,
          });
        }
      } else if (st.status === "bounced") {
        bounced.push({
          address: r.address,
          orcpt: r.orcpt,
          action: "failed",
          status: st.dsn,
          reason: st.reason,
          diagnostic: st.diagnostic,
          remoteMta: st.remoteMta,
        });
        bouncedIdx.push(r.index);
      } else {
        msg.deferred.set(r.index, st);
      }
    }
    if (bounced.length) {
      if (await this.#notify(msg, "bounce", bounced)) {
        for (const i of bouncedIdx) msg.done.add(i);
      } else {
        for (const i of bouncedIdx) {
          msg.deferred.set(i, {
            index: i,
            status: "deferred",
            dsn: "4.3.0",
            reason: "bounce service unavailable; will retry",
            relay: "none",
          });
        }
      }
    }
    msg.pendingJobs--;
    if (msg.pendingJobs === 0) await this.settle(msg);
  }

  /** Asks bounce for a notification; true once it is durably queued (or not wanted). */
  async #notify(
    msg: ActiveMessage,
    op: "bounce" | "success",
    rcpts: BounceRecipient[],
  ): Promise<boolean> {
    try {
      const reply = await requestBounce(this.ctx.peer("bounce"), {
        op,
        queueId: msg.id,
        path: msg.path,
        sender: msg.sender,
        arrival: msg.arrival,
        envid: msg.envid,
        ret: msg.ret,
        recipients: rcpts,
      });
      if (reply.status === "ok") {
        if (reply.queueId) {
          const what = op === "bounce" ? "non-delivery" : "delivery status";
          this.ctx.log.info(`${msg.id}: sender ${what} notification: ${reply.queueId}`);
        }
        return true;
      }
      this.ctx.log.warn(`${msg.id}: bounce service: ${reply.text}`);
    } catch (e) {
      this.ctx.log.warn(`${msg.id}: bounce service: ${(e as Error).message}`);
    }
    return false;
  }

  /** Every job of the message has finished: remove, defer or expire it. */
  async settle(msg: ActiveMessage): Promise<void> {
    const q = this.ctx.queue;
    try {
      if (msg.successNotices.length) await this.#notify(msg, "success", msg.successNotices);
      if (msg.deferred.size > 0) {
        const lifetime = (msg.sender === ""
          ? this.#cfg.time("bounce_queue_lifetime")
          : this.#cfg.time("maximal_queue_lifetime")) * 1000;
        // soft_bounce: no locally generated bounces, expired mail stays queued.
        const expire = msg.forceExpire || this.now() - msg.arrival >= lifetime;
        if (expire && !this.#cfg.bool("soft_bounce")) {
          const expired: BounceRecipient[] = [];
          for (const [i, st] of msg.deferred) {
            const r = msg.recipients[i];
            expired.push({
              address: r.address,
              orcpt: r.orcpt,
              action: "failed",
              // Postfix's forced expiry reports the deferral's own status.
              status: msg.forceExpire ? st.dsn : st.dsn.replace(/^4/, "5"),
              reason: `${st.reason}`,
              diagnostic: st.diagnostic,
              remoteMta: st.remoteMta,
            });
          }
          if (await this.#notify(msg, "bounce", expired)) {
            this.ctx.log.info(
              `${msg.id}: from=<${quoteAddress(msg.sender)}>, ` +
                `status=${msg.forceExpire ? "force-expired" : "expired"}, returned to sender`,
            );
            for (const i of msg.deferred.keys()) {
              msg.done.add(i);
            }
            msg.deferred.clear();
          }
        }
      }
      if (msg.deferred.size === 0) {
        Deno.removeSync(msg.path);
        if (msg.hadDeferLog) await Deno.remove(q.deferLog(msg.id)).catch(() => {});
        this.ctx.log.info(`${msg.id}: removed`);
      } else {
        await this.#defer(msg);
      }
    } catch (e) {
      this.ctx.log.error(`${msg.id}: cannot settle message: ${(e as Error).message}`);
      // Leave the file in active/: recovery at the next start picks it up.
    } finally {
      this.active.delete(msg.id);
    }
    if (this.active.size < this.#cfg.int("qmgr_message_active_limit")) {
      // Room again: more may be waiting in incoming/.
      if (this.active.size === 0) void this.scanIncoming();
    }
  }

  async #defer(msg: ActiveMessage): Promise<void> {
    const q = this.ctx.queue;
    const newlyDone = [...msg.done].filter((i) => !msg.recipients[i].done);
    if (newlyDone.length) {
      const f = await QueueFile.open(msg.path, { write: true });
      try {
        await f.markDone(newlyDone);
      } finally {
        f.close();
      }
    }
    const lines = [...msg.deferred.entries()].map(([i, st]) =>
      JSON.stringify({
        rcpt: msg.recipients[i].address,
        dsn: st.dsn,
        reason: st.reason,
        time: this.now(),
      })
    );
    const tmp = `${q.deferLog(msg.id)}.tmp`;
    await Deno.writeTextFile(tmp, lines.join("\n") + "\n");
    await Deno.rename(tmp, q.deferLog(msg.id));
    const age = this.now() - msg.arrival;
    const min = this.#cfg.time("minimal_backoff_time") * 1000;
    const max = this.#cfg.time("maximal_backoff_time") * 1000;
    const delay = Math.min(max, Math.max(min, age));
    const next = new Date(this.now() + delay);
    const dest = q.path("deferred", msg.id);
    await Deno.rename(msg.path, dest);
    await Deno.utime(dest, next, next);
  }
}
