/**
 * Differential test of smtpd's protocol handling against a real Postfix:
 * the same raw byte sessions to Postfix (Debian's 3.7, given the 3.9
 * settings explicitly) and to Postwarden, every reply must be the same
 * (queue ids masked), and so must the log lines both write about
 * protocol violations.
 *
 * Covered: smtpd_forbid_unauth_pipelining (before EHLO, after HELO, after
 * DATA, NOOP and VRFY, BDAT after HELO) and reject_unauth_pipelining, smtpd_forbidden_commands and
 * header labels, unknown commands, NUL and invalid UTF-8 in commands,
 * BDAT (pipelined chunks, every error path, syntax, size limit, RCPT/MAIL/
 * DATA after BDAT), SMTPUTF8 and strict_smtputf8, DSN parameters (and the
 * queue file as postcat shows it: envelope_id, ret_flags, notify_flags,
 * dsn_orig_rcpt, Received "with UTF8SMTP"), smuggling sequences in DATA,
 * smtpd_forbid_bare_newline = normalize and reject and its exclusions
 * (an excluded client gets "no": "\n.\n" ends DATA, as in Postfix), and
 * smtpd_discard_ehlo_keywords and smtpd_discard_ehlo_keyword_address_maps
 * (CHUNKING, SMTPUTF8, VRFY, DSN and
 * ENHANCEDSTATUSCODES; replies keep their enhanced codes, as Postfix's do).
 *
 * Postfix 3.7 versus 3.9: 3.7.11 has every 3.9 feature used here, with
 * older defaults (smtpd_forbid_bare_newline = no,
 * smtpd_forbid_unauth_pipelining = no), so both servers get the 3.9 values
 * explicitly. Postwarden offers no ETRN: Postfix's ETRN line is dropped
 * from its EHLO replies before comparing.
 *
 * Without Postfix or root the test is skipped loudly; under CI=true it
 * fails instead.
 *
 * @module
 */
import { assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { onBoth, type Server } from "../helpers/differential.ts";
import { countLines, type HasMaillog, waitForLog } from "../helpers/maillog.ts";
import { POSTFIX } from "../helpers/postfix.ts";
import { playScript } from "../helpers/smtp_script.ts";

/** One write and the number of replies it is answered with (the session may end sooner). */
type Step = [send: string, replies: number];

interface Scenario {
  name: string;
  mainCf: string[];
  sessions: Step[][];
  /** A reply Postfix must give (so many times): shows that the setting under test took effect. */
  shows?: string;
  times?: number;
}

const COMMON = [
  "smtpd_banner = $myhostname ESMTP",
  "mynetworks = 127.0.0.0/8",
  "smtpd_relay_restrictions = permit_mynetworks, reject",
  "relayhost = [127.0.0.1]:9",
  "smtpd_forbid_bare_newline = normalize",
  "smtpd_forbid_bare_newline_exclusions =",
  "smtpd_forbid_unauth_pipelining = yes",
  "smtpd_error_sleep_time = 0",
];

const EHLO: Step = ["EHLO client.example\r\n", 1];
const MAIL: Step = ["MAIL FROM:<a@sender.example>\r\n", 1];
const RCPT: Step = ["RCPT TO:<x@remote.example>\r\n", 1];
const QUIT: Step = ["QUIT\r\n", 1];

const normalize: Scenario = {
  name: "normalize",
  mainCf: [],
  sessions: [
    // Pipelining where RFC 2920 does not allow it.
    [["EHLO client.example\r\nMAIL FROM:<a@sender.example>\r\n", 1]],
    [["HELO client.example\r\n", 1], [MAIL[0] + RCPT[0], 1]],
    [EHLO, [MAIL[0] + RCPT[0] + "DATA\r\nSubject: early\r\n", 3]],
    [EHLO, ["NOOP\r\nNOOP\r\n", 1]],
    [EHLO, ["VRFY someone\r\nNOOP\r\n", 1]],
    [EHLO, ["RSET\r\nNOOP\r\nQUIT\r\n", 3]],
    [["HELO client.example\r\n", 1], MAIL, RCPT, ["BDAT 3 LAST\r\nxyz", 1]],
    // Unknown and forbidden commands, NUL and 8-bit bytes.
    [EHLO, ["FOO\r\n", 1], ["foo bar\r\n", 1], ["GET / HTTP/1.0\r\n", 1]],
    [EHLO, ["Subject: hello\r\n", 1]],
    [EHLO, ["1foo\r\n", 1]],
    [EHLO, ["NO\x00OP\r\n", 1], ["MAIL FROM:<a\x00b@sender.example>\r\n", 1], [
      "NOOP\x00junk\r\n",
      1,
    ], QUIT],
    [EHLO, ["GET\x00junk\r\n", 1]],
    [EHLO, ["NOOP \xff\r\n", 1], ["\xc3\xa9hlo x\r\n", 1]],
    // BDAT.
    [EHLO, MAIL, RCPT, ["BDAT 3\r\nabcBDAT 0 LAST\r\n", 2], QUIT],
    [
      EHLO,
      ["BDAT 3\r\nabc", 1],
      MAIL,
      ["BDAT 3\r\nabc", 1],
      RCPT,
      ["BDAT 3\r\nabc", 1],
      ["DATA\r\n", 1],
      ["RSET\r\n", 1],
      MAIL,
      RCPT,
      ["DATA\r\n", 1],
      ["x\r\n.\r\n", 1],
      ["BDAT 3\r\nabc", 1],
      MAIL,
      RCPT,
      ["BDAT 3\r\nabc", 1],
      ["BDAT 0 LAST\r\n", 1],
      QUIT,
    ],
    [EHLO, MAIL, RCPT, ["BDAT 2\r\nab", 1], ["RCPT TO:<y@remote.example>\r\n", 1], [
      "BDAT 1 LAST\r\nc",
      1,
    ], QUIT],
    [EHLO, ["BDAT 3 FOO\r\nabc", 1]],
    [EHLO, ["BDAT 99999999999999999999\r\n", 1]],
    [EHLO, ["BDAT\r\n", 1]],
    // SMTPUTF8 and DSN; the message is kept (deferred) for postcat.
    [
      EHLO,
      ["MAIL FROM:<a@sender.example> SMTPUTF8=yes\r\n", 1],
      ["MAIL FROM:<a@sender.example> RET=X\r\n", 1],
      ["MAIL FROM:<a@sender.example> ENVID=a+ZZ\r\n", 1],
      ["MAIL FROM:<a@sender.example> RET=HDRS RET=FULL\r\n", 1],
      ["MAIL FROM:<a@sender.example> ENVID=dsn+2Btest RET=hdrs SMTPUTF8\r\n", 1],
      ["RCPT TO:<x@remote.example> NOTIFY=BOGUS\r\n", 1],
      ["RCPT TO:<x@remote.example> NOTIFY=NEVER,SUCCESS\r\n", 1],
      ["RCPT TO:<x@remote.example> NOTIFY=\r\n", 1],
      ["RCPT TO:<x@remote.example> ORCPT=bogus\r\n", 1],
      ["RCPT TO:<x@remote.example> ORCPT=rfc822;a+ZZ\r\n", 1],
      ["RCPT TO:<x@remote.example> ORCPT=rfc822;o+2Br@remote.example NOTIFY=success,delay\r\n", 1],
      ["RCPT TO:<j\xc3\xb6@remote.example> NOTIFY=never\r\n", 1],
      ["DATA\r\n", 1],
      ["Subject: dsn\r\n\r\nbody\r\n.\r\n", 1],
      QUIT,
    ],
    // Smuggling sequences stay content.
    [EHLO, MAIL, RCPT, ["DATA\r\n", 1], [
      "Subject: s1\r\n\r\nbody\n.\r\nMAIL FROM:<evil@sender.example>\r\n" +
      "RCPT TO:<e@remote.example>\r\nDATA\r\nevil\r\n.\r\n",
      1,
    ], QUIT],
    [EHLO, MAIL, RCPT, ["DATA\r\n", 1], [
      "Subject: s2\r\n\r\nbody\r\r\n.\r\r\nMAIL FROM:<evil@sender.example>\r\n" +
      "RCPT TO:<e@remote.example>\r\nDATA\r\nevil\r\n.\r\n",
      1,
    ], QUIT],
  ],
};

const reject: Scenario = {
  name: "reject",
  mainCf: ["smtpd_forbid_bare_newline = reject"],
  shows: "550 5.5.2 mx.test.example Error: bare <LF> received",
  sessions: [
    [EHLO, MAIL, RCPT, ["DATA\r\n", 1], ["a\nb\r\n.\r\n", 1], QUIT],
    [EHLO, ["MAIL FROM:<a@sender.example>\n", 1]],
    [EHLO, MAIL, RCPT, ["BDAT 5\r\na\nbc\n", 1], ["BDAT 3 LAST\r\nxyz", 1], ["NOOP\r\n", 1]],
  ],
};

const strict: Scenario = {
  name: "strict_smtputf8, message_size_limit, discarded keywords",
  mainCf: [
    "strict_smtputf8 = yes",
    "message_size_limit = 1000",
    "smtpd_discard_ehlo_keywords = vrfy",
  ],
  sessions: [
    [
      EHLO,
      ["MAIL FROM:<j\xc3\xb6@sender.example>\r\n", 1],
      MAIL,
      ["RCPT TO:<j\xc3\xb6@remote.example>\r\n", 1],
      ["RSET\r\n", 1],
      ["MAIL FROM:<j\xc3\xb6@sender.example> SMTPUTF8\r\n", 1],
      QUIT,
    ],
    [EHLO, MAIL, RCPT, ["BDAT 2000\r\n" + "x".repeat(2000), 1], ["NOOP\r\n", 1], QUIT],
  ],
};

const noChunking: Scenario = {
  name: "CHUNKING and SMTPUTF8 discarded for the client's address",
  mainCf: [
    "smtpd_discard_ehlo_keywords = vrfy",
    "smtpd_discard_ehlo_keyword_address_maps = inline:{{127.0.0.1=chunking, smtputf8, silent-discard}}",
  ],
  shows: "521 5.5.1 Error: command not implemented",
  sessions: [
    [EHLO, ["MAIL FROM:<a@sender.example> SMTPUTF8\r\n", 1], MAIL, RCPT, ["BDAT 1 LAST\r\nx", 1]],
  ],
};

const noDsn: Scenario = {
  name: "ENHANCEDSTATUSCODES and DSN discarded",
  mainCf: ["smtpd_discard_ehlo_keywords = enhancedstatuscodes, dsn"],
  shows: "501 5.7.1 DSN support is disabled",
  sessions: [
    [
      EHLO,
      ["MAIL FROM:<a@sender.example> RET=HDRS\r\n", 1],
      ["MAIL FROM:<a@sender.example> ENVID=x\r\n", 1],
      MAIL,
      ["RCPT TO:<x@remote.example> NOTIFY=NEVER\r\n", 1],
      ["RCPT TO:<x@remote.example> ORCPT=rfc822;x@remote.example\r\n", 1],
      RCPT,
      ["BDAT 1 LAST\r\nx", 1],
      ["BOGUS\r\n", 1],
      QUIT,
    ],
  ],
};

const lenientPipelining: Scenario = {
  name: "reject_unauth_pipelining, pipelining allowed",
  mainCf: [
    "smtpd_forbid_unauth_pipelining = no",
    "smtpd_data_restrictions = reject_unauth_pipelining",
  ],
  shows: "503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining",
  sessions: [
    [EHLO, MAIL, RCPT, ["DATA\r\n", 1], ["x\r\n.\r\n", 1], QUIT],
    [EHLO, [MAIL[0] + RCPT[0] + "DATA\r\nSubject: early\r\n", 4]],
    [["HELO client.example\r\n", 1], [MAIL[0] + RCPT[0], 2], ["DATA\r\n", 1]],
  ],
};

const excluded: Scenario = {
  name: "a client in smtpd_forbid_bare_newline_exclusions gets 'no'",
  mainCf: [
    "smtpd_forbid_bare_newline_exclusions = $mynetworks",
    "smtpd_forbid_unauth_pipelining = no",
  ],
  shows: "250 2.0.0 Ok: queued as QID",
  times: 2,
  sessions: [
    [EHLO, MAIL, RCPT, ["DATA\r\n", 1], [
      "Subject: x\r\n\r\nbody\n.\nMAIL FROM:<b@sender.example>\r\n" +
      "RCPT TO:<y@remote.example>\r\nDATA\r\nsecond\r\n.\r\n",
      5,
    ], QUIT],
  ],
};

/**
 * Runs the sessions (each with a NOOP after its steps, to see whatever else
 * the server says and whether it hung up); one entry per reply, sessions
 * separated by "--". A session's entries end where the server closed or,
 * as "(no reply in 10s)", where a reply did not come.
 */
async function replies(port: number, sessions: Step[][]): Promise<string[]> {
  const out: string[] = [];
  for (const steps of sessions) {
    const script = [...steps.map(([raw, replies]) => ({ raw, replies })), "NOOP"];
    const got: string[] = [];
    for (const r of (await playScript("127.0.0.1", port, script)).flatMap((s) => s.replies)) {
      if (r[0] === "<closed>") break;
      if (r[0] === "<timeout>") {
        got.push("(no reply in 10s)");
        break;
      }
      got.push(r.join("\r\n"));
    }
    out.push(...got.map(comparable), "--");
  }
  return out;
}

/** A reply without what names the server or the queue file. */
function comparable(reply: string): string {
  return reply
    .split("\r\n")
    .filter((l) => l !== "250-ETRN")
    .join("\n")
    .replace(/queued as [0-9A-Za-z]+/, "queued as QID");
}

const LOG_RE =
  /improper command pipelining|non-SMTP command|bare <LF> received|malformed BDAT|exceeds message size limit|discarding EHLO keywords|unknown DSN NOTIFY/;

/** The protocol log lines, queue ids masked. */
function protocolLog(log: string): string[] {
  return log.split("\n").filter((l) => LOG_RE.test(l)).map((l) =>
    l.replace(/^.*?\]: /, "").replace(/\b[0-9A-F]{10,}\b/g, "QID")
  );
}

/**
 * The log once every session's disconnect is in it: one more than the
 * sessions, for the start helper's readiness probe. (Waiting for one
 * fewer and then sleeping a second raced the last session's lines.)
 */
function waitForDisconnects(inst: HasMaillog, n: number): Promise<string> {
  return waitForLog(inst, (log) => countLines(log, / disconnect from /) >= n + 1);
}

/** The queue id of the DSN test message (two recipients), once qmgr has logged it. */
async function queueId(inst: HasMaillog): Promise<string> {
  const re = /(\w+): from=<a@sender\.example>, size=\d+, nrcpt=2/;
  return re.exec(await waitForLog(inst, re))![1];
}

/**
 * postcat lines that carry DSN and SMTPUTF8 data, in order. Postfix also
 * records "rfc822;<address as given>" as dsn_orig_rcpt of a recipient sent
 * without ORCPT; Postwarden records no ORCPT then, so those lines are left
 * out.
 */
function dsnLines(postcat: string): string[] {
  const lines = postcat.split("\n");
  return lines.filter((l, i) =>
    !(l.startsWith("named_attribute: dsn_orig_rcpt=rfc822;") &&
      lines.slice(i + 1).find((n) => n.startsWith("recipient: ")) ===
        `recipient: ${l.slice("named_attribute: dsn_orig_rcpt=rfc822;".length)}`)
  ).filter((l) =>
    /^named_attribute: (envelope_id|ret_flags|notify_flags|dsn_orig_rcpt)=|^recipient: |with UTF8SMTP id/
      .test(l)
  ).map((l) => l.replace(/ id [0-9A-Za-z]+;?.*$/, " id QID").replace("(Postwarden)", "(Postfix)"));
}

Deno.test({
  name: "smtpd protocol handling: the same replies and log lines as Postfix",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    for (
      const s of [normalize, reject, strict, noChunking, noDsn, lenientPipelining, excluded]
    ) {
      const mainCf = [...COMMON, ...s.mainCf].join("\n");
      /** The DSN test message's queue file as postcat shows it (Postfix's or ours). */
      const postcat = async (server: Server) => {
        const id = await queueId(server);
        if ("sendmail" in server) {
          const r = await new Deno.Command("postcat", {
            args: ["-c", server.dir, "-q", id],
          }).output();
          return new TextDecoder().decode(r.stdout);
        }
        return (await server.command("postcat.ts", ["-q", id])).stdout;
      };
      const {
        theirs: [theirs, theirLog, theirQueue],
        ours: [ours, ourLog, ourQueue],
      } = await onBoth(mainCf, async (server) =>
        [
          await replies(server.port, s.sessions),
          await waitForDisconnects(server, s.sessions.length),
          s === normalize ? await postcat(server) : "",
        ] as const, { label: s.name });
      await t.step(`${s.name}: same replies`, () => {
        if (s.shows) {
          const n = theirs.filter((r) => r === s.shows).length;
          assertEquals(s.times ? n === s.times : n > 0, true, `Postfix: ${s.shows} (${n})`);
        }
        assertEquals(ours, theirs);
      });
      await t.step(`${s.name}: same protocol log lines`, () => {
        // Sorted: with several smtpd processes (or Postfix's) one session's last lines
        // can be logged after the next session's first.
        assertEquals(protocolLog(ourLog).toSorted(), protocolLog(theirLog).toSorted());
      });
      if (s === normalize) {
        await t.step("DSN and SMTPUTF8 data in the queue file, as postcat shows them", () => {
          assertStringIncludes(theirQueue, "with UTF8SMTP id");
          assertEquals(dsnLines(ourQueue), dsnLines(theirQueue));
        });
      }
    }
  },
});
