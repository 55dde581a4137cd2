/** The SMTP client's SASL choices and responses (lib/sasl/client.ts). */
import { assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { makeConfig } from "../config/mod.ts";
import {
  chooseMechanism,
  compatibleMechanisms,
  cramMd5Response,
  decodeChallenge,
  optionsFor,
  plainResponse,
  saslClientProblems,
  saslClientSettings,
  splitCredentials,
} from "./client.ts";

const cfg = (text: string) => makeConfig("/nonexistent", text, { hostname: "host.example" });

Deno.test("smtp client SASL choices", async (t) => {
  await t.step("security options rule out mechanisms as Cyrus does", () => {
    assertEquals(chooseMechanism(["PLAIN", "LOGIN"], ["noplaintext", "noanonymous"]), null);
    assertEquals(chooseMechanism(["PLAIN", "LOGIN", "CRAM-MD5"], ["noplaintext"]), "CRAM-MD5");
    assertEquals(chooseMechanism(["login", "plain"], ["noanonymous"]), "PLAIN");
    assertEquals(chooseMechanism(["LOGIN"], []), "LOGIN");
    assertEquals(chooseMechanism(["CRAM-MD5"], ["nodictionary"]), null);
    assertEquals(chooseMechanism(["DIGEST-MD5", "GSSAPI"], []), null);
  });

  await t.step("options per connection, and the filter", () => {
    const s = saslClientSettings(cfg(
      "smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = texthash:/x\n" +
        "smtp_sasl_tls_security_options = noanonymous\nsmtp_sasl_mechanism_filter = !plain, static:all\n",
    ));
    assertEquals(optionsFor(s, null), ["noplaintext", "noanonymous"]);
    assertEquals(optionsFor(s, { matched: false }), ["noanonymous"]);
    assertEquals(optionsFor(s, { matched: true }), ["noanonymous"]);
    assertEquals(compatibleMechanisms(s, ["PLAIN", "LOGIN"]), ["LOGIN"]);
  });

  await t.step("what stops the start", () => {
    const msgs = (text: string) => saslClientProblems(cfg(text)).map((p) => p.message);
    assertEquals(msgs("smtp_sasl_password_maps = texthash:/x\n"), []);
    const on = "smtp_sasl_auth_enable = yes\n";
    assertMatch(msgs(on)[0], /specify a password table via the `smtp_sasl_password_maps'/);
    const ok = on + "smtp_sasl_password_maps = texthash:/x\n";
    assertEquals(msgs(ok), []);
    assertMatch(
      msgs(ok + "smtp_sasl_type = dovecot\n")[0],
      /smtp_sasl_type = dovecot: unsupported/,
    );
    assertMatch(msgs(ok + "smtp_sasl_security_options = noplain\n")[0], /unknown SASL security/);
    assertMatch(
      msgs(ok + "smtp_sasl_mechanism_filter = /etc/m\n")[0],
      /^smtp_sasl_mechanism_filter:/,
    );
  });

  await t.step("responses", async () => {
    assertEquals(splitCredentials("user:pa:ss"), { user: "user", password: "pa:ss" });
    assertEquals(atob(plainResponse("u", "p")), "\0u\0p");
    // RFC 2195's example.
    const challenge = decodeChallenge(btoa("<1896.697170952@postoffice.reston.mci.net>"))!;
    assertEquals(
      await cramMd5Response("tim", "tanstaaftanstaaf", challenge),
      "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw",
    );
    assertEquals(decodeChallenge("not base64!"), null);
  });
});
