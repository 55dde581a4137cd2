/**
 * STARTTLS and SASL in the SMTP client's handshake, as Postfix's smtp(8)
 * does them after EHLO (smtp_proto.c smtp_helo, smtp_start_tls,
 * smtp_sasl_helo_login):
 *
 * - The TLS policy of the next hop: smtp_tls_security_level, or the
 *   smtp_tls_policy_maps entry for the next hop as given, then for a plain
 *   domain its parents (".example.com"). An entry Postwarden cannot follow
 *   is logged as a warning and defers the next hop's mail with "4.7.5
 *   client TLS configuration problem", as Postfix does with an invalid one.
 * - With a level other than none and STARTTLS offered: STARTTLS, the
 *   handshake (starttls.ts), and EHLO again. Not offered at encrypt or
 *   above: "4.7.4 TLS is required, but was not offered by host H[A]". A
 *   refused STARTTLS at encrypt or above: "TLS is required, but host H[A]
 *   refused to start TLS: reply" (the reply's own code decides). A failed
 *   handshake: "4.7.5 Cannot start TLS: handshake failure"; at may the same
 *   server is tried again in plaintext (not when credentials for it exist,
 *   since they would go out without TLS). At verify and secure an untrusted
 *   chain or a name that does not match is "4.7.5 Server certificate not
 *   verified", after "certificate verification failed for H[A]:port:
 *   untrusted issuer /CN=..." or "server certificate verification failed
 *   for H[A]:port: num=62:hostname mismatch" (Postfix 3.7's words, checked
 *   against it). With smtp_tls_loglevel >= 1, "Untrusted/Trusted/Verified
 *   TLS connection established to H[A]:port: ..." is logged.
 * - With smtp_sasl_auth_enable and AUTH offered: credentials from
 *   smtp_sasl_password_maps for the server's host name, else the next hop
 *   as given ("[smtp.example.com]:587", "example.com"); none: no AUTH, as
 *   Postfix ("talk like strangers"). Then lib/sasl/client.ts picks the
 *   mechanism and the AUTH dialog runs. Failures use Postfix's texts:
 *   "SASL authentication failed; server H[A] said: 535 ...",
 *   "SASL authentication failed; cannot authenticate to server H[A]: no
 *   mechanism available", "SASL authentication failed: server H[A] offered
 *   no compatible authentication mechanisms for this type of connection
 *   security"; a 5XX becomes 4XX with smtp_sasl_auth_soft_bounce.
 *
 * Each failure is a {@link SecurityFailure}: deliver.ts moves on to the
 * next address and defers (or bounces, for a 5XX) with the last one.
 */
import type { Config } from "../../lib/config/mod.ts";
import { addressFind, type Maps } from "../../lib/maps/mod.ts";
import type { MapsOpener } from "../../lib/service/mod.ts";
import { matchEnhancedClass, type Reply } from "../../lib/smtp/mod.ts";
import {
  nexthopDomain,
  parsePolicyEntry,
  policyKeys,
  sitePolicy,
  type SiteTls,
  type SmtpTlsSettings,
  smtpTlsSettings,
  TlsPolicyError,
} from "../../lib/tls/client_policy.ts";
import {
  base64Text,
  chooseMechanism,
  compatibleMechanisms,
  cramMd5Response,
  decodeChallenge,
  optionsFor,
  plainResponse,
  type SaslClientSettings,
  saslClientSettings,
  splitCredentials,
} from "../../lib/sasl/client.ts";
import { relayLabel, type SmtpSession } from "./session.ts";
import { handshakeOutcome, type TlsReport } from "./tlsrpt.ts";
import {
  establishedLine,
  startClientTls,
  TlsHandshakeFailure,
  trustAnchors,
  verificationFailure,
} from "./starttls.ts";

/** Why the TLS or SASL step failed, as a status template. */
export class SecurityFailure extends Error {
  override readonly name = "SecurityFailure";
  constructor(
    readonly dsn: string,
    message: string,
    readonly opts: {
      /** "smtp; <reply>" when the server said it. */
      diagnostic?: string;
      /** At may: try this server again without TLS. */
      retryPlain?: boolean;
      /** It failed after EHLO and TLS (SASL): the session counts for smtp_mx_session_limit. */
      afterHandshake?: boolean;
    } = {},
  ) {
    super(message);
  }
}

/** Where the security step logs. */
export interface SecurityLog {
  info(msg: string): void;
  warn(msg: string): void;
}

/** The TLS and SASL settings of one configuration, with its tables opened once. */
export class ClientSecurity {
  readonly tls: SmtpTlsSettings;
  readonly sasl: SaslClientSettings;
  /** postwarden_mta_sts, and its trust anchors (mta_sts.ts). */
  readonly mtaSts: { enabled: boolean; caFile: string };
  /** smtp_tlsrpt_enable (tlsrpt.ts). */
  readonly tlsrpt: boolean;
  #policyMaps: Promise<Maps> | null = null;
  #passwordMaps: Promise<Maps> | null = null;

  constructor(config: Config, private readonly openMaps: MapsOpener) {
    this.tls = smtpTlsSettings(config);
    this.sasl = saslClientSettings(config);
    this.mtaSts = {
      enabled: config.bool("postwarden_mta_sts"),
      caFile: config.str("postwarden_mta_sts_CAfile").trim(),
    };
    this.tlsrpt = config.bool("smtp_tlsrpt_enable");
  }

  /** A REQUIRETLS message's host at a level that does not authenticate it: verify its name. */
  requireTlsSite(): SiteTls {
    return sitePolicy(this.tls, { level: "verify", match: ["hostname"], ignored: [] });
  }

  /** An MX host's policy under an enforced MTA-STS policy: verify its name with the WebPKI. */
  stsSite(): SiteTls {
    return {
      ...sitePolicy(this.tls, { level: "verify", match: ["hostname"], ignored: [] }),
      caFile: this.mtaSts.caFile,
    };
  }

  /** True when nothing is to be done for any next hop (no TLS, no SASL). */
  get inactive(): boolean {
    return this.tls.level === "none" && !this.tls.policyMaps && !this.sasl.enabled &&
      !this.mtaSts.enabled;
  }

  /**
   * The TLS policy for a next hop. Throws {@link SecurityFailure} (4.7.5
   * client TLS configuration problem) after logging why, when its entry
   * cannot be followed or the table cannot be read.
   */
  async site(nexthop: string, log: SecurityLog): Promise<SiteTls> {
    let entry = null;
    if (this.tls.policyMaps) {
      this.#policyMaps ??= this.openMaps("smtp_tls_policy_maps", this.tls.policyMaps);
      let maps: Maps;
      try {
        maps = await this.#policyMaps;
      } catch (e) {
        this.#policyMaps = null;
        log.warn(`smtp_tls_policy_maps: ${(e as Error).message}`);
        throw configProblem();
      }
      for (const key of policyKeys(nexthop)) {
        const where = `smtp_tls_policy_maps, next-hop destination "${key}"`;
        let value: string | undefined;
        try {
          value = await maps.find(key);
        } catch (e) {
          log.warn(`${where}: policy table lookup error: ${(e as Error).message}`);
          throw configProblem();
        }
        if (value === undefined) continue;
        try {
          entry = parsePolicyEntry(value);
        } catch (e) {
          if (!(e instanceof TlsPolicyError)) throw e;
          log.warn(`${where}: ${e.message}`);
          throw configProblem();
        }
        for (const a of entry.ignored) {
          log.warn(`${where}: ignoring attribute "${a}" with TLS disabled`);
        }
        break;
      }
    }
    try {
      const site = sitePolicy(this.tls, entry);
      return entry ? { ...site, fromTable: true } : site;
    } catch (e) {
      if (!(e instanceof TlsPolicyError)) throw e;
      log.warn(`TLS policy for next-hop destination "${nexthop}": ${e.message}`);
      throw configProblem();
    }
  }

  /**
   * The credentials for a server: smtp_sasl_password_maps for the sender
   * (with smtp_sender_dependent_authentication), then the server's host
   * name, then the next hop as given. Null when SASL is off or nothing is
   * found. Throws {@link SecurityFailure} (4.3.0) on a table error.
   */
  async credentials(
    host: string,
    nexthop: string,
    log: SecurityLog,
    sender = "",
  ): Promise<{ user: string; password: string } | null> {
    if (!this.sasl.enabled || !this.sasl.passwordMaps) return null;
    this.#passwordMaps ??= this.openMaps("smtp_sasl_password_maps", this.sasl.passwordMaps);
    try {
      const maps = await this.#passwordMaps;
      if (this.sasl.senderDependent && sender !== "") {
        const hit = await addressFind(maps, sender, { delimiters: this.sasl.delimiters });
        if (hit) return splitCredentials(hit.value);
      }
      for (const key of [host.toLowerCase(), nexthop.trim().toLowerCase()]) {
        const value = await maps.find(key);
        if (value !== undefined) return splitCredentials(value);
      }
      return null;
    } catch (e) {
      this.#passwordMaps = null;
      log.warn(`smtp_sasl_password_maps: ${(e as Error).message}`);
      throw new SecurityFailure("4.3.0", "smtp_sasl_password_maps lookup error");
    }
  }
}

function configProblem(): SecurityFailure {
  return new SecurityFailure("4.7.5", "client TLS configuration problem");
}

/** What one delivery request needs for the step. */
export interface RequestSecurity {
  security: ClientSecurity;
  site: SiteTls;
  /** The next hop as the request gives it. */
  nexthop: string;
  /** The envelope sender (smtp_sender_dependent_authentication). */
  sender: string;
  log: SecurityLog;
  /** A retry after a failed handshake at may: no STARTTLS this time. */
  plaintextOnly: boolean;
  /** The host is under a policy and smtp_tlsrpt_enable is on: report the attempt (tlsrpt.ts). */
  report?: TlsReport;
}

/** Time limits the step uses (seconds). */
export interface SecurityTimeouts {
  heloTimeout: number;
}

/** The reply as Postfix quotes it: "550 5.1.1 text". */
function wireText(r: Reply): string {
  return r.enhanced ? `${r.code} ${r.enhanced} ${r.text}` : `${r.code} ${r.text}`;
}

function replyDsn(r: Reply): string {
  return matchEnhancedClass(r.enhanced ?? `${Math.floor(r.code / 100)}.0.0`, r.code);
}

/**
 * Runs STARTTLS (and EHLO again, with `ehlo`) and AUTH on a session whose
 * EHLO succeeded, as the request's policy says. Throws
 * {@link SecurityFailure}, or SessionError when the connection breaks.
 */
export async function secureSession(
  session: SmtpSession,
  req: RequestSecurity,
  t: SecurityTimeouts,
  ehlo: () => Promise<void>,
): Promise<void> {
  const { site, security } = req;
  const mandatory = site.level !== "none" && site.level !== "may";
  if (site.level === "none" && security.tls.noteStarttlsOffer && session.features.has("STARTTLS")) {
    req.log.info(`Host offered STARTTLS: [${session.dest.host}]`);
  }
  // The plaintext retry after a failed handshake was reported with the handshake.
  const report = req.plaintextOnly ? undefined : req.report;
  if (site.level !== "none" && !req.plaintextOnly && session.features.size > 0) {
    if (session.features.has("STARTTLS")) {
      const timeout = security.tls.handshakeTimeout;
      // Postfix's words for a failure here.
      const stage = "receiving the STARTTLS response";
      await session.write("STARTTLS\r\n", timeout, stage);
      const reply = await session.readReply(timeout, stage);
      if (reply.code === 220) {
        await handshake(session, req);
        await ehlo();
      } else {
        const text = wireText(reply);
        report?.("starttls-not-supported", `STARTTLS refused: ${text}`);
        if (mandatory) {
          const dsn = reply.code >= 400 ? replyDsn(reply) : "4.7.4";
          throw new SecurityFailure(
            dsn,
            `TLS is required, but host ${session.label} refused to start TLS: ${text}`,
            { diagnostic: `smtp; ${text}` },
          );
        }
      }
    } else {
      report?.("starttls-not-supported");
      if (mandatory) {
        throw new SecurityFailure(
          "4.7.4",
          `TLS is required, but was not offered by host ${session.label}`,
        );
      }
    }
  } else if (site.level !== "none" && report) {
    report("starttls-not-supported", "no EHLO");
  }
  if (mandatory && (req.plaintextOnly || session.features.size === 0)) {
    // HELO (no EHLO) cannot start TLS.
    throw new SecurityFailure(
      "4.7.4",
      `TLS is required, but was not offered by host ${session.label}`,
    );
  }
  if (security.sasl.enabled && authOffered(session).length > 0) {
    await authenticate(session, req, t);
  }
}

/** The TLS handshake and the level's certificate checks. */
async function handshake(session: SmtpSession, req: RequestSecurity): Promise<void> {
  const { site, security, log } = req;
  let anchors: string[] = [];
  const [caFile, caPath] = site.caFile !== undefined
    ? [site.caFile, ""]
    : [security.tls.caFile, security.tls.caPath];
  if (caFile || caPath) {
    try {
      anchors = await trustAnchors(caFile, caPath);
    } catch (e) {
      // Nothing is trusted then: verify and secure fail closed below.
      log.warn(`cannot load Certification Authority data: ${(e as Error).message}`);
    }
  }
  let result;
  try {
    result = await startClientTls(session.conn, {
      site,
      anchors,
      names: { hostname: session.dest.host, nexthop: nexthopDomain(req.nexthop) },
      timeoutSec: security.tls.handshakeTimeout,
    });
  } catch (e) {
    if (!(e instanceof TlsHandshakeFailure)) throw e;
    session.close();
    log.info(`SSL_connect error to ${relayLabel(session.dest)}: ${e.message}`);
    req.report?.("validation-failure", e.message);
    // At may, retry in plaintext, unless credentials for this server would then go out bare.
    const creds = site.level === "may"
      ? await security.credentials(session.dest.host, req.nexthop, log, req.sender)
        .catch(() => null)
      : null;
    throw new SecurityFailure("4.7.5", "Cannot start TLS: handshake failure", {
      retryPlain: site.level === "may" && creds === null,
    });
  }
  session.upgrade(result.stream, result.info);
  if (req.report) {
    const o = handshakeOutcome(result.info, site);
    req.report(o.result, o.reason);
  }
  const where = relayLabel(session.dest);
  const matching = site.level === "verify" || site.level === "secure" || site.level === "dane";
  // As Postfix 3.7: the verification failure (at any log level), then the summary.
  const failed = matching ? verificationFailure(where, result.info) : null;
  if (failed) log.info(failed);
  if (security.tls.loglevel >= 1) log.info(establishedLine(where, result.info, matching));
  // Postfix 3.7 says "not verified" for an untrusted chain and for a name that does not match.
  if (failed) throw new SecurityFailure("4.7.5", "Server certificate not verified");
}

/** The AUTH mechanisms of the EHLO reply ("AUTH PLAIN LOGIN", and the old "AUTH=PLAIN LOGIN"). */
function authOffered(session: SmtpSession): string[] {
  const out: string[] = [];
  for (const [key, value] of session.features) {
    if (key === "AUTH") out.push(...value.split(/\s+/));
    else if (key.startsWith("AUTH=")) out.push(key.slice(5), ...value.split(/\s+/));
  }
  return [...new Set(out.filter((m) => m !== "").map((m) => m.toUpperCase()))];
}

/** Most challenge/response rounds before the dialog is abandoned, as Postfix. */
const MAX_STEPS = 100;

async function authenticate(
  session: SmtpSession,
  req: RequestSecurity,
  t: SecurityTimeouts,
): Promise<void> {
  const { security, log } = req;
  const creds = await security.credentials(session.dest.host, req.nexthop, log, req.sender);
  if (!creds) return;
  const offered = authOffered(session);
  const compatible = compatibleMechanisms(security.sasl, offered);
  if (compatible.length === 0) {
    log.warn(
      `${relayLabel(session.dest)} offered no supported AUTH mechanisms: '${offered.join(" ")}'`,
    );
    throw new SecurityFailure(
      "4.7.0",
      `SASL authentication failed: server ${session.label} offered no compatible ` +
        "authentication mechanisms for this type of connection security",
      { afterHandshake: true },
    );
  }
  const cannot = (why: string) =>
    new SecurityFailure(
      "4.7.0",
      `SASL authentication failed; cannot authenticate to server ${session.label}: ${why}`,
      { afterHandshake: true },
    );
  const mech = chooseMechanism(compatible, optionsFor(security.sasl, session.tls));
  if (!mech) throw cannot("no mechanism available");
  const stage = "performing the SASL authentication";
  const first = mech === "PLAIN"
    ? `AUTH PLAIN ${plainResponse(creds.user, creds.password)}`
    : `AUTH ${mech}`;
  await session.write(first + "\r\n", t.heloTimeout, stage);
  let answered = 0;
  for (let steps = 0;; steps++) {
    const reply = await session.readReply(t.heloTimeout, stage);
    if (reply.code >= 200 && reply.code < 300) {
      session.authenticated = true;
      return;
    }
    if (reply.code < 300 || reply.code >= 400) {
      const text = wireText(reply);
      let dsn = replyDsn(reply);
      if (security.sasl.softBounce && dsn.startsWith("5")) dsn = "4" + dsn.slice(1);
      throw new SecurityFailure(
        dsn,
        `SASL authentication failed; server ${session.label} said: ${text}`,
        { diagnostic: `smtp; ${text}`, afterHandshake: true },
      );
    }
    if (steps >= MAX_STEPS) {
      throw new SecurityFailure(
        "4.3.0",
        `SASL authentication failed; authentication protocol loop with server ${session.label}`,
        { afterHandshake: true },
      );
    }
    const challenge = decodeChallenge(reply.text);
    let answer: string;
    if (challenge === null) throw cannot("bad base64 in server challenge");
    if (mech === "CRAM-MD5" && answered === 0) {
      answer = await cramMd5Response(creds.user, creds.password, challenge);
    } else if (mech === "LOGIN" && answered < 2) {
      answer = base64Text(answered === 0 ? creds.user : creds.password);
    } else {
      // Nothing more to say (PLAIN sent everything at once): cancel (RFC 4954).
      answer = "*";
    }
    answered++;
    await session.write(answer + "\r\n", t.heloTimeout, stage);
  }
}
