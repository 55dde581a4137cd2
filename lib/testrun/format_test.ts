/**
 * The test file format of `postwarden test` (format.ts) and the master.cf
 * of its ephemeral instance (instance.ts): what each line means, and that
 * every malformed line is an error with its line number.
 */
import { assertEquals, assertMatch, assertThrows } from "../../tests/helpers/assert.ts";
import { parseTestFile, TestFormatError } from "./format.ts";
import { ephemeralMasterCf } from "./instance.ts";
import { replyPattern, report, zoneOf } from "./run.ts";

Deno.test("lib/testrun parseTestFile", async (t) => {
  await t.step("every keyword", () => {
    const f = parseTestFile(
      "x.dialog",
      [
        "# a comment",
        "service: submission",
        "client: mail.example.org[192.0.2.1]",
        "dns: MX example.org 10 mail.example.org",
        "dns: txt Example.ORG. v=spf1 -all",
        "s: 220",
        "c: EHLO a\\tb",
        "s: 250 .*",
        "c: STARTTLS",
        "tls:",
        "queued: <bob@example.com> -> smtp:[relay.example.com]",
        "queued: alice@example.com",
        "not-queued:",
        "held:",
        "discarded:",
        "delivered: <info@example.com> -> alice@mx.example.com",
        "delivered: bob@example.com",
        "relayed: dave@partner.example -> relay.partner.example[192.0.2.20]:25",
        "bounced: x@nowhere.example 5.1.2",
        "deferred: y@example.net",
        "header: Subject: .*",
        "no-header: X-Secret: .*",
        "log: reject: RCPT",
        "no-log: warning",
        "",
      ].join("\n"),
    );
    assertEquals(f.service, "submission");
    assertEquals(f.client, { name: "mail.example.org", addr: "192.0.2.1" });
    assertEquals(f.dns, [
      { type: "MX", name: "example.org", value: [10, "mail.example.org"] },
      { type: "TXT", name: "example.org", value: "v=spf1 -all" },
    ]);
    assertEquals(f.steps.map((s) => s.kind === "c" ? s.text : s.kind === "s" ? s.source : "tls"), [
      "220",
      "EHLO a\tb",
      "250 .*",
      "STARTTLS",
      "tls",
    ]);
    const code = f.steps[0].kind === "s" ? f.steps[0].pattern : /x/;
    assertEquals([code.test("220 ready"), code.test("220-a\n220 b"), code.test("2200")], [
      true,
      true,
      false,
    ]);
    assertEquals(
      f.expect.map((x) =>
        x.kind === "queued"
          ? [x.kind, x.rcpt, x.route]
          : x.kind === "delivered" || x.kind === "relayed"
          ? [x.kind, x.rcpt, x.to]
          : x.kind === "bounced" || x.kind === "deferred"
          ? [x.kind, x.rcpt, x.dsn]
          : [x.kind]
      ),
      [
        ["queued", "bob@example.com", "smtp:[relay.example.com]"],
        ["queued", "alice@example.com", undefined],
        ["not-queued"],
        ["held"],
        ["discarded"],
        ["delivered", "info@example.com", "alice@mx.example.com"],
        ["delivered", "bob@example.com", undefined],
        ["relayed", "dave@partner.example", "relay.partner.example[192.0.2.20]:25"],
        ["bounced", "x@nowhere.example", "5.1.2"],
        ["deferred", "y@example.net", undefined],
        ["header"],
        ["no-header"],
        ["log"],
        ["no-log"],
      ],
    );
  });

  await t.step("malformed lines are errors with their line", () => {
    const cases: [string, RegExp][] = [
      ["s: 220\nbogus line", /x:2: not "keyword: value"/],
      ["s: 220\nexpect: 1", /x:2: unknown keyword "expect"/],
      ["s: (", /x:1: bad regular expression/],
      ["client: 192.0.2.1\ns: 220", /x:1: client: wants NAME\[ADDR\]/],
      ["dns: SOA x y\ns: 220", /x:1: dns: wants TYPE NAME VALUE/],
      ["dns: MX x mail\ns: 220", /x:1: dns: MX wants/],
      ["queued:\ns: 220", /x:1: queued: wants RCPT/],
      ["s: 220\nrelayed: a@b", /x:2: relayed: wants RCPT -> HOST/],
      ["s: 220\nbounced: a@b 9.9.9", /x:2: bounced: wants RCPT \[DSN\]/],
      ["s: 220\nheld: yes", /x:2: held: takes no value/],
      ["# nothing to say", /x:1: no dialog/],
    ];
    for (const [text, want] of cases) {
      const e = assertThrows(() => parseTestFile("x", text), TestFormatError);
      assertMatch(e.message, want);
    }
  });

  await t.step("the zone is every file's records, each value once", () => {
    const a = parseTestFile("a", "dns: A h.example 192.0.2.1\ns: 220");
    const b = parseTestFile("b", "dns: A h.example 192.0.2.1\ndns: A h.example 192.0.2.2\ns: 220");
    assertEquals(zoneOf([a, b]), { names: { "h.example": { A: ["192.0.2.1", "192.0.2.2"] } } });
  });
});

Deno.test("lib/testrun ephemeralMasterCf: inet services on loopback ports, the rest as it is", () => {
  const ports = new Map<string, number>();
  let next = 40000;
  const text = [
    "# a comment",
    "smtp      inet  n       -       n       -       -       smtpd",
    "submission inet n       -       n       -       -       smtpd",
    "  -o smtpd_tls_security_level=encrypt",
    "qmgr      unix  n       -       n       300     1       qmgr",
    "  -o qmgr_message_active_limit=100",
    "  -o syslog_name=x",
    "cleanup   unix  -       -       n       -       0       cleanup",
  ].join("\n");
  assertEquals(
    ephemeralMasterCf(text, ports, () => next++).split("\n"),
    [
      "# a comment",
      "127.0.0.1:40000      inet  n       -       n       -       -       smtpd",
      "127.0.0.1:40001 inet n       -       n       -       -       smtpd",
      "  -o smtpd_tls_security_level=encrypt",
      "qmgr      unix  n       -       n       300     1       qmgr",
      "  -o qmgr_message_active_limit=100",
      "  -o syslog_name=x",
      "cleanup   unix  -       -       n       -       0       cleanup",
    ],
  );
  assertEquals([...ports], [["smtp", 40000], ["submission", 40001]]);
});

Deno.test("lib/testrun report: human, TAP and JUnit XML", () => {
  const results = [
    { name: "a.dialog", ok: true, failures: [], ms: 120 },
    {
      name: 'b<&>".dialog',
      ok: false,
      failures: ["line 3: expected 250\n  got 554 <x@y>: Relay access denied\u0001"],
      ms: 45,
    },
  ];
  assertEquals(
    report(results, "human"),
    'ok     a.dialog (120 ms)\nFAILED b<&>".dialog (45 ms)\n       line 3: expected 250\n' +
      "         got 554 <x@y>: Relay access denied\u0001\n1 passed, 1 failed\n",
  );
  assertMatch(report(results, "tap"), /^TAP version 13\n1\.\.2\nok 1 - a\.dialog\nnot ok 2 - /);
  const x = report(results, "junit");
  assertMatch(x, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites /);
  assertMatch(x, /<testsuite name="postwarden test" tests="2" failures="1" errors="0" skipped="0"/);
  assertMatch(x, /<testcase classname="postwarden\.test" name="a\.dialog" time="0\.120"\/>/);
  assertMatch(x, /name="b&lt;&amp;&gt;&quot;\.dialog" time="0\.045">/);
  assertMatch(x, /<failure message="line 3: expected 250" type="failure">line 3: expected 250\n/);
  assertMatch(x, /&lt;x@y&gt;: Relay access denied<\/failure>/); // the control character dropped
});

Deno.test("lib/testrun replyPattern: literal text, queue ids and multi-line replies", () => {
  assertEquals(replyPattern("250 2.1.5 Ok"), "250 2\\.1\\.5 Ok");
  assertEquals(replyPattern("250 2.0.0 Ok: queued as 4ABCDEF"), "250 2\\.0\\.0 Ok: queued as \\w+");
  assertEquals(replyPattern("250-mx\n250 SIZE"), "250");
  const p = new RegExp(`^(?:${replyPattern("554 5.7.1 <a@b>: (x) [y] $z ^q *+?{}|")})$`, "s");
  assertEquals(p.test("554 5.7.1 <a@b>: (x) [y] $z ^q *+?{}|"), true);
});

Deno.test("lib/testrun parseTestFile: the in-memory smtpd dialogs' keywords, only when asked", () => {
  const text = [
    "config: smtpd_helo_required = yes",
    "client: unknown[192.0.2.7]",
    "peer: forged unknown ok",
    "cleanup: 451",
    "dns: A mx.example.net servfail",
    "s: 220",
    "c! EHLO x\\r\\nNOOP",
    "flush",
    "close",
    "expect-messages: 0",
    "log: disconnect",
  ].join("\n");
  const f = parseTestFile("x", text, { harness: true });
  assertEquals([f.config, f.peer, f.cleanup], [
    ["smtpd_helo_required = yes"],
    "forged unknown ok",
    "451",
  ]);
  assertEquals(f.dns, [{
    type: "A",
    name: "mx.example.net",
    value: "servfail",
    failure: "servfail",
  }]);
  assertEquals(
    f.steps.map((s) => s.kind === "harness" ? `${s.key} ${s.arg}` : s.kind),
    ["s", "raw", "flush ", "close", "expect-messages 0"],
  );
  assertEquals(f.steps[1].kind === "raw" ? f.steps[1].text : "", "EHLO x\r\nNOOP");
  const e = assertThrows(() => parseTestFile("x", text), TestFormatError);
  assertMatch(e.message, /x:1: config: is a keyword of the project's in-memory smtpd dialogs/);
});
