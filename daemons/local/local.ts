/**
 * The local delivery function: what local(8) does with each recipient of a
 * delivery request. Alias expansion, .forward and :include: files are
 * alias.ts (lookup, recursion, loops, duplicates), forwarding through
 * cleanup forward.ts, mailboxes mailbox.ts (mbox and Maildir, in the spool
 * or under home_mailbox, and mailbox_command), commands and files
 * special.ts and command.ts, with whose rights privilege.ts; this file
 * drives one recipient after another, logs each outcome and reports one
 * status per recipient to qmgr; with mailbox_transport set, mailbox
 * deliveries go to that agent instead (pass.ts). What Postfix's local(8)
 * does that Postwarden does not (fallback_transport, mailbox_command_maps)
 * is refused by the configuration check.
 *
 * Per recipient: every destination it expands to is logged as Postfix
 * does (`to=<bob@here>, orig_to=<alice@here>, relay=local, ...` for a
 * mailbox reached through an alias; `to=<alice@here>, relay=local, ...,
 * status=sent (forwarded as QUEUEID)` for the new message that carries its
 * remote addresses). qmgr gets one status: deferred when any destination
 * deferred (then nothing is forwarded, and the whole recipient is tried
 * again later, as Postfix does), else bounced when any bounced, else sent.
 * Forwarded addresses count as delivered only once cleanup has made the
 * new message durable.
 *
 * Address verification (sendmail -bv, DeliveryRequest.verify): aliases,
 * :include: and .forward files, local_recipient_maps, accounts,
 * luser_relay, allow_mail_to_commands and allow_mail_to_files, loops and
 * Delivered-To are all worked through as for a delivery, but no mailbox
 * or file is written, no command run and nothing sent on through
 * cleanup: each destination is logged (`status=deliverable`) with what
 * would be done, in Postfix's words ("delivers to mailbox", "delivers to
 * maildir", "delivers to command: CMD", "delivers to file: PATH",
 * "forwards to ADDRESS"), or with the failure a delivery would meet. The
 * recipient's status (as above) carries every destination as a trace
 * entry. With mailbox_transport set the request goes to that agent marked
 * for verification too, and its answer is the mailbox's entry.
 *
 * Mailboxes: the user is the local part, lowercased, without its address
 * extension. A message that already carries `Delivered-To: RECIPIENT`
 * bounces as a mail forwarding loop (5.4.6). Outcomes of mailbox writes
 * are mailbox.ts's; a user without an account where one is needed goes to
 * luser_relay (expanded as local(8) does, expand.ts) or bounces 5.1.1
 * `unknown user: "name"`, as do names local_recipient_maps does not list.
 *
 * Tables: alias_maps and local_recipient_maps are opened once per process
 * ({@link LocalTables}); a table that cannot be opened or cannot answer
 * defers the recipients it concerns (4.3.0), never bounces them.
 *
 * Parameters (with defaults): mailbox_transport (empty; pass.ts hands
 * mailboxes to that agent after aliases and .forward), recipient_delimiter
 * (empty), alias_maps
 * (hash:/etc/aliases, nis:mail.aliases), local_recipient_maps (empty:
 * every name has a mailbox), luser_relay (empty), allow_mail_to_commands
 * (alias, forward), allow_mail_to_files (alias, forward),
 * owner_request_special (yes), expand_owner_alias (no), reset_owner_alias
 * (no), propagate_unmatched_extensions (canonical, virtual), myorigin and
 * append_at_myorigin (yes) for unqualified alias destinations,
 * mydestination, local_transport, default_transport and relayhost (which
 * destinations are local), double_bounce_sender, header_size_limit
 * (102400, how much header is searched for Delivered-To), myhostname
 * (Maildir file names, Received:), mail_name (Postfix); and those of
 * mailbox.ts (mailboxes) and special.ts (commands, files, .forward).
 */
import type { Config } from "../../lib/config/mod.ts";
import {
  deliveryDelays,
  type DeliveryRecipient,
  type DeliveryRequest,
  logStatus,
  type RecipientStatus,
  type TraceEntry,
} from "../../lib/deliver/mod.ts";
import { DictError, Maps } from "../../lib/maps/mod.ts";
import { deliveredTo, isDeliveredTo } from "../../lib/deliver/delivered.ts";
import type { QueueFile } from "../../lib/queue/mod.ts";
import { ResolveError, Resolver } from "../../lib/resolve/mod.ts";
import type { MapsOpener, ServiceContext } from "../../lib/service/mod.ts";
import { type AliasEnv, expandRecipient, type ExpansionClass, type Outcome } from "./alias.ts";
import { forwardGroup, groupForwards } from "./forward.ts";
import { deliverToMailbox, inProcessWriter, type Writer } from "./mailbox.ts";
import {
  deliverToCommand,
  deliverToFile,
  forwardFor,
  includeFor,
  type SpecialEnv,
} from "./special.ts";
import { localExpand, recipientAttributes } from "./expand.ts";
import { PasswdFile } from "../../lib/passwd/mod.ts";
import { mailboxTransport, passMailbox } from "./pass.ts";

/**
 * alias_maps and local_recipient_maps, opened once per process (Postfix's
 * local opens alias_maps before it serves). An open that fails is retried
 * at the next request, so a table that appears later (newaliases) is
 * picked up without a restart.
 */
export class LocalTables {
  #open: Promise<{ aliases: Maps; localRecipients: Maps | null }> | null = null;

  /** Where expanded addresses go: this agent (deliver here) or elsewhere (forward). */
  readonly resolver: Resolver;

  constructor(readonly config: Config, readonly openMaps: MapsOpener) {
    this.resolver = Resolver.fromConfig(config, { openMaps });
  }

  /**
   * The open tables.
   *
   * @throws {DictError} when a table cannot be opened.
   */
  get(): Promise<{ aliases: Maps; localRecipients: Maps | null }> {
    this.#open ??= this.#openAll().catch((e) => {
      this.#open = null;
      throw e;
    });
    return this.#open;
  }

  async #openAll() {
    const aliases = await this.openMaps("alias_maps", this.config.str("alias_maps"));
    try {
      const lrm = this.config.str("local_recipient_maps");
      const localRecipients = lrm.trim() === ""
        ? null
        : await this.openMaps("local_recipient_maps", lrm);
      return { aliases, localRecipients };
    } catch (e) {
      await aliases.close();
      throw e;
    }
  }

  /** Closes what is open. */
  async close(): Promise<void> {
    const open = this.#open;
    this.#open = null;
    const t = await open?.catch(() => null);
    await t?.aliases.close();
    await t?.localRecipients?.close();
    await this.resolver.close();
  }
}

/** Options for {@link deliverLocal}; tests inject the clock. */
export interface LocalOptions {
  /** Clock in ms. @default Date.now */
  now?: () => number;
  /**
   * The process's tables; when absent they are opened for this request and
   * closed after it.
   */
  tables?: LocalTables;
  /** The user database. @default /etc/passwd */
  passwd?: PasswdFile;
  /** The agent runs as root and writes as each recipient (mailbox.ts). @default false */
  root?: boolean;
  /** Who performs mailbox writes. @default in this process */
  writer?: Writer;
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
  const log = (rcpt: DeliveryRecipient, st: Omit<RecipientStatus, "index" | "relay">) => {
    const full: RecipientStatus = { index: rcpt.index, relay: "local", ...st };
    logStatus(ctx, req, rcpt, full, deliveryDelays(req, start, start, now()));
    return full;
  };
  const report = (rcpt: DeliveryRecipient, st: Omit<RecipientStatus, "index" | "relay">) => {
    out.push(log(rcpt, st));
  };
  const deferAll = (reason: string) => {
    ctx.log.warn(`${req.queueId}: ${reason}`);
    for (const r of req.recipients) {
      report(r, { status: "deferred", dsn: "4.3.0", reason });
    }
    return out;
  };

  const tables = opts.tables ?? new LocalTables(ctx.config, ctx.maps);
  try {
    let open;
    try {
      open = await tables.get();
    } catch (e) {
      if (!(e instanceof DictError)) throw e;
      return deferAll(`alias database unavailable: ${e.message}`);
    }
    const delivered = await deliveredTo(file, ctx.config.size("header_size_limit"));
    const rights: Rights = {
      passwd: opts.passwd ?? new PasswdFile(),
      root: opts.root ?? false,
      writer: opts.writer ?? inProcessWriter,
    };
    const env = aliasEnv(ctx, req, file, open, tables.resolver, delivered, now, rights);

    for (const r of req.recipients) {
      const exp = await expandRecipient(env, r, req.sender);
      for (const o of exp.outcomes) {
        if (!o.passed) log({ index: r.index, address: o.address, orcpt: o.orcpt }, o);
      }
      const verdict = summarize(exp.outcomes);
      if (req.verify) {
        // alias.ts reported forwards as outcomes: nothing goes to cleanup.
        const trace = exp.outcomes.flatMap(traceOf);
        out.push({
          index: r.index,
          relay: "local",
          ...verdict,
          ...(trace.length ? { trace } : {}),
        });
        continue;
      }
      if (verdict.status === "deferred" || exp.forwards.length === 0) {
        out.push({ index: r.index, relay: "local", ...verdict });
        continue;
      }
      out.push(await forward(ctx, req, file, r, exp.forwards, verdict, log));
    }
    return out;
  } finally {
    if (!opts.tables) await tables.close();
  }
}

/** The status qmgr gets for a recipient: deferred over bounced over sent. */
function summarize(outcomes: Outcome[]): Omit<RecipientStatus, "index" | "relay"> {
  for (const status of ["deferred", "bounced", "sent"] as const) {
    const o = outcomes.find((x) => x.status === status);
    if (o) return { status, dsn: o.dsn, reason: o.reason };
  }
  // Everything was a duplicate of something already done for this recipient.
  return { status: "sent", dsn: "2.0.0", reason: "alias expanded" };
}

/**
 * A destination's entries in a verification report: its own outcome, with
 * the relay and remote MTA of mailbox_transport's agent when it went
 * there, or what that agent found when it reported destinations itself.
 */
function traceOf(o: Outcome): TraceEntry[] {
  const p = o.passed;
  if (p?.trace) return p.trace;
  return [{
    address: o.address,
    ...(o.orcpt !== undefined ? { orcpt: o.orcpt } : {}),
    status: o.status,
    dsn: o.dsn,
    reason: o.reason,
    relay: p?.relay ?? "local",
    ...(p?.diagnostic !== undefined ? { diagnostic: p.diagnostic } : {}),
    ...(p?.remoteMta !== undefined ? { remoteMta: p.remoteMta } : {}),
  }];
}

/** Sends a recipient's forwarded addresses on; the recipient's final status. */
async function forward(
  ctx: ServiceContext,
  req: DeliveryRequest,
  file: QueueFile,
  rcpt: DeliveryRecipient,
  forwards: Parameters<typeof groupForwards>[0],
  verdict: Omit<RecipientStatus, "index" | "relay">,
  log: (r: DeliveryRecipient, st: Omit<RecipientStatus, "index" | "relay">) => RecipientStatus,
): Promise<RecipientStatus> {
  let first: RecipientStatus | null = null;
  for (const group of groupForwards(forwards)) {
    let queueId: string;
    try {
      queueId = await forwardGroup(group, {
        content: () => file.content(),
        envid: req.envid,
        ret: req.ret,
      }, {
        socket: ctx.peer("cleanup"),
        hostname: ctx.config.str("myhostname"),
        mailName: ctx.config.str("mail_name"),
      });
    } catch (e) {
      // Copies already queued for other groups are sent again on the retry (at least once).
      const reason = `unable to forward message: ${(e as Error).message}`;
      ctx.log.warn(`${req.queueId}: ${reason}`);
      return log(rcpt, { status: "deferred", dsn: "4.3.0", reason });
    }
    // One line per new message, as Postfix's forward_send() logs.
    const sent = log(rcpt, { status: "sent", dsn: "2.0.0", reason: `forwarded as ${queueId}` });
    first ??= sent;
  }
  if (verdict.status === "bounced") return { index: rcpt.index, relay: "local", ...verdict };
  return first ?? { index: rcpt.index, relay: "local", ...verdict };
}

/** Whose rights mailbox writes use. */
type Rights = Required<Pick<LocalOptions, "passwd" | "root" | "writer">>;

/** The alias expansion environment of one request. */
function aliasEnv(
  ctx: ServiceContext,
  req: DeliveryRequest,
  file: QueueFile,
  tables: { aliases: Maps; localRecipients: Maps | null },
  resolver: Resolver,
  delivered: Set<string>,
  now: () => number,
  rights: Rights,
): AliasEnv {
  const c = ctx.config;
  const transport = mailboxTransport(ctx);
  const special: SpecialEnv = {
    config: c,
    ...rights,
    content: () => file.content(),
    now,
    warn: (w) => ctx.log.warn(`${req.queueId}: ${w}`),
    verify: req.verify === true,
  };
  const classes = (name: string) =>
    new Set(c.list(name).map((x) => x.toLowerCase()) as ExpansionClass[]);
  // propagate_unmatched_extensions belongs to cleanup; until its row is in
  // the table, Postfix's default ("canonical, virtual": not "alias") applies.
  const propagate = c.raw("propagate_unmatched_extensions") === undefined
    ? []
    : c.list("propagate_unmatched_extensions").map((x) => x.toLowerCase());
  return {
    aliases: tables.aliases,
    localRecipients: tables.localRecipients,
    delimiters: c.str("recipient_delimiter"),
    propagateToAliases: propagate.includes("alias"),
    ownerRequestSpecial: c.bool("owner_request_special"),
    expandOwnerAlias: c.bool("expand_owner_alias"),
    resetOwnerAlias: c.bool("reset_owner_alias"),
    allowCommands: classes("allow_mail_to_commands"),
    allowFiles: classes("allow_mail_to_files"),
    origin: c.bool("append_at_myorigin") ? c.str("myorigin") : "",
    doubleBounceSender: c.str("double_bounce_sender"),
    isLocal: async (address) => {
      try {
        return (await resolver.resolve(address)).transport === ctx.args.service;
      } catch (e) {
        // alias.ts defers on a DictError ("address resolver failure").
        if (e instanceof ResolveError) throw new DictError(e.message, "retry");
        throw e;
      }
    },
    // Delivered-To is written quoted; files from before that hold the bare address.
    isDeliveredTo: (address) => isDeliveredTo(delivered, address),
    deliverMailbox: (m) =>
      transport ? passMailbox(ctx, req, transport, m) : deliverToMailbox({
        ...special,
        command: (d) => deliverToCommand(special, d),
      }, m),
    deliverCommand: (d) => deliverToCommand(special, d),
    deliverFile: (d) => deliverToFile(special, d),
    forwardFile: (address, user) => forwardFor(special, address, user),
    includeFile: (path, account) => includeFor(special, path, account),
    luserRelay: (address, user) => {
      const template = c.raw("luser_relay") ?? "";
      if (template.trim() === "") return undefined;
      return localExpand(
        template.trim(),
        recipientAttributes(address, c.str("recipient_delimiter"), null, user),
      );
    },
    warn: (m) => ctx.log.warn(`${req.queueId}: ${m}`),
    verify: req.verify === true,
  };
}
