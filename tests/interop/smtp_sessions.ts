/**
 * Scripted SMTP sessions for the differential test against a real Postfix
 * (smtp_sessions_test.ts): each session names the main.cf lines it needs
 * on top of {@link COMMON}, where its client connects from, and the steps
 * it plays (tests/helpers/smtp_script.ts: command lines, pipelined groups
 * in one write, raw bytes, message content). Both servers get the same
 * main.cf; every reply must match.
 *
 * The client at 127.0.0.1 is inside mynetworks, {@link OUTSIDE} (127.0.0.2)
 * is not. Sessions with `pending` wait for a feature another branch adds
 * (BDAT, SMTPUTF8, ...): they are listed, counted and not played until the
 * feature is merged and the entry's `pending` removed.
 *
 * Differences from Postfix 3.7 left on purpose (not played here):
 * - a bare CR inside a quoted local part (`"a<CR>b"@x`): Postfix accepts
 *   it, Postwarden answers 501 5.1.3 (a CR must not travel on in an
 *   envelope: SMTP smuggling);
 * - RFC 822 leftovers Postfix's address parser reads and Postwarden's
 *   refuses with 501 5.1.3: an unclosed domain literal (`<a@[1.2.3.4>`), comments
 *   (`<a(x)@b>`), spaces around "@" (`<a @ b>`), an empty local part
 *   (`<""@b>`, `<@b>`), control characters outside quotes (`<a<SOH>b@c>`)
 *   or in an ESMTP parameter (`ORCPT=rfc822;a<DEL>`), `<>SIZE=1`;
 *   and `VRFY <root@localhost` (unbalanced), which Postfix answers 252;
 * - `RCPT TO:<user@>` with resolve_null_domain = yes: Postfix accepts it,
 *   Postwarden's parser refuses the empty domain (501 5.1.3) whatever the
 *   setting.
 *
 * Data only: no I/O here.
 */
import type { Step } from "../helpers/smtp_script.ts";

/** A client address outside mynetworks (COMMON says 127.0.0.1/32). */
export const OUTSIDE = "127.0.0.2";

/** main.cf lines both servers get before a session's own. */
export const COMMON = [
  "myhostname = mx.test.example",
  "mydestination = $myhostname, localhost",
  "mynetworks = 127.0.0.1/32",
  "relay_domains = relay.example",
  "local_recipient_maps =",
  "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
  "smtpd_error_sleep_time = 0",
  // Postfix 3.9's defaults, which Postwarden has (3.7 has the features, not the defaults).
  "smtpd_forbid_unauth_pipelining = yes",
  "smtpd_forbid_bare_newline = normalize",
  // Accepted mail goes nowhere: the test compares dialogs, not deliveries.
  "local_transport = discard",
  "relay_transport = discard",
  "default_transport = discard",
];

/**
 * EHLO keywords Postfix 3.7 announces that Postwarden does not yet, and the
 * branch that adds each: the test drops them from Postfix's EHLO reply (and
 * says so) until then.
 */
export const PENDING_KEYWORDS: Record<string, string> = {};

/** One scripted session. */
export interface SmtpSession {
  name: string;
  /** main.cf lines after COMMON; sessions with the same lines share one pair of servers. */
  mainCf?: string[];
  /** Local address of the client. @default "127.0.0.1" (inside mynetworks) */
  from?: string;
  steps: Step[];
  /** The feature (and branch) this session waits for: "BDAT: h8-proto". Not played while set. */
  pending?: string;
}

const MSG = ["Subject: test", "", "hello"];

/** Configurations shared by several sessions. */
const LIMITS = [
  "smtpd_recipient_limit = 3",
  "smtpd_recipient_overshoot_limit = 2",
  "message_size_limit = 4000",
];
const ERRORS = ["smtpd_soft_error_limit = 2", "smtpd_hard_error_limit = 4"];
const STRICT = [
  "smtpd_helo_required = yes",
  "disable_vrfy_command = yes",
  "smtpd_helo_restrictions = reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname",
  "smtpd_sender_restrictions = reject_non_fqdn_sender",
  "smtpd_recipient_restrictions = reject_non_fqdn_recipient",
];
const STRICT_EARLY = [...STRICT, "smtpd_delay_reject = no"];
const ACCESS = [
  "smtpd_client_restrictions = check_client_access inline:{ {127.0.0.2=REJECT client says no} }",
  "smtpd_sender_restrictions = check_sender_access inline:{ {spam.example=REJECT}, " +
  "{later.example=DEFER try later}, {<>=550 5.7.1 no bounces} }",
  "smtpd_recipient_restrictions = check_recipient_access inline:{ {blocked@localhost=REJECT} }",
  "smtpd_data_restrictions = check_sender_access inline:{ {nodata.example=REJECT no data} }",
];
const ACCESS_EARLY = [...ACCESS, "smtpd_delay_reject = no"];
const SOFT = ["soft_bounce = yes", ...ACCESS];

/** A sender and recipient that every configuration accepts from 127.0.0.1. */
const MAIL = "MAIL FROM:<sender@client.example>";
const RCPT = "RCPT TO:<root@localhost>";

export const SESSIONS: SmtpSession[] = [
  // Greeting, HELO and EHLO.
  {
    name: "HELO, one message, QUIT",
    steps: ["HELO client.example", MAIL, RCPT, "DATA", { data: MSG }, "QUIT"],
  },
  {
    name: "EHLO, one message, QUIT",
    steps: ["EHLO client.example", MAIL, RCPT, "DATA", { data: MSG }, "QUIT"],
  },
  { name: "HELO and EHLO without a name", steps: ["HELO", "EHLO", "HELO   ", "EHLO\t", "QUIT"] },
  {
    name: "HELO and EHLO with odd names",
    steps: ["HELO a b c", "EHLO [127.0.0.1]", "HELO bad_name!", "EHLO x", "EHLO .", "QUIT"],
  },
  {
    name: "EHLO resets the transaction",
    steps: ["EHLO one.example", MAIL, RCPT, "EHLO two.example", RCPT, MAIL, "QUIT"],
  },
  { name: "no HELO at all", steps: [MAIL, RCPT, "DATA", { data: MSG }, "QUIT"] },
  {
    name: "mixed-case verbs",
    steps: [
      "eHlO client.example",
      "mail from:<a@client.example>",
      "RcPt To:<root@localhost>",
      "dAtA",
      { data: MSG },
      "qUiT",
    ],
  },
  {
    name: "trailing spaces",
    steps: [
      "EHLO client.example  ",
      "MAIL FROM:<a@client.example>  ",
      "RCPT TO:<root@localhost>   ",
      "NOOP  ",
      "RSET  ",
      "QUIT  ",
    ],
  },
  {
    name: "VT and FF are blanks",
    steps: [
      "EHLO\vclient.example",
      "MAIL\fFROM:<a@client.example>\vSIZE=10",
      "RCPT TO:<root@localhost>\v",
      "RCPT TO:<root@localhost>\f",
      "RSET\v",
      "MAIL FROM :<a@client.example>",
      "MAIL  FROM:<a@client.example>",
      "RCPT  TO:<root@localhost>",
      "RCPT TO :<root@localhost>",
      "RCPT TO:\t<root@localhost>",
      "QUIT",
    ],
  },
  {
    name: "tabs between verb and argument",
    steps: [
      "EHLO\tclient.example",
      "MAIL\tFROM:<a@client.example>",
      "RCPT\tTO:<root@localhost>",
      "QUIT",
    ],
  },

  // MAIL syntax.
  {
    name: "MAIL syntax errors",
    steps: [
      "EHLO client.example",
      "MAIL",
      "MAIL FROM",
      "MAIL FROM:",
      "MAIL TO:<a@client.example>",
      "MAIL FROM:<a@client.example",
      "MAIL FROM:<<a@client.example>",
      "MAIL FROM:<a@client.example>x",
      "MAIL FROM:<a@client.example><b@client.example>",
      "QUIT",
    ],
  },
  {
    name: "extra angle brackets are ignored",
    from: OUTSIDE,
    steps: [
      "EHLO client.example",
      "MAIL FROM:<<a@client.example>>",
      "RSET",
      "MAIL FROM:a@client.example>",
      "RSET",
      "MAIL FROM:<a@client.example>> SIZE=10",
      "RCPT TO:<<root@localhost>>",
      "RCPT TO:root@localhost>",
      "RCPT TO:<root@localhost>>",
      "RCPT TO:<<user@remote.example>>",
      "RCPT TO:<<user%remote.example@localhost>>",
      'RCPT TO:<"a>b"@localhost>',
      "RSET",
      "MAIL FROM:<<>>",
      "QUIT",
    ],
  },
  {
    name: "MAIL without angle brackets",
    steps: ["EHLO client.example", "MAIL FROM:a@client.example", RCPT, "QUIT"],
  },
  {
    name: "MAIL with a space after the colon",
    steps: ["EHLO client.example", "MAIL FROM: <a@client.example>", RCPT, "QUIT"],
  },
  {
    name: "null sender",
    steps: ["EHLO client.example", "MAIL FROM:<>", RCPT, "DATA", { data: MSG }, "QUIT"],
  },
  { name: "nested MAIL", steps: ["EHLO client.example", MAIL, MAIL, "MAIL FROM:<>", RCPT, "QUIT"] },
  {
    name: "RCPT before MAIL",
    steps: ["EHLO client.example", RCPT, "RCPT TO:<postmaster>", "QUIT"],
  },
  {
    name: "DATA before MAIL and before RCPT",
    steps: ["EHLO client.example", "DATA", MAIL, "DATA", "QUIT"],
  },
  {
    name: "DATA with an argument",
    steps: ["EHLO client.example", MAIL, RCPT, "DATA now", "DATA", { data: MSG }, "QUIT"],
  },
  {
    name: "DATA after every recipient was refused",
    from: OUTSIDE,
    steps: ["EHLO client.example", MAIL, "RCPT TO:<user@remote.example>", "DATA", "QUIT"],
  },
  {
    name: "RSET, RSET with an argument",
    steps: ["EHLO client.example", MAIL, RCPT, "RSET", RCPT, "RSET now", "QUIT"],
  },
  {
    name: "NOOP with arguments",
    steps: ["NOOP", "NOOP hello there", "EHLO client.example", "NOOP x", "QUIT"],
  },
  { name: "QUIT with an argument", steps: ["EHLO client.example", "QUIT now"] },
  {
    name: "QUIT in the middle of a transaction",
    steps: ["EHLO client.example", MAIL, RCPT, "QUIT"],
  },
  {
    name: "QUIT after DATA content started is content",
    steps: ["EHLO client.example", MAIL, RCPT, "DATA", { data: ["QUIT", "RSET"] }, "QUIT"],
  },

  // VRFY and unknown commands.
  {
    name: "VRFY",
    steps: [
      "VRFY root",
      "VRFY <root@localhost>",
      "EHLO client.example",
      "VRFY nobody@remote.example",
      "QUIT",
    ],
  },
  {
    name: "VRFY gets the recipient checks",
    from: OUTSIDE,
    steps: [
      "EHLO client.example",
      "VRFY nobody@remote.example",
      "VRFY root@localhost",
      "VRFY <root@localhost> junk",
      "VRFY <>",
      "VRFY postmaster",
      'VRFY "a b"@localhost',
      MAIL,
      "VRFY user@relay.example",
      "VRFY nobody@remote.example",
      "QUIT",
    ],
  },
  {
    name: "unknown commands",
    steps: [
      "FOO",
      "HELP",
      "TURN",
      "EXPN root",
      "SEND FROM:<a@b.example>",
      "SAML FROM:<a@b.example>",
      "QUIT",
    ],
  },
  { name: "empty and blank lines", steps: ["", " ", "\t", "EHLO client.example", "", "QUIT"] },

  // Line handling.
  {
    name: "bare LF ends a command line",
    steps: [{ raw: "EHLO client.example\n", replies: 1 }, { raw: "NOOP\n", replies: 1 }, {
      raw: "QUIT\n",
      replies: 1,
    }],
  },
  {
    name: "a command line split over writes",
    steps: [{ raw: "EH", replies: 0 }, { raw: "LO client", replies: 0 }, {
      raw: ".example\r\n",
      replies: 1,
    }, "QUIT"],
  },
  {
    name: "line too long",
    steps: [
      "EHLO client.example",
      `NOOP ${"x".repeat(2100)}`,
      "NOOP",
      `MAIL FROM:<${"a".repeat(2100)}@client.example>`,
      "NOOP",
      "QUIT",
    ],
  },

  // Recipient address forms (inside mynetworks).
  {
    name: "recipient address forms",
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<root>",
      "RCPT TO:<ROOT@LOCALHOST>",
      'RCPT TO:<"root"@localhost>',
      'RCPT TO:<"ro ot"@localhost>',
      "RCPT TO:<root@localhost.>",
      "RCPT TO:<@relay.example:root@localhost>",
      "RCPT TO:<@a.example,@b.example:root@localhost>",
      "RCPT TO:root@localhost",
      "RCPT TO: <root@localhost>",
      "RCPT TO:<postmaster>",
      "RCPT TO:<Postmaster>",
      "QUIT",
    ],
  },
  {
    name: "recipient address syntax errors",
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT",
      "RCPT TO",
      "RCPT TO:",
      "RCPT TO:<>",
      "RCPT FROM:<root@localhost>",
      "RCPT TO:<root@localhost",
      "RCPT TO:<<root@localhost>",
      "RCPT TO:a<root@localhost",
      "RCPT TO:<root@localhost>x",
      "RCPT TO:a>root@localhost",
      "RCPT TO:<root@localhost> <other@localhost>",
      "QUIT",
    ],
  },
  {
    name: "address literals and domain forms",
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<root@[127.0.0.1]>",
      "RCPT TO:<root@[IPv6:::1]>",
      "RCPT TO:<root@[300.1.1.1]>",
      "RCPT TO:<root@mx.test.example>",
      "RCPT TO:<root@MX.Test.Example>",
      "RCPT TO:<user@relay.example>",
      "RCPT TO:<user@sub.relay.example>",
      "QUIT",
    ],
  },
  {
    name: "quoted local parts with specials",
    steps: [
      "EHLO client.example",
      MAIL,
      'RCPT TO:<"a@b"@localhost>',
      'RCPT TO:<"a\\"b"@localhost>',
      'RCPT TO:<"a b c"@localhost>',
      'RCPT TO:<"a,b"@localhost>',
      "RCPT TO:<a.b.c@localhost>",
      "RCPT TO:<a..b@localhost>",
      "RCPT TO:<.a@localhost>",
      "QUIT",
    ],
  },
  {
    name: "control characters and quoted pairs in addresses",
    from: OUTSIDE,
    steps: [
      "EHLO client.example",
      MAIL,
      'RCPT TO:<"a\tb"@localhost>',
      'RCPT TO:<"a\x01b"@localhost>',
      'RCPT TO:<"a\x7fb"@localhost>',
      'RCPT TO:<"a\tb"@remote.example>',
      'RCPT TO:<"a\x1bb"@remote.example>',
      "RCPT TO:<a\\@remote.example@localhost>",
      "RCPT TO:<a\\b@localhost>",
      { raw: 'RCPT TO:<"a\x00b"@localhost>\r\n', replies: 1 },
      "QUIT",
    ],
  },
  {
    name: "sender address forms",
    steps: [
      "EHLO client.example",
      "MAIL FROM:<user>",
      "RSET",
      "MAIL FROM:<@a.example:user@client.example>",
      "RSET",
      'MAIL FROM:<"user name"@client.example>',
      "RSET",
      "MAIL FROM:<user@[192.0.2.1]>",
      "RSET",
      "MAIL FROM:<user@client.example.>",
      "RSET",
      "MAIL FROM:<@a.example:>",
      "RSET",
      "MAIL FROM:@a.example:a@client.example",
      "RCPT TO:<@a.example,b.example:root@localhost>",
      "RCPT TO:@a.example:root@localhost",
      "RCPT TO:<@a.example:>",
      "RCPT TO:<@:root@localhost>",
      "QUIT",
    ],
  },

  // Relaying.
  {
    name: "relay refused outside mynetworks",
    from: OUTSIDE,
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<user@remote.example>",
      "RCPT TO:<user@relay.example>",
      "RCPT TO:<root@localhost>",
      "RCPT TO:<postmaster>",
      "RCPT TO:<user@[192.0.2.1]>",
      "QUIT",
    ],
  },
  {
    name: "relay allowed inside mynetworks",
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<user@remote.example>",
      "RCPT TO:<user@[192.0.2.1]>",
      "DATA",
      { data: MSG },
      "QUIT",
    ],
  },
  {
    name: "routing operators outside mynetworks",
    from: OUTSIDE,
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<user%remote.example@localhost>",
      "RCPT TO:<remote.example!user@localhost>",
      'RCPT TO:<"user@remote.example"@localhost>',
      "RCPT TO:<@localhost:user@remote.example>",
      "RCPT TO:<user%localhost@relay.example>",
      "QUIT",
    ],
  },
  {
    name: "relay_domains in reject_unauth_destination at the recipient list",
    from: OUTSIDE,
    mainCf: [
      "smtpd_relay_restrictions =",
      "smtpd_recipient_restrictions = reject_unauth_destination",
    ],
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<user@relay.example>",
      "RCPT TO:<user@remote.example>",
      "QUIT",
    ],
  },
  {
    name: "defer_unauth_destination",
    from: OUTSIDE,
    mainCf: ["smtpd_relay_restrictions = permit_mynetworks, defer_unauth_destination"],
    steps: ["EHLO client.example", MAIL, "RCPT TO:<user@remote.example>", RCPT, "QUIT"],
  },
  {
    name: "relay_domains_reject_code",
    from: OUTSIDE,
    mainCf: ["relay_domains_reject_code = 550"],
    steps: ["EHLO client.example", MAIL, "RCPT TO:<user@remote.example>", "QUIT"],
  },
  {
    name: "permit_auth_destination then reject",
    from: OUTSIDE,
    mainCf: ["smtpd_relay_restrictions = permit_auth_destination, reject"],
    steps: [
      "EHLO client.example",
      MAIL,
      RCPT,
      "RCPT TO:<user@relay.example>",
      "RCPT TO:<user@remote.example>",
      "QUIT",
    ],
  },

  // DSN and other ESMTP parameters.
  {
    name: "MAIL RET and ENVID",
    steps: [
      "EHLO client.example",
      "MAIL FROM:<a@client.example> RET=FULL ENVID=abc123",
      "RSET",
      "MAIL FROM:<a@client.example> RET=hdrs",
      "RSET",
      "MAIL FROM:<a@client.example> RET=SOME",
      "MAIL FROM:<a@client.example> RET=",
      "MAIL FROM:<a@client.example> ENVID=a+2Bb",
      "RSET",
      "MAIL FROM:<a@client.example> ENVID=a+zz",
      "MAIL FROM:<a@client.example> ENVID=",
      "QUIT",
    ],
  },
  {
    name: "repeated parameters and huge SIZE",
    steps: [
      "EHLO client.example",
      "MAIL FROM:<a@client.example> RET=FULL RET=HDRS",
      "MAIL FROM:<a@client.example> ENVID=a ENVID=b",
      "MAIL FROM:<a@client.example> SIZE=99999999999999999999",
      "MAIL FROM:<a@client.example> SIZE=9223372036854775807",
      "MAIL FROM:<a@client.example> BODY=8BITMIME BODY=7BIT SIZE=5 SIZE=6",
      "RCPT TO:<root@localhost> NOTIFY=SUCCESS NOTIFY=FAILURE",
      "RCPT TO:<root@localhost> ORCPT=rfc822;a@b ORCPT=rfc822;c@d",
      "RCPT TO:<root@localhost> ORCPT=utf-8;a",
      "RCPT TO:<root@localhost> ORCPT=rfc822;",
      "QUIT",
    ],
  },
  {
    name: "RCPT NOTIFY",
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<root@localhost> NOTIFY=SUCCESS,FAILURE,DELAY",
      "RCPT TO:<root@localhost> NOTIFY=never",
      "RCPT TO:<root@localhost> NOTIFY=NEVER,SUCCESS",
      "RCPT TO:<root@localhost> NOTIFY=BOGUS",
      "RCPT TO:<root@localhost> NOTIFY=",
      "RCPT TO:<root@localhost> NOTIFY",
      "QUIT",
    ],
  },
  {
    name: "RCPT ORCPT",
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<root@localhost> ORCPT=rfc822;root@localhost",
      "RCPT TO:<root@localhost> ORCPT=rfc822;a+2Bb@localhost",
      "RCPT TO:<root@localhost> ORCPT=rfc822",
      "RCPT TO:<root@localhost> ORCPT=;x",
      "RCPT TO:<root@localhost> ORCPT=rfc822;a+zz",
      "RCPT TO:<root@localhost> NOTIFY=FAILURE ORCPT=rfc822;root@localhost",
      "DATA",
      { data: MSG },
      "QUIT",
    ],
  },
  {
    name: "unknown MAIL and RCPT parameters",
    steps: [
      "EHLO client.example",
      "MAIL FROM:<a@client.example> FOO=bar",
      "MAIL FROM:<a@client.example> FOO",
      "MAIL FROM:<a@client.example> foo=Bar",
      "MAIL FROM:<a@client.example> <b@client.example>",
      "MAIL FROM:<a@client.example> SIZE",
      MAIL,
      "RCPT TO:<root@localhost> FOO=bar",
      "RCPT TO:<root@localhost> SIZE=10",
      "QUIT",
    ],
  },
  {
    name: "BODY parameter",
    steps: [
      "EHLO client.example",
      "MAIL FROM:<a@client.example> BODY=8BITMIME",
      "RSET",
      "MAIL FROM:<a@client.example> BODY=7bit",
      "RSET",
      "MAIL FROM:<a@client.example> BODY=JUNK",
      "MAIL FROM:<a@client.example> BODY=BINARYMIME",
      "MAIL FROM:<a@client.example> BODY=",
      "QUIT",
    ],
  },
  {
    name: "8-bit message content with BODY=8BITMIME",
    steps: [
      "EHLO client.example",
      "MAIL FROM:<a@client.example> BODY=8BITMIME",
      RCPT,
      "DATA",
      { data: ["Subject: caf\xc3\xa9", "", "na\xc3\xafve"] },
      "QUIT",
    ],
  },
  {
    name: "SIZE parameter without a limit breach",
    steps: [
      "EHLO client.example",
      "MAIL FROM:<a@client.example> SIZE=100",
      "RSET",
      "MAIL FROM:<a@client.example> SIZE=abc",
      "MAIL FROM:<a@client.example> SIZE=",
      "MAIL FROM:<a@client.example> SIZE=-1",
      "QUIT",
    ],
  },

  // Limits.
  {
    name: "SIZE over message_size_limit",
    mainCf: LIMITS,
    steps: [
      "EHLO client.example",
      "MAIL FROM:<a@client.example> SIZE=4001",
      "MAIL FROM:<a@client.example> SIZE=4000",
      RCPT,
      "QUIT",
    ],
  },
  {
    name: "message over message_size_limit",
    mainCf: LIMITS,
    steps: [
      "EHLO client.example",
      MAIL,
      RCPT,
      "DATA",
      { data: ["Subject: big", "", ..."x".repeat(5000).match(/.{1,60}/g)!] },
      MAIL,
      "QUIT",
    ],
  },
  {
    name: "smtpd_recipient_limit and overshoot",
    mainCf: LIMITS,
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<a@localhost>",
      "RCPT TO:<b@localhost>",
      "RCPT TO:<c@localhost>",
      "RCPT TO:<d@localhost>",
      "RCPT TO:<e@localhost>",
      "RCPT TO:<f@localhost>",
      "RCPT TO:<g@localhost>",
      "DATA",
      { data: MSG },
      MAIL,
      "RCPT TO:<h@localhost>",
      "QUIT",
    ],
  },
  {
    name: "recipient limit resets with RSET",
    mainCf: LIMITS,
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<a@localhost>",
      "RCPT TO:<b@localhost>",
      "RCPT TO:<c@localhost>",
      "RCPT TO:<d@localhost>",
      "RSET",
      MAIL,
      "RCPT TO:<d@localhost>",
      "QUIT",
    ],
  },
  {
    name: "hard error limit",
    mainCf: ERRORS,
    steps: ["EHLO client.example", "FOO", "BAR", "MAIL", "BAZ", "NOOP"],
  },
  {
    name: "errors below the hard limit, then success",
    mainCf: ERRORS,
    steps: ["EHLO client.example", "FOO", "MAIL FROM:<", "NOOP", MAIL, RCPT, "QUIT"],
  },
  {
    name: "refused recipients count as errors",
    mainCf: ERRORS,
    from: OUTSIDE,
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<a@remote.example>",
      "RCPT TO:<b@remote.example>",
      "RCPT TO:<c@remote.example>",
      "RCPT TO:<d@remote.example>",
      "NOOP",
    ],
  },
  {
    name: "smtpd_junk_command_limit, and a message forgives errors",
    mainCf: ["smtpd_junk_command_limit = 2", "smtpd_hard_error_limit = 3"],
    steps: [
      "EHLO client.example",
      "NOOP",
      "RSET",
      "VRFY root",
      "NOOP",
      "FOO",
      MAIL,
      RCPT,
      "DATA",
      { data: MSG },
      "FOO",
      "NOOP",
      "NOOP",
      "NOOP",
      "NOOP",
      "NOOP",
    ],
  },
  {
    name: "line_length_limit",
    mainCf: ["line_length_limit = 512"],
    steps: [
      "EHLO client.example",
      `NOOP ${"y".repeat(600)}`,
      MAIL,
      `RCPT TO:<${"b".repeat(520)}@localhost>`,
      `RCPT TO:<${"c".repeat(400)}@localhost>`,
      "QUIT",
    ],
  },

  // Pipelining.
  {
    name: "pipelined transaction",
    steps: [
      { pipe: ["EHLO client.example", MAIL, RCPT, "RCPT TO:<postmaster@localhost>", "DATA"] },
      { data: MSG },
      "QUIT",
    ],
  },
  {
    name: "pipelined errors",
    steps: ["EHLO client.example", { pipe: ["MAIL FROM:<a@b", RCPT, "DATA"] }, "QUIT"],
  },
  {
    name: "pipelined transaction refused midway",
    from: OUTSIDE,
    steps: ["EHLO client.example", { pipe: [MAIL, "RCPT TO:<a@remote.example>", RCPT, "DATA"] }, {
      data: MSG,
    }, "QUIT"],
  },
  {
    name: "pipelined RSET and second transaction",
    steps: ["EHLO client.example", {
      pipe: [MAIL, RCPT, "RSET", "MAIL FROM:<>", RCPT, "NOOP", "QUIT"],
    }],
  },
  {
    name: "commands after QUIT in the same write",
    steps: ["EHLO client.example", { pipe: ["NOOP", "QUIT", "NOOP"] }],
  },
  {
    name: "message and next command in one write",
    steps: ["EHLO client.example", MAIL, RCPT, "DATA", {
      raw: "Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<root@localhost>\r\nQUIT\r\n",
      replies: 4,
    }],
  },

  // Message content.
  {
    name: "dot-stuffing",
    steps: ["EHLO client.example", MAIL, RCPT, "DATA", {
      data: ["Subject: dots", "", "..", "...", "..leading", ".x", " ."],
    }, "QUIT"],
  },
  {
    name: "empty message",
    steps: ["EHLO client.example", MAIL, RCPT, "DATA", { data: [] }, "QUIT"],
  },
  {
    name: "two messages in one session",
    steps: [
      "EHLO client.example",
      MAIL,
      RCPT,
      "DATA",
      { data: MSG },
      "MAIL FROM:<>",
      RCPT,
      "DATA",
      { data: MSG },
      "QUIT",
    ],
  },
  {
    name: "bare LF in message content",
    steps: ["EHLO client.example", MAIL, RCPT, "DATA", {
      raw: "Subject: lf\n\nline one\nline two\r\n.\r\n",
      replies: 1,
    }, "QUIT"],
  },

  // smtpd_helo_required, disable_vrfy_command, restrictions.
  {
    name: "smtpd_helo_required",
    mainCf: STRICT,
    steps: [MAIL, "VRFY root", "HELO client.example", MAIL, RCPT, "QUIT"],
  },
  {
    name: "HELO restrictions at RCPT (smtpd_delay_reject = yes)",
    mainCf: STRICT,
    steps: [
      "HELO bad_name!",
      MAIL,
      RCPT,
      "HELO nodots",
      MAIL,
      RCPT,
      "HELO [127.0.0.1]",
      MAIL,
      RCPT,
      "QUIT",
    ],
  },
  {
    name: "HELO restrictions at HELO (smtpd_delay_reject = no)",
    mainCf: STRICT_EARLY,
    steps: [
      "HELO bad_name!",
      "EHLO nodots",
      "EHLO [127.0.0.1]",
      "EHLO [1.2.3]",
      "EHLO client.example",
      MAIL,
      RCPT,
      "QUIT",
    ],
  },
  {
    name: "non-FQDN sender and recipient (smtpd_delay_reject = yes)",
    mainCf: STRICT,
    steps: [
      "EHLO client.example",
      "MAIL FROM:<user@nodots>",
      RCPT,
      "RSET",
      MAIL,
      "RCPT TO:<user@nodots>",
      "RCPT TO:<user>",
      RCPT,
      "QUIT",
    ],
  },
  {
    name: "non-FQDN sender (smtpd_delay_reject = no)",
    mainCf: STRICT_EARLY,
    steps: [
      "EHLO client.example",
      "MAIL FROM:<user@nodots>",
      "MAIL FROM:<user>",
      "MAIL FROM:<>",
      "RCPT TO:<user@nodots>",
      RCPT,
      "QUIT",
    ],
  },
  {
    name: "access tables (smtpd_delay_reject = yes)",
    mainCf: ACCESS,
    steps: [
      "EHLO client.example",
      "MAIL FROM:<a@spam.example>",
      RCPT,
      "RSET",
      "MAIL FROM:<a@later.example>",
      RCPT,
      "RSET",
      "MAIL FROM:<>",
      RCPT,
      "RSET",
      MAIL,
      "RCPT TO:<blocked@localhost>",
      RCPT,
      "DATA",
      { data: MSG },
      "MAIL FROM:<a@nodata.example>",
      RCPT,
      "DATA",
      "QUIT",
    ],
  },
  {
    name: "access tables (smtpd_delay_reject = no)",
    mainCf: ACCESS_EARLY,
    steps: [
      "EHLO client.example",
      "MAIL FROM:<a@spam.example>",
      "MAIL FROM:<a@later.example>",
      "MAIL FROM:<>",
      MAIL,
      "RCPT TO:<blocked@localhost>",
      RCPT,
      "QUIT",
    ],
  },
  {
    name: "client refused at RCPT (smtpd_delay_reject = yes)",
    mainCf: ACCESS,
    from: OUTSIDE,
    steps: ["EHLO client.example", MAIL, RCPT, "RCPT TO:<postmaster>", "QUIT"],
  },
  {
    name: "client refused at connect (smtpd_delay_reject = no)",
    mainCf: ACCESS_EARLY,
    from: OUTSIDE,
    steps: ["EHLO client.example", MAIL, RCPT, "NOOP", "FOO", "QUIT"],
  },
  {
    name: "soft_bounce turns 5XX into 4XX",
    mainCf: SOFT,
    steps: [
      "EHLO client.example",
      "MAIL FROM:<a@spam.example>",
      RCPT,
      "RSET",
      MAIL,
      "RCPT TO:<blocked@localhost>",
      "MAIL FROM:<x@y",
      "FOO",
      "HELO",
      "RSET x",
      "QUIT",
    ],
  },
  {
    name: "soft_bounce and relay access denied",
    mainCf: SOFT,
    from: "127.0.0.3",
    steps: ["EHLO client.example", MAIL, "RCPT TO:<user@remote.example>", "QUIT"],
  },
  {
    name: "warn_if_reject",
    mainCf: ["smtpd_recipient_restrictions = warn_if_reject, reject_non_fqdn_recipient, permit"],
    steps: ["EHLO client.example", MAIL, "RCPT TO:<user@nodots>", "QUIT"],
  },
  {
    name: "reject, defer and reject_code",
    mainCf: [
      "reject_code = 521",
      "defer_code = 421",
      "smtpd_sender_restrictions = check_sender_access inline:{ {r.example=reject}, {d.example=defer} }",
    ],
    steps: [
      "EHLO client.example",
      "MAIL FROM:<a@r.example>",
      RCPT,
      "RSET",
      "MAIL FROM:<a@d.example>",
      RCPT,
      "QUIT",
    ],
  },
  {
    name: "smtpd_data_restrictions reject",
    mainCf: ["smtpd_data_restrictions = reject"],
    steps: ["EHLO client.example", MAIL, RCPT, "DATA", "RSET", "QUIT"],
  },

  {
    name: "client deferred at connect (smtpd_delay_reject = no)",
    mainCf: ["smtpd_delay_reject = no", "smtpd_client_restrictions = defer"],
    steps: ["EHLO client.example", MAIL, "QUIT"],
  },
  {
    name: "client restrictions with permit_mynetworks",
    mainCf: ["smtpd_client_restrictions = permit_mynetworks, reject"],
    from: OUTSIDE,
    steps: ["EHLO client.example", MAIL, RCPT, "RCPT TO:<postmaster>", "QUIT"],
  },
  {
    name: "client restrictions with permit_mynetworks, inside",
    mainCf: ["smtpd_client_restrictions = permit_mynetworks, reject"],
    steps: ["EHLO client.example", MAIL, RCPT, "QUIT"],
  },
  {
    name: "data restrictions with one and with two recipients",
    mainCf: [
      "smtpd_data_restrictions = check_recipient_access inline:{ {root@localhost=REJECT data for root} }",
    ],
    steps: [
      "EHLO client.example",
      MAIL,
      RCPT,
      "DATA",
      "RCPT TO:<other@localhost>",
      "DATA",
      { data: MSG },
      "QUIT",
    ],
  },
  {
    name: "HELO access at HELO and at RCPT",
    mainCf: [
      "smtpd_helo_restrictions = check_helo_access inline:{ {bad.example=REJECT bad helo}, " +
      "{later.example=DEFER helo later} }",
    ],
    steps: [
      "HELO bad.example",
      MAIL,
      RCPT,
      "HELO later.example",
      MAIL,
      RCPT,
      "HELO good.example",
      MAIL,
      RCPT,
      "QUIT",
    ],
  },
  {
    name: "helo restrictions without any HELO",
    mainCf: [
      "smtpd_helo_restrictions = reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname, " +
      "check_helo_access inline:{ {x=REJECT} }",
    ],
    steps: [MAIL, RCPT, "QUIT"],
  },
  {
    name: "IPv6 and odd address literals in HELO",
    mainCf: STRICT_EARLY,
    steps: [
      "EHLO [IPv6:::1]",
      "EHLO [IPv6:zz]",
      "EHLO [::1]",
      "EHLO 1.2.3.4",
      "EHLO 1.2.3",
      "EHLO -bad.example",
      "EHLO ok-.example",
      "QUIT",
    ],
  },
  {
    name: "reject_non_fqdn_* with address literals and trailing dots",
    mainCf: STRICT,
    steps: [
      "EHLO client.example.",
      "MAIL FROM:<a@[192.0.2.1]>",
      "RCPT TO:<root@localhost>",
      "RCPT TO:<user@relay.example.>",
      "RSET",
      "MAIL FROM:<a@b.example.>",
      "RCPT TO:<user@[127.0.0.1]>",
      "QUIT",
    ],
  },

  {
    name: "sender and recipient restrictions by name (smtpd_delay_reject = no)",
    mainCf: [
      "smtpd_delay_reject = no",
      "local_recipient_maps = inline:{ {root=x}, {known=x} }",
      "smtpd_sender_restrictions = warn_if_reject, reject_non_fqdn_sender, reject_unlisted_sender, " +
      "permit_sasl_authenticated, check_sender_access inline:{ {bad.example=REJECT} }, permit",
      "smtpd_recipient_restrictions = reject_unlisted_recipient, permit_sasl_authenticated, " +
      "reject_non_fqdn_recipient, permit_auth_destination, reject",
    ],
    from: OUTSIDE,
    steps: [
      "EHLO client.example",
      "MAIL FROM:<nobody@localhost>",
      "MAIL FROM:<a@bad.example>",
      "MAIL FROM:<user@nodots>",
      "RCPT TO:<nobody@localhost>",
      "RCPT TO:<known@localhost>",
      "RCPT TO:<user@remote.example>",
      "RCPT TO:<user@relay.example>",
      "RCPT TO:<known>",
      "QUIT",
    ],
  },
  {
    name: "sender and recipient restrictions by name (smtpd_delay_reject = yes)",
    mainCf: [
      "local_recipient_maps = inline:{ {root=x}, {known=x} }",
      "smtpd_sender_restrictions = warn_if_reject, reject_non_fqdn_sender, reject_unlisted_sender, " +
      "permit_sasl_authenticated, check_sender_access inline:{ {bad.example=REJECT} }, permit",
      "smtpd_recipient_restrictions = reject_unlisted_recipient, permit_sasl_authenticated, " +
      "reject_non_fqdn_recipient, permit_auth_destination, reject",
    ],
    from: OUTSIDE,
    steps: [
      "EHLO client.example",
      "MAIL FROM:<nobody@localhost>",
      RCPT,
      "RSET",
      "MAIL FROM:<a@bad.example>",
      RCPT,
      "RSET",
      "MAIL FROM:<user@nodots>",
      "RCPT TO:<nobody@localhost>",
      "RCPT TO:<known@localhost>",
      "RCPT TO:<user@remote.example>",
      "RCPT TO:<user@relay.example>",
      "QUIT",
    ],
  },

  // Recipient validation and address classes.
  {
    name: "unknown local recipients",
    from: OUTSIDE,
    mainCf: [
      "local_recipient_maps = inline:{ {root=x}, {known=x} }",
      "recipient_delimiter = +",
    ],
    steps: [
      "EHLO client.example",
      MAIL,
      RCPT,
      "RCPT TO:<known+ext@localhost>",
      "RCPT TO:<nobody@localhost>",
      "RCPT TO:<nobody@mx.test.example>",
      "RCPT TO:<postmaster@localhost>",
      "RCPT TO:<postmaster>",
      "VRFY nobody@localhost",
      "QUIT",
    ],
  },
  {
    name: "unknown_local_recipient_reject_code and show_user_unknown_table_name",
    mainCf: [
      "local_recipient_maps = inline:{ {root=x} }",
      "unknown_local_recipient_reject_code = 450",
      "show_user_unknown_table_name = no",
    ],
    steps: ["EHLO client.example", MAIL, "RCPT TO:<nobody@localhost>", RCPT, "QUIT"],
  },
  {
    name: "relay_recipient_maps",
    from: OUTSIDE,
    mainCf: ["relay_recipient_maps = inline:{ {known@relay.example=x} }"],
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<known@relay.example>",
      "RCPT TO:<other@relay.example>",
      "QUIT",
    ],
  },
  {
    name: "virtual alias and mailbox domains",
    from: OUTSIDE,
    mainCf: [
      "virtual_alias_domains = alias.example",
      "virtual_alias_maps = inline:{ {a@alias.example=root@localhost} }",
      "virtual_mailbox_domains = box.example",
      "virtual_mailbox_maps = inline:{ {b@box.example=b/} }",
    ],
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<a@alias.example>",
      "RCPT TO:<x@alias.example>",
      "RCPT TO:<b@box.example>",
      "RCPT TO:<x@box.example>",
      "RCPT TO:<postmaster@alias.example>",
      "QUIT",
    ],
  },
  {
    name: "smtpd_reject_unlisted_sender",
    mainCf: ["smtpd_reject_unlisted_sender = yes", "local_recipient_maps = inline:{ {root=x} }"],
    steps: [
      "EHLO client.example",
      "MAIL FROM:<nobody@localhost>",
      RCPT,
      "RSET",
      "MAIL FROM:<root@localhost>",
      RCPT,
      "RSET",
      "MAIL FROM:<someone@client.example>",
      RCPT,
      "QUIT",
    ],
  },
  {
    name: "routing operators with allow_percent_hack = no and swap_bangpath = no",
    mainCf: ["allow_percent_hack = no", "swap_bangpath = no"],
    from: OUTSIDE,
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<user%remote.example@localhost>",
      "RCPT TO:<remote.example!user@localhost>",
      "RCPT TO:<user%remote.example>",
      "QUIT",
    ],
  },
  {
    name: "allow_untrusted_routing = yes",
    mainCf: ["allow_untrusted_routing = yes"],
    from: OUTSIDE,
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<user%remote.example@relay.example>",
      'RCPT TO:<"user@remote.example"@relay.example>',
      "RCPT TO:<user%remote.example@localhost>",
      "QUIT",
    ],
  },
  {
    name: "smtpd_relay_before_recipient_restrictions",
    mainCf: [
      "smtpd_relay_before_recipient_restrictions = no",
      "smtpd_recipient_restrictions = check_recipient_access inline:{ {remote.example=REJECT by recipient list} }",
    ],
    from: OUTSIDE,
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<user@remote.example>",
      "RCPT TO:<user@other.example>",
      "QUIT",
    ],
  },
  {
    name: "resolve_numeric_domain",
    mainCf: ["resolve_numeric_domain = yes"],
    from: OUTSIDE,
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<root@127.0.0.1>",
      "RCPT TO:<root@192.0.2.1>",
      "RCPT TO:<root@>",
      "QUIT",
    ],
  },
  {
    name: "smtpd_null_access_lookup_key",
    mainCf: [
      "smtpd_null_access_lookup_key = <>",
      "smtpd_sender_restrictions = check_sender_access inline:{ {<>=REJECT null sender refused}, {@=REJECT at sign} }",
    ],
    steps: ["EHLO client.example", "MAIL FROM:<>", RCPT, "QUIT"],
  },
  {
    name: "message_size_limit = 0 and a smaller recipient limit",
    mainCf: [
      "message_size_limit = 0",
      "smtpd_recipient_limit = 1",
      "smtpd_recipient_overshoot_limit = 1",
    ],
    steps: [
      "EHLO client.example",
      "MAIL FROM:<a@client.example> SIZE=999999999",
      RCPT,
      "RCPT TO:<b@localhost>",
      "RCPT TO:<c@localhost>",
      "DATA",
      { data: MSG },
      "QUIT",
    ],
  },
  {
    name: "smtpd_banner with reply text",
    mainCf: ["smtpd_banner = $myhostname ESMTP"],
    steps: ["EHLO client.example", "QUIT"],
  },
  {
    name: "HELO in the middle of a transaction",
    steps: ["EHLO client.example", MAIL, RCPT, "HELO again.example", "DATA", MAIL, RCPT, "DATA", {
      data: MSG,
    }, "QUIT"],
  },
  {
    name: "duplicate recipients",
    steps: ["EHLO client.example", MAIL, RCPT, RCPT, "RCPT TO:<ROOT@localhost>", "DATA", {
      data: MSG,
    }, "QUIT"],
  },
  {
    name: "long HELO names",
    mainCf: STRICT,
    steps: [
      `HELO ${"a".repeat(63)}.example`,
      MAIL,
      RCPT,
      `HELO ${"a".repeat(64)}.example`,
      MAIL,
      RCPT,
      `HELO ${"abc.".repeat(70)}example`,
      MAIL,
      RCPT,
      "QUIT",
    ],
  },

  {
    name: "smtpd_timeout",
    mainCf: ["smtpd_timeout = 2s"],
    steps: ["EHLO client.example", MAIL, { raw: "RCPT TO:<root@localhost>", replies: 1 }],
  },
  {
    name: "smtpd_timeout during DATA",
    mainCf: ["smtpd_timeout = 2s"],
    steps: ["EHLO client.example", MAIL, RCPT, "DATA", {
      raw: "Subject: x\r\n\r\npartial",
      replies: 1,
    }],
  },

  // Waiting for other branches.
  {
    name: "BDAT message",
    steps: ["EHLO client.example", MAIL, RCPT, {
      raw: "BDAT 21 LAST\r\nSubject: x\r\n\r\nhello\r\n",
      replies: 1,
    }, "QUIT"],
  },
  {
    name: "BDAT in chunks, then DATA refused",
    steps: [
      "EHLO client.example",
      MAIL,
      RCPT,
      { raw: "BDAT 12\r\nSubject: x\r\n", replies: 1 },
      { raw: "BDAT 9 LAST\r\n\r\nhello\r\n", replies: 1 },
      MAIL,
      RCPT,
      { raw: "BDAT 5\r\nhello", replies: 1 },
      "DATA",
      "RSET",
      "QUIT",
    ],
  },
  {
    name: "BDAT without a count ends the session",
    steps: ["EHLO client.example", "BDAT", "QUIT"],
  },
  {
    name: "BDAT with a bad count ends the session",
    steps: ["EHLO client.example", "BDAT x", "QUIT"],
  },
  {
    name: "empty BDAT LAST before and after RCPT",
    steps: ["EHLO client.example", MAIL, "BDAT 0 LAST", RCPT, "BDAT 0 LAST", "QUIT"],
  },
  {
    name: "CHUNKING advertised and BDAT before MAIL",
    steps: ["EHLO client.example", { raw: "BDAT 5\r\nhello", replies: 1 }, "QUIT"],
  },
  {
    name: "SMTPUTF8 addresses",
    steps: [
      "EHLO client.example",
      "MAIL FROM:<j\xc3\xb8e@client.example>",
      "MAIL FROM:<j\xc3\xb8e@client.example> SMTPUTF8",
      "RCPT TO:<r\xc3\xb8\xc3\xb8t@localhost>",
      "QUIT",
    ],
  },
  {
    name: "SMTPUTF8 parameter on an ASCII transaction",
    steps: ["EHLO client.example", "MAIL FROM:<a@client.example> SMTPUTF8", RCPT, "DATA", {
      data: MSG,
    }, "QUIT"],
  },
  {
    name: "VRFY without an address names SMTPUTF8 in its syntax reply",
    steps: ["VRFY", "QUIT"],
  },
  {
    name: "STARTTLS without TLS configured",
    steps: ["EHLO client.example", "STARTTLS", "QUIT"],
  },
  {
    name: "AUTH without SASL, and the MAIL AUTH parameter",
    steps: [
      "EHLO client.example",
      "AUTH PLAIN AGZvbwBiYXI=",
      "MAIL FROM:<a@client.example> AUTH=<>",
      "QUIT",
    ],
  },
  {
    name: "XCLIENT and XFORWARD from a client not authorized",
    steps: ["EHLO client.example", "XCLIENT ADDR=192.0.2.1", "XFORWARD ADDR=192.0.2.1", "QUIT"],
  },
  {
    name: "forbidden commands end the session",
    steps: ["EHLO client.example", "GET / HTTP/1.0"],
  },
  {
    name: "message headers sent as commands after a refused DATA end the session",
    from: OUTSIDE,
    steps: [
      "EHLO client.example",
      MAIL,
      "RCPT TO:<nobody@remote.example>",
      { pipe: ["DATA", "From: a@b", "Subject: x", "", "body", ".", "NOOP"] },
      "QUIT",
    ],
  },
  {
    name: "a command that is not a word ends the session",
    steps: ["EHLO client.example", "*** junk"],
  },
  {
    name: "8-bit bytes that are not UTF-8 in a command",
    steps: ["EHLO client.example", MAIL, 'RCPT TO:<"a\xe9b"@localhost>', "QUIT"],
  },
  {
    name:
      "end of DATA with bare LFs (Postfix 3.7 ends at <LF>.<LF>, Postwarden only at <CR><LF>.<CR><LF>)",
    steps: [
      "EHLO client.example",
      MAIL,
      RCPT,
      "DATA",
      { raw: "Subject: a\r\n\r\nbody\n.\nNOOP\r\n", replies: 2 },
      "QUIT",
    ],
  },
  {
    // A domain outside fast_flush_domains: for one inside (relay_domains here) Postfix's
    // flush service starts a delivery, which Postwarden has no service for (459 always).
    name: "ETRN",
    steps: ["EHLO client.example", "ETRN", "ETRN other.example", "ETRN @x..y", "QUIT"],
  },
];
