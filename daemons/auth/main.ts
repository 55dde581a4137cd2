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
import { argon2id } from "hash-wasm";
import { timingSafeEqual } from "node:crypto";
import { saslEndpoint } from "../../lib/config/mod.ts";
import { runService } from "../../lib/service/mod.ts";
import type { Verifiers } from "../../lib/sasl/passwd_file.ts";
import { PasswdStore } from "./auth.ts";

const utf8 = new TextDecoder();

/** Largest argon2 cost accepted from the file (1 GiB, 64 passes): more would stall the daemon. */
const ARGON2_MAX_KIB = 1024 * 1024;
const ARGON2_MAX_PASSES = 64;

function unpaddedBase64(s: string): Uint8Array {
  const bin = atob(s + "=".repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/**
 * argon2id (PHC string `$argon2id$v=19$m=..,t=..,p=..$salt$hash`): the
 * hash is computed with hash-wasm and compared here in constant time.
 */
async function argon2idVerify(password: Uint8Array, hash: string): Promise<boolean> {
  const m =
    /^\$argon2id\$v=19\$m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,3})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/
      .exec(hash);
  if (!m) throw new Error("malformed or unsupported {ARGON2ID} hash (need v=19)");
  const [memorySize, iterations, parallelism] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (memorySize > ARGON2_MAX_KIB || iterations > ARGON2_MAX_PASSES || parallelism < 1) {
    throw new Error(`{ARGON2ID} cost m=${memorySize},t=${iterations},p=${parallelism} refused`);
  }
  const want = unpaddedBase64(m[5]);
  const got = await argon2id({
    password,
    salt: unpaddedBase64(m[4]),
    iterations,
    parallelism,
    memorySize,
    hashLength: want.length,
    outputType: "binary",
  });
  return got.length === want.length && timingSafeEqual(got, want);
}

/** bcrypt and argon2id from the pinned npm packages (bcryptjs compares in constant time). */
export const npmVerifiers: Verifiers = {
  bcrypt: (password, hash) => bcrypt.compare(utf8.decode(password), hash),
  argon2id: argon2idVerify,
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
