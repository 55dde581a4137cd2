/**
 * The local delivery function: what local(8) does with each recipient of a
 * delivery request. Only Maildir delivery under `mail_spool_directory` is
 * implemented; everything Postfix local(8) would do that Postwarden does
 * not (mbox files, home directories, aliases) defers the recipient with a
 * reason saying so, rather than delivering somewhere unexpected.
 *
 * Per recipient: the user is the local part, lowercased, without its
 * address extension; the mailbox is `$mail_spool_directory/USER/`. A
 * message that already carries `Delivered-To: RECIPIENT` bounces as a
 * mail forwarding loop (5.4.6). A user name that cannot be a mailbox
 * bounces 5.1.1, whether mailboxUser() or the file system says so (a name
 * too long or invalid for it: ENAMETOOLONG, EILSEQ, EINVAL), since no
 * retry can change the name. As with Postfix's mbox_dsn(), a mailbox or
 * message over its limit (EDQUOT, EFBIG) bounces 5.2.2. Other file system
 * errors defer (4.2.0 for permission problems, 4.3.0 otherwise: a full
 * disk, a mailbox path that is not a directory) with the error text.
 *
 * Parameters (with defaults): mail_spool_directory (/var/mail; must end
 * in "/" for Maildir), home_mailbox (empty; any value defers: not
 * supported), recipient_delimiter (empty), alias_maps (non-empty defers:
 * not supported), header_size_limit (102400, how much header is searched
 * for Delivered-To), myhostname (Maildir file names).
 */
import { headerAddress, quoteAddress, splitAddress } from "../../lib/address/mod.ts";
import {
  type DeliveryRecipient,
  type DeliveryRequest,
  formatDelays,
  logStatus,
  type RecipientStatus,
} from "../../lib/deliver/mod.ts";
import { HeaderSplitter } from "../../lib/mime/mod.ts";
import type { QueueFile } from "../../lib/queue/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import { mailboxUser, UnknownUserError, writeMaildir } from "./maildir.ts";

/** Options for {@link deliverLocal}; tests inject the clock. */
export interface LocalOptions {
  /** Clock in ms. @default Date.now */
  now?: () => number;
}

/** Delivers each recipient of a request; one status per recipient. */
export async function deliverLocal(
  req: DeliveryRequest,
  file: QueueFile,
  ctx: ServiceContext,
  opts: LocalOptions = {},
): Promise<RecipientStatus[]> {
  const now = opts.now ?? Date.now;
  const start = now();
  const out: RecipientStatus[] = [];
  const report = (rcpt: DeliveryRecipient, st: Omit<RecipientStatus, "index" | "relay">) => {
    const full: RecipientStatus = { index: rcpt.index, relay: "local", ...st };
    out.push(full);
    logStatus(ctx, req, rcpt, full, formatDelays(req, start, start, now()));
  };

  const unsupported = mailboxProblem(ctx);
  if (unsupported) {
    ctx.log.warn(`${req.queueId}: ${unsupported}`);
    for (const r of req.recipients) {
      report(r, { status: "deferred", dsn: "4.3.0", reason: unsupported });
    }
    return out;
  }

  const spool = ctx.config.str("mail_spool_directory");
  const delimiters = ctx.config.str("recipient_delimiter");
  const hostname = ctx.config.str("myhostname");
  const delivered = await deliveredTo(file, ctx.config.size("header_size_limit"));

  for (const r of req.recipients) {
    // Delivered-To is written quoted; files from before that hold the bare address.
    if (
      delivered.has(headerAddress(r.address).toLowerCase()) ||
      delivered.has(r.address.toLowerCase())
    ) {
      report(r, {
        status: "bounced",
        dsn: "5.4.6",
        reason: `mail forwarding loop for ${quoteAddress(r.address)}`,
      });
      continue;
    }
    let user: string;
    try {
      user = mailboxUser(splitAddress(r.address).local, delimiters);
    } catch (e) {
      if (!(e instanceof UnknownUserError)) throw e;
      report(r, { status: "bounced", dsn: "5.1.1", reason: e.message });
      continue;
    }
    try {
      await writeMaildir(
        `${spool}${user}`,
        { sender: req.sender, recipient: r.address, content: () => file.content() },
        { hostname, now },
      );
      report(r, { status: "sent", dsn: "2.0.0", reason: "delivered to maildir" });
    } catch (e) {
      report(r, {
        ...maildirFailure(e),
        reason: `maildir delivery failed: ${(e as Error).message}`,
      });
    }
  }
  return out;
}

/** Why this configuration cannot deliver at all, or null when it can. */
function mailboxProblem(ctx: ServiceContext): string | null {
  const home = ctx.config.str("home_mailbox");
  if (home !== "") return "home_mailbox is not supported";
  if (ctx.config.list("alias_maps").length > 0) {
    return "alias_maps is not supported by local delivery (set alias_maps to empty)";
  }
  const spool = ctx.config.str("mail_spool_directory");
  if (!spool.endsWith("/")) return "mbox delivery is not supported";
  return null;
}

/** Lowercased Delivered-To addresses in the message's header section. */
async function deliveredTo(file: QueueFile, maxBytes: number): Promise<Set<string>> {
  const split = new HeaderSplitter({ maxBytes });
  let headers = null;
  for await (const chunk of file.content()) {
    const r = split.push(chunk);
    if (r.done) {
      headers = r.headers!;
      break;
    }
  }
  headers ??= split.end().headers;
  const out = new Set<string>();
  for (const h of headers) {
    if (h.name.toLowerCase() === "delivered-to") {
      out.add(h.value.trim().replace(/^<(.*)>$/, "$1").toLowerCase());
    }
  }
  return out;
}

/** File system errors about the name itself: the mailbox can never exist under it. */
const BAD_NAME_ERRORS = new Set(["ENAMETOOLONG", "EILSEQ", "EINVAL"]);
/** Postfix's MBOX_FULL_ERROR: the mailbox or the message is over its limit. */
const MAILBOX_FULL_ERRORS = new Set(["EDQUOT", "EFBIG"]);

/** Bounce or defer a failed Maildir delivery, and with which DSN code. */
function maildirFailure(e: unknown): Pick<RecipientStatus, "status" | "dsn"> {
  const code = errorCode(e);
  if (code && BAD_NAME_ERRORS.has(code)) return { status: "bounced", dsn: "5.1.1" };
  if (code && MAILBOX_FULL_ERRORS.has(code)) return { status: "bounced", dsn: "5.2.2" };
  return { status: "deferred", dsn: isPermissionError(e) ? "4.2.0" : "4.3.0" };
}

/** The first errno name (`code`, e.g. "ENAMETOOLONG") in the error's cause chain. */
function errorCode(e: unknown): string | undefined {
  for (let x = e; x instanceof Error; x = x.cause) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

/** EACCES or EPERM anywhere in the error's cause chain. */
function isPermissionError(e: unknown): boolean {
  for (let x = e; x instanceof Error; x = x.cause) {
    if (x instanceof Deno.errors.PermissionDenied) return true;
  }
  return false;
}
