import { assertEquals, assertMatch, assertRejects } from "../../tests/helpers/assert.ts";
import { DictError } from "../../lib/maps/mod.ts";
import { failingDict, mapsOf, regexpDict } from "./_test_tables.ts";
import { type CheckLogContext, MessageChecks } from "./checks.ts";

function setup(
  rules: [RegExp, string][],
  opts: { body?: [RegExp, string][]; mime?: [RegExp, string][] } = {},
) {
  const info: string[] = [];
  const warn: string[] = [];
  const header = regexpDict(rules);
  const log: CheckLogContext = {
    queueId: "4ABC",
    origin: "client.example[192.0.2.1]",
    sender: "a@x.example",
    recipient: "b@y.example",
    proto: "ESMTP",
    helo: "client.example",
    info: (m) => info.push(m),
    warn: (m) => warn.push(m),
  };
  const checks = new MessageChecks({
    header: mapsOf("header_checks", header),
    mime: mapsOf("mime_header_checks", regexpDict(opts.mime ?? rules)),
    nested: mapsOf("nested_header_checks", regexpDict(rules)),
    body: mapsOf("body_checks", regexpDict(opts.body ?? [])),
  }, log);
  return { checks, info, warn, header };
}

Deno.test("header and body checks", async (t) => {
  await t.step("REJECT: default reply and Postfix's log line", async () => {
    const { checks, info } = setup([[/^Subject: spam/i, "REJECT"]]);
    const v = await checks.header("Subject: spam offer", "primary", false);
    assertEquals(v.result, "keep");
    assertEquals(checks.reject, { code: 550, dsn: "5.7.1", text: "message content rejected" });
    assertEquals(info, [
      "4ABC: reject: header Subject: spam offer from client.example[192.0.2.1]; " +
      "from=<a@x.example> to=<b@y.example> proto=ESMTP helo=<client.example>: " +
      "5.7.1 message content rejected",
    ]);
    assertEquals(checks.active, false, "no more inspection after REJECT");
    assertEquals((await checks.header("Subject: spam", "primary", false)).result, "keep");
    assertEquals(info.length, 1);
  });
  await t.step("REJECT with text, with its own code, and with a 4.x.x code", async () => {
    let s = setup([[/^Subject:/, "REJECT go away"]]);
    await s.checks.header("Subject: x", "primary", false);
    assertEquals(s.checks.reject, { code: 550, dsn: "5.7.1", text: "go away" });
    s = setup([[/^Subject:/, "REJECT 5.7.0 no thanks"]]);
    await s.checks.header("Subject: x", "primary", false);
    assertEquals(s.checks.reject, { code: 550, dsn: "5.7.0", text: "no thanks" });
    s = setup([[/^Subject:/, "reject 4.7.1 later"]]);
    await s.checks.header("Subject: x", "primary", false);
    assertEquals(s.checks.reject, { code: 451, dsn: "4.7.1", text: "later" });
    s = setup([[/^Subject:/, "REJECT 2.0.0 odd"]]);
    await s.checks.header("Subject: x", "primary", false);
    assertEquals(s.checks.reject?.code, 451);
    assertEquals(s.warn, ["bad DSN action in 2.0.0 odd -- need 4.x.x or 5.x.x"]);
  });
  await t.step("a folded header is one logical line", async () => {
    const { checks, header } = setup([[/^Subject: one\n\ttwo$/, "REJECT"]]);
    await checks.header("Subject: one\n\ttwo", "primary", false);
    assertEquals(header.keys, ["Subject: one\n\ttwo"]);
    assertEquals(checks.reject?.code, 550);
  });
  await t.step("WARN and INFO log and keep", async () => {
    const { checks, info } = setup([[/^X-A:/, "WARN watch this"], [/^X-B:/, "INFO"]]);
    await checks.header("X-A: 1", "primary", false);
    await checks.header("X-B: 2", "primary", false);
    assertMatch(
      info[0],
      /^4ABC: warning: header X-A: 1 from .*helo=<client\.example>: watch this$/,
    );
    assertMatch(info[1], /^4ABC: info: header X-B: 2 from .*helo=<client\.example>$/);
    assertEquals(checks.reject, undefined);
  });
  await t.step("IGNORE and STRIP drop the line; only STRIP logs", async () => {
    const { checks, info } = setup([[/^X-Ig:/, "IGNORE"], [/^X-St:/, "STRIP cleaned"]]);
    assertEquals((await checks.header("X-Ig: 1", "primary", false)).result, "drop");
    assertEquals((await checks.header("X-St: 1", "primary", false)).result, "drop");
    assertEquals(info.length, 1);
    assertMatch(info[0], /: strip: header X-St: 1 from .*: cleaned$/);
  });
  await t.step("PREPEND and REPLACE need header text in header context", async () => {
    const { checks, warn } = setup([
      [/^X-P:/, "PREPEND X-Tag: yes"],
      [/^X-Q:/, "PREPEND not a header"],
      [/^X-R:/, "REPLACE X-R: replaced"],
      [/^X-S:/, "REPLACE"],
    ]);
    assertEquals(await checks.header("X-P: 1", "primary", false), {
      prepend: ["X-Tag: yes"],
      result: "keep",
    });
    assertEquals((await checks.header("X-Q: 1", "primary", false)).prepend, []);
    assertEquals((await checks.header("X-R: 1", "primary", false)).result, {
      replace: "X-R: replaced",
    });
    assertEquals((await checks.header("X-S: 1", "primary", false)).result, "keep");
    assertEquals(warn, [
      'bad PREPEND header text "not a header" in header_checks map -- need "headername: headervalue"',
      "REPLACE action without text in header_checks map",
    ]);
  });
  await t.step("DISCARD, HOLD, REDIRECT, BCC set the outcome", async () => {
    let s = setup([[/^X-H:/, "HOLD"], [/^X-B:/, "BCC audit@x.example"], [/^X-D:/, "DISCARD"]]);
    await s.checks.header("X-H: 1", "primary", false);
    await s.checks.header("X-H: 2", "primary", false);
    await s.checks.header("X-B: 1", "primary", false);
    await s.checks.header("X-D: 1", "primary", false);
    assertEquals([s.checks.hold, s.checks.discard, s.checks.bcc], [true, true, [
      "audit@x.example",
    ]]);
    assertEquals(s.info.map((l) => l.split(": ")[1]), ["hold", "bcc", "discard"]);
    s = setup([[/^X-R:/, "REDIRECT quarantine@x.example"], [/^X-Bad:/, "REDIRECT nobody"]]);
    await s.checks.header("X-Bad: 1", "primary", false);
    assertEquals(s.checks.redirect, undefined);
    await s.checks.header("X-R: 1", "primary", false);
    assertEquals(s.checks.redirect, "quarantine@x.example");
    assertEquals(s.checks.active, false);
  });
  await t.step(
    "FILTER sets the content filter, the last one wins; a bad FILTER is a warning",
    async () => {
      let s = setup([[/^X-F:/, "FILTER nofilter"]]);
      await s.checks.header("X-F: 1", "primary", false);
      assertEquals(s.checks.filter, undefined);
      assertEquals(s.warn, [
        "bad FILTER command nofilter in header_checks -- need transport:destination",
      ]);
      s = setup([[/^X-F: 1/, "FILTER smtp:[127.0.0.1]:10025"], [
        /^X-F: 2/,
        "FILTER relay:[10.0.0.1]",
      ]]);
      await s.checks.header("X-F: 1", "primary", false);
      assertEquals(s.checks.filter, "smtp:[127.0.0.1]:10025");
      assertEquals(s.checks.active, true);
      await s.checks.header("X-F: 2", "primary", false);
      assertEquals(s.checks.filter, "relay:[10.0.0.1]");
      assertEquals(s.checks.reject, undefined);
      assertEquals(s.warn, []);
    },
  );
  await t.step("unknown action: warning, line kept; DUNNO and OK: nothing", async () => {
    const s = setup([[/^X-U:/, "FROBNICATE"], [/^X-D:/, "DUNNO"], [/^X-O:/, "OK"]]);
    for (const h of ["X-U: 1", "X-D: 1", "X-O: 1"]) {
      assertEquals((await s.checks.header(h, "primary", false)).result, "keep");
    }
    assertEquals(s.warn, ["unknown command in header_checks map: FROBNICATE"]);
    assertEquals(s.info, []);
  });
  await t.step(
    "MIME fields go to mime_header_checks, nested headers to nested_header_checks",
    async () => {
      const s = setup([[/^Subject: inner/, "REJECT nested"]], {
        mime: [[/^Content-Type: application\/x-msdownload/i, "REJECT no exe"]],
      });
      await s.checks.header("Content-Type: application/x-msdownload", "primary", true);
      assertEquals(s.checks.reject?.text, "no exe");
      const n = setup([[/^Subject: inner/, "REJECT nested"]]);
      await n.checks.header("Subject: inner", "nested", false);
      assertEquals(n.checks.reject?.text, "nested");
      assertMatch(n.info[0], /: reject: header Subject: inner from /);
    },
  );
  await t.step("body lines: actions and log context 'body'", async () => {
    const s = setup([], { body: [[/viagra/i, "REJECT"], [/^sig$/, "REPLACE --"]] });
    assertEquals((await s.checks.body("sig")).result, { replace: "--" });
    await s.checks.body("buy Viagra now");
    assertEquals(s.checks.reject?.code, 550);
    assertMatch(s.info[1], /^4ABC: reject: body buy Viagra now from client/);
  });
  await t.step("empty lines never match; long content is cut to 200 in the log", async () => {
    const s = setup([[/./, "WARN"]], { body: [[/^$|x/, "WARN"]] });
    await s.checks.body("");
    assertEquals(s.info, []);
    await s.checks.body("x".repeat(500));
    assertEquals(s.info[0].includes("x".repeat(201)), false);
  });
  await t.step("a table that cannot answer throws DictError", async () => {
    const log = setup([]).checks.log;
    const c = new MessageChecks({
      header: mapsOf("header_checks", failingDict()),
      mime: mapsOf("mime_header_checks"),
      nested: mapsOf("nested_header_checks"),
      body: mapsOf("body_checks"),
    }, log);
    await assertRejects(() => c.header("Subject: x", "primary", false), DictError);
  });
});
