/**
 * The SMTP client's SASL side (smtp_sasl_*), as Postfix's smtp(8) with
 * Cyrus SASL behaves for the mechanisms Postwarden implements: PLAIN
 * (RFC 4616), LOGIN and CRAM-MD5 (RFC 2195). Pure: the settings, their
 * start-time checks, which mechanism to use, and the client's responses.
 * The AUTH dialog itself is daemons/smtp/auth.ts.
 *
 * - The server's AUTH mechanisms pass smtp_sasl_mechanism_filter (names,
 *   "!name", static:; lib/sasl/mech_filter.ts), then the security options
 *   of the connection (smtp_sasl_security_options in plaintext,
 *   smtp_sasl_tls_security_options over TLS,
 *   smtp_sasl_tls_verified_security_options over TLS with a matched
 *   certificate): noplaintext drops PLAIN and LOGIN, nodictionary,
 *   noactive, mutual_auth and forward_secrecy drop all three (none of them
 *   resists those attacks), noanonymous drops nothing here (ANONYMOUS is
 *   never used). Postfix's default, "noplaintext, noanonymous", thus
 *   allows CRAM-MD5 only: most relay hosts need
 *   "smtp_sasl_security_options = noanonymous", as with Postfix.
 * - Of what is left, CRAM-MD5 is preferred, then PLAIN, then LOGIN.
 * - With smtp_sender_dependent_authentication the sender's address is
 *   looked up first (user+ext@domain, user@domain, @domain; the bare local
 *   part of a local domain is not tried), and connections are not cached,
 *   as in Postfix, so no mail goes out under another sender's login.
 * - smtp_sasl_type must be "cyrus" (Postfix's client has no other); an
 *   unknown security option or a filter item Postwarden cannot read stops
 *   the start, as does smtp_sasl_auth_enable = yes without a password
 *   table (Postfix's smtp refuses to run then too).
 *
 * Parameters: smtp_sasl_auth_enable, smtp_sasl_password_maps,
 * smtp_sasl_security_options, smtp_sasl_tls_security_options,
 * smtp_sasl_tls_verified_security_options, smtp_sasl_mechanism_filter,
 * smtp_sasl_type, smtp_sasl_auth_soft_bounce,
 * smtp_sender_dependent_authentication, recipient_delimiter.
 *
 * @module
 */
import type { Config } from "../config/config.ts";
import { applyMechFilter, type MechFilter, parseMechFilter } from "./mech_filter.ts";

/** The mechanisms the client speaks, best first. */
export const CLIENT_MECHANISMS = ["CRAM-MD5", "PLAIN", "LOGIN"] as const;
/** One of {@link CLIENT_MECHANISMS}. */
export type ClientMechanism = typeof CLIENT_MECHANISMS[number];

const OPTIONS = new Set([
  "noplaintext",
  "noactive",
  "nodictionary",
  "noanonymous",
  "mutual_auth",
  "forward_secrecy",
]);

/** What each option rules out among the client's mechanisms. */
const EXCLUDES: Record<string, ClientMechanism[]> = {
  noplaintext: ["PLAIN", "LOGIN"],
  noactive: ["PLAIN", "LOGIN", "CRAM-MD5"],
  nodictionary: ["PLAIN", "LOGIN", "CRAM-MD5"],
  mutual_auth: ["PLAIN", "LOGIN", "CRAM-MD5"],
  forward_secrecy: ["PLAIN", "LOGIN", "CRAM-MD5"],
  noanonymous: [],
};

/** The client's SASL settings. */
export interface SaslClientSettings {
  enabled: boolean;
  /** smtp_sasl_password_maps, expanded. */
  passwordMaps: string;
  /** Options in plaintext, over TLS, over TLS with a matched certificate. */
  plainOptions: string[];
  tlsOptions: string[];
  verifiedOptions: string[];
  filter: MechFilter;
  softBounce: boolean;
  /** smtp_sender_dependent_authentication. */
  senderDependent: boolean;
  /** recipient_delimiter, for the sender's address without its extension. */
  delimiters: string;
}

const names = (config: Config, name: string) => config.list(name).map((o) => o.toLowerCase());

/** Reads the settings (assumes {@link saslClientProblems} found nothing fatal). */
export function saslClientSettings(config: Config): SaslClientSettings {
  const filter = parseMechFilter(config.list("smtp_sasl_mechanism_filter"));
  return {
    enabled: config.bool("smtp_sasl_auth_enable"),
    passwordMaps: config.str("smtp_sasl_password_maps").trim(),
    plainOptions: names(config, "smtp_sasl_security_options"),
    tlsOptions: names(config, "smtp_sasl_tls_security_options"),
    verifiedOptions: names(config, "smtp_sasl_tls_verified_security_options"),
    filter: "error" in filter ? { items: [] } : filter,
    softBounce: config.bool("smtp_sasl_auth_soft_bounce"),
    senderDependent: config.bool("smtp_sender_dependent_authentication"),
    delimiters: config.str("recipient_delimiter"),
  };
}

/** Problems that stop the start (only with smtp_sasl_auth_enable = yes). */
export function saslClientProblems(
  config: Config,
): { names: string[]; message: string; fatal: true }[] {
  if (!config.bool("smtp_sasl_auth_enable")) return [];
  const out: { names: string[]; message: string; fatal: true }[] = [];
  const fatal = (n: string, message: string) =>
    out.push({ names: [n, "smtp_sasl_auth_enable"], message, fatal: true });
  if (config.str("smtp_sasl_password_maps").trim() === "") {
    fatal(
      "smtp_sasl_password_maps",
      "specify a password table via the `smtp_sasl_password_maps' configuration parameter",
    );
  }
  const type = config.str("smtp_sasl_type").trim();
  if (type !== "cyrus") {
    fatal(
      "smtp_sasl_type",
      `smtp_sasl_type = ${type}: unsupported SASL client implementation (the SMTP client ` +
        'speaks PLAIN, LOGIN and CRAM-MD5 itself, as "cyrus")',
    );
  }
  for (
    const n of [
      "smtp_sasl_security_options",
      "smtp_sasl_tls_security_options",
      "smtp_sasl_tls_verified_security_options",
    ]
  ) {
    for (const o of names(config, n)) {
      if (!OPTIONS.has(o)) fatal(n, `${n}: unknown SASL security option "${o}"`);
    }
  }
  const filter = parseMechFilter(config.list("smtp_sasl_mechanism_filter"));
  if ("error" in filter) {
    fatal(
      "smtp_sasl_mechanism_filter",
      filter.error.replace(/^smtpd_sasl_mechanism_filter/, "smtp_sasl_mechanism_filter"),
    );
  }
  return out;
}

/** The security options for a connection: plaintext, TLS, or TLS with a matched certificate. */
export function optionsFor(
  s: SaslClientSettings,
  tls: { matched: boolean } | null,
): string[] {
  if (!tls) return s.plainOptions;
  return tls.matched ? s.verifiedOptions : s.tlsOptions;
}

/**
 * The server's AUTH mechanisms that pass the filter (Postfix's
 * smtp_sasl_compat_mechs), in the server's spelling.
 */
export function compatibleMechanisms(s: SaslClientSettings, offered: string[]): string[] {
  return applyMechFilter(s.filter, offered);
}

/** The mechanism to use, or null ("no mechanism available"). */
export function chooseMechanism(offered: string[], options: string[]): ClientMechanism | null {
  const upper = new Set(offered.map((m) => m.toUpperCase()));
  const excluded = new Set(options.flatMap((o) => EXCLUDES[o] ?? []));
  return CLIENT_MECHANISMS.find((m) => upper.has(m) && !excluded.has(m)) ?? null;
}

/** A password table value "username:password" (the password may hold colons). */
export function splitCredentials(value: string): { user: string; password: string } {
  const i = value.indexOf(":");
  return i < 0
    ? { user: value, password: "" }
    : { user: value.slice(0, i), password: value.slice(i + 1) };
}

const enc = new TextEncoder();

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** PLAIN's initial response: base64 of NUL user NUL password (no authorization identity). */
export function plainResponse(user: string, password: string): string {
  return b64(enc.encode(`\0${user}\0${password}`));
}

/** Base64 of a UTF-8 string (LOGIN's answers). */
export function base64Text(text: string): string {
  return b64(enc.encode(text));
}

/** Decodes a server challenge; null when it is no valid base64. */
export function decodeChallenge(text: string): Uint8Array | null {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4 !== 0) return null;
  const bin = atob(t);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * CRAM-MD5's response: base64 of "user HEX(HMAC-MD5(password, challenge))".
 * Uses node:crypto (Web Crypto has no MD5).
 */
export async function cramMd5Response(
  user: string,
  password: string,
  challenge: Uint8Array,
): Promise<string> {
  const { createHmac } = await import("node:crypto");
  const digest = createHmac("md5", password).update(challenge).digest("hex");
  return base64Text(`${user} ${digest}`);
}
