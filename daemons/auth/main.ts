/**
 * NAME
 *   auth - password verification for smtpd's AUTH
 * SUMMARY
 *   Answers smtpd's "is this the password of this login" requests
 *   (lib/sasl/passwd_client.ts) from a Dovecot-style passwd-file, over
 *   `private/auth` and its per-client sockets. master runs it only when an
 *   smtpd uses smtpd_sasl_type = passwd-file (master.cf:
 *   `auth unix - - n - - auth`).
 * PARAMETERS
 *   smtpd_sasl_type (passwd-file), smtpd_sasl_path (the password file,
 *   absolute path).
 * SANDBOX
 *   Reads exactly the password file; no queue folder, no network. The only
 *   daemon besides proxymap that loads npm code: bcryptjs and hash-wasm
 *   (pinned in deno.json, frozen in deno.lock) for {BLF-CRYPT} and
 *   {ARGON2ID}. smtpd has no grant on the file (`postwarden audit` shows
 *   it).
 */
import bcrypt from "bcryptjs";
import { argon2Verify } from "hash-wasm";
import { saslEndpoint } from "../../lib/config/mod.ts";
import { runService } from "../../lib/service/mod.ts";
import type { Verifiers } from "../../lib/sasl/passwd_file.ts";
import { PasswdStore } from "./auth.ts";

const utf8 = new TextDecoder();

/** bcrypt and argon2id from the pinned npm packages. */
export const npmVerifiers: Verifiers = {
  bcrypt: (password, hash) => bcrypt.compare(utf8.decode(password), hash),
  argon2id: (password, hash) => argon2Verify({ password, hash }),
};

if (import.meta.main) {
  let store: PasswdStore;
  await runService({
    program: "auth",
    init: (ctx) => {
      const ep = saslEndpoint((n) => ctx.config.str(n));
      if (ep.type !== "passwd-file") {
        throw new Error("the auth daemon serves smtpd_sasl_type = passwd-file only");
      }
      store = new PasswdStore(ep.file, (m) => ctx.log.warn(m), npmVerifiers);
    },
    onIpc: (conn) => store.serve(conn),
  });
}
