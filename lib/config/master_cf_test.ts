/** Tests for master.cf parsing and `postconf -M` formatting (master_cf.ts). */

import { ConfigError } from "./errors.ts";
import { formatMasterService, parseMasterCf } from "./master_cf.ts";
import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";

const MASTER = `# service type private unpriv chroot wakeup maxproc command
smtp      inet  n       -       y       -       -       smtpd
submission inet n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  # inner comment
  -o smtpd_tls_security_level=encrypt
  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }
pickup    unix  n       -       y       60      1       pickup
tlsmgr    unix  -       -       y       1000?   1       tlsmgr
verylongservicename unix  -       -       n       -       -       pipe flags=F { user = x } argv=/bin/echo \${recipient}
127.0.0.1:2525 inet n - n - 4 smtpd -v -o x=y
`;

Deno.test("parseMasterCf", async (t) => {
  const { services, warnings } = parseMasterCf(MASTER);
  await t.step("one entry per logical line", () => {
    assertEquals(services.map((s) => `${s.name}/${s.type}@${s.line}`), [
      "smtp/inet@2",
      "submission/inet@3",
      "pickup/unix@8",
      "tlsmgr/unix@9",
      "verylongservicename/unix@10",
      "127.0.0.1:2525/inet@11",
    ]);
    assertEquals(warnings, []);
  });
  await t.step("'-' fields take Postfix defaults", () => {
    const smtp = services[0];
    assertEquals(
      [smtp.private, smtp.unprivileged, smtp.chroot, smtp.wakeup, smtp.maxproc],
      [false, true, true, 0, 100],
    );
    assertEquals([smtp.command, smtp.args, smtp.overrides], ["smtpd", [], {}]);
  });
  await t.step("wakeup with '?' and explicit maxproc", () => {
    assertEquals([services[2].wakeup, services[2].maxproc], [60, 1]);
    assertEquals(services[3].wakeup, 1000);
  });
  await t.step("-o overrides in both forms, across continuation lines", () => {
    assertEquals(services[1].overrides, {
      syslog_name: "postfix/submission",
      smtpd_tls_security_level: "encrypt",
      smtpd_client_restrictions: "permit_sasl_authenticated, reject",
    });
    assertEquals(services[1].args, []);
    assertEquals(services[5].args, ["-v"]);
    assertEquals(services[5].overrides, { x: "y" });
  });
  await t.step("{ } groups are one argument", () => {
    assertEquals(services[4].args, ["flags=F", "user = x", "argv=/bin/echo", "${recipient}"]);
    assertEquals(services[4].chroot, false);
  });
  await t.step("errors in Postfix's words", () => {
    assertThrows(() => parseMasterCf("a inet n\n"), ConfigError, "line 1: bad field count");
    assertThrows(
      () => parseMasterCf("d bogus - - - - - x\n"),
      ConfigError,
      'invalid type field "bogus"',
    );
    assertThrows(
      () => parseMasterCf("e unix x - - - - x\n"),
      ConfigError,
      'invalid private field "x"',
    );
    assertThrows(
      () => parseMasterCf("f unix - - - -1 - x\n"),
      ConfigError,
      'invalid wakeup field "-1"',
    );
    assertThrows(
      () => parseMasterCf("g unix - - - - z x\n"),
      ConfigError,
      'invalid maxproc field "z"',
    );
  });
  await t.step("-o without a value is kept as an argument, with a warning", () => {
    const r = parseMasterCf("b unix - - - - - smtpd -o\n");
    assertEquals(r.services[0].args, ["-o"]);
    assertEquals(r.warnings.length, 1);
  });
});

Deno.test("formatMasterService matches postconf -M of Postfix 3.7", () => {
  const { services } = parseMasterCf(MASTER);
  assertEquals(services.map(formatMasterService), [
    "smtp       inet  n       -       y       -       -       smtpd",
    "submission inet  n       -       y       -       -       smtpd -o syslog_name=postfix/submission -o smtpd_tls_security_level=encrypt -o {smtpd_client_restrictions=permit_sasl_authenticated, reject}",
    "pickup     unix  n       -       y       60      1       pickup",
    "tlsmgr     unix  -       -       y       1000?   1       tlsmgr",
    "verylongservicename unix - -     n       -       -       pipe flags=F {user = x} argv=/bin/echo ${recipient}",
    "127.0.0.1:2525 inet n    -       n       -       4       smtpd -v -o x=y",
  ]);
});
