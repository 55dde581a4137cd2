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

/** The restriction list parameters smtpd evaluates, in Postfix's stage order. */
export const RESTRICTION_LISTS = [
  "smtpd_client_restrictions",
  "smtpd_helo_restrictions",
  "smtpd_sender_restrictions",
  "smtpd_relay_restrictions",
  "smtpd_recipient_restrictions",
  "smtpd_data_restrictions",
] as const;

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
  // issue 8 policy-anvil
  // issue 8 protocol
]);

/** Restrictions whose next list item is their access table (`check_sender_access hash:/x`). */
export const TABLE_RESTRICTIONS: ReadonlySet<string> = new Set([
  "check_client_access",
  "check_helo_access",
  "check_sender_access",
  "check_recipient_access",
]);

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
 * table after a check_*_access and the names of `classes`
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
      if (TABLE_RESTRICTIONS.has(r)) i++;
      else if (!IMPLEMENTED_RESTRICTIONS.has(r) && !classes.includes(list[i])) out.add(list[i]);
    }
  }
  return [...out];
}

/** True when the relay and recipient lists hold a restriction that can refuse relaying. */
export function canRefuseRelay(relay: readonly string[], recipient: readonly string[]): boolean {
  return [...relay, ...recipient].some((r) => RELAY_CONTROL.has(r.toLowerCase()));
}
