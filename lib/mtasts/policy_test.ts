/**
 * Tests of the MTA-STS policy file parser (RFC 8461 3.2) with the RFC's
 * examples and hostile files, and of the mx match of section 4.1.
 */
import { assert, assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import {
  mxMatchesPolicy,
  parseStsPolicy,
  type StsPolicy,
  StsPolicyError,
  stsPolicyLines,
} from "./policy.ts";

const fails = (text: string, why: RegExp) => {
  const e = assertThrows(() => parseStsPolicy(text), StsPolicyError);
  assert(why.test(e.message), `${JSON.stringify(text.slice(0, 60))}: ${e.message}`);
};

Deno.test("lib/mtasts parseStsPolicy", async (t) => {
  await t.step("the RFC 8461 3.2 example, with CRLF as served", () => {
    const text = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n" +
      "mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";
    assertEquals(parseStsPolicy(text), {
      mode: "enforce",
      mx: ["mail.example.com", "*.example.net", "backupmx.example.com"],
      maxAge: 604800,
    });
  });

  await t.step("LF lines, any field order, spacing, unknown fields, no final newline", () => {
    assertEquals(
      parseStsPolicy(
        "mx:\tMX.Example.com \nmax_age:86400\nversion: STSv1\nx_ext: a b\tc\nmode: testing",
      ),
      { mode: "testing", mx: ["mx.example.com"], maxAge: 86400 },
    );
    assertEquals(parseStsPolicy("version: STSv1\nmode: none\nmax_age: 0\n\n\n"), {
      mode: "none",
      mx: [],
      maxAge: 0,
    });
    // The first of a repeated field counts; every mx counts.
    assertEquals(
      parseStsPolicy(
        "version: STSv1\nmode: testing\nmode: enforce\nmx: a.test\nmx: b.test\nmax_age: 5\nmax_age: x\n",
      ),
      { mode: "testing", mx: ["a.test", "b.test"], maxAge: 5 },
    );
    assertEquals(
      parseStsPolicy("version: STSv1\nmode: none\nmax_age: 31557600\n").maxAge,
      31557600,
    );
  });

  await t.step("missing or wrong version, mode, max_age, mx", () => {
    fails("mode: enforce\nmx: a.test\nmax_age: 1\n", /no version/);
    fails("version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n", /not STSv1/);
    fails("version: stsv1\nmode: enforce\nmx: a.test\nmax_age: 1\n", /not STSv1/);
    fails("version: STSv1\nmx: a.test\nmax_age: 1\n", /no mode/);
    fails("version: STSv1\nmode: Enforce\nmx: a.test\nmax_age: 1\n", /unknown mode/);
    fails("version: STSv1\nmode: enforce\nmx: a.test\n", /no max_age/);
    fails("version: STSv1\nmode: enforce\nmax_age: 1\n", /no mx/);
    for (const age of ["31557601", "99999999999", "-1", "1.5", "1e3", "0x10", "", "one"]) {
      fails(`version: STSv1\nmode: none\nmax_age: ${age}\n`, /max_age/);
    }
  });

  await t.step("bad mx patterns", () => {
    for (
      const mx of [
        "*",
        "*.",
        "**.example.com",
        "*.*.example.com",
        "mail.*.example.com",
        "m*.example.com",
        "mail.example.com.",
        "-mail.example.com",
        "mail_1.example.com",
        "mail..example.com",
        "bücher.example",
        `${"a".repeat(64)}.example.com`,
        "mail.example.com extra",
      ]
    ) {
      fails(`version: STSv1\nmode: enforce\nmx: ${mx}\nmax_age: 1\n`, /bad mx|no value/);
    }
  });

  await t.step("hostile: control characters, CR injection, oversize, junk lines", () => {
    // A bare CR is not a line end: "mode: enforce\rmx: evil" is one bad line, not two fields.
    fails("version: STSv1\nmode: enforce\rmx: *.evil.test\nmx: a.test\nmax_age: 1\n", /control/);
    fails("version: STSv1\r\r\nmode: enforce\nmx: a.test\nmax_age: 1\n", /control/);
    fails("version: STSv1\nmode: enforce\nmx: a.test\0\nmax_age: 1\n", /control/);
    fails("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 1\n\r", /not "name: value"/);
    fails("version: STSv1\n mode: enforce\nmx: a.test\nmax_age: 1\n", /not "name: value"/);
    fails("version: STSv1\nmode enforce\nmx: a.test\nmax_age: 1\n", /not "name: value"/);
    fails("version: STSv1\nmode:\nmx: a.test\nmax_age: 1\n", /no value/);
    fails("<html><body>Not found</body></html>", /not "name: value"/);
    fails(
      `version: STSv1\nmode: none\nmax_age: 1\nx: ${"y".repeat(70_000)}\n`,
      /larger than 65536/,
    );
    // Multi-octet characters count as octets.
    fails(`version: STSv1\nmode: none\nmax_age: 1\nx: ${"é".repeat(33_000)}\n`, /larger than/);
    const start = performance.now();
    fails(`version: STSv1\nmode: none\nmax_age: 1\nx: a${" ".repeat(60_000)}b\t\r`, /control/);
    parseStsPolicy(`version: STSv1\nmode: none\nmax_age: 1\nx: a${" ".repeat(60_000)}b\n`);
    assert(performance.now() - start < 500, "linear in the line length");
  });

  await t.step("stsPolicyLines gives the policy back as lines", () => {
    const p: StsPolicy = { mode: "enforce", mx: ["a.test", "*.b.test"], maxAge: 86400 };
    assertEquals(stsPolicyLines(p), [
      "version: STSv1",
      "mode: enforce",
      "mx: a.test",
      "mx: *.b.test",
      "max_age: 86400",
    ]);
    assertEquals(parseStsPolicy(stsPolicyLines(p).join("\n")), p);
  });
});

Deno.test("lib/mtasts mxMatchesPolicy (RFC 8461 4.1)", () => {
  const p = parseStsPolicy(
    "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 1\n",
  );
  const yes = ["mail.example.com", "MAIL.example.COM.", "mx1.example.net", "a-b.example.net"];
  const no = [
    "example.net", // the wildcard needs a label
    "a.b.example.net", // ...exactly one
    "mail.example.com.evil.test",
    "evilmail.example.com",
    "example.com",
    "*.example.net",
    "",
  ];
  for (const h of yes) assert(mxMatchesPolicy(p, h), h);
  for (const h of no) assert(!mxMatchesPolicy(p, h), h);
});
