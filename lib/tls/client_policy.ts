/**
 * What the SMTP client's TLS settings mean, as Postfix's smtp(8) reads
 * them: the global level, a per next hop entry of smtp_tls_policy_maps,
 * the names a server certificate must match, and what Postwarden's TLS
 * library can honour. Pure: reads a Config or strings, does no I/O (the
 * handshake is daemons/smtp/starttls.ts).
 *
 * Levels: none, may (opportunistic: TLS when offered, any certificate,
 * plaintext when the handshake fails), encrypt (mandatory TLS, any
 * certificate), verify (mandatory TLS, a certificate trusted by
 * smtp_tls_CAfile/smtp_tls_CApath whose name matches
 * smtp_tls_verify_cert_match, by default the MX host name), secure (the
 * same with smtp_tls_secure_cert_match, by default the next hop domain and
 * its subdomains), dane (RFC 7672: a host whose DNSSEC-signed TLSA records
 * are usable is authenticated by them; without them, may or encrypt as
 * lib/dane's level.ts decides), dane-only (the same, but a host without
 * usable TLSA records is a failure). The DANE levels need
 * smtp_dns_support_level = dnssec: without it they stop the start in
 * main.cf and defer a policy table entry's next hop, where Postfix falls
 * back to may with a warning. fingerprint is not supported: in main.cf it
 * stops the start, in a policy table entry it defers that next hop's mail
 * ("client TLS configuration problem", as Postfix does for an invalid
 * entry), never sends it with less protection.
 *
 * The TLS library (rustls behind node:tls) speaks TLSv1.2 and TLSv1.3
 * only, with AEAD suites of OpenSSL's "HIGH" grade. Protocol lists and
 * cipher exclusions are enforced on the negotiated session: a session
 * whose protocol is not allowed, or whose TLSv1.2 suite is excluded, is
 * abandoned like a failed handshake. A protocol list that allows neither
 * TLSv1.2 nor TLSv1.3, the "null" grade, or an exclusion this module does
 * not know stops the start.
 *
 * Parameters: smtp_tls_security_level, smtp_use_tls, smtp_enforce_tls,
 * smtp_tls_enforce_peername, smtp_tls_policy_maps, smtp_tls_CAfile,
 * smtp_tls_CApath, smtp_tls_verify_cert_match, smtp_tls_secure_cert_match,
 * smtp_tls_loglevel, smtp_tls_protocols, smtp_tls_mandatory_protocols,
 * smtp_tls_ciphers, smtp_tls_mandatory_ciphers, smtp_tls_exclude_ciphers,
 * smtp_tls_mandatory_exclude_ciphers, smtp_starttls_timeout,
 * smtp_tls_connection_reuse, smtp_tls_note_starttls_offer,
 * smtp_dns_support_level, smtp_tls_dane_insecure_mx_policy.
 *
 * @module
 */
import type { Config } from "../config/config.ts";
import type { TlsaRecord } from "../dane/records.ts";
import { excludedSuites, parseProtocols, type TlsProblem, type TlsVersion } from "./policy.ts";

/** The SMTP client's TLS security levels that Postwarden implements. */
export type ClientTlsLevel =
  | "none"
  | "may"
  | "encrypt"
  | "verify"
  | "secure"
  | "dane"
  | "dane-only";

const LEVELS: ClientTlsLevel[] = [
  "none",
  "may",
  "encrypt",
  "verify",
  "secure",
  "dane",
  "dane-only",
];
/** Postfix levels Postwarden does not implement. */
const UNSUPPORTED_LEVELS = new Set(["fingerprint"]);
/** smtp_tls_dane_insecure_mx_policy's values. */
const INSECURE_MX = ["dane", "encrypt", "may"] as const;

/** True for the levels that look up TLSA records. */
export function isDaneLevel(level: ClientTlsLevel): level is "dane" | "dane-only" {
  return level === "dane" || level === "dane-only";
}
const GRADES = new Set(["export", "low", "medium", "high", "null"]);
const SPOKEN: TlsVersion[] = ["TLSv1.2", "TLSv1.3"];

/** The client's TLS settings from main.cf (and the service's -o overrides). */
export interface SmtpTlsSettings {
  /** The global level (smtp_tls_security_level, or the obsolete booleans). */
  level: ClientTlsLevel;
  /** smtp_tls_policy_maps, expanded ("" for none). */
  policyMaps: string;
  caFile: string;
  caPath: string;
  verifyMatch: string[];
  secureMatch: string[];
  loglevel: number;
  protocols: string;
  mandatoryProtocols: string;
  exclude: string[];
  mandatoryExclude: string[];
  /** smtp_starttls_timeout, in seconds. */
  handshakeTimeout: number;
  /** smtp_tls_connection_reuse. */
  connectionReuse: boolean;
  /** smtp_tls_note_starttls_offer. */
  noteStarttlsOffer: boolean;
  /** smtp_dns_support_level = dnssec: DNS answers say whether DNSSEC vouches for them. */
  dnssec: boolean;
  /** smtp_tls_dane_insecure_mx_policy: what TLSA records of a host from unsigned MX records mean. */
  insecureMx: "dane" | "encrypt" | "may";
}

/** What one connection to one next hop must do. */
export interface SiteTls {
  level: ClientTlsLevel;
  /** Certificate name patterns (verify, secure). */
  match: string[];
  /** Protocols the session may use. */
  protocols: Set<TlsVersion>;
  /** TLSv1.2 suites (OpenSSL names) the session must not use. */
  excluded: Set<string>;
  /** At dane and dane-only: the policy of a host DANE does not apply to, at "may". */
  fallback?: SiteTls;
  /**
   * At the effective level "dane" of one host (never from the tables: the
   * SMTP client sets it after the TLSA lookup): the usable records and the
   * reference names for DANE-TA (the TLSA base domain and the MX host).
   */
  tlsa?: { records: TlsaRecord[]; names: string[] };
  /** The trust anchors instead of smtp_tls_CAfile and smtp_tls_CApath (MTA-STS's). */
  caFile?: string;
  /** An smtp_tls_policy_maps entry gave it (MTA-STS does not override the admin's choice). */
  fromTable?: boolean;
}

/** A policy that cannot be followed: the warning to log (the mail is deferred). */
export class TlsPolicyError extends Error {
  override readonly name = "TlsPolicyError";
}

/** The level the global settings give, or an error text. */
function globalLevel(config: Config): ClientTlsLevel | { error: string } {
  const raw = config.str("smtp_tls_security_level").trim();
  if (raw === "") {
    if (config.bool("smtp_enforce_tls")) {
      return config.bool("smtp_tls_enforce_peername") ? "verify" : "encrypt";
    }
    return config.bool("smtp_use_tls") ? "may" : "none";
  }
  if ((LEVELS as string[]).includes(raw)) return raw as ClientTlsLevel;
  if (UNSUPPORTED_LEVELS.has(raw)) {
    return {
      error: `smtp_tls_security_level = ${raw}: not supported by Postwarden (no ` +
        "certificate fingerprints in the SMTP client); use verify or secure with smtp_tls_CAfile",
    };
  }
  return { error: `invalid tls security level: "${raw}"` };
}

/** Reads the client's TLS settings (call {@link smtpTlsProblems} first: this assumes them valid). */
export function smtpTlsSettings(config: Config): SmtpTlsSettings {
  const level = globalLevel(config);
  return {
    level: typeof level === "object" ? "encrypt" : level,
    policyMaps: config.str("smtp_tls_policy_maps").trim(),
    caFile: config.str("smtp_tls_CAfile").trim(),
    caPath: config.str("smtp_tls_CApath").trim(),
    verifyMatch: splitMatch(config.list("smtp_tls_verify_cert_match").join(" ")),
    secureMatch: splitMatch(config.list("smtp_tls_secure_cert_match").join(" ")),
    loglevel: config.int("smtp_tls_loglevel"),
    protocols: config.list("smtp_tls_protocols").join(", "),
    mandatoryProtocols: config.list("smtp_tls_mandatory_protocols").join(", "),
    exclude: config.list("smtp_tls_exclude_ciphers"),
    mandatoryExclude: config.list("smtp_tls_mandatory_exclude_ciphers"),
    handshakeTimeout: config.time("smtp_starttls_timeout"),
    connectionReuse: config.bool("smtp_tls_connection_reuse"),
    noteStarttlsOffer: config.bool("smtp_tls_note_starttls_offer"),
    dnssec: dnsSupportLevel(config) === "dnssec",
    insecureMx: insecureMxPolicy(config) ?? "may",
  };
}

/** smtp_dns_support_level, "" read as "enabled". */
function dnsSupportLevel(config: Config): string {
  return config.str("smtp_dns_support_level").trim().toLowerCase() || "enabled";
}

function insecureMxPolicy(config: Config): "dane" | "encrypt" | "may" | null {
  const v = config.str("smtp_tls_dane_insecure_mx_policy").trim().toLowerCase();
  return (INSECURE_MX as readonly string[]).includes(v) ? v as "dane" | "encrypt" | "may" : null;
}

/** Splits a match list on white space, commas and colons, as Postfix's argv_split. */
function splitMatch(text: string): string[] {
  return text.split(/[\s,:]+/).filter((w) => w !== "");
}

const LEVEL_NAMES = [
  "smtp_tls_security_level",
  "smtp_use_tls",
  "smtp_enforce_tls",
  "smtp_tls_enforce_peername",
];

/**
 * What in the client's TLS settings stops the start: an unsupported or
 * invalid level, protocols the library cannot speak, the null grade, an
 * exclusion this module does not know, an unreadable combination. Each
 * names the parameters it is about (and the level's, so that a master.cf
 * -o that changes the level brings them).
 */
export function smtpTlsProblems(config: Config): TlsProblem[] {
  const problems: TlsProblem[] = [];
  const fatal = (names: string[], message: string) =>
    problems.push({ names: [...names, ...LEVEL_NAMES], message, fatal: true });
  const level = globalLevel(config);
  if (typeof level === "object") {
    fatal([], level.error);
    return problems;
  }
  const dns = dnsSupportLevel(config);
  if (dns === "disabled") {
    fatal(
      ["smtp_dns_support_level"],
      "smtp_dns_support_level = disabled: not supported by Postwarden (the SMTP client has " +
        "no lookups but DNS); route with [host] next hops or relayhost instead",
    );
  } else if (dns !== "enabled" && dns !== "dnssec") {
    fatal(["smtp_dns_support_level"], `invalid smtp_dns_support_level value: "${dns}"`);
  }
  if (isDaneLevel(level) && dns !== "dnssec") {
    fatal(
      ["smtp_dns_support_level"],
      `smtp_tls_security_level = ${level} needs smtp_dns_support_level = dnssec (and a ` +
        "validating resolver on this host, first in /etc/resolv.conf); Postfix would fall " +
        "back to may",
    );
  }
  if (insecureMxPolicy(config) === null) {
    fatal(
      ["smtp_tls_dane_insecure_mx_policy"],
      `invalid smtp_tls_dane_insecure_mx_policy value: ` +
        `"${config.str("smtp_tls_dane_insecure_mx_policy").trim()}" (dane, encrypt or may)`,
    );
  }
  const usesMaps = config.str("smtp_tls_policy_maps").trim() !== "";
  if (level === "none" && !usesMaps) return problems;
  for (const name of ["smtp_tls_protocols", "smtp_tls_mandatory_protocols"]) {
    const value = config.list(name).join(", ");
    const allowed = spokenProtocols(value);
    if (typeof allowed === "string") fatal([name], `${name} = ${value}: ${allowed}`);
  }
  for (const name of ["smtp_tls_ciphers", "smtp_tls_mandatory_ciphers"]) {
    const grade = config.str(name).trim().toLowerCase();
    const problem = gradeProblem(grade);
    if (problem) fatal([name], `${name} = ${grade}: ${problem}`);
  }
  for (const name of ["smtp_tls_exclude_ciphers", "smtp_tls_mandatory_exclude_ciphers"]) {
    for (const item of config.list(name)) {
      if (excludedSuites(item) === null) {
        fatal([name], `${name}: "${item}": not a cipher or cipher class Postwarden knows`);
      }
    }
  }
  return problems;
}

function gradeProblem(grade: string): string | null {
  if (!GRADES.has(grade)) return "invalid cipher grade";
  if (grade === "null") {
    return "not supported by Postwarden, whose TLS library has no unencrypted (null) ciphers";
  }
  return null;
}

/** The protocols of a Postfix list that the library speaks, or an error text. */
export function spokenProtocols(value: string): Set<TlsVersion> | string {
  const allowed = parseProtocols(value);
  if (typeof allowed === "string") return allowed;
  const spoken = SPOKEN.filter((v) => allowed.has(v));
  if (!spoken.length) {
    return "allows no protocol Postwarden's TLS library speaks (TLSv1.2, TLSv1.3)";
  }
  return new Set(spoken);
}

/** One smtp_tls_policy_maps entry, parsed. */
export interface PolicyEntry {
  level: ClientTlsLevel;
  match?: string[];
  protocols?: string;
  ciphers?: string;
  exclude?: string;
  /** Attributes ignored because TLS is off (Postfix warns about each). */
  ignored: string[];
}

/**
 * Parses a policy table value ("secure match=nexthop:dot-nexthop
 * protocols=!SSLv2"), as Postfix's tls_policy_lookup_one does. Throws
 * {@link TlsPolicyError} with the warning text (without the table and key,
 * which the caller adds) for anything Postfix refuses and for what
 * Postwarden does not implement (dane, fingerprint, tafile=).
 */
export function parsePolicyEntry(value: string): PolicyEntry {
  const tokens = value.split(/[\t\n\r ,]+/).filter((t) => t !== "");
  if (tokens.length === 0) throw new TlsPolicyError("invalid empty policy");
  const [levelText, ...attrs] = tokens;
  if (UNSUPPORTED_LEVELS.has(levelText)) {
    throw new TlsPolicyError(
      `security level "${levelText}" is not supported by Postwarden (no certificate ` +
        "fingerprints in the SMTP client)",
    );
  }
  if (!(LEVELS as string[]).includes(levelText)) {
    throw new TlsPolicyError(`invalid security level "${levelText}"`);
  }
  const entry: PolicyEntry = { level: levelText as ClientTlsLevel, ignored: [] };
  if (entry.level === "none") {
    entry.ignored = attrs;
    return entry;
  }
  for (const tok of attrs) {
    const eq = tok.indexOf("=");
    if (eq <= 0) {
      throw new TlsPolicyError(`malformed attribute/value pair "${tok}": missing '='`);
    }
    const name = tok.slice(0, eq).toLowerCase();
    const val = tok.slice(eq + 1);
    const once = (have: unknown) => {
      if (have !== undefined) {
        throw new TlsPolicyError(`attribute "${name}" is specified multiple times`);
      }
    };
    switch (name) {
      case "ciphers":
        if (val === "") throw new TlsPolicyError(`attribute "${name}" has empty value`);
        once(entry.ciphers);
        entry.ciphers = val;
        break;
      case "protocols":
        once(entry.protocols);
        entry.protocols = val;
        break;
      case "match":
        if (val === "") throw new TlsPolicyError(`attribute "${name}" has empty value`);
        if (entry.level !== "verify" && entry.level !== "secure") {
          throw new TlsPolicyError(
            `attribute "${name}" invalid at security level "${entry.level}"`,
          );
        }
        entry.match = [...(entry.match ?? []), ...val.split(":").filter((m) => m !== "")];
        break;
      case "exclude":
        once(entry.exclude);
        entry.exclude = val;
        break;
      case "tafile":
        throw new TlsPolicyError(`attribute "${name}" is not supported by Postwarden`);
      default:
        throw new TlsPolicyError(`invalid attribute name: "${name}"`);
    }
  }
  return entry;
}

/**
 * The keys smtp_tls_policy_maps is searched with for a next hop, in order:
 * the next hop as given; for a plain domain also its parent domains with a
 * leading dot (".example.com", ".com"). A bracketed or port-qualified next
 * hop matches only its own entry, as in Postfix.
 */
export function policyKeys(nexthop: string): string[] {
  const dest = nexthop.trim().toLowerCase();
  if (!/^[a-z0-9.-]+$/.test(dest) || dest.startsWith(".")) return [dest];
  const keys = [dest];
  for (let i = dest.indexOf(".", 1); i > 0; i = dest.indexOf(".", i + 1)) {
    keys.push(dest.slice(i));
  }
  return keys;
}

/**
 * The policy for one next hop: the global settings, overridden by a table
 * entry when there is one. Throws {@link TlsPolicyError} when the entry's
 * attributes cannot be honoured.
 */
export function sitePolicy(s: SmtpTlsSettings, entry: PolicyEntry | null): SiteTls {
  const level = entry?.level ?? s.level;
  const site: SiteTls = { level, match: [], protocols: new Set(), excluded: new Set() };
  if (level === "none") return site;
  if (isDaneLevel(level)) {
    if (!s.dnssec) {
      throw new TlsPolicyError(
        `security level "${level}" needs smtp_dns_support_level = dnssec`,
      );
    }
    site.fallback = sitePolicy(s, { ...(entry ?? { ignored: [] }), level: "may" });
  }
  const mandatory = level !== "may";
  const protoText = entry?.protocols ?? (mandatory ? s.mandatoryProtocols : s.protocols);
  const protocols = spokenProtocols(protoText);
  if (typeof protocols === "string") {
    throw new TlsPolicyError(`protocols "${protoText}": ${protocols}`);
  }
  site.protocols = protocols;
  if (entry?.ciphers !== undefined) {
    const problem = gradeProblem(entry.ciphers.toLowerCase());
    if (problem) throw new TlsPolicyError(`ciphers "${entry.ciphers}": ${problem}`);
  }
  const exclusions = entry?.exclude !== undefined
    ? entry.exclude.split(/[\s,:]+/).filter((w) => w !== "")
    : [...s.exclude, ...(mandatory ? s.mandatoryExclude : [])];
  for (const item of exclusions) {
    const hit = excludedSuites(item);
    if (hit === null) {
      throw new TlsPolicyError(`exclude "${item}": not a cipher or cipher class Postwarden knows`);
    }
    for (const suite of hit) site.excluded.add(suite);
  }
  if (level === "verify" || level === "secure") {
    site.match = entry?.match ?? (level === "verify" ? s.verifyMatch : s.secureMatch);
  }
  return site;
}

/** The names a next hop is matched as: "[mail.example.com]:587" is "mail.example.com". */
export function nexthopDomain(nexthop: string): string {
  const t = nexthop.trim().toLowerCase();
  const b = /^\[([^\]]*)\](?::\d+)?$/.exec(t);
  if (b) return b[1];
  return t.replace(/:\d+$/, "").replace(/\.$/, "");
}

/**
 * Whether one certificate name matches a pattern of a match list, as
 * Postfix's tls_client.c does: "hostname" is the server's host name,
 * "nexthop" the next hop domain, "dot-nexthop" any subdomain of it, a
 * pattern with a leading dot any subdomain of the rest, anything else
 * that name. A certificate name "*.parent" matches any name under parent
 * (tls_wildcard_matches_multiple_labels = yes, Postfix's default).
 */
function nameMatches(
  certName: string,
  pattern: string,
  names: { hostname: string; nexthop: string },
): boolean {
  const id = certName.toLowerCase().replace(/\.$/, "");
  let want = pattern.toLowerCase();
  let sub = false;
  if (want === "hostname") want = names.hostname;
  else if (want === "nexthop") want = names.nexthop;
  else if (want === "dot-nexthop") {
    want = names.nexthop;
    sub = true;
  } else if (want.startsWith(".")) {
    want = want.slice(1);
    sub = true;
  }
  want = want.toLowerCase().replace(/\.$/, "");
  if (want === "") return false;
  if (sub) return id.length > want.length + 1 && id.endsWith("." + want);
  if (id === want) return true;
  if (id.startsWith("*.") && id.length > 2) {
    return want.length > id.length - 1 && want.endsWith(id.slice(1));
  }
  return false;
}

/**
 * Whether a certificate matches the site's patterns: its DNS
 * subjectAltNames, or its common name when it has none.
 */
export function certificateMatches(
  cert: { dnsNames: string[]; commonName: string | null },
  patterns: string[],
  names: { hostname: string; nexthop: string },
): boolean {
  const ids = cert.dnsNames.length ? cert.dnsNames : cert.commonName ? [cert.commonName] : [];
  return ids.some((id) => patterns.some((p) => nameMatches(id, p, names)));
}
