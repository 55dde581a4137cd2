/**
 * Tests for parse.ts: the authserv-id of the RFC 8601 Appendix B
 * examples (folded, with comments and version numbers), and of values
 * that do not parse.
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { authservIdOf } from "./parse.ts";

Deno.test("authservIdOf: RFC 8601 Appendix B", async (t) => {
  const examples: [string, string, string][] = [
    ["B.2", " example.org 1; none", "example.org"],
    ["B.3", " example.com;\r\n          spf=pass smtp.mailfrom=example.net", "example.com"],
    [
      "B.4",
      " example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n" +
      "          spf=pass smtp.mailfrom=example.net",
      "example.com",
    ],
    [
      "B.4",
      " example.com;\r\n          iprev=pass\r\n          policy.iprev=192.0.2.200",
      "example.com",
    ],
    [
      "B.5",
      " example.com;\r\n          sender-id=fail header.from=example.com;\r\n" +
      "          dkim=pass (good signature) header.d=sender.example.net",
      "example.com",
    ],
    [
      "B.6",
      ' example.com;\r\n          dkim=pass reason="good signature"\r\n' +
      '            header.i=@mail-router.example.net;\r\n          dkim=fail reason="bad signature"\r\n' +
      "            header.i=@newyork.example.com",
      "example.com",
    ],
    [
      "B.6",
      " example.net;\r\n          dkim=pass (good signature) header.i=@newyork.example.com",
      "example.net",
    ],
    [
      "B.7",
      " foo.example.net (foobar) 1 (baz);\r\n" +
      "          dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n" +
      "            policy (A dot can go here) . (like that) expired\r\n" +
      "            (this surprised me) = (as I wasn't expecting it) 1362471462",
      "foo.example.net",
    ],
  ];
  for (const [section, value, id] of examples) {
    await t.step(`${section}: ${id}`, () => assertEquals(authservIdOf(value), id));
  }
});

Deno.test("authservIdOf: comments, quoting and versions", () => {
  const cases: [string, string | null][] = [
    ["example.org;", "example.org"],
    ["example.org", "example.org"],
    ["(c) example.org (d);spf=pass", "example.org"],
    ["((nested) \\) (c)) example.org 1 (v); none", "example.org"],
    ["\r\n\t(folded)\r\n example.org\r\n\t1\r\n\t;none", "example.org"],
    ['"example.org"; none', "example.org"],
    ['"mx \\"one\\"" 1; none', 'mx "one"'],
    ['"folded\r\n id"; none', "folded id"],
    ["example.org 2; spf=pass", "example.org"],
    ["example.org(c)1(c);", "example.org"],
  ];
  for (const [v, id] of cases) assertEquals(authservIdOf(v), id, JSON.stringify(v));
});

Deno.test("authservIdOf: what does not parse", () => {
  for (
    const v of [
      "",
      "   ",
      "; spf=pass",
      "(comment only)",
      "(unclosed example.org; none",
      "example.org (unclosed; none",
      '"unterminated; none',
      '""; none',
      "example.org extra; none",
      "example.org 1 2; none",
      'example.org"x"; none',
      '"x"1; none',
      "example.org/x; none",
      "exämple.org; none",
      "example.org\\; none",
    ]
  ) assertEquals(authservIdOf(v), null, JSON.stringify(v));
});
