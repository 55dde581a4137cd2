/**
 * One SMTP server session (RFC 5321) with Postfix's replies and logging:
 * EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, VRFY, with PIPELINING,
 * SIZE, 8BITMIME, ENHANCEDSTATUSCODES and DSN. Each message is streamed
 * to cleanup while it arrives; 250 is sent only after cleanup reports the
 * queue file durable.
 *
 * The session does no socket I/O of its own: it reads through a function
 * and writes through a function, so tests can drive it in memory.
 * AUTH is auth.ts's (with smtpd_sasl_auth_enable). STARTTLS,
 * BDAT/CHUNKING, ETRN and XCLIENT are not implemented and not advertised.
 *
 * Access restrictions (restrictions.ts) run at Postfix's stages: with
 * `smtpd_delay_reject = no` the client list at connect (a rejection
 * replaces the greeting, and every later command but QUIT gets 503 5.7.0),
 * the helo list at HELO/EHLO and the sender list at MAIL; otherwise all
 * three at RCPT. `smtpd_data_restrictions` run at DATA. Each rejection is
 * logged as Postfix logs it (`NOQUEUE: reject: RCPT from ...`).
 *
 * Recipients over `smtpd_recipient_limit` get 452 4.5.3 without counting
 * as errors until `smtpd_recipient_overshoot_limit` more have been refused
 * in the transaction, as Postfix. `smtpd_timeout` bounds each read and each
 * write: a client that stops reading replies is disconnected like one that
 * stops sending ("timeout after X from Y").
 *
 * Parameters: smtpd_banner, myhostname, mail_name, message_size_limit,
 * smtpd_recipient_limit (1000), smtpd_recipient_overshoot_limit (1000),
 * smtpd_timeout (300s), smtpd_hard_error_limit (20),
 * smtpd_soft_error_limit (10), smtpd_error_sleep_time (1s),
 * line_length_limit (2048), disable_vrfy_command (no), smtpd_helo_required
 * (no), soft_bounce (no), and through the restriction context
 * smtpd_delay_reject (yes), smtpd_*_restrictions, mynetworks,
 * mydestination, relay_domains, myorigin, append_at_myorigin and the
 * *_reject_code parameters.
 */
import { AddressError, headerAddress, parseMailPath, quoteAddress } from "../../lib/address/mod.ts";
import { CleanupSession } from "../../lib/cleanup/client.ts";
import type { Config } from "../../lib/config/mod.ts";
import type { Logger } from "../../lib/log/mod.ts";
import { rfc2822Date, xtextDecode } from "../../lib/mime/mod.ts";
import type { Recipient } from "../../lib/queue/mod.ts";
import { DataDecoder, formatReply, LineReader, parseCommand } from "../../lib/smtp/mod.ts";
import {
  addressSyntaxOk,
  checkConnect,
  checkData,
  checkHelo,
  checkRecipient,
  type CheckRequest,
  checkSender,
  type DeferIfPermitCarry,
  type RestrictionContext,
  type Verdict,
} from "./restrictions.ts";
import { checkListed, type ListedContext } from "./recipients.ts";
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

/** What STARTTLS established (the tls part defines it; AUTH only asks whether it is set). */
type TlsInfo = Record<string, unknown>;

/** Who is connected. */
export interface ClientInfo {
  name: string;
  addr: string;
  port: number;
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
  openCleanup: () => Promise<CleanupSession>;
  restrictions: RestrictionContext;
  /** Unknown users refused at RCPT (recipients.ts); absent: every address is accepted. */
  listed?: ListedContext;
  /** SMTP AUTH (auth.ts); absent or null: AUTH is not offered. */
  auth?: AuthContext | null;
  /** Our address of the connection (Dovecot's lip), "" if unknown. */
  serverAddr?: string;
  now?: () => Date;
}

class Timeout extends Error {
  override readonly name = "Timeout";
  /** True when the client stopped reading (a write did not complete), false when it stopped sending. */
  constructor(readonly writing: boolean) {
    super(writing ? "write timeout" : "read timeout");
  }
}

class Disconnect extends Error {
  override readonly name = "Disconnect";
}

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** Postfix's command table order, used for the counts in the disconnect line. */
const COUNT_ORDER = [
  "helo",
  "ehlo",
  "auth",
  "mail",
  "rcpt",
  "data",
  "rset",
  "noop",
  "vrfy",
  "quit",
];
const KNOWN_VERBS = new Set(COUNT_ORDER.map((v) => v.toUpperCase()));

/** Runs a session to its end. Never throws for client behaviour. */
export async function runSession(d: SessionDeps): Promise<void> {
  await new Session(d).run();
}

class Session {
  readonly cfg: Config;
  readonly log: Logger;
  readonly lines: LineReader;
  readonly client: string;
  out: string[] = [];
  helo = "";
  protocol = "SMTP";
  sender: string | null = null;
  senderParams = new Map<string, string | null>();
  recipients: Recipient[] = [];
  cleanup: CleanupSession | null = null;
  errors = 0;
  counts = new Map<string, [number, number]>();
  lastCommand = "CONNECT";
  /** The message being received, for "after DATA (N bytes)" in log lines. */
  data: DataDecoder | null = null;
  readonly timeoutMs: number;
  /** Recipients refused over smtpd_recipient_limit in this transaction. */
  overshoot = 0;
  /** smtpd_delay_reject = no and the client restrictions refused the client at connect. */
  accessDenied = false;
  /** A write timed out: nothing more can be sent. */
  writeStuck = false;
  /** DEFER_IF_PERMIT results of the early checks (smtpd_delay_reject = no), for RCPT. */
  readonly deferIfPermit: DeferIfPermitCarry = {};
  /** Set after a successful AUTH (auth.ts); null before. */
  sasl: SaslLogin | null = null;
  /** MAIL FROM's AUTH= address, for the "client=" log line. */
  saslSender: string | null = null;
  /** Set by STARTTLS or wrapper mode (the tls part); null without TLS. */
  tls: TlsInfo | null = null;

  constructor(readonly d: SessionDeps) {
    this.cfg = d.config;
    this.log = d.log;
    this.lines = new LineReader({ maxLineLength: this.cfg.int("line_length_limit") });
    this.client = `${d.client.name}[${d.client.addr}]`;
    this.timeoutMs = this.cfg.time("smtpd_timeout") * 1000;
  }

  reply(code: number, enhanced: string | null, text: string | string[]): void {
    this.out.push(formatReply(code, enhanced, text));
  }

  /**
   * A reply that rejects mail (a restriction, size, cleanup's verdict):
   * with soft_bounce = yes a 5XX becomes 4XX, so the client keeps the mail.
   */
  reject(code: number, enhanced: string, text: string): { code: number; dsn: string } {
    if (code >= 500 && code < 600 && this.cfg.bool("soft_bounce")) {
      code -= 100;
      enhanced = enhanced.replace(/^5/, "4");
    }
    this.reply(code, enhanced, text);
    return { code, dsn: enhanced };
  }

  async flush(): Promise<void> {
    if (!this.out.length || this.writeStuck) return;
    const text = this.out.join("");
    this.out = [];
    await this.deadline(this.d.write(encoder.encode(text)), true);
  }

  /** `p`, or a Timeout after smtpd_timeout. A write given up on stays given up on. */
  async deadline<T>(p: Promise<T>, writing: boolean): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const t = new Promise<never>((_, rej) => {
      timer = setTimeout(() => {
        if (writing) this.writeStuck = true;
        rej(new Timeout(writing));
      }, this.timeoutMs);
    });
    // Settled by the host closing the connection, after the session gave up on it.
    p.catch(() => {});
    try {
      return await Promise.race([p, t]);
    } finally {
      clearTimeout(timer);
    }
  }

  count(verb: string, ok: boolean): void {
    const key = verb.toLowerCase();
    const c = this.counts.get(key) ?? [0, 0];
    c[1]++;
    if (ok) c[0]++;
    this.counts.set(key, c);
  }

  read(): Promise<Uint8Array | null> {
    return this.deadline(this.d.read(), false);
  }

  /** What restriction checks know about the session now. */
  request(recipient?: string): CheckRequest {
    const { name, addr } = this.d.client;
    return {
      client: { name, addr },
      helo: this.helo,
      sender: this.sender,
      recipient,
      sasl: this.sasl,
      deferIfPermit: this.deferIfPermit,
      log: (action, text) => {
        const parts = [
          this.sender !== null ? `from=<${quoteAddress(this.sender)}>` : "",
          recipient !== undefined ? `to=<${quoteAddress(recipient)}>` : "",
          `proto=${this.protocol}`,
          this.helo ? `helo=<${this.helo}>` : "",
        ].filter((p) => p !== "");
        this.log.info(
          `${this.cleanup?.queueId ?? "NOQUEUE"}: ${action}: ${this.lastCommand} from ` +
            `${this.client}: ${text}; ${parts.join(" ")}`,
        );
      },
    };
  }

  /**
   * Answers a restriction's verdict and logs it as Postfix does:
   * `QUEUEID: reject: CMD from client: reply; from=<..> to=<..> proto=.. helo=<..>`.
   */
  refuse(cmd: string, v: Verdict, env: { from?: string; to?: string; helo?: string } = {}): void {
    const sent = this.reject(v.code, v.dsn, v.text);
    const helo = env.helo ?? this.helo;
    const parts = [
      env.from !== undefined ? `from=<${quoteAddress(env.from)}>` : "",
      env.to !== undefined ? `to=<${quoteAddress(env.to)}>` : "",
      `proto=${this.protocol}`,
      helo ? `helo=<${helo}>` : "",
    ].filter((p) => p !== "");
    this.log.info(
      `${this.cleanup?.queueId ?? "NOQUEUE"}: reject: ${cmd} from ${this.client}: ` +
        `${sent.code} ${sent.dsn} ${v.text}; ${parts.join(" ")}`,
    );
  }

  /** Where the session is, for "lost connection after ..." log lines (Postfix's state->where). */
  where(): string {
    return this.data ? `DATA (${this.data.bytesOut} bytes)` : this.lastCommand;
  }

  async nextLine() {
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
      const denied = this.d.restrictions.delayReject
        ? null
        : await checkConnect(this.d.restrictions, this.request());
      if (denied) {
        this.accessDenied = true;
        this.refuse("CONNECT", denied);
        await this.error();
      } else this.reply(220, null, this.cfg.str("smtpd_banner"));
      await this.flush();
      for (;;) {
        const l = await this.nextLine();
        if (l === null) {
          this.log.info(`lost connection after ${this.lastCommand} from ${this.client}`);
          break;
        }
        if (l.tooLong) {
          this.reply(500, "5.5.2", "Error: line too long");
          await this.error();
          continue;
        }
        const cmd = parseCommand(l.line);
        if (cmd.verb === "") {
          this.reply(500, "5.5.2", "Error: bad syntax");
          await this.error();
          continue;
        }
        const quit = await this.dispatch(cmd.verb, cmd.arg);
        if (quit) break;
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
      this.log.info(`disconnect from ${this.client}${this.summary()}`);
    }
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
    return `${s} commands=${ok === all ? ok : `${ok}/${all}`}`;
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
    if (this.accessDenied && KNOWN_VERBS.has(verb) && verb !== "QUIT") {
      // Postfix does not move "after CONNECT" on for a refused client.
      this.reply(503, "5.7.0", `Error: access denied for ${this.client}`);
      this.count(verb, false);
      await this.error();
      return false;
    }
    const name = verb === "" ? "UNKNOWN" : verb;
    this.lastCommand = name;
    let ok = true;
    switch (verb) {
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
      case "AUTH":
        ok = await authCommand(this.d.auth ?? null, this.authSession(), arg);
        break;
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
        if (this.cfg.bool("disable_vrfy_command")) {
          this.reply(502, "5.5.1", "VRFY command is disabled");
          ok = false;
        } else if (!arg) {
          this.reply(501, "5.5.4", "Syntax: VRFY address");
          ok = false;
        } else {
          this.reply(252, "2.0.0", arg);
        }
        break;
      case "QUIT":
        this.count(verb, true);
        this.reply(221, "2.0.0", "Bye");
        await this.flush();
        return true;
      default:
        this.count("unknown", false);
        this.log.warn(`non-SMTP command from ${this.client}: ${verb.slice(0, 100)}`);
        this.reply(500, "5.5.2", "Error: command not recognized");
        await this.error();
        return false;
    }
    this.count(verb, ok);
    if (!ok) await this.error();
    return false;
  }

  async doHelo(verb: string, arg: string): Promise<boolean> {
    const host = arg.trim().split(/\s+/)[0] ?? "";
    if (!host) {
      this.out.push(`501 Syntax: ${verb} hostname\r\n`); // no enhanced code, as Postfix
      return false;
    }
    if (!this.d.restrictions.delayReject) {
      const v = await checkHelo(this.d.restrictions, { ...this.request(), helo: host });
      if (v) {
        this.refuse(verb, v, { helo: host });
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
    lines.push(...await authKeywords(this.d.auth ?? null, this.authSession()));
    lines.push("ENHANCEDSTATUSCODES", "8BITMIME", "DSN");
    this.reply(250, null, lines);
    return true;
  }

  resetTransaction(): void {
    this.cleanup?.abort();
    this.cleanup = null;
    this.sender = null;
    this.senderParams = new Map();
    this.recipients = [];
    this.overshoot = 0;
    this.saslSender = null;
  }

  /** The session as the AUTH command sees it (auth.ts). */
  authSession(): AuthSession {
    // deno-lint-ignore no-this-alias
    const self = this;
    return {
      client: this.client,
      clientAddr: this.d.client.addr,
      clientName: this.d.client.name,
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
    if (this.sender !== null) {
      this.reply(503, "5.5.1", "Error: nested MAIL command");
      return false;
    }
    if (!this.helo && this.cfg.bool("smtpd_helo_required")) {
      this.reply(503, "5.5.1", "Error: send HELO/EHLO first");
      return false;
    }
    const m = /^FROM:/i.exec(arg);
    if (!m) {
      this.reply(501, "5.5.4", "Syntax: MAIL FROM:<address>");
      return false;
    }
    let path;
    try {
      path = parseMailPath(arg.slice(m[0].length), { allowEmpty: true });
    } catch (e) {
      if (e instanceof AddressError && e.part === "parameter") {
        this.reply(501, "5.5.4", `Bad MAIL parameter syntax`);
      } else this.reply(501, "5.1.7", "Bad sender address syntax");
      return false;
    }
    if (!(await addressSyntaxOk(this.d.restrictions, path.address, path.address))) {
      this.reply(501, "5.1.7", "Bad sender address syntax");
      return false;
    }
    for (const [k, v] of path.params) {
      if (k === "SIZE") {
        const size = Number(v);
        if (!/^\d+$/.test(v ?? "")) {
          this.reply(501, "5.5.4", "Bad message size syntax");
          return false;
        }
        const limit = this.cfg.size("message_size_limit");
        if (limit > 0 && size > limit) {
          this.reject(552, "5.3.4", "Message size exceeds fixed limit");
          return false;
        }
      } else if (k === "BODY") {
        if (!/^(7BIT|8BITMIME)$/i.test(v ?? "")) {
          this.reply(555, "5.5.4", `Unsupported option: ${k}=${v ?? ""}`);
          return false;
        }
      } else if (k === "RET") {
        if (!/^(FULL|HDRS)$/i.test(v ?? "")) {
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
        // Kept decoded, as Postfix does; encoded again on the way out (RFC 3461 xtext).
        try {
          path.params.set(k, xtextDecode(v ?? ""));
        } catch {
          this.reply(501, "5.5.4", "Bad ENVID parameter syntax");
          return false;
        }
      } else {
        this.reply(555, "5.5.4", `Unsupported option: ${v === null ? k : `${k}=${v}`}`);
        return false;
      }
    }
    if (!this.d.restrictions.delayReject) {
      const v =
        await checkSender(this.d.restrictions, { ...this.request(), sender: path.address }) ??
          await this.unlistedSender(path.address);
      if (v) {
        this.refuse("MAIL", v, { from: path.address });
        return false;
      }
    }
    this.sender = path.address;
    this.senderParams = path.params;
    this.reply(250, "2.1.0", "Ok");
    return true;
  }

  async doRcpt(arg: string): Promise<boolean> {
    if (this.sender === null) {
      this.reply(503, "5.5.1", "Error: need MAIL command");
      return false;
    }
    const m = /^TO:/i.exec(arg);
    if (!m) {
      this.reply(501, "5.5.4", "Syntax: RCPT TO:<address>");
      return false;
    }
    let path;
    try {
      path = parseMailPath(arg.slice(m[0].length));
    } catch {
      this.reply(501, "5.1.3", "Bad recipient address syntax");
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
      if (k === "NOTIFY") {
        const items = (v ?? "").toUpperCase().split(",");
        const valid = items.every((i) => ["SUCCESS", "FAILURE", "DELAY", "NEVER"].includes(i)) &&
          (!items.includes("NEVER") || items.length === 1);
        if (!valid) {
          this.reply(501, "5.5.4", "Error: Bad NOTIFY parameter syntax");
          return false;
        }
        rcpt.notify = items;
      } else if (k === "ORCPT") {
        // "type;xtext", kept as "type;decoded" (Postfix), encoded again on the way out.
        const semi = (v ?? "").indexOf(";");
        try {
          if (semi < 1) throw new Error("no address type");
          rcpt.orcpt = `${v!.slice(0, semi)};${xtextDecode(v!.slice(semi + 1))}`;
        } catch {
          this.reply(501, "5.5.4", "Error: Bad ORCPT parameter syntax");
          return false;
        }
      } else {
        this.reply(555, "5.5.4", `Unsupported option: ${v === null ? k : `${k}=${v}`}`);
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
    if (this.cleanup) return this.accept(rcpt);
    return this.openCleanupThenAccept(rcpt);
  }

  /** smtpd_reject_unlisted_sender: an unknown sender address in our domains. */
  unlistedSender(sender: string): Promise<Verdict | null> {
    const l = this.d.listed;
    if (!l?.rejectUnlisted.sender) return Promise.resolve(null);
    return checkListed(l, sender, "sender", sender);
  }

  /** smtpd_reject_unlisted_recipient: an unknown recipient. */
  unlistedRecipient(recipient: string): Promise<Verdict | null> {
    const l = this.d.listed;
    if (!l?.rejectUnlisted.recipient) return Promise.resolve(null);
    return checkListed(l, recipient, "recipient", this.sender ?? "");
  }

  /**
   * Like Postfix, the queue file (and its id) comes with the first accepted
   * recipient: rejections before it are logged as NOQUEUE.
   */
  async openCleanupThenAccept(rcpt: Recipient): Promise<boolean> {
    try {
      this.cleanup = await this.d.openCleanup();
    } catch (e) {
      this.log.warn(`cleanup service unavailable: ${(e as Error).message}`);
      this.reply(451, "4.3.0", "Error: queue file write error");
      return false;
    }
    this.log.info(
      `${this.cleanup.queueId}: client=${this.client}${saslLogFields(this.sasl, this.saslSender)}`,
    );
    return this.accept(rcpt);
  }

  accept(rcpt: Recipient): boolean {
    this.recipients.push(rcpt);
    this.reply(250, "2.1.5", "Ok");
    return true;
  }

  receivedHeader(queueId: string): string {
    const c = this.d.client;
    const from = this.helo ? `${this.helo} (${c.name} [${c.addr}])` : `${c.name} [${c.addr}]`;
    const forPart = this.recipients.length === 1
      ? `\r\n\tfor <${headerAddress(this.recipients[0].address)}>`
      : "";
    const date = rfc2822Date(this.d.now?.() ?? new Date());
    const proto = receivedProtocol(this.protocol, this.tls !== null, this.sasl !== null);
    const authLine = authenticatedSenderLine(this.d.auth ?? null, this.sasl);
    return `Received: from ${from}${authLine}\r\n\tby ${this.cfg.str("myhostname")} (${
      this.cfg.str("mail_name")
    }) with ${proto} id ${queueId}${forPart}; ${date}\r\n`;
  }

  async doData(arg: string): Promise<boolean> {
    if (arg.trim()) {
      this.reply(501, "5.5.4", "Syntax: DATA");
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
    const envid = this.senderParams.get("ENVID");
    const ret = this.senderParams.get("RET");
    cleanup.envelope({
      sender: this.sender,
      recipients: this.recipients,
      attrs: {
        clientName: this.d.client.name,
        clientAddr: this.d.client.addr,
        helo: this.helo,
        protocol: this.protocol,
        origin: "smtpd",
        ...(envid ? { envid } : {}),
        ...(ret ? { ret: ret.toUpperCase() } : {}),
      },
    });
    await send(encoder.encode(this.receivedHeader(cleanup.queueId)));
    const decoder = new DataDecoder();
    this.data = decoder;
    let tooBig = false;
    let rest: Uint8Array | null = null;
    let pending = this.lines.takeBuffered();
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
    if (decoder.bareLfCount > 0) {
      this.log.info(`${cleanup.queueId}: bare <LF> received from ${this.client} (normalized)`);
    }
    this.cleanup = null;
    let ok = false;
    if (tooBig) {
      cleanup.abort();
      this.reject(552, "5.3.4", "Error: message file too big");
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
        } else {
          this.reject(r.code, r.dsn, r.text);
        }
      } catch (e) {
        this.log.warn(`${cleanup.queueId}: cleanup: ${(e as Error).message}`);
        this.reply(451, "4.3.0", "Error: queue file write error");
      }
    }
    this.sender = null;
    this.recipients = [];
    this.senderParams = new Map();
    this.overshoot = 0;
    this.saslSender = null;
    return ok;
  }
}
