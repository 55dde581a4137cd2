/**
 * Differential test of SMTP access tables: a real Postfix 3.7 and a
 * Postwarden instance get the same main.cf (check_client_access,
 * check_helo_access, check_sender_access, check_recipient_access with
 * inline: and cidr: tables, smtpd_restriction_classes), and one scripted
 * SMTP session each per configuration; every reply line must be the same,
 * and so must the WARN, INFO and warn_if_reject log lines (queue id aside).
 *
 * Covered: each access(5) result (OK, a number, REJECT and DEFER with and
 * without text or enhanced code, NXX text, DUNNO, DEFER_IF_REJECT,
 * DEFER_IF_PERMIT, WARN, INFO, restriction names and class names as
 * results), the client address and its truncations (127.0.0.1, 127.0.0,
 * 127.0, 127) after the host name, helo names and their parent domains,
 * address extensions, `user@` and domain keys, the null sender as `<>`.
 * a table that cannot answer (`fail:`), classes naming classes, and the
 * actions handed to cleanup (HOLD, DISCARD, REDIRECT, BCC, FILTER: their replies,
 * log lines and what they do to later restrictions; where the message goes
 * is tests/integration/access_actions_test.ts). Not covered: bytes that
 * Postwarden's address parser refuses before any restriction runs.
 *
 * Without Postfix or root the test is skipped loudly; under CI=true it
 * fails instead.
 *
 * @module
 */
import { assertEquals } from "../helpers/assert.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { comparableReplies, smtpReplies } from "../helpers/instance.ts";
import { onBoth } from "../helpers/differential.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { POSTFIX } from "../helpers/postfix.ts";

/** Settings of both servers: the test client (127.0.0.1) is outside mynetworks. */
const COMMON = [
  "myhostname = mx.test.example",
  "mydestination = $myhostname, localhost, sub.dest.example",
  "mynetworks = 192.0.2.0/24",
  "local_recipient_maps =",
  "recipient_delimiter = +",
  "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
  "smtpd_error_sleep_time = 0",
  "smtpd_soft_error_limit = 10000",
  "smtpd_hard_error_limit = 10000",
];

/** A MAIL/RCPT pair and RSET: one sender check. */
const senderCase = (from: string, to = "<root@localhost>") => [
  `MAIL FROM:${from}`,
  `RCPT TO:${to}`,
  "RSET",
];

/**
 * The log's WARN, INFO, reject_warning and access action (hold, discard,
 * redirect, bcc, filter) lines from the queue id on, with NOQUEUE or "ID".
 */
function whatsup(log: string): string[] {
  return log.split("\n").flatMap((l) => {
    const m =
      /: ([0-9A-Za-z]+|NOQUEUE): ((?:warn|info|reject_warning|hold|discard|redirect|bcc|filter): (?:RCPT|MAIL|DATA|END-OF-MESSAGE|CONNECT|EHLO|HELO|VRFY) from .*)$/
        .exec(l);
    return m ? [`${m[1] === "NOQUEUE" ? "NOQUEUE" : "ID"}: ${m[2]}`] : [];
  });
}

/** Replies with the queue id masked ("queued as ID"). */
const masked = (replies: string[]) =>
  replies.map((r) => r.replace(/queued as \w+/, "queued as ID"));

interface Scenario {
  name: string;
  mainCf: string[];
  commands: string[];
}

/** The cidr table file; `dir` is readable by both servers' daemons. */
const CIDR = "127.0.0.0/8 DEFER_IF_PERMIT cidr says wait\n";

function scenarios(cidr: string): Scenario[] {
  const mail: Scenario = {
    name: "helo, sender and recipient tables, classes",
    mainCf: [
      "smtpd_restriction_classes = friends_only, strict",
      "friends_only = check_sender_access inline:{ {friend@friends.example=OK} }, reject",
      "strict = reject_non_fqdn_sender, check_sender_access inline:{ {strict.example=REJECT strict class} }",
      "smtpd_helo_restrictions = check_helo_access inline:{ {bad.helo.example=REJECT}, " +
      "{sub.parent.example=DUNNO}, {parent.example=550 5.7.0 parent helo}, " +
      "{num.helo.example=42}, {2.3.4=REJECT numeric parent}, {1.2.3.4=DUNNO} }, " +
      "check_helo_access inline:{ {3.4=REJECT numeric parent}, {10.1.1.1=REJECT numeric} }, " +
      "reject_non_fqdn_helo_hostname",
      "smtpd_sender_restrictions = check_sender_access inline:{ {<>=REJECT no bounces}, " +
      "{user@sender.example=OK}, {sender.example=DEFER}, {ext+tag@ext.example=450 4.1.8 with ext}, " +
      "{ext@ext.example=REJECT without ext}, {blocked@=REJECT local part}, " +
      "{friends.example=friends_only}, {psender.example=REJECT parent domain}, " +
      "{dip.example=DEFER_IF_PERMIT}, {dir.example=DEFER_IF_REJECT held}, " +
      "{warn.example=WARN look}, {info.example=INFO look}, {list.example=reject_non_fqdn_recipient permit} }",
      "smtpd_recipient_restrictions = warn_if_reject, " +
      "check_recipient_access inline:{ {warnrej@localhost=REJECT would reject} }, " +
      "check_recipient_access inline:{ {rej@localhost=REJECT}, " +
      "{txt@localhost=REJECT custom text}, {dsn@localhost=REJECT 5.7.9 with dsn}, " +
      "{def@localhost=DEFER}, {deftxt@localhost=DEFER 4.2.0 later}, " +
      "{code@localhost=553 5.2.1 full code}, {code4@localhost=451 text only}, " +
      "{ok@localhost=OK}, {dunno@localhost=DUNNO}, {cls@localhost=strict}, " +
      "{fix@localhost=REJECT 5.1.7 fixed}, {dest.example=REJECT parent of ours}, " +
      "{ext@localhost=REJECT extension stripped}, {dif@localhost=DEFER_IF_REJECT later}, " +
      "{difp@localhost=DEFER_IF_PERMIT maybe} }, " +
      "check_recipient_access inline:{ {dunno@localhost=REJECT second table}, " +
      "{dif@localhost=reject}, {difp@localhost=permit} }",
    ],
    commands: [
      "EHLO bad.helo.example",
      ...senderCase("<someone@client.example>"),
      "EHLO x.sub.parent.example",
      ...senderCase("<someone@client.example>"),
      "EHLO other.parent.example",
      ...senderCase("<someone@client.example>"),
      "EHLO num.helo.example",
      ...senderCase("<someone@client.example>"),
      "EHLO client",
      ...senderCase("<someone@client.example>"),
      "EHLO 1.2.3.4",
      ...senderCase("<someone@client.example>"),
      "EHLO 10.1.1.1",
      ...senderCase("<someone@client.example>"),
      "EHLO BAD.Helo.Example",
      ...senderCase("<someone@client.example>"),
      "EHLO client.example",
      ...senderCase("<>"),
      ...senderCase("<user@sender.example>"),
      ...senderCase("<other@sender.example>"),
      ...senderCase("<ext+tag@ext.example>"),
      ...senderCase("<ext+other@ext.example>"),
      ...senderCase("<blocked@elsewhere.example>"),
      ...senderCase("<friend@friends.example>"),
      ...senderCase("<stranger@friends.example>"),
      ...senderCase("<x@a.b.psender.example>"),
      ...senderCase("<x@dip.example>"),
      ...senderCase("<x@dir.example>"),
      ...senderCase("<x@dir.example>", "<rej@localhost>"),
      ...senderCase("<x@warn.example>"),
      ...senderCase("<x@info.example>"),
      ...senderCase("<x@list.example>", "<root>"),
      ...senderCase("<x@list.example>", "<root@localhost>"),
      "MAIL FROM:<someone@client.example>",
      ...[
        "rej",
        "txt",
        "dsn",
        "def",
        "deftxt",
        "code",
        "code4",
        "ok",
        "dunno",
        "cls",
        "fix",
        "ext+foo",
        "dif",
        "difp",
        "nobody",
        "warnrej",
      ].map((u) => `RCPT TO:<${u}@localhost>`),
      "RCPT TO:<x@sub.dest.example>",
      "RCPT TO:<someone@outside.example>",
      "RSET",
      ...senderCase("<x@strict.example>", "<cls@localhost>"),
      "QUIT",
    ],
  };
  const client: Scenario = {
    name: "client address truncations, DUNNO, WARN and DEFER_IF_REJECT",
    mainCf: [
      "smtpd_client_restrictions = check_client_access inline:{ {127.0.0.1=DUNNO} }, " +
      "check_client_access inline:{ {127.0=WARN seen} }, " +
      "check_client_access inline:{ {127=DEFER_IF_REJECT client says later} }, " +
      "check_client_access inline:{ {127.0.0=OK} }, reject",
      "smtpd_recipient_restrictions = check_recipient_access inline:{ {rej@localhost=REJECT} }",
    ],
    commands: [
      "EHLO client.example",
      "MAIL FROM:<someone@client.example>",
      "RCPT TO:<root@localhost>",
      "RCPT TO:<rej@localhost>",
      "RCPT TO:<someone@outside.example>",
      "QUIT",
    ],
  };
  const hostname: Scenario = {
    name: "client host name before address, cidr table, DEFER_IF_PERMIT",
    mainCf: [
      "smtpd_client_restrictions = check_client_access inline:{ {localhost=DUNNO}, {127=REJECT} }, " +
      `check_client_access cidr:${cidr}`,
    ],
    commands: [
      "EHLO client.example",
      "MAIL FROM:<someone@client.example>",
      "RCPT TO:<root@localhost>",
      "RCPT TO:<someone@outside.example>",
      "QUIT",
    ],
  };
  const early: Scenario = {
    name: "smtpd_delay_reject = no: tables at HELO and MAIL, DEFER_IF_PERMIT carried to RCPT",
    mainCf: [
      "smtpd_delay_reject = no",
      "smtpd_helo_restrictions = check_helo_access inline:{ {bad.helo.example=REJECT go away}, " +
      "{dip.helo.example=DEFER_IF_PERMIT helo maybe} }",
      "smtpd_sender_restrictions = check_sender_access inline:{ {<>=DEFER no bounces now}, " +
      "{dip.example=DEFER_IF_PERMIT sender maybe} }",
    ],
    commands: [
      "HELO bad.helo.example",
      "EHLO dip.helo.example",
      "MAIL FROM:<a@good.example>",
      "RCPT TO:<root@localhost>",
      "RSET",
      "EHLO good.example",
      "MAIL FROM:<>",
      "MAIL FROM:<a@dip.example>",
      "RCPT TO:<root@localhost>",
      "RSET",
      "MAIL FROM:<a@good.example>",
      "RCPT TO:<root@localhost>",
      "QUIT",
    ],
  };
  const failing: Scenario = {
    name: "a table that cannot answer, same-stage DEFER_IF_REJECT, classes in a list",
    mainCf: [
      "smtpd_restriction_classes = outer, inner, failing",
      "outer = inner",
      "inner = check_recipient_access inline:{ {inner@localhost=REJECT from inner} }",
      "failing = check_sender_access fail:senders",
      "smtpd_sender_restrictions = check_sender_access inline:{ {bad.example=failing} }",
      "smtpd_recipient_restrictions = outer, check_recipient_access inline:{ " +
      "{dif@localhost=DEFER_IF_REJECT}, {failrcpt@localhost=failing} }, " +
      "check_recipient_access inline:{ {dif@localhost=reject} }",
    ],
    commands: [
      "EHLO client.example",
      "MAIL FROM:<someone@bad.example>",
      "RCPT TO:<root@localhost>",
      "RSET",
      "MAIL FROM:<>",
      "RCPT TO:<root@localhost>",
      "RCPT TO:<inner@localhost>",
      "RCPT TO:<dif@localhost>",
      "RCPT TO:<failrcpt@localhost>",
      "QUIT",
    ],
  };
  const message = "Subject: test\r\n\r\nbody\r\n.";
  const actions: Scenario = {
    name: "HOLD, DISCARD, REDIRECT, BCC and FILTER actions",
    mainCf: [
      "smtpd_sender_restrictions = check_sender_access inline:{ {held@client.example=HOLD}, " +
      "{disc@client.example=DISCARD sender dropped} }",
      "smtpd_recipient_restrictions = check_recipient_access inline:{ {hold@localhost=HOLD}, " +
      "{holdtxt@localhost=HOLD held for review}, {disc@localhost=DISCARD}, " +
      "{red@localhost=REDIRECT boss@localhost}, {red2@localhost=REDIRECT other@localhost}, " +
      "{badred@localhost=REDIRECT nowhere}, {bcc@localhost=BCC copy@localhost}, " +
      "{bcc2@localhost=BCC copy2@localhost}, {rej@localhost=REJECT}, " +
      "{filt@localhost=FILTER smtp:[127.0.0.1]:10025}, {badfilt@localhost=FILTER nocolon} }, " +
      "check_recipient_access inline:{ {disc@localhost=REJECT not reached} }",
      "smtpd_data_restrictions = check_sender_access inline:{ {data@client.example=HOLD at data} }",
      "smtpd_end_of_data_restrictions = check_sender_access inline:{ " +
      "{eod@client.example=DISCARD at the end}, {eodbcc@client.example=BCC late@localhost} }",
    ],
    commands: [
      "EHLO client.example",
      "MAIL FROM:<a@client.example>",
      "RCPT TO:<hold@localhost>",
      "RCPT TO:<holdtxt@localhost>",
      "RCPT TO:<root@localhost>",
      "DATA",
      message,
      "MAIL FROM:<a@client.example>",
      "RCPT TO:<root@localhost>",
      "RCPT TO:<disc@localhost>",
      "RCPT TO:<disc@outside.example>",
      "RCPT TO:<rej@localhost>",
      "DATA",
      message,
      "MAIL FROM:<a@client.example>",
      "RCPT TO:<red@localhost>",
      "RCPT TO:<red2@localhost>",
      "RCPT TO:<badred@localhost>",
      "RCPT TO:<bcc@localhost>",
      "RCPT TO:<bcc2@localhost>",
      "RCPT TO:<filt@localhost>",
      "RCPT TO:<badfilt@localhost>",
      "DATA",
      message,
      "MAIL FROM:<held@client.example>",
      "RCPT TO:<root@localhost>",
      "RCPT TO:<rej@localhost>",
      "RSET",
      "MAIL FROM:<disc@client.example>",
      "RCPT TO:<root@localhost>",
      "RCPT TO:<someone@outside.example>",
      "RSET",
      "MAIL FROM:<data@client.example>",
      "RCPT TO:<root@localhost>",
      "DATA",
      message,
      "MAIL FROM:<eod@client.example>",
      "RCPT TO:<root@localhost>",
      "RCPT TO:<hold@localhost>",
      "DATA",
      message,
      "MAIL FROM:<eodbcc@client.example>",
      "RCPT TO:<root@localhost>",
      "DATA",
      message,
      "QUIT",
    ],
  };
  const noTransaction: Scenario = {
    name: "actions outside a transaction (smtpd_delay_reject = no) are skipped",
    mainCf: [
      "smtpd_delay_reject = no",
      "smtpd_client_restrictions = check_client_access inline:{ {127.0.0.1=HOLD} }",
      "smtpd_helo_restrictions = check_helo_access inline:{ {disc.example=DISCARD} }",
      "smtpd_sender_restrictions = check_sender_access inline:{ {a@client.example=HOLD from mail} }",
    ],
    commands: [
      "EHLO disc.example",
      "MAIL FROM:<a@client.example>",
      "RCPT TO:<root@localhost>",
      "DATA",
      message,
      "QUIT",
    ],
  };
  return [mail, client, hostname, early, failing, actions, noTransaction];
}

Deno.test({
  name: "access tables: the same replies as Postfix",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    const dir = await Deno.makeTempDir({ prefix: "access-test-" });
    await Deno.chmod(dir, 0o755);
    const cidr = `${dir}/client.cidr`;
    await Deno.writeTextFile(cidr, CIDR, { mode: 0o644 });
    try {
      for (const s of scenarios(cidr)) {
        const mainCf = [...COMMON, ...s.mainCf].join("\n");
        const { theirs: [theirs, theirLog], ours: [ours, ourLog] } = await onBoth(
          mainCf,
          async (server) =>
            [
              await smtpReplies(server.port, s.commands),
              await waitForLog(server, "quit=1"),
            ] as const,
          { label: s.name },
        );
        await t.step(`${s.name}: same replies as Postfix`, () => {
          assertEquals(
            comparableReplies(s.commands, masked(ours)),
            comparableReplies(s.commands, masked(theirs)),
          );
        });
        await t.step(`${s.name}: same warn, info and reject_warning log lines`, () => {
          assertEquals(whatsup(ourLog), whatsup(theirLog));
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
