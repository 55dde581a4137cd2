/** Unit tests for macro.ts: RFC 7208 section 7 parsing, expansion and target names. */
import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { parseClientIp } from "./ip.ts";
import {
  expandMacro,
  type MacroContext,
  MacroSyntaxError,
  type MacroValues,
  parseDomainSpec,
  parseMacroString,
  targetName,
  urlEncode,
} from "./macro.ts";

/** The setting of RFC 7208 section 7.4. */
function values(ip: string, over: Partial<MacroValues> = {}): MacroValues {
  return {
    sender: "strong-bad@email.example.com",
    local: "strong-bad",
    senderDomain: "email.example.com",
    domain: "email.example.com",
    ip: parseClientIp(ip)!,
    helo: "mx.example.org",
    receiver: "mx.example.net",
    now: () => new Date(1_700_000_000_123),
    validatedName: () => Promise.resolve("mx.example.org"),
    ...over,
  };
}

function expand(text: string, ip = "192.0.2.3", context: MacroContext = "explain") {
  return expandMacro(parseMacroString(text, context), values(ip));
}

Deno.test("RFC 7208 section 7.4 examples", async (t) => {
  const table: [string, string][] = [
    ["%{s}", "strong-bad@email.example.com"],
    ["%{o}", "email.example.com"],
    ["%{d}", "email.example.com"],
    ["%{d4}", "email.example.com"],
    ["%{d3}", "email.example.com"],
    ["%{d2}", "example.com"],
    ["%{d1}", "com"],
    ["%{dr}", "com.example.email"],
    ["%{d2r}", "example.email"],
    ["%{l}", "strong-bad"],
    ["%{l-}", "strong.bad"],
    ["%{lr}", "strong-bad"],
    ["%{lr-}", "bad.strong"],
    ["%{l1r-}", "strong"],
    ["%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"],
    ["%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"],
    ["%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"],
    ["%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"],
    ["%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"],
  ];
  for (const [macro, expansion] of table) {
    await t.step(macro, async () => {
      assertEquals(await expand(macro, "192.0.2.3", "domain"), expansion);
    });
  }
  await t.step("IPv6: %{ir}.%{v}._spf.%{d2}", async () => {
    assertEquals(
      await expand("%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01", "domain"),
      "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com",
    );
  });
});

Deno.test("each macro letter", async (t) => {
  await t.step("i, c and v for IPv4, IPv6 and IPv4-mapped clients", async () => {
    assertEquals(await expand("%{i} %{c} %{v}"), "192.0.2.3 192.0.2.3 in-addr");
    assertEquals(
      await expand("%{i} %{c} %{v}", "2001:db8::cb01"),
      "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1 2001:db8::cb01 ip6",
    );
    assertEquals(await expand("%{i} %{c} %{v}", "::ffff:192.0.2.3"), "192.0.2.3 192.0.2.3 in-addr");
  });
  await t.step("p, h, r and t", async () => {
    assertEquals(
      await expand("%{p} %{p2} %{h} %{r} %{t}"),
      [
        "mx.example.org",
        "example.org",
        "mx.example.org",
        "mx.example.net",
        "1700000000",
      ].join(" "),
    );
  });
  await t.step("%%, %_ and %-", async () => {
    assertEquals(await expand("100%% %_x%-y"), "100%  x%20y");
  });
  await t.step("uppercase letters are URL-encoded after expansion", async () => {
    assertEquals(await expand("%{S}"), "strong-bad%40email.example.com");
    assertEquals(await expand("%{D2R}"), "example.email");
    const v = values("192.0.2.3", { local: "~jack&jill=up-a_b3.c" });
    assertEquals(
      await expandMacro(parseMacroString("l=%{L}", "explain"), v),
      "l=~jack%26jill%3Dup-a_b3.c",
    );
    assertEquals(urlEncode("a b!*'()é"), "a%20b%21%2A%27%28%29%C3%A9");
  });
  await t.step("the r transformer may be uppercase", async () => {
    assertEquals(await expand("%{dR}"), "com.example.email");
  });
});

Deno.test("transformers and delimiters", async (t) => {
  const v = values("192.0.2.3", { local: "foo-bar+zip+quux", domain: "a.b.c.d.e" });
  const x = (s: string) => expandMacro(parseMacroString(s, "domain"), v);
  await t.step("several delimiters", async () => {
    assertEquals(await x("%{l+-}"), "foo.bar.zip.quux");
    assertEquals(await x("%{l2r+-}"), "bar.foo");
    assertEquals(await x("%{l+}"), "foo-bar.zip.quux");
  });
  await t.step("more parts asked than there are keeps all", async () => {
    assertEquals(await x("%{d9}"), "a.b.c.d.e");
    assertEquals(await x("%{d99999999999999999999}"), "a.b.c.d.e");
    assertEquals(await x("%{d05}"), "a.b.c.d.e");
    assertEquals(await x("%{d04}"), "b.c.d.e");
  });
  await t.step("delimiters are rejoined with dots", async () => {
    assertEquals(await x("%{d/}"), "a.b.c.d.e");
    assertEquals(await x("%{dr=}"), "a.b.c.d.e");
  });
});

Deno.test("macro syntax", async (t) => {
  const bad: [string, MacroContext][] = [
    ["%(ir).sbl.example.com", "domain"],
    ["foo%(ir).sbl.example.com", "domain"],
    ["foo%.sbl.example.com", "domain"],
    ["foo%", "explain"],
    ["%{a}.example.com", "domain"],
    ["%{x}", "explain"],
    ["%{d0}", "domain"],
    ["%{d00}", "domain"],
    ["%{d", "domain"],
    ["%{}", "domain"],
    ["%{d2r2}", "domain"],
    ["%{d:}", "domain"],
    ["%{c}.example.com", "domain"],
    ["%{r}.example.com", "domain"],
    ["%{t}.example.com", "domain"],
    ["%{t}", "modifier"],
    ["has space", "domain"],
    ["tab\there", "explain"],
    ["caf\u00e9", "explain"],
  ];
  for (const [text, context] of bad) {
    await t.step(`${context}: ${JSON.stringify(text)} is an error`, () => {
      assertThrows(() => parseMacroString(text, context), MacroSyntaxError);
    });
  }
  await t.step("c, r, t and spaces are allowed in explanation text", () => {
    assertEquals(parseMacroString("from %{c} at %{t} by %{r}", "explain").length, 6);
  });
});

Deno.test("domain-spec endings", async (t) => {
  const good = [
    "example.com",
    "example.com.",
    "%{d}",
    "%{d2}._spf.%{d}",
    "%{ir}.%{v}._spf.%{d2}",
    "foo.example.xn--zckzah",
    "foo:bar/baz.example.com",
    "macro%%percent%_%_space%-url-space.example.com",
    "x.%-",
    ".com",
    "a.123-456",
  ];
  for (const text of good) {
    await t.step(`${JSON.stringify(text)} is valid`, () => {
      parseDomainSpec(text);
    });
  }
  const bad = [
    "",
    "foo-bar",
    "museum",
    "museum.",
    "111.222.33.44",
    "abc.123",
    "example.-com",
    "example.com-",
    "example.com:8080",
    "mail.example.com/24",
    "foo.example.com\0",
    "%{d}.",
    "x.%{d}com",
  ];
  for (const text of bad) {
    await t.step(`${JSON.stringify(text)} is an error`, () => {
      assertThrows(() => parseDomainSpec(text), MacroSyntaxError);
    });
  }
});

Deno.test("targetName", async (t) => {
  await t.step("drops one trailing dot", () => {
    assertEquals(targetName("o.spf.example.com."), "o.spf.example.com");
  });
  await t.step("removes left labels past 253 characters", () => {
    const o = "somewhat.long.exp.example.com";
    const long = `foobar.${Array(8).fill(o).join(".")}.example.com`;
    assertEquals(long.length, 258);
    assertEquals(targetName(long), `${Array(8).fill(o).join(".")}.example.com`);
  });
  await t.step("malformed names are null", () => {
    for (
      const name of ["", "com", "a..b.com", `${"a".repeat(64)}.com`, "caf\u00e9.com", "a\r.com"]
    ) {
      assertEquals(targetName(name), null, JSON.stringify(name));
    }
  });
  await t.step("printable characters, spaces included, are kept", () => {
    assertEquals(
      targetName("macro%percent  space%20url-space.example.com"),
      "macro%percent  space%20url-space.example.com",
    );
  });
});
