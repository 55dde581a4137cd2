/**
 * The SMTP client delivery agent's work: for one delivery request, find
 * the next hop's addresses (lib/dns), reuse a cached connection or open a
 * new one, run one mail transaction (MAIL, RCPT per recipient, DATA) and
 * report a status per recipient in Postfix's words.
 *
 * Behaviour, following Postfix's smtp(8):
 * - Addresses are tried in order until one completes the greeting and the
 *   EHLO/HELO handshake; a refused connection, a non-220 greeting or a
 *   failed handshake moves on to the next address. When all fail the
 *   recipients are deferred with the last reason (4.4.1 for connect
 *   failures).
 * - EHLO, then HELO when EHLO is rejected with 5XX. With PIPELINING, MAIL,
 *   all RCPTs and DATA go out in one write. SIZE= is sent when offered,
 *   BODY=8BITMIME when the content has 8-bit bytes and the server offers
 *   8BITMIME (8-bit content is sent as is otherwise), DSN parameters when
 *   the server offers DSN.
 * - After EHLO, STARTTLS and AUTH as the next hop's TLS policy and the
 *   SASL settings say (security.ts); their failures move on to the next
 *   address like a failed handshake. At a DANE level each host's policy
 *   comes from its TLSA records first (dane.ts); a host whose TLSA lookup
 *   failed, or without usable records at dane-only, is skipped. A TLS connection is cached only with
 *   smtp_tls_connection_reuse = yes.
 * - With smtp_send_xforward_command = yes and a server that offers
 *   XFORWARD, the original client's attributes go before MAIL
 *   (xforward.ts); a refusal fails the transaction like a MAIL refusal.
 * - Addresses go out quoted as Postfix's smtp_quote_rfc821_envelope does
 *   (lib/address formatPath): `"a b"@example.com`. An address that cannot
 *   be written into an SMTP command at all (a control character, a domain
 *   that is no host name) is never sent: the recipient bounces with 5.1.3,
 *   or every recipient with 5.1.7 when it is the sender. ENVID and ORCPT
 *   are xtext-encoded from the queue file's decoded values (RFC 3461;
 *   utf-8-addr-xtext for utf-8 ORCPTs, RFC 6533); NOTIFY and RET go out
 *   only with their defined values.
 * - Each RCPT reply decides its recipient (4XX deferred, 5XX bounced); the
 *   end-of-data reply decides every accepted recipient. A broken or timed
 *   out connection defers what is still open.
 * - After a transaction the connection is parked in the connection cache
 *   (cache.ts); a parked connection that fails before its MAIL reply is
 *   dropped and the request silently starts over on a fresh connection.
 * - Address verification (DeliveryRequest.verify, Postfix's
 *   DEL_REQ_FLAG_USR_VRFY) stops after the RCPTs: an accepted recipient is
 *   deliverable with its RCPT reply ("250 2.1.5 Ok"), the others fail as in
 *   a delivery. No DATA is sent; the open transaction is ended with RSET
 *   when the connection goes back to the cache, with QUIT otherwise.
 *
 * Content is read once before connecting: up to {@link MEMORY_LIMIT} bytes
 * stay in memory and go out in one write; a larger message is scanned for
 * 8-bit bytes and its size, then streamed from the queue file. Address
 * verification reads none: SIZE= is the size the queue file implies, and
 * no BODY= is sent.
 */
import { isPermanent } from "../../lib/outcome/mod.ts";
import { AddressError, formatPath, quoteAddress } from "../../lib/address/mod.ts";
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
import { splitOrcpt } from "../../lib/dsn/mod.ts";
import { xtextEncode } from "../../lib/mime/mod.ts";
import type { QueueFile } from "../../lib/queue/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import { type Config, parseIp } from "../../lib/config/mod.ts";
import { interfaceAddresses } from "../../lib/resolve/interfaces.ts";
import {
  DotStuffer,
  matchEnhancedClass,
  parseEhloKeywords,
  type Reply,
} from "../../lib/smtp/mod.ts";
import { type DnssecResolver, dnssecResolver } from "../../lib/dane/mod.ts";
import { isDaneLevel, nexthopDomain } from "../../lib/tls/client_policy.ts";
import { ConnectionCache, type ParkLimits } from "./cache.ts";
import { hostSite, type TlsaDecisions, TrackingResolver } from "./dane.ts";
import {
  type Enforced,
  enforcedSite,
  ipcStsLookup,
  type StsLookup,
  stsPolicyOf,
} from "./mta_sts.ts";
import {
  hostReport,
  ipcTlsRptSink,
  type ReportPolicy,
  stsReportPolicy,
  tlsaReportPolicy,
  type TlsReport,
  type TlsRptSink,
} from "./tlsrpt.ts";
import { mxMatchesPolicy } from "../../lib/mtasts/mod.ts";
import { checkRequireTlsOffered, requireTlsSite } from "./requiretls.ts";
import { xforwardCommands } from "./xforward.ts";
import { destinations, NexthopFailure, parseNexthop } from "./nexthop.ts";
import { ConnectError, type ConnectFn, relayLabel, SessionError, SmtpSession } from "./session.ts";
import {
  ClientSecurity,
  type RequestSecurity,
  secureSession,
  SecurityFailure,
  type SecurityLog,
} from "./security.ts";

/** Content up to this size is held in memory and sent in one write. */
export const MEMORY_LIMIT = 4 * 1024 * 1024;

/** The parameters the agent reads, converted once per Config. */
export interface SmtpSettings {
  heloName: string;
  families: AddressFamilies;
  connectTimeout: number;
  heloTimeout: number;
  mailTimeout: number;
  rcptTimeout: number;
  dataInitTimeout: number;
  dataXferTimeout: number;
  dataDoneTimeout: number;
  quitTimeout: number;
  /** smtp_rset_timeout. */
  rsetTimeout: number;
  /** smtp_xforward_timeout. */
  xforwardTimeout: number;
  cacheTimeLimitMs: number;
  reuseTimeLimitMs: number;
  /** smtp_send_xforward_command. */
  sendXforward: boolean;
  /** smtp_mx_address_limit (0: none). */
  mxAddressLimit: number;
  /** smtp_mx_session_limit (0: none). */
  mxSessionLimit: number;
  /** smtp_fallback_relay, in order. */
  fallbackRelays: string[];
  /** smtp_connection_reuse_count_limit (0: none). */
  reuseCountLimit: number;
  /** This host's addresses (inet_interfaces, proxy_interfaces), for MX loop detection. */
  isSelf: (addr: string) => boolean;
}

/** Reads the agent's parameters from `config`; `warn` says when "all" cannot be listed. */
export function smtpSettings(
  config: Config,
  warn: (message: string) => void = () => {},
): SmtpSettings {
  const io = { protocols: config.list("inet_protocols"), warn };
  let own: Uint8Array[];
  try {
    own = [
      ...interfaceAddresses("inet_interfaces", config.list("inet_interfaces"), io),
      ...interfaceAddresses("proxy_interfaces", config.list("proxy_interfaces"), io),
    ];
  } catch (e) {
    // A host name there (the resolver refuses it too): loopback is still this host.
    warn(`${(e as Error).message}; MX loop detection knows only the loopback addresses`);
    own = interfaceAddresses("inet_interfaces", ["loopback-only"], io);
  }
  const isSelf = (addr: string) => {
    const b = parseIp(addr);
    return b !== null && own.some((a) => a.length === b.length && a.every((x, i) => x === b[i]));
  };
  return {
    heloName: config.str("smtp_helo_name"),
    families: familiesFrom(config.list("inet_protocols")),
    connectTimeout: config.time("smtp_connect_timeout"),
    heloTimeout: config.time("smtp_helo_timeout"),
    mailTimeout: config.time("smtp_mail_timeout"),
    rcptTimeout: config.time("smtp_rcpt_timeout"),
    dataInitTimeout: config.time("smtp_data_init_timeout"),
    dataXferTimeout: config.time("smtp_data_xfer_timeout"),
    dataDoneTimeout: config.time("smtp_data_done_timeout"),
    quitTimeout: config.time("smtp_quit_timeout"),
    rsetTimeout: config.time("smtp_rset_timeout"),
    xforwardTimeout: config.time("smtp_xforward_timeout"),
    cacheTimeLimitMs: config.time("smtp_connection_cache_time_limit") * 1000,
    reuseTimeLimitMs: config.time("smtp_connection_reuse_time_limit") * 1000,
    sendXforward: config.bool("smtp_send_xforward_command"),
    mxAddressLimit: config.int("smtp_mx_address_limit"),
    mxSessionLimit: config.int("smtp_mx_session_limit"),
    fallbackRelays: config.list("smtp_fallback_relay"),
    reuseCountLimit: config.int("smtp_connection_reuse_count_limit"),
    isSelf,
  };
}

/** Options for {@link SmtpAgent}. */
export interface SmtpAgentOptions {
  /** DNS. @default denoResolver */
  resolver?: Resolver;
  /** DNS with DNSSEC's verdicts, for next hops at a DANE level. @default lib/dane dnssecResolver() */
  dnssec?: DnssecResolver;
  /** MTA-STS policies (postwarden_mta_sts). @default asked of the mtasts service */
  mtaSts?: StsLookup;
  /** Where TLS-RPT events go (smtp_tlsrpt_enable). @default the mtasts service */
  tlsRpt?: TlsRptSink;
  /** TCP connect. @default Deno.connect */
  connect?: ConnectFn;
}

/** The message content as prepared for sending. */
export interface Content {
  /** The whole content, or null when it is streamed from the file. */
  mem: Uint8Array | null;
  size: number;
  eightBit: boolean;
}

/** The domain whose MTA-STS policy applies to a next hop: one looked up by MX, else null. */
function stsDomain(nexthop: string): string | null {
  try {
    const nh = parseNexthop(nexthop);
    return nh.mx ? nh.host : null;
  } catch {
    return null; // #fresh reports the malformed next hop
  }
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

/** Why a session could not be set up (greeting or handshake), as a status template. */
class SetupFailure extends Error {
  override readonly name = "SetupFailure";
  constructor(readonly dsn: string, message: string, readonly diagnostic?: string) {
    super(message);
  }
}

/**
 * The agent: holds the connection cache and the injected resolver and
 * connect function. {@link deliver} is a {@link DeliverFn} for serveDelivery.
 */
export class SmtpAgent {
  readonly cache = new ConnectionCache();
  readonly #resolver: Resolver;
  /** For next hops at a DANE level (smtp_dns_support_level = dnssec). */
  readonly #dnssec: DnssecResolver;
  readonly #connect: ConnectFn;
  readonly #mtaSts: StsLookup | null;
  #tlsRpt: TlsRptSink | null;
  #settings = new WeakMap<Config, SmtpSettings>();
  #security = new WeakMap<Config, ClientSecurity>();
  #quitTimeout = 5;

  constructor(opts: SmtpAgentOptions = {}) {
    this.#resolver = opts.resolver ?? denoResolver;
    this.#dnssec = opts.dnssec ?? dnssecResolver();
    this.#mtaSts = opts.mtaSts ?? null;
    this.#tlsRpt = opts.tlsRpt ?? null;
    this.#connect = opts.connect ?? ((o) => Deno.connect({ ...o, transport: "tcp" }));
  }

  /** Delivers one request; never throws for delivery failures (they become statuses). */
  deliver = async (
    req: DeliveryRequest,
    file: QueueFile,
    ctx: ServiceContext,
  ): Promise<RecipientStatus[]> => {
    const start = Date.now();
    let s = this.#settings.get(ctx.config);
    if (!s) {
      this.#settings.set(ctx.config, s = smtpSettings(ctx.config, (m) => ctx.log.warn(m)));
    }
    let sec = this.#security.get(ctx.config);
    if (!sec) this.#security.set(ctx.config, sec = new ClientSecurity(ctx.config, ctx.maps));
    this.#quitTimeout = s.quitTimeout;

    // What cannot be written into an SMTP command bounces without a connection.
    const result = unsendable(req);
    const sendable = req.recipients.filter((r) => !result.has(r.index));
    let connDone = start;
    if (sendable.length > 0) {
      const r = await this.#deliverSendable({ ...req, recipients: sendable }, file, s, {
        security: sec,
        log: ctx.log,
        mtaSts: this.#mtaSts ?? ipcStsLookup(ctx),
        tlsRpt: sec.tlsrpt ? (this.#tlsRpt ??= ipcTlsRptSink(ctx)) : null,
      });
      connDone = r.connDone;
      for (const [i, st] of r.statuses) result.set(i, st);
    }

    return logStatuses(ctx, req, result, start, connDone);
  };

  /** One transaction for recipients whose addresses can all be sent: cached session or fresh. */
  async #deliverSendable(
    req: DeliveryRequest,
    file: QueueFile,
    s: SmtpSettings,
    env: {
      security: ClientSecurity;
      log: SecurityLog;
      mtaSts: StsLookup;
      tlsRpt: TlsRptSink | null;
    },
  ): Promise<{ statuses: Map<number, RecipientStatus>; connDone: number }> {
    const content = req.verify ? unreadContent(file) : await readContent(file);
    const nexthopText = req.nexthop || domainOf(req.recipients[0]?.address ?? "");
    const key = `${req.transport}:${nexthopText}`;
    // The next hop's TLS policy (security.ts); one that cannot be followed defers its mail.
    let rs: RequestSecurity;
    // The MTA-STS policy of a domain looked up by MX, unless the admin's table decides.
    let sts: Enforced | null = null;
    try {
      rs = {
        security: env.security,
        site: await env.security.site(nexthopText, env.log),
        nexthop: nexthopText,
        sender: req.sender,
        log: env.log,
        plaintextOnly: false,
      };
      const domain = env.security.mtaSts.enabled && !rs.site.fromTable
        ? stsDomain(nexthopText)
        : null;
      if (domain) sts = await stsPolicyOf(env.mtaSts, domain, env.log);
    } catch (e) {
      if (!(e instanceof SecurityFailure)) throw e;
      const statuses = new Map<number, RecipientStatus>();
      deferRest(statuses, req.recipients, e.dsn, e.message, "none");
      return { statuses, connDone: Date.now() };
    }
    // A cached connection may predate the policy: under one, only fresh connections.
    const enforced = sts?.policy.mode === "enforce";
    for (
      let session = enforced || req.requiretls ? null : this.cache.take(key);
      session;
      session = this.cache.take(key)
    ) {
      const connDone = Date.now();
      const a = await this.#transact(session, req, file, content, s, true);
      if (a.kind === "done") {
        await this.#park(key, session, a.reusable && this.#cacheable(session, rs), s, a.reset);
        return { statuses: a.statuses, connDone };
      }
      session.close();
    }
    const r = await this.#fresh(nexthopText, req, file, content, s, rs, sts, env.tlsRpt);
    if (r.session) {
      await this.#park(key, r.session, r.reusable && this.#cacheable(r.session, rs), s, r.reset);
    }
    return { statuses: r.statuses, connDone: r.connDone };
  }

  /** QUITs all cached connections. */
  async close(): Promise<void> {
    await this.cache.close(this.#quitTimeout);
  }

  /**
   * A TLS session is cached only with smtp_tls_connection_reuse = yes, and
   * none with smtp_sender_dependent_authentication, as in Postfix.
   */
  #cacheable(session: SmtpSession, rs: RequestSecurity): boolean {
    const sasl = rs.security.sasl;
    if (sasl.enabled && sasl.senderDependent) return false;
    return session.tls === null || rs.security.tls.connectionReuse;
  }

  /**
   * Parks `session` in the cache, or QUITs it. `reset`: the server still
   * holds the transaction (address verification ends after RCPT), so a
   * connection that is kept gets RSET first, as Postfix does; one that is
   * not kept, or whose RSET fails, gets QUIT.
   */
  async #park(
    key: string,
    session: SmtpSession,
    reusable: boolean,
    s: SmtpSettings,
    reset = false,
  ): Promise<void> {
    // smtp_connection_reuse_count_limit N: a connection is used at most N+1 times.
    session.uses++;
    if (s.reuseCountLimit > 0 && session.uses > s.reuseCountLimit) reusable = false;
    const drop: ParkLimits = { idleMs: 0, reuseMs: 0, quitTimeoutSec: s.quitTimeout };
    let limits: ParkLimits = reusable
      ? { idleMs: s.cacheTimeLimitMs, reuseMs: s.reuseTimeLimitMs, quitTimeoutSec: s.quitTimeout }
      : drop;
    if (reset && this.cache.keeps(session, limits) && !await resetQuietly(session, s.rsetTimeout)) {
      limits = drop;
    }
    this.cache.put(key, session, limits);
  }

  /** Tries each address of the next hop until one session completes a transaction. */
  async #fresh(
    nexthopText: string,
    req: DeliveryRequest,
    file: QueueFile,
    content: Content,
    s: SmtpSettings,
    rs: RequestSecurity,
    sts: Enforced | null,
    tlsRpt: TlsRptSink | null,
  ): Promise<{
    statuses: Map<number, RecipientStatus>;
    connDone: number;
    session?: SmtpSession;
    reusable: boolean;
    reset?: boolean;
  }> {
    let last: {
      dsn: string;
      reason: string;
      diagnostic?: string;
      remoteMta?: string;
      relay?: string;
    } | null = null;
    const enforced = sts?.policy.mode === "enforce" ? sts : null;
    const testing = sts?.policy.mode === "testing" ? sts : null;
    // The next hop, then smtp_fallback_relay's, each with its own TLS policy and credentials.
    const sites = [nexthopText, ...s.fallbackRelays];
    for (const [siteIndex, site] of sites.entries()) {
      let siteRs = rs;
      // An enforced MTA-STS policy names the hosts the mail may go to: no fallback relay.
      if (siteIndex > 0 && enforced) break;
      if (siteIndex > 0) {
        try {
          siteRs = { ...rs, nexthop: site, site: await rs.security.site(site, rs.log) };
        } catch (e) {
          if (!(e instanceof SecurityFailure)) throw e;
          last = { dsn: e.dsn, reason: e.message };
          continue;
        }
      }
      // smtp_mx_session_limit counts sessions that got past EHLO and TLS.
      let sessions = 0;
      // At a DANE level the lookups say whether DNSSEC vouches for them (dane.ts).
      // REQUIRETLS asks whether DNSSEC vouches for the MX records too (requiretls.ts).
      const dane = isDaneLevel(siteRs.site.level) || (req.requiretls && rs.security.tls.dnssec)
        ? new TrackingResolver(this.#dnssec)
        : null;
      const decisions: TlsaDecisions = new Map();
      try {
        const nh = parseNexthop(site);
        const found = destinations(nh, dane ?? this.#resolver, s.families, {
          mxAddressLimit: s.mxAddressLimit,
          isSelf: s.isSelf,
        });
        for await (const dest of found) {
          if (s.mxSessionLimit > 0 && sessions >= s.mxSessionLimit) break;
          let hostRs = siteRs;
          if (dane && isDaneLevel(siteRs.site.level)) {
            const d = await hostSite(siteRs.site, dest, nh, dane, {
              insecureMx: rs.security.tls.insecureMx,
              log: rs.log,
              decisions,
            });
            if (d instanceof SecurityFailure) {
              last = { dsn: d.dsn, reason: d.message };
              continue;
            }
            hostRs = { ...siteRs, site: d };
          }
          // TLS-RPT: the next hop's own host under DANE or its domain's MTA-STS policy.
          let report: TlsReport | undefined;
          if (tlsRpt && siteIndex === 0) {
            const policy: ReportPolicy | null =
              tlsaReportPolicy(nexthopDomain(nexthopText), hostRs.site) ??
                (sts ? stsReportPolicy(sts.domain, sts.policy) : null);
            if (policy) report = hostReport(tlsRpt, policy, dest);
          }
          if (enforced) {
            const d = enforcedSite(enforced, dest.host, hostRs.site, rs.security.stsSite());
            if (d instanceof SecurityFailure) {
              report?.("validation-failure", "MX host not named by the MTA-STS policy");
              last = { dsn: d.dsn, reason: d.message };
              continue;
            }
            hostRs = { ...hostRs, site: d };
          } else if (testing && report && hostRs.site.level !== "dane") {
            // Checked as under enforce, for the report only.
            if (!mxMatchesPolicy(testing.policy, dest.host)) {
              report("validation-failure", "MX host not named by the MTA-STS policy");
              report = undefined;
            } else if (hostRs.site.level === "may" || hostRs.site.level === "encrypt") {
              const caFile = rs.security.mtaSts.caFile;
              hostRs = { ...hostRs, site: { ...hostRs.site, match: ["hostname"], caFile } };
            }
          }
          if (req.requiretls) {
            const d = requireTlsSite({
              nexthop: nh,
              dest,
              dns: dane,
              enforced: enforced !== null && siteIndex === 0,
              site: hostRs.site,
              verify: () => rs.security.requireTlsSite(),
            });
            if (d instanceof SecurityFailure) {
              last = { dsn: d.dsn, reason: d.message };
              continue;
            }
            hostRs = { ...hostRs, site: d };
          }
          let session: SmtpSession | null = null;
          // A failed TLS handshake at "may" tries the same server once more in plaintext.
          for (const plaintextOnly of [false, true]) {
            try {
              session = await SmtpSession.open(dest, s.connectTimeout, this.#connect);
            } catch (e) {
              if (!(e instanceof ConnectError)) throw e;
              last = { dsn: "4.4.1", reason: e.message };
              session = null;
              break;
            }
            try {
              await handshake(session, s);
              await secureSession(
                session,
                { ...hostRs, plaintextOnly, report },
                { heloTimeout: s.heloTimeout },
                () => ehlo(session!, s),
              );
              if (req.requiretls) checkRequireTlsOffered(session.features, session.label);
              break;
            } catch (e) {
              session.close();
              session = null;
              // Once connected, relay= names the server, as in Postfix's log.
              const relay = relayLabel(dest);
              if (e instanceof SetupFailure) {
                last = {
                  dsn: e.dsn,
                  reason: e.message,
                  diagnostic: e.diagnostic,
                  remoteMta: dest.host,
                  relay,
                };
              } else if (e instanceof SessionError) {
                last = { dsn: "4.4.2", reason: e.message, remoteMta: dest.host, relay };
              } else if (e instanceof SecurityFailure) {
                // Postfix's DSN_BY_LOCAL_MTA failures name no remote MTA.
                last = {
                  dsn: e.dsn,
                  reason: e.message,
                  relay,
                  ...(e.opts.diagnostic
                    ? { diagnostic: e.opts.diagnostic, remoteMta: dest.host }
                    : {}),
                };
                if (e.opts.afterHandshake) sessions++;
                if (e.opts.retryPlain) continue;
              } else throw e;
              break;
            }
          }
          if (!session) continue;
          const connDone = Date.now();
          const a = await this.#transact(session, req, file, content, s, false);
          if (a.kind !== "done") throw new Error("unreachable: fresh session reported stale");
          // A fallback relay's connection is not parked under the next hop it stood in for.
          return {
            statuses: a.statuses,
            connDone,
            session,
            reusable: a.reusable && siteIndex === 0,
            reset: a.reset,
          };
        }
        if (!last) {
          last = { dsn: "4.4.3", reason: `no address found for next hop ${site}` };
        }
      } catch (e) {
        if (e instanceof NexthopFailure) {
          last = { dsn: e.dsn, reason: e.message };
          // A domain that says it takes no mail (null MX) goes to no fallback relay either,
          // and neither does one whose MX is this host (mailer loops).
          if (e.dsn === "5.1.10" || e.dsn === "5.4.6" || e.dsn === "4.4.4") break;
        } else throw e;
      }
    }
    if (!last) {
      last = { dsn: "4.4.3", reason: `no address found for next hop ${nexthopText}` };
    }
    const status = failureStatus(last.dsn);
    const statuses = new Map<number, RecipientStatus>();
    for (const r of req.recipients) {
      statuses.set(r.index, {
        index: r.index,
        status,
        dsn: last.dsn,
        reason: last.reason,
        relay: last.relay ?? "none",
        site: true,
        ...(last.diagnostic ? { diagnostic: last.diagnostic } : {}),
        ...(last.remoteMta ? { remoteMta: last.remoteMta } : {}),
      });
    }
    return { statuses, connDone: Date.now(), reusable: false };
  }

  /** One mail transaction on an established session. */
  async #transact(
    session: SmtpSession,
    req: DeliveryRequest,
    file: QueueFile,
    content: Content,
    s: SmtpSettings,
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
    let reusable = false;
    try {
      // XFORWARD: the original client, for a content filter's re-injection (xforward.ts).
      if (s.sendXforward && f.has("XFORWARD")) {
        stage = "sending XFORWARD";
        for (const cmd of xforwardCommands(file.envelope, f.get("XFORWARD") ?? "")) {
          await session.write(cmd, s.xforwardTimeout, stage);
          const reply = await session.readReply(s.xforwardTimeout, stage);
          if (reused && reply.code === 421) return { kind: "stale" };
          if (reply.code < 200 || reply.code >= 300) {
            fail(req.recipients, reply, "XFORWARD command");
            return { kind: "done", statuses, reusable: false };
          }
        }
        stage = "sending MAIL FROM";
      }
      // MAIL
      if (pipelining) {
        const data = req.verify ? "" : "DATA\r\n";
        await session.write(mailCmd + rcptCmds.join("") + data, s.mailTimeout, stage);
      } else {
        await session.write(mailCmd, s.mailTimeout, stage);
      }
      const mailReply = await session.readReply(s.mailTimeout, stage);
      if (reused && mailReply.code === 421) return { kind: "stale" };
      gotMailReply = true;
      const mailOk = mailReply.code >= 200 && mailReply.code < 300;
      if (!mailOk) fail(req.recipients, mailReply, "MAIL FROM command");
      if (mailReply.code === 421) return { kind: "done", statuses, reusable: false };

      // RCPT
      stage = "sending RCPT TO";
      let closing = false;
      if (pipelining || mailOk) {
        for (let i = 0; i < req.recipients.length; i++) {
          const r = req.recipients[i];
          if (!pipelining) await session.write(rcptCmds[i], s.rcptTimeout, stage);
          const reply = await session.readReply(s.rcptTimeout, stage);
          if (!mailOk) continue;
          if (reply.code >= 200 && reply.code < 300) {
            accepted.push(r);
            // Verification: the RCPT reply is the answer (Postfix reports it at once).
            if (req.verify) statuses.set(r.index, sentStatus(session, r, reply));
          } else fail([r], reply, "RCPT TO command");
          if (reply.code === 421) {
            closing = true;
            break;
          }
        }
      }
      if (closing) {
        deferRest(
          statuses,
          req.recipients,
          "4.4.2",
          `host ${session.label} closed the session`,
          relay,
        );
        return { kind: "done", statuses, reusable: false };
      }
      // Verification ends here, with no DATA; #park ends the transaction (RSET or QUIT).
      if (req.verify) return { kind: "done", statuses, reusable: true, reset: mailOk };

      // DATA
      stage = "sending DATA command";
      let dataReply: Reply | null = null;
      if (pipelining) {
        dataReply = await session.readReply(s.dataInitTimeout, stage);
      } else if (accepted.length > 0) {
        await session.write("DATA\r\n", s.dataInitTimeout, stage);
        dataReply = await session.readReply(s.dataInitTimeout, stage);
      }
      if (accepted.length === 0) {
        // All recipients refused (or MAIL refused). A pipelining server that still
        // said 354 gets an empty message ended at once, which it will refuse.
        if (dataReply?.code === 354) {
          stage = "sending end of data";
          await session.write(".\r\n", s.dataDoneTimeout, stage);
          await session.readReply(s.dataDoneTimeout, stage);
        } else if (!pipelining && !mailOk) {
          // nothing was started
        } else if (mailOk && dataReply?.code !== 421) {
          // The server still holds the transaction (pipelined DATA refused too): a MAIL on
          // this connection would get "503 nested MAIL command" and bounce the next message.
          if (!await resetQuietly(session, s.rsetTimeout)) {
            return { kind: "done", statuses, reusable: false };
          }
        }
        reusable = dataReply?.code !== 421;
        return { kind: "done", statuses, reusable };
      }
      if (dataReply!.code !== 354) {
        fail(accepted, dataReply!, "DATA command");
        if (dataReply!.code === 421) return { kind: "done", statuses, reusable: false };
        return { kind: "done", statuses, reusable: await resetQuietly(session, s.rsetTimeout) };
      }

      // Content
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
      stage = "sending end of data -- message may be sent more than once";
      const final = await session.readReply(s.dataDoneTimeout, stage);
      if (final.code >= 200 && final.code < 300) {
        for (const r of accepted) statuses.set(r.index, sentStatus(session, r, final));
      } else {
        fail(accepted, final, "end of DATA command");
      }
      session.transactions++;
      return { kind: "done", statuses, reusable: final.code !== 421 };
    } catch (e) {
      if (!(e instanceof SessionError)) throw e;
      if (reused && !gotMailReply) return { kind: "stale" };
      deferRest(statuses, req.recipients, "4.4.2", e.message, relay);
      return { kind: "done", statuses, reusable: false };
    }
  }
}

/** Reads the greeting and does EHLO (HELO after a 5XX). Throws SetupFailure or SessionError. */
async function handshake(session: SmtpSession, s: SmtpSettings): Promise<void> {
  const greeting = await session.readReply(s.heloTimeout, "receiving the initial server greeting");
  if (greeting.code !== 220) {
    const text = wireText(greeting);
    // Postfix (smtp_skip_5xx_greeting=yes) moves on, and defers when no server is left.
    throw new SetupFailure(
      deferDsn(greeting),
      `host ${session.label} refused to talk to me: ${text}`,
      `smtp; ${text}`,
    );
  }
  await ehlo(session, s);
}

/**
 * EHLO (HELO after a 5XX), setting the session's features; after STARTTLS
 * too. Throws SetupFailure or SessionError.
 */
async function ehlo(session: SmtpSession, s: SmtpSettings): Promise<void> {
  await session.write(`EHLO ${s.heloName}\r\n`, s.heloTimeout, "performing the EHLO handshake");
  const ehlo = await session.readReply(s.heloTimeout, "performing the EHLO handshake");
  if (ehlo.code === 250) {
    session.features = parseEhloKeywords(ehlo);
    return;
  }
  if (ehlo.code < 500 || ehlo.code === 521) throw handshakeFailure(session, ehlo, "EHLO");
  await session.write(`HELO ${s.heloName}\r\n`, s.heloTimeout, "performing the HELO handshake");
  const helo = await session.readReply(s.heloTimeout, "performing the HELO handshake");
  if (helo.code !== 250) throw handshakeFailure(session, helo, "HELO");
  session.features = new Map();
}

function handshakeFailure(session: SmtpSession, reply: Reply, command: string): SetupFailure {
  const text = wireText(reply);
  const dsn = isPermanent(reply) ? dsnOf(reply) : deferDsn(reply);
  return new SetupFailure(
    dsn,
    `host ${session.label} said: ${text} (in reply to ${command} command)`,
    `smtp; ${text}`,
  );
}

/** The reply as Postfix quotes it: "550 5.1.1 text". */
export function wireText(r: Reply): string {
  return r.enhanced ? `${r.code} ${r.enhanced} ${r.text}` : `${r.code} ${r.text}`;
}

/** The reply's enhanced code (or X.0.0), its class agreeing with the reply code. */
export function dsnOf(r: Reply): string {
  const cls = Math.floor(r.code / 100);
  return matchEnhancedClass(r.enhanced ?? `${cls}.0.0`, r.code);
}

/** The reply's enhanced code (or 4.0.0) as a deferral: class 4. */
export function deferDsn(r: Reply): string {
  const d = r.enhanced ?? "4.0.0";
  return "4" + d.slice(1);
}

/** The status of recipient `r` after `reply` to `command` ("RCPT TO command"). */
export function replyStatus(
  session: SmtpSession,
  r: DeliveryRecipient,
  reply: Reply,
  command: string,
  relay: string,
): RecipientStatus {
  const text = wireText(reply);
  const permanent = isPermanent(reply);
  return {
    index: r.index,
    status: permanent ? "bounced" : "deferred",
    dsn: permanent ? dsnOf(reply) : reply.code >= 400 ? dsnOf(reply) : deferDsn(reply),
    reason: `host ${session.label} said: ${text} (in reply to ${command})`,
    relay,
    diagnostic: `smtp; ${text}`,
    remoteMta: session.dest.host,
  };
}

/**
 * The status of recipient `r` that `reply` accepted: delivered (the
 * end-of-data reply) or, in address verification, deliverable (the RCPT
 * reply). The reply is the reason, as Postfix logs it ("250 2.1.5 Ok").
 */
export function sentStatus(
  session: SmtpSession,
  r: DeliveryRecipient,
  reply: Reply,
): RecipientStatus {
  const reason = wireText(reply);
  return {
    index: r.index,
    status: "sent",
    dsn: matchEnhancedClass(reply.enhanced ?? "2.0.0", reply.code),
    reason,
    relay: relayLabel(session.dest),
    diagnostic: `smtp; ${reason}`,
    remoteMta: session.dest.host,
  };
}

/**
 * Ends the transaction the server holds with RSET: true when it answered
 * 250; false otherwise or when the connection failed (the session is then
 * broken), so the connection is not used again.
 */
export async function resetQuietly(session: SmtpSession, timeoutSec: number): Promise<boolean> {
  try {
    await session.write("RSET\r\n", timeoutSec, "sending RSET");
    return (await session.readReply(timeoutSec, "sending RSET")).code === 250;
  } catch (e) {
    if (!(e instanceof SessionError)) throw e;
    return false;
  }
}

/** Defers every recipient of `rcpts` that has no status yet. */
export function deferRest(
  statuses: Map<number, RecipientStatus>,
  rcpts: DeliveryRecipient[],
  dsn: string,
  reason: string,
  relay: string,
): void {
  for (const r of rcpts) {
    if (statuses.has(r.index)) continue;
    statuses.set(r.index, { index: r.index, status: "deferred", dsn, reason, relay });
  }
}

/**
 * Recipients whose address, or whose sender, cannot be written into an
 * SMTP command (see formatPath): bounced, since no retry can change that.
 */
export function unsendable(req: DeliveryRequest): Map<number, RecipientStatus> {
  const out = new Map<number, RecipientStatus>();
  const bounce = (r: DeliveryRecipient, dsn: string, reason: string) =>
    out.set(r.index, { index: r.index, status: "bounced", dsn, reason, relay: "none" });
  try {
    formatPath(req.sender);
  } catch (e) {
    if (!(e instanceof AddressError)) throw e;
    for (const r of req.recipients) {
      bounce(r, "5.1.7", `bad sender address syntax: <${quoteAddress(req.sender)}>: ${e.message}`);
    }
    return out;
  }
  for (const r of req.recipients) {
    try {
      formatPath(r.address);
    } catch (e) {
      if (!(e instanceof AddressError)) throw e;
      bounce(
        r,
        "5.1.3",
        `bad recipient address syntax: <${quoteAddress(r.address)}>: ${e.message}`,
      );
    }
  }
  return out;
}

const NOTIFY_VALUES = new Set(["SUCCESS", "FAILURE", "DELAY", "NEVER"]);

/** MAIL FROM with SIZE, BODY and the DSN parameters the server supports. */
export function mailCommand(
  req: DeliveryRequest,
  content: Content,
  f: Map<string, string>,
): string {
  let cmd = `MAIL FROM:${formatPath(req.sender)}`;
  if (f.has("SIZE")) cmd += ` SIZE=${content.size}`;
  if (content.eightBit && f.has("8BITMIME")) cmd += " BODY=8BITMIME";
  if (f.has("DSN")) {
    const ret = req.ret?.toUpperCase();
    if (ret === "FULL" || ret === "HDRS") cmd += ` RET=${ret}`;
    if (req.envid) cmd += ` ENVID=${xtextEncode(req.envid)}`;
  }
  // Offered: requiretls.ts checked it before MAIL.
  if (req.requiretls && f.has("REQUIRETLS")) cmd += " REQUIRETLS";
  return cmd + "\r\n";
}

/** RCPT TO with NOTIFY and ORCPT when the server supports DSN. */
export function rcptCommand(r: DeliveryRecipient, f: Map<string, string>): string {
  let cmd = `RCPT TO:${formatPath(r.address)}`;
  if (f.has("DSN")) {
    const notify = (r.notify ?? []).map((n) => String(n).toUpperCase())
      .filter((n) => NOTIFY_VALUES.has(n));
    if (notify.length) cmd += ` NOTIFY=${notify.join(",")}`;
    if (r.orcpt) cmd += ` ORCPT=${orcptParam(r.orcpt)}`;
  }
  return cmd + "\r\n";
}

/**
 * The ORCPT parameter value for an original recipient as the queue file
 * holds it (lib/dsn splitOrcpt): a typed ORCPT keeps its type and has its
 * address xtext-encoded; a plain internal-form address is quoted first and
 * sent as rfc822 (utf-8 when it is not ASCII), as Postfix's smtp does.
 */
function orcptParam(orcpt: string): string {
  const typed = splitOrcpt(orcpt);
  const type = typed?.type ?? (/[\u0080-\uffff]/.test(orcpt) ? "utf-8" : "rfc822");
  const address = typed?.address ?? quoteAddress(orcpt);
  if (type.toLowerCase() === "utf-8") return `utf-8;${utf8AddrXtext(address)}`;
  return `${type};${xtextEncode(address)}`;
}

/**
 * RFC 6533 utf-8-addr-xtext: printable ASCII except "+", "=" and the
 * backslash as is, every other character as `\x{HEX}` (its code point).
 */
function utf8AddrXtext(s: string): string {
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    out += c > 32 && c < 127 && ch !== "+" && ch !== "=" && ch !== "\\"
      ? ch
      : `\\x{${c.toString(16).toUpperCase().padStart(2, "0")}}`;
  }
  return out;
}

function domainOf(address: string): string {
  const at = address.lastIndexOf("@");
  return at < 0 ? "" : address.slice(at + 1);
}

/**
 * The content as MAIL FROM describes it in address verification, which
 * sends none and so reads none: the size the queue file implies, no 8-bit
 * declaration.
 */
export function unreadContent(file: QueueFile): Content {
  return { mem: null, size: file.contentSize, eightBit: false };
}

/** Reads the content once: keeps it when small, and notes its size and 8-bit bytes. */
export async function readContent(file: QueueFile): Promise<Content> {
  const parts: Uint8Array[] = [];
  let size = 0;
  let eightBit = false;
  for await (const chunk of file.content()) {
    size += chunk.length;
    if (!eightBit) eightBit = hasEightBit(chunk);
    if (size <= MEMORY_LIMIT) parts.push(chunk);
    else parts.length = 0;
  }
  if (size > MEMORY_LIMIT) return { mem: null, size, eightBit };
  if (parts.length === 1) return { mem: parts[0], size, eightBit };
  const mem = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    mem.set(p, off);
    off += p.length;
  }
  return { mem, size, eightBit };
}

function hasEightBit(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] > 127) return true;
  return false;
}
