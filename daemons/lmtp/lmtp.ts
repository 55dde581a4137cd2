/**
 * The LMTP client delivery agent's work (RFC 2033), as Postfix's lmtp(8):
 * for one delivery request, connect to the next hop (a UNIX-domain socket
 * or a TCP server), reuse a cached connection when there is
 * one, run one mail transaction and report a status per recipient.
 *
 * What it shares with the smtp client (daemons/smtp): the connection and
 * its per-stage time limits and Postfix-worded errors (session.ts), the
 * connection cache (cache.ts), the MAIL/RCPT commands with their SIZE,
 * BODY and DSN parameters, address checks, content reading, reply wording
 * and XFORWARD (deliver.ts, xforward.ts), and address lookups for TCP next
 * hops (nexthop.ts, without MX lookups). The destination syntax is
 * lib/lmtp/destination.ts, shared with the sandbox's grants.
 *
 * What is LMTP's own, here:
 * - LHLO instead of EHLO; no HELO fallback. A greeting other than 220 or
 *   an LHLO reply other than 2XX is "host H[A] refused to talk to me: ...";
 *   a 5XX greeting is a deferral while lmtp_skip_5xx_greeting = yes (the
 *   default), as in Postfix; a 5XX LHLO reply bounces.
 * - After the content, one reply per accepted recipient, in RCPT order
 *   (RFC 2033 4.2): each decides its own recipient ("in reply to end of
 *   DATA command"), so one recipient over quota is deferred while the
 *   others are delivered. A connection lost before every reply came defers
 *   the recipients still open ("... while sending end of data -- message
 *   may be sent more than once").
 *   A 421 decides only its own recipient: later replies are still read, as
 *   Postfix reads them (checked against a live Postfix 3.7).
 * - A UNIX-domain server is named `myhostname[path]` in logs and replies
 *   (`relay=mail.example.com[private/dovecot-lmtp]`), a TCP one
 *   `host[address]:port`, as Postfix does. A next hop may list several
 *   destinations; each is tried in turn, and the last one's failure is
 *   reported when none works.
 * - A cached connection carries the next message only when the server
 *   holds no open transaction (RSET after every recipient or DATA was
 *   refused) and sent nothing it was not asked for.
 * - Address verification (DeliveryRequest.verify) stops after the RCPTs,
 *   as the smtp client does: an accepted recipient is deliverable with its
 *   RCPT reply, no DATA is sent and no content read, and the transaction
 *   is ended with RSET when the connection is cached, with QUIT otherwise.
 * - A next hop the configuration gets wrong (empty, bad port, a socket path
 *   too long for the system) defers with 4.3.5 and a warning naming it; a
 *   destination this daemon's sandbox does not grant is a connect failure
 *   "not permitted by this daemon's sandbox" (4.4.1, deferred). A host
 *   name that does not resolve defers too (Postfix would bounce with
 *   5.4.4): an LMTP next hop comes from the configuration, and a typo in
 *   it should not return every message to its sender.
 *
 * Not here: TLS and SASL (lmtp_tls_security_level = may is ignored with a
 * warning; encrypt or stronger, lmtp_sasl_auth_enable and the like stop
 * the start, lib/config), lmtp_generic_maps, header/body checks,
 * lmtp_assume_final (success notices say "relayed", Postfix's default).
 */
import { isPermanent } from "../../lib/outcome/mod.ts";
import type { Config } from "../../lib/config/mod.ts";
import {
  type DeliveryRecipient,
  type DeliveryRequest,
  failureStatus,
  logStatuses,
  type RecipientStatus,
} from "../../lib/deliver/mod.ts";
import {
  type AddressFamilies,
  denoResolver,
  familiesFrom,
  type Resolver,
} from "../../lib/dns/mod.ts";
import type { QueueFile } from "../../lib/queue/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import { DotStuffer, parseEhloKeywords, type Reply } from "../../lib/smtp/mod.ts";
import { ConnectionCache } from "../smtp/cache.ts";
import {
  type Content,
  deferDsn,
  deferRest,
  dsnOf,
  mailCommand,
  rcptCommand,
  readContent,
  replyStatus,
  resetQuietly,
  sentStatus,
  unreadContent,
  unsendable,
  wireText,
} from "../smtp/deliver.ts";
import { destinations, NexthopFailure } from "../smtp/nexthop.ts";
import {
  ConnectError,
  type ConnectFn,
  type ConnectUnixFn,
  relayLabel,
  SessionError,
  SmtpSession,
} from "../smtp/session.ts";
import { xforwardCommands } from "../smtp/xforward.ts";
import {
  type LmtpDestination,
  LmtpNexthopError,
  lmtpTcpPort,
  parseLmtpNexthop,
  UNIX_PATH_MAX,
} from "../../lib/lmtp/destination.ts";

/** The parameters the agent reads, converted once per Config. */
export interface LmtpSettings {
  /** myhostname: the name of a UNIX-domain server in logs. */
  myhostname: string;
  queueDir: string;
  lhloName: string;
  /** lmtp_tcp_port; null when it is no port number (every delivery defers, naming it). */
  tcpPort: number | null;
  families: AddressFamilies;
  connectTimeout: number;
  lhloTimeout: number;
  mailTimeout: number;
  rcptTimeout: number;
  dataInitTimeout: number;
  dataXferTimeout: number;
  dataDoneTimeout: number;
  rsetTimeout: number;
  quitTimeout: number;
  cacheOnDemand: boolean;
  cacheTimeLimitMs: number;
  reuseTimeLimitMs: number;
  sendXforward: boolean;
  skip5xxGreeting: boolean;
}

/** Reads the agent's parameters from `config`. */
export function lmtpSettings(config: Config): LmtpSettings {
  return {
    myhostname: config.str("myhostname"),
    queueDir: config.str("queue_directory"),
    lhloName: config.str("lmtp_lhlo_name"),
    tcpPort: lmtpTcpPort(config.str("lmtp_tcp_port")),
    families: familiesFrom(config.list("inet_protocols")),
    connectTimeout: config.time("lmtp_connect_timeout"),
    lhloTimeout: config.time("lmtp_lhlo_timeout"),
    mailTimeout: config.time("lmtp_mail_timeout"),
    rcptTimeout: config.time("lmtp_rcpt_timeout"),
    dataInitTimeout: config.time("lmtp_data_init_timeout"),
    dataXferTimeout: config.time("lmtp_data_xfer_timeout"),
    dataDoneTimeout: config.time("lmtp_data_done_timeout"),
    rsetTimeout: config.time("lmtp_rset_timeout"),
    quitTimeout: config.time("lmtp_quit_timeout"),
    cacheOnDemand: config.bool("lmtp_connection_cache_on_demand"),
    cacheTimeLimitMs: config.time("lmtp_connection_cache_time_limit") * 1000,
    reuseTimeLimitMs: config.time("lmtp_connection_reuse_time_limit") * 1000,
    sendXforward: config.bool("lmtp_send_xforward_command"),
    skip5xxGreeting: config.bool("lmtp_skip_5xx_greeting"),
  };
}

/** Options for {@link LmtpAgent}. */
export interface LmtpAgentOptions {
  /** DNS, for TCP next hops given by name. @default denoResolver */
  resolver?: Resolver;
  /** TCP connect. @default Deno.connect */
  connect?: ConnectFn;
  /** UNIX-domain connect. @default Deno.connect */
  connectUnix?: ConnectUnixFn;
}

/** Outcome of one transaction attempt on one session. */
type Attempt =
  | {
    kind: "done";
    statuses: Map<number, RecipientStatus>;
    reusable: boolean;
    /** The server holds an open transaction (verification): RSET before caching. */
    reset?: boolean;
  }
  /** A cached connection failed before the MAIL reply: start over on a fresh one. */
  | { kind: "stale" };

/** Why no transaction took place, as a status template for every recipient. */
interface Failure {
  dsn: string;
  reason: string;
  diagnostic?: string;
  remoteMta?: string;
  /** The server that refused, for relay=; "none" when there was no session. */
  relay?: string;
}

/** The greeting or LHLO was refused. */
class SetupFailure extends Error {
  override readonly name = "SetupFailure";
  constructor(readonly failure: Failure) {
    super(failure.reason);
  }
}

/** Time limit used for a TCP connect when lmtp_connect_timeout is 0 (no limit of ours). */
const NO_CONNECT_LIMIT = 24 * 3600;

/**
 * The agent: holds the connection cache and the injected resolver and
 * connect functions. {@link deliver} is a DeliverFn for serveDelivery.
 */
export class LmtpAgent {
  readonly cache = new ConnectionCache();
  readonly #resolver: Resolver;
  readonly #connect: ConnectFn;
  readonly #connectUnix: ConnectUnixFn;
  #settings = new WeakMap<Config, LmtpSettings>();
  #quitTimeout = 5;

  constructor(opts: LmtpAgentOptions = {}) {
    this.#resolver = opts.resolver ?? denoResolver;
    // async: a sandbox refusal becomes a rejection, which SmtpSession.open reports.
    this.#connect = opts.connect ?? (async (o) => await Deno.connect({ ...o, transport: "tcp" }));
    this.#connectUnix = opts.connectUnix ?? ((o) => Deno.connect(o));
  }

  /** Delivers one request; never throws for delivery failures (they become statuses). */
  deliver = async (
    req: DeliveryRequest,
    file: QueueFile,
    ctx: ServiceContext,
  ): Promise<RecipientStatus[]> => {
    const start = Date.now();
    let s = this.#settings.get(ctx.config);
    if (!s) this.#settings.set(ctx.config, s = lmtpSettings(ctx.config));
    this.#quitTimeout = s.quitTimeout;

    const result = unsendable(req);
    const sendable = req.recipients.filter((r) => !result.has(r.index));
    let connDone = start;
    if (sendable.length > 0) {
      const r = await this.#deliverSendable({ ...req, recipients: sendable }, file, s, ctx);
      connDone = r.connDone;
      for (const [i, st] of r.statuses) result.set(i, st);
    }

    return logStatuses(ctx, req, result, start, connDone);
  };

  /** QUITs all cached connections. */
  async close(): Promise<void> {
    await this.cache.close(this.#quitTimeout);
  }

  async #deliverSendable(
    req: DeliveryRequest,
    file: QueueFile,
    s: LmtpSettings,
    ctx: ServiceContext,
  ): Promise<{ statuses: Map<number, RecipientStatus>; connDone: number }> {
    let dests: LmtpDestination[];
    try {
      dests = parseLmtpNexthop(req.nexthop, { queueDir: s.queueDir, defaultPort: s.tcpPort });
    } catch (e) {
      if (!(e instanceof LmtpNexthopError)) throw e;
      ctx.log.warn(`${req.queueId}: transport ${req.transport}: ${e.message}`);
      return {
        statuses: failAll(req.recipients, {
          dsn: "4.3.5",
          reason: `bad LMTP destination "${req.nexthop}": ${e.message}`,
        }),
        connDone: Date.now(),
      };
    }
    const content = req.verify ? unreadContent(file) : await readContent(file);
    const key = `${req.transport}:${req.nexthop}`;
    for (let session = this.cache.take(key); session; session = this.cache.take(key)) {
      const connDone = Date.now();
      const a = await this.#transact(session, req, file, content, s, true);
      if (a.kind === "done") {
        await this.#park(key, session, a.reusable, s, a.reset);
        return { statuses: a.statuses, connDone };
      }
      session.close();
    }
    let last: Failure | null = null;
    for (const dest of dests) {
      const r = await this.#tryDestination(dest, req, file, content, s, ctx);
      if ("failure" in r) {
        last = r.failure;
        continue;
      }
      await this.#park(key, r.session, r.reusable, s, r.reset);
      return { statuses: r.statuses, connDone: r.connDone };
    }
    return { statuses: failAll(req.recipients, last!, true), connDone: Date.now() };
  }

  /** Each address of one destination in turn, until a session completes a transaction. */
  async #tryDestination(
    dest: LmtpDestination,
    req: DeliveryRequest,
    file: QueueFile,
    content: Content,
    s: LmtpSettings,
    ctx: ServiceContext,
  ): Promise<
    | { failure: Failure }
    | {
      statuses: Map<number, RecipientStatus>;
      connDone: number;
      session: SmtpSession;
      reusable: boolean;
      reset?: boolean;
    }
  > {
    let last: Failure | null = null;
    const attempt = async (open: () => Promise<SmtpSession>) => {
      let session: SmtpSession;
      try {
        session = await open();
      } catch (e) {
        if (!(e instanceof ConnectError)) throw e;
        last = { dsn: "4.4.1", reason: e.message };
        return null;
      }
      try {
        await handshake(session, s);
      } catch (e) {
        session.close();
        if (e instanceof SetupFailure) last = e.failure;
        else if (e instanceof SessionError) {
          last = {
            dsn: "4.4.2",
            reason: e.message,
            remoteMta: session.dest.host,
            relay: relayLabel(session.dest),
          };
        } else throw e;
        return null;
      }
      const connDone = Date.now();
      const a = await this.#transact(session, req, file, content, s, false);
      if (a.kind !== "done") throw new Error("unreachable: fresh session reported stale");
      return { statuses: a.statuses, connDone, session, reusable: a.reusable, reset: a.reset };
    };

    if (dest.kind === "unix") {
      const where = { host: s.myhostname, addr: dest.path, port: 0 };
      if (new TextEncoder().encode(dest.socket).length > UNIX_PATH_MAX) {
        // Postfix: "unix-domain name too long", and a deferral that blames the configuration.
        ctx.log.warn(`${req.queueId}: unix-domain name too long: ${dest.socket}`);
        return { failure: { dsn: "4.3.5", reason: "Server configuration error" } };
      }
      const r = await attempt(() =>
        SmtpSession.openUnix(where, dest.socket, s.connectTimeout, this.#connectUnix)
      );
      return r ?? { failure: last! };
    }
    const limit = s.connectTimeout > 0 ? s.connectTimeout : NO_CONNECT_LIMIT;
    try {
      const nexthop = { host: dest.host, port: dest.port, mx: false };
      for await (const d of destinations(nexthop, this.#resolver, s.families)) {
        const r = await attempt(() => SmtpSession.open(d, limit, this.#connect));
        if (r) return r;
      }
    } catch (e) {
      if (!(e instanceof NexthopFailure)) throw e;
      // A name that does not exist is the configuration's fault: defer, as for a bad path.
      return { failure: { dsn: "4" + e.dsn.slice(1), reason: e.message } };
    }
    return {
      failure: last ?? {
        dsn: "4.4.3",
        reason: `no address found for LMTP server ${dest.host}`,
      },
    };
  }

  /**
   * Parks `session` in the cache, or QUITs it. `reset`: the server still
   * holds the transaction (address verification ends after RCPT), so a
   * connection that is kept gets RSET first; one that is not kept, or
   * whose RSET fails, gets QUIT.
   */
  async #park(
    key: string,
    session: SmtpSession,
    reusable: boolean,
    s: LmtpSettings,
    reset = false,
  ): Promise<void> {
    // A server that answered more than it was asked (extra end-of-data replies) is not
    // trusted with the next message: its surplus would answer that message's commands.
    let keep = reusable && s.cacheOnDemand && !session.unsolicited;
    const limits = () => ({
      idleMs: keep ? s.cacheTimeLimitMs : 0,
      reuseMs: keep ? s.reuseTimeLimitMs : 0,
      quitTimeoutSec: s.quitTimeout,
    });
    if (reset && this.cache.keeps(session, limits())) {
      keep = await resetQuietly(session, s.rsetTimeout);
    }
    this.cache.put(key, session, limits());
  }

  /** One LMTP transaction on an established session. */
  async #transact(
    session: SmtpSession,
    req: DeliveryRequest,
    file: QueueFile,
    content: Content,
    s: LmtpSettings,
    reused: boolean,
  ): Promise<Attempt> {
    const statuses = new Map<number, RecipientStatus>();
    const relay = relayLabel(session.dest);
    const fail = (rcpts: DeliveryRecipient[], reply: Reply, command: string) => {
      for (const r of rcpts) statuses.set(r.index, replyStatus(session, r, reply, command, relay));
    };
    const f = session.features;
    const pipelining = f.has("PIPELINING");
    const mailCmd = mailCommand(req, content, f);
    const rcptCmds = req.recipients.map((r) => rcptCommand(r, f));
    let stage = "sending MAIL FROM";
    let gotMailReply = false;
    const accepted: DeliveryRecipient[] = [];
    try {
      if (s.sendXforward && f.has("XFORWARD")) {
        stage = "sending XFORWARD";
        for (const cmd of xforwardCommands(file.envelope, f.get("XFORWARD") ?? "")) {
          await session.write(cmd, s.mailTimeout, stage);
          const reply = await session.readReply(s.mailTimeout, stage);
          if (reused && reply.code === 421) return { kind: "stale" };
          if (reply.code < 200 || reply.code >= 300) {
            fail(req.recipients, reply, "XFORWARD command");
            return { kind: "done", statuses, reusable: false };
          }
        }
        stage = "sending MAIL FROM";
      }
      // Verification sends no DATA, pipelined or not.
      const data = req.verify ? "" : "DATA\r\n";
      await session.write(
        pipelining ? mailCmd + rcptCmds.join("") + data : mailCmd,
        s.mailTimeout,
        stage,
      );
      const mailReply = await session.readReply(s.mailTimeout, stage);
      if (reused && mailReply.code === 421) return { kind: "stale" };
      gotMailReply = true;
      const mailOk = mailReply.code >= 200 && mailReply.code < 300;
      if (!mailOk) fail(req.recipients, mailReply, "MAIL FROM command");
      if (mailReply.code === 421) return { kind: "done", statuses, reusable: false };

      stage = "sending RCPT TO";
      if (pipelining || mailOk) {
        for (let i = 0; i < req.recipients.length; i++) {
          const r = req.recipients[i];
          if (!pipelining) await session.write(rcptCmds[i], s.rcptTimeout, stage);
          const reply = await session.readReply(s.rcptTimeout, stage);
          if (!mailOk) continue;
          if (reply.code >= 200 && reply.code < 300) {
            accepted.push(r);
            // Verification: the RCPT reply is the answer.
            if (req.verify) statuses.set(r.index, sentStatus(session, r, reply));
          } else fail([r], reply, "RCPT TO command");
          if (reply.code === 421) {
            deferRest(
              statuses,
              req.recipients,
              "4.4.2",
              `host ${session.label} closed the session`,
              relay,
            );
            return { kind: "done", statuses, reusable: false };
          }
        }
      }
      // Verification ends here, with no DATA; #park ends the transaction (RSET or QUIT).
      if (req.verify) return { kind: "done", statuses, reusable: true, reset: mailOk };

      stage = "sending DATA command";
      let dataReply: Reply | null = null;
      if (pipelining) {
        dataReply = await session.readReply(s.dataInitTimeout, stage);
      } else if (accepted.length > 0) {
        await session.write("DATA\r\n", s.dataInitTimeout, stage);
        dataReply = await session.readReply(s.dataInitTimeout, stage);
      }
      // A transaction the server still holds open (MAIL accepted, no content sent) is
      // reset before the connection is used again; a server that will not reset is dropped.
      const reset = () => resetQuietly(session, s.rsetTimeout);
      if (accepted.length === 0) {
        // Nobody to deliver to. A pipelining server that still said 354 gets an empty
        // message ended at once: with no recipient accepted it has no reply to give.
        if (dataReply?.code === 354) {
          stage = "sending end of data";
          await session.write(".\r\n", s.dataDoneTimeout, stage);
          return { kind: "done", statuses, reusable: false };
        }
        if (dataReply?.code === 421) return { kind: "done", statuses, reusable: false };
        return { kind: "done", statuses, reusable: mailOk ? await reset() : true };
      }
      if (dataReply!.code !== 354) {
        fail(accepted, dataReply!, "DATA command");
        if (dataReply!.code === 421) return { kind: "done", statuses, reusable: false };
        return { kind: "done", statuses, reusable: await reset() };
      }

      stage = "sending message body";
      const stuffer = new DotStuffer();
      if (content.mem) {
        const body = stuffer.push(content.mem);
        const tail = stuffer.end();
        const out = new Uint8Array(body.length + tail.length);
        out.set(body);
        out.set(tail, body.length);
        await session.write(out, s.dataXferTimeout, stage);
      } else {
        for await (const chunk of file.content()) {
          await session.write(stuffer.push(chunk), s.dataXferTimeout, stage);
        }
        await session.write(stuffer.end(), s.dataXferTimeout, stage);
      }

      // RFC 2033 4.2: one reply per accepted recipient, in the order of the RCPTs.
      stage = "sending end of data -- message may be sent more than once";
      // A 421 decides its own recipient only: the replies after it are still read (as
      // Postfix does); a server that closes leaves the rest to the lost-connection case.
      let reusable = true;
      for (const r of accepted) {
        const reply = await session.readReply(s.dataDoneTimeout, stage);
        if (reply.code >= 200 && reply.code < 300) {
          statuses.set(r.index, sentStatus(session, r, reply));
        } else {
          fail([r], reply, "end of DATA command");
          if (reply.code === 421) reusable = false;
        }
      }
      session.transactions++;
      return { kind: "done", statuses, reusable };
    } catch (e) {
      if (!(e instanceof SessionError)) throw e;
      if (reused && !gotMailReply) return { kind: "stale" };
      // Recipients already answered keep their reply (a delivered one stays delivered).
      deferRest(statuses, req.recipients, "4.4.2", e.message, relay);
      return { kind: "done", statuses, reusable: false };
    }
  }
}

/** Reads the greeting and does LHLO. Throws SetupFailure or SessionError. */
async function handshake(session: SmtpSession, s: LmtpSettings): Promise<void> {
  const greeting = await session.readReply(s.lhloTimeout, "receiving the initial server greeting");
  if (greeting.code !== 220) {
    const text = wireText(greeting);
    const permanent = isPermanent(greeting) && !s.skip5xxGreeting;
    throw new SetupFailure({
      dsn: permanent ? dsnOf(greeting) : deferDsn(greeting),
      reason: `host ${session.label} refused to talk to me: ${text}`,
      diagnostic: `smtp; ${text}`,
      remoteMta: session.dest.host,
      relay: relayLabel(session.dest),
    });
  }
  await session.write(`LHLO ${s.lhloName}\r\n`, s.lhloTimeout, "performing the LHLO handshake");
  const lhlo = await session.readReply(s.lhloTimeout, "performing the LHLO handshake");
  if (lhlo.code < 200 || lhlo.code >= 300) {
    const text = wireText(lhlo);
    throw new SetupFailure({
      dsn: isPermanent(lhlo) ? dsnOf(lhlo) : deferDsn(lhlo),
      reason: `host ${session.label} refused to talk to me: ${text}`,
      diagnostic: `smtp; ${text}`,
      remoteMta: session.dest.host,
      relay: relayLabel(session.dest),
    });
  }
  session.features = parseEhloKeywords(lhlo);
}

/**
 * The same failure for every recipient: bounced for 5.X.X, else deferred;
 * `site` when no server could be had (RecipientStatus.site).
 */
function failAll(
  rcpts: DeliveryRecipient[],
  f: Failure,
  site = false,
): Map<number, RecipientStatus> {
  const status = failureStatus(f.dsn);
  const out = new Map<number, RecipientStatus>();
  for (const r of rcpts) {
    out.set(r.index, {
      index: r.index,
      status,
      dsn: f.dsn,
      reason: f.reason,
      relay: f.relay ?? "none",
      ...(site ? { site: true as const } : {}),
      ...(f.diagnostic ? { diagnostic: f.diagnostic } : {}),
      ...(f.remoteMta ? { remoteMta: f.remoteMta } : {}),
    });
  }
  return out;
}
