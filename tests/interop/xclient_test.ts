/**
 * Differential test of XCLIENT, XFORWARD and ETRN: a real Postfix 3.7 and
 * a Postwarden instance get the same main.cf and the same scripted SMTP
 * sessions; every reply line must be the same, and so must the reject,
 * ETRN warning and disconnect log lines.
 *
 * Covered: XCLIENT from an authorized client (every syntax error, a
 * transaction in progress, the new identity's relay and access decisions
 * and log lines, the 550 once the new identity is not authorized, the
 * client restrictions re-run after XCLIENT with smtpd_delay_reject = no),
 * XCLIENT and XFORWARD from an unauthorized client, XFORWARD's syntax
 * errors and that restrictions keep the real client, ETRN's replies. Not
 * covered here: the queue file attributes (daemons/smtpd/testdata/xforward.dialog).
 *
 * Without Postfix or root the test is skipped loudly; under CI=true it
 * fails instead.
 *
 * @module
 */
import { assertEquals } from "../helpers/assert.ts";
import { onBoth } from "../helpers/differential.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { comparableReplies, type Instance, smtpReplies } from "../helpers/instance.ts";
import { countLines, waitForLog } from "../helpers/maillog.ts";
import { POSTFIX, type PostfixInstance } from "../helpers/postfix.ts";

const COMMON = [
  "myhostname = mx.test.example",
  "smtpd_banner = $myhostname ESMTP",
  "mydestination = $myhostname, localhost",
  "mynetworks = 127.0.0.0/8",
  "local_recipient_maps =",
  "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
  "smtpd_recipient_restrictions = check_recipient_access inline:{ {rej@localhost=REJECT} }",
  "smtpd_error_sleep_time = 0",
  "smtpd_soft_error_limit = 10000",
  "smtpd_hard_error_limit = 10000",
];

interface Scenario {
  name: string;
  mainCf: string[];
  sessions: string[][];
}

const SCENARIOS: Scenario[] = [
  {
    name: "authorized",
    mainCf: [
      "smtpd_authorized_xclient_hosts = 127.0.0.1",
      "smtpd_authorized_xforward_hosts = 127.0.0.1",
      "smtpd_delay_reject = no",
      "smtpd_client_restrictions = check_client_access inline:{ {192.0.2.66=REJECT} }",
    ],
    sessions: [
      [
        "EHLO proxy.example",
        "XCLIENT",
        "XCLIENT FOO=bar",
        "XCLIENT ADDR=notanaddr",
        "XCLIENT ADDR=2001:db8::1",
        "XCLIENT NAME=bad_name!",
        "XCLIENT PROTO=foo",
        "XCLIENT PORT=123456",
        "XCLIENT LOGIN=",
        "MAIL FROM:<a@b.example>",
        "XCLIENT NAME=x.example",
        "RSET",
        "XCLIENT NAME=client.example ADDR=192.0.2.7 PORT=4567 PROTO=ESMTP HELO=helo.example",
        "MAIL FROM:<a@b.example>",
        "RCPT TO:<rej@localhost>",
        "RCPT TO:<someone@outside.example>",
        "RSET",
        "XCLIENT ADDR=127.0.0.1",
        "QUIT",
      ],
      [
        "XCLIENT NAME=[TEMPUNAVAIL] ADDR=192.0.2.8 HELO=[UNAVAILABLE]",
        "MAIL FROM:<a@b.example>",
        "RCPT TO:<rej@localhost>",
        "QUIT",
      ],
      ["XCLIENT ADDR=192.0.2.66", "EHLO x", "XCLIENT ADDR=1.1.1.1", "QUIT"],
      [
        "EHLO x",
        "XFORWARD",
        "XFORWARD FOO=1",
        "XFORWARD SOURCE=bogus",
        "XFORWARD NAME=a:b",
        "XFORWARD PORT=123456",
        "XFORWARD NAME=up.example ADDR=192.0.2.1 PORT=2525 HELO=uphelo IDENT=ABC123 PROTO=SMTP SOURCE=REMOTE",
        "MAIL FROM:<a@b.example>",
        "XFORWARD NAME=x.example",
        "RCPT TO:<rej@localhost>",
        "RSET",
        "ETRN",
        "ETRN example.com",
        "ETRN @example.com",
        "ETRN [192.0.2.1]",
        "ETRN bad_domain!",
        "ETRN a b",
        "MAIL FROM:<a@b.example>",
        "ETRN example.com",
        "QUIT",
      ],
    ],
  },
  {
    name: "unauthorized",
    mainCf: [
      "smtpd_authorized_xclient_hosts = 192.0.2.1",
      "smtpd_authorized_xforward_hosts = 192.0.2.1",
    ],
    sessions: [[
      "EHLO x",
      "XCLIENT NAME=x.example",
      "XCLIENT",
      "XFORWARD NAME=x.example",
      "XFORWARD",
      "MAIL FROM:<a@b.example>",
      "RCPT TO:<rej@localhost>",
      "QUIT",
    ]],
  },
];

/** The log lines this test compares, without time, host, program and queue id. */
function compared(log: string): string[] {
  return log.split("\n").flatMap((l) => {
    const m = /smtpd\[\d+\]: (.*)$/.exec(l);
    if (!m) return [];
    const text = m[1];
    // The instance helpers' readiness probes connect and leave without a command.
    if (/^disconnect from \S+ commands=0(\/0)?$/.test(text)) return [];
    return /^(NOQUEUE: reject: |warning: reject: ETRN|disconnect from )/.test(text) ? [text] : [];
  });
}

Deno.test({
  name: "XCLIENT, XFORWARD and ETRN: the same replies and log lines as Postfix",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    for (const s of SCENARIOS) {
      const mainCf = [...COMMON, ...s.mainCf].join("\n");
      const run = async (inst: Instance | PostfixInstance) => {
        const replies: string[][] = [];
        // Each session's log lines before the next session's (several smtpd
        // processes log independently); one more disconnect: the readiness probe's.
        let log = "";
        for (const [i, cmds] of s.sessions.entries()) {
          replies.push(await smtpReplies(inst.port, cmds));
          log = await waitForLog(inst, (l) => countLines(l, /disconnect from /) >= 2 + i, 10_000);
        }
        return { replies, log: compared(log) };
      };
      const { theirs, ours } = await onBoth(mainCf, (server) => run(server));
      await t.step(`${s.name}: same replies`, () => {
        s.sessions.forEach((cmds, i) => {
          assertEquals(
            comparableReplies(cmds, ours.replies[i]),
            comparableReplies(cmds, theirs.replies[i]),
          );
        });
      });
      await t.step(`${s.name}: same reject, ETRN and disconnect log lines`, () => {
        assertEquals(ours.log, theirs.log);
      });
    }
  },
});
