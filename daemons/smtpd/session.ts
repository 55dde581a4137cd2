/**
 * One SMTP server session (RFC 5321) with Postfix's replies and logging:
 * EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, VRFY, with PIPELINING,
 * SIZE, 8BITMIME, ENHANCEDSTATUSCODES and DSN. Each message is streamed
 * to cleanup while it arrives; 250 is sent only after cleanup reports the
 * queue file durable.
 *
 * The session does no socket I/O of its own: it reads through a function
 * and writes through a function, so tests can drive it in memory.
 * AUTH is auth.ts's (with smtpd_sasl_auth_enable).
 * XCLIENT and XFORWARD (xclient.ts) are offered to the clients in
 * smtpd_authorized_xclient_hosts and smtpd_authorized_xforward_hosts;
 * after XCLIENT the session restarts (220 again) as the new client. ETRN
 * (etrn.ts) is answered as Postfix answers for a domain that is not in
 * fast_flush_domains: Postwarden has no flush service. A host that could
 * not learn who the client is (a bad PROXY header, main.ts) sets `hangup`:
 * the session answers 421 and ends, as Postfix's.
 * BDAT/CHUNKING is bdat.ts; the protocol hardening
 * (smtpd_forbid_bare_newline, smtpd_forbid_unauth_pipelining,
 * smtpd_forbidden_commands, SMTPUTF8 checks, smtpd_discard_ehlo_keywords)
 * is decided in protocol.ts and applied here.
 *
 * STARTTLS (RFC 3207) and wrapper mode run through `SessionDeps.tls`
 * (tls.ts does the handshake and swaps the host's read/write): STARTTLS is
 * advertised when a certificate is usable and TLS is not yet active; after
 * it the session starts over (HELO/EHLO name, transaction), and plaintext
 * pipelined after the STARTTLS command is discarded, never read as commands
 * (CVE-2011-0411). With mandatory TLS (smtpd_tls_security_level = encrypt)
 * every command but HELO, EHLO, STARTTLS, NOOP, XCLIENT and QUIT gets
 * "530 5.7.0 Must issue a STARTTLS command first" before TLS, as Postfix.
 *
 * Access restrictions (restrictions.ts) run at Postfix's stages: with
 * `smtpd_delay_reject = no` the client list at connect (a rejection
 * replaces the greeting, and every later command but QUIT gets 503 5.7.0),
 * the helo list at HELO/EHLO and the sender list at MAIL; otherwise all
 * three at RCPT. `smtpd_data_restrictions` run at DATA and
 * `smtpd_end_of_data_restrictions` after the final dot, before cleanup
 * commits the message (a rejection there aborts it). Each rejection is
 * logged as Postfix logs it (`NOQUEUE: reject: RCPT from ...`).
 *
 * Client limits (anvil.ts), when the host gives them: a connection over
 * the count or rate limit gets 421 4.7.0 instead of the greeting and the
 * session ends; MAIL and RCPT over their rate limits get 450 4.7.1.
 * Headers that PREPEND results (access tables, policy services) add are
 * written above the Received: header.
 *
 * Recipients over `smtpd_recipient_limit` get 452 4.5.3 without counting
 * as errors until `smtpd_recipient_overshoot_limit` more have been refused
 * in the transaction, as Postfix. `smtpd_timeout` bounds each read and each
 * write: a client that stops reading replies is disconnected like one that
 * stops sending ("timeout after X from Y"); with smtpd_per_request_deadline
 * it bounds each whole request instead (request_deadline.ts).
 *
 * Parameters: smtpd_banner, myhostname, mail_name, message_size_limit,
 * smtpd_recipient_limit (1000), smtpd_recipient_overshoot_limit (1000),
 * smtpd_timeout (300s), smtpd_per_request_deadline (no),
 * smtpd_min_data_rate (500), smtpd_hard_error_limit (20),
 * smtpd_soft_error_limit (10), smtpd_error_sleep_time (1s),
 * smtpd_junk_command_limit (100),
 * line_length_limit (2048), disable_vrfy_command (no), smtpd_helo_required
 * (no), soft_bounce (no), and through the restriction context
 * smtpd_delay_reject (yes), smtpd_*_restrictions, mynetworks,
 * mydestination, relay_domains, myorigin, append_at_myorigin, the
 * *_reject_code and *_tempfail_action parameters, default_rbl_reply,
 * rbl_reply_maps and maps_rbl_domains, and those of protocol.ts.
 *
 * Improper pipelining is noted as Postfix does (checkCommand: a command
 * read while more input was already waiting, before EHLO or after HELO,
 * EHLO, DATA, NOOP or VRFY: "improper command pipelining after CMD from
 * client: bytes") for reject_unauth_pipelining and
 * smtpd_forbid_unauth_pipelining; only input this session has read is seen.
 */
import type { Rejection } from "../../lib/outcome/mod.ts";
import { headerAddress, parseMailPath, quoteAddress } from "../../lib/address/mod.ts";
import type { CleanupSink, MessageActions } from "../../lib/cleanup/client.ts";
import { TransactionActions } from "./actions.ts";
import type { Config } from "../../lib/config/mod.ts";
import { matchNetworkList } from "../../lib/config/network_list.ts";
import type { Logger } from "../../lib/log/mod.ts";
import { rfc2822Date, xtextDecode } from "../../lib/mime/mod.ts";
import type { Recipient } from "../../lib/queue/mod.ts";
import { DataDecoder, formatReply, LineReader, parseCommand } from "../../lib/smtp/mod.ts";
import {
  addressSyntaxOk,
  checkConnect,
  checkData,
  checkEndOfData,
  checkHelo,
  checkRecipient,
  type CheckRequest,
  checkSender,
  type DeferIfPermitCarry,
  type RestrictionContext,
  spfVerdict,
} from "./restrictions.ts";
import { checkListed, type ListedContext } from "./recipients.ts";
import { etrnReply } from "./etrn.ts";
import { sessionDeadlines } from "./deadlines.ts";
import { RequestDeadline, requestDeadlinePolicy } from "./request_deadline.ts";
import {
  authorized,
  forwardedClient,
  parseXclient,
  parseXforward,
  type XclientAuth,
  type XforwardAttrs,
  xforwardNamaddr,
  xforwardPreset,
} from "./xclient.ts";
import { checkAuthRate, type ClientLimits, type LimitRefusal } from "./anvil.ts";
import type { PeerStatus } from "./peername.ts";
import { type BdatState, doBdat } from "./bdat.ts";
import { MilterSink } from "./milters.ts";
import { type AuthenticationSettings, AuthSink, type MessageVerdict } from "./authentication.ts";
import { MilterChain, type MilterSettings } from "../../lib/milter/mod.ts";
import {
  type BareNewline,
  bareNewlineFor,
  type Discard,
  discardedForLog,
  discardFor,
  escapeForLog,
  isForbiddenCommand,
  nonAscii,
  PIPELINING_LAST,
  type ProtocolPolicy,
  protocolPolicy,
  validUtf8,
} from "./protocol.ts";
import {
  establishedLine,
  receivedTlsClause,
  TlsHandshakeError,
  type TlsInfo,
  TlsTimeout,
} from "./tls.ts";
import { type SmtpdTlsPolicy, tlsMandatory } from "../../lib/tls/policy.ts";
import {
  authCommand,
  type AuthContext,
  authenticatedSenderLine,
  authKeywords,
  authMailParam,
  type AuthSession,
  receivedProtocol,
  saslLogFields,
  type SaslLogin,
} from "./auth.ts";

/** Who is connected. */
export interface ClientInfo {
  name: string;
  addr: string;
  port: number;
  /** The local end of the connection (server_address and server_port for policy services). */
  server?: { addr: string; port: number };
  /** The PTR name and how the lookups ended (peername.ts), for the unknown_* restrictions. */
  reverseName?: string;
  nameStatus?: PeerStatus;
  reverseStatus?: PeerStatus;
}

/** smtpd's TLS, for a session (absent: smtpd_tls_security_level = none). */
export interface SessionTls {
  policy: SmtpdTlsPolicy;
  /**
   * Runs the TLS handshake over the connection and switches `read`/`write`
   * to it. Null when no certificate is usable: STARTTLS is not offered and
   * gets 454, as in Postfix.
   */
  start: (() => Promise<TlsInfo>) | null;
}

/** What the session needs from its host. */
export interface SessionDeps {
  config: Config;
  log: Logger;
  client: ClientInfo;
  /** Next chunk from the client (a fresh buffer each time), null at end of stream. */
  read: () => Promise<Uint8Array | null>;
  /**
   * Sends bytes to the client. The session gives up on a write that has not
   * completed within smtpd_timeout and ends; the host then closes the
   * connection, which must settle the write.
   */
  write: (bytes: Uint8Array) => Promise<void>;
  /** Opens a cleanup session (the queue id comes with it). */
  openCleanup: () => Promise<CleanupSink>;
  restrictions: RestrictionContext;
  /** Unknown users refused at RCPT (recipients.ts); absent: every address is accepted. */
  listed?: ListedContext;
  /** The client connection and rate limits (anvil.ts); absent: none. */
  limits?: ClientLimits;
  /** Protocol policy (protocol.ts), made once per configuration; absent: made from config. */
  protocol?: ProtocolPolicy;
  /** STARTTLS and wrapper mode. */
  tls?: SessionTls;
  /** SMTP AUTH (auth.ts); absent or null: AUTH is not offered. */
  auth?: AuthContext | null;
  /** Our address of the connection (Dovecot's lip), "" if unknown. */
  serverAddr?: string;
  now?: () => Date;
  /** Who may send XCLIENT and XFORWARD; absent: nobody. */
  xclient?: XclientAuth;
  /** Bytes the client sent before the session started (after a PROXY header). */
  initial?: Uint8Array;
  /** The client's identity is unknown (a bad PROXY header): answer 421 and end, as Postfix. */
  hangup?: boolean;
  /** smtpd_milters, resolved (milters.ts); absent or empty: none. */
  milters?: MilterSettings[];
  /** Message authentication and DKIM signing trust (authentication.ts); absent: none. */
  authentication?: AuthenticationSettings;
}

class Timeout extends Error {
  override readonly name = "Timeout";
  /** True when the client stopped reading (a write did not complete), false when it stopped sending. */
  constructor(readonly writing: boolean) {
    super(writing ? "write timeout" : "read timeout");
  }
}

export class Disconnect extends Error {
  override readonly name = "Disconnect";
}

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** Postfix's command table order, used for the counts in the disconnect line. */
const COUNT_ORDER = [
  "helo",
  "ehlo",
  "xclient",
  "xforward",
  "starttls",
  "auth",
  "mail",
  "rcpt",
  "data",
  "bdat",
  "rset",
  "noop",
  "vrfy",
  "etrn",
  "quit",
];
const KNOWN_VERBS = new Set(COUNT_ORDER.map((v) => v.toUpperCase()));
/** Commands that smtpd_junk_command_limit counts (Postfix's SMTPD_CMD_FLAG_LIMIT). */
const JUNK_VERBS = new Set(["HELO", "EHLO", "NOOP", "VRFY", "RSET", "ETRN"]);

let instances = 0;

/** A value like Postfix's instance attribute (pid.seconds.microseconds.counter, in hex). */
function transactionInstance(now: Date): string {
  const ms = now.getTime();
  const hex = (n: number) => Math.floor(n).toString(16);
  return `${hex(Deno.pid)}.${hex(ms / 1000)}.${hex((ms % 1000) * 1000)}.${hex(instances++)}`;
}
/** Postfix's commands, and those allowed before STARTTLS with mandatory TLS (SMTPD_CMD_FLAG_PRE_TLS). */
const POSTFIX_VERBS = new Set([
  ...KNOWN_VERBS,
  ...["XCLIENT", "XFORWARD", "STARTTLS", "AUTH", "BDAT", "ETRN"],
]);
const PRE_TLS_VERBS = new Set(["HELO", "EHLO", "XCLIENT", "STARTTLS", "NOOP", "QUIT"]);

/** Runs a session to its end. Never throws for client behaviour. */
export async function runSession(d: SessionDeps): Promise<void> {
  await new Session(d).run();
}

class Session {
  readonly cfg: Config;
  readonly log: Logger;
  readonly lines: LineReader;
  /** name[addr] for log lines; XCLIENT changes it. */
  client: string;
  /** Who the client is; XCLIENT changes it. */
  peer: ClientInfo;
  /** Attributes from XFORWARD for the next transaction; null: none sent. */
  xforward: XforwardAttrs | null = null;
  out: string[] = [];
  helo = "";
  protocol = "SMTP";
  sender: string | null = null;
  senderParams = new Map<string, string | null>();
  recipients: Recipient[] = [];
  cleanup: CleanupSink | null = null;
  errors = 0;
  /** HELO, EHLO, NOOP, VRFY and RSET commands since the last message (smtpd_junk_command_limit). */
  junk = 0;
  counts = new Map<string, [number, number]>();
  lastCommand = "CONNECT";
  /** The message being received, for "after DATA (N bytes)" in log lines. */
  data: DataDecoder | null = null;
  readonly timeoutMs: number;
  /** smtpd_per_request_deadline: the time left for the request being read. */
  readonly requests: RequestDeadline;
  /** Recipients refused over smtpd_recipient_limit in this transaction. */
  overshoot = 0;
  /** smtpd_delay_reject = no and the client restrictions refused the client at connect. */
  accessDenied = false;
  /** A write timed out: nothing more can be sent. */
  writeStuck = false;
  /** DEFER_IF_PERMIT results of the early checks (smtpd_delay_reject = no), for RCPT. */
  readonly deferIfPermit: DeferIfPermitCarry = {};
  /** Headers PREPEND results added for this transaction, written above Received:. */
  prepend: string[] = [];
  /** HOLD, DISCARD, REDIRECT, BCC and FILTER from access tables, for this transaction (actions.ts). */
  actions = new TransactionActions();
  /** Postfix's "instance" policy attribute: one per transaction, made at first need. */
  instance = "";
  readonly policy: ProtocolPolicy;
  /** smtpd_forbid_bare_newline for this client (after its exclusions). */
  readonly bareNewline: BareNewline;
  /** Improper pipelining was seen (logged once, as Postfix). */
  illPipelining = false;
  /** The transaction's MAIL FROM had SMTPUTF8. */
  smtputf8 = false;
  /** The transaction's MAIL FROM had REQUIRETLS (RFC 8689): every hop must be authenticated TLS. */
  requiretls = false;
  /** A BDAT transaction in progress (bdat.ts). */
  bdat: BdatState | null = null;
  /** EHLO keywords this client is not offered (protocol.ts discardFor, at connect). */
  discard: Discard;
  /** Set after a successful AUTH (auth.ts) or by XCLIENT LOGIN; null before. */
  sasl: SaslLogin | null = null;
  /** MAIL FROM's AUTH= address, for the "client=" log line. */
  saslSender: string | null = null;
  /** Set by STARTTLS or wrapper mode (the tls part); null without TLS. */
  tls: TlsInfo | null = null;
  /** The connection's milters (milters.ts); null without smtpd_milters. */
  milters: MilterChain | null = null;
  /** The transaction's authentication checks (authentication.ts); null without them. */
  authSink: AuthSink | null = null;
  /** A milter answered 421: the session ends after the reply. */
  hangupAfterReply = false;
  /** The address of the MAIL or RCPT command the milters are asked about. */
  milterAddress: string | null = null;

  constructor(readonly d: SessionDeps) {
    this.cfg = d.config;
    this.log = d.log;
    this.lines = new LineReader({ maxLineLength: this.cfg.int("line_length_limit") });
    this.peer = { ...d.client };
    this.client = `${d.client.name}[${d.client.addr}]`;
    if (d.initial?.length) this.lines.push(d.initial);
    this.timeoutMs = this.cfg.time("smtpd_timeout") * 1000;
    this.requests = new RequestDeadline(requestDeadlinePolicy(this.cfg));
    this.policy = d.protocol ?? protocolPolicy(this.cfg);
    this.bareNewline = bareNewlineFor(this.policy, d.client);
    this.discard = this.policy.discard;
  }

  /**
   * Queues a reply. With soft_bounce = yes every 5XX reply becomes 4XX (and
   * its 5.X.X code 4.X.X), protocol errors included, as Postfix's
   * smtpd_chat_reply does: the client keeps the mail and tries again.
   */
  reply(code: number, enhanced: string | null, text: string | string[]): void {
    const soft = this.softBounce(code, enhanced);
    this.out.push(formatReply(soft.code, soft.dsn, text));
  }

  /** A reply code and enhanced code as soft_bounce turns them. */
  softBounce<T extends string | null>(code: number, dsn: T): { code: number; dsn: T } {
    if (code < 500 || code >= 600 || !this.cfg.bool("soft_bounce")) return { code, dsn };
    return { code: code - 100, dsn: (dsn === null ? null : dsn.replace(/^5/, "4")) as T };
  }

  /** A reply that rejects mail (a restriction, size, cleanup's verdict); returns what was sent. */
  reject(code: number, enhanced: string, text: string): { code: number; dsn: string } {
    this.reply(code, enhanced, text);
    return this.softBounce(code, enhanced);
  }

  async flush(): Promise<void> {
    if (!this.out.length || this.writeStuck) return;
    const text = this.out.join("");
    this.out = [];
    await this.deadline(this.d.write(encoder.encode(text)), true);
  }

  /** `p`, or a Timeout after smtpd_timeout. A write given up on stays given up on. */
  deadline<T>(p: Promise<T>, writing: boolean, ms = this.timeoutMs): Promise<T> {
    // One shared timer for all sessions (deadlines.ts): a timer per read costs KiB per
    // connection. One promise and one reaction, not a race of two (issue 10 perf: every
    // idle session holds one of these, and every command makes two).
    return new Promise<T>((resolve, reject) => {
      const cancel = sessionDeadlines.add(ms, () => {
        if (writing) this.writeStuck = true;
        reject(new Timeout(writing));
      });
      // A rejection after the deadline (the host closing the connection) is absorbed here.
      p.then((v) => {
        cancel();
        resolve(v);
      }, (e) => {
        cancel();
        reject(e);
      });
    });
  }

  count(verb: string, ok: boolean): void {
    const key = verb.toLowerCase();
    const c = this.counts.get(key) ?? [0, 0];
    c[1]++;
    if (ok) c[0]++;
    this.counts.set(key, c);
  }

  /** The next chunk from the client, within the request's time left (request_deadline.ts). */
  async read(): Promise<Uint8Array | null> {
    const started = Date.now();
    const chunk = await this.deadline(this.d.read(), false, this.requests.limit());
    this.requests.read(Date.now() - started, chunk?.length ?? 0);
    return chunk;
  }

  /** What restriction checks know about the session now (`where`: Postfix's state->where). */
  request(recipient?: string, where = this.lastCommand, sender = this.sender): CheckRequest {
    const { name, addr, port, reverseName, nameStatus, reverseStatus } = this.peer;
    return {
      client: { name, addr, port, reverseName, nameStatus, reverseStatus },
      pipelining: this.illPipelining,
      helo: this.helo,
      sender,
      recipient,
      sasl: this.sasl,
      deferIfPermit: this.deferIfPermit,
      policy: {
        command: where,
        protocol: this.protocol,
        clientPort: this.d.client.port,
        serverAddr: this.d.client.server?.addr,
        serverPort: this.d.client.server?.port,
        queueId: this.cleanup?.queueId,
        instance: this.instance ||= transactionInstance(this.d.now?.() ?? new Date()),
        size: Number(this.senderParams.get("SIZE") ?? 0) || 0,
        recipientCount: this.recipients.length,
        sasl: this.sasl,
        tls: this.tls,
      },
      prepend: (header) => this.prepend.push(header),
      actions: this.actions,
      log: (action, text) => {
        const env = { from: sender ?? undefined, to: recipient };
        this.log.info(
          `${this.cleanup?.queueId ?? "NOQUEUE"}: ${action}: ${where} from ` +
            `${this.client}: ${text}; ${this.envelopeLog(env)}`,
        );
      },
    };
  }

  /**
   * Answers a restriction's verdict and logs it as Postfix does:
   * `QUEUEID: reject: CMD from client: reply; from=<..> to=<..> proto=.. helo=<..>`.
   */
  refuse(cmd: string, v: Rejection, env: { from?: string; to?: string; helo?: string } = {}): void {
    const sent = this.reject(v.code, v.dsn, v.text);
    this.log.info(
      `${this.cleanup?.queueId ?? "NOQUEUE"}: reject: ${cmd} from ${this.client}: ` +
        `${sent.code} ${sent.dsn} ${v.text}; ${this.envelopeLog(env)}`,
    );
  }

  /** Where the session is, for "lost connection after ..." log lines (Postfix's state->where). */
  where(): string {
    return this.data ? `DATA (${this.data.bytesOut} bytes)` : this.lastCommand;
  }

  async nextLine() {
    this.requests.start(false);
    for (;;) {
      const l = this.lines.next();
      if (l) return l;
      await this.flush();
      const chunk = await this.read();
      if (chunk === null) return null;
      this.lines.push(chunk);
    }
  }

  async run(): Promise<void> {
    this.log.info(`connect from ${this.client}`);
    try {
      if (this.d.hangup) {
        this.reply(421, "4.3.0", `${this.cfg.str("myhostname")} Server local error`);
        return;
      }
      // Wrapper mode: TLS first, as Postfix's smtpd_proto, then the client limits.
      if (this.d.tls?.policy.wrapper) {
        // Over smtpd_client_new_tls_session_rate_limit: dropped before the handshake.
        const refused = await this.d.limits?.tlsRefused("TLS service request");
        if (refused) {
          this.log.warn(refused);
          return;
        }
        if (!(await this.startTls())) return;
      }
      const limited = await this.d.limits?.connect();
      if (limited) {
        // Instead of the greeting; the session ends (Postfix's smtpd_proto).
        this.limited(limited);
        return;
      }
      this.discard = await discardFor(this.policy, this.peer, (m) => this.log.warn(m));
      if (!(await this.connectMilters())) return;
      await this.greet();
      for (;;) {
        const l = await this.nextLine();
        if (l === null) {
          this.log.info(`lost connection after ${this.lastCommand} from ${this.client}`);
          break;
        }
        if (l.bareLf && this.bareNewline === "reject") await this.bareLfRejected(null);
        if (this.policy.smtputf8 && !validUtf8(l.line)) {
          this.reply(500, "5.5.2", "Error: bad UTF-8 syntax");
          await this.error();
          continue;
        }
        // A command ends at a NUL byte, as Postfix parses it (a C string); logs show it all.
        const nul = l.line.indexOf(0);
        const line = nul < 0 ? l.line : l.line.subarray(0, nul);
        const cmd = parseCommand(line);
        if (cmd.verb === "") {
          this.reply(500, "5.5.2", "Error: bad syntax");
          await this.error();
          continue;
        }
        await this.checkCommand(cmd.verb, l.line);
        const quit = await this.dispatch(cmd.verb, cmd.arg);
        if (quit) break;
        if (this.hangupAfterReply) {
          this.log.info(`disconnect after milter shutdown from ${this.client}`);
          break;
        }
      }
    } catch (e) {
      if (e instanceof Timeout) {
        this.log.info(`timeout after ${this.where()} from ${this.client}`);
        this.out = [];
        // A client that does not read gets nothing more: the write would block again.
        if (!e.writing) {
          this.reply(421, "4.4.2", `${this.cfg.str("myhostname")} Error: timeout exceeded`);
          await this.flush().catch(() => {});
        }
      } else if (!(e instanceof Disconnect)) {
        this.log.info(
          `lost connection after ${this.lastCommand} from ${this.client}: ${(e as Error).message}`,
        );
      }
    } finally {
      this.cleanup?.abort();
      this.cleanup = null;
      await this.flush().catch(() => {});
      await this.milters?.close();
      await this.d.limits?.disconnect();
      this.log.info(`disconnect from ${this.client}${this.summary()}`);
    }
  }

  /**
   * The greeting, or the client restrictions' refusal with
   * smtpd_delay_reject = no; again after XCLIENT, for the new client.
   */
  async greet(): Promise<void> {
    this.accessDenied = false;
    const denied = this.d.restrictions.delayReject
      ? null
      : await checkConnect(this.d.restrictions, this.request());
    if (denied) {
      this.accessDenied = true;
      this.refuse(this.lastCommand, denied);
      await this.error();
    } else this.reply(220, null, this.cfg.str("smtpd_banner"));
    await this.flush();
  }

  /**
   * smtpd_forbid_bare_newline = reject: a command line (`envelope` null),
   * DATA or BDAT content with a bare LF. A command ends the session, as in
   * Postfix; content is refused and the session goes on.
   */
  async bareLfRejected(
    envelope: { cmd: string; to?: string } | null,
  ): Promise<void> {
    const code = this.policy.bareNewlineRejectCode;
    this.reply(
      code,
      `${String(code)[0]}.5.2`,
      `${this.cfg.str("myhostname")} Error: bare <LF> received`,
    );
    const env = { from: this.sender ?? undefined, to: envelope?.to };
    this.log.info(
      `${this.cleanup?.queueId ?? "NOQUEUE"}: reject: ${envelope?.cmd ?? this.lastCommand} from ` +
        `${this.client}: bare <LF> received; ${this.envelopeLog(env)}`,
    );
    if (envelope) return;
    await this.flush();
    throw new Disconnect();
  }

  /**
   * Before a command runs: smtpd_forbidden_commands (and header labels) for
   * an unknown verb, then improper pipelining (protocol.ts).
   */
  async checkCommand(verb: string, line: Uint8Array): Promise<void> {
    const known = KNOWN_VERBS.has(verb);
    if (!known && await isForbiddenCommand(this.policy, verb, (m) => this.log.warn(m))) {
      this.lastCommand = "UNKNOWN";
      this.count("unknown", false);
      this.log.warn(`non-SMTP command from ${this.client}: ${escapeForLog(line, 100)}`);
      this.reply(221, "2.7.0", "Error: I can break rules, too. Goodbye.");
      await this.flush();
      throw new Disconnect();
    }
    if (this.illPipelining || verb === "QUIT") return;
    if (!PIPELINING_LAST.has(verb) && this.protocol !== "SMTP") return;
    const ahead = this.lines.pending(100);
    if (ahead.length === 0) return;
    this.illPipelining = true;
    const name = known ? verb : "UNKNOWN";
    this.log.info(
      `improper command pipelining after ${name} from ${this.client}: ${escapeForLog(ahead, 100)}`,
    );
    if (!this.policy.forbidUnauthPipelining) return;
    this.count(known ? verb : "unknown", false);
    this.reply(554, "5.5.0", "Error: SMTP protocol synchronization");
    await this.flush();
    throw new Disconnect();
  }

  summary(): string {
    let ok = 0;
    let all = 0;
    let s = "";
    const rank = (k: string) => {
      const i = COUNT_ORDER.indexOf(k);
      return i < 0 ? COUNT_ORDER.length : i;
    };
    const counts = [...this.counts].sort((a, b) => rank(a[0]) - rank(b[0]));
    for (const [k, [good, total]] of counts) {
      ok += good;
      all += total;
      s += ` ${k}=${good === total ? good : `${good}/${total}`}`;
    }
    // Postfix prints "commands=0/0" for a client that sent nothing.
    return `${s} commands=${ok === all && all > 0 ? ok : `${ok}/${all}`}`;
  }

  /** A client limit was exceeded: the warning and the reply. */
  limited(r: LimitRefusal): void {
    this.log.warn(r.warning);
    this.reply(r.code, r.dsn, r.text);
  }

  async error(): Promise<void> {
    this.errors++;
    if (this.errors >= this.cfg.int("smtpd_hard_error_limit")) {
      this.log.info(`too many errors after ${this.lastCommand} from ${this.client}`);
      this.reply(421, "4.7.0", `${this.cfg.str("myhostname")} Error: too many errors`);
      await this.flush();
      throw new Disconnect();
    }
    if (this.errors >= this.cfg.int("smtpd_soft_error_limit")) {
      await this.flush();
      await new Promise((r) => setTimeout(r, this.cfg.time("smtpd_error_sleep_time") * 1000));
    }
  }

  /** Handles one command; true when the session ends. */
  async dispatch(verb: string, arg: string): Promise<boolean> {
    if (this.accessDenied && verb !== "QUIT") {
      // Postfix does not move "after CONNECT" on for a refused client; unknown verbs get this too.
      this.reply(503, "5.7.0", `Error: access denied for ${this.client}`);
      this.count(KNOWN_VERBS.has(verb) ? verb : "unknown", false);
      await this.error();
      return false;
    }
    const name = verb === "" ? "UNKNOWN" : verb;
    if (
      !this.tls && this.d.tls && tlsMandatory(this.d.tls.policy) && POSTFIX_VERBS.has(verb) &&
      !PRE_TLS_VERBS.has(verb)
    ) {
      this.reply(530, "5.7.0", "Must issue a STARTTLS command first");
      this.count(verb, false);
      await this.error();
      return false;
    }
    this.lastCommand = name;
    let ok = true;
    switch (verb) {
      case "STARTTLS":
        ok = await this.doStartTls(arg);
        break;
      case "EHLO":
      case "HELO":
        ok = await this.doHelo(verb, arg);
        break;
      case "MAIL":
        ok = await this.doMail(arg);
        break;
      case "RCPT":
        ok = await this.doRcpt(arg);
        break;
      case "DATA":
        try {
          ok = await this.doData(arg);
        } catch (e) {
          this.count(verb, false); // Postfix counts a DATA that lost its client as data=0/1
          throw e;
        }
        break;
      case "BDAT":
        try {
          ok = await doBdat(this, arg);
        } catch (e) {
          this.count(verb, false);
          throw e;
        }
        break;
      case "AUTH": {
        // smtpd_client_auth_rate_limit: every AUTH that would start an exchange counts (Postfix).
        const tooMany = this.d.auth && !this.sasl && this.sender === null
          ? await checkAuthRate(this.d.limits, (m) => this.log.warn(m))
          : null;
        if (tooMany) {
          this.reply(tooMany.code, tooMany.dsn, tooMany.text);
          ok = false;
          break;
        }
        ok = await authCommand(this.d.auth ?? null, this.authSession(), arg);
        break;
      }
      case "RSET":
        if (arg) {
          this.reply(501, "5.5.4", "Syntax: RSET");
          ok = false;
          break;
        }
        this.resetTransaction();
        this.reply(250, "2.0.0", "Ok");
        break;
      case "NOOP":
        this.reply(250, "2.0.0", "Ok");
        break;
      case "VRFY":
        ok = await this.doVrfy(arg);
        break;
      case "XCLIENT":
        return await this.doXclient(arg);
      case "XFORWARD":
        ok = this.doXforward(arg);
        break;
      case "ETRN": {
        const r = etrnReply(arg, {
          heloRequired: this.cfg.bool("smtpd_helo_required") && !this.helo,
          inTransaction: this.sender !== null,
        });
        if (r.warning) this.log.warn(`${r.warning} from ${this.client}`);
        this.out.push(`${r.reply}\r\n`); // no enhanced code, as Postfix
        ok = false;
        break;
      }
      case "QUIT":
        this.count(verb, true);
        this.reply(221, "2.0.0", "Bye");
        await this.flush();
        return true;
      default: {
        this.count("unknown", false); // only forbidden commands are logged (checkCommand)
        // The milters hear of it; one's refusal is the reply (Postfix's milter_unknown_event).
        const v = await this.milters?.unknown(arg ? `${verb} ${arg}` : verb);
        if (v?.kind === "reply") this.milterRefuse("UNKNOWN", v, {});
        else this.reply(500, "5.5.2", "Error: command not recognized");
        await this.error();
        return false;
      }
    }
    this.count(verb, ok);
    if (!ok) await this.error();
    // Postfix's SMTPD_CMD_FLAG_LIMIT: past the limit each such command is an error too.
    if (JUNK_VERBS.has(verb) && this.junk++ > this.cfg.int("smtpd_junk_command_limit")) {
      await this.error();
    }
    return false;
  }

  async doHelo(verb: string, arg: string): Promise<boolean> {
    const host = arg.trim().split(/\s+/)[0] ?? "";
    if (!host) {
      this.reply(501, null, `Syntax: ${verb} hostname`); // no enhanced code, as Postfix
      return false;
    }
    if (!this.d.restrictions.delayReject) {
      const v = await checkHelo(this.d.restrictions, { ...this.request(), helo: host });
      if (v) {
        this.refuse(verb, v, { helo: host });
        return false;
      }
    }
    if (this.milters) {
      // Only a 421 is given here; other refusals wait for MAIL FROM (milters.ts).
      const v = await this.milters.helo(host);
      if (v.kind === "reply") {
        this.milterRefuse(verb, v, { helo: host });
        return false;
      }
    }
    this.resetTransaction();
    this.helo = host;
    const me = this.cfg.str("myhostname");
    if (verb === "HELO") {
      this.protocol = "SMTP";
      this.out.push(`250 ${me}\r\n`);
      return true;
    }
    this.protocol = "ESMTP";
    const lines = [me, "PIPELINING"];
    const limit = this.cfg.size("message_size_limit");
    lines.push(limit > 0 ? `SIZE ${limit}` : "SIZE");
    if (!this.cfg.bool("disable_vrfy_command")) lines.push("VRFY");
    lines.push("ETRN");
    if (this.d.tls?.start && !this.tls) lines.push("STARTTLS");
    lines.push(...await authKeywords(this.d.auth ?? null, this.authSession()));
    if (this.mayXclient()) {
      lines.push("XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT");
    }
    if (this.mayXforward()) lines.push("XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT");
    lines.push("ENHANCEDSTATUSCODES", "8BITMIME", "DSN");
    if (this.policy.smtputf8) lines.push("SMTPUTF8");
    // RFC 8689: offered once the session is TLS.
    if (this.policy.requiretls && this.tls) lines.push("REQUIRETLS");
    lines.push("CHUNKING");
    const discard = this.discard.keywords;
    const kept = lines.filter((l, i) => i === 0 || !discard.has(l.split(" ")[0].toUpperCase()));
    const logged = discardedForLog(this.discard);
    if (logged) this.log.info(`discarding EHLO keywords: ${logged}`);
    this.reply(250, null, kept);
    return true;
  }

  /** DSN is offered (not in smtpd_discard_ehlo_keywords). */
  dsnOffered(): boolean {
    return !this.discard.keywords.has("DSN");
  }

  /** Postfix's answer to a DSN parameter when DSN is not offered. */
  dsnDisabled(): false {
    this.reply(501, "5.7.1", "DSN support is disabled");
    return false;
  }

  /**
   * VRFY answers 252 with the address as given, after the checks RCPT gets
   * (Postfix's smtpd_check_rcpt): a relay attempt or an unknown user is
   * refused here too, so VRFY tells a client no more than RCPT would.
   */
  async doVrfy(arg: string): Promise<boolean> {
    if (this.cfg.bool("disable_vrfy_command")) {
      this.reply(502, "5.5.1", "VRFY command is disabled");
      return false;
    }
    if (!arg) {
      this.reply(501, "5.5.4", `Syntax: VRFY address${this.policy.smtputf8 ? " [SMTPUTF8]" : ""}`);
      return false;
    }
    let address;
    try {
      const path = parseMailPath(arg, { smtputf8: this.policy.smtputf8 });
      const utf8 = this.policy.smtputf8 && path.params.size === 1 &&
        path.params.has("SMTPUTF8") && path.params.get("SMTPUTF8") === null;
      if (path.params.size && !utf8) throw new Error("more than one address");
      address = path.address;
    } catch {
      this.reply(501, "5.1.3", "Bad recipient address syntax");
      return false;
    }
    const verdict =
      (this.d.restrictions.delayReject && this.sender !== null
        ? await this.unlistedSender(this.sender)
        : null) ??
        await checkRecipient(this.d.restrictions, this.request(address)) ??
        await this.unlistedRecipient(address);
    if (verdict) {
      this.refuse("VRFY", verdict, { from: this.sender ?? undefined, to: address });
      return false;
    }
    this.reply(252, "2.0.0", arg);
    return true;
  }

  /** STARTTLS: replies as Postfix's starttls_cmd, then the handshake; the session starts over. */
  async doStartTls(arg: string): Promise<boolean> {
    if (arg.trim()) {
      this.reply(501, "5.5.4", "Syntax: STARTTLS");
      return false;
    }
    if (this.tls) {
      this.reply(554, "5.5.1", "Error: TLS already active");
      return false;
    }
    if (!this.d.tls) {
      this.reply(502, "5.5.1", "Error: command not implemented");
      return false;
    }
    if (!this.d.tls.start) {
      this.reply(454, "4.7.0", "TLS not available due to local problem");
      return false;
    }
    const refused = await this.d.limits?.tlsRefused("STARTTLS request");
    if (refused) {
      this.log.warn(refused);
      this.reply(454, "4.7.0", `Error: too many new TLS sessions from ${this.client}`);
      return false;
    }
    this.reply(220, "2.0.0", "Ready to start TLS");
    await this.flush();
    // Plaintext the client sent after STARTTLS must never be read as a
    // command (CVE-2011-0411); Postfix discards it without a log line.
    this.lines.takeBuffered();
    if (!(await this.startTls())) {
      this.count("STARTTLS", false); // starttls=0/1, as Postfix
      throw new Disconnect();
    }
    // RFC 3207 4.2: forget what the client said before TLS (an AUTH too).
    this.resetTransaction();
    this.helo = "";
    this.sasl = null;
    this.protocol = "SMTP";
    return true;
  }

  /**
   * The TLS handshake (STARTTLS or wrapper mode). False when it failed: the
   * connection is unusable, and what happened is logged as Postfix logs it.
   */
  async startTls(): Promise<boolean> {
    try {
      this.tls = await this.d.tls!.start!();
    } catch (e) {
      // Postfix's tls_server_start: why SSL_accept failed, then where.
      const why = e instanceof TlsTimeout
        ? "Connection timed out"
        : e instanceof TlsHandshakeError && e.lost
        ? "lost connection"
        : "-1";
      this.log.info(`SSL_accept error from ${this.client}: ${why}`);
      if (why === "-1") this.log.warn(`TLS library problem: ${(e as Error).message}`);
      // A failed handshake counts as a new TLS session too, as in Postfix.
      const over = await this.d.limits?.newTls();
      if (over) this.log.warn(over.warning);
      this.log.info(`lost connection after ${this.lastCommand} from ${this.client}`);
      return false;
    }
    if (this.d.tls!.policy.loglevel >= 1) this.log.info(establishedLine(this.client, this.tls));
    const over = this.tls.reused ? null : await this.d.limits?.newTls();
    if (over) {
      this.limited(over); // 421, over TLS; the session ends
      return false;
    }
    return true;
  }

  resetTransaction(): void {
    // A transaction in progress ends for the milters too (sent before their next event).
    if (this.sender !== null) this.milters?.markAbort();
    this.cleanup?.abort();
    this.cleanup = null;
    this.sender = null;
    this.senderParams = new Map();
    this.recipients = [];
    this.overshoot = 0;
    this.xforward = null;
    this.prepend = [];
    this.actions = new TransactionActions();
    this.instance = "";
    this.smtputf8 = false;
    this.requiretls = false;
    this.bdat = null;
    this.saslSender = null;
    this.authSink = null;
  }

  /** The session as the AUTH command sees it (auth.ts). */
  authSession(): AuthSession {
    // deno-lint-ignore no-this-alias
    const self = this;
    return {
      client: this.client,
      clientAddr: this.peer.addr,
      clientName: this.peer.name,
      serverAddr: this.d.serverAddr ?? "",
      helo: this.helo,
      sender: this.sender,
      secured: this.tls !== null,
      get sasl() {
        return self.sasl;
      },
      set sasl(v) {
        self.sasl = v;
      },
      reply: (code, enhanced, text) => this.reply(code, enhanced, text),
      challenge: (text) => this.out.push(`334 ${text}\r\n`),
      flush: () => this.flush(),
      readResponse: async (limit) => {
        const old = this.lines.setMaxLineLength(limit);
        try {
          const l = await this.nextLine();
          if (l === null) return null;
          // One character per byte (base64 is checked after); no CR or LF.
          const line = latin1.decode(l.line).replace(/[\r\n]+$/, "");
          return { line, tooLong: l.tooLong };
        } finally {
          this.lines.setMaxLineLength(old);
        }
      },
      log: this.log,
    };
  }

  async doMail(arg: string): Promise<boolean> {
    if (this.bdat) {
      this.reply(503, "5.5.1", "Error: MAIL after BDAT");
      return false;
    }
    if (this.sender !== null) {
      this.reply(503, "5.5.1", "Error: nested MAIL command");
      return false;
    }
    if (!this.helo && this.cfg.bool("smtpd_helo_required")) {
      this.reply(503, "5.5.1", "Error: send HELO/EHLO first");
      return false;
    }
    const m = /^FROM:/i.exec(arg);
    if (!m || !arg.slice(m[0].length).trim()) {
      this.reply(501, "5.5.4", "Syntax: MAIL FROM:<address>");
      return false;
    }
    const tooMuch = await this.d.limits?.message();
    if (tooMuch) {
      this.limited(tooMuch);
      return false;
    }
    let path;
    try {
      path = parseMailPath(arg.slice(m[0].length), {
        allowEmpty: true,
        smtputf8: this.policy.smtputf8,
      });
    } catch {
      this.reply(501, "5.1.7", "Bad sender address syntax");
      return false;
    }
    if (!(await addressSyntaxOk(this.d.restrictions, path.address, path.address))) {
      this.reply(501, "5.1.7", "Bad sender address syntax");
      return false;
    }
    for (const [k, v] of path.params) {
      if (
        k === "SMTPUTF8" && v === null && this.policy.smtputf8 &&
        !this.discard.keywords.has("SMTPUTF8")
      ) {
        // RFC 6531: the transaction is SMTPUTF8 (this.smtputf8, set below).
      } else if (
        k === "REQUIRETLS" && v === null && this.policy.requiretls && this.tls &&
        !this.discard.keywords.has("REQUIRETLS") && !path.repeated.has(k)
      ) {
        // RFC 8689: the message is tagged (this.requiretls, set below).
      } else if (v === null) {
        // A keyword without "=" is no option Postfix knows, NOTIFY and SIZE included.
        this.reply(555, "5.5.4", `Unsupported option: ${path.sent.get(k)}`);
        return false;
      } else if (k === "SIZE") {
        const size = Number(v);
        if (!/^\d+$/.test(v)) {
          this.reply(501, "5.5.4", "Bad message size syntax");
          return false;
        }
        if (BigInt(v) > 2n ** 63n - 1n) {
          this.reject(552, "5.3.4", "Message size exceeds file system imposed limit");
          return false;
        }
        const limit = this.cfg.size("message_size_limit");
        if (limit > 0 && size > limit) {
          this.reject(552, "5.3.4", "Message size exceeds fixed limit");
          return false;
        }
      } else if (k === "BODY") {
        if (!/^(7BIT|8BITMIME)$/i.test(v)) {
          this.reply(555, "5.5.4", `Unsupported option: ${path.sent.get(k)}`);
          return false;
        }
      } else if (k === "RET") {
        if (!this.dsnOffered()) return this.dsnDisabled();
        if (!/^(FULL|HDRS)$/i.test(v ?? "") || path.repeated.has(k)) {
          this.reply(501, "5.5.4", "Bad RET parameter syntax");
          return false;
        }
      } else if (k === "AUTH") {
        const r = authMailParam(this.d.auth ?? null, v);
        if ("error" in r) {
          this.reply(503, "5.5.4", r.error);
          return false;
        }
        path.params.delete(k);
        this.saslSender = r.sender;
      } else if (k === "ENVID") {
        if (!this.dsnOffered()) return this.dsnDisabled();
        // Kept decoded, as Postfix does; encoded again on the way out (RFC 3461 xtext).
        try {
          if (!v || path.repeated.has(k)) throw new Error("empty or repeated ENVID");
          path.params.set(k, xtextDecode(v));
        } catch {
          this.reply(501, "5.5.4", "Bad ENVID parameter syntax");
          return false;
        }
      } else {
        this.reply(555, "5.5.4", `Unsupported option: ${path.sent.get(k)}`);
        return false;
      }
    }
    if (this.policy.strictSmtputf8 && !path.params.has("SMTPUTF8") && nonAscii(path.address)) {
      this.reply(553, "5.6.7", "Must declare SMTPUTF8 to send unicode address");
      return false;
    }
    if (!this.d.restrictions.delayReject) {
      const v =
        await checkSender(this.d.restrictions, this.request(undefined, undefined, path.address)) ??
          await this.unlistedSender(path.address);
      if (v) {
        this.actions = new TransactionActions(); // no transaction: its actions go too
        this.refuse("MAIL", v, { from: path.address });
        return false;
      }
    }
    if (this.milters) {
      this.milterAddress = path.address; // {mail_addr}, before the sender is accepted
      const v = await this.milters.mail([
        `<${quoteAddress(path.address)}>`,
        ...esmtpArgs(path.sent),
      ]);
      if (v.kind === "reply") {
        this.actions = new TransactionActions();
        this.milterRefuse("MAIL", v, { from: path.address });
        return false;
      }
      if (v.kind === "discard") this.milterDiscard("MAIL", { from: path.address });
    }
    this.sender = path.address;
    this.senderParams = path.params;
    this.smtputf8 = path.params.has("SMTPUTF8");
    this.requiretls = path.params.has("REQUIRETLS");
    this.reply(250, "2.1.0", "Ok");
    return true;
  }

  async doRcpt(arg: string): Promise<boolean> {
    if (this.sender === null) {
      this.reply(503, "5.5.1", "Error: need MAIL command");
      return false;
    }
    const m = /^TO:/i.exec(arg);
    if (!m || !arg.slice(m[0].length).trim()) {
      this.reply(501, "5.5.4", "Syntax: RCPT TO:<address>");
      return false;
    }
    const tooMany = await this.d.limits?.recipient();
    if (tooMany) {
      this.limited(tooMany);
      return false;
    }
    let path;
    try {
      path = parseMailPath(arg.slice(m[0].length), { smtputf8: this.policy.smtputf8 });
    } catch {
      this.reply(501, "5.1.3", "Bad recipient address syntax");
      return false;
    }
    if (this.policy.strictSmtputf8 && !this.smtputf8 && nonAscii(path.address)) {
      this.reply(553, "5.6.7", "Must declare SMTPUTF8 to send unicode address");
      return false;
    }
    if (this.bdat) {
      // The envelope went to cleanup with the first chunk.
      this.reply(503, "5.5.1", "Error: RCPT after BDAT");
      return false;
    }
    if (!(await addressSyntaxOk(this.d.restrictions, this.sender, path.address))) {
      this.reply(501, "5.1.3", "Bad recipient address syntax");
      return false;
    }
    if (this.recipients.length >= this.cfg.int("smtpd_recipient_limit")) {
      this.reply(452, "4.5.3", "Error: too many recipients");
      // Not an error until the client ignores this many of them (Postfix's overshoot).
      return this.overshoot++ < this.cfg.int("smtpd_recipient_overshoot_limit");
    }
    const rcpt: Recipient = { address: path.address };
    for (const [k, v] of path.params) {
      if ((k === "NOTIFY" || k === "ORCPT") && !this.dsnOffered()) {
        return this.dsnDisabled();
      } else if (v === null) {
        this.reply(555, "5.5.4", `Unsupported option: ${path.sent.get(k)}`);
        return false;
      } else if (k === "NOTIFY") {
        const items = v.toUpperCase().split(",");
        const known = ["SUCCESS", "FAILURE", "DELAY", "NEVER"];
        const unknown = items.find((i) => !known.includes(i));
        if (unknown) {
          this.log.warn(`unknown DSN NOTIFY command value "${unknown}" in "${v}"`);
        }
        const valid = unknown === undefined && !path.repeated.has(k) &&
          (!items.includes("NEVER") || items.length === 1);
        if (!valid) {
          this.reply(501, "5.5.4", "Error: Bad NOTIFY parameter syntax");
          return false;
        }
        rcpt.notify = items;
      } else if (k === "ORCPT") {
        // "type;xtext", kept as "type;decoded" (Postfix), encoded again on the way out.
        const semi = v.indexOf(";");
        try {
          if (semi < 1 || path.repeated.has(k)) throw new Error("no address type, or repeated");
          rcpt.orcpt = `${v.slice(0, semi)};${xtextDecode(v.slice(semi + 1))}`;
        } catch {
          this.reply(501, "5.5.4", "Error: Bad ORCPT parameter syntax");
          return false;
        }
      } else {
        this.reply(555, "5.5.4", `Unsupported option: ${path.sent.get(k)}`);
        return false;
      }
    }
    // smtpd_reject_unlisted_sender with smtpd_delay_reject: at RCPT, before
    // the recipient restrictions; smtpd_reject_unlisted_recipient after them,
    // unless they refused the recipient (Postfix's smtpd_check_rcpt).
    const verdict =
      (this.d.restrictions.delayReject ? await this.unlistedSender(this.sender) : null) ??
        await checkRecipient(this.d.restrictions, this.request(path.address)) ??
        await this.unlistedRecipient(path.address);
    if (verdict) {
      this.refuse("RCPT", verdict, { from: this.sender, to: path.address });
      return false;
    }
    if (this.milters) {
      this.milterAddress = path.address; // {rcpt_addr}, before the recipient is accepted
      const v = await this.milters.rcpt([
        `<${quoteAddress(path.address)}>`,
        ...esmtpArgs(path.sent),
      ]);
      if (v.kind === "reply") {
        this.milterRefuse("RCPT", v, { from: this.sender, to: path.address });
        return false;
      }
      if (v.kind === "discard") this.milterDiscard("RCPT", { from: this.sender, to: path.address });
    }
    if (this.cleanup) return this.accept(rcpt);
    return this.openCleanupThenAccept(rcpt);
  }

  /** smtpd_reject_unlisted_sender: an unknown sender address in our domains. */
  unlistedSender(sender: string): Promise<Rejection | null> {
    const l = this.d.listed;
    if (!l?.rejectUnlisted.sender || this.actions.discard) return Promise.resolve(null);
    return checkListed(l, sender, "sender", sender);
  }

  /** smtpd_reject_unlisted_recipient: an unknown recipient. */
  unlistedRecipient(recipient: string): Promise<Rejection | null> {
    const l = this.d.listed;
    if (!l?.rejectUnlisted.recipient || this.actions.discard) return Promise.resolve(null);
    return checkListed(l, recipient, "recipient", this.sender ?? "");
  }

  /**
   * Like Postfix, the queue file (and its id) comes with the first accepted
   * recipient: rejections before it are logged as NOQUEUE.
   */
  async openCleanupThenAccept(rcpt: Recipient): Promise<boolean> {
    try {
      let sink = await this.d.openCleanup();
      const auth = this.d.authentication;
      this.authSink = auth && auth.methods.size > 0 ? new AuthSink(sink, auth) : null;
      if (this.authSink) sink = this.authSink;
      this.cleanup = this.milters ? new MilterSink(sink, this.milters, this) : sink;
    } catch (e) {
      this.log.warn(`cleanup service unavailable: ${(e as Error).message}`);
      this.reply(451, "4.3.0", "Error: queue file write error");
      return false;
    }
    this.log.info(
      `${this.cleanup.queueId}: client=${this.client}` +
        `${saslLogFields(this.sasl, this.saslSender)}${this.forwardedLog()}`,
    );
    return this.accept(rcpt);
  }

  accept(rcpt: Recipient): boolean {
    this.recipients.push(rcpt);
    this.reply(250, "2.1.5", "Ok");
    return true;
  }

  /**
   * smtpd_end_of_data_restrictions after the last byte (DATA's dot, BDAT
   * LAST), before cleanup commits: true when they refused the message
   * (answered and logged; the caller aborts the queue file), as Postfix's
   * smtpd_check_eod.
   */
  async endOfDataRefused(only: string | undefined): Promise<boolean> {
    const auth = await this.authenticate();
    // Mail from outside gets cleanup's ARC seal (when one is configured); our own users' is signed.
    const seal = auth?.arcSeal && !this.dkimSignable() ? { arcSeal: auth.arcSeal } : {};
    const edits = auth ? { edits: auth.edits, ...seal } : {};
    if (this.d.restrictions.eod.length === 0) {
      if (auth) this.cleanup?.lateActions(edits);
      return false;
    }
    // What these restrictions decide goes to cleanup after the content, on its own.
    const early = this.actions;
    const late = early.lateStage();
    this.actions = late;
    let v;
    try {
      v = await checkEndOfData(this.d.restrictions, {
        ...this.request(only, "END-OF-MESSAGE"),
        authentication: auth ?? {},
      });
    } finally {
      this.actions = early;
    }
    if (v) this.refuse("END-OF-MESSAGE", v, { from: this.sender!, to: only });
    // The envelope told cleanup to wait for this message.
    else this.cleanup?.lateActions({ ...late.since(early), ...edits });
    return v !== null;
  }

  /**
   * The message's authentication checks (authentication.ts), made at the
   * end of data and logged; null when there are none.
   */
  async authenticate(): Promise<MessageVerdict | null> {
    const checks = this.authSink?.checks;
    if (!checks) return null;
    const req = this.request();
    const v = await checks.verdict({
      spf: async () => (await spfVerdict(this.d.restrictions, req))?.result ?? null,
      sender: this.sender ?? "",
      helo: this.helo,
      resolver: this.d.restrictions.authDns,
    });
    this.log.info(
      `${this.cleanup?.queueId ?? "NOQUEUE"}: authentication-results: ` +
        v.header.replace(/\r\n[ \t]*/g, " "),
    );
    return v;
  }

  /** The headers smtpd puts above the message: PREPEND results, then Received:. */
  leadingHeaders(queueId: string): string {
    return this.prepend.map((h) => `${h}\r\n`).join("") + this.receivedHeader(queueId);
  }

  receivedHeader(queueId: string): string {
    const c = this.peer;
    const from = this.helo ? `${this.helo} (${c.name} [${c.addr}])` : `${c.name} [${c.addr}]`;
    // Postfix puts the date after "for <...>;", else on a line of its own.
    const forPart = this.recipients.length === 1
      ? `\r\n\tfor <${headerAddress(this.recipients[0].address)}>; `
      : ";\r\n\t";
    const date = rfc2822Date(this.d.now?.() ?? new Date());
    const tls = this.tls && this.d.tls?.policy.receivedHeader ? receivedTlsClause(this.tls) : "";
    // Postfix: the TLS lines, then "(Authenticated sender: ...)", then "by".
    const auth = authenticatedSenderLine(this.d.auth ?? null, this.sasl).replace(
      /^\r\n(.+)$/s,
      "$1\r\n",
    );
    return `Received: from ${from}\r\n${tls}${auth}\tby ${this.cfg.str("myhostname")} (${
      this.cfg.str("mail_name")
    }) with ${this.receivedProtocol()} id ${queueId}${forPart}${date}\r\n`;
  }

  /**
   * The protocol for Received: RFC 3848's ESMTPS, ESMTPA, ESMTPSA (Postfix
   * writes plain "SMTP" after HELO, TLS or not), and RFC 6531's UTF8SMTP,
   * UTF8SMTPS, ... in an SMTPUTF8 transaction.
   */
  receivedProtocol(): string {
    // An XCLIENT LOGIN names the proxy's client; only an AUTH here makes it ESMTPA.
    const authed = this.sasl !== null && this.sasl.method !== "XCLIENT";
    const p = receivedProtocol(this.protocol, this.tls !== null, authed);
    return this.smtputf8 ? p.replace(/^E?SMTP/, "UTF8SMTP") : p;
  }

  async doData(arg: string): Promise<boolean> {
    if (arg.trim()) {
      this.reply(501, "5.5.4", "Syntax: DATA");
      return false;
    }
    if (this.bdat) {
      this.reply(503, "5.5.1", "Error: DATA after BDAT");
      return false;
    }
    if (this.sender === null) {
      this.reply(503, "5.5.1", "Error: need RCPT command");
      return false;
    }
    if (this.recipients.length === 0) {
      this.reply(554, "5.5.1", "Error: no valid recipients");
      return false;
    }
    // With more than one recipient Postfix names none of them (nor logs one).
    const only = this.recipients.length === 1 ? this.recipients[0].address : undefined;
    const refused = await checkData(this.d.restrictions, this.request(only));
    if (refused) {
      this.refuse("DATA", refused, { from: this.sender, to: only }); // the transaction stays
      return false;
    }
    const milter = await this.milterData("DATA", only);
    if (milter) {
      milter();
      return false;
    }
    const cleanup = this.cleanup!;
    this.reply(354, null, "End data with <CR><LF>.<CR><LF>");
    await this.flush();
    const limit = this.cfg.size("message_size_limit");
    let cleanupOk = true;
    let cleanupError = "";
    const send = async (b: Uint8Array) => {
      if (!cleanupOk) return;
      try {
        await cleanup.write(b);
      } catch (e) {
        cleanupOk = false;
        cleanupError = (e as Error).message;
      }
    };
    this.startMessage(cleanup);
    await send(encoder.encode(this.leadingHeaders(cleanup.queueId)));
    const decoder = new DataDecoder({ bareLfEndsData: this.bareNewline === "no" });
    this.data = decoder;
    let tooBig = false;
    let rest: Uint8Array | null = null;
    let pending = this.lines.takeBuffered();
    this.requests.start(true);
    for (;;) {
      if (pending.length) {
        const r = decoder.push(pending);
        if (!tooBig) {
          for (const part of r.out) await send(part);
          if (limit > 0 && decoder.bytesOut > limit) {
            tooBig = true;
            cleanupOk = false;
          }
        }
        if (r.done) {
          rest = r.rest;
          break;
        }
      }
      const chunk = await this.read();
      if (chunk === null) {
        cleanup.abort();
        this.cleanup = null;
        this.sender = null;
        this.log.info(`lost connection after ${this.where()} from ${this.client}`);
        throw new Disconnect();
      }
      pending = chunk;
    }
    this.data = null;
    if (rest && rest.length) this.lines.push(rest);
    const bareLfRefused = decoder.bareLfCount > 0 && this.bareNewline === "reject";
    const eod = !bareLfRefused && !tooBig && cleanupOk && await this.endOfDataRefused(only);
    let ok = false;
    if (bareLfRefused) {
      cleanup.abort();
      await this.bareLfRejected({ cmd: "END-OF-MESSAGE", to: only });
    } else if (tooBig) {
      cleanup.abort();
      this.reject(552, "5.3.4", "Error: message file too big");
    } else if (eod) {
      cleanup.abort();
    } else if (!cleanupOk) {
      cleanup.abort();
      this.log.warn(`${cleanup.queueId}: cleanup: ${cleanupError}`);
      this.reply(451, "4.3.0", "Error: queue file write error");
    } else {
      try {
        const r = await cleanup.finish();
        if (r.status === "ok") {
          this.reply(250, "2.0.0", `Ok: queued as ${r.queueId}`);
          ok = true;
          // A message received forgives the client's earlier errors, as in Postfix.
          this.errors = 0;
          this.junk = 0;
        } else {
          this.reject(r.code, r.dsn, r.text);
        }
      } catch (e) {
        this.log.warn(`${cleanup.queueId}: cleanup: ${(e as Error).message}`);
        this.reply(451, "4.3.0", "Error: queue file write error");
      }
    }
    this.cleanup = null;
    // After an end-of-data rejection Postfix keeps the sender: MAIL is nested until RSET.
    if (!eod) {
      this.sender = null;
      this.senderParams = new Map();
    }
    this.recipients = [];
    this.overshoot = 0;
    this.xforward = null;
    this.prepend = [];
    this.actions = new TransactionActions();
    this.instance = "";
    this.smtputf8 = false;
    this.requiretls = false;
    this.saslSender = null;
    return ok;
  }

  mayXclient(): boolean {
    return !!this.d.xclient && authorized(this.d.xclient.xclient, this.peer);
  }

  mayXforward(): boolean {
    return !!this.d.xclient && authorized(this.d.xclient.xforward, this.peer);
  }

  /**
   * XCLIENT: the new identity replaces the client's, the session goes back
   * to the greeting (Postfix counts the command, never as a success).
   */
  async doXclient(arg: string): Promise<boolean> {
    const refused = (code: number, dsn: string, text: string) => {
      this.reply(code, dsn, text);
      this.count("XCLIENT", false);
      return this.error().then(() => false);
    };
    if (this.sender !== null) return refused(503, "5.5.1", "Error: MAIL transaction in progress");
    if (!arg.trim()) return refused(501, "5.5.4", "Syntax: XCLIENT attribute=value...");
    if (!this.mayXclient()) return refused(550, "5.7.0", "Error: insufficient authorization");
    const r = parseXclient(arg);
    if (!r.ok) return refused(501, "5.5.4", r.text);
    const u = r.update;
    if (u.name !== undefined) {
      // Postfix: a NAME sets both names; [UNAVAILABLE] and [TEMPUNAVAIL] make them unknown.
      const status = u.name !== "unknown" ? "ok" : u.nameTemporary ? "temp" : "perm";
      this.peer.name = u.name;
      this.peer.nameStatus = status;
      this.peer.reverseName = u.name;
      this.peer.reverseStatus = status;
    }
    if (u.reverseName !== undefined) {
      this.peer.reverseName = u.reverseName;
      this.peer.reverseStatus = u.reverseName !== "unknown" ? "ok" : "perm";
    }
    if (u.addr !== undefined) this.peer.addr = u.addr;
    if (u.port !== undefined) this.peer.port = u.port;
    this.client = `${this.peer.name}[${this.peer.addr}]`;
    this.resetTransaction();
    this.helo = u.helo ?? "";
    if (u.protocol !== undefined) this.protocol = u.protocol;
    else this.protocol = "SMTP";
    this.sasl = u.login ? { username: u.login, method: "XCLIENT" } : null;
    this.count("XCLIENT", false);
    // The milters meet the new client as Postfix's do: a new connection, a new CONNECT.
    await this.milters?.close();
    this.milters = null;
    if (!(await this.connectMilters())) {
      this.hangupAfterReply = true;
      return false;
    }
    await this.greet();
    return false;
  }

  /**
   * Opens the milters' connections and sends CONNECT (smtpd_milters);
   * false when a milter's 421 ends the session (already answered).
   */
  async connectMilters(): Promise<boolean> {
    if (!this.d.milters?.length) return true;
    this.milters = new MilterChain(this.d.milters, (n) => this.milterMacro(n), this.log);
    const v = await this.milters.connect(this.peer);
    if (v.kind !== "reply") return true;
    // Only a 421 is given at CONNECT; other refusals wait for MAIL FROM (milters.ts).
    this.milterRefuse("CONNECT", v, {});
    return false;
  }

  /** XFORWARD: attributes of the original client, for the next transaction. */
  doXforward(arg: string): boolean {
    if (this.sender !== null) {
      this.reply(503, "5.5.1", "Error: MAIL transaction in progress");
      return false;
    }
    if (!arg.trim()) {
      this.reply(501, "5.5.4", "Syntax: XFORWARD attribute=value...");
      return false;
    }
    if (!this.mayXforward()) {
      this.reply(550, "5.7.0", "Error: insufficient authorization");
      return false;
    }
    const r = parseXforward(arg, this.xforward ?? xforwardPreset());
    if (!r.ok) {
      this.reply(501, "5.5.4", r.text);
      return false;
    }
    this.xforward = r.attrs;
    this.reply(250, "2.0.0", "Ok");
    return true;
  }

  /** `, orig_queue_id=.., orig_client=..` for the client= line, as Postfix. */
  forwardedLog(): string {
    const x = this.xforward;
    if (!x) return "";
    return (x.ident !== null ? `, orig_queue_id=${x.ident}` : "") +
      (forwardedClient(x) ? `, orig_client=${xforwardNamaddr(x)}` : "");
  }

  /** The XFORWARD attributes as the queue file keeps them. */
  forwardedAttrs(x: XforwardAttrs) {
    return {
      name: x.name,
      addr: x.addr,
      port: x.port,
      protocol: x.protocol,
      ...(x.helo !== null ? { helo: x.helo } : {}),
      ...(x.ident !== null ? { ident: x.ident } : {}),
      ...(x.source !== null ? { source: x.source } : {}),
    };
  }

  /** Hands the envelope to cleanup: sender, recipients, client and DSN attributes. */
  startMessage(cleanup: CleanupSink): void {
    const envid = this.senderParams.get("ENVID");
    const ret = this.senderParams.get("RET");
    cleanup.envelope({
      sender: this.sender!,
      recipients: this.recipients,
      attrs: {
        clientName: this.peer.name,
        clientAddr: this.peer.addr,
        ...(this.xforward ? { xforward: this.forwardedAttrs(this.xforward) } : {}),
        helo: this.helo,
        protocol: this.protocol,
        origin: "smtpd",
        ...(envid ? { envid } : {}),
        ...(ret ? { ret: ret.toUpperCase() } : {}),
        ...(this.smtputf8 ? { smtputf8: true } : {}),
        ...(this.requiretls ? { requiretls: true } : {}),
      },
      ...this.actionsField(),
      ...(this.dkimSignable() ? { dkimSign: true } : {}),
    });
  }

  /**
   * Whether cleanup may DKIM-sign this client's mail: SASL-authenticated
   * (not anonymously), or listed in postwarden_dkim_internal_hosts.
   */
  dkimSignable(): boolean {
    if (this.sasl && this.sasl.method.toLowerCase() !== "anonymous") return true;
    const hosts = this.d.authentication?.internalHosts;
    return hosts !== undefined && matchNetworkList(hosts, this.peer) === true;
  }

  /** The envelope's access-table actions; `more` when end-of-data restrictions may add some. */
  actionsField(): { actions?: MessageActions } {
    const a = this.actions.envelope(
      this.d.restrictions.eod.length > 0 || (this.milters?.wantsContent() ?? false) ||
        this.authSink !== null,
      this.cfg.str("content_filter"),
    );
    return a ? { actions: a } : {};
  }

  /**
   * The milters' DATA event (DATA, the first BDAT): null to go on, else
   * the refusal to give (after a BDAT chunk has been read).
   */
  async milterData(cmd: string, only: string | undefined): Promise<(() => void) | null> {
    if (!this.milters) return null;
    const v = await this.milters.data();
    const env = { from: this.sender!, to: only };
    if (v.kind === "reply") return () => this.milterRefuse(cmd, v, env);
    if (v.kind === "discard") this.milterDiscard(cmd, env);
    return null;
  }

  /**
   * A milter's refusal: answered and logged as Postfix's check_milter_reply
   * does (`milter-reject: CMD from client: reply; from=<..> ...`); a 421
   * ends the session after the reply.
   */
  milterRefuse(
    cmd: string,
    v: { reply: Rejection; hangup: boolean },
    env: { from?: string; to?: string; helo?: string },
  ): void {
    this.reject(v.reply.code, v.reply.dsn, v.reply.text);
    this.milterLog(cmd, v, env);
  }

  /** Logs a milter's refusal (the reply is sent elsewhere); a 421 ends the session after it. */
  milterLog(
    cmd: string,
    v: { reply: Rejection; hangup: boolean },
    env: { from?: string; to?: string; helo?: string },
  ): void {
    const r = v.reply;
    const sent = this.softBounce(r.code, r.dsn);
    if (v.hangup) this.hangupAfterReply = true;
    this.log.info(
      `${this.cleanup?.queueId ?? "NOQUEUE"}: milter-reject: ${cmd} from ${this.client}: ` +
        `${sent.code} ${sent.dsn} ${r.text}; ${this.envelopeLog(env)}`,
    );
  }

  /** A milter's DISCARD before the content: the message will be accepted and dropped. */
  milterDiscard(cmd: string, env: { from?: string; to?: string }): void {
    this.actions.discard = true;
    this.log.info(
      `${this.cleanup?.queueId ?? "NOQUEUE"}: milter-discard: ${cmd} from ${this.client}: ` +
        `milter triggers DISCARD action; ${this.envelopeLog(env)}`,
    );
  }

  /** `from=<..> to=<..> proto=.. helo=<..>` for log lines. */
  envelopeLog(env: { from?: string; to?: string; helo?: string }): string {
    const helo = env.helo ?? this.helo;
    return [
      env.from !== undefined ? `from=<${quoteAddress(env.from)}>` : "",
      env.to !== undefined ? `to=<${quoteAddress(env.to)}>` : "",
      `proto=${this.protocol}`,
      helo ? `helo=<${helo}>` : "",
    ].filter((p) => p !== "").join(" ");
  }

  /**
   * The value of a milter macro now (Postfix's smtpd_milter_eval), or
   * undefined when it has none; milter_macro_defaults fills the gaps.
   */
  milterMacro(name: string): string | undefined {
    const v = this.macroValue(name.replace(/^\{(.*)\}$/, "$1"));
    return v ?? this.macroDefaults().get(name.replace(/^\{(.*)\}$/, "$1"));
  }

  #macroDefaults: Map<string, string> | null = null;

  macroDefaults(): Map<string, string> {
    if (this.#macroDefaults) return this.#macroDefaults;
    const m = new Map<string, string>();
    for (const item of this.cfg.str("milter_macro_defaults").split(/[\s,]+/)) {
      const eq = item.indexOf("=");
      if (eq > 0) m.set(item.slice(0, eq).replace(/^\{(.*)\}$/, "$1"), item.slice(eq + 1));
    }
    return this.#macroDefaults = m;
  }

  macroValue(name: string): string | undefined {
    const p = this.peer;
    switch (name) {
      case "i":
        return this.cleanup?.queueId;
      case "j":
        return this.cfg.str("myhostname");
      case "_":
        return `${p.name} [${p.addr}]`;
      case "v":
        return this.cfg.str("milter_macro_v");
      case "daemon_name":
        return this.cfg.str("milter_macro_daemon_name");
      case "daemon_addr":
        return this.d.client.server?.addr;
      case "daemon_port":
        return this.d.client.server ? String(this.d.client.server.port) : undefined;
      case "client_addr":
        return p.addr;
      case "client_name":
        return p.name;
      case "client_port":
        return String(p.port);
      case "client_ptr":
        return p.reverseName;
      case "tls_version":
        return this.tls?.protocol;
      case "cipher":
        return this.tls?.cipher;
      case "cipher_bits":
        return this.tls ? String(this.tls.bits) : undefined;
      case "auth_type":
        return this.sasl && this.sasl.method !== "XCLIENT" ? this.sasl.method : undefined;
      case "auth_authen":
        return this.sasl?.username;
      case "auth_author":
        return this.saslSender ?? undefined;
      case "mail_addr":
        return this.sender ?? this.milterAddress ?? undefined;
      case "rcpt_addr":
        return this.milterAddress ?? undefined;
      default:
        return undefined;
    }
  }
}

/** MAIL/RCPT parameters as the client wrote them ("SIZE=100"), for milters. */
function esmtpArgs(sent: Map<string, string>): string[] {
  return [...sent.values()];
}
