/**
 * The SMTP access restrictions Postwarden implements, by name: the one list
 * that smtpd's evaluator (daemons/smtpd/restrictions.ts) and the
 * configuration report (support.ts) both read, so that what is reported as
 * supported is what runs. Any other name in a restriction list is a
 * configuration error that smtpd answers with 451 4.3.5, as Postfix does
 * with a restriction it does not know.
 *
 * @module
 */

import { parseIp } from "./network_list.ts";

/** The restriction list parameters smtpd evaluates, in Postfix's stage order. */
export const RESTRICTION_LISTS = [
  "smtpd_client_restrictions",
  "smtpd_helo_restrictions",
  "smtpd_sender_restrictions",
  "smtpd_relay_restrictions",
  "smtpd_recipient_restrictions",
  "smtpd_data_restrictions",
  "smtpd_end_of_data_restrictions",
] as const;

/** check_{subject}_{mx,ns,a}_access: the access tables keyed by a domain's MX hosts, name servers or addresses. */
const SERVER_ACCESS = ["client", "reverse_client_hostname", "helo", "sender", "recipient"]
  .flatMap((subject) => ["mx", "ns", "a"].map((kind) => `check_${subject}_${kind}_access`));

/** Restriction names smtpd implements (lower case, as Postfix compares them). */
export const IMPLEMENTED_RESTRICTIONS: ReadonlySet<string> = new Set([
  "permit",
  "reject",
  "defer",
  "permit_mynetworks",
  "permit_sasl_authenticated",
  "permit_auth_destination",
  "reject_unauth_destination",
  "defer_unauth_destination",
  "reject_invalid_helo_hostname",
  "reject_non_fqdn_helo_hostname",
  "reject_non_fqdn_sender",
  "reject_non_fqdn_recipient",
  "reject_unlisted_recipient",
  "reject_unlisted_sender",
  "warn_if_reject",
  "check_client_access",
  "check_helo_access",
  "check_sender_access",
  "check_recipient_access",
  // issue 8 auth
  "reject_sender_login_mismatch",
  "reject_authenticated_sender_login_mismatch",
  "reject_known_sender_login_mismatch",
  "reject_unauthenticated_sender_login_mismatch",
  // issue 8 restrictions
  "reject_unknown_helo_hostname",
  "reject_unknown_hostname",
  "reject_unknown_sender_domain",
  "reject_unknown_address",
  "reject_unknown_recipient_domain",
  "reject_unknown_client_hostname",
  "reject_unknown_client",
  "reject_unknown_reverse_client_hostname",
  "check_reverse_client_hostname_access",
  "reject_rbl_client",
  "reject_rbl",
  "reject_maps_rbl",
  "permit_dnswl_client",
  "reject_rhsbl_client",
  "permit_rhswl_client",
  "reject_rhsbl_reverse_client",
  "reject_rhsbl_helo",
  "reject_rhsbl_sender",
  "reject_rhsbl_recipient",
  "reject_unauth_pipelining",
  // issue 8 policy-anvil
  "check_policy_service",
  // issue 11: Postwarden's own SPF check (lib/spf)
  "postwarden_reject_spf_fail",
  // Postwarden's own DMARC policy (lib/dmarc), in smtpd_end_of_data_restrictions only
  "postwarden_reject_dmarc_fail",
  // issue 8 protocol
  "reject_unauth_pipelining",
  // issue 8 ccert
  // issue 8 access-kinds
  ...SERVER_ACCESS,
  "check_sasl_access",
]);

/** Restrictions whose next list item is their access table (`check_sender_access hash:/x`). */
export const TABLE_RESTRICTIONS: ReadonlySet<string> = new Set([
  "check_client_access",
  "check_helo_access",
  "check_sender_access",
  "check_recipient_access",
  "check_reverse_client_hostname_access",
  // issue 8 access-kinds
  ...SERVER_ACCESS,
  "check_sasl_access",
]);

/** Restrictions whose next list item is a DNS list domain (`reject_rbl_client zen.example`). */
export const DNSXL_RESTRICTIONS: ReadonlySet<string> = new Set([
  "reject_rbl_client",
  "reject_rbl",
  "permit_dnswl_client",
  "reject_rhsbl_client",
  "permit_rhswl_client",
  "reject_rhsbl_reverse_client",
  "reject_rhsbl_helo",
  "reject_rhsbl_sender",
  "reject_rhsbl_recipient",
]);

/**
 * Why a DNS list argument cannot be used, or null: Postfix's
 * `domain=d.d.d.d` reply filter (each octet a number or `[n;n..m]`) is
 * supported; postscreen's `domain*weight` is not (smtpd has no scores).
 */
export function dnsxlArgumentProblem(arg: string): string | null {
  const eq = arg.indexOf("=");
  const domain = eq < 0 ? arg : arg.slice(0, eq);
  if (domain.includes("*")) {
    return `DNS list "${arg}": the "*weight" syntax is postscreen's; it is not supported by ` +
      "Postwarden's smtpd (and Postfix's smtpd would look up the name as written)";
  }
  if (domain === "") return `DNS list "${arg}": empty domain`;
  if (eq >= 0 && parseDnsxlFilter(arg.slice(eq + 1)) === null) {
    return `RBL reply error: bad address pattern "${arg.slice(eq + 1)}" in "${arg}"`;
  }
  return null;
}

/** One octet of a reply filter: the values it accepts. */
export type OctetMatch = (octet: number) => boolean;

/**
 * Postfix's ip_match pattern (`127.0.0.2`, `127.0.0.[2..11]`,
 * `127.0.[0;1].[2;4..7]`): four octet patterns, or null when malformed.
 */
export function parseDnsxlFilter(pattern: string): OctetMatch[] | null {
  const out: OctetMatch[] = [];
  const num = (s: string) => (/^\d{1,3}$/.test(s) && Number(s) <= 255 ? Number(s) : null);
  const parts = pattern.match(/\[[^\]]*\]|[^.]+/g);
  if (!parts || parts.join(".") !== pattern || parts.length !== 4) return null;
  for (const part of parts) {
    if (!part.startsWith("[")) {
      const n = num(part);
      if (n === null) return null;
      out.push((o) => o === n);
      continue;
    }
    const ranges: [number, number][] = [];
    for (const item of part.slice(1, -1).split(";")) {
      const m = /^(\d+)(?:\.\.(\d+))?$/.exec(item);
      const lo = m ? num(m[1]) : null;
      const hi = m ? (m[2] === undefined ? lo : num(m[2])) : null;
      if (lo === null || hi === null || lo > hi) return null;
      ranges.push([lo, hi]);
    }
    out.push((o) => ranges.some(([lo, hi]) => o >= lo && o <= hi));
  }
  return out;
}

/** The query name of an address under a list domain (IPv4 octets or IPv6 nibbles reversed). */
export function addressQuery(addr: string, domain: string): string | null {
  let b = parseIp(addr);
  if (!b) return null;
  // An IPv4-mapped client is an IPv4 client (Postfix's smtpd_peer does the same).
  if (b.length === 16 && b.slice(0, 10).every((x) => x === 0) && b[10] === 255 && b[11] === 255) {
    b = b.slice(12);
  }
  if (b.length === 4) return `${b[3]}.${b[2]}.${b[1]}.${b[0]}.${domain}`;
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) nibbles.push((b[i] & 0xf).toString(16), (b[i] >> 4).toString(16));
  return `${nibbles.join(".")}.${domain}`;
}

/**
 * A restriction list's items as Postfix splits them: at commas and white
 * space, except inside `{...}` (an `inline:{a=b, c=d}` table is one item).
 * An unbalanced brace ends the item at the end of the value.
 */
export function restrictionItems(value: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let item = "";
  for (const c of value) {
    if (depth === 0 && /[\s,]/.test(c)) {
      if (item !== "") items.push(item);
      item = "";
      continue;
    }
    if (c === "{") depth++;
    else if (c === "}" && depth > 0) depth--;
    item += c;
  }
  if (item !== "") items.push(item);
  return items;
}

/** Restrictions that can refuse relaying; Postfix requires one in the relay or recipient list. */
export const RELAY_CONTROL: ReadonlySet<string> = new Set([
  "reject_unauth_destination",
  "defer_unauth_destination",
  "reject",
  "defer",
]);

/** The no-open-relay check's message, Postfix's wording. */
export const OPEN_RELAY_MESSAGE =
  "in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify at least " +
  "one working instance of: reject_unauth_destination, defer_unauth_destination, reject, defer";

/**
 * Names in the lists that are not implemented, each once, in order: the
 * table after a check_*_access, the domain after a DNS list restriction
 * and the names of `classes`
 * (smtpd_restriction_classes) are not restrictions.
 */
export function unsupportedRestrictions(
  lists: readonly (readonly string[])[],
  classes: readonly string[] = [],
): string[] {
  const out = new Set<string>();
  for (const list of lists) {
    for (let i = 0; i < list.length; i++) {
      const r = list[i].toLowerCase();
      if (TABLE_RESTRICTIONS.has(r) || DNSXL_RESTRICTIONS.has(r) || r === "check_policy_service") {
        i++;
      } else if (!IMPLEMENTED_RESTRICTIONS.has(r) && !classes.includes(list[i])) {
        out.add(list[i]);
        if (r === "check_ccert_access") i++; // its table is no restriction name
      }
    }
  }
  return [...out];
}

/** True when the relay and recipient lists hold a restriction that can refuse relaying. */
export function canRefuseRelay(relay: readonly string[], recipient: readonly string[]): boolean {
  return [...relay, ...recipient].some((r) => RELAY_CONTROL.has(r.toLowerCase()));
}
