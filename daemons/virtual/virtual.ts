/**
 * The virtual delivery function: what virtual(8) does with each recipient
 * of a delivery request. For each recipient it looks up, in Postfix's
 * order (`user+ext@domain`, `user@domain`, `@domain`):
 *
 * - virtual_mailbox_maps: the mailbox, relative to virtual_mailbox_base.
 *   Not found: bounced 5.1.1 `unknown user: "ADDRESS"`. A result ending
 *   in "/" is a Maildir; anything else an mbox file (mbox.ts, with
 *   virtual_mailbox_lock; its `fcntl` is not available and defers the
 *   mail saying so).
 * - virtual_uid_maps, virtual_gid_maps: the owner. Not found, or a uid
 *   under virtual_minimum_uid, or a gid under 1: deferred with Postfix's
 *   texts ("recipient X: uid not found in virtual_uid_maps", "... bad uid
 *   N in ...").
 *
 * A table that cannot answer defers (4.3.0). A message already carrying
 * `Delivered-To: RECIPIENT` bounces 5.4.6 (mail forwarding loop). A message
 * file over virtual_mailbox_limit bounces 5.2.2. Success is logged
 * `relay=virtual, ..., status=sent (delivered to maildir)` (or `mailbox`)
 * and is a final delivery ("delivered" in a success notice).
 *
 * Address verification (DeliveryRequest.verify): every lookup and check
 * above is made, then nothing is written and the outcome says where the
 * mail would go, as Postfix's virtual: "delivers to maildir" or "delivers
 * to mailbox" (status=deliverable).
 *
 * Safety: the mailbox path must stay under virtual_mailbox_base (a ".."
 * component or a result that leaves it defers, with a warning), and no
 * symbolic link is followed below the base: every folder from the base to
 * the Maildir's tmp/ and new/ is checked with lstat before the file is
 * created and again before it is renamed into new/. Postfix's virtual(8)
 * writes as the mailbox owner; Deno cannot change a process's effective
 * uid, so when master runs as root this agent runs as root (its sandbox
 * writes only under virtual_mailbox_base) and gives what it creates to
 * the mapped uid/gid with lchown, which never follows a link. What the
 * checks cannot close: a mailbox owner who replaces one of its own
 * folders with a link in the instant between a check and the next step
 * could have a message file created (or renamed) in the folder the link
 * names. When master is not root, files belong to the user Postwarden
 * runs as.
 *
 * Parameters: virtual_mailbox_base, virtual_mailbox_maps,
 * virtual_uid_maps, virtual_gid_maps, virtual_minimum_uid (100),
 * virtual_mailbox_limit (51200000; 0: none), virtual_mailbox_lock
 * (fcntl, dotlock: mbox files only), recipient_delimiter,
 * header_size_limit (the Delivered-To search), myhostname (Maildir file
 * names).
 */
import type { Config } from "../../lib/config/mod.ts";
import { deliveredTo, isDeliveredTo } from "../../lib/deliver/delivered.ts";
import {
  deliveryDelays,
  type DeliveryRecipient,
  type DeliveryRequest,
  logStatus,
  type RecipientStatus,
} from "../../lib/deliver/mod.ts";
import { splitOrcpt } from "../../lib/dsn/mod.ts";
import { writeMaildir } from "../../lib/maildir/mod.ts";
import { appendMbox, lockProblem, type MboxOptions } from "./mbox.ts";
import { addressFind, DictError, type Maps } from "../../lib/maps/mod.ts";
import type { QueueFile } from "../../lib/queue/mod.ts";
import type { MapsOpener, ServiceContext } from "../../lib/service/mod.ts";

/** The three tables, opened once per process (an open that fails is tried again next time). */
export class VirtualTables {
  #open: Promise<{ mailbox: Maps; uid: Maps; gid: Maps }> | null = null;

  constructor(readonly config: Config, readonly openMaps: MapsOpener) {}

  /**
   * The open tables.
   *
   * @throws {DictError} when one cannot be opened.
   */
  get(): Promise<{ mailbox: Maps; uid: Maps; gid: Maps }> {
    this.#open ??= this.#openAll().catch((e) => {
      this.#open = null;
      throw e;
    });
    return this.#open;
  }

  async #openAll() {
    const opened: Maps[] = [];
    try {
      for (const name of ["virtual_mailbox_maps", "virtual_uid_maps", "virtual_gid_maps"]) {
        opened.push(await this.openMaps(name, this.config.str(name)));
      }
      return { mailbox: opened[0], uid: opened[1], gid: opened[2] };
    } catch (e) {
      for (const m of opened) await m.close();
      throw e;
    }
  }

  /** Closes what is open. */
  async close(): Promise<void> {
    const open = this.#open;
    this.#open = null;
    const t = await open?.catch(() => null);
    for (const m of t ? [t.mailbox, t.uid, t.gid] : []) await m.close();
  }
}

/** Options for {@link deliverVirtual}. */
export interface VirtualOptions {
  tables: VirtualTables;
  /** Give files to the mapped owner (this process runs as root). */
  setOwner: boolean;
  /** Clock in ms. @default Date.now */
  now?: () => number;
  /** mbox dotlock attempts, one a second. @default 20 */
  lockAttempts?: number;
}

type Status = Omit<RecipientStatus, "index" | "relay">;

/** Delivers each recipient of a request; one status per recipient. */
export async function deliverVirtual(
  req: DeliveryRequest,
  file: QueueFile,
  ctx: ServiceContext,
  opts: VirtualOptions,
): Promise<RecipientStatus[]> {
  const now = opts.now ?? Date.now;
  const start = now();
  const report = (r: DeliveryRecipient, st: Status): RecipientStatus => {
    const full: RecipientStatus = {
      index: r.index,
      relay: "virtual",
      ...st,
      ...(st.status === "sent" ? { action: "delivered" as const } : {}),
    };
    logStatus(ctx, req, r, full, deliveryDelays(req, start, start, now()));
    return full;
  };
  const c = ctx.config;
  const base = c.str("virtual_mailbox_base");
  if (!base.startsWith("/")) {
    ctx.log.warn(`do not specify relative pathname: virtual_mailbox_base = ${base}`);
    return req.recipients.map((r) =>
      report(r, { status: "deferred", dsn: "4.3.5", reason: "mail system configuration error" })
    );
  }
  let tables;
  try {
    tables = await opts.tables.get();
  } catch (e) {
    if (!(e instanceof DictError)) throw e;
    const reason = `virtual table unavailable: ${e.message}`;
    ctx.log.warn(`${req.queueId}: ${reason}`);
    return req.recipients.map((r) => report(r, { status: "deferred", dsn: "4.3.0", reason }));
  }
  const delivered = await deliveredTo(file, c.size("header_size_limit"));
  const out: RecipientStatus[] = [];
  for (const r of req.recipients) {
    out.push(report(r, await deliverOne(r, req, file, ctx, tables, delivered, base, opts, now)));
  }
  return out;
}

async function deliverOne(
  r: DeliveryRecipient,
  req: DeliveryRequest,
  file: QueueFile,
  ctx: ServiceContext,
  tables: { mailbox: Maps; uid: Maps; gid: Maps },
  delivered: Set<string>,
  base: string,
  opts: VirtualOptions,
  now: () => number,
): Promise<Status> {
  const c = ctx.config;
  const defer = (reason: string, dsn = "4.3.0"): Status => ({ status: "deferred", dsn, reason });
  if (isDeliveredTo(delivered, r.address)) {
    return { status: "bounced", dsn: "5.4.6", reason: `mail forwarding loop for ${r.address}` };
  }
  // Postfix's virtual looks up and reports the recipient lowercased (state.msg_attr.user).
  const user = r.address.toLowerCase();
  const find = async (maps: Maps) =>
    (await addressFind(maps, user, { delimiters: c.str("recipient_delimiter") }))?.value;
  let mailbox, uidRes, gidRes;
  try {
    mailbox = await find(tables.mailbox);
    if (mailbox === undefined) {
      return { status: "bounced", dsn: "5.1.1", reason: `unknown user: "${user}"` };
    }
    uidRes = await find(tables.uid);
    gidRes = uidRes === undefined ? undefined : await find(tables.gid);
  } catch (e) {
    if (!(e instanceof DictError)) throw e;
    return defer(`lookup ${user}: ${e.message}`);
  }
  if (uidRes === undefined) {
    return defer(`recipient ${user}: uid not found in virtual_uid_maps`);
  }
  const uid = leadingInt(uidRes);
  if (uid < c.int("virtual_minimum_uid")) {
    return defer(`recipient ${user}: bad uid ${uidRes} in virtual_uid_maps`);
  }
  if (gidRes === undefined) {
    return defer(`recipient ${user}: gid not found in virtual_gid_maps`);
  }
  const gid = leadingInt(gidRes);
  if (gid <= 0) return defer(`recipient ${user}: bad gid ${gidRes} in virtual_gid_maps`);

  const path = mailboxPath(base, mailbox);
  if (path === null) {
    ctx.log.warn(
      `${req.queueId}: virtual_mailbox_maps result for ${r.address} leaves ` +
        `virtual_mailbox_base: ${mailbox}`,
    );
    return defer("mail system configuration error", "4.3.5");
  }
  const limit = c.size("virtual_mailbox_limit");
  if (!mailbox.endsWith("/")) {
    return await deliverMbox(path, r, req, file, ctx, {
      locks: c.list("virtual_mailbox_lock").map((l) => l.toLowerCase()),
      owner: opts.setOwner ? { uid, gid } : undefined,
      maxBytes: limit > 0 ? limit : undefined,
      guard: () => noLinksBelow(base, [path.replace(/\/[^/]*$/, "")]),
      now,
      lockAttempts: opts.lockAttempts,
    });
  }
  if (req.verify) return { status: "sent", dsn: "2.0.0", reason: "delivers to maildir" };
  const dir = path.replace(/\/+$/, "");
  try {
    await writeMaildir(dir, {
      sender: req.sender,
      recipient: r.address,
      original: originalRecipient(r),
      content: () => file.content(),
    }, {
      hostname: c.str("myhostname"),
      now,
      owner: opts.setOwner ? { uid, gid } : undefined,
      guard: (d) => noLinksBelow(base, [d, `${d}/tmp`, `${d}/new`]),
      maxBytes: limit > 0 ? limit : undefined,
    });
    return { status: "sent", dsn: "2.0.0", reason: "delivered to maildir" };
  } catch (e) {
    const reason = `maildir delivery failed: ${(e as Error).message}`;
    const code = errorCode(e);
    if (code === "EFBIG" || code === "EDQUOT") return { status: "bounced", dsn: "5.2.2", reason };
    if (e instanceof UnsafePathError) ctx.log.warn(`${req.queueId}: ${e.message}`);
    return defer(reason, "4.2.0");
  }
}

/** One mbox delivery (mbox.ts), with Postfix's texts. */
async function deliverMbox(
  path: string,
  r: DeliveryRecipient,
  req: DeliveryRequest,
  file: QueueFile,
  ctx: ServiceContext,
  opts: MboxOptions,
): Promise<Status> {
  const problem = lockProblem(opts.locks);
  if (problem) {
    ctx.log.warn(`${req.queueId}: ${problem}`);
    return { status: "deferred", dsn: "4.3.5", reason: problem };
  }
  if (req.verify) return { status: "sent", dsn: "2.0.0", reason: "delivers to mailbox" };
  try {
    await appendMbox(path, {
      sender: req.sender,
      recipient: r.address,
      original: originalRecipient(r),
      content: () => file.content(),
    }, opts);
    return { status: "sent", dsn: "2.0.0", reason: "delivered to mailbox" };
  } catch (e) {
    const reason = `mailbox ${path}: ${(e as Error).message}`;
    const code = errorCode(e);
    if (code === "EFBIG" || code === "EDQUOT") return { status: "bounced", dsn: "5.2.2", reason };
    if (e instanceof UnsafePathError) ctx.log.warn(`${req.queueId}: ${e.message}`);
    return { status: "deferred", dsn: "4.2.0", reason };
  }
}

/** X-Original-To: the address before rewriting (a DSN ORCPT is the client's, not ours). */
function originalRecipient(r: DeliveryRecipient): string {
  return r.orcpt && !splitOrcpt(r.orcpt) ? r.orcpt : r.address;
}

/** atol(): the leading decimal number of a table result (0 when none). */
function leadingInt(s: string): number {
  const m = /^\s*[+-]?\d+/.exec(s);
  return m ? Number(m[0]) : 0;
}

/**
 * `base/mailbox`, or null when the mailbox would leave the base (a ".."
 * component, an empty result). A leading "/" in the result stays below
 * the base, as in Postfix's concatenation.
 */
export function mailboxPath(base: string, mailbox: string): string | null {
  const parts = mailbox.split("/");
  if (parts.some((p) => p === "..") || parts.every((p) => p === "" || p === ".")) return null;
  // deno-lint-ignore no-control-regex
  if (/[\x00]/.test(mailbox)) return null;
  return `${base.replace(/\/+$/, "")}/${mailbox.replace(/^\/+/, "")}`;
}

/** A folder on the way to a mailbox is a symbolic link, or not a folder. */
export class UnsafePathError extends Error {
  override readonly name = "UnsafePathError";
}

/**
 * Throws {@link UnsafePathError} when any existing entry between the base
 * and each of `dirs` is a symbolic link or not a directory. The base
 * itself may be a link: only whoever may write its parent (the admin)
 * can make it one, and the sandbox's grant names it as configured.
 */
export async function noLinksBelow(base: string, dirs: string[]): Promise<void> {
  const root = base.replace(/\/+$/, "");
  const seen = new Set<string>();
  for (const dir of dirs) {
    if (dir !== root && !dir.startsWith(`${root}/`)) {
      throw new UnsafePathError(`${dir} is not below virtual_mailbox_base ${root}`);
    }
    const rest = dir.slice(root.length).split("/").filter(Boolean);
    let p = root;
    for (const part of rest) {
      p = `${p}/${part}`;
      if (seen.has(p)) continue;
      seen.add(p);
      let st: Deno.FileInfo;
      try {
        st = await Deno.lstat(p);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) break;
        throw e;
      }
      if (st.isSymlink) {
        throw new UnsafePathError(`${p} is a symbolic link; refusing to deliver through it`);
      }
      if (!st.isDirectory) throw new UnsafePathError(`${p} is not a directory`);
    }
  }
}

/** The first errno name (`code`) in the error's cause chain. */
function errorCode(e: unknown): string | undefined {
  for (let x = e; x instanceof Error; x = x.cause) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}
