/**
 * The SMTP client's TLS policy, pure: settings and their start-time
 * problems, policy table entries and keys, certificate name matching.
 */
import { assertEquals, assertMatch, assertThrows } from "../../tests/helpers/assert.ts";
import { makeConfig } from "../config/mod.ts";
import {
  certificateMatches,
  nexthopDomain,
  parsePolicyEntry,
  policyKeys,
  sitePolicy,
  smtpTlsProblems,
  smtpTlsSettings,
  TlsPolicyError,
} from "./client_policy.ts";

const cfg = (text: string) => makeConfig("/nonexistent", text, { hostname: "host.example" });

Deno.test("smtp client TLS policy", async (t) => {
  await t.step("the global level, from the level or the obsolete booleans", () => {
    const level = (text: string) => smtpTlsSettings(cfg(text)).level;
    assertEquals(level(""), "none");
    assertEquals(level("smtp_use_tls = yes\n"), "may");
    assertEquals(level("smtp_enforce_tls = yes\n"), "verify");
    assertEquals(level("smtp_enforce_tls = yes\nsmtp_tls_enforce_peername = no\n"), "encrypt");
    assertEquals(level("smtp_tls_security_level = secure\nsmtp_use_tls = yes\n"), "secure");
  });

  await t.step("what stops the start", () => {
    const problems = (text: string) =>
      smtpTlsProblems(cfg(text)).filter((p) => p.fatal).map((p) => p.message);
    assertEquals(problems("smtp_tls_security_level = may\n"), []);
    assertMatch(
      problems("smtp_tls_security_level = dane\n")[0],
      /dane needs smtp_dns_support_level = dnssec/,
    );
    assertEquals(
      problems("smtp_tls_security_level = dane-only\nsmtp_dns_support_level = dnssec\n"),
      [],
    );
    assertMatch(problems("smtp_dns_support_level = disabled\n")[0], /not supported/);
    assertMatch(problems("smtp_dns_support_level = yes\n")[0], /invalid/);
    assertMatch(
      problems("smtp_tls_dane_insecure_mx_policy = ignore\n")[0],
      /invalid smtp_tls_dane_insecure_mx_policy value: "ignore"/,
    );
    assertMatch(problems("smtp_tls_security_level = fingerprint\n")[0], /not supported/);
    assertMatch(problems("smtp_tls_security_level = Verify\n")[0], /invalid tls security level/);
    assertMatch(
      problems("smtp_tls_security_level = may\nsmtp_tls_protocols = TLSv1.1\n")[0],
      /allows no protocol/,
    );
    assertMatch(
      problems("smtp_tls_security_level = encrypt\nsmtp_tls_mandatory_ciphers = null\n")[0],
      /null/,
    );
    assertMatch(
      problems("smtp_tls_security_level = may\nsmtp_tls_exclude_ciphers = FANCY\n")[0],
      /"FANCY": not a cipher/,
    );
    // Exclusions of offered suites are enforced on the session, not refused.
    assertEquals(problems("smtp_tls_security_level = may\nsmtp_tls_exclude_ciphers = aRSA\n"), []);
    // TLS off: nothing else is read.
    assertEquals(problems("smtp_tls_protocols = TLSv1.1\n"), []);
  });

  await t.step("policy table keys: the next hop, then parent domains of a plain domain", () => {
    assertEquals(policyKeys("Mail.Example.COM"), ["mail.example.com", ".example.com", ".com"]);
    assertEquals(policyKeys("[mail.example.com]:587"), ["[mail.example.com]:587"]);
    assertEquals(policyKeys("example.com:2525"), ["example.com:2525"]);
    assertEquals(nexthopDomain("[Mail.Example.com]:587"), "mail.example.com");
    assertEquals(nexthopDomain("example.com:25"), "example.com");
  });

  await t.step("policy entries as Postfix parses them", () => {
    assertEquals(parsePolicyEntry("secure match=nexthop:.example.net match=x protocols=TLSv1.3"), {
      level: "secure",
      match: ["nexthop", ".example.net", "x"],
      protocols: "TLSv1.3",
      ignored: [],
    });
    assertEquals(parsePolicyEntry("none ciphers=high").ignored, ["ciphers=high"]);
    for (
      const [value, why] of [
        ["", /invalid empty policy/],
        ["MUST", /invalid security level "MUST"/],
        ["fingerprint", /not supported/],
        ["dane match=x", /invalid at security level "dane"/],
        ["may match=x", /invalid at security level "may"/],
        ["verify ciphers=", /has empty value/],
        ["verify protocols=a protocols=b", /specified multiple times/],
        ["verify nonsense", /malformed attribute/],
        ["verify tafile=/x", /"tafile" is not supported/],
      ] as const
    ) {
      const e = assertThrows(() => parsePolicyEntry(value), TlsPolicyError);
      assertMatch(e.message, why);
    }
  });

  await t.step("site policy: mandatory settings above may, the entry's own attributes", () => {
    const s = smtpTlsSettings(cfg(
      "smtp_tls_security_level = may\nsmtp_tls_protocols = >=TLSv1.3\n" +
        "smtp_tls_mandatory_exclude_ciphers = aECDSA\n",
    ));
    const may = sitePolicy(s, null);
    assertEquals([...may.protocols], ["TLSv1.3"]);
    assertEquals(may.excluded.size, 0);
    const enc = sitePolicy(s, parsePolicyEntry("encrypt"));
    assertEquals([...enc.protocols], ["TLSv1.2", "TLSv1.3"]);
    assertEquals(enc.excluded.has("ECDHE-ECDSA-AES128-GCM-SHA256"), true);
    assertEquals(sitePolicy(s, parsePolicyEntry("verify")).match, ["hostname"]);
    assertEquals(sitePolicy(s, parsePolicyEntry("secure")).match, ["nexthop", "dot-nexthop"]);
    assertThrows(() => sitePolicy(s, parsePolicyEntry("encrypt ciphers=null")), TlsPolicyError);
  });

  await t.step("certificate names", () => {
    const names = { hostname: "mx1.example.com", nexthop: "example.com" };
    const m = (dnsNames: string[], patterns: string[], commonName: string | null = null) =>
      certificateMatches({ dnsNames, commonName }, patterns, names);
    assertEquals(m(["MX1.example.com"], ["hostname"]), true);
    assertEquals(m(["mx2.example.com"], ["hostname"]), false);
    assertEquals(m(["example.com"], ["nexthop", "dot-nexthop"]), true);
    assertEquals(m(["mx1.example.com"], ["nexthop"]), false);
    assertEquals(m(["mx1.example.com"], ["dot-nexthop"]), true);
    assertEquals(m(["badexample.com"], ["dot-nexthop"]), false);
    assertEquals(m(["*.example.com"], ["hostname"]), true);
    assertEquals(m(["*.example.com"], ["nexthop"]), false);
    assertEquals(m(["*.example.com"], ["dot-nexthop"]), true);
    assertEquals(m(["a.b.example.org"], [".example.org"]), true);
    assertEquals(m(["example.org"], [".example.org"]), false);
    // The common name counts only without DNS names.
    assertEquals(m([], ["hostname"], "mx1.example.com"), true);
    assertEquals(m(["other.example.com"], ["hostname"], "mx1.example.com"), false);
  });
});
