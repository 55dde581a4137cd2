/**
 * Start-time checks of the AUTH settings: what cannot be honoured stops
 * the start (cyrus, an unknown type, a relative passwd-file, unknown
 * security options), and where each backend is.
 */
import { assertEquals, assertMatch, assertThrows } from "../../tests/helpers/assert.ts";
import { makeConfig } from "./config.ts";
import { SaslConfigError, saslEndpoint, saslProblems } from "./sasl.ts";
import { validateConfig } from "./validate.ts";

const BASE = "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8\nlocal_recipient_maps =\n" +
  "queue_directory = /var/spool/pw\n";
const cfg = (text: string) => makeConfig("/etc/x", BASE + text);

Deno.test("AUTH settings", async (t) => {
  await t.step("off: nothing is checked", () => {
    assertEquals(saslProblems(cfg("smtpd_sasl_type = whatever\n")), []);
  });
  await t.step("cyrus, unknown types, bad paths and options stop the start", () => {
    const cases: [string, RegExp][] = [
      ["", /^smtpd_sasl_type = cyrus: Cyrus SASL is not supported by Postwarden; set "dovecot"/],
      ["smtpd_sasl_type = sql", /^smtpd_sasl_type = sql: unsupported SASL server implementation/],
      [
        "smtpd_sasl_type = passwd-file\nsmtpd_sasl_path = passwd",
        /^smtpd_sasl_path = passwd: with smtpd_sasl_type = passwd-file, name the password file/,
      ],
      [
        "smtpd_sasl_type = dovecot\nsmtpd_sasl_path = tcp:host:1",
        /need a socket path or inet:host:port/,
      ],
      [
        "smtpd_sasl_type = dovecot\nsmtpd_sasl_security_options = noanonymous, nocleartext",
        /^smtpd_sasl_security_options: unknown SASL security option "nocleartext"/,
      ],
    ];
    for (const [text, re] of cases) {
      const errors = validateConfig(cfg("smtpd_sasl_auth_enable = yes\n" + text + "\n"));
      assertEquals(errors.length, 1, `${text}: ${errors.join("\n")}`);
      assertMatch(errors[0], re);
    }
    assertEquals(
      validateConfig(cfg("smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\n")),
      [],
    );
  });
  await t.step("where the backend is", () => {
    const ep = (text: string) => {
      const c = cfg(text);
      return saslEndpoint((n) => c.str(n));
    };
    assertEquals(ep("smtpd_sasl_type = dovecot\nsmtpd_sasl_path = private/auth\n"), {
      type: "dovecot",
      unix: "/var/spool/pw/private/auth",
    });
    assertEquals(ep("smtpd_sasl_type = dovecot\nsmtpd_sasl_path = /run/dovecot/auth-client\n"), {
      type: "dovecot",
      unix: "/run/dovecot/auth-client",
    });
    assertEquals(ep("smtpd_sasl_type = dovecot\nsmtpd_sasl_path = inet:[::1]:12345\n"), {
      type: "dovecot",
      host: "::1",
      port: 12345,
    });
    assertEquals(ep("smtpd_sasl_type = passwd-file\nsmtpd_sasl_path = /etc/pw/passwd\n"), {
      type: "passwd-file",
      file: "/etc/pw/passwd",
    });
    assertThrows(
      () => ep("smtpd_sasl_type = dovecot\nsmtpd_sasl_path = inet:h:0\n"),
      SaslConfigError,
    );
  });
});
