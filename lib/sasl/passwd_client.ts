/**
 * The passwd-file SASL backend as smtpd sees it: PLAIN and LOGIN run in
 * smtpd (mod.ts passwordExchange) and only the name and password go to the
 * auth daemon (daemons/auth) over lib/ipc, which answers ok, fail or temp.
 * smtpd never reads the password file and never sees a hash.
 *
 * Request: `{op: "verify", user, password (base64), rip}`. Reply:
 * `{status: "ok", user}`, `{status: "fail"}` or `{status: "temp", text}`.
 * A broken connection or malformed reply is a temporary failure.
 *
 * @module
 */
import { IpcError, ipcRequest } from "../ipc/mod.ts";
import {
  PASSWORD_MECHANISMS,
  type PasswordCheck,
  passwordExchange,
  type SaslBackend,
  type SaslMechanism,
} from "./mod.ts";

/** A verify request to the auth daemon. */
export interface VerifyRequest {
  op: "verify";
  user: string;
  /** The password bytes, base64. */
  password: string;
  /** Client address, for the daemon's log. */
  rip: string;
}

/** The auth daemon's answer. */
export type VerifyReply =
  | { status: "ok"; user: string }
  | { status: "fail" }
  | { status: "temp"; text: string };

/** How long the auth daemon may take (argon2 and bcrypt cost time). */
const VERIFY_TIMEOUT_MS = 30_000;

function base64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** How long a verify waits for the auth daemon's socket to appear. */
const CONNECT_RETRY_MS = 5000;

/** The check that asks the auth daemon at `socket`. */
export function authDaemonCheck(socket: string): PasswordCheck {
  return async (user, password, info) => {
    let r: VerifyReply;
    // The auth daemon may be (re)starting (master starts every daemon at once):
    // it gets CONNECT_RETRY_MS to come up, as proxymap and cleanup get.
    try {
      r = await ipcRequest<VerifyReply>(
        socket,
        {
          op: "verify",
          user,
          password: base64(password),
          rip: info.clientAddr,
        } satisfies VerifyRequest,
        { timeoutMs: VERIFY_TIMEOUT_MS, retryMs: CONNECT_RETRY_MS },
      );
    } catch (e) {
      if (!(e instanceof IpcError)) throw e;
      return { status: "temp", reason: "Connection lost to authentication server" };
    }
    if (r?.status === "ok" && typeof r.user === "string") return { status: "ok", username: r.user };
    if (r?.status === "fail") return { status: "fail" };
    return { status: "temp", reason: "Authentication backend error" };
  };
}

/** A {@link SaslBackend} offering PLAIN and LOGIN, verified by `check`. */
export class PasswordBackend implements SaslBackend {
  constructor(readonly check: PasswordCheck) {}
  mechanisms(): Promise<SaslMechanism[]> {
    return Promise.resolve(PASSWORD_MECHANISMS);
  }
  start(mechanism: string, info: Parameters<SaslBackend["start"]>[1]) {
    return passwordExchange(mechanism, this.check, info);
  }
  close(): void {}
}
