/**
 * The cleanup service logic: receive one message from smtpd, pickup or
 * bounce, canonicalize it, and write it durably into `incoming/`.
 *
 * - Qualifies unqualified addresses with `$myorigin` when append_at_myorigin
 *   = yes (the default); with no they stay as they are (qmgr then treats an
 *   address without domain as local, as Postfix's resolver does).
 *   append_dot_mydomain is not implemented (reported by the config layer).
 * - Removes duplicate recipients (same address, domain case-insensitive).
 * - With extractRecipients (sendmail -t), takes recipients from To/Cc/Bcc
 *   and removes Bcc.
 * - Adds Message-Id, Date and From when missing (at the end of the header).
 * - Rejects mail over `message_size_limit` (552 5.3.4) and with more
 *   Received headers than `hopcount_limit` (554 5.4.0).
 * - Headers past `header_size_limit` become body, as in Postfix.
 *
 * Header/body checks, canonical and virtual alias maps are not implemented
 * yet: setting their parameters gives a "not supported" warning from the
 * config layer.
 *
 * Parameters: myhostname, myorigin, append_at_myorigin (yes),
 * message_size_limit (10240000), header_size_limit (102400), hopcount_limit
 * (50).
 */
import { splitAddress } from "../../lib/address/mod.ts";
import type { CleanupEnvelope, CleanupResult } from "../../lib/cleanup/client.ts";
import { type IpcConn } from "../../lib/ipc/mod.ts";
import {
  findHeader,
  formatHeader,
  type HeaderField,
  HeaderSplitter,
  messageIdStamp,
  rfc2822Date,
} from "../../lib/mime/mod.ts";
import { headerAddress, parseHeaderAddresses } from "../../lib/address/mod.ts";
import { DirSyncer, newQueueId, QueueWriter, type Recipient } from "../../lib/queue/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";

class Rejected extends Error {
  override readonly name = "Rejected";
  constructor(readonly code: number, readonly dsn: string, text: string) {
    super(text);
  }
}

/** Qualifies an address with a domain when it has none. "" stays "", and so does all with origin "". */
export function qualify(address: string, origin: string): string {
  if (address === "" || origin === "" || address.includes("@")) return address;
  return `${address}@${origin}`;
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

/** Per-process state shared by all cleanup connections. */
export class CleanupService {
  readonly syncer: DirSyncer;
  #notifyTimer: ReturnType<typeof setTimeout> | null = null;
  #newIds: string[] = [];

  constructor(
    readonly ctx: ServiceContext,
    readonly notify: (ids: string[]) => Promise<void>,
  ) {
    this.syncer = new DirSyncer(ctx.queue.dir("incoming"));
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
    try {
      await this.#write(conn, queueId, envMsg);
      result = { status: "ok", queueId };
    } catch (e) {
      if (e instanceof Rejected) {
        result = { status: "error", code: e.code, dsn: e.dsn, text: e.message };
        this.ctx.log.info(`${queueId}: reject: ${e.message}`);
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
    if (result.status === "ok") this.#scheduleNotify(queueId);
    return inStep;
  }

  async #write(conn: IpcConn, queueId: string, env: CleanupEnvelope): Promise<void> {
    const cfg = this.ctx.config;
    const origin = cfg.bool("append_at_myorigin") ? cfg.str("myorigin") : "";
    const sizeLimit = cfg.size("message_size_limit");
    const hopLimit = cfg.int("hopcount_limit");
    const splitter = new HeaderSplitter({ maxBytes: cfg.size("header_size_limit") });
    const writer = new QueueWriter(this.ctx.queue.dir("incoming"), queueId, this.syncer);
    let size = 0;
    let rejected: Rejected | null = null;
    let messageId = "";

    const startFile = async (headers: HeaderField[], rest: Uint8Array) => {
      const received = headers.filter((h) => /^received$/i.test(h.name)).length;
      if (received > hopLimit) throw new Rejected(554, "5.4.0", "Error: too many hops");
      let recipients: Recipient[] = env.recipients.map((r) => ({
        ...r,
        address: qualify(r.address, origin),
      }));
      const keep: HeaderField[] = [];
      for (const h of headers) {
        if (env.extractRecipients && /^(to|cc|bcc)$/i.test(h.name)) {
          for (const a of parseHeaderAddresses(h.value)) {
            recipients.push({ address: qualify(a, origin) });
          }
          if (/^bcc$/i.test(h.name)) continue;
        }
        keep.push(h);
      }
      recipients = dedupe(recipients);
      if (recipients.length === 0) {
        throw new Rejected(554, "5.5.1", "Error: no recipients specified");
      }
      const sender = qualify(env.sender, origin);
      const added: Uint8Array[] = [];
      const now = new Date(env.arrival ?? Date.now());
      const mid = findHeader(keep, "message-id");
      if (mid) messageId = mid.value.trim();
      else {
        messageId = `<${messageIdStamp(now)}.${queueId}@${cfg.str("myhostname")}>`;
        added.push(formatHeader("Message-Id", messageId));
      }
      if (!findHeader(keep, "date")) added.push(formatHeader("Date", rfc2822Date(now)));
      if (!findHeader(keep, "from")) {
        added.push(
          formatHeader(
            "From",
            sender === "" ? `MAILER-DAEMON@${cfg.str("myhostname")}` : headerAddress(sender),
          ),
        );
      }
      await writer.begin(
        {
          queueId,
          arrival: now.getTime(),
          sender,
          attrs: env.attrs,
          messageId,
        },
        recipients,
      );
      for (const h of keep) await writer.write(h.raw);
      for (const h of added) await writer.write(h);
      if (rest.length) await writer.write(rest);
      size += sumHeaders(keep) + added.reduce((a, b) => a + b.length, 0) + rest.length;
    };

    try {
      let headersDone = false;
      for (;;) {
        const f = await conn.recv();
        if (f === null) throw new Error("lost connection with client");
        if (f.kind === "end") break;
        if (f.kind !== "data") throw new Error("unexpected message frame in content");
        if (rejected) continue; // drain to keep the protocol in step
        try {
          if (!headersDone) {
            const r = splitter.push(f.data);
            if (r.done) {
              headersDone = true;
              await startFile(r.headers!, r.rest ?? new Uint8Array(0));
            }
          } else {
            size += f.data.length;
            if (size <= sizeLimit) await writer.write(f.data);
          }
          if (size > sizeLimit) {
            throw new Rejected(552, "5.3.4", "Error: message file too big");
          }
        } catch (e) {
          if (!(e instanceof Rejected)) throw e;
          rejected = e;
        }
      }
      if (!rejected && !headersDone) {
        const r = splitter.end();
        await startFile(r.headers, r.rest);
        if (size > sizeLimit) rejected = new Rejected(552, "5.3.4", "Error: message file too big");
      }
      if (rejected) throw rejected;
      await writer.commit();
    } catch (e) {
      await writer.abort();
      throw e;
    }
    this.ctx.log.info(`${queueId}: message-id=${messageId}`);
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

function sumHeaders(hs: HeaderField[]): number {
  let n = 0;
  for (const h of hs) n += h.raw.length;
  return n;
}
