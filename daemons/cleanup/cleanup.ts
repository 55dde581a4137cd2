/**
 * The cleanup service pipeline: receive one message from smtpd, pickup or
 * bounce, canonicalize it, and write it durably into `incoming/` (or
 * `hold/`). The steps, in Postfix's order:
 *
 * 1. Envelope sender and recipients: rewrite local (lib/address
 *    rewriteAddress, trivial-rewrite's "local" context: source routes,
 *    bang paths, the percent hack, `@$myorigin` when append_at_myorigin =
 *    yes, `.$mydomain`, the trailing dot), sender_/recipient_canonical_maps,
 *    canonical_maps, masquerading, per *_classes (addresses.ts,
 *    rewrite.ts). sender_bcc_maps and recipient_bcc_maps (bcc.ts).
 * 2. Primary headers: header_checks / mime_header_checks (checks.ts), then
 *    the addresses of sender and recipient headers rewritten like the
 *    envelope (header_sender, header_recipient classes) when the message
 *    comes from a local client (Postfix's local_header_rewrite_clients
 *    default: local submission, loopback and $inet_interfaces addresses;
 *    remote clients' headers are not rewritten, remote_header_rewrite_domain
 *    being empty). With extractRecipients (sendmail -t), recipients from
 *    To/Cc/Bcc (with the NOTIFY sendmail -N gave, extractNotify), and Bcc
 *    removed. Missing Message-Id, Date and From added.
 * 3. Recipients expanded through virtual_alias_maps (virtual.ts), the
 *    BCC recipients (auto, always_bcc, header/body check BCC) added with
 *    NOTIFY=NEVER, duplicates removed (same address, domain
 *    case-insensitive), REDIRECT replaces them all.
 * 4. Body: body_checks per line (the first body_checks_size_limit bytes of
 *    each MIME part), part headers to mime_header_checks and attached
 *    message headers to nested_header_checks (lib/mime scan.ts). When any
 *    of these is set the queue file is started at the end of the message
 *    (the content is held in memory, at most message_size_limit), because
 *    a body line may still change the recipients (BCC, REDIRECT) or the
 *    queue (HOLD); otherwise content streams to disk.
 * smtpd's access-table actions (HOLD, DISCARD, REDIRECT, BCC, FILTER and
 * content_filter; envelope
 * `actions`) are merged with the content checks' as actions.ts says; when
 * smtpd_end_of_data_restrictions may add some (`actions.more`) the content
 * is held in memory (at most message_size_limit) until they arrive.
 * 5. Outcome: REJECT refuses with the check's reply; DISCARD answers
 *    success and keeps nothing; HOLD writes into `hold/` (qmgr is not
 *    woken); FILTER (the last one) is recorded in the queue file for qmgr.
 *    A table that cannot answer refuses the message with 451 4.3.0 and
 *    nothing is queued; an alias expansion over a limit with 451 4.6.0.
 *
 * Also: mail over `message_size_limit` (0: no limit) gets 552 5.3.4, more Received
 * headers than `hopcount_limit` 554 5.4.0; a header field longer than
 * header_size_limit is cut to it as Postfix does (the excess is discarded,
 * later fields stay header fields; lib/mime/headers.ts). Mail that cleanup's own daemons make (bounce) gets address
 * rewriting but no content checks and no automatic BCC, as Postfix's
 * internal mail. append_dot_mydomain is not implemented (reported by the
 * config layer).
 *
 * Parameters: myhostname, myorigin, append_at_myorigin (yes),
 * message_size_limit (10240000), header_size_limit (102400), line_length_limit (2048),
 * hopcount_limit (50), inet_interfaces, and the table parameters listed in
 * tables.ts (opened once per process).
 */
import type { Rejection } from "../../lib/outcome/mod.ts";
import { parseHeaderAddresses, splitAddress } from "../../lib/address/mod.ts";
import { rewriteAddress, type RewriteContext, rewriteContext } from "../../lib/resolve/mod.ts";
import type {
  ArcSealInput,
  CleanupEnvelope,
  CleanupResult,
  ContentEdit,
  MessageActions,
} from "../../lib/cleanup/client.ts";
import { mergeActions, messageActions } from "./actions.ts";
import { editContent, splitContent } from "./edits.ts";
import { DkimSigner, DkimSigningError, KeyCache } from "./dkim.ts";
import { type ArcSealSettings, arcSealSettings, arcSet } from "./arc.ts";
import {
  MilterChain,
  type MilterSettings,
  type MilterVerdict,
  parseMilterList,
  resolveMilterSettings,
} from "../../lib/milter/mod.ts";
import { type IpcConn } from "../../lib/ipc/mod.ts";
import { DictError } from "../../lib/maps/mod.ts";
import {
  findHeader,
  formatHeader,
  type HeaderField,
  HeaderSplitter,
  messageIdStamp,
  MimeScanner,
  rfc2822Date,
} from "../../lib/mime/mod.ts";
import { headerAddress } from "../../lib/address/mod.ts";
import { DirSyncer, newQueueId, QueueWriter, type Recipient } from "../../lib/queue/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import { AddressRewriter } from "./addresses.ts";
import { autoBcc, internalForm } from "./bcc.ts";
import { type CheckLogContext, type LineVerdict, MessageChecks } from "./checks.ts";
import { headerKind, isMimeHeader, rewriteHeaderAddresses } from "./rewrite.ts";
import { CleanupTables } from "./tables.ts";
import { ExpansionError } from "./virtual.ts";

class Rejected extends Error implements Rejection {
  override readonly name = "Rejected";
  constructor(
    readonly code: number,
    readonly dsn: string,
    text: string,
    /** Already logged (content checks log their own line). */
    readonly logged = false,
  ) {
    super(text);
  }

  get text(): string {
    return this.message;
  }
}

/** DISCARD: the client is told the message was queued; nothing was. */
class Discarded extends Error {
  override readonly name = "Discarded";
}

/** Key for duplicate elimination: domain case-folded, local part as is. */
function dupKey(address: string): string {
  const { local, domain } = splitAddress(address);
  return domain ? `${local}@${domain.toLowerCase()}` : local;
}

/** Removes duplicate recipients, keeping the first. */
export function dedupe(rcpts: Recipient[]): Recipient[] {
  const seen = new Set<string>();
  return rcpts.filter((r) => {
    const k = dupKey(r.address);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * Whether header addresses of this message are rewritten: Postfix's
 * local_header_rewrite_clients = permit_inet_interfaces (its default), with
 * remote_header_rewrite_domain empty. Local submission and internal mail
 * count as local.
 */
export function localHeaderContext(
  attrs: CleanupEnvelope["attrs"],
  inetInterfaces: string[],
): boolean {
  if (attrs?.xforward?.source) return attrs.xforward.source === "local"; // XFORWARD SOURCE
  if (!attrs || attrs.origin !== "smtpd" || !attrs.clientAddr) return true;
  const a = attrs.clientAddr.toLowerCase().replace(/^ipv6:/, "");
  if (/^127\./.test(a) || a === "::1" || /^::ffff:127\./.test(a)) return true;
  return inetInterfaces.some((i) => i.toLowerCase().replace(/^\[|\]$/g, "") === a);
}

const CRLF = new Uint8Array([0x0d, 0x0a]);
const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A header check's text for a field, as Postfix's mime_state builds it: the
 * lines joined with "\n", no final line end, and the obsolete "Name :"
 * form written "Name:".
 */
export function logicalHeader(raw: Uint8Array): string {
  return dec.decode(raw).replace(/\r?\n$/, "").replace(/\r?\n/g, "\n")
    .replace(/^([!-9;-~]+)[ \t]+:/, "$1:");
}

/** Per-process state shared by all cleanup connections. */
export class CleanupService {
  readonly syncer: DirSyncer;
  readonly holdSyncer: DirSyncer;
  #notifyTimer: ReturnType<typeof setTimeout> | null = null;
  #newIds: string[] = [];
  #tables: Promise<CleanupTables> | null = null;
  /** trivial-rewrite's local context, from the configuration (read once). */
  #rewrite: RewriteContext | null = null;
  /** DKIM signing (dkim.ts), made with the tables. */
  #signer: DkimSigner | null = null;
  /** Keys of DKIM signing and ARC sealing (dkim.ts). */
  readonly #keys = new KeyCache();

  /** non_smtpd_milters, resolved (the start refused a bad list: lib/config support.ts). */
  readonly milters: MilterSettings[];

  constructor(
    readonly ctx: ServiceContext,
    readonly notify: (ids: string[]) => Promise<void>,
  ) {
    this.syncer = new DirSyncer(ctx.queue.dir("incoming"), { keepOpen: true });
    this.holdSyncer = new DirSyncer(ctx.queue.dir("hold"), { keepOpen: true });
    const cfg = ctx.config;
    this.milters = parseMilterList(cfg.str("non_smtpd_milters")).map((e) =>
      resolveMilterSettings(e, (name) => cfg.str(name))
    );
  }

  /**
   * The tables, opened at the first message and kept for the life of the
   * process. A failed open is tried again with the next message.
   */
  tables(): Promise<CleanupTables> {
    this.#tables ??= CleanupTables.open(this.ctx.config, this.ctx.maps).catch(
      (e) => {
        this.#tables = null;
        throw e;
      },
    );
    return this.#tables;
  }

  /** Closes the tables and the queue folders kept open for syncs (at stop). */
  async close(): Promise<void> {
    const t = this.#tables;
    this.#tables = null;
    if (t) await (await t.catch(() => null))?.close();
    await this.syncer.close();
    await this.holdSyncer.close();
  }

  /**
   * Serves submissions on one connection, one after another, until the
   * client closes it or the exchange gets out of step.
   */
  async handle(conn: IpcConn): Promise<void> {
    for (;;) {
      const f = await conn.recv();
      if (f === null) return;
      if (f.kind !== "msg" || f.msg.op !== "open") {
        await conn.send({ status: "error", code: 451, dsn: "4.3.0", text: "bad cleanup request" });
        return;
      }
      if (!(await this.#one(conn))) return;
    }
  }

  /** One message; true when the connection is still in step for another. */
  async #one(conn: IpcConn): Promise<boolean> {
    const queueId = newQueueId();
    await conn.send({ queueId });
    const envMsg = await conn.recvMsg<CleanupEnvelope & { op: string }>();
    if (
      envMsg.op !== "envelope" || typeof envMsg.sender !== "string" ||
      !Array.isArray(envMsg.recipients)
    ) {
      await conn.send({ status: "error", code: 451, dsn: "4.3.0", text: "bad cleanup envelope" });
      return false;
    }
    let result: CleanupResult;
    let inStep = true;
    let queued: "incoming" | "hold" | null = null;
    try {
      queued = await this.#write(conn, queueId, envMsg);
      result = { status: "ok", queueId };
    } catch (e) {
      if (e instanceof Discarded) {
        result = { status: "ok", queueId };
      } else if (e instanceof Rejected) {
        result = { status: "error", code: e.code, dsn: e.dsn, text: e.message };
        if (!e.logged) this.ctx.log.info(`${queueId}: reject: ${e.message}`);
      } else {
        // The rest of this message may still be on the wire: end the connection.
        inStep = false;
        const msg = (e as Error).message;
        this.ctx.log.warn(`${queueId}: ${msg}`);
        const full = /No space left|ENOSPC|Disk quota/i.test(msg);
        result = {
          status: "error",
          code: full ? 452 : 451,
          dsn: full ? "4.3.1" : "4.3.0",
          text: full ? "Insufficient system storage" : "Error: queue file write error",
        };
      }
    }
    await conn.send(result);
    if (queued === "incoming") this.#scheduleNotify(queueId);
    return inStep;
  }

  /** Writes one message; returns the queue it went to. */
  async #write(
    conn: IpcConn,
    queueId: string,
    env: CleanupEnvelope,
  ): Promise<"incoming" | "hold"> {
    const cfg = this.ctx.config;
    const log = this.ctx.log;
    const rwContext = this.#rewrite ??= rewriteContext(cfg);
    const local = (a: string) => rewriteAddress(a, rwContext);
    // 0: no limit, as in Postfix (smtpd announces a bare SIZE).
    const sizeLimit = cfg.size("message_size_limit") || Infinity;
    const hopLimit = cfg.int("hopcount_limit");
    // header_size_limit per field, as Postfix; the section itself is bounded only by the
    // message size (over which the message is refused anyway), or 64 MiB with no size limit.
    const splitter = new HeaderSplitter({
      maxBytes: cfg.size("header_size_limit"),
      lineBytes: cfg.int("line_length_limit"),
      maxSectionBytes: Number.isFinite(sizeLimit) ? sizeLimit : 64 * 1024 * 1024,
    });
    let writer: QueueWriter | null = null;
    /** The recipients written, for postwarden_capture's log lines. */
    let queued: Recipient[] = [];
    let size = 0;
    let messageId = "";
    const internal = env.attrs?.origin === "bounce";

    /** A table failure or expansion limit as the refusal Postfix gives. */
    const refusal = (e: unknown): Rejected => {
      if (e instanceof DictError) {
        log.warn(`${queueId}: ${e.message} -- message not accepted, try again later`);
        return new Rejected(451, "4.3.0", "Error: queue file write error", true);
      }
      if (e instanceof ExpansionError) {
        return new Rejected(451, e.dsn, e.reason, true);
      }
      throw e;
    };

    let tables: CleanupTables;
    try {
      tables = await this.tables();
    } catch (e) {
      const r = refusal(e);
      await drain(conn);
      throw r;
    }
    const warn = (m: string) => log.warn(`${queueId}: ${m}`);
    const rewriter = new AddressRewriter(tables, local, warn);
    const attrs = env.attrs ?? {};
    // Postfix logs the client XFORWARD reported (its log_client_* attributes).
    const fwd = attrs.xforward;
    const logCtx: CheckLogContext = fwd
      ? {
        queueId,
        origin: `${fwd.name}[${fwd.addr}]`,
        sender: "",
        proto: fwd.protocol,
        helo: fwd.helo,
        info: (m) => log.info(m),
        warn: (m) => log.warn(m),
      }
      : {
        queueId,
        origin: attrs.origin === "smtpd"
          ? `${attrs.clientName ?? "unknown"}[${attrs.clientAddr ?? "unknown"}]`
          : attrs.origin
          ? "local"
          : "unknown",
        sender: "",
        proto: attrs.origin === "smtpd" ? attrs.protocol : undefined,
        helo: attrs.origin === "smtpd" ? attrs.helo : undefined,
        info: (m) => log.info(m),
        warn: (m) => log.warn(m),
      };
    const checks = new MessageChecks(internal ? tables.noChecks : tables.checks, logCtx);
    // smtpd's access-table actions (actions.ts): before DATA, and after it
    // when end-of-data restrictions may add some (`more`: content is held).
    const early = messageActions(env.actions);
    // non_smtpd_milters see mail that did not come over SMTP (not cleanup's own bounces,
    // as Postfix's internal_mail_filter_classes default): the content is held for them.
    const localMilters = this.milters.length > 0 && env.attrs?.origin !== "smtpd" && !internal;
    // DKIM signing: mail not from smtpd, and smtpd's when it says its client may sign.
    const signer = this.#signer ??= new DkimSigner(
      tables.dkimSigning,
      cfg.str("postwarden_dkim_key_directory"),
      this.#keys,
    );
    const sign = !signer.off && (env.attrs?.origin !== "smtpd" || env.dkimSign === true);
    let late: MessageActions | null = null;
    /** A milter's replacement body, collected after the late actions. */
    let newBody: BodyCollector | null = null;
    let held: Uint8Array[] | null = null;

    // Filled in at the end of the header section.
    let sender = "";
    let baseRecipients: Recipient[] = [];
    let bccAddresses: string[] = [];
    let queue: "incoming" | "hold" = "incoming";
    /** Body scanning (body/MIME/nested checks): content is held until the end. */
    let scan: BodyScan | null = null;

    const begin = async (content: Uint8Array[]) => {
      let recipients = [...baseRecipients];
      const a = mergeActions(early, checks, late);
      if (a.redirect !== undefined) {
        recipients = [{ address: local(internalForm(a.redirect)) }];
      }
      if (checks.reject) {
        throw new Rejected(checks.reject.code, checks.reject.dsn, checks.reject.text, true);
      }
      if (a.discard) throw new Discarded();
      // smtpd's milters' edits came with the late actions; non_smtpd_milters run here.
      let milter: { actions: MessageActions; body: Uint8Array | null } = {
        actions: late ?? {},
        body: (newBody as BodyCollector | null)?.bytes() ?? null,
      };
      if (localMilters) {
        milter = await this.#localMilters(queueId, sender, env.recipients, content, logCtx.origin);
      }
      const edits = milter.actions.edits ?? [];
      try {
        if (edits.length) {
          const edited = await this.#milterEnvelope(edits, sender, recipients, rewriter, warn);
          sender = edited.sender;
          recipients = edited.recipients;
        }
        for (const b of [...bccAddresses, ...a.bcc.map(internalForm)]) {
          const r = await rewriter.rewrite(b, "envelopeRecipient");
          for (const a of await rewriter.expand(r)) {
            recipients.push({ address: a, notify: ["NEVER"] });
          }
        }
      } catch (e) {
        throw refusal(e);
      }
      recipients = dedupe(recipients);
      if (milter.actions.discard) throw new Discarded();
      if (recipients.length === 0) {
        // Every recipient deleted by a milter: nothing could be delivered.
        throw new Rejected(554, "5.5.1", "Error: no recipients specified");
      }
      const quarantine = milter.actions.quarantine;
      if (quarantine !== undefined) {
        log.info(
          `${queueId}: milter-hold: END-OF-MESSAGE from ${logCtx.origin}: ` +
            `${quarantine || "milter triggers HOLD action"}; from=<${sender}>`,
        );
      }
      queue = a.hold || quarantine !== undefined ? "hold" : "incoming";
      if (edits.length || milter.body) content = editContent(content, edits, milter.body);
      if (sign) {
        content = await this.#signed(queueId, signer, content).catch((e) => {
          throw refusal(e);
        });
      }
      const sealing = late?.arcSeal ? arcSealSettings(cfg) : null;
      if (sealing) content = await this.#sealed(queueId, late!.arcSeal!, sealing, content);
      writer = new QueueWriter(
        this.ctx.queue.dir(queue),
        queueId,
        queue === "hold" ? this.holdSyncer : this.syncer,
      );
      await writer.begin(
        {
          queueId,
          arrival: arrival.getTime(),
          sender,
          attrs: env.attrs,
          messageId,
          ...(a.filter !== undefined ? { filter: a.filter } : {}),
        },
        recipients,
      );
      queued = recipients;
      for (const c of content) await writer.write(c);
    };
    const arrival = new Date(env.arrival ?? Date.now());

    const startFile = async (headers: HeaderField[], rest: Uint8Array) => {
      const received = headers.filter((h) => /^received$/i.test(h.name)).length;
      if (received > hopLimit) throw new Rejected(554, "5.4.0", "Error: too many hops");
      const rw = rewriter;
      const ck = checks;
      let recipients: Recipient[];
      try {
        sender = await rw.rewrite(env.sender, "envelopeSender");
        recipients = [];
        for (const r of env.recipients) {
          // The address before table rewriting, for orig_to= (Postfix's
          // original recipient); a DSN ORCPT from the client wins.
          const given = local(r.address);
          recipients.push({
            ...r,
            address: await rw.rewrite(r.address, "envelopeRecipient"),
            orcpt: r.orcpt ?? given,
          });
        }
        logCtx.sender = sender;
        logCtx.recipient = recipients[0]?.address;
      } catch (e) {
        throw refusal(e);
      }
      const localHeaders = localHeaderContext(env.attrs, tables.inetInterfaces);
      const keep: HeaderField[] = [];
      const out: Uint8Array[] = [];
      try {
        for (const h0 of headers) {
          let h = h0;
          if (ck.active && ck.anyHeaderTables) {
            const v = await ck.header(logicalHeader(h.raw), "primary", isMimeHeader(h.name));
            for (const p of v.prepend) out.push(enc.encode(p), CRLF);
            if (v.result === "drop") continue;
            if (typeof v.result === "object") h = fieldFromText(v.result.replace);
          }
          if (env.extractRecipients && /^(to|cc|bcc)$/i.test(h.name)) {
            const notify = extractNotify(env.extractNotify);
            for (const a of parseHeaderAddresses(h.value)) {
              const address = await rw.rewrite(a, "envelopeRecipient");
              recipients.push(notify ? { address, notify } : { address });
            }
            if (/^bcc$/i.test(h.name)) continue;
          }
          const kind = headerKind(h.name);
          if (kind && localHeaders) {
            const role = kind === "sender" ? "headerSender" : "headerRecipient";
            const value = await rewriteHeaderAddresses(h.value, (a) => rw.rewrite(a, role));
            if (value !== undefined) h = formattedField(h.name, value);
          }
          keep.push(h);
          out.push(h.raw);
        }
        if (recipients.length === 0) {
          throw new Rejected(554, "5.5.1", "Error: no recipients specified");
        }
        if (ck.redirect === undefined && early.redirect === undefined) {
          const expanded: Recipient[] = [];
          for (const r of recipients) {
            const list = await rw.expand(r.address);
            const aliased = list.length > 1 || list[0] !== r.address;
            const notify = aliased ? withoutSuccess(r.notify) : r.notify;
            for (const a of list) {
              expanded.push(
                notify === r.notify ? { ...r, address: a } : { ...r, address: a, notify },
              );
            }
          }
          baseRecipients = expanded;
        } else baseRecipients = recipients;
        baseRecipients = baseRecipients.map((r) =>
          r.orcpt === undefined || r.orcpt.toLowerCase() !== r.address.toLowerCase()
            ? r
            : withoutOrcpt(r)
        );
        if (!internal) {
          bccAddresses = await autoBcc(tables, sender, recipients.map((r) => r.address));
        }
      } catch (e) {
        if (e instanceof Rejected) throw e;
        throw refusal(e);
      }
      const now = arrival;
      const mid = findHeader(keep, "message-id");
      if (mid) messageId = mid.value.trim();
      else {
        messageId = `<${messageIdStamp(now)}.${queueId}@${cfg.str("myhostname")}>`;
        out.push(formatHeader("Message-Id", messageId));
      }
      if (!findHeader(keep, "date")) out.push(formatHeader("Date", rfc2822Date(now)));
      if (!findHeader(keep, "from")) {
        out.push(
          formatHeader(
            "From",
            sender === "" ? `MAILER-DAEMON@${cfg.str("myhostname")}` : headerAddress(sender),
          ),
        );
      }
      const t = ck.tables;
      if (ck.active && (!t.body.empty || !t.mime.empty || !t.nested.empty)) {
        const ct = findHeader(keep, "content-type")?.value ?? "";
        scan = new BodyScan(ck, ct, tables.bodyChecksSizeLimit, cfg.int("line_length_limit"));
        scan.held.push(...out);
        try {
          await scan.push(rest);
        } catch (e) {
          throw refusal(e);
        }
      } else if (early.more || localMilters || sign) {
        held = out;
        if (rest.length) held.push(rest);
      } else {
        if (rest.length) out.push(rest);
        await begin(out);
      }
      size += sumHeaders(headers) + rest.length;
    };

    /** Ends a message early: content after it is drained, not written. */
    let stop: Rejected | Discarded | null = null;
    const stopOn = (e: unknown) => {
      if (e instanceof Rejected || e instanceof Discarded) stop = e;
      else throw e;
    };
    /** A body check that already decided the outcome: stop holding content. */
    const decided = () => {
      const c = checks;
      if (c.reject) throw new Rejected(c.reject.code, c.reject.dsn, c.reject.text, true);
      if (c.discard) throw new Discarded();
    };
    try {
      let headersDone = false;
      for (;;) {
        const f = await conn.recv();
        if (f === null) throw new Error("lost connection with client");
        if (f.kind === "end") break;
        if (f.kind === "msg" && f.msg.op === "actions" && early.more && !late) {
          late = messageActions(f.msg);
          if (late.replaceBody) newBody = new BodyCollector(sizeLimit);
          continue;
        }
        if (f.kind === "data" && newBody) {
          // A milter's replacement body, after the late actions.
          if (!stop && !newBody.push(f.data)) {
            stop = new Rejected(552, "5.3.4", "Error: message file too big");
          }
          continue;
        }
        if (f.kind !== "data" || late) throw new Error("unexpected message frame in content");
        if (stop) continue; // drain to keep the protocol in step
        try {
          if (!headersDone) {
            const r = splitter.push(f.data);
            if (r.done) {
              headersDone = true;
              await startFile(r.headers!, r.rest ?? new Uint8Array(0));
            }
          } else {
            size += f.data.length;
            if (size <= sizeLimit) {
              if (scan) {
                await (scan as BodyScan).push(f.data).catch((e) => {
                  throw refusal(e);
                });
                decided();
              } else if (held) (held as Uint8Array[]).push(f.data);
              else await writer!.write(f.data);
            }
          }
          if (size > sizeLimit) {
            throw new Rejected(552, "5.3.4", "Error: message file too big");
          }
        } catch (e) {
          stopOn(e);
        }
      }
      if (!stop && !headersDone) {
        try {
          const r = splitter.end();
          await startFile(r.headers, r.rest);
          if (size > sizeLimit) throw new Rejected(552, "5.3.4", "Error: message file too big");
        } catch (e) {
          stopOn(e);
        }
      }
      if (early.more && !late) throw new Error("no end-of-data actions from client");
      if (!stop && held) {
        try {
          await begin(held);
        } catch (e) {
          stopOn(e);
        }
      }
      if (!stop && scan) {
        const s = scan as BodyScan;
        try {
          await s.end().catch((e) => {
            throw refusal(e);
          });
          await begin(s.held);
        } catch (e) {
          stopOn(e);
        }
      }
      if (stop) throw stop;
      await (writer as QueueWriter | null)!.commit();
    } catch (e) {
      await (writer as QueueWriter | null)?.abort();
      throw e;
    }
    log.info(`${queueId}: message-id=${messageId}`);
    // `postwarden test` (lib/deliver/capture.ts) reads what was queued from these.
    if (cfg.str("postwarden_capture").trim() !== "") {
      for (const r of queued) {
        log.info(
          `${queueId}: capture: to=<${r.address}>${(queue as string) === "hold" ? ", held" : ""}`,
        );
      }
    }
    return queue;
  }

  /**
   * The message with its DKIM-Signature fields on top (dkim.ts); a key
   * that cannot be used refuses it with 451 4.7.0, logged, so that mail
   * to sign never leaves unsigned.
   */
  async #signed(queueId: string, signer: DkimSigner, content: Uint8Array[]): Promise<Uint8Array[]> {
    try {
      const signatures = await signer.signatures(splitContent(content).headers, content);
      return signatures.length ? [...signatures, ...content] : content;
    } catch (e) {
      if (!(e instanceof DkimSigningError)) throw e;
      this.ctx.log.warn(`${queueId}: ${e.message} -- message not accepted, try again later`);
      throw new Rejected(451, "4.7.0", "Error: DKIM signing failed", true);
    }
  }

  /**
   * The message with its ARC set on top (arc.ts), or as it is when the
   * chain cannot be sealed (logged); a key that cannot be used refuses it
   * with 451 4.7.0, logged.
   */
  async #sealed(
    queueId: string,
    input: ArcSealInput,
    settings: ArcSealSettings,
    content: Uint8Array[],
  ): Promise<Uint8Array[]> {
    try {
      const r = await arcSet(content, input, settings, this.#keys);
      if ("set" in r) return [r.set, ...content];
      this.ctx.log.warn(`${queueId}: not ARC-sealed: ${r.skipped}`);
      return content;
    } catch (e) {
      if (!(e instanceof DkimSigningError)) throw e;
      this.ctx.log.warn(`${queueId}: ${e.message} -- message not accepted, try again later`);
      throw new Rejected(451, "4.7.0", "Error: ARC sealing failed", true);
    }
  }

  /**
   * non_smtpd_milters for a message that did not come over SMTP (sendmail,
   * pickup), as Postfix's cleanup emulates the SMTP events for them:
   * CONNECT from localhost [127.0.0.1], HELO localhost, MAIL with the
   * sender, one RCPT per envelope recipient, DATA, then the message as
   * cleanup made it (with the headers it added). Their verdict: a refusal
   * throws Rejected (4XX: the submitter tries again later), DISCARD
   * throws Discarded; edits and quarantine come back as late actions.
   */
  async #localMilters(
    queueId: string,
    sender: string,
    recipients: Recipient[],
    content: Uint8Array[],
    origin: string,
  ): Promise<{ actions: MessageActions; body: Uint8Array | null }> {
    const cfg = this.ctx.config;
    let rcpt: string | undefined;
    const macro = (name: string): string | undefined => {
      switch (name) {
        case "i":
          return queueId;
        case "j":
          return cfg.str("myhostname");
        case "_":
          return "localhost [127.0.0.1]";
        case "v":
          return cfg.str("milter_macro_v");
        case "daemon_name":
          return cfg.str("milter_macro_daemon_name");
        case "client_addr":
          return "127.0.0.1";
        case "client_name":
          return "localhost";
        case "mail_addr":
          return sender;
        case "rcpt_addr":
          return rcpt;
      }
      return undefined;
    };
    const chain = new MilterChain(this.milters, macro, this.ctx.log);
    const refused = (cmd: string, v: MilterVerdict) => {
      if (v.kind === "discard") {
        this.ctx.log.info(
          `${queueId}: milter-discard: ${cmd} from ${origin}: milter triggers DISCARD action; ` +
            `from=<${sender}>`,
        );
        return new Discarded();
      }
      if (v.kind !== "reply") return null;
      const r = v.reply;
      this.ctx.log.info(
        `${queueId}: milter-reject: ${cmd} from ${origin}: ${r.code} ${r.dsn} ${r.text}; ` +
          `from=<${sender}>`,
      );
      return new Rejected(r.code, r.dsn, r.text, true);
    };
    try {
      const bare = (a: string) => `<${headerAddress(a)}>`;
      const steps: [string, () => Promise<MilterVerdict>][] = [
        ["CONNECT", () => chain.connect({ name: "localhost", addr: "127.0.0.1", port: 0 })],
        ["EHLO", () => chain.helo("localhost")],
        ["MAIL", () => chain.mail([sender === "" ? "<>" : bare(sender)])],
        ...recipients.map((r): [string, () => Promise<MilterVerdict>] => [
          "RCPT",
          () => {
            rcpt = r.address;
            return chain.rcpt([bare(r.address)]);
          },
        ]),
        ["DATA", () => chain.data()],
      ];
      for (const [cmd, step] of steps) {
        const stop = refused(cmd, await step());
        if (stop) throw stop;
      }
      // A CONNECT or HELO refusal waits for MAIL FROM in an SMTP session; here MAIL came.
      chain.startContent(-1);
      for (const c of content) await chain.write(c);
      const eom = await chain.endOfMessage();
      const stop = refused("END-OF-MESSAGE", eom.verdict);
      if (stop) throw stop;
      return { actions: eom.actions, body: eom.body ?? null };
    } finally {
      await chain.close();
    }
  }

  /**
   * A milter's sender and recipient edits (lib/cleanup ContentEdit): a new
   * sender is rewritten as an envelope sender; a deleted recipient is
   * matched against the address the client gave (the milter saw that one;
   * Postfix's orig_rcpt), or the rewritten one; an added recipient is
   * rewritten and expanded (virtual aliases) like one from the envelope.
   * ESMTP parameters with an edit are not applied (logged).
   */
  async #milterEnvelope(
    edits: ContentEdit[],
    sender: string,
    recipients: Recipient[],
    rw: AddressRewriter,
    warn: (m: string) => void,
  ): Promise<{ sender: string; recipients: Recipient[] }> {
    const bare = (a: string) => a.replace(/^<(.*)>$/s, "$1");
    let out = recipients;
    for (const e of edits) {
      if (e.op === "changeFrom") {
        if (e.args) warn(`milter change sender: ESMTP parameters ignored: ${e.args}`);
        sender = await rw.rewrite(bare(e.address), "envelopeSender");
      } else if (e.op === "deleteRcpt") {
        const gone = dupKey(bare(e.address));
        out = out.filter((r) =>
          dupKey(r.orcpt ?? r.address) !== gone && dupKey(r.address) !== gone
        );
      } else if (e.op === "addRcpt") {
        if (e.args) warn(`milter add recipient: ESMTP parameters ignored: ${e.args}`);
        const r = await rw.rewrite(bare(e.address), "envelopeRecipient");
        for (const a of await rw.expand(r)) out = [...out, { address: a }];
      }
    }
    return { sender, recipients: out };
  }

  #scheduleNotify(id: string): void {
    this.#newIds.push(id);
    if (this.#notifyTimer) return;
    this.#notifyTimer = setTimeout(() => {
      this.#notifyTimer = null;
      const ids = this.#newIds;
      this.#newIds = [];
      this.notify(ids).catch(() => {
        // qmgr also scans incoming/ periodically; a lost wake-up only delays.
      });
    }, 0);
  }
}

/** A milter's replacement body, as it arrives, within message_size_limit. */
class BodyCollector {
  #chunks: Uint8Array[] = [];
  #size = 0;
  constructor(readonly limit: number) {}

  /** Adds a chunk; false once the body is over the limit (the rest is dropped). */
  push(chunk: Uint8Array): boolean {
    this.#size += chunk.length;
    if (this.#size > this.limit) {
      this.#chunks = [];
      return false;
    }
    this.#chunks.push(chunk.slice());
    return true;
  }

  bytes(): Uint8Array {
    return concatLines(this.#chunks);
  }
}

/** sendmail -t -N: the NOTIFY list for extracted recipients, when well-formed. */
function extractNotify(v: unknown): string[] | undefined {
  if (!Array.isArray(v) || v.length === 0 || v.length > 3) return undefined;
  const ok = v.every((x) => x === "SUCCESS" || x === "DELAY" || x === "FAILURE") ||
    (v.length === 1 && v[0] === "NEVER");
  return ok ? [...v] : undefined;
}

/**
 * NOTIFY for the addresses an alias expanded to: without SUCCESS, as
 * Postfix (RFC 3461 "expanded": the sender is not told where the alias
 * leads). Postfix also sends the sender an "expanded" notice; Postwarden
 * does not (yet).
 */
function withoutSuccess(notify: string[] | undefined): string[] | undefined {
  if (!notify?.some((n) => n.toUpperCase() === "SUCCESS")) return notify;
  const rest = notify.filter((n) => n.toUpperCase() !== "SUCCESS");
  return rest.length ? rest : ["NEVER"];
}

/** Reads and drops the rest of a message, keeping the connection in step. */
async function drain(conn: IpcConn): Promise<void> {
  for (;;) {
    const f = await conn.recv();
    if (f === null) throw new Error("lost connection with client");
    if (f.kind === "end") return;
  }
}

/** The recipient without its orcpt (it names the address itself: nothing to record). */
function withoutOrcpt(r: Recipient): Recipient {
  const { orcpt: _, ...rest } = r;
  return rest;
}

/** A header field from REPLACE text ("Name: value", one line). */
function fieldFromText(text: string): HeaderField {
  const colon = text.indexOf(":");
  const raw = enc.encode(text.replace(/[\r\n]+/g, " ") + "\r\n");
  return {
    name: text.slice(0, colon).replace(/[ \t]+$/, ""),
    value: text.slice(colon + 1).trim(),
    raw,
  };
}

/** A header field with a rewritten value, folded. */
function formattedField(name: string, value: string): HeaderField {
  return { name, value, raw: formatHeader(name, value) };
}

/**
 * The body through body_checks, mime_header_checks and
 * nested_header_checks, line by line; the output is held in memory.
 */
class BodyScan {
  readonly held: Uint8Array[] = [];
  /** The start of a line whose end has not arrived. */
  #pending: Uint8Array[] = [];
  readonly #mime: MimeScanner;
  /** Body bytes of the current part seen so far (body_checks_size_limit). */
  #partBytes = 0;

  constructor(
    readonly checks: MessageChecks,
    contentType: string,
    /** body_checks_size_limit (0: no limit). */
    readonly limit: number,
    /** line_length_limit: longer lines are checked in pieces. */
    readonly lineLimit: number,
  ) {
    this.#mime = new MimeScanner(contentType);
  }

  async push(chunk: Uint8Array): Promise<void> {
    let pos = 0;
    for (;;) {
      const lf = chunk.indexOf(0x0a, pos);
      if (lf < 0) break;
      // A line split across chunks is joined once, when its end arrives.
      const piece = chunk.subarray(pos, lf + 1);
      const line = this.#pending.length ? concatLines([...this.#pending, piece]) : piece.slice();
      this.#pending = [];
      await this.#line(line);
      pos = lf + 1;
    }
    if (pos < chunk.length) this.#pending.push(chunk.slice(pos));
  }

  async end(): Promise<void> {
    if (this.#pending.length) await this.#line(concatLines(this.#pending));
    this.#pending = [];
    for (const ev of this.#mime.end()) await this.#event(ev);
  }

  async #line(line: Uint8Array): Promise<void> {
    const wasBody = this.#mime.inBody;
    for (const ev of this.#mime.push(line)) await this.#event(ev);
    if (!wasBody && this.#mime.inBody) this.#partBytes = 0;
  }

  async #event(ev: ReturnType<MimeScanner["push"]>[number]): Promise<void> {
    if (ev.kind === "header") {
      const raw = concatLines(ev.lines);
      const text = logicalHeader(raw);
      const name = text.slice(0, text.indexOf(":"));
      const v = await this.checks.header(text, ev.headerClass, isMimeHeader(name));
      this.#emit(v, raw);
      return;
    }
    const within = this.limit <= 0 || this.#partBytes < this.limit;
    this.#partBytes += ev.raw.length;
    if (!within || !this.checks.active) {
      this.held.push(ev.raw);
      return;
    }
    let end = ev.raw.length;
    if (ev.raw[end - 1] === 0x0a) end -= ev.raw[end - 2] === 0x0d ? 2 : 1;
    // Like Postfix, a line longer than line_length_limit is checked in
    // pieces of that size; the first piece that does more than PREPEND
    // decides for the line.
    const prepend: string[] = [];
    for (let off = 0; off < end || off === 0; off += this.lineLimit) {
      const v = await this.checks.body(
        dec.decode(ev.raw.subarray(off, Math.min(end, off + this.lineLimit))),
      );
      prepend.push(...v.prepend);
      if (v.result !== "keep") {
        this.#emit({ prepend, result: v.result }, ev.raw);
        return;
      }
      if (!this.checks.active) break;
    }
    this.#emit({ prepend, result: "keep" }, ev.raw);
  }

  #emit(v: LineVerdict, raw: Uint8Array): void {
    for (const p of v.prepend) this.held.push(enc.encode(p), CRLF);
    if (v.result === "keep") this.held.push(raw);
    else if (typeof v.result === "object") this.held.push(enc.encode(v.result.replace), CRLF);
  }
}

function concatLines(lines: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const l of lines) n += l.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const l of lines) {
    out.set(l, off);
    off += l.length;
  }
  return out;
}

function sumHeaders(hs: HeaderField[]): number {
  let n = 0;
  for (const h of hs) n += h.raw.length;
  return n;
}
