/**
 * The LMTP client's parameters (issue 9): what is implemented, what is
 * harmless to ignore (a warning), and what stops the start because
 * ignoring it could deliver mail against the setting (TLS or SASL the
 * LMTP client does not have, mailbox_transport_maps).
 */
import { assert, assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { makeConfig, validateConfig } from "./mod.ts";

const BASE = "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8\n";

function check(line: string) {
  const c = makeConfig("/x", `${BASE}${line}\n`);
  const about = (l: string) => l.includes(line.split(" ")[0]);
  return { errors: validateConfig(c).filter(about), warnings: c.warnings.filter(about) };
}

Deno.test("lmtp parameters", async (t) => {
  await t.step("implemented: no error, no warning", () => {
    for (
      const line of [
        "lmtp_lhlo_name = lmtp.example",
        "lmtp_tcp_port = 2424",
        "lmtp_data_done_timeout = 60s",
        "lmtp_connection_cache_on_demand = no",
        "mailbox_transport = lmtp:unix:private/dovecot-lmtp",
        "lmtp_destination_recipient_limit = 5",
      ]
    ) assertEquals(check(line), { errors: [], warnings: [] }, line);
  });
  await t.step("harmless: a warning that names why", () => {
    for (const line of ["lmtp_pix_workarounds =", "lmtp_tls_security_level = may"]) {
      const r = check(line);
      assertEquals(r.errors, [], line);
      assert(r.warnings.length === 1, line);
      assertStringIncludes(r.warnings[0], "is not supported by Postwarden and is ignored");
    }
  });
  await t.step("what could deliver mail against the setting stops the start", () => {
    for (
      const line of [
        "lmtp_tls_security_level = encrypt",
        "lmtp_sasl_auth_enable = yes",
        "lmtp_assume_final = yes",
        "mailbox_transport_maps = hash:/etc/postfix/mbox",
      ]
    ) assertEquals(check(line).errors.length, 1, line);
  });
});
