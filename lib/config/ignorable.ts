/**
 * The reviewed allow-list of Postfix parameters that Postwarden does not
 * implement (they are not in params.ts) and that are harmless to ignore:
 * ignoring them can neither let mail through that the admin meant to stop
 * nor send mail anywhere the admin did not mean it to go. Setting one of
 * them to a non-default value is a warning. Every other Postfix parameter
 * that is not implemented is an error when set to a non-default value
 * (support.ts): Postwarden fails closed.
 *
 * Each group says why its members are harmless. Some entries are harmless
 * only for some values (`accepts`): e.g. mailbox_size_limit = 0 is what
 * Postwarden does, while a limit is a promise that mailboxes stay below it,
 * so it is an error.
 *
 * Families of parameters that belong to a Postfix program Postwarden does
 * not have (tlsproxy, qmqpd, ...) are listed by
 * prefix: they take effect only in that program, and master.cf cannot run a
 * program Postwarden does not have (`postwarden check` reports it).
 *
 * @module
 */

/** Why a parameter is harmless to ignore, and for which values. */
export interface Ignorable {
  /** Why ignoring it is harmless (ends the warning). */
  why: string;
  /** Values (expanded, trimmed) that are harmless; others are errors. @default every value */
  accepts?: (value: string) => boolean;
  /** The harmless values, for the error message when `accepts` says no. */
  acceptsText?: string;
}

interface Group extends Ignorable {
  names: string[];
}

const oneOf = (...values: string[]) => (v: string) => values.includes(v.toLowerCase());

const GROUPS: Group[] = [
  {
    why: "Postwarden runs from its checkout and ships no such files or programs",
    names: [
      "readme_directory",
      "html_directory",
      "manpage_directory",
      "sample_directory",
      "meta_directory",
      "shlib_directory",
      "sendmail_path",
      "newaliases_path",
      "mailq_path",
      "openssl_path",
      "alternate_config_directories",
      "multi_instance_directories",
      "multi_instance_enable",
      "multi_instance_group",
      "multi_instance_name",
      "multi_instance_wrapper",
      "postmulti_control_commands",
      "postmulti_start_commands",
      "postmulti_stop_commands",
      "known_tcp_ports",
      "berkeley_db_create_buffer_size",
      "berkeley_db_read_buffer_size",
      "lmdb_map_size",
      "proxy_read_maps",
      "proxy_write_maps",
      "daemon_table_open_error_is_fatal",
    ],
  },
  {
    why: "it only changes what is logged or shown, not what is accepted or delivered",
    names: [
      "biff",
      "mail_release_date",
      "process_id",
      "syslog_facility",
      "maillog_file_compressor",
      "maillog_file_prefixes",
      "maillog_file_rotate_suffix",
      "postlog_service_name",
      "postlogd_watchdog_timeout",
      "info_log_address_format",
      "respectful_logging",
      "helpful_warnings",
      "smtpd_client_port_logging",
      "qmqpd_client_port_logging",
      "debug_peer_level",
      "debug_peer_list",
      "debugger_command",
      "smtpd_log_access_permit_actions",
      "backwards_bounce_logfile_compatibility",
      "smtpd_reject_footer",
      "smtpd_reject_footer_maps",
      "smtpd_expansion_filter",
      "enable_long_queue_ids",
      "undisclosed_recipients_header",
      "header_from_format",
      "always_add_missing_headers",
      "enable_original_recipient",
      "delay_notice_recipient",
      "error_notice_recipient",
    ],
  },
  {
    why:
      "it tunes performance or internal timing; Postwarden's scheduler and daemons have their own",
    names: [
      "hash_queue_depth",
      "hash_queue_names",
      "in_flow_delay",
      "tcp_windowsize",
      "application_event_drain_time",
      "fork_attempts",
      "fork_delay",
      "trigger_timeout",
      "ipc_ttl",
      "service_throttle_time",
      "qmgr_clog_warn_time",
      "qmgr_daemon_timeout",
      "qmgr_ipc_timeout",
      "qmgr_fudge_factor",
      "qmgr_message_recipient_minimum",
      "transport_retry_time",
      "duplicate_filter_limit",
      "smtpd_history_flush_threshold",
      "smtp_per_request_deadline",
      "smtpd_delay_open_until_valid_rcpt",
      "smtp_connection_cache_destinations",
      "smtp_connection_cache_on_demand",
      "smtp_address_preference",
      "smtp_balance_inet_protocols",
      "smtp_randomize_addresses",
      "smtp_min_data_rate",
      "dns_ncache_ttl_fix_enable",
      "dnssec_probe",
      "queue_file_attribute_count_limit",
      "confirm_delay_cleared",
      "enable_threaded_bounces",
      "dont_remove",
      "fault_injection_code",
    ],
  },
  {
    why: "it names one of Postfix's internal services; Postwarden's services have fixed names",
    names: [
      "address_verify_service_name",
      "bounce_service_name",
      "cleanup_service_name",
      "connection_cache_service_name",
      "defer_service_name",
      "dnsblog_service_name",
      "error_service_name",
      "flush_service_name",
      "pickup_service_name",
      "proxymap_service_name",
      "proxywrite_service_name",
      "queue_service_name",
      "rewrite_service_name",
      "showq_service_name",
      "tlsmgr_service_name",
      "tlsproxy_service_name",
      "trace_service_name",
    ],
  },
  {
    why:
      "it only matters to a feature that is itself refused or unsupported (lookup tables, milters, " +
      "address verification, SASL, policy services, access maps, RBLs, local aliases and " +
      "commands, virtual delivery); that feature is reported on its own",
    names: [
      "smtpd_sasl_local_domain",
      "cyrus_sasl_config_path",
      "send_cyrus_sasl_authzid",
      "smtp_sasl_path",
      "smtp_sasl_auth_cache_name",
      "smtp_sasl_auth_cache_time",
      "smtp_send_dummy_mail_auth",
      "unverified_recipient_defer_code",
      "unverified_recipient_reject_code",
      "unverified_recipient_reject_reason",
      "unverified_recipient_tempfail_action",
      "unverified_sender_defer_code",
      "unverified_sender_reject_code",
      "unverified_sender_reject_reason",
      "unverified_sender_tempfail_action",
      "multi_recipient_bounce_reject_code",
      "plaintext_reject_code",
      "relay_clientcerts",
      "require_home_directory",
      "sun_mailtool_compatibility",
      "frozen_delivered_to",
      "empty_address_local_login_sender_maps_lookup_key",
    ],
  },
  {
    why: "Postwarden does not offer the feature it configures, and a client cannot rely on it " +
      "(SMTPUTF8 is not autodetected; MIME is not converted)",
    names: [
      "smtpd_authorized_verp_clients",
      "smtputf8_autodetect_classes",
      "detect_8bit_encoding_header",
      "disable_mime_input_processing",
      "disable_mime_output_conversion",
      "mime_boundary_length_limit",
      "mime_nesting_limit",
      "header_address_token_limit",
      "default_verp_delimiters",
      "verp_delimiter_filter",
      "disable_verp_bounces",
      "cleanup_replace_stray_cr_lf",
      "smtpd_noop_commands",
    ],
  },
  {
    why: "Postwarden has no fast flush service and so no per-site logs to purge or refresh: " +
      "postqueue -s reads the deferred queue instead",
    names: ["fast_flush_purge_time", "fast_flush_refresh_time"],
  },
  {
    why: "it only shapes how the SMTP client talks to a server, not where mail goes",
    names: [
      "smtp_always_send_ehlo",
      "smtp_never_send_ehlo",
      "smtp_line_length_limit",
      "smtp_pix_workarounds",
      "smtp_pix_workaround_maps",
      "smtp_pix_workaround_delay_time",
      "smtp_pix_workaround_threshold_time",
      "smtp_quote_rfc821_envelope",
      "smtp_skip_5xx_greeting",
      "smtp_skip_quit_response",
      "smtp_reply_filter",
      "smtp_defer_if_no_mx_address_found",
      "smtp_cname_overrides_servername",
      "smtp_discard_ehlo_keywords",
      "smtp_discard_ehlo_keyword_address_maps",
      "smtp_dns_reply_filter",
      "smtp_dns_resolver_options",
      "smtp_address_verify_target",
    ],
  },
  {
    why: "it only shapes how the LMTP client talks to a server or tunes its timing, " +
      "not where mail goes",
    names: [
      "lmtp_line_length_limit",
      "lmtp_pix_workarounds",
      "lmtp_pix_workaround_maps",
      "lmtp_pix_workaround_delay_time",
      "lmtp_pix_workaround_threshold_time",
      "lmtp_quote_rfc821_envelope",
      "lmtp_skip_quit_response",
      "lmtp_reply_filter",
      "lmtp_defer_if_no_mx_address_found",
      "lmtp_cname_overrides_servername",
      "lmtp_discard_lhlo_keywords",
      "lmtp_discard_lhlo_keyword_address_maps",
      "lmtp_dns_reply_filter",
      "lmtp_dns_resolver_options",
      "lmtp_address_verify_target",
      "lmtp_per_request_deadline",
      "lmtp_min_data_rate",
      "lmtp_connection_cache_destinations",
      "lmtp_connection_reuse_count_limit",
      "lmtp_address_preference",
      "lmtp_balance_inet_protocols",
      "lmtp_randomize_addresses",
      "lmtp_mx_address_limit",
      "lmtp_mx_session_limit",
      "lmtp_starttls_timeout",
      "lmtp_xforward_timeout",
      "lmtp_tls_loglevel",
      "lmtp_tls_note_starttls_offer",
      "lmtp_tls_session_cache_database",
      "lmtp_tls_session_cache_timeout",
    ],
  },
  {
    why: "smtpd never asks for a client certificate, and every setting that would use one is " +
      "refused (Deno's TLS library does not check that a client holds the certificate's key; " +
      "lib/tls/ccert.ts), so no client gets anything for a certificate",
    names: [
      "smtpd_tls_ask_ccert",
      "smtpd_tls_ccert_verifydepth",
      "smtpd_tls_CAfile",
      "smtpd_tls_CApath",
      "smtpd_tls_fingerprint_digest",
    ],
  },
  {
    why:
      "it tunes TLS in ways that cannot make it weaker than what Postwarden's smtpd offers (TLSv1.2+, AEAD ciphers), or tunes the smtp client's TLS without weakening what its level requires (no client certificate is presented, no session is resumed; the fingerprint level that would read the rest is refused)",
    names: [
      "smtpd_tls_dh1024_param_file",
      "smtpd_tls_dh512_param_file",
      "smtpd_tls_session_cache_database",
      "smtpd_tls_session_cache_timeout",
      "smtpd_tls_always_issue_session_ids",
      "smtp_tls_cert_file",
      "smtp_tls_key_file",
      "smtp_tls_chain_files",
      "smtp_tls_dcert_file",
      "smtp_tls_dkey_file",
      "smtp_tls_eccert_file",
      "smtp_tls_eckey_file",
      "smtp_tls_fingerprint_digest",
      "smtp_tls_fingerprint_cert_match",
      "smtp_tls_scert_verifydepth",
      "smtp_tls_servername",
      "smtp_tls_session_cache_database",
      "smtp_tls_session_cache_timeout",
      "smtp_tls_block_early_mail_reply",
      "tls_append_default_CA",
      "tls_config_file",
      "tls_config_name",
      "tls_daemon_random_bytes",
      "tls_disable_workarounds",
      "tls_eecdh_auto_curves",
      "tls_eecdh_strong_curve",
      "tls_eecdh_ultra_curve",
      "tls_fast_shutdown_enable",
      "tls_legacy_public_key_fingerprints",
      "tls_preempt_cipherlist",
      "tls_random_bytes",
      "tls_random_exchange_name",
      "tls_random_prng_update_period",
      "tls_random_reseed_period",
      "tls_random_source",
      "tls_server_sni_maps",
      "tls_session_ticket_cipher",
      "tls_ssl_options",
      "tls_wildcard_matches_multiple_labels",
    ],
  },
];

/** Entries harmless only for some values. */
const BY_VALUE: [string, Ignorable][] = [
  [
    "smtpd_tls_eecdh_grade",
    {
      why: 'smtpd\'s TLS library picks X25519, P-256 or P-384 itself, as with "auto"; ' +
        '"strong" (P-256) is no stronger, and "none" would only give up forward secrecy',
      accepts: oneOf("", "auto", "strong", "none"),
      acceptsText: '"auto", "strong" or "none"',
    },
  ],
  [
    "lmtp_tls_security_level",
    {
      why: 'the LMTP client has no TLS; "may" (opportunistic) promises no encryption to anyone, ' +
        "and Postfix itself turns it off for unix: servers",
      accepts: oneOf("", "none", "may"),
      acceptsText: '"may", "none" or empty',
    },
  ],
  ["lmtp_use_tls", { why: "it is the old name of lmtp_tls_security_level = may" }],
  [
    "smtp_tls_force_insecure_host_tlsa_lookup",
    {
      why: "TLSA records are looked up only for hosts whose address records are DNSSEC-signed",
      accepts: oneOf("no"),
      acceptsText: '"no"',
    },
  ],
  [
    "tls_dane_digests",
    {
      why: "TLSA records are matched with SHA-256 and SHA-512, Postfix's default",
      accepts: (v) =>
        v.toLowerCase().split(/[\s,]+/).filter(Boolean).sort().join(" ") ===
          "sha256 sha512",
      acceptsText: '"sha512 sha256"',
    },
  ],
  ["lmtp_enforce_tls", { why: "TLS is not enforced", accepts: oneOf("no"), acceptsText: '"no"' }],
];

/**
 * Prefixes of parameter families that only a Postfix program Postwarden
 * does not have reads (master.cf cannot run that program).
 */
const FAMILIES: [prefix: string, why: string][] = [
  ["tlsproxy_", "Postwarden has no tlsproxy"],
  ["qmqpd_", "Postwarden has no QMQP server"],
  ["dnsblog_", "Postwarden has no dnsblog"],
  ["address_verify_", "Postwarden has no verify service (reject_unverified_* is unsupported)"],
  ["milter_", "milters are refused on their own (smtpd_milters, non_smtpd_milters)"],
  ["connection_cache_", "Postwarden has no scache service"],
];

/**
 * Per-transport suffixes (`<transport>_<suffix>`, `default_<suffix>`) of
 * queue manager settings. Concurrency and recipient limits, feedback,
 * failed cohorts and the rate delays are implemented (qmgr reads them for
 * any transport); nqmgr's preemption knobs are harmless to ignore.
 */
const TRANSPORT_SUFFIXES: [suffix: string, support: "implemented" | "ignored" | "refused"][] = [
  ["destination_concurrency_limit", "implemented"],
  ["destination_recipient_limit", "implemented"],
  ["destination_concurrency_failed_cohort_limit", "implemented"],
  ["destination_concurrency_negative_feedback", "implemented"],
  ["destination_concurrency_positive_feedback", "implemented"],
  ["initial_destination_concurrency", "implemented"],
  ["delivery_slot_cost", "ignored"],
  ["delivery_slot_discount", "ignored"],
  ["delivery_slot_loan", "ignored"],
  ["extra_recipient_limit", "ignored"],
  ["minimum_delivery_slots", "ignored"],
  ["recipient_limit", "ignored"],
  ["recipient_refill_delay", "ignored"],
  ["recipient_refill_limit", "ignored"],
  // pipe(8) reads SERVICE_time_limit for its own service (daemons/pipe).
  ["time_limit", "implemented"],
  ["destination_rate_delay", "implemented"],
  ["transport_rate_delay", "implemented"],
];

const BY_NAME = new Map<string, Ignorable>([
  ...GROUPS.flatMap((g) => g.names.map((n): [string, Ignorable] => [n, { why: g.why }])),
  ...BY_VALUE,
]);

/** Every name the allow-list lists by name (a test checks none is in the parameter table). */
export function ignorableNames(): string[] {
  return [...BY_NAME.keys()];
}

/** How Postwarden treats a Postfix parameter that is not in its table. */
export type Classification =
  | { support: "implemented" }
  | { support: "ignored"; why: string; accepts?: (v: string) => boolean; acceptsText?: string }
  | { support: "refused"; why?: string };

/**
 * Classifies a parameter name that is not in the parameter table: on the
 * allow-list (by name, family or per-transport suffix), implemented per
 * transport by qmgr (`<transport>_destination_concurrency_limit`,
 * `_recipient_limit`, feedback, cohort limit, rate delays and
 * `<transport>_initial_destination_concurrency`), or refused.
 */
export function classify(name: string): Classification {
  const entry = BY_NAME.get(name);
  if (entry) return { support: "ignored", ...entry };
  for (const [prefix, why] of FAMILIES) {
    if (name.startsWith(prefix)) return { support: "ignored", why };
  }
  for (const [suffix, support] of TRANSPORT_SUFFIXES) {
    if (!name.endsWith(`_${suffix}`) || name === suffix) continue;
    if (support === "implemented") return { support };
    if (support === "ignored") {
      return {
        support,
        why: "it tunes nqmgr's job preemption, which Postwarden's scheduler replaces with " +
          "round-robin over messages",
      };
    }
    return { support, why: "Postwarden's queue manager does not implement it" };
  }
  return { support: "refused" };
}

/** True when `name` has the shape of a per-transport queue manager setting. */
export function isPerTransport(name: string): boolean {
  return TRANSPORT_SUFFIXES.some(([s]) => name.endsWith(`_${s}`) && name !== s);
}
