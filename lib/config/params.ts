/**
 * The one main.cf parameter table: every parameter Postwarden knows, with
 * its type, default, one line of documentation, the range Postfix accepts
 * and whether Postwarden implements it. `postconf -d`, validation, the
 * report of unimplemented settings (support.ts) and documentation are
 * derived from it.
 *
 * Defaults are Postfix 3.7's, exactly as `postconf -d NAME` prints them
 * (Debian build), including Postfix's `${{$compatibility_level} <level {2} ?
 * ...}` expressions, except where a comment marks a Postwarden default.
 * Four defaults are computed at run time rather than stored here: myhostname
 * (from the host name), mydomain (from myhostname), mynetworks (from
 * mynetworks_style, loopback only) and config_directory (the directory the
 * configuration was read from); their entries hold what Postfix prints on
 * the reference machine and serve as documentation only.
 *
 * `min`/`max` are the limits of Postfix's CONFIG_INT_TABLE,
 * CONFIG_TIME_TABLE and CONFIG_LONG_TABLE entries for the parameter (0 there
 * means "no limit" and is left out here); time limits are in seconds.
 *
 * This file does no parsing; see config.ts for how values are read.
 *
 * @module
 */

/** How a parameter value is interpreted by the typed accessors of Config. */
export type ParamType = "string" | "int" | "time" | "size" | "bool" | "list";

/**
 * What Postwarden does with a parameter:
 * - `implemented`: honoured with Postfix's meaning (where only some values
 *   are, support.ts checks the value);
 * - `ignored`: not implemented; ignoring it can neither let mail through
 *   that the admin meant to stop nor send mail elsewhere. A value other than
 *   the one Postwarden behaves as is a warning;
 * - `refused`: not implemented, and ignoring it could. A value other than
 *   the one Postwarden behaves as is an error: Postwarden does not start.
 */
export type Support = "implemented" | "ignored" | "refused";

/** One row of the parameter table. */
export interface ParamSpec {
  /** Parameter name as in main.cf. */
  name: string;
  /** Value type; selects the accessor that validates it. */
  type: ParamType;
  /** Unexpanded default, as `postconf -d` prints it. */
  default: string;
  /** One line of documentation. */
  doc: string;
  /** For type "time": the unit of a bare number (Postfix's per-parameter default unit). */
  timeUnit?: "s" | "m" | "h" | "d" | "w";
  /** Smallest accepted value (int, size; time in seconds), as Postfix. */
  min?: number;
  /** Largest accepted value (int, size; time in seconds), as Postfix. */
  max?: number;
  /** Whether Postwarden implements it. */
  support: Support;
  /**
   * For `ignored` and `refused`: the expanded value whose meaning is what
   * Postwarden does anyway, when that is not the default (e.g. "" for
   * local_recipient_maps: every local name is accepted). @default the
   * expanded default
   */
  behavesAs?: string;
  /** For `ignored` and `refused`: more values that are not reported (e.g. empty). */
  alsoFine?: string[];
  /** For `ignored` and `refused`: what Postwarden does instead and what to set. */
  note?: string;
  /**
   * Read unexpanded, as Postfix's raw parameters: a template whose `$names`
   * the program fills in at use (default_rbl_reply); `postconf -x` shows it
   * as is.
   */
  raw?: boolean;
}

const COMPAT_LT = (level: string, a: string, b: string) =>
  `\${{$compatibility_level} <level {${level}} ? {${a}} : {${b}}}`;

const ROWS: ParamSpec[] = [
  // Identity and addressing
  {
    name: "myhostname",
    type: "string",
    default: "vm.localdomain",
    doc: "Internet host name of this mail system (default: the host name; computed at run time).",
    support: "implemented",
  },
  {
    name: "mydomain",
    type: "string",
    default: "localdomain",
    doc:
      "Internet domain name of this mail system (default: myhostname minus its first label; computed at run time).",
    support: "implemented",
  },
  {
    name: "myorigin",
    type: "string",
    default: "$myhostname",
    doc:
      'Domain appended to locally-posted mail addresses; a value starting with "/" names a file whose first line is used.',
    support: "implemented",
  },
  {
    name: "mydestination",
    type: "list",
    default: "$myhostname, localhost.$mydomain, localhost",
    doc: "Domains this machine delivers locally.",
    support: "implemented",
  },
  // Postwarden: when not set, computed from mynetworks_style for the
  // loopback interface only (Postfix adds the networks of every interface).
  {
    name: "mynetworks",
    type: "list",
    default: "127.0.0.0/8 192.0.2.0/24 [::1]/128 [fd00::]/64 [fe80::]/64",
    doc:
      "Trusted remote SMTP clients (default: Postwarden trusts the loopback network per mynetworks_style; computed at run time).",
    support: "implemented",
  },
  {
    name: "mynetworks_style",
    type: "string",
    default: COMPAT_LT("2", "subnet", "host"),
    doc: "How to compute mynetworks when it is not set: host, subnet or class.",
    support: "implemented",
  },
  {
    name: "inet_interfaces",
    type: "list",
    default: "all",
    doc: "Network interface addresses this mail system receives mail on.",
    support: "implemented",
  },
  {
    name: "inet_protocols",
    type: "list",
    default: "all",
    doc: "Internet protocols to use: ipv4, ipv6 or all.",
    support: "implemented",
  },
  {
    name: "relayhost",
    type: "string",
    default: "",
    doc: "Next-hop destination of non-local mail; overrides the recipient domain.",
    support: "implemented",
  },
  {
    name: "relay_domains",
    type: "list",
    default: COMPAT_LT("2", "$mydestination", ""),
    doc:
      "Destination domains (and subdomains) this system relays mail to (reject_unauth_destination).",
    support: "implemented",
  },
  {
    name: "append_at_myorigin",
    type: "bool",
    default: "yes",
    doc: "Append @$myorigin to unqualified addresses (cleanup).",
    support: "implemented",
  },
  {
    name: "recipient_delimiter",
    type: "string",
    default: "",
    doc: "Separators between a user name and an address extension.",
    support: "implemented",
  },
  {
    name: "empty_address_recipient",
    type: "string",
    default: "MAILER-DAEMON",
    doc: "Recipient of mail addressed to the null address.",
    support: "implemented",
  },
  {
    name: "compatibility_level",
    type: "string",
    default: "0",
    doc: "Backwards-compatibility level; selects several defaults.",
    support: "implemented",
  },
  {
    name: "stress",
    type: "string",
    default: "",
    doc:
      "Set to yes by master when the server is overloaded (not for main.cf); read by the smtpd_timeout and smtpd_hard_error_limit defaults.",
    support: "implemented",
  },

  // Address rewriting and resolution (trivial-rewrite's role: lib/address, lib/resolve)
  {
    name: "append_dot_mydomain",
    type: "bool",
    default: COMPAT_LT("1", "yes", "no"),
    doc: "Append .$mydomain to addresses without domain part dots (local rewriting).",
    support: "implemented",
  },
  {
    name: "swap_bangpath",
    type: "bool",
    default: "yes",
    doc: 'Rewrite "site!user" to "user@site" (local rewriting and resolution).',
    support: "implemented",
  },
  {
    name: "allow_percent_hack",
    type: "bool",
    default: "yes",
    doc: 'Rewrite "user%domain" to "user@domain" (local rewriting and resolution).',
    support: "implemented",
  },
  {
    name: "resolve_null_domain",
    type: "bool",
    default: "no",
    doc: 'Resolve "user@" as "user" instead of rejecting it as bad syntax.',
    support: "implemented",
  },
  {
    name: "resolve_numeric_domain",
    type: "bool",
    default: "no",
    doc: 'Resolve "user@ipaddress" as "user@[ipaddress]" instead of rejecting it.',
    support: "implemented",
  },
  {
    name: "allow_untrusted_routing",
    type: "bool",
    default: "no",
    doc:
      'Relay for unauthorized clients to addresses with "%", "!" or "@" in the local part of a domain of ours.',
    support: "implemented",
  },
  {
    name: "allow_min_user",
    type: "bool",
    default: "no",
    doc: 'Accept recipients that start with "-" (else bounced as bad syntax).',
    support: "implemented",
  },
  {
    name: "proxy_interfaces",
    type: "list",
    default: "",
    doc: "Addresses mail arrives on through a proxy or NAT: address literals of them are local.",
    support: "implemented",
  },
  {
    name: "virtual_alias_domains",
    type: "list",
    default: "$virtual_alias_maps",
    doc:
      'Domains whose recipients all need a virtual alias; others bounce ("User unknown in virtual alias table").',
    support: "implemented",
  },
  {
    name: "virtual_mailbox_domains",
    type: "list",
    default: "$virtual_mailbox_maps",
    doc: "Domains delivered by virtual_transport.",
    support: "implemented",
  },
  {
    name: "virtual_transport",
    type: "string",
    default: "virtual",
    doc: "Transport for domains in virtual_mailbox_domains.",
    support: "implemented",
  },
  {
    name: "relay_transport",
    type: "string",
    default: "relay",
    doc: "Transport for domains in relay_domains.",
    support: "implemented",
  },
  {
    name: "transport_maps",
    type: "list",
    default: "",
    doc: "Tables mapping recipients and domains to transport:nexthop (transport(5)).",
    support: "implemented",
  },
  {
    name: "sender_dependent_relayhost_maps",
    type: "list",
    default: "",
    doc: "Tables mapping a sender to the relayhost for its remote mail.",
    support: "implemented",
  },
  {
    name: "empty_address_relayhost_maps_lookup_key",
    type: "string",
    default: "<>",
    doc: "sender_dependent_relayhost_maps key for the null sender.",
    support: "implemented",
  },
  {
    name: "sender_dependent_default_transport_maps",
    type: "list",
    default: "",
    doc: "Tables mapping a sender to the default_transport for its mail.",
    support: "implemented",
  },
  {
    name: "empty_address_default_transport_maps_lookup_key",
    type: "string",
    default: "<>",
    doc: "sender_dependent_default_transport_maps key for the null sender.",
    support: "implemented",
  },
  {
    name: "relocated_maps",
    type: "list",
    default: "",
    doc: 'Tables of moved users: their mail bounces with "5.1.6 User has moved to ...".',
    support: "implemented",
  },
  {
    name: "show_user_unknown_table_name",
    type: "bool",
    default: "yes",
    doc: 'Name the table in "User unknown" bounces and replies.',
    support: "implemented",
  },

  // Directories and ownership
  {
    name: "config_directory",
    type: "string",
    default: "/etc/postfix",
    doc:
      "Directory holding main.cf and master.cf (default: the directory read; computed at run time).",
    support: "implemented",
  },
  {
    name: "queue_directory",
    type: "string",
    default: "/var/spool/postfix",
    doc: "Location of the mail queue.",
    support: "implemented",
  },
  {
    name: "command_directory",
    type: "string",
    default: "/usr/sbin",
    doc: "Location of the administrative commands.",
    support: "ignored",
    note: "Postwarden's commands run from its checkout (deno task)",
  },
  {
    name: "daemon_directory",
    type: "string",
    default: "/usr/lib/postfix/sbin",
    doc: "Location of the daemon programs.",
    support: "ignored",
    note: "Postwarden's daemons run from its checkout (daemons/)",
  },
  {
    name: "data_directory",
    type: "string",
    default: "/var/lib/postfix",
    doc: "Directory with writable data files (caches, random seed).",
    support: "ignored",
    note: "Postwarden keeps no data files there",
  },
  {
    name: "process_id_directory",
    type: "string",
    default: "pid",
    doc: "Lock file directory, relative to queue_directory.",
    support: "ignored",
    note: "Postwarden's pid files are always in $queue_directory/pid",
  },
  {
    name: "mail_owner",
    type: "string",
    default: "postfix",
    doc: "Owner of the queue and most daemon processes.",
    support: "implemented",
  },
  {
    name: "setgid_group",
    type: "string",
    default: "postdrop",
    doc: "Group of the mail submission and queue management commands.",
    support: "ignored",
    note: "Postwarden has no set-gid programs",
  },
  {
    name: "mail_spool_directory",
    type: "string",
    default: "/var/mail",
    doc: "Directory of UNIX-style mailboxes.",
    support: "implemented",
  },
  {
    name: "home_mailbox",
    type: "string",
    default: "",
    doc: "Mailbox file or Maildir/ relative to the user's home directory (passwd).",
    support: "implemented",
  },

  // Limits
  {
    name: "message_size_limit",
    type: "size",
    default: "10240000",
    doc: "Maximal size in bytes of a message, including envelope information.",
    support: "implemented",
  },
  {
    name: "header_size_limit",
    type: "size",
    default: "102400",
    doc: "Maximal amount of memory in bytes for storing a message header.",
    min: 1,
    support: "implemented",
  },
  {
    name: "hopcount_limit",
    type: "int",
    default: "50",
    doc: "Maximal number of Received: headers before a message is bounced.",
    min: 1,
    support: "implemented",
  },
  {
    name: "line_length_limit",
    type: "int",
    default: "2048",
    doc: "Maximal length of a line before it is broken up.",
    min: 512,
    support: "implemented",
  },
  {
    name: "queue_minfree",
    type: "size",
    default: "0",
    doc: "Minimal free space in bytes in the queue file system to accept mail.",
    support: "refused",
    note:
      "Postwarden cannot measure free space and would accept mail on a full disk; remove the setting",
  },
  {
    name: "default_destination_concurrency_limit",
    type: "int",
    default: "20",
    doc: "Default maximal number of parallel deliveries to the same destination.",
    support: "implemented",
  },
  {
    name: "default_destination_recipient_limit",
    type: "int",
    default: "50",
    doc: "Default maximal number of recipients per delivery.",
    support: "implemented",
  },
  {
    name: "default_process_limit",
    type: "int",
    default: "100",
    doc: "Default maximal number of processes of one service.",
    min: 1,
    support: "implemented",
  },
  {
    name: "initial_destination_concurrency",
    type: "int",
    default: "5",
    doc: "Initial per-destination concurrency level for parallel delivery.",
    min: 1,
    support: "implemented",
  },
  {
    name: "max_use",
    type: "int",
    default: "100",
    doc: "Maximal number of requests a daemon process serves before it exits.",
    min: 1,
    support: "ignored",
    note: "Postwarden's daemons serve until they are stopped",
  },

  // Queue scheduling
  {
    name: "minimal_backoff_time",
    type: "time",
    default: "300s",
    doc: "Minimal time between attempts to deliver a deferred message.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "maximal_backoff_time",
    type: "time",
    default: "4000s",
    doc: "Maximal time between attempts to deliver a deferred message.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "queue_run_delay",
    type: "time",
    default: "300s",
    doc: "Time between deferred queue scans by the queue manager.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "maximal_queue_lifetime",
    type: "time",
    default: "5d",
    doc: "Time a message may stay in the queue before it is bounced.",
    timeUnit: "d",
    max: 8640000,
    support: "implemented",
  },
  {
    name: "bounce_queue_lifetime",
    type: "time",
    default: "5d",
    doc: "Time a bounce message may stay in the queue before it is discarded.",
    timeUnit: "d",
    max: 8640000,
    support: "implemented",
  },
  {
    name: "delay_logging_resolution_limit",
    type: "int",
    default: "2",
    doc: "Most digits after the decimal point in the delay= and delays= values of delivery logs.",
    min: 0,
    max: 6,
    support: "implemented",
  },
  {
    name: "delay_warning_time",
    type: "time",
    default: "0h",
    doc: "Time after which the sender gets a delay notice (0: never).",
    timeUnit: "h",
    support: "implemented",
  },

  // SMTP server
  {
    name: "smtpd_restriction_classes",
    type: "list",
    default: "",
    doc: "Names of parameters that each hold a list of restrictions, usable as one restriction.",
    support: "implemented",
  },
  {
    name: "smtpd_null_access_lookup_key",
    type: "string",
    default: "<>",
    doc: "The key check_sender_access looks up for the null sender.",
    support: "implemented",
  },
  {
    name: "access_map_reject_code",
    type: "int",
    default: "554",
    doc: "Reply code when an access table says REJECT.",
    support: "implemented",
  },
  {
    name: "access_map_defer_code",
    type: "int",
    default: "450",
    doc: "Reply code when an access table says DEFER, DEFER_IF_REJECT or DEFER_IF_PERMIT.",
    support: "implemented",
  },
  {
    name: "parent_domain_matches_subdomains",
    type: "list",
    default:
      "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps",
    doc: 'Uses in which a domain also matches its subdomains (else only ".domain" entries do).',
    support: "implemented",
    note:
      "honoured for smtpd_access_maps and the address resolver's domain lists and tables; host names in mynetworks always match subdomains, so leaving mynetworks out stops the start when mynetworks names hosts",
  },
  {
    name: "smtpd_banner",
    type: "string",
    default: "$myhostname ESMTP $mail_name",
    doc: "Text after the 220 code in the SMTP greeting.",
    support: "implemented",
  },
  {
    name: "smtpd_delay_reject",
    type: "bool",
    default: "yes",
    doc:
      "Evaluate client, helo and sender restrictions at RCPT TO instead of at connect, HELO and MAIL.",
    support: "implemented",
  },
  {
    name: "smtpd_client_restrictions",
    type: "list",
    default: "",
    doc: "Restrictions on the client address and name (at connect, or RCPT with delay).",
    support: "implemented",
  },
  {
    name: "smtpd_helo_restrictions",
    type: "list",
    default: "",
    doc: "Restrictions on the HELO/EHLO name (at HELO, or RCPT with delay).",
    support: "implemented",
  },
  {
    name: "smtpd_sender_restrictions",
    type: "list",
    default: "",
    doc: "Restrictions on the MAIL FROM address (at MAIL, or RCPT with delay).",
    support: "implemented",
  },
  {
    name: "smtpd_relay_restrictions",
    type: "list",
    default: COMPAT_LT(
      "1",
      "",
      "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
    ),
    doc: "Mail relay restrictions applied to RCPT TO.",
    support: "implemented",
  },
  {
    name: "smtpd_recipient_restrictions",
    type: "list",
    default: "",
    doc: "Restrictions applied to RCPT TO.",
    support: "implemented",
  },
  {
    name: "smtpd_relay_before_recipient_restrictions",
    type: "bool",
    default: COMPAT_LT("3.6", "no", "yes"),
    doc: "Evaluate smtpd_relay_restrictions before smtpd_recipient_restrictions.",
    support: "implemented",
  },
  {
    name: "smtpd_data_restrictions",
    type: "list",
    default: "",
    doc: "Restrictions applied to the DATA command.",
    support: "implemented",
  },
  {
    name: "reject_code",
    type: "int",
    default: "554",
    doc: "Reply code of the reject restriction.",
    support: "implemented",
  },
  {
    name: "defer_code",
    type: "int",
    default: "450",
    doc: "Reply code of the defer restriction.",
    support: "implemented",
  },
  {
    name: "relay_domains_reject_code",
    type: "int",
    default: "554",
    doc: "Reply code of reject_unauth_destination.",
    support: "implemented",
  },
  {
    name: "non_fqdn_reject_code",
    type: "int",
    default: "504",
    doc: "Reply code of the reject_non_fqdn_* restrictions.",
    support: "implemented",
  },
  {
    name: "invalid_hostname_reject_code",
    type: "int",
    default: "501",
    doc: "Reply code of reject_invalid_helo_hostname.",
    support: "implemented",
  },
  {
    name: "smtpd_timeout",
    type: "time",
    default: "${stress?{10}:{300}}s",
    doc: "Time limit for sending a response to and receiving a request from a client.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtpd_recipient_limit",
    type: "int",
    default: "1000",
    doc: "Maximal number of recipients accepted per message.",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtpd_recipient_overshoot_limit",
    type: "int",
    default: "1000",
    doc:
      "Recipients over smtpd_recipient_limit answered 452 before each further one counts as an error.",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtpd_hard_error_limit",
    type: "int",
    default: "${stress?{1}:{20}}",
    doc: "Maximal number of errors before the server disconnects.",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtpd_soft_error_limit",
    type: "int",
    default: "10",
    doc: "Number of errors after which the server delays each response.",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtpd_error_sleep_time",
    type: "time",
    default: "1s",
    doc: "Delay before replying after soft errors.",
    timeUnit: "s",
    support: "implemented",
  },
  // Postwarden: Postfix 3.9's default. Postfix 3.7.10+ backports this
  // parameter with default "no"; 3.7.0 through 3.7.9 do not know it.
  // Values: normalize (alias yes), reject, no (support.ts checks the value).
  {
    name: "smtpd_forbid_bare_newline",
    type: "string",
    default: "normalize",
    doc: "Handling of a bare <LF> in SMTP input: normalize (or yes), reject or no.",
    support: "implemented",
  },
  {
    name: "disable_vrfy_command",
    type: "bool",
    default: "no",
    doc: "Disable the SMTP VRFY command.",
    support: "implemented",
  },
  {
    name: "smtpd_helo_required",
    type: "bool",
    default: "no",
    doc: "Require HELO or EHLO before MAIL.",
    support: "implemented",
  },
  {
    name: "smtpd_peername_lookup",
    type: "bool",
    default: "yes",
    doc: 'Look up the client\'s name (verified PTR); otherwise it is "unknown".',
    support: "implemented",
  },

  // smtpd: recipient validation (daemons/smtpd/recipients.ts)
  {
    name: "smtpd_reject_unlisted_recipient",
    type: "bool",
    default: "yes",
    doc: "Reject unknown recipients at RCPT even without reject_unlisted_recipient.",
    support: "implemented",
  },
  {
    name: "smtpd_reject_unlisted_sender",
    type: "bool",
    default: "no",
    doc: "Reject unknown sender addresses in our domains at MAIL.",
    support: "implemented",
  },
  {
    name: "unknown_local_recipient_reject_code",
    type: "int",
    default: "550",
    doc: "Reply code for an unknown user in a local domain.",
    support: "implemented",
  },
  {
    name: "unknown_virtual_alias_reject_code",
    type: "int",
    default: "550",
    doc: "Reply code for an unknown user in a virtual alias domain.",
    support: "implemented",
  },
  {
    name: "unknown_virtual_mailbox_reject_code",
    type: "int",
    default: "550",
    doc: "Reply code for an unknown user in a virtual mailbox domain.",
    support: "implemented",
  },
  {
    name: "unknown_relay_recipient_reject_code",
    type: "int",
    default: "550",
    doc: "Reply code for an unknown user in a relay domain.",
    support: "implemented",
  },
  {
    name: "relay_recipient_maps",
    type: "list",
    default: "",
    doc: "Valid recipients in relay_domains (empty: every address is accepted).",
    support: "implemented",
  },
  {
    name: "virtual_mailbox_maps",
    type: "list",
    default: "",
    doc:
      'Recipients in virtual_mailbox_domains and their mailboxes under virtual_mailbox_base (ending in "/": Maildir).',
    support: "implemented",
  },

  // SMTP client
  {
    name: "smtp_connect_timeout",
    type: "time",
    default: "30s",
    doc: "Time limit for completing a TCP connection.",
    timeUnit: "s",
    support: "implemented",
  },
  {
    name: "smtp_helo_timeout",
    type: "time",
    default: "300s",
    doc: "Time limit for sending HELO/EHLO and receiving the greeting and response.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtp_mail_timeout",
    type: "time",
    default: "300s",
    doc: "Time limit for sending MAIL FROM and receiving the response.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtp_rcpt_timeout",
    type: "time",
    default: "300s",
    doc: "Time limit for sending RCPT TO and receiving the response.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtp_data_init_timeout",
    type: "time",
    default: "120s",
    doc: "Time limit for sending DATA and receiving the response.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtp_data_xfer_timeout",
    type: "time",
    default: "180s",
    doc: "Time limit for sending the message content.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtp_data_done_timeout",
    type: "time",
    default: "600s",
    doc: "Time limit for sending the final '.' and receiving the response.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtp_quit_timeout",
    type: "time",
    default: "300s",
    doc: "Time limit for sending QUIT and receiving the response.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtp_helo_name",
    type: "string",
    default: "$myhostname",
    doc: "Host name sent in HELO/EHLO.",
    support: "implemented",
  },
  {
    name: "smtp_connection_cache_time_limit",
    type: "time",
    default: "2s",
    doc: "Time an unused cached SMTP connection is kept open.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtp_connection_reuse_time_limit",
    type: "time",
    default: "300s",
    doc: "Time during which a cached SMTP connection may be reused.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },

  // Local delivery and aliases
  {
    name: "local_recipient_maps",
    type: "list",
    default: "proxy:unix:passwd.byname $alias_maps",
    doc:
      "Lookup tables with all valid local recipients (empty: every local name is accepted by smtpd).",
    support: "implemented",
  },
  {
    name: "alias_maps",
    type: "list",
    default: "hash:/etc/aliases, nis:mail.aliases",
    doc: "Alias databases used for local delivery.",
    support: "implemented",
  },
  {
    name: "allow_mail_to_commands",
    type: "list",
    default: "alias, forward",
    doc: "Expansion classes (alias, forward, include) allowed to name |command.",
    support: "implemented",
  },
  {
    name: "allow_mail_to_files",
    type: "list",
    default: "alias, forward",
    doc: "Expansion classes (alias, forward, include) allowed to name /file.",
    support: "implemented",
  },
  {
    name: "owner_request_special",
    type: "bool",
    default: "yes",
    doc:
      'An owner-NAME alias makes owner-NAME the sender of mail expanded from alias NAME (and owner-* / *-request are never split at a "-" delimiter).',
    support: "implemented",
  },
  {
    name: "expand_owner_alias",
    type: "bool",
    default: "no",
    doc: "Use the value of the owner-NAME alias, not owner-NAME itself, as the sender.",
    support: "implemented",
  },
  {
    name: "reset_owner_alias",
    type: "bool",
    default: "no",
    doc:
      "Forget the outer alias's owner- sender when expanding a nested alias that has no owner- alias of its own.",
    support: "implemented",
  },
  {
    name: "alias_database",
    type: "list",
    default: "hash:/etc/aliases",
    doc: "Alias databases built by newaliases.",
    support: "implemented",
  },

  // Transports
  {
    name: "default_transport",
    type: "string",
    default: "smtp",
    doc: "Default transport for domains that are not otherwise matched.",
    support: "implemented",
  },
  {
    name: "local_transport",
    type: "string",
    default: "local:$myhostname",
    doc: "Transport for domains in mydestination.",
    support: "implemented",
  },

  // cleanup: canonical maps, masquerading, virtual alias expansion, content checks, BCC
  {
    name: "canonical_maps",
    type: "list",
    default: "",
    doc:
      "Address mapping tables for envelope and header addresses of every class in canonical_classes.",
    support: "implemented",
  },
  {
    name: "sender_canonical_maps",
    type: "list",
    default: "",
    doc:
      "Address mapping tables for sender addresses (sender_canonical_classes), before canonical_maps.",
    support: "implemented",
  },
  {
    name: "recipient_canonical_maps",
    type: "list",
    default: "",
    doc:
      "Address mapping tables for recipient addresses (recipient_canonical_classes), before canonical_maps.",
    support: "implemented",
  },
  {
    name: "canonical_classes",
    type: "list",
    default: "envelope_sender, envelope_recipient, header_sender, header_recipient",
    doc: "Address classes canonical_maps applies to.",
    support: "implemented",
  },
  {
    name: "sender_canonical_classes",
    type: "list",
    default: "envelope_sender, header_sender",
    doc: "Address classes sender_canonical_maps applies to.",
    support: "implemented",
  },
  {
    name: "recipient_canonical_classes",
    type: "list",
    default: "envelope_recipient, header_recipient",
    doc: "Address classes recipient_canonical_maps applies to.",
    support: "implemented",
  },
  {
    name: "masquerade_domains",
    type: "list",
    default: "",
    doc: "Domains whose subdomains are stripped from addresses (a leading ! excludes one).",
    support: "implemented",
  },
  {
    name: "masquerade_exceptions",
    type: "list",
    default: "",
    doc: "User names (local parts) that are never masqueraded.",
    support: "implemented",
  },
  {
    name: "masquerade_classes",
    type: "list",
    default: "envelope_sender, header_sender, header_recipient",
    doc: "Address classes masquerade_domains applies to.",
    support: "implemented",
  },
  {
    name: "propagate_unmatched_extensions",
    type: "list",
    default: "canonical, virtual",
    doc: "Lookup classes that carry an unmatched address extension over to the result.",
    support: "implemented",
  },
  {
    name: "virtual_alias_maps",
    type: "list",
    default: "$virtual_maps",
    doc: "Tables that expand recipient addresses to one or more addresses (recursively).",
    support: "implemented",
  },
  {
    name: "virtual_alias_expansion_limit",
    type: "int",
    default: "1000",
    doc: "Most addresses one original recipient may expand to through virtual_alias_maps.",
    min: 1,
    support: "implemented",
  },
  {
    name: "virtual_alias_recursion_limit",
    type: "int",
    default: "1000",
    doc: "Deepest nesting of virtual_alias_maps expansion.",
    min: 1,
    support: "implemented",
  },
  {
    name: "virtual_alias_address_length_limit",
    type: "int",
    default: "1000",
    doc: "Longest address a virtual_alias_maps result may hold.",
    min: 1,
    support: "implemented",
  },
  {
    name: "header_checks",
    type: "list",
    default: "",
    doc: "Pattern tables for primary message header lines (cleanup).",
    support: "implemented",
  },
  {
    name: "mime_header_checks",
    type: "list",
    default: "$header_checks",
    doc: "Pattern tables for MIME headers (Content-*, MIME-Version), in any part.",
    support: "implemented",
  },
  {
    name: "nested_header_checks",
    type: "list",
    default: "$header_checks",
    doc: "Pattern tables for the headers of attached messages (message/rfc822).",
    support: "implemented",
  },
  {
    name: "body_checks",
    type: "list",
    default: "",
    doc: "Pattern tables for message body lines (cleanup).",
    support: "implemented",
  },
  {
    name: "body_checks_size_limit",
    type: "int",
    default: "51200",
    doc: "Body bytes per message part subjected to body_checks.",
    support: "implemented",
  },
  {
    name: "always_bcc",
    type: "string",
    default: "",
    doc: "Address that receives a blind copy of every message cleanup accepts.",
    support: "implemented",
  },
  {
    name: "sender_bcc_maps",
    type: "list",
    default: "",
    doc: "Tables giving a blind-copy recipient per envelope sender.",
    support: "implemented",
  },
  {
    name: "recipient_bcc_maps",
    type: "list",
    default: "",
    doc: "Tables giving a blind-copy recipient per envelope recipient.",
    support: "implemented",
  },

  // Notification
  {
    name: "double_bounce_sender",
    type: "string",
    default: "double-bounce",
    doc: "Sender address of postmaster notifications.",
    support: "implemented",
  },
  {
    name: "bounce_notice_recipient",
    type: "string",
    default: "postmaster",
    doc: "Recipient of postmaster notices about bounced mail.",
    support: "implemented",
  },
  {
    name: "2bounce_notice_recipient",
    type: "string",
    default: "postmaster",
    doc: "Recipient of undeliverable mail that cannot be returned to the sender.",
    support: "implemented",
  },
  {
    name: "notify_classes",
    type: "list",
    default: "resource, software",
    doc: "Error classes reported to the postmaster.",
    support: "implemented",
  },
  {
    name: "soft_bounce",
    type: "bool",
    default: "no",
    doc: "Safety net: keep mail queued instead of bouncing it; 5XX rejects become 4XX.",
    support: "implemented",
  },

  // Logging and identity strings
  {
    name: "maillog_file",
    type: "string",
    default: "",
    doc: "File master writes the log to (empty: syslog through /dev/log, as Postfix).",
    support: "implemented",
  },
  {
    name: "import_environment",
    type: "list",
    default:
      "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME",
    doc: "Environment variables master passes on to the daemons (name or name=value).",
    support: "implemented",
  },
  // Read-only, as in Postfix: master sets them for each daemon ($service_name in -o values).
  {
    name: "service_name",
    type: "string",
    default: "",
    doc: "The master.cf service name of a daemon (set by master; read-only).",
    support: "implemented",
  },
  {
    name: "process_name",
    type: "string",
    default: "",
    doc: "The name of the running program (for a daemon, set by master; read-only).",
    support: "implemented",
  },
  // Postwarden: Postfix's default is ${multi_instance_name?{$multi_instance_name}:{postfix}}.
  {
    name: "syslog_name",
    type: "string",
    default: "postwarden",
    doc: "Program name prefix of log lines.",
    support: "implemented",
  },
  // Postwarden: Postfix's default is "Postfix".
  {
    name: "mail_name",
    type: "string",
    default: "Postwarden",
    doc: "Mail system name in the SMTP greeting and in Received: headers.",
    support: "implemented",
  },
  // Postwarden: our own version (Postfix prints its own). Behaviour follows Postfix 3.7.
  {
    name: "mail_version",
    type: "string",
    default: "0.1.0",
    doc: "Version of Postwarden (read-only).",
    support: "implemented",
  },

  // Lookup tables (lib/maps)
  {
    name: "default_database_type",
    type: "string",
    default: "hash",
    doc: "Table type postmap, postalias and newaliases use for a file named without a type.",
    support: "implemented",
  },

  // Process management and IPC
  {
    name: "ipc_timeout",
    type: "time",
    default: "3600s",
    doc: "Time limit for sending or receiving information over an internal channel.",
    timeUnit: "s",
    min: 1,
    support: "ignored",
    note: "Postwarden's internal channels use their own fixed timeouts",
  },
  {
    name: "ipc_idle",
    type: "time",
    default: "5s",
    doc: "Time after which a client closes an idle internal connection.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "daemon_timeout",
    type: "time",
    default: "18000s",
    doc: "Time limit for a daemon to handle one request.",
    timeUnit: "s",
    min: 1,
    support: "ignored",
    note: "Postwarden has no per-request watchdog",
  },
  {
    name: "max_idle",
    type: "time",
    default: "100s",
    doc: "Time a daemon process waits for the next request before it exits.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
    note: "applies to the daemons master starts on demand (delivery agents, bounce, anvil; " +
      "lib/service/wake.ts); the others run until master stops them",
  },
  {
    name: "qmgr_message_active_limit",
    type: "int",
    default: "20000",
    doc: "Maximal number of messages in the active queue.",
    min: 1,
    support: "implemented",
  },
  // Postwarden: Postfix requires at least 1; Postwarden's bounce takes 0 as
  // "no limit" (daemons/bounce), so 0 stays accepted.
  {
    name: "bounce_size_limit",
    type: "int",
    default: "50000",
    doc: "Maximal amount of original message text in a DSN (0: no limit).",
    support: "implemented",
  },
  {
    name: "bounce_template_file",
    type: "string",
    default: "",
    doc:
      "Template file for the header values and text of delivery status notifications (bounce(5)); " +
      "empty: the built-in templates. Read with the configuration; a bad template stops the start.",
    support: "implemented",
  },
  // Read by qmgr as <transport>_destination_*_limit for the local transport.
  {
    name: "local_destination_concurrency_limit",
    type: "int",
    default: "2",
    doc: "Maximal number of parallel deliveries to the same local recipient.",
    support: "implemented",
  },
  {
    name: "local_destination_recipient_limit",
    type: "int",
    default: "1",
    doc: "Maximal number of recipients per local delivery request.",
    support: "implemented",
  },

  // issue 8 tls: rows for this part go here.
  // Server-side TLS in smtpd (lib/tls/policy.ts reads them; master reads the key files).
  {
    name: "smtpd_tls_security_level",
    type: "string",
    default: "",
    doc:
      "SMTP server TLS level: none, may (offer STARTTLS) or encrypt (require it); empty: from smtpd_use_tls/smtpd_enforce_tls.",
    support: "implemented",
  },
  {
    name: "smtpd_use_tls",
    type: "bool",
    default: "no",
    doc: "Obsolete: offer STARTTLS (smtpd_tls_security_level = may) when the level is empty.",
    support: "implemented",
  },
  {
    name: "smtpd_enforce_tls",
    type: "bool",
    default: "no",
    doc: "Obsolete: require STARTTLS (smtpd_tls_security_level = encrypt) when the level is empty.",
    support: "implemented",
  },
  {
    name: "smtpd_tls_wrappermode",
    type: "bool",
    default: "no",
    doc: 'TLS from the first byte (port 465, "submissions"), instead of STARTTLS.',
    support: "implemented",
  },
  {
    name: "smtpd_tls_cert_file",
    type: "string",
    default: "",
    doc: "PEM file with the server certificate (and its chain); read by master at start.",
    support: "implemented",
  },
  {
    name: "smtpd_tls_key_file",
    type: "string",
    default: "$smtpd_tls_cert_file",
    doc: "PEM file with the private key of smtpd_tls_cert_file; read by master, never by smtpd.",
    support: "implemented",
  },
  {
    name: "smtpd_tls_chain_files",
    type: "list",
    default: "",
    doc:
      "PEM files with a private key followed by its certificate chain; overrides the cert and key files (one key only).",
    support: "implemented",
  },
  {
    name: "smtpd_tls_auth_only",
    type: "bool",
    default: "no",
    doc:
      "Offer and accept AUTH only after TLS is active (implied by smtpd_tls_security_level = encrypt).",
    support: "implemented",
  },
  {
    name: "smtpd_tls_protocols",
    type: "list",
    default: ">=TLSv1",
    doc:
      "TLS protocols accepted with opportunistic TLS (Postwarden speaks TLSv1.2 and TLSv1.3 only).",
    support: "implemented",
  },
  {
    name: "smtpd_tls_mandatory_protocols",
    type: "list",
    default: ">=TLSv1",
    doc: "TLS protocols accepted with mandatory TLS (encrypt level, wrapper mode).",
    support: "implemented",
  },
  {
    name: "smtpd_tls_ciphers",
    type: "string",
    default: "medium",
    doc:
      'Minimum cipher grade with opportunistic TLS; every cipher Postwarden offers is "high", so null is refused.',
    support: "implemented",
  },
  {
    name: "smtpd_tls_mandatory_ciphers",
    type: "string",
    default: "medium",
    doc: "Minimum cipher grade with mandatory TLS.",
    support: "implemented",
  },
  {
    name: "smtpd_tls_exclude_ciphers",
    type: "list",
    default: "",
    doc:
      "TLSv1.2 ciphers to exclude; one that names a cipher Postwarden offers (and cannot drop) stops the start.",
    support: "implemented",
  },
  {
    name: "smtpd_tls_mandatory_exclude_ciphers",
    type: "list",
    default: "",
    doc: "More ciphers to exclude with mandatory TLS.",
    support: "implemented",
  },
  {
    name: "smtpd_tls_received_header",
    type: "bool",
    default: "no",
    doc: "Put the TLS protocol and cipher in the Received: header.",
    support: "implemented",
  },
  {
    name: "smtpd_tls_loglevel",
    type: "int",
    default: "0",
    doc: 'TLS logging: 0 none, 1 or more the "TLS connection established" summary.',
    support: "implemented",
  },
  {
    name: "smtpd_starttls_timeout",
    type: "time",
    default: "${stress?{10}:{300}}s",
    doc: "Time limit for the TLS handshake (STARTTLS and wrapper mode).",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  // issue 8 auth: rows for this part go here.
  {
    name: "smtpd_sasl_auth_enable",
    type: "bool",
    default: "no",
    doc: "Offer SMTP AUTH (RFC 4954) to clients (daemons/smtpd/auth.ts).",
    support: "implemented",
  },
  {
    name: "smtpd_sasl_type",
    type: "string",
    default: "cyrus",
    doc: 'SASL backend: "dovecot" (Dovecot auth socket) or "passwd-file" (the auth daemon); ' +
      "cyrus is not supported.",
    support: "implemented",
  },
  {
    name: "smtpd_sasl_path",
    type: "string",
    default: "smtpd",
    doc: "dovecot: auth socket (relative to queue_directory) or inet:host:port; passwd-file: " +
      "the password file's absolute path.",
    support: "implemented",
  },
  {
    name: "smtpd_sasl_service",
    type: "string",
    default: "smtp",
    doc: "Service name given to the SASL backend (Dovecot's service=).",
    support: "implemented",
  },
  {
    name: "smtpd_sasl_security_options",
    type: "list",
    default: "noanonymous",
    doc: "Mechanism properties refused without TLS: noanonymous, noplaintext, noactive, " +
      "nodictionary, mutual_auth, forward_secrecy.",
    support: "implemented",
  },
  {
    name: "smtpd_sasl_tls_security_options",
    type: "list",
    default: "$smtpd_sasl_security_options",
    doc: "As smtpd_sasl_security_options, for sessions with TLS.",
    support: "implemented",
  },
  {
    name: "smtpd_sasl_authenticated_header",
    type: "bool",
    default: "no",
    doc: 'Name the SASL login in the Received header ("Authenticated sender: ...").',
    support: "implemented",
  },
  {
    name: "smtpd_sasl_exceptions_networks",
    type: "list",
    default: "",
    doc: "Clients not shown the AUTH keyword in the EHLO reply.",
    support: "implemented",
  },
  {
    name: "smtpd_sasl_response_limit",
    type: "int",
    default: "12288",
    doc: "Longest AUTH response line; longer gets 500 5.5.6 SASL response limit exceeded.",
    min: 2048,
    support: "implemented",
  },
  {
    name: "smtpd_sasl_mechanism_filter",
    type: "list",
    default: "!external, static:rest",
    doc: "Mechanisms shown to clients: names, !name, static:; first match decides.",
    support: "implemented",
  },
  {
    name: "broken_sasl_auth_clients",
    type: "bool",
    default: "no",
    doc: 'Also send "AUTH=mechanisms" for clients of the pre-RFC draft (old Outlook).',
    support: "implemented",
  },
  {
    name: "smtpd_sender_login_maps",
    type: "string",
    default: "",
    doc: "Tables of the SASL logins that own each sender address (reject_*_login_mismatch).",
    support: "implemented",
  },
  // issue 8 restrictions: rows for this part go here.
  {
    name: "unknown_hostname_reject_code",
    type: "int",
    default: "450",
    doc:
      "Reply code for reject_unknown_helo_hostname when the HELO name has no A, AAAA or MX record.",
    support: "implemented",
  },
  {
    name: "unknown_address_reject_code",
    type: "int",
    default: "450",
    doc: "Reply code for reject_unknown_sender/recipient_domain when the domain does not exist.",
    support: "implemented",
  },
  {
    name: "unknown_client_reject_code",
    type: "int",
    default: "450",
    doc:
      "Reply code for reject_unknown_(reverse_)client_hostname after a permanent lookup failure.",
    support: "implemented",
  },
  {
    name: "reject_tempfail_action",
    type: "string",
    default: "defer_if_permit",
    doc:
      "After a temporary lookup failure: defer now, or defer_if_permit (only if mail would pass).",
    support: "implemented",
  },
  {
    name: "unknown_helo_hostname_tempfail_action",
    type: "string",
    default: "$reject_tempfail_action",
    doc: "reject_unknown_helo_hostname after a temporary DNS failure: defer or defer_if_permit.",
    support: "implemented",
  },
  {
    name: "unknown_address_tempfail_action",
    type: "string",
    default: "$reject_tempfail_action",
    doc:
      "reject_unknown_sender/recipient_domain after a temporary DNS failure: defer or defer_if_permit.",
    support: "implemented",
  },
  {
    name: "maps_rbl_reject_code",
    type: "int",
    default: "554",
    doc: "Reply code ($rbl_code) when a DNS deny list lists the client, sender, HELO or recipient.",
    support: "implemented",
  },
  {
    name: "default_rbl_reply",
    type: "string",
    default:
      "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}",
    doc: "Reply template for DNS deny list rejections (expanded per reply, not at start).",
    support: "implemented",
    raw: true,
  },
  {
    name: "rbl_reply_maps",
    type: "list",
    default: "",
    doc: "Tables of reply templates by DNS list domain (default: default_rbl_reply).",
    support: "implemented",
  },
  {
    name: "smtpd_end_of_data_restrictions",
    type: "string",
    default: "",
    doc: "Restrictions after the final dot of DATA, before the message is queued.",
    support: "implemented",
  },
  {
    name: "maps_rbl_domains",
    type: "list",
    default: "",
    doc: "DNS deny lists of the obsolete reject_maps_rbl restriction.",
    support: "implemented",
  },
  // issue 8 policy-anvil: rows for this part go here.
  {
    name: "smtpd_policy_service_timeout",
    type: "time",
    default: "100s",
    doc:
      "Time limit for connecting to, writing to or receiving from a check_policy_service server.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtpd_policy_service_max_idle",
    type: "time",
    default: "300s",
    doc: "How long an idle connection to a policy server is kept open.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtpd_policy_service_max_ttl",
    type: "time",
    default: "1000s",
    doc: "How long a connection to a policy server may be reused before it is closed.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtpd_policy_service_try_limit",
    type: "int",
    default: "2",
    doc: "Attempts to send a policy request before the default action is taken.",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtpd_policy_service_retry_delay",
    type: "time",
    default: "1s",
    doc: "Delay before a policy request is sent again after a failure.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtpd_policy_service_default_action",
    type: "string",
    default: "451 4.3.5 Server configuration problem",
    doc: "The access(5) action taken when a policy server does not answer.",
    support: "implemented",
  },
  {
    name: "smtpd_policy_service_policy_context",
    type: "string",
    default: "",
    doc: "The policy_context attribute sent in every policy request.",
    support: "implemented",
  },
  {
    name: "anvil_rate_time_unit",
    type: "time",
    default: "60s",
    doc: "The time unit over which anvil computes client connection and request rates.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "anvil_status_update_time",
    type: "time",
    default: "600s",
    doc: "How often anvil logs its peak connection count and rates.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtpd_client_connection_count_limit",
    type: "int",
    default: "50",
    doc: "Simultaneous connections one client may make to this service (0: no limit).",
    min: 0,
    support: "implemented",
  },
  {
    name: "smtpd_client_connection_rate_limit",
    type: "int",
    default: "0",
    doc: "Connection attempts one client may make per anvil_rate_time_unit (0: no limit).",
    min: 0,
    support: "implemented",
  },
  {
    name: "smtpd_client_message_rate_limit",
    type: "int",
    default: "0",
    doc: "Message delivery requests (MAIL) one client may make per time unit (0: no limit).",
    min: 0,
    support: "implemented",
  },
  {
    name: "smtpd_client_recipient_rate_limit",
    type: "int",
    default: "0",
    doc: "Recipient addresses (RCPT) one client may send per time unit (0: no limit).",
    min: 0,
    support: "implemented",
  },
  {
    name: "smtpd_client_auth_rate_limit",
    type: "int",
    default: "0",
    doc: "AUTH commands one client may send per time unit (0: no limit).",
    min: 0,
    support: "implemented",
  },
  {
    name: "smtpd_client_event_limit_exceptions",
    type: "list",
    default: "${smtpd_client_connection_limit_exceptions:$mynetworks}",
    doc: "Clients that are never connection or rate limited.",
    support: "implemented",
  },
  {
    name: "smtpd_policy_service_request_limit",
    type: "int",
    default: "0",
    doc: "Requests sent over one policy server connection before it is closed (0: no limit).",
    min: 0,
    support: "implemented",
  },
  // issue 8 protocol: rows for this part go here.
  {
    name: "smtpd_forbid_bare_newline_exclusions",
    type: "list",
    default: "$mynetworks",
    doc: "Clients excluded from smtpd_forbid_bare_newline (they get its 'no' behaviour).",
    support: "implemented",
  },
  {
    name: "smtpd_forbid_bare_newline_reject_code",
    type: "int",
    default: "550",
    doc: "Reply code when smtpd_forbid_bare_newline = reject refuses input.",
    min: 400,
    max: 599,
    support: "implemented",
  },
  // Postwarden: Postfix 3.9's default (3.7.6+ backports it with default no).
  {
    name: "smtpd_forbid_unauth_pipelining",
    type: "bool",
    default: "yes",
    doc: "Disconnect clients that pipeline commands where RFC 2920 does not allow it.",
    support: "implemented",
  },
  {
    name: "smtpd_forbidden_commands",
    type: "list",
    default: "CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}}",
    doc: "Commands that make smtpd end the session at once (221 2.7.0).",
    support: "implemented",
  },
  {
    name: "smtpd_discard_ehlo_keywords",
    type: "list",
    default: "",
    doc: "EHLO keywords smtpd does not announce (case-insensitive; silent-discard: do not log).",
    support: "implemented",
  },
  {
    name: "smtpd_discard_ehlo_keyword_address_maps",
    type: "string",
    default: "",
    doc: "Tables, by client address, of EHLO keywords not to announce (instead of the list).",
    support: "implemented",
  },
  {
    name: "smtputf8_enable",
    type: "bool",
    default: COMPAT_LT("1", "no", "yes"),
    doc: "Offer SMTPUTF8 (RFC 6531) and accept its MAIL FROM parameter.",
    support: "implemented",
  },
  {
    name: "strict_smtputf8",
    type: "bool",
    default: "no",
    doc: "Accept UTF-8 addresses only in an SMTPUTF8 transaction.",
    support: "implemented",
  },
  // issue 8 xclient-proxy: rows for this part go here.
  {
    name: "smtpd_authorized_xclient_hosts",
    type: "list",
    default: "",
    doc: "Clients allowed to override the client name, address, HELO and login with XCLIENT.",
    support: "implemented",
  },
  {
    name: "smtpd_authorized_xforward_hosts",
    type: "list",
    default: "",
    doc: "Clients allowed to forward the original client's attributes with XFORWARD.",
    support: "implemented",
  },
  {
    name: "smtpd_upstream_proxy_protocol",
    type: "string",
    default: "",
    doc: 'Protocol of the proxy in front of smtpd: empty (none) or "haproxy".',
    support: "implemented",
  },
  {
    name: "smtpd_upstream_proxy_timeout",
    type: "time",
    default: "5s",
    doc: "Time limit for receiving the proxy header from the upstream proxy.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  // Postwarden answers ETRN as Postfix does for a domain not in
  // fast_flush_domains (there is no flush service); restrictions on ETRN
  // are not evaluated, so a list that would answer otherwise stops the start.
  {
    name: "smtpd_etrn_restrictions",
    type: "list",
    default: "",
    doc: "Restrictions on the domain in an ETRN command.",
    support: "refused",
    note: "ETRN is always answered 459 (no fast flush service); remove smtpd_etrn_restrictions",
  },
  // issue 8 differential: rows for this part go here.
  {
    name: "smtpd_junk_command_limit",
    type: "int",
    default: "${stress?{1}:{100}}",
    doc:
      "HELO, EHLO, NOOP, VRFY, ETRN or RSET commands allowed before each one counts as an error.",
    min: 1,
    support: "implemented",
  },

  // issue 8 actions: rows for this part go here.
  {
    name: "content_filter",
    type: "string",
    default: "",
    doc: "transport:destination every message received by smtpd or pickup is sent through " +
      "after it is queued (a FILTER action overrides it); empty: none.",
    support: "implemented",
  },
  {
    name: "default_filter_nexthop",
    type: "string",
    default: "",
    doc: "Next hop for a content filter given without one; empty: the recipient's domain.",
    support: "implemented",
  },
  {
    name: "smtp_send_xforward_command",
    type: "bool",
    default: "no",
    doc: "Send the original client's attributes with XFORWARD when the server offers it.",
    support: "implemented",
  },
  {
    name: "postwarden_filter_destinations",
    type: "list",
    default: "",
    doc: "transport:destination values FILTER actions may name besides content_filter; " +
      "each one's next hop is granted to that transport's sandbox (Postwarden's own).",
    support: "implemented",
  },
  // issue 8 dns: rows for this part go here.
  // issue 8 ccert: rows for this part go here.
  {
    name: "smtpd_client_new_tls_session_rate_limit",
    type: "int",
    default: "0",
    doc: "New (not resumed) TLS sessions one client may negotiate per time unit (0: no limit).",
    min: 0,
    support: "implemented",
  },
  {
    name: "smtpd_tls_req_ccert",
    type: "bool",
    default: "no",
    doc: "Require a client certificate with mandatory TLS (not implemented: never requested).",
    support: "refused",
    note: "client certificates cannot be verified: Deno's TLS library does not check that a " +
      "client holds the private key of the certificate it presents; see lib/tls/ccert.ts",
  },
  // issue 8 access-kinds: rows for this part go here.
  {
    name: "smtpd_per_request_deadline",
    type: "bool",
    default: "${smtpd_per_record_deadline?{$smtpd_per_record_deadline}:{${stress?{yes}:{no}}}}",
    doc:
      "smtpd_timeout bounds a whole request (command line, DATA or BDAT content), not each read.",
    support: "implemented",
  },
  {
    name: "smtpd_min_data_rate",
    type: "int",
    default: "500",
    doc:
      "With smtpd_per_request_deadline: bytes per second of DATA/BDAT content that extend the deadline.",
    min: 1,
    support: "implemented",
  },
  // issue 10 perf: rows for this part go here.
  // issue 9 smtp-client: rows for this part go here.
  {
    name: "smtp_tls_security_level",
    type: "string",
    default: "",
    doc: "SMTP client TLS level: none, may, encrypt, verify, secure (dane, dane-only and " +
      "fingerprint are refused); empty: from smtp_enforce_tls and smtp_use_tls.",
    support: "implemented",
  },
  {
    name: "smtp_use_tls",
    type: "bool",
    default: "no",
    doc: "Obsolete: opportunistic TLS (may) when smtp_tls_security_level is empty.",
    support: "implemented",
  },
  {
    name: "smtp_enforce_tls",
    type: "bool",
    default: "no",
    doc: "Obsolete: mandatory TLS (encrypt, or verify with smtp_tls_enforce_peername) when " +
      "smtp_tls_security_level is empty.",
    support: "implemented",
  },
  {
    name: "smtp_tls_enforce_peername",
    type: "bool",
    default: "yes",
    doc: "Obsolete: with smtp_enforce_tls, verify the server name (verify) rather than only " +
      "encrypt.",
    support: "implemented",
  },
  {
    name: "smtp_tls_policy_maps",
    type: "string",
    default: "",
    doc: "Per next hop TLS policy: level and attributes (match=, protocols=, ciphers=, exclude=).",
    support: "implemented",
  },
  {
    name: "smtp_tls_CAfile",
    type: "string",
    default: "",
    doc: "File of trusted CA certificates (PEM) for verifying servers; empty: none.",
    support: "implemented",
  },
  {
    name: "smtp_tls_CApath",
    type: "string",
    default: "",
    doc: "Directory of trusted CA certificates (PEM files) for verifying servers; empty: none.",
    support: "implemented",
  },
  {
    name: "smtp_tls_verify_cert_match",
    type: "list",
    default: "hostname",
    doc: "Names a server certificate must match at the verify level.",
    support: "implemented",
  },
  {
    name: "smtp_tls_secure_cert_match",
    type: "list",
    default: "nexthop, dot-nexthop",
    doc: "Names a server certificate must match at the secure level.",
    support: "implemented",
  },
  {
    name: "smtp_tls_loglevel",
    type: "int",
    default: "0",
    doc: 'TLS logging: 0 none, 1 or more the "TLS connection established" summary.',
    support: "implemented",
  },
  {
    name: "smtp_tls_protocols",
    type: "list",
    default: ">=TLSv1",
    doc: "TLS protocols allowed with opportunistic TLS (the library speaks TLSv1.2 and TLSv1.3).",
    support: "implemented",
  },
  {
    name: "smtp_tls_mandatory_protocols",
    type: "list",
    default: ">=TLSv1",
    doc: "TLS protocols allowed with mandatory TLS (the library speaks TLSv1.2 and TLSv1.3).",
    support: "implemented",
  },
  {
    name: "smtp_tls_ciphers",
    type: "string",
    default: "medium",
    doc: "Minimum cipher grade with opportunistic TLS (every offered suite is high; null refused).",
    support: "implemented",
  },
  {
    name: "smtp_tls_mandatory_ciphers",
    type: "string",
    default: "medium",
    doc: "Minimum cipher grade with mandatory TLS (every offered suite is high; null refused).",
    support: "implemented",
  },
  {
    name: "smtp_tls_exclude_ciphers",
    type: "list",
    default: "",
    doc: "Ciphers never used: a session that negotiates one is abandoned.",
    support: "implemented",
  },
  {
    name: "smtp_tls_mandatory_exclude_ciphers",
    type: "list",
    default: "",
    doc: "Ciphers never used with mandatory TLS: a session that negotiates one is abandoned.",
    support: "implemented",
  },
  {
    name: "smtp_starttls_timeout",
    type: "time",
    default: "300s",
    doc: "Time limit for the TLS handshake after STARTTLS.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtp_tls_note_starttls_offer",
    type: "bool",
    default: "no",
    doc: 'Log "Host offered STARTTLS: [host]" when TLS is off and a server offers it.',
    support: "implemented",
  },
  {
    name: "smtp_tls_connection_reuse",
    type: "bool",
    default: "no",
    doc: "Keep TLS connections in the connection cache for later deliveries.",
    support: "implemented",
  },
  {
    name: "smtp_sasl_auth_enable",
    type: "bool",
    default: "no",
    doc: "Authenticate to servers with SASL (PLAIN, LOGIN, CRAM-MD5) with smtp_sasl_password_maps.",
    support: "implemented",
  },
  {
    name: "smtp_sasl_password_maps",
    type: "string",
    default: "",
    doc: "username:password per server host name or next hop ([host]:port, host, domain).",
    support: "implemented",
  },
  {
    name: "smtp_sasl_security_options",
    type: "list",
    default: "noplaintext, noanonymous",
    doc: "SASL mechanism restrictions without TLS: noplaintext, noanonymous, nodictionary, " +
      "mutual_auth.",
    support: "implemented",
  },
  {
    name: "smtp_sasl_tls_security_options",
    type: "list",
    default: "$smtp_sasl_security_options",
    doc: "SASL mechanism restrictions over TLS.",
    support: "implemented",
  },
  {
    name: "smtp_sasl_tls_verified_security_options",
    type: "list",
    default: "$smtp_sasl_tls_security_options",
    doc: "SASL mechanism restrictions over TLS with a verified (matched) server certificate.",
    support: "implemented",
  },
  {
    name: "smtp_sasl_mechanism_filter",
    type: "list",
    default: "",
    doc: "Server AUTH mechanisms considered (names; empty: all).",
    support: "implemented",
  },
  {
    name: "smtp_sasl_type",
    type: "string",
    default: "cyrus",
    doc:
      "SASL client implementation; Postwarden's own behaves as cyrus for PLAIN, LOGIN, CRAM-MD5.",
    support: "implemented",
  },
  {
    name: "smtp_sasl_auth_soft_bounce",
    type: "bool",
    default: "yes",
    doc: "Defer (rather than bounce) mail when the server rejects authentication with 5XX.",
    support: "implemented",
  },
  {
    name: "smtp_mx_address_limit",
    type: "int",
    default: "5",
    doc: "Most MX IP addresses tried per delivery (0: no limit).",
    min: 0,
    support: "implemented",
  },
  {
    name: "smtp_mx_session_limit",
    type: "int",
    default: "2",
    doc: "Most SMTP sessions past EHLO and TLS per delivery before the fallback relays " +
      "(0: no limit).",
    min: 0,
    support: "implemented",
  },
  {
    name: "smtp_fallback_relay",
    type: "list",
    default: "$fallback_relay",
    doc: "Next hops tried in order when the destination cannot be found or reached.",
    support: "implemented",
  },
  {
    name: "smtp_connection_reuse_count_limit",
    type: "int",
    default: "0",
    doc: "Times a cached SMTP connection may be reused (0: no limit).",
    min: 0,
    support: "implemented",
  },
  {
    name: "smtp_bind_address",
    type: "string",
    default: "",
    doc: "Local IPv4 address for SMTP connections (not implemented).",
    support: "refused",
    note: "Deno's Deno.connect cannot choose the local address of a connection; remove it " +
      "(mail would leave from another address than the one the admin chose)",
  },
  {
    name: "smtp_bind_address6",
    type: "string",
    default: "",
    doc: "Local IPv6 address for SMTP connections (not implemented).",
    support: "refused",
    note: "Deno's Deno.connect cannot choose the local address of a connection; remove it",
  },
  {
    name: "smtp_bind_address_enforce",
    type: "bool",
    default: "no",
    doc: "Defer mail when smtp_bind_address cannot be used (not implemented).",
    support: "refused",
    note: "smtp_bind_address is not implemented",
  },
  {
    name: "smtp_rset_timeout",
    type: "time",
    default: "20s",
    doc: "Time limit for sending RSET and receiving the response.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtp_xforward_timeout",
    type: "time",
    default: "300s",
    doc: "Time limit for sending XFORWARD and receiving the response.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "smtp_sender_dependent_authentication",
    type: "bool",
    default: "no",
    doc: "Look up SASL credentials by sender address first; disables connection caching.",
    support: "implemented",
  },
  // issue 9 lmtp: rows for this part go here.
  {
    name: "mailbox_transport",
    type: "string",
    default: "",
    doc:
      "Transport (service:nexthop) the local agent hands mailbox delivery to, after aliases and .forward.",
    support: "implemented",
  },
  {
    name: "lmtp_lhlo_name",
    type: "string",
    default: "$myhostname",
    doc: "Host name the LMTP client sends in LHLO.",
    support: "implemented",
  },
  {
    name: "lmtp_tcp_port",
    type: "string",
    default: "24",
    doc: "Port of an LMTP inet: destination that names none (a number, or lmtp).",
    support: "implemented",
  },
  {
    name: "lmtp_connect_timeout",
    type: "time",
    default: "0s",
    doc: "Time limit for an LMTP connection to complete; 0: the system's limit.",
    timeUnit: "s",
    min: 0,
    support: "implemented",
  },
  {
    name: "lmtp_lhlo_timeout",
    type: "time",
    default: "300s",
    doc: "Time limit for the LMTP greeting and the LHLO reply.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "lmtp_mail_timeout",
    type: "time",
    default: "300s",
    doc: "Time limit for the LMTP MAIL FROM reply.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "lmtp_rcpt_timeout",
    type: "time",
    default: "300s",
    doc: "Time limit for each LMTP RCPT TO reply.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "lmtp_data_init_timeout",
    type: "time",
    default: "120s",
    doc: "Time limit for the LMTP DATA reply.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "lmtp_data_xfer_timeout",
    type: "time",
    default: "180s",
    doc: "Time limit for each write of LMTP message content.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "lmtp_data_done_timeout",
    type: "time",
    default: "600s",
    doc: "Time limit for each per-recipient LMTP end-of-data reply.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "lmtp_rset_timeout",
    type: "time",
    default: "20s",
    doc: "Time limit for the LMTP RSET reply.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "lmtp_quit_timeout",
    type: "time",
    default: "300s",
    doc: "Time limit for the LMTP QUIT reply.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "lmtp_connection_cache_on_demand",
    type: "bool",
    default: "yes",
    doc: "Keep an LMTP connection open for the next delivery to the same next hop.",
    support: "implemented",
  },
  {
    name: "lmtp_connection_cache_time_limit",
    type: "time",
    default: "2s",
    doc: "Time an unused cached LMTP connection is kept open.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "lmtp_connection_reuse_time_limit",
    type: "time",
    default: "300s",
    doc: "An LMTP connection older than this is not cached again.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "lmtp_send_xforward_command",
    type: "bool",
    default: "no",
    doc: "Send the original client's attributes with XFORWARD when the LMTP server offers it.",
    support: "implemented",
  },
  {
    name: "lmtp_skip_5xx_greeting",
    type: "bool",
    default: "yes",
    doc: "A 5XX LMTP greeting defers (yes) rather than bounces (no).",
    support: "implemented",
  },
  // issue 9 agents: rows for this part go here.
  // pipe(8) (daemons/pipe) and virtual(8) (daemons/virtual).
  {
    name: "command_time_limit",
    type: "time",
    default: "1000s",
    doc: "Longest a command run by local(8) or pipe(8) may run (SERVICE_time_limit overrides it " +
      "per pipe service).",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "export_environment",
    type: "list",
    default: "TZ MAIL_CONFIG LANG",
    doc:
      "Environment variables (name or name=value) handed on to commands local(8) and pipe(8) run.",
    support: "implemented",
  },
  {
    name: "virtual_mailbox_base",
    type: "string",
    default: "",
    doc: "Absolute folder prepended to every virtual_mailbox_maps result.",
    support: "implemented",
  },
  {
    name: "virtual_mailbox_limit",
    type: "size",
    default: "51200000",
    doc: "Largest message file virtual writes into a Maildir (0: no limit).",
    support: "implemented",
  },
  {
    name: "virtual_mailbox_lock",
    type: "list",
    default: "fcntl, dotlock",
    doc: "Locks virtual takes on mbox files: dotlock, flock (fcntl is not available and defers).",
    support: "implemented",
  },
  {
    name: "virtual_minimum_uid",
    type: "int",
    default: "100",
    doc: "Smallest uid virtual_uid_maps may give a mailbox.",
    min: 1,
    support: "implemented",
  },
  {
    name: "virtual_uid_maps",
    type: "list",
    default: "",
    doc: "Owner uid of each virtual mailbox (static:UID or a table keyed by recipient).",
    support: "implemented",
  },
  {
    name: "virtual_gid_maps",
    type: "list",
    default: "",
    doc: "Group id of each virtual mailbox (static:GID or a table keyed by recipient).",
    support: "implemented",
  },
  // issue 9 qmgr: rows for this part go here.
  {
    name: "default_destination_concurrency_positive_feedback",
    type: "string",
    default: "1",
    doc: "Window increase per successful delivery: a number up to 1, N/M, or N/concurrency.",
    support: "implemented",
  },
  {
    name: "default_destination_concurrency_negative_feedback",
    type: "string",
    default: "1",
    doc: "Window decrease per failed delivery: a number up to 1, N/M, or N/concurrency.",
    support: "implemented",
  },
  {
    name: "default_destination_concurrency_failed_cohort_limit",
    type: "int",
    default: "1",
    doc:
      "Failed cohorts (failures as many as the concurrency) before a destination is dead (0: never).",
    min: 0,
    support: "implemented",
  },
  {
    name: "default_destination_rate_delay",
    type: "time",
    default: "0s",
    doc: "Time between deliveries to the same destination (0: none; else concurrency 1).",
    timeUnit: "s",
    support: "implemented",
  },
  {
    name: "default_transport_rate_delay",
    type: "time",
    default: "0s",
    doc: "Time between deliveries over the same transport, any destination (0: none).",
    timeUnit: "s",
    support: "implemented",
  },
  {
    name: "qmgr_message_recipient_limit",
    type: "int",
    default: "20000",
    doc: "Maximal number of recipients in the active queue (a message alone may exceed it).",
    min: 1,
    support: "implemented",
  },
  {
    name: "destination_concurrency_feedback_debug",
    type: "bool",
    default: "no",
    doc: "Log each destination concurrency feedback step.",
    support: "implemented",
  },
  // issue 9 local: rows for this part go here.
  {
    name: "mailbox_delivery_lock",
    type: "list",
    default: "fcntl, dotlock",
    doc:
      "Locks taken on an mbox file: flock, dotlock (fcntl defers the mail: Deno has no fcntl locks).",
    support: "implemented",
  },
  {
    name: "mailbox_size_limit",
    type: "size",
    default: "51200000",
    doc: "Maximal size in bytes of an mbox file or Maildir message (0: none).",
    support: "implemented",
  },
  {
    name: "deliver_lock_attempts",
    type: "int",
    default: "20",
    doc: "Attempts to take a mailbox lock before deferring.",
    min: 1,
    support: "implemented",
  },
  {
    name: "deliver_lock_delay",
    type: "time",
    default: "1s",
    doc: "Time between attempts to take a mailbox lock.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "stale_lock_time",
    type: "time",
    default: "500s",
    doc: "Age after which a dotlock file is removed as stale.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "strict_mailbox_ownership",
    type: "bool",
    default: "yes",
    doc: "Defer delivery to an mbox file the recipient does not own.",
    support: "implemented",
  },
  {
    name: "luser_relay",
    type: "string",
    default: "",
    doc: "Where local(8) sends mail for unknown users ($user, $local, $extension, ... expanded).",
    raw: true,
    support: "implemented",
  },
  {
    name: "mailbox_command",
    type: "string",
    default: "",
    doc: "Command that local(8) delivers a user's mailbox mail to, with the user's rights.",
    raw: true,
    support: "implemented",
  },
  {
    name: "forward_path",
    type: "list",
    default: "$home/.forward${recipient_delimiter}${extension}, $home/.forward",
    doc:
      "Where local(8) looks for a user's .forward file ($home, $user, $extension, ... expanded).",
    raw: true,
    support: "implemented",
  },
  {
    name: "forward_expansion_filter",
    type: "string",
    default: "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    doc: "Characters allowed in attribute values expanded into forward_path.",
    support: "implemented",
  },
  {
    name: "command_expansion_filter",
    type: "string",
    default: "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    doc: "Characters allowed in the environment local(8) gives commands; others become _.",
    support: "implemented",
  },
  {
    name: "execution_directory_expansion_filter",
    type: "string",
    default: "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    doc: "Characters allowed in attribute values expanded into command_execution_directory.",
    support: "implemented",
  },
  {
    name: "command_execution_directory",
    type: "string",
    default: "",
    doc: "Working directory of commands local(8) runs (empty: local's own).",
    raw: true,
    support: "implemented",
  },
  {
    name: "local_command_shell",
    type: "string",
    default: "",
    doc: "Shell (with its options) that local(8) runs commands with (empty: /bin/sh -c).",
    support: "implemented",
  },
  {
    name: "default_privs",
    type: "string",
    default: "nobody",
    doc: "Account whose rights commands and files named by aliases run with.",
    support: "implemented",
  },
  {
    name: "prepend_delivered_header",
    type: "list",
    default: "command, file, forward",
    doc:
      "Deliveries that get a Delivered-To: header: command, file (forwarded mail always gets one).",
    support: "implemented",
  },
  // issue 9 tools: rows for this part go here.
  {
    name: "fast_flush_domains",
    type: "list",
    default: "$relay_domains",
    doc: "Destinations that postqueue -s (and ETRN in Postfix) may flush.",
    support: "implemented",
    note: "honoured by postqueue -s; ETRN is answered 459 for every domain (daemons/smtpd/etrn.ts)",
  },

  // Milters (MILTER_README): smtpd speaks the milter protocol for mail it
  // receives (daemons/smtpd/milters.ts, lib/milter), cleanup for the rest
  // (non_smtpd_milters) and applies the edits.
  {
    name: "smtpd_milters",
    type: "list",
    default: "",
    doc: "Milter applications (inet:host:port, unix:/path, or {...} with settings) for SMTP mail.",
    support: "implemented",
  },
  {
    name: "non_smtpd_milters",
    type: "list",
    default: "",
    doc: "Milter applications for mail not received over SMTP (sendmail, pickup).",
    support: "implemented",
  },
  {
    name: "smtpd_milter_maps",
    type: "list",
    default: "",
    doc: "Per-client milter lists, looked up by client address.",
    support: "refused",
    note: "per-client milter lists are not supported; use smtpd_milters",
  },
  {
    name: "milter_header_checks",
    type: "list",
    default: "",
    doc: "header_checks for the headers milters add or change.",
    support: "refused",
    note: "headers added by milters are not checked; remove milter_header_checks",
  },
  {
    name: "milter_protocol",
    type: "string",
    default: "6",
    doc: "The milter protocol version to negotiate (2 to 6).",
    support: "implemented",
  },
  {
    name: "milter_default_action",
    type: "string",
    default: "tempfail",
    doc: "What a milter that fails or times out means: accept, reject, tempfail or quarantine.",
    support: "implemented",
  },
  {
    name: "milter_connect_timeout",
    type: "time",
    default: "30s",
    doc: "Time limit for connecting to a milter and negotiating with it.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "milter_command_timeout",
    type: "time",
    default: "30s",
    doc: "Time limit for a milter's answer to an SMTP event.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "milter_content_timeout",
    type: "time",
    default: "300s",
    doc: "Time limit for a milter's answer to message content and end of message.",
    timeUnit: "s",
    min: 1,
    support: "implemented",
  },
  {
    name: "milter_connect_macros",
    type: "string",
    default: "j {daemon_name} {daemon_addr} v _",
    doc: "Macros sent to milters with the connect event.",
    support: "implemented",
  },
  {
    name: "milter_helo_macros",
    type: "string",
    default: "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
    doc: "Macros sent to milters with HELO/EHLO.",
    support: "implemented",
  },
  {
    name: "milter_mail_macros",
    type: "string",
    default: "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
    doc: "Macros sent to milters with MAIL FROM.",
    support: "implemented",
  },
  {
    name: "milter_rcpt_macros",
    type: "string",
    default: "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
    doc: "Macros sent to milters with RCPT TO.",
    support: "implemented",
  },
  {
    name: "milter_data_macros",
    type: "string",
    default: "i",
    doc: "Macros sent to milters with DATA.",
    support: "implemented",
  },
  {
    name: "milter_end_of_header_macros",
    type: "string",
    default: "i",
    doc: "Macros sent to milters at the end of the headers.",
    support: "implemented",
  },
  {
    name: "milter_end_of_data_macros",
    type: "string",
    default: "i",
    doc: "Macros sent to milters at the end of the message.",
    support: "implemented",
  },
  {
    name: "milter_unknown_command_macros",
    type: "string",
    default: "",
    doc: "Macros sent to milters with an unknown SMTP command.",
    support: "implemented",
  },
  {
    name: "milter_macro_daemon_name",
    type: "string",
    default: "$myhostname",
    doc: "The {daemon_name} macro's value.",
    support: "implemented",
  },
  {
    name: "milter_macro_v",
    type: "string",
    default: "$mail_name $mail_version",
    doc: "The {v} macro's value.",
    support: "implemented",
  },
  {
    name: "milter_macro_defaults",
    type: "string",
    default: "",
    doc: "Values (name=value, ...) for macros that have none in a session.",
    support: "implemented",
  },

  // Postwarden's own mail authentication (issue 11; Postfix uses milters for these).
  {
    name: "postwarden_authentication_checks",
    type: "list",
    default: "",
    doc: "Checks smtpd makes on every message it receives and records in one " +
      "Authentication-Results header: spf, dkim, dmarc (dmarc implies the other two).",
    support: "implemented",
  },
  {
    name: "postwarden_authserv_id",
    type: "string",
    default: "$myhostname",
    doc:
      "The authserv-id of the Authentication-Results header; incoming headers with it are removed.",
    support: "implemented",
  },
  {
    name: "postwarden_dkim_signing_table",
    type: "string",
    default: "",
    doc: "Lookup table: the From: domain of mail to sign -> selector:keyfile (keyfile under " +
      "postwarden_dkim_key_directory), several separated by commas.",
    support: "implemented",
  },
  {
    name: "postwarden_dkim_key_directory",
    type: "string",
    default: "$config_directory/dkim",
    doc: "The directory of the DKIM private keys; cleanup may read it and nothing else may.",
    support: "implemented",
  },
  {
    name: "postwarden_dkim_internal_hosts",
    type: "list",
    default: "$mynetworks",
    doc: "SMTP clients whose mail is signed (SASL-authenticated clients always are); " +
      "local submissions are signed too.",
    support: "implemented",
  },

  // Postwarden's own (postwarden_*): sandbox choices Postfix has no need for.
  {
    name: "postwarden_smtp_ipv6_destinations",
    type: "list",
    default: "",
    doc:
      "IPv6 [address]:port destinations the smtp client's sandbox may reach (no IPv6 ranges in Deno).",
    support: "implemented",
  },
  {
    name: "postwarden_daemon_hosting",
    type: "string",
    default: "process",
    doc: "How master runs a daemon: process (its own Deno process, the default and the " +
      "strongest isolation) or worker (a Deno Worker with the same permissions in one host " +
      "process per user: less memory); per service with -o.",
    support: "implemented",
    note: "lib/service/hosting.ts says which daemons stay processes and why",
  },
];

/** The parameter table, keyed by name. */
export const PARAMS: ReadonlyMap<string, ParamSpec> = new Map(ROWS.map((r) => [r.name, r]));
