/**
 * Which table-valued parameters each daemon command reads: data only, so
 * that a daemon can ask whether it reads tables (lib/permissions/peers.ts)
 * without loading the table code (tables.ts computes the grants).
 *
 * @module
 */
import { RESTRICTION_LISTS } from "../config/mod.ts";

/** The tables of the address resolver (lib/resolve), which smtpd, qmgr and local run. */
const RESOLVER_TABLES = [
  "transport_maps",
  "sender_dependent_relayhost_maps",
  "sender_dependent_default_transport_maps",
  "relocated_maps",
];
const RESOLVER_LISTS = [
  "mydestination",
  "relay_domains",
  "virtual_alias_domains",
  "virtual_mailbox_domains",
];

/** The table-valued parameters each daemon command reads. */
export const TABLE_PARAMS: Readonly<Record<string, readonly string[]>> = {
  smtpd: [
    ...RESOLVER_TABLES,
    "local_recipient_maps",
    "virtual_alias_maps",
    "virtual_mailbox_maps",
    "relay_recipient_maps",
    "canonical_maps",
    "recipient_canonical_maps",
    "rbl_reply_maps",
    "smtpd_discard_ehlo_keyword_address_maps",
    "smtpd_sender_login_maps",
  ],
  cleanup: [
    "canonical_maps",
    "sender_canonical_maps",
    "recipient_canonical_maps",
    "virtual_alias_maps",
    "header_checks",
    "body_checks",
    "mime_header_checks",
    "nested_header_checks",
    "sender_bcc_maps",
    "recipient_bcc_maps",
    // Postwarden's DKIM signing keys by From: domain (issue 11).
    "postwarden_dkim_signing_table",
  ],
  qmgr: RESOLVER_TABLES,
  local: [...RESOLVER_TABLES, "alias_maps", "local_recipient_maps"],
  virtual: ["virtual_mailbox_maps", "virtual_uid_maps", "virtual_gid_maps"],
  // The SMTP client's per next hop TLS policy and SASL credentials.
  smtp: ["smtp_tls_policy_maps", "smtp_sasl_password_maps"],
};

/** Lists that may mix names and tables, per daemon (the resolver's domain lists). */
export const LIST_PARAMS: Readonly<Record<string, readonly string[]>> = {
  cleanup: ["masquerade_exceptions"],
  // The restriction lists: their `type:table` items are check_*_access tables.
  smtpd: [...RESOLVER_LISTS, ...RESTRICTION_LISTS, "smtpd_forbidden_commands"],
  qmgr: RESOLVER_LISTS,
  local: RESOLVER_LISTS,
  // permit_mynetworks and type:table items.
  postscreen: ["postscreen_access_list"],
};
