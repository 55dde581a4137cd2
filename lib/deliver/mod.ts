/**
 * The delivery request protocol between qmgr and the delivery agents
 * (smtp, local, discard, error), and the agent-side skeleton that serves
 * it. qmgr connects to `private/<transport>`, sends a
 * {@link DeliveryRequest}, and reads one {@link DeliveryResult} with a
 * status for every recipient it sent; it may reuse the connection for the
 * next request. The agent opens the queue file
 * read-only; it never marks recipients done (qmgr does, after the reply).
 */
import { quoteAddress } from "../address/mod.ts";
import { splitOrcpt } from "../dsn/mod.ts";
import { type IpcConn, IpcError } from "../ipc/mod.ts";
import { QueueFile } from "../queue/mod.ts";
import type { DeliveryOutcome } from "../outcome/mod.ts";
export { type DeliveryOutcome, failureStatus } from "../outcome/mod.ts";
import type { ServiceContext } from "../service/mod.ts";

/** One recipient of a request. */
export interface DeliveryRecipient {
  /** Index in the queue file. */
  index: number;
  address: string;
  /** The original recipient as the queue file holds it (lib/dsn splitOrcpt). */
  orcpt?: string;
  notify?: string[];
}

/** What qmgr asks an agent to do. */
export interface DeliveryRequest {
  op: "deliver";
  queueId: string;
  /** Absolute path of the queue file (in active/). */
  path: string;
  sender: string;
  /** Transport name (master.cf service) and next hop, as resolved by qmgr. */
  transport: string;
  nexthop: string;
  recipients: DeliveryRecipient[];
  /** Arrival time, ms since the epoch, for delay= in logs. */
  arrival: number;
  /** When qmgr took the message from incoming/, ms since the epoch (delays= b). */
  activeAt: number;
  /** DSN ENVID/RET passthrough. */
  envid?: string;
  ret?: string;
  /** REQUIRETLS (RFC 8689): authenticated TLS to a server that offers REQUIRETLS, or no delivery. */
  requiretls?: true;
  /**
   * Address verification (sendmail -bv; Postfix's DEL_REQ_FLAG_USR_VRFY):
   * the agent does everything short of delivering and reports what it
   * would do instead (smtp and lmtp end the session after RCPT; local
   * expands aliases and .forward files and names each destination,
   * "delivers to mailbox", "forwards to X"), writing nothing, running
   * nothing and sending no mail. Statuses are logged as
   * `status=deliverable` / `status=undeliverable`; qmgr turns them into a
   * report to the sender and never retries them.
   */
  verify?: true;
}

/**
 * One destination found for a recipient during address verification: the
 * recipient itself, or an address, mailbox, file or command its aliases or
 * .forward expanded to. `orcpt` is the recipient it was expanded from (in
 * {@link DeliveryRecipient.orcpt} form).
 */
export interface TraceEntry extends DeliveryOutcome {
  address: string;
  orcpt?: string;
  relay: string;
  diagnostic?: string;
  remoteMta?: string;
}

/**
 * The outcome for one recipient (sent: done; deferred: try later; bounced:
 * permanent failure). The reason is the human text for logs and DSNs, e.g.
 * "250 2.0.0 Ok: queued as X" or "connect to ...: Connection refused".
 */
export interface RecipientStatus extends DeliveryOutcome {
  index: number;
  /** Where it went: "127.0.0.1[127.0.0.1]:2526", "local", "none". */
  relay: string;
  /** For DSNs: the remote server's reply ("smtp; 550 5.1.1 ...") when there was one. */
  diagnostic?: string;
  /** Remote MTA name for DSNs. */
  remoteMta?: string;
  /**
   * For a success notice: "delivered" (final delivery: virtual, pipe with
   * flag X) or "relayed". Absent: qmgr decides from `relay`.
   */
  action?: "delivered" | "relayed";
  /**
   * The next hop failed as a whole before any mail transaction: no address
   * could be reached or no session got through its greeting, EHLO/LHLO,
   * TLS or AUTH (Postfix's "site" failure). qmgr counts such a delivery as
   * a failed one for the destination's concurrency feedback and dead
   * destination detection, whatever `relay` names. Absent: qmgr takes a
   * deferral with relay "none" as one.
   */
  site?: true;
  /**
   * Address verification only: one entry per destination the recipient
   * expanded to (local's aliases and .forward files), each reported on its
   * own line. Absent: the status itself is the recipient's one entry.
   */
  trace?: TraceEntry[];
}

/** What the agent answers. */
export interface DeliveryResult {
  recipients: RecipientStatus[];
}

/** A delivery function: given the request and the open queue file, a status per recipient. */
export type DeliverFn = (
  req: DeliveryRequest,
  file: QueueFile,
  ctx: ServiceContext,
) => Promise<RecipientStatus[]>;

/** A delivery function that never looks at the message (discard, error). */
export type EnvelopeDeliverFn = (
  req: DeliveryRequest,
  file: null,
  ctx: ServiceContext,
) => Promise<RecipientStatus[]>;

/** How an agent serves requests. */
export interface ServeOptions {
  /** The agent reads the queue file (discard and error do not). @default true */
  readsContent?: boolean;
  /**
   * The agent honours {@link DeliveryRequest.verify}. An agent that does
   * not is never given a verification request: it could deliver the probe.
   * Such requests are answered undeliverable instead. @default false
   */
  verifies?: boolean;
}

/**
 * Serves delivery requests on one connection: validates the request, opens
 * the queue file, runs `deliver`, and replies. Any recipient the function
 * forgot is reported deferred, so nothing is silently dropped; a failure to
 * open the file defers everything.
 */
export async function serveDelivery(
  conn: IpcConn,
  ctx: ServiceContext,
  deliver: DeliverFn,
): Promise<void>;
/**
 * Agents that only need the envelope (discard, error) never open the
 * queue file, so their sandbox needs no access to the queue at all.
 */
export async function serveDelivery(
  conn: IpcConn,
  ctx: ServiceContext,
  deliver: EnvelopeDeliverFn,
  opts: ServeOptions & { readsContent: false },
): Promise<void>;
export async function serveDelivery(
  conn: IpcConn,
  ctx: ServiceContext,
  deliver: DeliverFn,
  opts: ServeOptions,
): Promise<void>;
export async function serveDelivery(
  conn: IpcConn,
  ctx: ServiceContext,
  deliver: DeliverFn | EnvelopeDeliverFn,
  opts: ServeOptions = {},
): Promise<void> {
  // qmgr keeps connections open and sends one request after another.
  for (;;) {
    const f = await conn.recv();
    if (f === null) return;
    if (f.kind !== "msg") throw new IpcError("delivery request expected");
    await serveOne(conn, ctx, deliver, opts, f.msg as unknown as DeliveryRequest);
  }
}

async function serveOne(
  conn: IpcConn,
  ctx: ServiceContext,
  deliver: DeliverFn | EnvelopeDeliverFn,
  opts: ServeOptions,
  req: DeliveryRequest,
): Promise<void> {
  if (req.op !== "deliver" || !Array.isArray(req.recipients) || typeof req.path !== "string") {
    await conn.send({ error: "bad delivery request" });
    return;
  }
  let statuses: RecipientStatus[];
  let file: QueueFile | null = null;
  try {
    if (req.verify && !opts.verifies) {
      statuses = req.recipients.map((r) => ({
        index: r.index,
        status: "bounced",
        dsn: "5.3.3",
        reason: `delivery agent ${ctx.args.service} does not support address verification`,
        relay: "none",
      }));
      const delays = deliveryDelays(req, Date.now(), Date.now(), Date.now());
      req.recipients.forEach((r, i) => logStatus(ctx, req, r, statuses[i], delays));
    } else if (opts.readsContent ?? true) {
      file = await QueueFile.open(req.path);
      statuses = await (deliver as DeliverFn)(req, file, ctx);
    } else {
      statuses = await (deliver as EnvelopeDeliverFn)(req, null, ctx);
    }
  } catch (e) {
    ctx.log.warn(`${req.queueId}: ${(e as Error).message}`);
    statuses = [];
    for (const r of req.recipients) {
      statuses.push({
        index: r.index,
        status: "deferred",
        dsn: "4.3.0",
        reason: `delivery agent error: ${(e as Error).message}`,
        relay: "none",
      });
    }
  } finally {
    file?.close();
  }
  const seen = new Set(statuses.map((s) => s.index));
  for (const r of req.recipients) if (!seen.has(r.index)) statuses.push(missingStatus(r.index));
  const soft = ctx.config.bool("soft_bounce");
  statuses = statuses.map((st) => softBounce(st, soft));
  await conn.send({ recipients: statuses } satisfies DeliveryResult);
}

/** The status of a recipient its agent did not report: deferred, to be tried again. */
export function missingStatus(index: number): RecipientStatus {
  return {
    index,
    status: "deferred",
    dsn: "4.3.0",
    reason: "delivery agent did not report this recipient",
    relay: "none",
  };
}

/**
 * Logs each recipient's status in request order, with the request's
 * delays (delivery started at `start`, connection ready at `connDone`),
 * and returns them; a recipient `result` lacks is {@link missingStatus}.
 * For the agents that decide per recipient and log as they finish (smtp,
 * lmtp).
 */
export function logStatuses(
  ctx: ServiceContext,
  req: DeliveryRequest,
  result: Map<number, RecipientStatus>,
  start: number,
  connDone: number,
): RecipientStatus[] {
  const delays = deliveryDelays(req, start, connDone, Date.now());
  return req.recipients.map((rcpt) => {
    const st = result.get(rcpt.index) ?? missingStatus(rcpt.index);
    logStatus(ctx, req, rcpt, st, delays);
    return st;
  });
}

/**
 * soft_bounce = yes: a permanent failure is reported, logged and handled as
 * a deferral (4.X.X), so the mail stays queued (Postfix's safety net).
 */
export function softBounce<T extends Pick<RecipientStatus, "status" | "dsn" | "trace">>(
  st: T,
  soft: boolean,
): T {
  if (!soft) return st;
  // A verification's entries say what the log lines say.
  const trace = st.trace?.map((e) => softBounce(e, soft));
  if (st.status !== "bounced") return trace ? { ...st, trace } : st;
  return { ...st, status: "deferred", dsn: st.dsn.replace(/^5/, "4"), ...(trace ? { trace } : {}) };
}

/**
 * A delivery's timings in ms: `total` since arrival and Postfix's four
 * `delays=a/b/c/d` parts (before the active queue, in it, connection
 * set-up, transmission).
 */
export interface Delays {
  total: number;
  parts: [number, number, number, number];
}

/** A delivery's {@link Delays}: started at `connStart`, connected at `connDone`, done at `end`. */
export function deliveryDelays(
  req: Pick<DeliveryRequest, "arrival" | "activeAt">,
  connStart: number,
  connDone: number,
  end: number,
): Delays {
  return {
    total: end - req.arrival,
    parts: [
      req.activeAt - req.arrival,
      connStart - req.activeAt,
      connDone - connStart,
      end - connDone,
    ],
  };
}

/**
 * Seconds as Postfix logs a delay (its format_tv with 2 significant
 * digits): 10 s and more whole, 1 to 10 s to a tenth, less than 1 s to two
 * significant digits but no more than `maxDigits` after the point
 * (delay_logging_resolution_limit); rounded half up, trailing zeros
 * dropped, below the resolution "0".
 */
export function formatSeconds(ms: number, maxDigits: number): string {
  const MILLION = 1_000_000;
  const SIG = 100; // 10 ** significant digits
  const t = Math.max(0, Math.round(ms * 1000)); // microseconds
  let sec = Math.floor(t / MILLION);
  let usec = t % MILLION;
  let res = MILLION / 10 ** Math.min(6, Math.max(0, maxDigits));
  if (res < MILLION) {
    if (sec > 0) {
      let n = 1;
      while (sec >= n && n <= SIG / 10) n *= 10;
      res = (MILLION / SIG) * n;
    } else {
      while (usec >= SIG * res) res *= 10;
    }
  }
  if (res > 1) {
    usec += res / 2;
    if (usec >= MILLION) {
      sec += 1;
      usec -= MILLION;
    }
  }
  let out = String(sec);
  if (usec >= res) {
    out += ".";
    for (let rem = usec, n = MILLION / 10; rem >= res && n > 0; n /= 10) {
      out += String(Math.floor(rem / n));
      rem %= n;
    }
  }
  return out;
}

/** `delay=X, delays=a/b/c/d` of a delivery log line. */
export function delayFields(d: Delays, maxDigits: number): string {
  const f = (ms: number) => formatSeconds(ms, maxDigits);
  return `delay=${f(d.total)}, delays=${d.parts.map(f).join("/")}`;
}

/** The status= word of a log line: verification reports deliverable or undeliverable. */
export function statusWord(req: Pick<DeliveryRequest, "verify">, st: RecipientStatus): string {
  if (!req.verify) return st.status;
  return st.status === "sent" ? "deliverable" : "undeliverable";
}

/**
 * Logs one recipient outcome the way Postfix delivery agents do, addresses
 * in their quoted external form (`to=<"a b"@example.com>`). `orig_to=` is
 * the address before rewriting, as in Postfix; a DSN ORCPT value (typed,
 * from the client) is not an address of ours and is not logged.
 */
export function logStatus(
  ctx: ServiceContext,
  req: DeliveryRequest,
  rcpt: DeliveryRecipient,
  st: RecipientStatus,
  delays: Delays,
): void {
  st = softBounce(st, ctx.config.bool("soft_bounce"));
  const orig = rcpt.orcpt && !splitOrcpt(rcpt.orcpt) &&
      rcpt.orcpt.toLowerCase() !== rcpt.address.toLowerCase()
    ? `, orig_to=<${quoteAddress(rcpt.orcpt)}>`
    : "";
  ctx.log.info(
    `${req.queueId}: to=<${quoteAddress(rcpt.address)}>${orig}, relay=${st.relay}, ` +
      `${delayFields(delays, ctx.config.int("delay_logging_resolution_limit"))}, dsn=${st.dsn}, ` +
      `status=${statusWord(req, st)} (${st.reason})`,
  );
}
