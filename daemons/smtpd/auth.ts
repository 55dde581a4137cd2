/**
 * SMTP AUTH (RFC 4954) in smtpd, as Postfix's smtpd_sasl_proto.c and
 * smtpd_sasl_glue.c do it: the AUTH keyword in the EHLO reply, the AUTH
 * command and its exchange (334 challenges, "*" to cancel, initial
 * response with "=" for empty), the MAIL FROM AUTH= parameter, and the
 * protocol name and fields AUTH adds to the Received header and the
 * "client=" log line. The mechanisms run in the backend (lib/sasl):
 * Dovecot's auth service, or the auth daemon for a passwd-file.
 *
 * Replies and log lines are Postfix 3.7's (checked against it with
 * Dovecot, tests/interop/sasl_test.ts): "235 2.7.0 Authentication
 * successful"; "535 5.7.8 Error: authentication failed: REASON" with the
 * warning "CLIENT: SASL MECH authentication failed: REASON,
 * sasl_username=USER" ("(reason unavailable)", "(unavailable)" when not
 * known); "501 5.7.0 Authentication aborted"; "500 5.5.6 SASL response
 * limit exceeded"; 503 5.5.1 for AUTH before EHLO (with
 * smtpd_helo_required), when not enabled, in a transaction, or twice. A
 * backend that cannot answer gives "454 4.7.0 Temporary authentication
 * failure: REASON". A refused AUTH costs the client smtpd_error_sleep_time
 * before the 535 and counts as an error (smtpd_hard_error_limit).
 *
 * smtpd_client_auth_rate_limit belongs to the anvil part: each AUTH that
 * reached the backend is reported to {@link AuthContext.afterAuthAttempt}
 * (one call per attempt, success or not), the hook that part fills in.
 *
 * Parameters: smtpd_sasl_auth_enable (no), smtpd_sasl_type,
 * smtpd_sasl_path, smtpd_sasl_service (smtp), smtpd_sasl_security_options
 * (noanonymous), smtpd_sasl_tls_security_options, smtpd_tls_auth_only
 * (no), smtpd_sasl_exceptions_networks, smtpd_sasl_response_limit
 * (12288), smtpd_sasl_authenticated_header (no), broken_sasl_auth_clients
 * (no), smtpd_error_sleep_time (1s), smtpd_helo_required (no),
 * smtpd_sasl_mechanism_filter (!external, static:rest; lib/sasl/mech_filter.ts).
 *
 * @module
 */
import {
  type Config,
  matchNetworkList,
  type NetworkList,
  parseNetworkList,
  saslSecurityOptions,
} from "../../lib/config/mod.ts";
import type { Logger } from "../../lib/log/mod.ts";
import { applyMechFilter, type MechFilter, parseMechFilter } from "../../lib/sasl/mech_filter.ts";
import {
  filterMechanisms,
  isBase64Text,
  printable,
  type SaslBackend,
  type SaslClientInfo,
  type SaslStep,
} from "../../lib/sasl/mod.ts";

/** Who authenticated, as the session keeps it (Postfix's sasl_username, sasl_method). */
export interface SaslLogin {
  username: string;
  method: string;
}

/** One AUTH attempt, for the rate-limit hook. */
export interface AuthAttempt {
  clientAddr: string;
  clientName: string;
  mechanism: string;
  ok: boolean;
}

/** smtpd's AUTH settings and backend, one per process. */
export interface AuthContext {
  backend: SaslBackend;
  tlsAuthOnly: boolean;
  options: Set<string>;
  tlsOptions: Set<string>;
  exceptions: NetworkList | null;
  responseLimit: number;
  service: string;
  brokenClients: boolean;
  authenticatedHeader: boolean;
  errorSleepMs: number;
  heloRequired: boolean;
  /** smtpd_sasl_mechanism_filter: the mechanisms shown and accepted. */
  mechFilter: MechFilter;
  /**
   * Called once after each AUTH attempt that reached the backend:
   * smtpd_client_auth_rate_limit (the anvil part) counts here. Does
   * nothing until that part sets it.
   */
  afterAuthAttempt: (attempt: AuthAttempt) => Promise<void> | void;
}

/** The AUTH context of a configuration, or null with smtpd_sasl_auth_enable = no. */
export function authContext(c: Config, backend: SaslBackend | null): AuthContext | null {
  if (!c.bool("smtpd_sasl_auth_enable") || backend === null) return null;
  const exceptions = c.list("smtpd_sasl_exceptions_networks");
  const mechFilter = parseMechFilter(c.list("smtpd_sasl_mechanism_filter"));
  if ("error" in mechFilter) throw new Error(mechFilter.error); // validation stopped it earlier
  return {
    backend,
    tlsAuthOnly: c.bool("smtpd_tls_auth_only"),
    options: saslSecurityOptions(c, "smtpd_sasl_security_options"),
    tlsOptions: saslSecurityOptions(c, "smtpd_sasl_tls_security_options"),
    exceptions: exceptions.length
      ? parseNetworkList("smtpd_sasl_exceptions_networks", exceptions)
      : null,
    responseLimit: c.int("smtpd_sasl_response_limit"),
    service: c.str("smtpd_sasl_service"),
    brokenClients: c.bool("broken_sasl_auth_clients"),
    authenticatedHeader: c.bool("smtpd_sasl_authenticated_header"),
    errorSleepMs: c.time("smtpd_error_sleep_time") * 1000,
    heloRequired: c.bool("smtpd_helo_required"),
    mechFilter,
    afterAuthAttempt: noteAuthAttempt,
  };
}

/** The default {@link AuthContext.afterAuthAttempt}: smtpd_client_auth_rate_limit is not counted yet. */
export function noteAuthAttempt(_attempt: AuthAttempt): void {}

/** What the AUTH command needs from the session. */
export interface AuthSession {
  /** "name[addr]". */
  readonly client: string;
  readonly clientAddr: string;
  readonly clientName: string;
  readonly serverAddr: string;
  readonly helo: string;
  readonly sender: string | null;
  /** TLS is active. */
  readonly secured: boolean;
  sasl: SaslLogin | null;
  reply(code: number, enhanced: string | null, text: string): void;
  /** Sends "334 text" (with the space even when the text is empty, as Postfix). */
  challenge(text: string): void;
  flush(): Promise<void>;
  /** The client's next line, at most `limit` bytes; null at end of stream. */
  readResponse(limit: number): Promise<{ line: string; tooLong: boolean } | null>;
  log: Logger;
}

/** The mechanisms this session may use, or null when AUTH is not available to it. */
async function usable(ctx: AuthContext, s: AuthSession): Promise<string[] | null> {
  if (ctx.tlsAuthOnly && !s.secured) return null;
  let mechs;
  try {
    mechs = await ctx.backend.mechanisms();
  } catch {
    return null; // the backend logged why
  }
  const allowed = filterMechanisms(mechs, s.secured ? ctx.tlsOptions : ctx.options);
  const names = applyMechFilter(ctx.mechFilter, allowed);
  if (allowed.length && !names.length) {
    // Postfix's smtpd dies on this (fatal); here the session goes on without AUTH.
    s.log.error(`smtpd_sasl_mechanism_filter discards all mechanisms in '${allowed.join(" ")}'`);
  }
  return names.length ? names : null;
}

/**
 * The EHLO reply lines AUTH adds ("AUTH PLAIN LOGIN", and "AUTH=PLAIN
 * LOGIN" for broken_sasl_auth_clients), none when AUTH is off, needs TLS
 * that is not active, the client is in smtpd_sasl_exceptions_networks, or
 * no mechanism is left after the security options.
 */
export async function authKeywords(ctx: AuthContext | null, s: AuthSession): Promise<string[]> {
  if (!ctx) return [];
  if (ctx.exceptions && matchNetworkList(ctx.exceptions, { addr: s.clientAddr }) === true) {
    return [];
  }
  const names = await usable(ctx, s);
  if (!names) return [];
  const list = names.join(" ");
  return ctx.brokenClients ? [`AUTH ${list}`, `AUTH=${list}`] : [`AUTH ${list}`];
}

/** Handles AUTH; false when it failed (the session counts an error). */
export async function authCommand(
  ctx: AuthContext | null,
  s: AuthSession,
  arg: string,
): Promise<boolean> {
  if (ctx?.heloRequired && !s.helo) {
    s.reply(503, "5.5.1", "Error: send HELO/EHLO first");
    return false;
  }
  const names = ctx ? await usable(ctx, s) : null;
  if (!ctx || !names) {
    s.reply(503, "5.5.1", "Error: authentication not enabled");
    return false;
  }
  if (s.sender !== null) {
    s.reply(503, "5.5.1", "Error: MAIL transaction in progress");
    return false;
  }
  if (s.sasl) {
    s.reply(503, "5.5.1", "Error: already authenticated");
    return false;
  }
  const args = arg.split(" ").filter((a) => a !== "");
  if (args.length < 1 || args.length > 2) {
    s.reply(501, "5.5.4", "Syntax: AUTH mechanism");
    return false;
  }
  const mech = printable(args[0]);
  // "=" (an empty initial response) goes to the backend as it came (Dovecot's own notation).
  const initial = args.length === 2 ? args[1] : null;
  let step: SaslStep;
  let reached = false;
  let succeeded = false;
  const info: SaslClientInfo = {
    clientAddr: s.clientAddr,
    serverAddr: s.serverAddr,
    secured: s.secured,
    service: ctx.service,
  };
  const exchange = names.includes(mech.toUpperCase())
    ? ctx.backend.start(mech.toUpperCase(), info)
    : null;
  try {
    if (!exchange) step = { status: "fail", reason: "Invalid authentication mechanism" };
    else if (initial !== null && !isBase64Text(initial)) {
      step = { status: "fail", reason: "Invalid base64 data in initial response" };
    } else {
      reached = true;
      step = await exchange.first(initial);
    }
    while (step.status === "more") {
      s.challenge(step.challenge.replace(/[\r\n]/g, ""));
      await s.flush();
      const r = await s.readResponse(ctx.responseLimit);
      if (r === null) return false; // the session sees the end of stream next
      if (r.tooLong) {
        s.log.warn(
          `${s.client}: request longer than ${ctx.responseLimit}: ${
            printable(r.line.slice(0, 30))
          }...`,
        );
        s.reply(500, "5.5.6", "SASL response limit exceeded");
        return false;
      }
      if (r.line === "*") {
        s.log.warn(`${s.client}: SASL ${mech} authentication aborted`);
        s.reply(501, "5.7.0", "Authentication aborted");
        return false;
      }
      step = isBase64Text(r.line)
        ? await exchange!.next(r.line)
        : { status: "fail", reason: "Invalid base64 data in continued response" };
    }
    succeeded = step.status === "ok";
  } finally {
    exchange?.abort();
    if (reached) {
      await ctx.afterAuthAttempt({
        clientAddr: s.clientAddr,
        clientName: s.clientName,
        mechanism: mech,
        ok: succeeded,
      });
    }
  }
  if (step.status === "ok") {
    s.sasl = { username: printable(step.username), method: mech };
    s.reply(235, "2.7.0", "Authentication successful");
    return true;
  }
  const reason = step.reason || "(reason unavailable)";
  const user = step.status === "fail" && step.username !== undefined
    ? step.username
    : "(unavailable)";
  s.log.warn(
    `${s.client}: SASL ${mech} authentication failed: ${reason}, sasl_username=${user}`,
  );
  if (step.status === "temp") {
    s.reply(454, "4.7.0", `Temporary authentication failure: ${reason}`);
    return false;
  }
  // Slow down password guessing before the client learns the answer.
  await s.flush();
  await new Promise((r) => setTimeout(r, ctx.errorSleepMs));
  s.reply(535, "5.7.8", `Error: authentication failed: ${reason}`);
  return false;
}

/**
 * MAIL FROM's AUTH= parameter (RFC 4954 section 5): kept for the log as
 * Postfix keeps it (sasl_sender=), "<>" dropped; ignored when AUTH is not
 * enabled, as Postfix ignores it (checked against Postfix 3.7).
 */
export function authMailParam(
  ctx: AuthContext | null,
  value: string | null,
): { error: string } | { sender: string | null } {
  if (!ctx) return { sender: null };
  const v = value ?? "";
  return { sender: v === "<>" ? null : printable(v) };
}

/** ", sasl_method=M, sasl_username=U, sasl_sender=S" for the "client=" line (Postfix's smtpd_sasl_mail_log). */
export function saslLogFields(sasl: SaslLogin | null, saslSender: string | null): string {
  let s = "";
  if (sasl) s += `, sasl_method=${sasl.method}, sasl_username=${sasl.username}`;
  if (saslSender !== null) s += `, sasl_sender=${saslSender}`;
  return s;
}

/**
 * The Received header's protocol (RFC 3848): ESMTP becomes ESMTPS with
 * TLS, ESMTPA with AUTH, ESMTPSA with both.
 */
export function receivedProtocol(protocol: string, tls: boolean, sasl: boolean): string {
  if (protocol !== "ESMTP") return protocol;
  return `${protocol}${tls ? "S" : ""}${sasl ? "A" : ""}`;
}

/** "\r\n\t(Authenticated sender: USER)" for the Received header, or "". */
export function authenticatedSenderLine(ctx: AuthContext | null, sasl: SaslLogin | null): string {
  return ctx?.authenticatedHeader && sasl ? `\r\n\t(Authenticated sender: ${sasl.username})` : "";
}
