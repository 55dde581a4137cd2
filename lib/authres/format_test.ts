/**
 * Tests for format.ts: the shape of the value, quoting, folding, and
 * injection attempts (CRLF, ";", comments, quotes, 8-bit), checked by
 * reading the output back with a strict RFC 8601 reader written here.
 */
import { assert, assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { authenticationResults, type AuthResult } from "./format.ts";
import { authservIdOf } from "./parse.ts";

const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+/;
const ADDRESS = /^[^\s"();\\]*@[A-Za-z0-9_.-]+/;

/**
 * Reads back what authenticationResults writes (no comments, no
 * versions): throws unless every line fold is CRLF plus a tab and the
 * rest follows the grammar, so a smuggled clause or field shows.
 */
function readBack(header: string): { id: string; results: AuthResult[] } {
  assert(!/\r(?!\n\t)|(?<!\r)\n/.test(header), `bad line break in ${JSON.stringify(header)}`);
  let s = header.replaceAll("\r\n", "");
  const take = (re: RegExp) => {
    const m = re.exec(s);
    if (!m) throw new Error(`expected ${re} at ${JSON.stringify(s)}`);
    s = s.slice(m[0].length);
    return m;
  };
  const value = (address = false): string => {
    if (s[0] !== '"') {
      return take(address ? new RegExp(`${ADDRESS.source}|${TOKEN.source}`) : TOKEN)[0];
    }
    const m = take(/^"((?:[^"\\\r\n]|\\.)*)"/);
    return m[1].replace(/\\(.)/g, "$1");
  };
  const id = value();
  take(/^;[ \t]*/);
  if (s === "none") return { id, results: [] };
  const results: AuthResult[] = [];
  while (true) {
    const [, method, result] = take(/^([A-Za-z0-9/-]+)=([A-Za-z0-9-]+)/);
    const r: AuthResult = { method, result };
    if (/^[ \t]+reason=/.test(s)) {
      take(/^[ \t]+reason=/);
      assertEquals(s[0], '"', "reason is quoted");
      r.reason = value();
    }
    while (/^[ \t]+[A-Za-z0-9-]+\.[A-Za-z0-9-]+=/.test(s)) {
      const name = take(/^[ \t]+([A-Za-z0-9-]+\.[A-Za-z0-9-]+)=/)[1];
      (r.props ??= []).push([name, value(true)]);
    }
    results.push(r);
    if (s === "") return { id, results };
    take(/^;[ \t]*/);
  }
}

Deno.test("authenticationResults: shape", async (t) => {
  await t.step("one result per folded line", () => {
    const v = authenticationResults("mx.example.org", [
      { method: "spf", result: "pass", props: [["smtp.mailfrom", "user@example.com"]] },
      {
        method: "dkim",
        result: "pass",
        props: [["header.d", "example.com"], ["header.b", "abcd1234"]],
      },
      {
        method: "dmarc",
        result: "fail",
        props: [["header.from", "example.com"], ["policy.dmarc", "reject"]],
      },
    ]);
    assertEquals(
      v,
      "mx.example.org;\r\n\tspf=pass smtp.mailfrom=user@example.com;\r\n" +
        "\tdkim=pass header.d=example.com header.b=abcd1234;\r\n" +
        "\tdmarc=fail header.from=example.com policy.dmarc=reject",
    );
  });
  await t.step("no results: none", () => {
    assertEquals(authenticationResults("mx.example.org", []), "mx.example.org; none");
  });
  await t.step("reason quoted, a method version, a bare @domain", () => {
    assertEquals(
      authenticationResults("mx.example.org", [
        { method: "dkim/1", result: "fail", reason: "bad", props: [["header.i", "@example.com"]] },
        { method: "auth", result: "pass", props: [["smtp.auth", "joe"]] },
      ]),
      'mx.example.org;\r\n\tdkim/1=fail reason="bad" header.i=@example.com;\r\n' +
        "\tauth=pass smtp.auth=joe",
    );
  });
  await t.step("values that are not tokens or addresses are quoted", () => {
    const cases: [string, string][] = [
      ["abc+/de=", '"abc+/de="'],
      ["", '""'],
      ["a b", '"a b"'],
      ['"joe q"@example.com', '"\\"joe q\\"@example.com"'],
      ["joe@[192.0.2.1]", '"joe@[192.0.2.1]"'],
      ["a\\b", '"a\\\\b"'],
      ["first.last+tag@sub.example.com", "first.last+tag@sub.example.com"],
    ];
    for (const [v, written] of cases) {
      const out = authenticationResults("x", [{ method: "m", result: "r", props: [["p.q", v]] }]);
      assertEquals(out, `x;\r\n\tm=r p.q=${written}`, v);
    }
  });
  await t.step("the authserv-id is a token or a quoted-string", () => {
    assertEquals(authenticationResults("mx 1", []), '"mx 1"; none');
    assertEquals(authenticationResults("a;b", []), '"a;b"; none');
  });
  await t.step("names that are not keywords are refused", () => {
    const bad: AuthResult[] = [
      { method: "spf;x", result: "pass" },
      { method: "spf", result: "pass\r\n" },
      { method: "", result: "pass" },
      { method: "spf", result: "pass", props: [["smtp", "x"]] },
      { method: "spf", result: "pass", props: [["smtp.mail from", "x"]] },
    ];
    for (const r of bad) assertThrows(() => authenticationResults("x", [r]), RangeError);
    assertThrows(() => authenticationResults("", []), RangeError, "empty authserv-id");
  });
});

Deno.test("authenticationResults: folding", async (t) => {
  await t.step("a long clause folds between its words, lines stay short", () => {
    const v = authenticationResults("mx.example.org", [{
      method: "dkim",
      result: "pass",
      reason: "signature verified with a 2048-bit RSA key",
      props: [
        ["header.d", "mail.subdomain.example.com"],
        ["header.i", "@mail.subdomain.example.com"],
        ["header.s", "selector2026"],
        ["header.b", "Zcq7EP68"],
      ],
    }]);
    const lines = v.split("\r\n");
    assert(lines.length > 3, v);
    for (const line of lines.slice(1)) assert(line.startsWith("\t") && line.length <= 71, line);
    assertEquals(readBack(v).results[0].props?.length, 4);
  });
  await t.step("a huge value is cut, no line nears 998 octets", () => {
    for (const unit of ["a", "é", "😀", '"', "\\", "a b"]) {
      const v = authenticationResults("x", [{
        method: "m",
        result: "r",
        reason: unit.repeat(5000),
        props: [["p.q", unit.repeat(5000)]],
      }]);
      for (const line of v.split("\r\n")) {
        assert(new TextEncoder().encode(line).length < 900, `${unit}: ${line.length}`);
      }
    }
  });
});

Deno.test("authenticationResults: injection attempts", async (t) => {
  const hostile = [
    "x\r\nX-Injected: yes",
    "x\nBcc: victim@example.com",
    "x\rY",
    "a; dkim=pass header.d=bank.example",
    "a (comment) b",
    "(",
    ")",
    '"; dmarc=pass',
    '\\"; spf=pass',
    "joe@example.com; spf=pass",
    "tab\there\x00nul\x7fdel\x85nel\u2028ls\u2029ps",
    "caf\u00e9 \u2603 \ud83d\ude00",
    "lone \ud800 surrogate",
    "\x1b[31mred",
  ];
  await t.step("every value reads back as one value, the field as one field", () => {
    for (const h of hostile) {
      const results: AuthResult[] = [
        { method: "spf", result: "fail", reason: h, props: [["smtp.mailfrom", h]] },
        { method: "dkim", result: "none", props: [["header.d", h], ["header.b", h]] },
      ];
      const v = authenticationResults(h, results);
      const back = readBack(v);
      const cleaned = h.toWellFormed().replace(/[\p{Cc}\u2028\u2029]/gu, " ");
      assertEquals(back, {
        id: cleaned,
        results: [
          { method: "spf", result: "fail", reason: cleaned, props: [["smtp.mailfrom", cleaned]] },
          { method: "dkim", result: "none", props: [["header.d", cleaned], ["header.b", cleaned]] },
        ],
      }, JSON.stringify(h));
      assertEquals(authservIdOf(v), cleaned, JSON.stringify(h));
    }
  });
  await t.step("8-bit text stays UTF-8 inside quotes", () => {
    const v = authenticationResults("x", [{
      method: "spf",
      result: "pass",
      props: [["smtp.mailfrom", "jøran@bücher.example"]],
    }]);
    assertEquals(v, 'x;\r\n\tspf=pass smtp.mailfrom="jøran@bücher.example"');
  });
});

Deno.test("authservIdOf reads back our own output", () => {
  for (const id of ["mx.example.org", "MX.Example.ORG", "mx 1", 'a"b', "a\\b", "a;b", "(x)", "é"]) {
    assertEquals(authservIdOf(authenticationResults(id, [])), id);
    assertEquals(
      authservIdOf(authenticationResults(id, [{ method: "spf", result: "pass" }])),
      id,
    );
  }
});
