/**
 * What smtpd's TLS settings mean, as Postfix reads them, and what of them
 * Postwarden's TLS library can honour. Pure: reads a Config, does no I/O.
 *
 * The TLS library is the one behind Deno's `node:tls` (rustls): it speaks
 * TLSv1.2 and TLSv1.3 only, with a fixed set of cipher suites, all AEAD
 * with ECDHE key exchange (OpenSSL's "HIGH" grade), and it ignores an
 * OpenSSL cipher list. So:
 * - smtpd_tls_protocols / smtpd_tls_mandatory_protocols become a
 *   minimum and maximum version inside TLSv1.2..TLSv1.3; a list that
 *   allows neither stops the start.
 * - smtpd_tls_ciphers / smtpd_tls_mandatory_ciphers: export, low, medium
 *   and high are honoured (every suite offered is at least that grade);
 *   null (no encryption) cannot be, and stops the start.
 * - smtpd_tls_exclude_ciphers / smtpd_tls_mandatory_exclude_ciphers: an
 *   item that names no suite Postwarden offers is honoured as is; one that
 *   names an offered TLSv1.2 suite (which cannot be dropped) stops the
 *   start, as does one this module does not know. As with OpenSSL's
 *   cipher lists, exclusions do not apply to TLSv1.3.
 *
 * The level comes from smtpd_tls_security_level, or when it is empty from
 * the obsolete smtpd_enforce_tls (encrypt) and smtpd_use_tls (may), as
 * Postfix maps them; "fingerprint", "verify" and "secure" mean encrypt,
 * with a warning, as in Postfix. With smtpd_tls_wrappermode the level is
 * ignored: TLS starts on connect and is mandatory.
 *
 * Parameters: smtpd_tls_security_level, smtpd_use_tls, smtpd_enforce_tls,
 * smtpd_tls_wrappermode, smtpd_tls_auth_only, smtpd_tls_cert_file,
 * smtpd_tls_key_file, smtpd_tls_chain_files, smtpd_tls_protocols,
 * smtpd_tls_mandatory_protocols, smtpd_tls_ciphers,
 * smtpd_tls_mandatory_ciphers, smtpd_tls_exclude_ciphers,
 * smtpd_tls_mandatory_exclude_ciphers, smtpd_tls_received_header,
 * smtpd_tls_loglevel, smtpd_starttls_timeout.
 *
 * @module
 */
import type { Config } from "../config/config.ts";

/** smtpd's TLS security level. */
export type TlsLevel = "none" | "may" | "encrypt";

/** A TLS protocol version the library speaks. */
export type TlsVersion = "TLSv1.2" | "TLSv1.3";

/** smtpd's TLS settings, resolved. */
export interface SmtpdTlsPolicy {
  /** Effective level; "encrypt" in wrapper mode. */
  level: TlsLevel;
  /** TLS from the first byte (smtpd_tls_wrappermode). */
  wrapper: boolean;
  /** AUTH only after TLS (smtpd_tls_auth_only, or mandatory TLS). */
  authOnly: boolean;
  certFile: string;
  keyFile: string;
  chainFiles: string[];
  minVersion: TlsVersion;
  maxVersion: TlsVersion;
  /** Received: header with the TLS clause. */
  receivedHeader: boolean;
  loglevel: number;
  /** Handshake deadline (smtpd_starttls_timeout), in milliseconds. */
  handshakeTimeoutMs: number;
}

/** A problem with the TLS settings; `fatal` ones stop the start. */
export interface TlsProblem {
  names: string[];
  message: string;
  fatal: boolean;
}

/** True when smtpd is to use TLS at all (STARTTLS or wrapper mode). */
export function tlsWanted(p: SmtpdTlsPolicy): boolean {
  return p.wrapper || p.level !== "none";
}

/** True when TLS is mandatory: wrapper mode or the encrypt level. */
export function tlsMandatory(p: SmtpdTlsPolicy): boolean {
  return p.wrapper || p.level === "encrypt";
}

const ALL_VERSIONS = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];
const SPOKEN: TlsVersion[] = ["TLSv1.2", "TLSv1.3"];

/**
 * The versions a Postfix protocol list allows ("!SSLv2, !SSLv3",
 * ">=TLSv1.2", "TLSv1.2 TLSv1.3"), or an error text.
 */
export function parseProtocols(value: string): Set<string> | string {
  const items = value.split(/[\s,:]+/).filter((w) => w !== "");
  const index = (name: string) =>
    ALL_VERSIONS.findIndex((v) => v.toLowerCase() === name.toLowerCase());
  let allowed = new Set(ALL_VERSIONS);
  const include = new Set<string>();
  for (const item of items) {
    const m = /^(!|>=|<=)?(.*)$/.exec(item)!;
    const i = index(m[2]);
    if (i < 0) return `unknown TLS protocol "${m[2]}"`;
    if (m[1] === "!") allowed.delete(ALL_VERSIONS[i]);
    else if (m[1] === ">=") allowed = new Set([...allowed].filter((v) => index(v) >= i));
    else if (m[1] === "<=") allowed = new Set([...allowed].filter((v) => index(v) <= i));
    else include.add(ALL_VERSIONS[i]);
  }
  if (include.size) allowed = new Set([...allowed].filter((v) => include.has(v)));
  return allowed;
}

/** The TLSv1.2 suites the library offers, with the OpenSSL keywords each matches. */
const TLS12_SUITES: [name: string, keywords: string[]][] = [
  ["ECDHE-ECDSA-AES256-GCM-SHA384", ["aECDSA", "ECDSA", "AES256", "AESGCM", "SHA384"]],
  ["ECDHE-ECDSA-AES128-GCM-SHA256", ["aECDSA", "ECDSA", "AES128", "AESGCM", "SHA256"]],
  ["ECDHE-ECDSA-CHACHA20-POLY1305", ["aECDSA", "ECDSA", "CHACHA20"]],
  ["ECDHE-RSA-AES256-GCM-SHA384", ["aRSA", "RSA", "AES256", "AESGCM", "SHA384"]],
  ["ECDHE-RSA-AES128-GCM-SHA256", ["aRSA", "RSA", "AES128", "AESGCM", "SHA256"]],
  ["ECDHE-RSA-CHACHA20-POLY1305", ["aRSA", "RSA", "CHACHA20"]],
].map(([name, kw]) => [
  name as string,
  [
    ...(kw as string[]),
    "ALL",
    "DEFAULT",
    "HIGH",
    "AES",
    "ECDHE",
    "EECDH",
    "kECDHE",
    "kEECDH",
    "TLSv1.2",
  ].filter((k) => !(k === "AES" && (kw as string[]).includes("CHACHA20"))),
]);

/**
 * OpenSSL cipher-string keywords that name only suites the library never
 * offers (no RSA key exchange, no DHE, no CBC, no anonymous or null
 * ciphers, nothing export, low or medium grade).
 */
const NEVER_OFFERED = new Set(
  [
    "aNULL",
    "eNULL",
    "NULL",
    "ADH",
    "AECDH",
    "EXP",
    "EXPORT",
    "EXPORT40",
    "EXPORT56",
    "LOW",
    "MEDIUM",
    "RC4",
    "RC2",
    "DES",
    "3DES",
    "IDEA",
    "SEED",
    "CAMELLIA",
    "CAMELLIA128",
    "CAMELLIA256",
    "ARIA",
    "ARIA128",
    "ARIA256",
    "GOST94",
    "GOST89MAC",
    "MD5",
    "SHA1",
    "SHA",
    "kRSA",
    "kDHE",
    "kEDH",
    "DHE",
    "EDH",
    "DH",
    "kDH",
    "kDHr",
    "kDHd",
    "aDSS",
    "DSS",
    "aDH",
    "aECDH",
    "kECDH",
    "kECDHr",
    "kECDHe",
    "PSK",
    "kPSK",
    "aPSK",
    "kECDHEPSK",
    "kDHEPSK",
    "kRSAPSK",
    "SRP",
    "kSRP",
    "aSRP",
    "AESCCM",
    "AESCCM8",
    "AES128CCM",
    "AES256CCM",
    "CBC",
    "aGOST",
    "kGOST",
    "SUITEB128",
    "SUITEB128ONLY",
    "SUITEB192",
    "SSLv3", // OpenSSL's class of the pre-TLSv1.2 suites
    "TLSv1",
    "TLSv1.0",
  ].map((k) => k.toLowerCase()),
);

/**
 * Which offered TLSv1.2 suites an exclusion item names ("RC4",
 * "ECDHE-RSA-AES128-GCM-SHA256", "kRSA+AES"), or null when it is not a
 * keyword or suite name this module knows.
 */
export function excludedSuites(item: string): string[] | null {
  const parts = item.replace(/^[!+-]/, "").split("+").filter((p) => p !== "");
  if (!parts.length) return null;
  let hit: string[] | null = null;
  for (const part of parts) {
    const lower = part.toLowerCase();
    let these: string[];
    const exact = TLS12_SUITES.find(([n]) => n.toLowerCase() === lower);
    if (exact) these = [exact[0]];
    else if (NEVER_OFFERED.has(lower)) these = [];
    else if (/^[A-Z0-9]+(-[A-Z0-9]+)+$/i.test(part)) these = []; // another suite's name: never offered
    else {
      const known = TLS12_SUITES.some(([, kw]) => kw.some((k) => k.toLowerCase() === lower));
      if (!known) return null;
      these = TLS12_SUITES.filter(([, kw]) => kw.some((k) => k.toLowerCase() === lower)).map(
        ([n]) => n,
      );
    }
    hit = hit === null ? these : hit.filter((n) => these.includes(n));
  }
  return hit ?? [];
}

const LEVEL_NAMES = [
  "smtpd_tls_security_level",
  "smtpd_use_tls",
  "smtpd_enforce_tls",
  "smtpd_tls_wrappermode",
];

const GRADES = new Set(["export", "low", "medium", "high", "null"]);

/** Reads smtpd's TLS settings; `problems` says what cannot be honoured. */
export function smtpdTlsPolicy(config: Config): { policy: SmtpdTlsPolicy; problems: TlsProblem[] } {
  const problems: TlsProblem[] = [];
  // The settings that decide whether and which checks apply are named too,
  // so a master.cf -o that turns TLS on brings main.cf's problems with it.
  const fatal = (names: string[], message: string) =>
    problems.push({ names: [...names, ...LEVEL_NAMES], message, fatal: true });
  const wrapper = config.bool("smtpd_tls_wrappermode");
  const raw = config.str("smtpd_tls_security_level").trim().toLowerCase();
  let level: TlsLevel;
  if (raw === "") {
    level = config.bool("smtpd_enforce_tls")
      ? "encrypt"
      : config.bool("smtpd_use_tls")
      ? "may"
      : "none";
  } else if (raw === "none" || raw === "may" || raw === "encrypt") {
    level = raw;
  } else if (raw === "fingerprint" || raw === "verify" || raw === "secure") {
    level = "encrypt";
    problems.push({
      names: ["smtpd_tls_security_level"],
      message: `smtpd_tls_security_level = ${raw}: not supported in the SMTP server; ` +
        'using "encrypt" instead, as Postfix does',
      fatal: false,
    });
  } else {
    level = "encrypt";
    fatal(["smtpd_tls_security_level"], `invalid smtpd_tls_security_level value: "${raw}"`);
  }
  if (wrapper) level = "encrypt";
  const mandatory = level === "encrypt";
  const policy: SmtpdTlsPolicy = {
    level,
    wrapper,
    authOnly: config.bool("smtpd_tls_auth_only") || mandatory,
    certFile: config.str("smtpd_tls_cert_file").trim(),
    keyFile: config.str("smtpd_tls_key_file").trim(),
    chainFiles: config.list("smtpd_tls_chain_files"),
    minVersion: "TLSv1.2",
    maxVersion: "TLSv1.3",
    receivedHeader: config.bool("smtpd_tls_received_header"),
    loglevel: config.int("smtpd_tls_loglevel"),
    handshakeTimeoutMs: config.time("smtpd_starttls_timeout") * 1000,
  };
  if (!tlsWanted(policy)) return { policy, problems };

  const protoName = mandatory ? "smtpd_tls_mandatory_protocols" : "smtpd_tls_protocols";
  const protoValue = config.list(protoName).join(", ");
  const allowed = parseProtocols(protoValue);
  if (typeof allowed === "string") {
    fatal([protoName], `${protoName} = ${protoValue}: ${allowed}`);
  } else {
    const spoken = SPOKEN.filter((v) => allowed.has(v));
    if (!spoken.length) {
      fatal(
        [protoName],
        `${protoName} = ${protoValue}: allows no protocol Postwarden's TLS library speaks ` +
          "(TLSv1.2, TLSv1.3)",
      );
    } else {
      policy.minVersion = spoken[0];
      policy.maxVersion = spoken[spoken.length - 1];
    }
  }

  const gradeName = mandatory ? "smtpd_tls_mandatory_ciphers" : "smtpd_tls_ciphers";
  const grade = config.str(gradeName).trim().toLowerCase();
  if (!GRADES.has(grade)) {
    fatal([gradeName], `invalid ${gradeName} value: "${grade}"`);
  } else if (grade === "null") {
    fatal(
      [gradeName],
      `${gradeName} = null: not supported by Postwarden, whose TLS library has no ` +
        "unencrypted (null) ciphers",
    );
  }

  if (policy.minVersion === "TLSv1.2") {
    const excludeNames = ["smtpd_tls_exclude_ciphers"];
    if (mandatory) excludeNames.push("smtpd_tls_mandatory_exclude_ciphers");
    for (const name of excludeNames) {
      for (const item of config.list(name)) {
        const hit = excludedSuites(item);
        if (hit === null) {
          fatal([name], `${name}: "${item}": not a cipher or cipher class Postwarden knows`);
        } else if (hit.length) {
          fatal(
            [name],
            `${name}: "${item}": not supported by Postwarden, whose TLS library cannot drop ` +
              `${hit.join(", ")}; exclude TLSv1.2 instead (${protoName} = >=TLSv1.3)`,
          );
        }
      }
    }
  }
  return { policy, problems };
}

/** smtpd_tls_auth_only, or implied by mandatory TLS; cheap enough for each EHLO. */
export function tlsAuthOnly(config: Config): boolean {
  if (config.bool("smtpd_tls_auth_only") || config.bool("smtpd_tls_wrappermode")) return true;
  const level = config.str("smtpd_tls_security_level").trim().toLowerCase();
  if (level === "") return config.bool("smtpd_enforce_tls");
  return level !== "none" && level !== "may";
}

/**
 * Whether AUTH may be offered and accepted now (smtpd_tls_auth_only, implied
 * by mandatory TLS): not before TLS is active when the policy says so.
 */
export function authAllowed(p: SmtpdTlsPolicy, tlsActive: boolean): boolean {
  return tlsActive || !p.authOnly;
}
