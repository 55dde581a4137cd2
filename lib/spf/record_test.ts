/** Unit tests for record.ts: record selection (RFC 7208 4.5) and whole-record syntax (4.6, 5, 6). */
import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { parseRecord, selectRecord, SpfSyntaxError } from "./record.ts";

Deno.test("selectRecord", async (t) => {
  await t.step("the one record starting v=spf1", () => {
    assertEquals(selectRecord([["google-site-verification=x"], ["v=spf1 -all"]]), {
      kind: "record",
      text: "v=spf1 -all",
    });
  });
  await t.step("strings are joined without spaces", () => {
    assertEquals(selectRecord([["v=spf1 ip4:192.0.2.0/24", " -all"]]), {
      kind: "record",
      text: "v=spf1 ip4:192.0.2.0/24 -all",
    });
    assertEquals(selectRecord([["v=spf1", "mx"]]), { kind: "none" });
  });
  await t.step("the version is case-insensitive and ends in a space or the record", () => {
    assertEquals(selectRecord([["V=SpF1 ~all"]]).kind, "record");
    assertEquals(selectRecord([["v=spf1"]]).kind, "record");
    assertEquals(selectRecord([["v=spf10"], ["v=spf1\t-all"], ["spf1 -all"]]), { kind: "none" });
  });
  await t.step("none, and more than one", () => {
    assertEquals(selectRecord([]), { kind: "none" });
    assertEquals(selectRecord([["v=spf1 -all"], ["v=spf1 -all"]]), { kind: "multiple", count: 2 });
    assertEquals(selectRecord([["v=spf1 -all"], ["V=spf1 +all"]]), { kind: "multiple", count: 2 });
  });
});

Deno.test("parseRecord: mechanisms and qualifiers", async (t) => {
  await t.step("every mechanism, every qualifier, terms as written", () => {
    const r = parseRecord(
      "v=spf1 +all -include:_spf.example.com ~a ?a:mail.example.com/24//64 MX mx:%{d}/28 " +
        "ptr ptr:example.com ip4:192.0.2.0/24 Ip6:2001:DB8::/32 exists:%{i}.bl.example.com",
    );
    assertEquals(r.directives.map((d) => [d.qualifier, d.mechanism.kind, d.term]), [
      ["+", "all", "+all"],
      ["-", "include", "-include:_spf.example.com"],
      ["~", "a", "~a"],
      ["?", "a", "?a:mail.example.com/24//64"],
      ["+", "mx", "MX"],
      ["+", "mx", "mx:%{d}/28"],
      ["+", "ptr", "ptr"],
      ["+", "ptr", "ptr:example.com"],
      ["+", "ip4", "ip4:192.0.2.0/24"],
      ["+", "ip6", "Ip6:2001:DB8::/32"],
      ["+", "exists", "exists:%{i}.bl.example.com"],
    ]);
  });
  await t.step("CIDR lengths: defaults, single and dual", () => {
    const cidr = (term: string) => {
      const m = parseRecord(`v=spf1 ${term}`).directives[0].mechanism;
      if (m.kind === "a" || m.kind === "mx") {
        return [m.domain?.text ?? null, m.cidr4, m.cidr6];
      }
      if (m.kind === "ip4" || m.kind === "ip6") return [m.prefix];
      throw new Error(term);
    };
    assertEquals(cidr("a"), [null, 32, 128]);
    assertEquals(cidr("a/24"), [null, 24, 128]);
    assertEquals(cidr("a//64"), [null, 32, 64]);
    assertEquals(cidr("a/0//0"), [null, 0, 0]);
    assertEquals(cidr("mx:example.com/24//64"), ["example.com", 24, 64]);
    assertEquals(cidr("a:foo:bar/baz.example.com"), ["foo:bar/baz.example.com", 32, 128]);
    assertEquals(cidr("a:foo.example.com/24"), ["foo.example.com", 24, 128]);
    assertEquals(cidr("ip4:192.0.2.1"), [32]);
    assertEquals(cidr("ip4:1.1.1.1/0"), [0]);
    assertEquals(cidr("ip6:::1.1.1.1/0"), [0]);
    assertEquals(cidr("ip6:2001:db8::"), [128]);
  });
  await t.step("modifiers: redirect and exp kept, unknown ones checked and ignored", () => {
    const r = parseRecord(
      "v=spf1 Redirect=_spf.example.com EXP=explain._spf.%{d} moo.cow-far_out=man:dog/cat a=b x=",
    );
    assertEquals(r.directives, []);
    assertEquals(r.redirect?.text, "_spf.example.com");
    assertEquals(r.exp?.text, "explain._spf.%{d}");
  });
  await t.step("one or more spaces between terms, spaces at the end", () => {
    assertEquals(parseRecord("v=spf1  a   -all  ").directives.length, 2);
    assertEquals(parseRecord("v=spf1").directives.length, 0);
  });
});

Deno.test("parseRecord: syntax errors anywhere are errors", async (t) => {
  const bad = [
    "v=spf1 ip4:192.0.2.1 -all moo",
    "v=spf1 -all.",
    "v=spf1 -all:foobar",
    "v=spf1 -all/8",
    "v=spf1 include",
    "v=spf1 include:",
    "v=spf1 include:ip5.example.com/24",
    "v=spf1 a:",
    "v=spf1 a/33",
    "v=spf1 a//129",
    "v=spf1 a/24/64",
    "v=spf1 a/024",
    "v=spf1 a:example.com:8080",
    "v=spf1 a:111.222.33.44",
    "v=spf1 a:museum",
    "v=spf1 mx:abc.123",
    "v=spf1 ptr/0",
    "v=spf1 ptr:",
    "v=spf1 exists",
    "v=spf1 exists:",
    "v=spf1 exists:mail.example.com/24",
    "v=spf1 ip4",
    "v=spf1 ip4:192.0.2",
    "v=spf1 ip4:192.0.2.1/33",
    "v=spf1 ip4:192.0.2.1/032",
    "v=spf1 ip4:192.0.2.1//32",
    "v=spf1 ip4:192.0.2.1:8080",
    "v=spf1 ip4:2001:db8::1",
    "v=spf1 ip6",
    "v=spf1 ip6::CAFE::BABE",
    "v=spf1 ip6:::1.1.1.1/129",
    "v=spf1 ip6:::1.1.1.1//33",
    "v=spf1 ip6:192.0.2.1",
    "v=spf1 redirect:example.com",
    "v=spf1 moo.cow/far_out=man:dog/cat",
    "v=spf1 moo.cow:far_out=man:dog/cat",
    "v=spf1 1up=foo",
    "v=spf1 =all",
    "v=spf1 -redirect=example.com",
    "v=spf1 redirect=",
    "v=spf1 redirect=-all ?all",
    "v=spf1 exp=",
    "v=spf1 exp=-all",
    "v=spf1 exp=%{r}.example.com -all",
    "v=spf1 redirect=a.example.com redirect=a.example.com",
    "v=spf1 exp=a.example.com -all exp=b.example.com",
    "v=spf1 -all foo=%abc",
    "v=spf1 -all foo=%{t}",
    "v=spf1 -exists:%(ir).sbl.example.com ?all",
    "v=spf1 a:%{a}.example.com -all",
    "v=spf1 a:ctrl.example.com\rptr -all",
    "v=spf1 a:foo.example.com\0",
    "v=spf1 a:\u00efgarbage.example.net -all",
    "v=spf1 a:example.net \u0096all",
    "v=spf1 -all\t",
  ];
  for (const text of bad) {
    await t.step(JSON.stringify(text), () => {
      assertThrows(() => parseRecord(text), SpfSyntaxError);
    });
  }
});
