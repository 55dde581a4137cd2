/**
 * The one main.cf parameter table: every parameter Postwarden implements,
 * with its type, default and one line of documentation. `postconf -d`,
 * validation and documentation are derived from it.
 *
 * Defaults are Postfix 3.7's, exactly as `postconf -d NAME` prints them
 * (Debian build), including Postfix's `${{$compatibility_level} <level {2} ?
 * ...}` expressions, except where a comment marks a Postwarden default.
 * Three defaults are computed at run time rather than stored here: myhostname
 * (from the host name), mydomain (from myhostname) and config_directory (the
 * directory the configuration was read from); their entries hold what
 * Postfix prints on the reference machine and serve as documentation only.
 *
 * This file does no parsing; see config.ts for how values are read.
 *
 * @module
 */

/** How a parameter value is interpreted by the typed accessors of Config. */
export type ParamType = "string" | "int" | "time" | "size" | "bool" | "list";

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
}

type Row = [name: string, type: ParamType, def: string, doc: string, unit?: ParamSpec["timeUnit"]];

const COMPAT_LT_1 = (a: string, b: string) =>
  `\${{$compatibility_level} <level {1} ? {${a}} : {${b}}}`;
const COMPAT_LT_2 = (a: string, b: string) =>
  `\${{$compatibility_level} <level {2} ? {${a}} : {${b}}}`;

const ROWS: Row[] = [
  // Identity and addressing
  [
    "myhostname",
    "string",
    "vm.localdomain",
    "Internet host name of this mail system (default: the host name; computed at run time).",
  ],
  [
    "mydomain",
    "string",
    "localdomain",
    "Internet domain name of this mail system (default: myhostname minus its first label; computed at run time).",
  ],
  ["myorigin", "string", "$myhostname", "Domain appended to locally-posted mail addresses."],
  [
    "mydestination",
    "list",
    "$myhostname, localhost.$mydomain, localhost",
    "Domains this machine delivers locally.",
  ],
  [
    "mynetworks",
    "list",
    "127.0.0.0/8 192.0.2.0/24 [::1]/128 [fd00::]/64 [fe80::]/64",
    "Trusted remote SMTP clients (default computed by Postfix from the interfaces of the reference host).",
  ],
  [
    "mynetworks_style",
    "string",
    COMPAT_LT_2("subnet", "host"),
    "How to compute mynetworks when it is not set: host, subnet or class.",
  ],
  [
    "inet_interfaces",
    "list",
    "all",
    "Network interface addresses this mail system receives mail on.",
  ],
  ["inet_protocols", "list", "all", "Internet protocols to use: ipv4, ipv6 or all."],
  [
    "relayhost",
    "string",
    "",
    "Next-hop destination of non-local mail; overrides the recipient domain.",
  ],
  [
    "relay_domains",
    "list",
    COMPAT_LT_2("$mydestination", ""),
    "Destination domains (and subdomains) this system relays mail to.",
  ],
  [
    "append_dot_mydomain",
    "bool",
    COMPAT_LT_1("yes", "no"),
    "Append .$mydomain to addresses without domain part dots.",
  ],
  ["recipient_delimiter", "string", "", "Separators between a user name and an address extension."],
  [
    "empty_address_recipient",
    "string",
    "MAILER-DAEMON",
    "Recipient of mail addressed to the null address.",
  ],
  [
    "compatibility_level",
    "string",
    "0",
    "Backwards-compatibility level; selects several defaults.",
  ],
  ["stress", "string", "", "Set to yes by master when the server is overloaded (not for main.cf)."],

  // Directories and ownership
  [
    "config_directory",
    "string",
    "/etc/postfix",
    "Directory holding main.cf and master.cf (default: the directory read; computed at run time).",
  ],
  ["queue_directory", "string", "/var/spool/postfix", "Location of the mail queue."],
  ["command_directory", "string", "/usr/sbin", "Location of the administrative commands."],
  ["daemon_directory", "string", "/usr/lib/postfix/sbin", "Location of the daemon programs."],
  [
    "data_directory",
    "string",
    "/var/lib/postfix",
    "Directory with writable data files (caches, random seed).",
  ],
  ["process_id_directory", "string", "pid", "Lock file directory, relative to queue_directory."],
  ["mail_owner", "string", "postfix", "Owner of the queue and most daemon processes."],
  [
    "setgid_group",
    "string",
    "postdrop",
    "Group of the mail submission and queue management commands.",
  ],
  ["mail_spool_directory", "string", "/var/mail", "Directory of UNIX-style mailboxes."],
  ["home_mailbox", "string", "", "Mailbox file or Maildir/ relative to the user's home directory."],

  // Limits
  [
    "message_size_limit",
    "size",
    "10240000",
    "Maximal size in bytes of a message, including envelope information.",
  ],
  [
    "header_size_limit",
    "size",
    "102400",
    "Maximal amount of memory in bytes for storing a message header.",
  ],
  [
    "hopcount_limit",
    "int",
    "50",
    "Maximal number of Received: headers before a message is bounced.",
  ],
  ["line_length_limit", "int", "2048", "Maximal length of a line before it is broken up."],
  [
    "queue_minfree",
    "size",
    "0",
    "Minimal free space in bytes in the queue file system to accept mail.",
  ],
  [
    "default_destination_concurrency_limit",
    "int",
    "20",
    "Default maximal number of parallel deliveries to the same destination.",
  ],
  [
    "default_destination_recipient_limit",
    "int",
    "50",
    "Default maximal number of recipients per delivery.",
  ],
  ["default_process_limit", "int", "100", "Default maximal number of processes of one service."],
  [
    "initial_destination_concurrency",
    "int",
    "5",
    "Initial per-destination concurrency level for parallel delivery.",
  ],
  ["max_use", "int", "100", "Maximal number of requests a daemon process serves before it exits."],

  // Queue scheduling
  [
    "minimal_backoff_time",
    "time",
    "300s",
    "Minimal time between attempts to deliver a deferred message.",
    "s",
  ],
  [
    "maximal_backoff_time",
    "time",
    "4000s",
    "Maximal time between attempts to deliver a deferred message.",
    "s",
  ],
  [
    "queue_run_delay",
    "time",
    "300s",
    "Time between deferred queue scans by the queue manager.",
    "s",
  ],
  [
    "maximal_queue_lifetime",
    "time",
    "5d",
    "Time a message may stay in the queue before it is bounced.",
    "d",
  ],
  [
    "bounce_queue_lifetime",
    "time",
    "5d",
    "Time a bounce message may stay in the queue before it is discarded.",
    "d",
  ],
  [
    "delay_warning_time",
    "time",
    "0h",
    "Time after which the sender gets a delay notice (0: never).",
    "h",
  ],

  // SMTP server
  [
    "smtpd_banner",
    "string",
    "$myhostname ESMTP $mail_name",
    "Text after the 220 code in the SMTP greeting.",
  ],
  ["smtpd_client_restrictions", "list", "", "Restrictions applied at connect time."],
  ["smtpd_helo_restrictions", "list", "", "Restrictions applied to HELO/EHLO."],
  ["smtpd_sender_restrictions", "list", "", "Restrictions applied to MAIL FROM."],
  [
    "smtpd_relay_restrictions",
    "list",
    COMPAT_LT_1("", "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"),
    "Mail relay restrictions applied to RCPT TO before smtpd_recipient_restrictions.",
  ],
  ["smtpd_recipient_restrictions", "list", "", "Restrictions applied to RCPT TO."],
  [
    "smtpd_timeout",
    "time",
    "${stress?{10}:{300}}s",
    "Time limit for sending a response to and receiving a request from a client.",
    "s",
  ],
  ["smtpd_recipient_limit", "int", "1000", "Maximal number of recipients accepted per message."],
  [
    "smtpd_hard_error_limit",
    "int",
    "${stress?{1}:{20}}",
    "Maximal number of errors before the server disconnects.",
  ],
  [
    "smtpd_soft_error_limit",
    "int",
    "10",
    "Number of errors after which the server delays each response.",
  ],
  // Postwarden: Postfix 3.9's default. Postfix 3.7.10+ backports this
  // parameter with default "no"; 3.7.0 through 3.7.9 do not know it.
  [
    "smtpd_forbid_bare_newline",
    "string",
    "normalize",
    "Handling of a bare <LF> in SMTP input: normalize, yes or no (Postfix 3.9 default).",
  ],
  ["disable_vrfy_command", "bool", "no", "Disable the SMTP VRFY command."],

  // SMTP client
  ["smtp_connect_timeout", "time", "30s", "Time limit for completing a TCP connection.", "s"],
  [
    "smtp_helo_timeout",
    "time",
    "300s",
    "Time limit for sending HELO/EHLO and receiving the greeting and response.",
    "s",
  ],
  [
    "smtp_mail_timeout",
    "time",
    "300s",
    "Time limit for sending MAIL FROM and receiving the response.",
    "s",
  ],
  [
    "smtp_rcpt_timeout",
    "time",
    "300s",
    "Time limit for sending RCPT TO and receiving the response.",
    "s",
  ],
  [
    "smtp_data_init_timeout",
    "time",
    "120s",
    "Time limit for sending DATA and receiving the response.",
    "s",
  ],
  ["smtp_data_xfer_timeout", "time", "180s", "Time limit for sending the message content.", "s"],
  [
    "smtp_data_done_timeout",
    "time",
    "600s",
    "Time limit for sending the final '.' and receiving the response.",
    "s",
  ],
  [
    "smtp_quit_timeout",
    "time",
    "300s",
    "Time limit for sending QUIT and receiving the response.",
    "s",
  ],
  ["smtp_helo_name", "string", "$myhostname", "Host name sent in HELO/EHLO."],
  [
    "smtp_connection_cache_time_limit",
    "time",
    "2s",
    "Time an unused cached SMTP connection is kept open.",
    "s",
  ],
  [
    "smtp_connection_reuse_time_limit",
    "time",
    "300s",
    "Time during which a cached SMTP connection may be reused.",
    "s",
  ],

  // Local delivery and aliases
  [
    "local_recipient_maps",
    "list",
    "proxy:unix:passwd.byname $alias_maps",
    "Lookup tables with all valid local recipients.",
  ],
  [
    "alias_maps",
    "list",
    "hash:/etc/aliases, nis:mail.aliases",
    "Alias databases used for local delivery.",
  ],
  ["alias_database", "list", "hash:/etc/aliases", "Alias databases built by newaliases."],

  // Transports
  [
    "default_transport",
    "string",
    "smtp",
    "Default transport for domains that are not otherwise matched.",
  ],
  ["local_transport", "string", "local:$myhostname", "Transport for domains in mydestination."],
  ["relay_transport", "string", "relay", "Transport for domains in relay_domains."],

  // Notification
  [
    "double_bounce_sender",
    "string",
    "double-bounce",
    "Sender address of postmaster notifications.",
  ],
  [
    "bounce_notice_recipient",
    "string",
    "postmaster",
    "Recipient of postmaster notices about bounced mail.",
  ],
  [
    "2bounce_notice_recipient",
    "string",
    "postmaster",
    "Recipient of undeliverable mail that cannot be returned to the sender.",
  ],
  ["notify_classes", "list", "resource, software", "Error classes reported to the postmaster."],

  // Logging and identity strings
  [
    "maillog_file",
    "string",
    "",
    "File to log to instead of syslog (empty: Postwarden logs to stderr).",
  ],
  // Postwarden: Postfix's default is ${multi_instance_name?{$multi_instance_name}:{postfix}}.
  ["syslog_name", "string", "postwarden", "Program name prefix of log lines."],
  // Postwarden: Postfix's default is "Postfix".
  [
    "mail_name",
    "string",
    "Postwarden",
    "Mail system name in the SMTP greeting and in Received: headers.",
  ],
  // Postwarden: our own version (Postfix prints its own). Behaviour follows Postfix 3.7.
  ["mail_version", "string", "0.1.0", "Version of Postwarden (read-only)."],

  // Process management and IPC
  [
    "ipc_timeout",
    "time",
    "3600s",
    "Time limit for sending or receiving information over an internal channel.",
    "s",
  ],
  ["ipc_idle", "time", "5s", "Time after which a client closes an idle internal connection.", "s"],
  ["daemon_timeout", "time", "18000s", "Time limit for a daemon to handle one request.", "s"],
  [
    "qmgr_message_active_limit",
    "int",
    "20000",
    "Maximal number of messages in the active queue.",
  ],
  ["bounce_size_limit", "int", "50000", "Maximal amount of original message text in a DSN."],
  [
    "local_destination_concurrency_limit",
    "int",
    "2",
    "Maximal number of parallel deliveries to the same local recipient.",
  ],
  [
    "local_destination_recipient_limit",
    "int",
    "1",
    "Maximal number of recipients per local delivery request.",
  ],
  ["smtpd_error_sleep_time", "time", "1s", "Delay before replying after soft errors.", "s"],
  ["smtpd_helo_required", "bool", "no", "Require HELO or EHLO before MAIL."],
  // Postwarden's own (postwarden_*): sandbox choices Postfix has no need for.
  [
    "postwarden_smtp_ipv6_destinations",
    "list",
    "",
    "IPv6 [address]:port destinations the smtp client's sandbox may reach (no IPv6 ranges in Deno).",
  ],
  [
    "soft_bounce",
    "bool",
    "no",
    "Safety net: keep mail queued instead of bouncing it; 5XX rejects become 4XX.",
  ],
  [
    "smtpd_peername_lookup",
    "bool",
    "yes",
    'Look up the client\'s name (verified PTR); otherwise it is "unknown".',
  ],
  ["append_at_myorigin", "bool", "yes", "Append @$myorigin to unqualified local addresses."],
  [
    "import_environment",
    "list",
    "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME",
    "Environment variables master passes on to the daemons (name or name=value).",
  ],
  [
    "max_idle",
    "time",
    "100s",
    "Time a daemon process waits for the next request before it exits.",
    "s",
  ],
];

/** The parameter table, keyed by name. */
export const PARAMS: ReadonlyMap<string, ParamSpec> = new Map(
  ROWS.map(([name, type, def, doc, unit]) => {
    const spec: ParamSpec = { name, type, default: def, doc };
    if (unit) spec.timeUnit = unit;
    return [name, spec];
  }),
);
