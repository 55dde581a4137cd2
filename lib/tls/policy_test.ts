import { assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { makeConfig } from "../config/mod.ts";
import { excludedSuites, parseProtocols, smtpdTlsPolicy } from "./policy.ts";

const read = (main: string, overrides: Record<string, string> = {}) =>
  smtpdTlsPolicy(makeConfig("/x", "compatibility_level = 3.6\n" + main, { overrides }));

Deno.test("smtpdTlsPolicy", async (t) => {
  await t.step("the level, and the obsolete names as Postfix maps them", () => {
    assertEquals(read("").policy.level, "none");
    assertEquals(read("smtpd_use_tls = yes\n").policy.level, "may");
    assertEquals(read("smtpd_enforce_tls = yes\n").policy.level, "encrypt");
    assertEquals(read("smtpd_use_tls = yes\nsmtpd_enforce_tls = yes\n").policy.level, "encrypt");
    // A non-empty level overrides both.
    assertEquals(
      read("smtpd_enforce_tls = yes\nsmtpd_tls_security_level = may\n").policy.level,
      "may",
    );
    assertEquals(
      read("smtpd_use_tls = yes\nsmtpd_tls_security_level = none\n").policy.level,
      "none",
    );
  });
  await t.step("fingerprint, verify, secure: encrypt, with a warning", () => {
    const r = read("smtpd_tls_security_level = verify\n");
    assertEquals(r.policy.level, "encrypt");
    assertEquals(r.problems.map((p) => p.fatal), [false]);
    assertMatch(r.problems[0].message, /using "encrypt" instead/);
  });
  await t.step("wrapper mode: mandatory TLS whatever the level", () => {
    const r = read("smtpd_tls_security_level = none\n", { smtpd_tls_wrappermode: "yes" });
    assertEquals([r.policy.level, r.policy.wrapper, r.policy.authOnly], ["encrypt", true, true]);
  });
  await t.step("auth only: the parameter, or mandatory TLS", () => {
    assertEquals(read("smtpd_use_tls = yes\n").policy.authOnly, false);
    assertEquals(read("smtpd_tls_auth_only = yes\n").policy.authOnly, true);
    assertEquals(read("smtpd_tls_security_level = encrypt\n").policy.authOnly, true);
  });
  await t.step("protocols: may reads smtpd_tls_protocols, encrypt the mandatory ones", () => {
    const may = read("smtpd_tls_security_level = may\nsmtpd_tls_protocols = >=TLSv1.3\n");
    assertEquals([may.policy.minVersion, may.policy.maxVersion], ["TLSv1.3", "TLSv1.3"]);
    const enc = read(
      "smtpd_tls_security_level = encrypt\nsmtpd_tls_protocols = >=TLSv1.3\n" +
        "smtpd_tls_mandatory_protocols = !SSLv2, !SSLv3, !TLSv1.3\n",
    );
    assertEquals([enc.policy.minVersion, enc.policy.maxVersion], ["TLSv1.2", "TLSv1.2"]);
    assertEquals(enc.problems, []);
  });
  await t.step("defaults, and keyfile = certfile", () => {
    const r = read("smtpd_use_tls = yes\nsmtpd_tls_cert_file = /etc/c.pem\n");
    assertEquals(r.problems, []);
    assertEquals([r.policy.certFile, r.policy.keyFile], ["/etc/c.pem", "/etc/c.pem"]);
    assertEquals([r.policy.minVersion, r.policy.maxVersion], ["TLSv1.2", "TLSv1.3"]);
    assertEquals(r.policy.handshakeTimeoutMs, 300_000);
    assertEquals([r.policy.loglevel, r.policy.receivedHeader], [0, false]);
  });
  await t.step("what cannot be honoured stops the start; none is not checked", () => {
    const bad = read(
      "smtpd_use_tls = yes\nsmtpd_tls_protocols = TLSv1.1\nsmtpd_tls_ciphers = null\n",
    );
    assertEquals(bad.problems.map((p) => [p.names[0], p.fatal]), [
      ["smtpd_tls_protocols", true],
      ["smtpd_tls_ciphers", true],
    ]);
    assertEquals(read("smtpd_tls_protocols = TLSv1.1\nsmtpd_tls_ciphers = null\n").problems, []);
  });
  await t.step("exclusions: moot when TLSv1.2 is off", () => {
    assertEquals(
      read(
        "smtpd_use_tls = yes\nsmtpd_tls_protocols = >=TLSv1.3\nsmtpd_tls_exclude_ciphers = AES256\n",
      ).problems,
      [],
    );
    assertEquals(
      read("smtpd_use_tls = yes\nsmtpd_tls_exclude_ciphers = aNULL, RC4, MD5, DES, 3DES\n")
        .problems,
      [],
    );
    // mandatory_exclude applies with encrypt only.
    assertEquals(
      read("smtpd_use_tls = yes\nsmtpd_tls_mandatory_exclude_ciphers = AES256\n").problems,
      [],
    );
  });
});

Deno.test("parseProtocols: Postfix's protocol lists", () => {
  const set = (v: string) => {
    const r = parseProtocols(v);
    return typeof r === "string" ? r : [...r].sort();
  };
  assertEquals(set(">=TLSv1"), ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]);
  assertEquals(set("!SSLv2, !SSLv3"), ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]);
  assertEquals(set("TLSv1.2 TLSv1.3"), ["TLSv1.2", "TLSv1.3"]);
  assertEquals(set(">=TLSv1.1:<=TLSv1.2"), ["TLSv1.1", "TLSv1.2"]);
  assertEquals(set(""), ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]);
  assertEquals(set("TLSv9"), 'unknown TLS protocol "TLSv9"');
});

Deno.test("excludedSuites: which offered TLSv1.2 suites an exclusion names", () => {
  assertEquals(excludedSuites("RC4"), []);
  assertEquals(excludedSuites("!aNULL"), []);
  assertEquals(excludedSuites("ECDHE-RSA-AES128-SHA"), []); // CBC: never offered
  assertEquals(excludedSuites("ECDHE-RSA-AES128-GCM-SHA256"), ["ECDHE-RSA-AES128-GCM-SHA256"]);
  assertEquals(excludedSuites("CHACHA20"), [
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
  ]);
  assertEquals(excludedSuites("aRSA+AES256"), ["ECDHE-RSA-AES256-GCM-SHA384"]);
  assertEquals(excludedSuites("kRSA+AES256"), []);
  assertEquals(excludedSuites("NOTAKEYWORD"), null);
});

Deno.test("a master.cf -o that turns TLS on brings main.cf's TLS problems with it", async () => {
  const { overrideProblems } = await import("../config/validate.ts");
  const overrides = { smtpd_tls_wrappermode: "yes" };
  const c = makeConfig("/x", "compatibility_level = 3.6\nsmtpd_tls_mandatory_protocols = TLSv1\n", {
    overrides,
  });
  const p = overrideProblems(c, overrides);
  assertEquals(p.fatal.length, 1, p.fatal.join("\n"));
  assertMatch(p.fatal[0], /^smtpd_tls_mandatory_protocols = TLSv1: allows no protocol/);
});
