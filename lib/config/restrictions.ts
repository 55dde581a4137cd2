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
]);

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

/** Names in the lists that are not implemented, each once, in order. */
export function unsupportedRestrictions(lists: readonly (readonly string[])[]): string[] {
  return [...new Set(lists.flat().filter((r) => !IMPLEMENTED_RESTRICTIONS.has(r.toLowerCase())))];
}

/** True when the relay and recipient lists hold a restriction that can refuse relaying. */
export function canRefuseRelay(relay: readonly string[], recipient: readonly string[]): boolean {
  return [...relay, ...recipient].some((r) => RELAY_CONTROL.has(r.toLowerCase()));
}
