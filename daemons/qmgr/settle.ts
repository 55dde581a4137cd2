/**
 * Settling messages in the active queue: recording each recipient's
 * outcome as deliveries finish, asking the bounce service for
 * notifications, and, once every delivery request of a message has
 * finished, writing the result to the queue: the file is removed when
 * every recipient is done; otherwise the recipients delivered are marked
 * done in place, the deferral reasons written to defer/<id>, and the file
 * moved to deferred/ with its next attempt time as its mtime; past its
 * lifetime (or marked by postsuper -e/-f) it is returned to the sender.
 *
 * Backoff, as Postfix's qmgr_active.c: the next attempt is as far in the
 * future as the message is old, between minimal_backoff_time and
 * maximal_backoff_time, so the interval doubles with each deferral (300s,
 * 600s, 1200s, ... up to 4000s by default).
 *
 * Delay warnings: when delay_warning_time is not 0 and a message that is
 * deferred (not expired) is older than that, bounce is asked once for a
 * delay notice listing the deferred recipients (it honours each
 * recipient's NOTIFY: only DELAY, or no NOTIFY, gets one to the sender;
 * NEVER none), logged "sender delay notification: ID"; the queue file's
 * DELAY_WARNED_MODE bit records that it went out, so neither a later
 * deferral nor a restart repeats it. When bounce cannot be reached the
 * warning is tried again at the next deferral.
 *
 * Verification (sendmail -bv; the queue file's `verify` attribute): the
 * agents report what they would do, and every recipient is done after one
 * attempt, whatever its status, as in Postfix (a deferral is reported
 * "undeliverable", not retried). Once all are in, bounce is asked for one
 * report to the sender ("verify": Action deliverable or undeliverable,
 * "delivery via RELAY: " before each reason, as Postfix's trace) and the
 * file is removed; if bounce cannot take it, the message is deferred and
 * verified again later.
 *
 * A recipient is marked done in the queue file only when others remain
 * (a file with none left is removed), and only after the outcome is final
 * (delivered, or its bounce durably queued): a crash repeats a delivery,
 * never loses one (DESIGN.md invariant 2).
 *
 * Parameters: minimal_backoff_time (300s), maximal_backoff_time (4000s),
 * maximal_queue_lifetime (5d), bounce_queue_lifetime (5d),
 * delay_warning_time (0h), soft_bounce (no).
 */
import { quoteAddress } from "../../lib/address/mod.ts";
import type { BounceRecipient, BounceRequest } from "../../lib/bounce/client.ts";
import { requestBounce } from "../../lib/bounce/client.ts";
import {
  delayFields,
  deliveryDelays,
  missingStatus,
  type RecipientStatus,
  statusWord,
} from "../../lib/deliver/mod.ts";
import {
  DELAY_WARNED_MODE,
  delayWarned,
  QueueFile,
  type StoredRecipient,
} from "../../lib/queue/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";

/** A message in the active queue. */
export interface ActiveMessage {
  id: string;
  path: string;
  sender: string;
  arrival: number;
  activeAt: number;
  envid?: string;
  ret?: string;
  /** REQUIRETLS (RFC 8689): the agents and bounce are told. */
  requiretls?: true;
  recipients: StoredRecipient[];
  /** Delivery requests (and qmgr's own decisions) not yet finished. */
  pendingJobs: number;
  done: Set<number>;
  deferred: Map<number, RecipientStatus>;
  /** Successful deliveries whose sender asked for NOTIFY=SUCCESS. */
  successNotices: BounceRecipient[];
  /** Came from deferred/ (or was recovered), so defer/<id> may exist. */
  hadDeferLog: boolean;
  /** postsuper -e/-f marked it: returned to the sender, not delivered. */
  forceExpire?: boolean;
  /** The queue file's mode at activation (DELAY_WARNED_MODE, FORCE_EXPIRE_MODE). */
  mode: number | null;
  /** sendmail -bv: verified, not delivered (see the module comment). */
  verify?: true;
  /** A verification's report so far: one entry per destination. */
  report?: BounceRecipient[];
}

/** Settles messages; see the module comment. */
export class Settler {
  constructor(
    readonly ctx: ServiceContext,
    readonly now: () => number,
    /** Called once a message has left the active queue (or failed to). */
    readonly onSettled: (msg: ActiveMessage) => void,
  ) {}

  /**
   * One delivery request (or a decision qmgr made itself) finished with
   * these statuses: records them, asks for the bounce of what failed, and
   * settles the message when it was its last request. A recipient without
   * a status is deferred ("no status from delivery agent").
   */
  async finish(
    msg: ActiveMessage,
    recipients: StoredRecipient[],
    statuses: RecipientStatus[],
  ): Promise<void> {
    const byIndex = new Map(statuses.map((s) => [s.index, s]));
    if (msg.verify) {
      for (const r of recipients) this.#record(msg, r, byIndex.get(r.index));
      msg.pendingJobs--;
      if (msg.pendingJobs === 0) await this.settle(msg);
      return;
    }
    const bounced: BounceRecipient[] = [];
    const bouncedIdx: number[] = [];
    for (const r of recipients) {
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
      if (await this.notify(msg, "bounce", bounced)) {
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

  /** A verified recipient: done whatever its status, its destinations added to the report. */
  #record(msg: ActiveMessage, r: StoredRecipient, st: RecipientStatus | undefined): void {
    st ??= missingStatus(r.index);
    msg.done.add(r.index);
    const entries = st.trace?.length ? st.trace : [{ ...st, address: r.address, orcpt: r.orcpt }];
    for (const e of entries) {
      msg.report!.push({
        address: e.address,
        orcpt: e.orcpt,
        action: e.status === "sent" ? "deliverable" : "undeliverable",
        status: e.dsn,
        // Postfix's trace text names the agent or server that answered.
        reason: e.relay && e.relay !== "none" ? `delivery via ${e.relay}: ${e.reason}` : e.reason,
        diagnostic: e.diagnostic,
        remoteMta: e.remoteMta,
      });
    }
  }

  /**
   * A verification is over: the report goes to the sender and the message
   * is removed. When bounce cannot take the report, every recipient is
   * deferred and verified again at the next attempt.
   */
  async #report(msg: ActiveMessage): Promise<void> {
    if (await this.notify(msg, "verify", msg.report!)) {
      await this.#remove(msg);
      return;
    }
    for (const r of msg.recipients) {
      if (r.done) continue;
      msg.done.delete(r.index);
      msg.deferred.set(r.index, {
        index: r.index,
        status: "deferred",
        dsn: "4.3.0",
        reason: "bounce service unavailable; will retry",
        relay: "none",
      });
    }
    msg.report = [];
    await this.#defer(msg);
  }

  /** Asks bounce for a notification; true once it is durably queued (or not wanted). */
  async notify(
    msg: ActiveMessage,
    op: BounceRequest["op"],
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
        ...(msg.requiretls ? { requiretls: true as const } : {}),
        recipients: rcpts,
      });
      if (reply.status === "ok") {
        if (reply.queueId) {
          const what = op === "bounce"
            ? "non-delivery"
            : op === "delay"
            ? "delay"
            : "delivery status";
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

  /** Every request of the message has finished: remove, defer or expire it. */
  async settle(msg: ActiveMessage): Promise<void> {
    const cfg = this.ctx.config;
    try {
      if (msg.verify) {
        await this.#report(msg);
        return;
      }
      if (msg.successNotices.length) await this.notify(msg, "success", msg.successNotices);
      let expired = false;
      if (msg.deferred.size > 0) {
        const lifetime = (msg.sender === ""
          ? cfg.time("bounce_queue_lifetime")
          : cfg.time("maximal_queue_lifetime")) * 1000;
        // soft_bounce: no locally generated bounces, expired mail stays queued.
        expired = msg.forceExpire === true || this.now() - msg.arrival >= lifetime;
        if (expired && !cfg.bool("soft_bounce")) {
          await this.#expire(msg);
        }
      }
      if (msg.deferred.size === 0) {
        await this.#remove(msg);
      } else {
        if (!expired) await this.#delayWarning(msg);
        await this.#defer(msg);
      }
    } catch (e) {
      this.ctx.log.error(`${msg.id}: cannot settle message: ${(e as Error).message}`);
      // Left in active/: recovery at the next start picks it up.
    } finally {
      this.onSettled(msg);
    }
  }

  /**
   * Every recipient is done: the queue file (and its defer log) go. The
   * unlink is a synchronous call: on the thread pool it costs qmgr about
   * 40 us more CPU than it blocks (scripts/bench/fs_ops.ts).
   */
  // deno-lint-ignore require-await -- async on purpose: failures reject, never throw
  async #remove(msg: ActiveMessage): Promise<void> {
    Deno.removeSync(msg.path);
    if (msg.hadDeferLog) {
      try {
        Deno.removeSync(this.ctx.queue.deferLog(msg.id));
      } catch {
        // gone already
      }
    }
    this.ctx.log.info(`${msg.id}: removed`);
  }

  /** Returns the deferred recipients to the sender; they are done once bounce has queued it. */
  async #expire(msg: ActiveMessage): Promise<void> {
    const expired: BounceRecipient[] = [];
    for (const [i, st] of msg.deferred) {
      const r = msg.recipients[i];
      expired.push({
        address: r.address,
        orcpt: r.orcpt,
        action: "failed",
        // Expired or forced, Postfix reports the deferral's own status (live
        // Postfix 3.7: "Action: failed", "Status: 4.4.1").
        status: st.dsn,
        reason: st.reason,
        diagnostic: st.diagnostic,
        remoteMta: st.remoteMta,
      });
    }
    if (await this.notify(msg, "bounce", expired)) {
      this.ctx.log.info(
        `${msg.id}: from=<${quoteAddress(msg.sender)}>, ` +
          `status=${msg.forceExpire ? "force-expired" : "expired"}, returned to sender`,
      );
      for (const i of msg.deferred.keys()) msg.done.add(i);
      msg.deferred.clear();
    }
  }

  /** The one delay warning, when delay_warning_time has passed (see the module comment). */
  async #delayWarning(msg: ActiveMessage): Promise<void> {
    const after = this.ctx.config.time("delay_warning_time") * 1000;
    if (after <= 0 || delayWarned(msg.mode) || this.now() - msg.arrival < after) return;
    const delayed: BounceRecipient[] = [...msg.deferred].map(([i, st]) => ({
      address: msg.recipients[i].address,
      orcpt: msg.recipients[i].orcpt,
      action: "delayed",
      status: st.dsn,
      reason: st.reason,
      diagnostic: st.diagnostic,
      remoteMta: st.remoteMta,
    }));
    if (!(await this.notify(msg, "delay", delayed))) return;
    const mode = ((msg.mode ?? 0o600) & 0o7777) | DELAY_WARNED_MODE;
    try {
      await Deno.chmod(msg.path, mode);
      msg.mode = mode;
    } catch (e) {
      // The message is deferred all the same; the warning may go out once more.
      this.ctx.log.warn(`${msg.id}: cannot record the delay warning: ${(e as Error).message}`);
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
    const next = new Date(this.now() + backoffMs(this.now() - msg.arrival, this.#backoff));
    // The time first: a crash between the two leaves it due, never late.
    await Deno.utime(msg.path, next, next);
    // Not durable: lost in a crash, it is in active/, which recovery requeues.
    await q.move(msg.id, "active", "deferred", { durable: false });
  }

  get #backoff(): { minMs: number; maxMs: number } {
    const cfg = this.ctx.config;
    return {
      minMs: cfg.time("minimal_backoff_time") * 1000,
      maxMs: cfg.time("maximal_backoff_time") * 1000,
    };
  }
}

/**
 * The delay before the next attempt of a message this old (ms): its age,
 * within the minimal and maximal backoff times (Postfix's qmgr_active.c).
 */
export function backoffMs(ageMs: number, b: { minMs: number; maxMs: number }): number {
  return Math.min(b.maxMs, Math.max(b.minMs, ageMs));
}

/**
 * Logs a recipient's status that qmgr decided itself (a dead destination,
 * a resolver failure, forced expiry), in a delivery agent's words: the
 * delays are the time before the active queue and the time in it, as
 * Postfix's "retry" agent logs them.
 */
export function logDecision(
  ctx: ServiceContext,
  msg: ActiveMessage,
  now: number,
  address: string,
  st: RecipientStatus,
): void {
  const delays = delayFields(
    deliveryDelays(msg, now, now, now),
    ctx.config.int("delay_logging_resolution_limit"),
  );
  ctx.log.info(
    `${msg.id}: to=<${quoteAddress(address)}>, relay=none, ${delays}, ` +
      `dsn=${st.dsn}, status=${statusWord(msg, st)} (${st.reason})`,
  );
}
