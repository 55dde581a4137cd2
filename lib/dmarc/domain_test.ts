/**
 * Unit tests for domain.ts: organizational domains through the Public
 * Suffix List (RFC 7489 3.2) and the author domain of a From field
 * (6.6.1), with the From fields that must not yield one.
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { authorDomain, canonicalDomain, organizationalDomain } from "./domain.ts";

Deno.test("organizationalDomain", async (t) => {
  await t.step("the public suffix plus one label", () => {
    const cases: [string, string][] = [
      ["example.com", "example.com"],
      ["a.b.mail.example.com", "example.com"],
      ["MAIL.Example.COM.", "example.com"],
      ["example.co.uk", "example.co.uk"],
      ["www.example.co.uk", "example.co.uk"],
      ["x.y.example.k12.ca.us", "example.k12.ca.us"],
      ["_dmarc.example.org", "example.org"],
    ];
    for (const [d, org] of cases) assertEquals(organizationalDomain(d), org, d);
  });
  await t.step("PSL private domains count", () => {
    assertEquals(organizationalDomain("mail.alice.github.io"), "alice.github.io");
    assertEquals(organizationalDomain("bob.github.io"), "bob.github.io");
  });
  await t.step("a public suffix, a lone label or an unlisted TLD", () => {
    assertEquals(organizationalDomain("co.uk"), "co.uk");
    assertEquals(organizationalDomain("com"), "com");
    assertEquals(organizationalDomain("mail.example.invalidtld"), "example.invalidtld");
  });
  await t.step("internationalized domains as A-labels", () => {
    assertEquals(canonicalDomain("Bücher.Example"), "xn--bcher-kva.example");
    assertEquals(organizationalDomain("www.bücher.de"), "xn--bcher-kva.de");
  });
  await t.step("what is not a domain name is its own", () => {
    assertEquals(organizationalDomain("192.0.2.1"), "192.0.2.1");
    assertEquals(organizationalDomain("a..b.com"), "a..b.com");
    assertEquals(organizationalDomain(""), "");
  });
});

Deno.test("authorDomain", async (t) => {
  await t.step("the domain of the one mailbox, canonical", () => {
    const cases: [string, string][] = [
      ["joe@example.com", "example.com"],
      ["Joe Q. Public <john.q.public@Example.COM>", "example.com"],
      ['"Joe, Q" <joe@example.com>', "example.com"],
      ['"a@b.example" <joe@mail.example.com.>', "mail.example.com"],
      ['"joe@evil.example"@example.com', "example.com"],
      ["(comment, with: specials) joe@example.com (more <junk@evil.example>)", "example.com"],
      ["joe@example.com,", "example.com"],
      ["\r\n\tJoe\r\n <joe@example.com>", "example.com"],
      ["Jøe <joe@bücher.example>", "xn--bcher-kva.example"],
      ["<@relay.example:joe@example.com>", "example.com"],
      ['"Joe \\"the, boss\\" <x@evil.example>" <joe@example.com>', "example.com"],
      ["(a (nested, comment) with \\) paren) joe@example.com", "example.com"],
    ];
    for (const [v, d] of cases) assertEquals(authorDomain([v]), { domain: d }, v);
  });
  const error = (values: string[]) => {
    const r = authorDomain(values);
    return "error" in r ? r.error : `domain ${r.domain}`;
  };
  await t.step("no From field, or several", () => {
    assertEquals(error([]), "no From header field");
    assertEquals(error(["a@example.com", "a@example.com"]), "several From header fields");
  });
  await t.step("several addresses or a group", () => {
    assertEquals(
      error(["a@example.com, b@example.com"]),
      "From header field has several addresses",
    );
    assertEquals(error(["a@example.com, junk"]), "From header field has several addresses");
    assertEquals(error(["Team: a@example.com;"]), "From header field is a group, not a mailbox");
    assertEquals(
      error(["undisclosed-recipients:;"]),
      "From header field is a group, not a mailbox",
    );
  });
  await t.step("no address, no domain, a domain literal", () => {
    assertEquals(error([""]), "From header field has no address");
    assertEquals(error([" (just a comment) "]), "From header field has no address");
    assertEquals(error(["postmaster"]), "From address has no domain");
    assertEquals(error(["Joe <joe>"]), "From address has no domain");
    assertEquals(error(["joe@[192.0.2.1]"]), "From address has a domain literal");
  });
  await t.step("what does not parse as one mailbox", () => {
    for (
      const v of [
        '"unterminated <joe@example.com>',
        "joe@example.com (unclosed",
        "Joe <joe@example.com",
        "joe@example.com>",
        "@example.com",
        "joe@",
        "joe@@example.com",
        "joe@evil.example@example.com",
        // A reader sees bank.example; the parser alone would join the words.
        "ceo@bank.example evil",
        "ceo@bank.example\tevil",
        "ceo@bank (x) .example",
        "ceo@bank.example <joe@evil.example>",
        "<joe@evil.example> <ceo@bank.example>",
      ]
    ) assertEquals(error([v]).startsWith("domain"), false, v);
  });
  await t.step("an invalid domain name", () => {
    assertEquals(error(["joe@exa_mple.com"]), "domain exa_mple.com");
    assertEquals(
      error([`joe@${"a".repeat(64)}.example`]),
      "From address domain is not a valid domain name",
    );
    assertEquals(error(["joe@a..example"]), "unparsable From address");
  });
});

Deno.test("public suffixes: wildcard and exception rules, the implicit * rule", async () => {
  const { publicSuffixLabels, registrableDomain } = await import("./public_suffix.ts");
  // *.ck and !www.ck
  assertEquals(registrableDomain("a.b.ck"), "a.b.ck");
  assertEquals(registrableDomain("x.a.b.ck"), "a.b.ck");
  assertEquals(registrableDomain("www.ck"), "www.ck");
  assertEquals(registrableDomain("mail.www.ck"), "www.ck");
  assertEquals(registrableDomain("b.ck"), null);
  assertEquals(publicSuffixLabels("example.nosuchtld"), 1);
  assertEquals(registrableDomain("com"), null);
  // Internationalized rules are A-labels (公司.cn).
  assertEquals(registrableDomain("www.example.xn--55qx5d.cn"), "example.xn--55qx5d.cn");
});
