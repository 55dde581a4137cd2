/**
 * smtpd's protocol hardening and extension policy, decided once per
 * configuration and applied by the session (session.ts) per client:
 *
 * - `smtpd_forbid_bare_newline` (Postfix 3.9 default `normalize`; `yes` is
 *   its alias, `reject` refuses, `no` lets a bare LF end DATA as before
 *   3.9) for clients not in `smtpd_forbid_bare_newline_exclusions`
 *   ($mynetworks), which get `no` as in Postfix; `reject` answers
 *   `smtpd_forbid_bare_newline_reject_code` (550) 5.5.2.
 * - `smtpd_forbid_unauth_pipelining` (3.9 default yes): a command followed
 *   by more input when it must end a pipelined group (RFC 2920: HELO,
 *   EHLO, DATA, VRFY, NOOP, AUTH, XCLIENT; not STARTTLS, whose own code
 *   discards what follows it), or any command from a
 *   client that did not say EHLO, is logged as "improper command
 *   pipelining" and, when forbidden, answered "554 5.5.0 Error: SMTP
 *   protocol synchronization" and disconnected.
 * - `smtpd_forbidden_commands` (default `CONNECT GET POST
 *   regexp:{{/^[^A-Z]/ Bogus}}`) and commands that look like a header
 *   label (`Subject:`): 221 2.7.0 and disconnect, as Postfix (whose
 *   regexp tables match case-insensitively, so only verbs not starting
 *   with a letter match the default regexp).
 * - `smtpd_discard_ehlo_keywords` (a list of EHLO keywords, case-insensitive,
 *   plus `silent-discard`), or for a client address that
 *   `smtpd_discard_ehlo_keyword_address_maps` finds, the list it gives.
 * - `smtputf8_enable` (yes at compatibility_level 1 and up): SMTPUTF8 is
 *   offered, a command line that is not valid UTF-8 gets "500 5.5.2 Error:
 *   bad UTF-8 syntax", UTF-8 addresses are accepted (with or without the
 *   SMTPUTF8 parameter, as Postfix) unless `strict_smtputf8` (no) asks for
 *   the parameter: "553 5.6.7 Must declare SMTPUTF8 to send unicode
 *   address".
 *
 * Not done here (as in Postfix's smtpd): nothing special for a client that
 * talks before the greeting; postscreen's pregreet test is not part of
 * smtpd. Its first command is handled like any other.
 *
 * Parameters: smtpd_forbid_bare_newline, smtpd_forbid_bare_newline_exclusions,
 * smtpd_forbid_bare_newline_reject_code, smtpd_forbid_unauth_pipelining,
 * smtpd_forbidden_commands, smtpd_discard_ehlo_keywords,
 * smtpd_discard_ehlo_keyword_address_maps, smtputf8_enable,
 * strict_smtputf8, mynetworks (through the exclusions' default).
 *
 * No socket I/O; tables are opened through the injected opener.
 *
 * @module
 */
import type { Config } from "../../lib/config/mod.ts";
import {
  matchNetworkList,
  type NetworkList,
  parseNetworkList,
} from "../../lib/config/network_list.ts";
import { Maps } from "../../lib/maps/mod.ts";
import { MatchList } from "../../lib/resolve/match_list.ts";

/** How a bare LF is handled for one client. */
export type BareNewline = "normalize" | "reject" | "no";

/** The protocol policy of one configuration. */
export interface ProtocolPolicy {
  /** smtpd_forbid_bare_newline (yes read as normalize). */
  bareNewline: BareNewline;
  /** smtpd_forbid_bare_newline_exclusions: these clients get "no". */
  bareNewlineExclusions: NetworkList;
  /** smtpd_forbid_bare_newline_reject_code. */
  bareNewlineRejectCode: number;
  /** smtpd_forbid_unauth_pipelining. */
  forbidUnauthPipelining: boolean;
  /** smtpd_forbidden_commands, its tables opened on first use. */
  forbiddenCommands: () => Promise<MatchList>;
  /** smtpd_discard_ehlo_keywords (clients the address maps do not find). */
  discard: Discard;
  /** smtpd_discard_ehlo_keyword_address_maps, opened on first use; null when empty. */
  discardMaps: (() => Promise<Maps>) | null;
  /** smtputf8_enable. */
  smtputf8: boolean;
  /** strict_smtputf8. */
  strictSmtputf8: boolean;
  /** postwarden_requiretls: REQUIRETLS (RFC 8689) is offered on TLS sessions. */
  requiretls: boolean;
}

/** EHLO keywords a client is not offered. */
export interface Discard {
  /** Upper-case EHLO keywords not to announce (and, where Postfix does, not to honour). */
  keywords: Set<string>;
  /** `silent-discard` was listed: do not log the discarded keywords. */
  silent: boolean;
}

/** Parses a keyword list (`chunking, silent-discard`). */
export function parseDiscard(value: string): Discard {
  const words = value.split(/[\s,]+/).filter((w) => w !== "").map((w) => w.toUpperCase());
  return {
    keywords: new Set(words.filter((k) => k !== "SILENT-DISCARD")),
    silent: words.includes("SILENT-DISCARD"),
  };
}

/** Commands that must end a pipelined group (Postfix's SMTPD_CMD_FLAG_LAST). */
export const PIPELINING_LAST = new Set([
  "HELO",
  "EHLO",
  "XCLIENT",
  "AUTH",
  "DATA",
  "NOOP",
  "VRFY",
]);

/** EHLO keywords in Postfix's mask order, the order of its "discarding EHLO keywords" log. */
const MASK_ORDER = [
  "8BITMIME",
  "PIPELINING",
  "SIZE",
  "VRFY",
  "ETRN",
  "AUTH",
  "VERP",
  "STARTTLS",
  "XCLIENT",
  "XFORWARD",
  "ENHANCEDSTATUSCODES",
  "DSN",
  "SMTPUTF8",
  "CHUNKING",
];

/**
 * The "discarding EHLO keywords: ..." text logged at each EHLO, or null for
 * none. As Postfix 3.7.11 does (seen, not documented): every listed keyword
 * Postfix knows, in its mask order; nothing with silent-discard, nor when
 * ENHANCEDSTATUSCODES is among them.
 */
export function discardedForLog(d: Discard): string | null {
  if (d.silent || d.keywords.has("ENHANCEDSTATUSCODES")) return null;
  const names = MASK_ORDER.filter((k) => d.keywords.has(k));
  return names.length ? names.join(" ") : null;
}

/**
 * The keywords a client is not offered: what
 * smtpd_discard_ehlo_keyword_address_maps gives for its address (Postfix's
 * lookup key), else smtpd_discard_ehlo_keywords. A table that cannot
 * answer is reported through `warn` and the list applies.
 */
export async function discardFor(
  p: ProtocolPolicy,
  client: { addr: string },
  warn: (message: string) => void = () => {},
): Promise<Discard> {
  if (!p.discardMaps) return p.discard;
  try {
    const value = await (await p.discardMaps()).find(client.addr);
    return value === undefined ? p.discard : parseDiscard(value);
  } catch (e) {
    warn(`smtpd_discard_ehlo_keyword_address_maps: ${(e as Error).message}`);
    return p.discard;
  }
}

/**
 * Reads the policy from a configuration. Throws a plain Error with
 * Postfix's wording for a value it cannot use (master validated it before).
 */
export function protocolPolicy(
  c: Config,
  openMaps: (title: string, value: string) => Promise<Maps> = (t, v) => Maps.open(t, v),
): ProtocolPolicy {
  const mode = c.str("smtpd_forbid_bare_newline").trim().toLowerCase();
  const bareNewline: BareNewline = mode === "yes" || mode === "normalize"
    ? "normalize"
    : mode === "reject"
    ? "reject"
    : mode === "no"
    ? "no"
    : (() => {
      throw new Error(
        `bad smtpd_forbid_bare_newline value: ${mode} (specify normalize, yes, reject or no)`,
      );
    })();
  let forbidden: Promise<MatchList> | null = null;
  const mapsValue = c.str("smtpd_discard_ehlo_keyword_address_maps").trim();
  let discardMaps: Promise<Maps> | null = null;
  return {
    bareNewline,
    bareNewlineExclusions: parseNetworkList(
      "smtpd_forbid_bare_newline_exclusions",
      c.list("smtpd_forbid_bare_newline_exclusions"),
    ),
    bareNewlineRejectCode: c.int("smtpd_forbid_bare_newline_reject_code"),
    forbidUnauthPipelining: c.bool("smtpd_forbid_unauth_pipelining"),
    forbiddenCommands: () =>
      forbidden ??= MatchList.open(
        "smtpd_forbidden_commands",
        c.str("smtpd_forbidden_commands"),
        "string",
        openMaps,
      ),
    discard: parseDiscard(c.str("smtpd_discard_ehlo_keywords")),
    discardMaps: mapsValue === ""
      ? null
      : () => discardMaps ??= openMaps("smtpd_discard_ehlo_keyword_address_maps", mapsValue),
    smtputf8: c.bool("smtputf8_enable"),
    strictSmtputf8: c.bool("strict_smtputf8"),
    requiretls: c.bool("postwarden_requiretls"),
  };
}

/**
 * The bare-newline handling for a client: `no` for one in the exclusions.
 * A bad exclusions item reached while matching excludes nobody (enforcing
 * is the safe side).
 */
export function bareNewlineFor(p: ProtocolPolicy, client: { addr: string; name: string }) {
  if (p.bareNewline === "no") return "no";
  return matchNetworkList(p.bareNewlineExclusions, client) === true ? "no" : p.bareNewline;
}

/**
 * Whether an unknown command ends the session (Postfix: a header label
 * like `Subject:`, or a match in smtpd_forbidden_commands). A table that
 * cannot answer counts as no match, as Postfix's string_list_match does
 * (the command is then refused with 500 rather than 221), and is reported
 * through `warn`.
 */
export async function isForbiddenCommand(
  p: ProtocolPolicy,
  verb: string,
  warn: (message: string) => void = () => {},
): Promise<boolean> {
  if (isHeaderLabel(verb)) return true;
  try {
    return await (await p.forbiddenCommands()).match(verb);
  } catch (e) {
    warn(`smtpd_forbidden_commands: ${(e as Error).message}`);
    return false;
  }
}

/** `Label:` with a label of printable ASCII other than ":" (Postfix's is_header). */
export function isHeaderLabel(word: string): boolean {
  return /^[\x21-\x39\x3b-\x7e]+:/.test(word);
}

/**
 * Bytes as Postfix's escape() logs them: printable ASCII as is, "\\" doubled,
 * \r \n \t and the other C escapes by name, everything else as \ooo; at
 * most `max` input bytes.
 */
export function escapeForLog(bytes: Uint8Array, max = 100): string {
  const names: Record<number, string> = {
    7: "\\a",
    8: "\\b",
    9: "\\t",
    10: "\\n",
    11: "\\v",
    12: "\\f",
    13: "\\r",
    92: "\\\\",
  };
  let s = "";
  for (const b of bytes.subarray(0, max)) {
    if (names[b]) s += names[b];
    else if (b >= 32 && b < 127) s += String.fromCharCode(b);
    else s += `\\${b.toString(8).padStart(3, "0")}`;
  }
  return s;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The bytes are valid UTF-8 (Postfix checks each command line when smtputf8_enable = yes). */
export function validUtf8(bytes: Uint8Array): boolean {
  // Nearly every command line is ASCII: no decoder call (a native op) for those.
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return true;
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** True when the string has a character outside ASCII. */
export function nonAscii(s: string): boolean {
  // deno-lint-ignore no-control-regex
  return /[^\x00-\x7f]/.test(s);
}
