/**
 * The submission service conf/master.cf carries commented, as Postfix
 * ships it: uncommented, every `-o` parses to the intended setting, and
 * against a main.cf with a Dovecot backend the only setting that stops
 * the start is the one this branch cannot honour yet (STARTTLS,
 * smtpd_tls_security_level=encrypt); the auth settings are all accepted.
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { makeConfig } from "./config.ts";
import { parseMasterCf } from "./master_cf.ts";
import { overrideProblems } from "./validate.ts";

const text = await Deno.readTextFile(new URL("../../conf/master.cf", import.meta.url));

/** The submission block with its "#" taken off. */
function submissionBlock(): string {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.startsWith("#submission "));
  const out = [lines[start].slice(1)];
  for (const l of lines.slice(start + 1)) {
    if (!l.startsWith("#  -o ")) break;
    out.push(l.slice(1));
  }
  return out.join("\n") + "\n";
}

Deno.test("conf/master.cf submission service", async (t) => {
  const svc = parseMasterCf(submissionBlock()).services[0];
  await t.step("commented by default", () => {
    assertEquals(parseMasterCf(text).services.filter((s) => s.name === "submission"), []);
  });
  await t.step("every -o parses", () => {
    assertEquals(svc.name, "submission");
    assertEquals(svc.command, "smtpd");
    assertEquals(svc.overrides, {
      syslog_name: "postfix/submission",
      smtpd_tls_security_level: "encrypt",
      smtpd_sasl_auth_enable: "yes",
      smtpd_tls_auth_only: "yes",
      smtpd_reject_unlisted_recipient: "no",
      smtpd_client_restrictions: "",
      smtpd_helo_restrictions: "",
      smtpd_sender_restrictions: "",
      smtpd_relay_restrictions: "",
      smtpd_recipient_restrictions: "permit_sasl_authenticated,reject",
      milter_macro_daemon_name: "ORIGINATING",
    });
  });
  await t.step("every -o is accepted (master checks the certificate when it loads it)", () => {
    const config = makeConfig(
      "/etc/x",
      "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8\nlocal_recipient_maps =\n" +
        "smtpd_sasl_type = dovecot\nsmtpd_sasl_path = private/auth\n",
      { overrides: svc.overrides },
    );
    const p = overrideProblems(config, svc.overrides);
    assertEquals(p.fatal, []);
  });
});
