/**
 * Envelope paths (forms Postfix accepts and rejects), quoting round trips,
 * header address lists, and property tests that the parsers throw nothing
 * but AddressError.
 */
import fc from "fast-check";
import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import {
  AddressError,
  formatPath,
  headerAddress,
  normalizeDomain,
  parseHeaderAddresses,
  parseMailPath,
  quoteAddress,
  quoteLocal,
  splitAddress,
} from "./mod.ts";

Deno.test("parseMailPath accepts", async (t) => {
  const cases: [string, string, [string, string | null][]][] = [
    ["<user@example.com>", "user@example.com", []],
    [" <user@example.com>", "user@example.com", []],
    ["<user@example.com> SIZE=123 BODY=8BITMIME", "user@example.com", [["SIZE", "123"], [
      "BODY",
      "8BITMIME",
    ]]],
    ["<a@b>  smtputf8   ret=HDRS", "a@b", [["SMTPUTF8", null], ["RET", "HDRS"]]],
    ["user@example.com", "user@example.com", []],
    ["user@example.com SIZE=1", "user@example.com", [["SIZE", "1"]]],
    ["<>", "", []],
    ["<> BODY=7BIT", "", [["BODY", "7BIT"]]],
    ["<@relay.one,@relay.two:user@example.com>", "user@example.com", []],
    ["<@relay.one:user@example.com>", "user@example.com", []],
    // Postfix drops a route up to its first ":" without reading it.
    ["<@relay,foo:user@example.com>", "user@example.com", []],
    ["<@relay:>", "", []],
    ["@relay:user@example.com", "user@example.com", []],
    // Brackets beyond one pair are ignored, as Postfix's address parser does.
    ["<<user@example.com>>", "user@example.com", []],
    ["user@example.com>", "user@example.com", []],
    ["<user@example.com>> SIZE=1", "user@example.com", [["SIZE", "1"]]],
    ['<"a>b"@example.com>', "a>b@example.com", []],
    ["<<>>", "", []],
    ['<"john doe"@example.com>', "john doe@example.com", []],
    ['<"a\\"b\\\\c"@example.com>', 'a"b\\c@example.com', []],
    ['<"x@y"@example.com>', "x@y@example.com", []],
    ['<"a b".c@example.com>', "a b.c@example.com", []],
    ["<foo..bar@docomo.ne.jp>", "foo..bar@docomo.ne.jp", []],
    ["<postmaster>", "postmaster", []],
    ["<user@[192.0.2.1]>", "user@[192.0.2.1]", []],
    ["<user@[IPv6:2001:db8::1]>", "user@[IPv6:2001:db8::1]", []],
    ["<user@example.com.>", "user@example.com.", []],
    ["< user@example.com >", "user@example.com", []],
    ["<user+tag=x@example.com>", "user+tag=x@example.com", []],
    ["<bob%[192.0.2.1]@example.com>", "bob%[192.0.2.1]@example.com", []],
    ["<r@outside.example@example.com>", "r@outside.example@example.com", []],
    ["<x@[192.0.2.1]@example.com>", "x@[192.0.2.1]@example.com", []],
    ["<a@b> ORCPT=rfc822;a+40b", "a@b", [["ORCPT", "rfc822;a+40b"]]],
    // Postfix takes control characters inside quotes and quoted pairs outside them.
    ['<"a\tb\x01c\x7f"@example.com>', "a\tb\x01c\x7f@example.com", []],
    ['<"a\\\x01"@example.com>', "a\x01@example.com", []],
    ["<relay\\@remote@example.com>", "relay@remote@example.com", []],
    ["<a\\b@example.com>", "ab@example.com", []],
    // Postfix refuses these later, as unsupported options or bad values: not as bad syntax.
    ["<a@b> SIZE= ret", "a@b", [["SIZE", ""], ["RET", null]]],
    ["<a@b> <c@d> =1 -X=1", "a@b", [["<c@d>", null], ["=1", null], ["-X=1", null]]],
    // VT and FF separate words, as in Postfix's tokenizer.
    ["<a@b>\vSIZE=1\f", "a@b", [["SIZE", "1"]]],
    ["\fa@b\vBODY=7BIT", "a@b", [["BODY", "7BIT"]]],
  ];
  for (const [arg, address, params] of cases) {
    await t.step(arg, () => {
      const path = parseMailPath(arg, { allowEmpty: true });
      assertEquals({ address: path.address, params: path.params }, {
        address,
        params: new Map(params),
      });
    });
  }
  await t.step("repeated parameters", () => {
    const p = parseMailPath("<a@b> RET=FULL ret=HDRS SIZE=1");
    assertEquals([p.params.get("RET"), [...p.repeated]], ["HDRS", ["RET"]]);
  });
  await t.step("parameters as sent", () => {
    assertEquals(
      [...parseMailPath("<a@b> foo=Bar SIZE=1 <c@d>").sent],
      [["FOO", "foo=Bar"], ["SIZE", "SIZE=1"], ["<c@d>", "<c@d>"]],
    );
  });
  await t.step("UTF-8 with smtputf8", () => {
    assertEquals(
      parseMailPath("<jö@bücher.example>", { smtputf8: true }).address,
      "jö@bücher.example",
    );
  });
});

Deno.test("parseMailPath rejects", async (t) => {
  const cases: [string, string, ("address" | "parameter")?][] = [
    ["", "missing address"],
    ["   ", "missing address"],
    ["<>", "null address"],
    ["<user@example.com", 'unbalanced "<"'],
    ["<user@example.com>SIZE=1", "more than one address"],
    ["<a@b><c@d>", "more than one address"],
    ["a>b@c", "more than one address"],
    ["<<user@example.com>", 'unbalanced "<"'],
    ["a<b@c", 'unbalanced "<"'],
    ['<"user@example.com>', "unbalanced quote"],
    ["<us\x01er@example.com>", "control character"],
    ['<"us\x00er"@example.com>', "control character"],
    ['<"us\rer"@example.com>', "control character"],
    ['<"us\\\rer"@example.com>', "control character"],
    ["<a@b> X=\x01", "control character"],
    ['<a@b> X="\x01"', "control character in parameter"],
    ["<a\\", "unbalanced"],
    ["<user@example.com>\x7f", "control character"],
    ["<jö@example.com>", "8-bit"],
    ["<user@>", "empty domain"],
    ["<@example.com>", "bad source route"],
    ["<@relay:>", "null address not allowed"],
    ['<""@example.com>', "empty local part"],
    ["<a[b@example.com>", 'invalid character "["'],
    ["<b@@example.com>", 'invalid character "@"'],
    ["<a[b c]@example.com>", 'invalid character "["'],
    ["<a]b@example.com>", 'invalid character "]"'],
    ["<user name@example.com>", "invalid character"],
    ["<user@exa mple.com>", "bad domain"],
    ["<user@example..com>", "bad domain"],
    ["<user@[1.2.3.4>", "bad domain"],
  ];
  for (const [arg, reason, part] of cases) {
    await t.step(JSON.stringify(arg), () => {
      const e = assertThrows(() => parseMailPath(arg), AddressError, reason) as AddressError;
      assertEquals(e.part, part ?? "address");
    });
  }
  await t.step("U+FFFD (invalid UTF-8 from parseCommand) even with smtputf8", () => {
    assertThrows(() => parseMailPath("<a\ufffd@b>", { smtputf8: true }), AddressError, "UTF-8");
  });
  await t.step("lone surrogate", () => {
    assertThrows(() => parseMailPath("<a\ud800@b>", { smtputf8: true }), AddressError, "UTF-8");
  });
});

Deno.test("formatPath, splitAddress, quoteLocal, normalizeDomain", async (t) => {
  const cases: [string, string][] = [
    ["", "<>"],
    ["user@example.com", "<user@example.com>"],
    ["postmaster", "<postmaster>"],
    ["john doe@example.com", '<"john doe"@example.com>'],
    ['a"b\\c@example.com', '<"a\\"b\\\\c"@example.com>'],
    ["x@y@example.com", '<"x@y"@example.com>'],
    ["foo..bar@docomo.ne.jp", '<"foo..bar"@docomo.ne.jp>'],
    [".x@y", '<".x"@y>'],
    ["jö@bücher.example", "<jö@bücher.example>"],
  ];
  for (const [address, path] of cases) {
    await t.step(`formatPath ${JSON.stringify(address)}`, () => {
      assertEquals(formatPath(address), path);
      assertEquals(parseMailPath(path, { allowEmpty: true, smtputf8: true }).address, address);
    });
  }
  await t.step("splitAddress at the last @", () => {
    assertEquals(splitAddress("x@y@example.com"), { local: "x@y", domain: "example.com" });
    assertEquals(splitAddress("postmaster"), { local: "postmaster", domain: "" });
    assertEquals(splitAddress("@example.com"), { local: "", domain: "example.com" });
  });
  await t.step("quoteLocal", () => {
    assertEquals([quoteLocal("a.b"), quoteLocal(""), quoteLocal("a b")], ["a.b", '""', '"a b"']);
  });
  await t.step("normalizeDomain", () => {
    assertEquals(normalizeDomain("Example.COM."), "example.com");
    assertEquals(normalizeDomain("example.com"), "example.com");
  });
});

Deno.test("the one formatter: quoteAddress, formatPath, headerAddress", async (t) => {
  await t.step("a quoted local part that looks like parameters stays one local part", () => {
    // What smtpd accepts in MAIL FROM:<"v@t.example> ORCPT=rfc822;x"@o.example>.
    const { address } = parseMailPath('<"v@t.example> ORCPT=rfc822;x"@o.example>');
    assertEquals(address, "v@t.example> ORCPT=rfc822;x@o.example");
    assertEquals(quoteAddress(address), '"v@t.example> ORCPT=rfc822;x"@o.example');
    assertEquals(formatPath(address), '<"v@t.example> ORCPT=rfc822;x"@o.example>');
  });
  await t.step("quoteAddress follows quote_822_local", () => {
    const cases: [string, string][] = [
      ["", ""],
      ["user@example.com", "user@example.com"],
      ["postmaster", "postmaster"],
      ["a b", '"a b"'],
      ["@example.com", '""@example.com'],
      ["a.@x", '"a."@x'],
      ["a..b@x", '"a..b"@x'],
      ['a"b\\c@x', '"a\\"b\\\\c"@x'],
      ["<a>@x", '"<a>"@x'],
      ["a,b;c:d(e)[f]@x", '"a,b;c:d(e)[f]"@x'],
      ["!#$%&'*+-/=?^_`{|}~@x", "!#$%&'*+-/=?^_`{|}~@x"],
      ["j\u00f6rg@b\u00fccher.example", "j\u00f6rg@b\u00fccher.example"],
      ["a\r\nb@x", '"a\r\nb"@x'],
    ];
    for (const [internal, external] of cases) assertEquals(quoteAddress(internal), external);
  });
  await t.step("formatPath refuses what cannot go into an SMTP command", () => {
    const bad: [string, string][] = [
      ["a\r\nRCPT TO:<x@y>@example.com", "control character"],
      ["a@example.com\r\nDATA", "control character"],
      ["a\n@example.com", "control character"],
      ["a\x00b@example.com", "control character"],
      ["a\tb@example.com", "control character"],
      ["a\x7f@example.com", "control character"],
      ["a\ud800@example.com", "invalid UTF-8"],
      ["a\ufffd@example.com", "invalid UTF-8"],
      ["a@example.com> ORCPT=rfc822;x", "bad domain"],
      ["a@exa mple.com", "bad domain"],
      ["a@", "bad domain"],
      ["a@[1.2.3.4>]", "bad domain"],
      ['a@"x"', "bad domain"],
    ];
    for (const [address, reason] of bad) {
      assertThrows(() => formatPath(address), AddressError, reason);
    }
  });
  await t.step("headerAddress masks control characters and keeps UTF-8", () => {
    assertEquals(headerAddress("a\r\nBcc: x@y@example.com"), '"a??Bcc: x@y"@example.com');
    assertEquals(headerAddress("bob@example.com\nX-Evil: 1"), "bob@example.com?X-Evil: 1");
    assertEquals(headerAddress("j\u00f6rg@example.com"), "j\u00f6rg@example.com");
    assertEquals(headerAddress(""), "");
  });
});

Deno.test("parseHeaderAddresses", async (t) => {
  const cases: [string, string[]][] = [
    ['A <a@x>, b@y, group: c@z;, "Q, R" <q@r>', ["a@x", "b@y", "c@z", "q@r"]],
    ["a@x (comment, with comma), (c) b@y", ["a@x", "b@y"]],
    ["John (the (nested) one) Smith <john@example.com>", ["john@example.com"]],
    ["undisclosed-recipients:;", []],
    ["team: a@x, b@y; , c@z", ["a@x", "b@y", "c@z"]],
    ['"john doe"@example.com', ["john doe@example.com"]],
    ["<@relay:user@example.com>", ["user@example.com"]],
    ["user@[192.0.2.1]", ["user@[192.0.2.1]"]],
    ["postmaster", ["postmaster"]],
    ["first . last @ example . com", ["first.last@example.com"]],
    ["John Smith, a@x", ["a@x"]],
    ["=?utf-8?q?J=C3=B6rg?= <j@x>", ["j@x"]],
    ["a@x,\r\n\tb@y", ["a@x", "b@y"]],
    ["<>, <a@x", []],
    ['"unterminated <a@x>', []],
    ["a@x, bad@, @bad, b@y", ["a@x", "b@y"]],
    ["", []],
  ];
  for (const [value, out] of cases) {
    await t.step(JSON.stringify(value), () => assertEquals(parseHeaderAddresses(value), out));
  }
});

/** Strings rich in the characters the parsers care about. */
const mailish = fc.array(
  fc.oneof(
    fc.constantFrom(
      "<",
      ">",
      "@",
      '"',
      "\\",
      ",",
      ":",
      ";",
      "(",
      ")",
      "[",
      "]",
      ".",
      " ",
      "=",
      "a",
      "b",
    ),
    fc.constantFrom("\t", "\r", "\n", "\x00", "é", "\ud800", "\ufffd", "SIZE=1", "x.example"),
    fc.string({ maxLength: 3 }),
  ),
  { maxLength: 30 },
).map((a) => a.join(""));

Deno.test("address properties", async (t) => {
  await t.step("parseMailPath throws only AddressError", () => {
    fc.assert(
      fc.property(
        fc.oneof(mailish, fc.string(), fc.fullUnicodeString()),
        fc.boolean(),
        fc.boolean(),
        (s, e, u) => {
          try {
            parseMailPath(s, { allowEmpty: e, smtputf8: u });
          } catch (err) {
            if (!(err instanceof AddressError)) throw err;
          }
        },
      ),
      { numRuns: 5000 },
    );
  });
  await t.step("formatPath round-trips every address parseMailPath returns", () => {
    fc.assert(
      fc.property(fc.oneof(mailish, mailish.map((s) => `<${s}>`)), (s) => {
        let address: string;
        try {
          address = parseMailPath(s, { allowEmpty: true, smtputf8: true }).address;
        } catch {
          return;
        }
        // Control characters pass quoted (as in Postfix) but are never written to SMTP.
        // deno-lint-ignore no-control-regex
        if (/[\x00-\x1f\x7f]/.test(address)) {
          assertThrows(() => formatPath(address), AddressError, "control character");
          return;
        }
        assertEquals(
          parseMailPath(formatPath(address), { allowEmpty: true, smtputf8: true }).address,
          address,
        );
      }),
      { numRuns: 5000 },
    );
  });
  await t.step("formatPath of any string: refused, or one clean token that parses back", () => {
    fc.assert(
      fc.property(fc.oneof(mailish, fc.string(), fc.fullUnicodeString()), (s) => {
        let path: string;
        try {
          path = formatPath(s);
        } catch (e) {
          if (!(e instanceof AddressError)) throw e;
          return;
        }
        assertCleanPath(path);
        const local = splitAddress(s).local;
        // The parser refuses an empty local part with a domain (`<""@x>`); all else round-trips.
        if (local !== "" || !s.includes("@")) {
          assertEquals(parseMailPath(path, { allowEmpty: true, smtputf8: true }).address, s);
        }
      }),
      { numRuns: 5000 },
    );
  });
  await t.step("formatPath(parseMailPath(x)) never fails and is one clean token", () => {
    fc.assert(
      fc.property(fc.oneof(mailish, mailish.map((s) => `<${s}>`)), (s) => {
        let address: string;
        try {
          address = parseMailPath(s, { allowEmpty: true, smtputf8: true }).address;
        } catch {
          return;
        }
        // deno-lint-ignore no-control-regex
        if (/[\x00-\x1f\x7f]/.test(address)) {
          assertThrows(() => formatPath(address), AddressError, "control character");
          return;
        }
        assertCleanPath(formatPath(address));
      }),
      { numRuns: 5000 },
    );
  });
  await t.step("headerAddress never yields a control character", () => {
    fc.assert(
      fc.property(fc.oneof(mailish, fc.fullUnicodeString()), (s) => {
        // deno-lint-ignore no-control-regex
        assertEquals(/[\x00-\x1f\x7f]/.test(headerAddress(s)), false);
      }),
      { numRuns: 2000 },
    );
  });
  await t.step("parseHeaderAddresses never throws", () => {
    fc.assert(
      fc.property(fc.oneof(mailish, fc.string(), fc.fullUnicodeString()), (s) => {
        parseHeaderAddresses(s);
      }),
      { numRuns: 5000 },
    );
  });
});

/**
 * A wire path is `<...>` with no control character anywhere and, outside
 * double quotes, no blank, no "<" or ">" and no backslash: nothing a
 * server could read as the end of the address or a parameter.
 */
function assertCleanPath(path: string): void {
  const fail = (why: string) => {
    throw new Error(`${why}: ${JSON.stringify(path)}`);
  };
  if (path[0] !== "<" || path[path.length - 1] !== ">") fail("not in angle brackets");
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(path)) fail("control character");
  let quoted = false;
  for (let i = 1; i < path.length - 1; i++) {
    const c = path[i];
    if (quoted) {
      if (c === "\\") {
        if (i + 1 >= path.length - 1) fail("escape at the end");
        i++;
      } else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (" \t<>\\".includes(c)) fail(`unquoted ${JSON.stringify(c)}`);
  }
  if (quoted) fail("unterminated quote");
}
