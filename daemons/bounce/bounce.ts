/**
 * The bounce service logic, after Postfix's bounce(8): serve one
 * {@link BounceRequest} from qmgr by turning the reported recipients into
 * RFC 3464 delivery status notifications (lib/dsn) and queueing them through
 * cleanup. The reply is "ok" only after cleanup has made every required
 * notification durable; on any failure it is "error" and qmgr retries.
 *
 * Who gets what, as in Postfix:
 *
 * - op "bounce": a failure notice from `<>` to the original sender with the
 *   original message (RET=FULL, the default) or its headers (RET=HDRS). A
 *   message larger than bounce_size_limit is returned as headers only. With
 *   "bounce" in notify_classes a headers-only postmaster copy also goes to
 *   bounce_notice_recipient; its failure is logged, not retried.
 * - original sender `<>` (the failed mail was itself a notification): a
 *   double bounce, sent from double_bounce_sender@$myhostname to
 *   2bounce_notice_recipient when notify_classes has "bounce" or "2bounce",
 *   and otherwise discarded, as Postfix's default notify_classes does.
 * - original sender double_bounce_sender (a postmaster notice failed): never
 *   a triple bounce; logged as "undeliverable postmaster notification
 *   discarded" and answered "ok" with no queue id.
 * - op "delay": a headers-only delay notice to the sender; `<>` senders get
 *   a postmaster copy to delay_notice_recipient only with "delay" in
 *   notify_classes, as does every delay notice.
 * - op "success": a headers-only success notice to the sender (qmgr sends
 *   only NOTIFY=SUCCESS recipients); never for `<>` or double-bounce.
 * - op "verify": the delivery status report sendmail -bv asked for
 *   (verify_template, Action deliverable or undeliverable, headers only),
 *   to the sender whatever the recipients' NOTIFY says; none for `<>`.
 *
 * Recipients whose NOTIFY (read from the original queue file) excludes
 * FAILURE or DELAY are left out of the sender's notice; postmaster copies
 * report all recipients. A notice left with no recipients is not sent. If
 * the original queue file cannot be read, the notice is still sent without
 * it (Postfix's best effort). qmgr logs "sender non-delivery notification";
 * this module logs only postmaster copies and warnings.
 *
 * Not supported: VERP, the per-message bounce/defer
 * logs (qmgr passes the recipients in the request instead).
 *
 * Parameters: myhostname, myorigin (qualifies notice recipients), mail_name
 * (Postfix), double_bounce_sender (double-bounce), bounce_notice_recipient
 * (postmaster), 2bounce_notice_recipient (postmaster), delay_notice_recipient
 * (postmaster), notify_classes (resource, software), bounce_size_limit
 * (50000; 0 means no limit), header_size_limit (102400), delay_warning_time
 * (0h), maximal_queue_lifetime (5d), queue_directory, bounce_template_file
 * (empty: the built-in templates; its text comes with the configuration, and
 * validateConfig has checked it) and the parameters its text names.
 */
import { quoteAddress, splitAddress } from "../../lib/address/mod.ts";
import { concat } from "../../lib/bytes/mod.ts";
import type { BounceRecipient, BounceReply, BounceRequest } from "../../lib/bounce/client.ts";
import { type CleanupEnvelope, submitMessage } from "../../lib/cleanup/client.ts";
import type { Config } from "../../lib/config/mod.ts";
import { buildDsn, type DsnInput, type DsnRecipient } from "../../lib/dsn/mod.ts";
import { expandTemplateText } from "../../lib/dsn/template.ts";
import { bounceTemplates, templateParam, templateTimes } from "../../lib/config/bounce_template.ts";
import type { IpcConn } from "../../lib/ipc/mod.ts";
import { HeaderSplitter, messageIdStamp } from "../../lib/mime/mod.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";

/**
 * Queues one notification: obtains its queue id, builds the content for
 * that id (Received: and Message-Id name it), and resolves to the queue id
 * once cleanup reports the file durable. Rejects when it is not queued.
 */
export type Submit = (
  envelope: CleanupEnvelope,
  content: (queueId: string) => Uint8Array,
) => Promise<string>;

/** Options for {@link handleBounce}. */
export interface BounceOptions {
  /** Where notifications go; {@link cleanupSubmitter} in the daemon. */
  submit: Submit;
  /** Clock. @default () => new Date() */
  now?: () => Date;
  /** Time zone of the dates written, minutes east of UTC. @default the local zone */
  tzOffsetMinutes?: number;
}

/** What the bounce logic needs from its host. */
export type BounceContext = Pick<ServiceContext, "config" | "log">;

/** Postfix's bounce_size_limit default; the parameter is not in the table yet. */
const DEFAULT_BOUNCE_SIZE_LIMIT = 50000;

/** Time allowed for cleanup, well inside qmgr's 120s wait for our reply. */
const CLEANUP_TIMEOUT_MS = 60_000;

/** One notification to send. */
interface Notice {
  kind: DsnInput["kind"];
  /** Envelope sender of the notice: "" or the double-bounce address. */
  from: string;
  to: string;
  postmasterCopy: boolean;
  returnFull: boolean;
  recipients: BounceRecipient[];
  /** A failed critical notice fails the request; others are only logged. */
  critical: boolean;
}

/** The original message as returned in a notice. */
interface Original {
  headers: Uint8Array;
  /** The body, when the message fits within bounce_size_limit and was asked for. */
  body?: Uint8Array;
  /** NOTIFY of each queue file recipient, by address; absent when unknown. */
  notify: Map<string, string[] | undefined>;
}

/** Serves one bounce connection: one request, one reply. */
export async function serveBounce(conn: IpcConn, ctx: ServiceContext): Promise<void> {
  const req = await conn.recvMsg();
  const reply = await handleBounce(req, ctx, {
    submit: cleanupSubmitter(ctx.peer("cleanup")),
  });
  await conn.send(reply);
}

/** A {@link Submit} that queues through the cleanup service at `socket`. */
export function cleanupSubmitter(socket: string): Submit {
  return (envelope, content) =>
    submitMessage(socket, async (session) => {
      const bytes = content(session.queueId);
      session.envelope(envelope);
      await session.write(bytes);
    }, { timeoutMs: CLEANUP_TIMEOUT_MS });
}

/**
 * Handles one request: decides which notices are due, builds and submits
 * them. Never throws: every failure becomes an "error" reply.
 */
export async function handleBounce(
  request: unknown,
  ctx: BounceContext,
  opts: BounceOptions,
): Promise<BounceReply> {
  const bad = validate(request);
  if (bad) {
    ctx.log.warn(`bad bounce request: ${bad}`);
    return { status: "error", text: `bad bounce request: ${bad}` };
  }
  const req = request as BounceRequest;
  if (req.recipients.length === 0) return { status: "ok", queueId: "" };
  try {
    return await notify(req, ctx, opts);
  } catch (e) {
    const text = (e as Error).message;
    ctx.log.warn(`${req.queueId}: cannot send ${req.op} notification: ${text}`);
    return { status: "error", text };
  }
}

async function notify(
  req: BounceRequest,
  ctx: BounceContext,
  opts: BounceOptions,
): Promise<BounceReply> {
  const cfg = ctx.config;
  const myhostname = cfg.str("myhostname");
  const doubleBounce = `${cfg.str("double_bounce_sender")}@${myhostname}`;
  const sender = req.sender;

  if (sender !== "" && isDoubleBounce(sender, cfg)) {
    if (req.op !== "success" && req.op !== "verify") {
      ctx.log.warn(`${req.queueId}: undeliverable postmaster notification discarded`);
    }
    return { status: "ok", queueId: "" };
  }

  const notices = planNotices(req, cfg, doubleBounce);
  if (notices.length === 0) return { status: "ok", queueId: "" };

  // Config errors fail the request; only the queue file read is best effort.
  const limits = {
    body: notices.some((n) => n.returnFull) ? bounceSizeLimit(cfg) : -1,
    header: cfg.size("header_size_limit"),
  };
  const original = await readOriginal(req.path, limits).catch((e) => {
    ctx.log.warn(
      `${req.queueId}: cannot read original message ${req.path}: ${(e as Error).message}; ` +
        "sending the notification without it",
    );
    return { headers: new Uint8Array(0), notify: new Map() } as Original;
  });

  let queueId = "";
  for (const notice of notices) {
    const recipients = notice.postmasterCopy
      ? notice.recipients
      : notice.recipients.filter((r) =>
        req.op === "verify" || wantsNotice(original.notify.get(r.address), req.op)
      );
    if (recipients.length === 0) continue;
    const send = () => submitNotice(req, ctx, opts, notice, recipients, original);
    if (notice.critical) {
      const id = await send();
      queueId ||= id;
      if (notice.postmasterCopy) {
        ctx.log.info(`${req.queueId}: postmaster ${what(req.op)} notification: ${id}`);
      }
    } else {
      try {
        const id = await send();
        ctx.log.info(`${req.queueId}: postmaster ${what(req.op)} notification: ${id}`);
      } catch (e) {
        ctx.log.warn(
          `${req.queueId}: postmaster notice failed while ${
            req.op === "delay" ? "warning" : "bouncing to"
          } ${quoteAddress(sender)}: ${(e as Error).message}`,
        );
      }
    }
  }
  return { status: "ok", queueId };
}

function what(op: BounceRequest["op"]): string {
  return op === "bounce" ? "non-delivery" : op === "delay" ? "delay" : "delivery status";
}

/** The notices one request calls for, sender's first. */
function planNotices(req: BounceRequest, cfg: Config, doubleBounce: string): Notice[] {
  const classes = new Set(cfg.list("notify_classes").map((c) => c.toLowerCase()));
  const origin = cfg.str("myorigin");
  const qualify = (a: string) => (a.includes("@") ? a : `${a}@${origin}`);
  const kind = req.op === "bounce" ? "failure" : req.op;
  const toSender: Notice = {
    kind,
    from: "",
    to: req.sender,
    postmasterCopy: false,
    // Postfix returns the whole message unless RET=HDRS; delay and success
    // notices always carry headers only.
    // REQUIRETLS (RFC 8689): the content must not travel where TLS is not required.
    returnFull: req.op === "bounce" && req.ret?.toUpperCase() !== "HDRS" && !req.requiretls,
    recipients: req.recipients,
    critical: true,
  };
  const toPostmaster = (param: string, critical: boolean): Notice => ({
    kind,
    from: doubleBounce,
    to: qualify(optionalStr(cfg, param, "postmaster")),
    postmasterCopy: true,
    // Postfix asks for the full message in a double bounce (lib/dsn writes
    // postmaster copies with headers only).
    returnFull: req.sender === "" && req.op === "bounce",
    recipients: req.recipients,
    critical,
  });

  switch (req.op) {
    case "bounce":
      if (req.sender === "") {
        return classes.has("bounce") || classes.has("2bounce")
          ? [toPostmaster("2bounce_notice_recipient", true)]
          : [];
      }
      return classes.has("bounce")
        ? [toSender, toPostmaster("bounce_notice_recipient", false)]
        : [toSender];
    case "delay":
      if (req.sender === "") {
        return classes.has("delay") ? [toPostmaster("delay_notice_recipient", true)] : [];
      }
      return classes.has("delay")
        ? [toSender, toPostmaster("delay_notice_recipient", false)]
        : [toSender];
    case "success":
    case "verify":
      return req.sender === "" ? [] : [toSender];
  }
}

/** RFC 3461: no NOTIFY means failures and delays are reported (Postfix "compat"). */
function wantsNotice(notify: string[] | undefined, op: BounceRequest["op"]): boolean {
  if (op === "success" || !notify || notify.length === 0) return true;
  const upper = notify.map((n) => n.toUpperCase());
  return upper.includes(op === "bounce" ? "FAILURE" : "DELAY");
}

/** The sender is our double-bounce address (any of our domains, or unqualified). */
function isDoubleBounce(sender: string, cfg: Config): boolean {
  const { local, domain } = splitAddress(sender);
  if (local.toLowerCase() !== cfg.str("double_bounce_sender").toLowerCase()) return false;
  const d = domain.toLowerCase().replace(/\.$/, "");
  return d === "" || d === cfg.str("myhostname").toLowerCase() ||
    d === cfg.str("myorigin").toLowerCase();
}

/** A parameter Postfix has but the parameter table may not: its default when unset. */
function optionalStr(cfg: Config, name: string, fallback: string): string {
  return cfg.raw(name) === undefined ? fallback : cfg.str(name);
}

function bounceSizeLimit(cfg: Config): number {
  return cfg.raw("bounce_size_limit") === undefined
    ? DEFAULT_BOUNCE_SIZE_LIMIT
    : cfg.size("bounce_size_limit");
}

/**
 * Reads the original's header section and, when wanted (`limits.body` is
 * not -1) and within bounce_size_limit (0: no limit), its body without the
 * separating empty line. Like
 * Postfix, a message over the limit is returned as headers only rather than
 * cut, so that its MIME structure stays intact.
 */
async function readOriginal(
  path: string,
  limits: { body: number; header: number },
): Promise<Original> {
  const limit = limits.body;
  const qf = await QueueFile.open(path);
  try {
    const notify = new Map(qf.head.recipients.map((r) => [r.address, r.notify]));
    const splitter = new HeaderSplitter({ maxBytes: limits.header });
    let headers: Uint8Array | undefined;
    let keepBody = limit >= 0;
    const body: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of qf.content()) {
      total += chunk.length;
      if (limit > 0 && total > limit) keepBody = false;
      if (!headers) {
        const r = splitter.push(chunk);
        if (r.done) {
          headers = concat(r.headers!.map((h) => h.raw));
          if (keepBody) body.push(r.rest!.slice());
        }
      } else if (keepBody) {
        body.push(chunk);
      }
      if (headers && !keepBody) break;
    }
    if (!headers) {
      const end = splitter.end();
      headers = concat(end.headers.map((h) => h.raw));
      if (keepBody) body.push(end.rest);
    }
    return { headers, body: keepBody ? dropSeparator(concat(body)) : undefined, notify };
  } finally {
    qf.close();
  }
}

/** Removes the empty line that separates header and body. */
function dropSeparator(rest: Uint8Array): Uint8Array {
  if (rest[0] === 0x0d && rest[1] === 0x0a) return rest.subarray(2);
  if (rest[0] === 0x0a) return rest.subarray(1);
  return rest;
}

async function submitNotice(
  req: BounceRequest,
  ctx: BounceContext,
  opts: BounceOptions,
  notice: Notice,
  recipients: BounceRecipient[],
  original: Original,
): Promise<string> {
  const cfg = ctx.config;
  const myhostname = cfg.str("myhostname");
  const date = (opts.now ?? (() => new Date()))();
  const dsnRecipients = recipients.map((r) => dsnRecipient(r, req, ctx));
  const template = bounceTemplates(cfg)[notice.kind];
  const input: Omit<DsnInput, "messageId" | "dsnQueueId"> = {
    kind: notice.kind,
    reportingMta: myhostname,
    mailName: cfg.str("mail_name"),
    queueId: req.queueId,
    arrivalDate: new Date(req.arrival),
    envId: req.envid || undefined,
    originalSender: req.sender,
    recipient: notice.to,
    from: `MAILER-DAEMON@${myhostname}`,
    recipients: dsnRecipients,
    originalHeaders: original.headers,
    originalBody: notice.returnFull ? original.body : undefined,
    returnFull: notice.returnFull,
    date,
    postmasterCopy: notice.postmasterCopy,
    delayWarningTime: cfg.time("delay_warning_time"),
    maximalQueueLifetime: cfg.time("maximal_queue_lifetime"),
    tzOffsetMinutes: opts.tzOffsetMinutes ?? -date.getTimezoneOffset(),
    template: {
      ...template,
      text: expandTemplateText(template, templateParam(cfg), templateTimes(cfg)),
    },
  };
  return await opts.submit(
    {
      sender: notice.from,
      recipients: [{ address: notice.to }],
      attrs: {
        origin: "bounce",
        dsnKind: req.op,
        ...(req.requiretls && notice.from === "" ? { requiretls: true } : {}),
      },
      arrival: date.getTime(),
    },
    (queueId) =>
      buildDsn({
        ...input,
        dsnQueueId: queueId,
        messageId: `${messageIdStamp(date)}.${queueId}@${myhostname}`,
      }),
  );
}

const DEFAULT_STATUS = {
  bounce: "5.0.0",
  delay: "4.0.0",
  success: "2.0.0",
  verify: "5.0.0",
} as const;

/** Maps a reported recipient; a malformed status is replaced rather than retried forever. */
function dsnRecipient(r: BounceRecipient, req: BounceRequest, ctx: BounceContext): DsnRecipient {
  let status = r.status;
  if (!/^[245]\.\d{1,3}\.\d{1,3}$/.test(status)) {
    status = DEFAULT_STATUS[req.op];
    ctx.log.warn(
      `${req.queueId}: bad status "${r.status}" for <${quoteAddress(r.address)}>; using ${status}`,
    );
  }
  return {
    address: r.address,
    originalRecipient: r.orcpt || undefined,
    action: r.action,
    status,
    diagnostic: r.diagnostic || undefined,
    remoteMta: r.remoteMta || undefined,
    reason: r.reason,
  };
}

const OPS = new Set(["bounce", "delay", "success", "verify"]);
const ACTIONS = new Set([
  "failed",
  "delayed",
  "delivered",
  "relayed",
  "deliverable",
  "undeliverable",
]);

/** Checks the shape of a request from the wire; returns what is wrong, or "". */
function validate(req: unknown): string {
  if (typeof req !== "object" || req === null) return "not an object";
  const r = req as Record<string, unknown>;
  if (!OPS.has(r.op as string)) return `unknown op "${r.op}"`;
  for (const k of ["queueId", "path", "sender"]) {
    if (typeof r[k] !== "string") return `${k} must be a string`;
  }
  if (r.queueId === "" || r.path === "") return "empty queueId or path";
  if (typeof r.arrival !== "number" || !Number.isFinite(r.arrival)) return "bad arrival";
  if (r.requiretls !== undefined && r.requiretls !== true) return "requiretls must be true";
  for (const k of ["envid", "ret"]) {
    if (r[k] !== undefined && r[k] !== null && typeof r[k] !== "string") {
      return `${k} must be a string`;
    }
  }
  if (!Array.isArray(r.recipients)) return "recipients must be an array";
  for (const x of r.recipients) {
    const rc = x as Record<string, unknown> | null;
    if (
      typeof rc !== "object" || rc === null || typeof rc.address !== "string" ||
      typeof rc.status !== "string" || typeof rc.reason !== "string" ||
      !ACTIONS.has(rc.action as string)
    ) {
      return "bad recipient";
    }
  }
  return "";
}
