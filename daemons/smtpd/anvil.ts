/**
 * smtpd's client rate and concurrency limits, asked of the anvil daemon
 * (daemons/anvil) over lib/ipc, with Postfix's replies and warnings:
 *
 * - smtpd_client_connection_count_limit (50): the connection that goes
 *   over it gets `421 4.7.0 <myhostname> Error: too many connections from
 *   <addr>` instead of the greeting, and "Connection concurrency limit
 *   exceeded: N from name[addr] for service S" is logged;
 * - smtpd_client_connection_rate_limit (0): the same reply, "Connection
 *   rate limit exceeded";
 * - smtpd_client_message_rate_limit (0): MAIL gets `450 4.7.1 Error: too
 *   much mail from <addr>`;
 * - smtpd_client_recipient_rate_limit (0): RCPT gets `450 4.7.1 Error: too
 *   many recipients from <addr>`;
 * - smtpd_client_auth_rate_limit (0): AUTH gets `450 4.7.1 Error: too many
 *   AUTH commands from <addr>` ({@link checkAuthRate}, for the AUTH code);
 * - smtpd_client_event_limit_exceptions ($mynetworks): clients it matches
 *   are never counted nor limited.
 *
 * The ident is Postfix's `service:address`, the service being the
 * master.cf service name (the "for service" of the warnings). As in
 * Postfix, connect and disconnect are reported even when only a rate is
 * limited, and only then (a rate limit of 0 is never asked about). smtpd
 * shares one anvil connection among its sessions (anvil_channel.ts, as
 * Postfix's one anvil client per smtpd process); without one, each
 * session opens its own. Either way, when smtpd dies anvil drops its
 * counts. anvil unreachable or slow (over
 * {@link ANVIL_TIMEOUT_MS}) means no limit for that event and a warning,
 * never a refused client (Postfix's behaviour).
 * - smtpd_client_new_tls_session_rate_limit (0): as Postfix's smtpd.c,
 *   a client whose rate of new (not resumed) TLS sessions is already over
 *   the limit gets `454 4.7.0 Error: too many new TLS sessions from
 *   name[addr]` to STARTTLS ("Refusing STARTTLS request from name[addr]
 *   for service S"), and in wrapper mode is dropped before the handshake
 *   ("Refusing TLS service request ..."), both without counting
 *   ({@link ClientLimits.tlsRefused}, anvil's newtls_report); each
 *   handshake that did not resume a session, failed ones too, is counted
 *   after it ({@link ClientLimits.newTls}) and the one that goes over
 *   ends the session with `421 4.7.0 <myhostname> Error: too many new TLS
 *   sessions from name[addr]` ("New TLS session rate limit exceeded: N
 *   from name[addr] for service S").
 *
 * Parameters: the seven above, myhostname.
 */
import type { Rejection } from "../../lib/outcome/mod.ts";
import { type Config, matchNetworkList, parseNetworkList } from "../../lib/config/mod.ts";
import type { IpcConn } from "../../lib/ipc/mod.ts";
import type { AnvilChannel } from "./anvil_channel.ts";

/** Longest wait for anvil's answer before the event goes unlimited. */
export const ANVIL_TIMEOUT_MS = 5000;

/** A refusal: the reply and the warning to log. */
export interface LimitRefusal extends Rejection {
  warning: string;
}

/** The limits of one smtpd service (0: not limited). */
export interface LimitSettings {
  countLimit: number;
  connRateLimit: number;
  messageRateLimit: number;
  recipientRateLimit: number;
  authRateLimit: number;
  newTlsRateLimit: number;
  exceptions: ReturnType<typeof parseNetworkList>;
  myhostname: string;
}

/** The limit parameters. */
export function limitSettings(c: Config): LimitSettings {
  return {
    countLimit: c.int("smtpd_client_connection_count_limit"),
    connRateLimit: c.int("smtpd_client_connection_rate_limit"),
    messageRateLimit: c.int("smtpd_client_message_rate_limit"),
    recipientRateLimit: c.int("smtpd_client_recipient_rate_limit"),
    authRateLimit: c.int("smtpd_client_auth_rate_limit"),
    newTlsRateLimit: c.int("smtpd_client_new_tls_session_rate_limit"),
    exceptions: parseNetworkList(
      "smtpd_client_event_limit_exceptions",
      c.list("smtpd_client_event_limit_exceptions"),
    ),
    myhostname: c.str("myhostname"),
  };
}

/** True when any limit is set: smtpd talks to anvil (Postfix creates its anvil client then). */
export function anyLimit(s: LimitSettings): boolean {
  return s.countLimit > 0 || s.connRateLimit > 0 || s.messageRateLimit > 0 ||
    s.recipientRateLimit > 0 || s.authRateLimit > 0 || s.newTlsRateLimit > 0;
}

/** One SMTP session's view of the limits. */
export interface ClientLimits {
  /** At connect, before the greeting: a refusal ends the session. */
  connect(): Promise<LimitRefusal | null>;
  /** At MAIL. */
  message(): Promise<LimitRefusal | null>;
  /** At RCPT. */
  recipient(): Promise<LimitRefusal | null>;
  /** At AUTH (see {@link checkAuthRate}). */
  auth(): Promise<LimitRefusal | null>;
  /**
   * Before a TLS handshake (STARTTLS, or wrapper mode at connect): the
   * warning to log when the client's new TLS session rate is already over
   * the limit (the request is then refused), else null. Counts nothing.
   */
  tlsRefused(what: "STARTTLS request" | "TLS service request"): Promise<string | null>;
  /**
   * After a TLS handshake that did not resume a session (or failed):
   * counts it; over the limit, the refusal (421) and its warning.
   */
  newTls(): Promise<LimitRefusal | null>;
  /** At the end of the session (also closes the anvil connection). */
  disconnect(): Promise<void>;
}

/** What {@link clientLimits} needs besides the settings. */
export interface ClientLimitDeps {
  /** The master.cf service name. */
  service: string;
  client: { name: string; addr: string };
  /** Opens a connection to anvil (this session's own, without `channel`). */
  open: () => Promise<IpcConn>;
  /** The process's shared anvil connection (anvil_channel.ts); absent: one per session. */
  channel?: AnvilChannel;
  warn: (msg: string) => void;
}

/**
 * The limits for one session. A client in smtpd_client_event_limit_exceptions,
 * or a service with no limit set, never talks to anvil.
 */
export function clientLimits(s: LimitSettings, d: ClientLimitDeps): ClientLimits {
  const excepted = !anyLimit(s) || matchNetworkList(s.exceptions, d.client) === true;
  const ident = `${d.service}:${d.client.addr}`;
  const namaddr = `${d.client.name}[${d.client.addr}]`;
  let conn: IpcConn | null = null;
  let broken = false;
  let connected = false;

  /** One request; null (with a warning) when anvil cannot answer. */
  const ask = async (request: string): Promise<Record<string, unknown> | null> => {
    if (excepted || broken) return null;
    try {
      if (d.channel) {
        const r = await d.channel.request({ request, ident });
        if (r.status !== 0) throw new Error(`request ${request} failed`);
        return r;
      }
      conn ??= await d.open();
      conn.timeoutMs = ANVIL_TIMEOUT_MS;
      await conn.send({ request, ident });
      const r = await conn.recvMsg();
      if (r.status !== 0) throw new Error(`request ${request} failed`);
      return r;
    } catch (e) {
      // One warning per session; later events of this session are not limited either.
      broken = true;
      conn?.close();
      conn = null;
      d.warn(`problem talking to server private/anvil: ${(e as Error).message}`);
      return null;
    }
  };
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  const rateCheck = async (
    request: string,
    limit: number,
    what: string,
    reply: string,
  ): Promise<LimitRefusal | null> => {
    if (limit <= 0) return null;
    const r = await ask(request);
    const rate = num(r?.rate);
    if (!r || rate <= limit) return null;
    return {
      code: 450,
      dsn: "4.7.1",
      text: `Error: ${reply} from ${d.client.addr}`,
      warning: `${what} rate limit exceeded: ${rate} from ${namaddr} for service ${d.service}`,
    };
  };

  return {
    async connect() {
      const r = await ask("connect");
      if (!r) return null;
      connected = true;
      const count = num(r.count);
      const rate = num(r.rate);
      const refuse = (warning: string): LimitRefusal => ({
        code: 421,
        dsn: "4.7.0",
        text: `${s.myhostname} Error: too many connections from ${d.client.addr}`,
        warning,
      });
      if (s.countLimit > 0 && count > s.countLimit) {
        return refuse(
          `Connection concurrency limit exceeded: ${count} from ${namaddr} for service ${d.service}`,
        );
      }
      if (s.connRateLimit > 0 && rate > s.connRateLimit) {
        return refuse(
          `Connection rate limit exceeded: ${rate} from ${namaddr} for service ${d.service}`,
        );
      }
      return null;
    },
    message: () =>
      rateCheck("message", s.messageRateLimit, "Message delivery request", "too much mail"),
    recipient: () =>
      rateCheck("recipient", s.recipientRateLimit, "Recipient address", "too many recipients"),
    auth: () => rateCheck("auth", s.authRateLimit, "AUTH command", "too many AUTH commands"),
    async tlsRefused(what) {
      if (s.newTlsRateLimit <= 0) return null;
      const r = await ask("newtls_report");
      if (!r || num(r.rate) <= s.newTlsRateLimit) return null;
      return `Refusing ${what} from ${namaddr} for service ${d.service}`;
    },
    async newTls() {
      if (s.newTlsRateLimit <= 0) return null;
      const r = await ask("newtls");
      const rate = num(r?.rate);
      if (!r || rate <= s.newTlsRateLimit) return null;
      return {
        code: 421,
        dsn: "4.7.0",
        text: `${s.myhostname} Error: too many new TLS sessions from ${namaddr}`,
        warning:
          `New TLS session rate limit exceeded: ${rate} from ${namaddr} for service ${d.service}`,
      };
    },
    async disconnect() {
      if (connected && d.channel && !broken) {
        // A failure is not warned about: anvil dropped the count with the connection.
        await d.channel.request({ request: "disconnect", ident }).catch(() => {});
        return;
      }
      if (connected && conn && !broken) {
        try {
          await conn.send({ request: "disconnect", ident });
          await conn.recvMsg();
        } catch {
          // anvil drops this session's count when the connection closes anyway
        }
      }
      conn?.close();
      conn = null;
    },
  };
}

/**
 * smtpd_client_auth_rate_limit, for the AUTH command: call it once per
 * AUTH command, before the SASL exchange starts (where Postfix's
 * smtpd_sasl_auth_cmd checks it, so every AUTH attempt counts, failed or
 * not). A non-null result is the reply to send instead of running the
 * exchange (`450 4.7.1 Error: too many AUTH commands from <addr>`), whose
 * `warning` has already been logged through `warn`; the command then
 * counts as an error, as Postfix. With no limits (undefined), null.
 */
export async function checkAuthRate(
  limits: ClientLimits | undefined,
  warn: (msg: string) => void,
): Promise<LimitRefusal | null> {
  const r = (await limits?.auth()) ?? null;
  if (r) warn(r.warning);
  return r;
}
