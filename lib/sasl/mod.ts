/**
 * SASL server side for smtpd's AUTH command: the one interface both
 * backends implement (dovecot.ts, Dovecot's auth protocol; passwd_client.ts,
 * the auth daemon over lib/ipc), the mechanism filter of
 * smtpd_sasl_security_options, and the PLAIN and LOGIN mechanisms for a
 * backend that only verifies a name and password.
 *
 * Challenges and responses cross this interface base64-encoded, as on the
 * wire, so a backend sees exactly what the client sent. Pure but for the
 * backends, which get their I/O injected.
 *
 * @module
 */

/** One step of an authentication exchange (Postfix's XSASL_AUTH_*). */
export type SaslStep =
  /** Send "334 challenge" and pass the client's next line to next(). */
  | { status: "more"; challenge: string }
  | { status: "ok"; username: string }
  /** Refused (535); `username` when the backend knows whom the client claimed to be. */
  | { status: "fail"; reason: string; username?: string }
  /** The backend could not answer (454). */
  | { status: "temp"; reason: string };

/** A mechanism as the backend offers it, with its properties (Dovecot's MECH flags). */
export interface SaslMechanism {
  name: string;
  /** anonymous, plaintext, dictionary, active, forward-secrecy, mutual-auth. */
  props: string[];
}

/** What the backend is told about the client for one exchange. */
export interface SaslClientInfo {
  /** Client address, "" if unknown. */
  clientAddr: string;
  /** Our address of the connection, "" if unknown. */
  serverAddr: string;
  /** TLS is active (Dovecot's "secured"). */
  secured: boolean;
  /** smtpd_sasl_service. */
  service: string;
}

/** One authentication exchange (an AUTH command). */
export interface SaslExchange {
  /** `initialResponse` as the client sent it: base64, "=" for empty, null for none. */
  first(initialResponse: string | null): Promise<SaslStep>;
  next(response: string): Promise<SaslStep>;
  /** Ends the exchange (after "*", a timeout or the end of the session). */
  abort(): void;
}

/** A SASL backend, shared by an smtpd process's sessions. */
export interface SaslBackend {
  /** The mechanisms the backend offers; throws when it cannot be reached. */
  mechanisms(): Promise<SaslMechanism[]>;
  /** Starts an exchange with a mechanism the backend offered. */
  start(mechanism: string, info: SaslClientInfo): SaslExchange;
  close(): void;
}

/** The mechanism property each security option refuses (Postfix's SEC_PROPS). */
const REFUSED_PROP: Record<string, string> = {
  noplaintext: "plaintext",
  noactive: "active",
  nodictionary: "dictionary",
  noanonymous: "anonymous",
};

/**
 * The mechanism names a client may use under `options` (the words of
 * smtpd_sasl_security_options or smtpd_sasl_tls_security_options):
 * refused properties out, required ones (mutual_auth, forward_secrecy) in.
 * (smtpd_sasl_mechanism_filter, mech_filter.ts, applies after this.)
 */
export function filterMechanisms(mechs: SaslMechanism[], options: Set<string>): string[] {
  return mechs.filter((m) => {
    const props = new Set(m.props.map((p) => p.toLowerCase()));
    for (const [opt, prop] of Object.entries(REFUSED_PROP)) {
      if (options.has(opt) && props.has(prop)) return false;
    }
    if (options.has("mutual_auth") && !props.has("mutual-auth")) return false;
    if (options.has("forward_secrecy") && !props.has("forward-secrecy")) return false;
    return true;
  }).map((m) => m.name.toUpperCase());
}

/** Base64 as Postfix's Dovecot client checks it: only the alphabet and "=". */
export function isBase64Text(s: string): boolean {
  return /^[A-Za-z0-9+/=]*$/.test(s);
}

/** Strict base64 decoding; null when `s` is not base64. */
export function decodeBase64(s: string): Uint8Array | null {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) return null;
  try {
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** Base64 of text (UTF-8). */
export function encodeBase64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Verifies a name and password: the whole job of a passwd-file backend. */
export type PasswordCheck = (
  username: string,
  password: Uint8Array,
  info: SaslClientInfo,
) => Promise<
  { status: "ok"; username: string } | { status: "fail" } | {
    status: "temp";
    reason: string;
  }
>;

const fatalDecoder = new TextDecoder("utf-8", { fatal: true });

/** A name as bytes from the client: UTF-8, no NUL or control characters, or null. */
function usernameOf(bytes: Uint8Array): string | null {
  let s: string;
  try {
    s = fatalDecoder.decode(bytes);
  } catch {
    return null;
  }
  // deno-lint-ignore no-control-regex
  if (s === "" || s.length > 255 || /[\x00-\x1f\x7f]/.test(s)) return null;
  return s;
}

/**
 * PLAIN (RFC 4616) and LOGIN over a {@link PasswordCheck}, with Dovecot's
 * failure texts, so both backends answer alike: a response that is not
 * base64 fails with "Invalid base64 data in initial/continued response";
 * a malformed or refused login fails with no reason (smtpd shows
 * "(reason unavailable)"), as Dovecot does for a wrong password.
 */
export function passwordExchange(
  mechanism: string,
  check: PasswordCheck,
  info: SaslClientInfo,
): SaslExchange {
  const mech = mechanism.toUpperCase();
  let username: string | null = null;
  let stage = 0;
  let done = false;
  const finish = async (user: string | null, password: Uint8Array): Promise<SaslStep> => {
    done = true;
    if (user === null) return { status: "fail", reason: "" };
    const r = await check(user, password, info);
    password.fill(0);
    if (r.status === "ok") return r;
    if (r.status === "temp") return r;
    return { status: "fail", reason: "", username: user };
  };
  const plain = (bytes: Uint8Array): Promise<SaslStep> => {
    const a = bytes.indexOf(0);
    const b = a < 0 ? -1 : bytes.indexOf(0, a + 1);
    if (a < 0 || b < 0 || bytes.indexOf(0, b + 1) >= 0) {
      return finish(null, new Uint8Array(0));
    }
    const authzid = bytes.subarray(0, a);
    const authcid = usernameOf(bytes.subarray(a + 1, b));
    const password = bytes.slice(b + 1);
    // An authorization identity other than the login is not offered (no proxy logins).
    if (authzid.length && (authcid === null || usernameOf(authzid) !== authcid)) {
      return finish(null, password);
    }
    return finish(authcid, password);
  };
  const step = (response: string, initial: boolean): Promise<SaslStep> => {
    if (done) return Promise.resolve({ status: "fail", reason: "Authentication already done" });
    const bytes = decodeBase64(response);
    if (bytes === null) {
      done = true;
      return Promise.resolve({
        status: "fail",
        reason: `Invalid base64 data in ${initial ? "initial" : "continued"} response`,
      });
    }
    if (mech === "PLAIN") return plain(bytes);
    // LOGIN: the user name, then the password.
    if (stage === 0) {
      stage = 1;
      username = usernameOf(bytes);
      return Promise.resolve({ status: "more", challenge: encodeBase64("Password:") });
    }
    return finish(username, bytes);
  };
  return {
    first(initialResponse) {
      // "=" is an empty initial response (RFC 4954).
      const initial = initialResponse === "=" ? "" : initialResponse;
      if (mech !== "PLAIN" && mech !== "LOGIN") {
        done = true;
        return Promise.resolve({ status: "fail", reason: "Invalid authentication mechanism" });
      }
      // An empty initial response ("=") is an empty PLAIN message (refused),
      // and for LOGIN as good as none, as in Dovecot.
      if (initial === null || (initial === "" && mech === "LOGIN")) {
        return Promise.resolve({
          status: "more",
          challenge: mech === "PLAIN" ? "" : encodeBase64("Username:"),
        });
      }
      return step(initial, true);
    },
    next: (response) => step(response, false),
    abort() {
      done = true;
    },
  };
}

/** PLAIN and LOGIN as a backend that verifies names and passwords offers them. */
export const PASSWORD_MECHANISMS: SaslMechanism[] = [
  { name: "PLAIN", props: ["plaintext"] },
  { name: "LOGIN", props: ["plaintext"] },
];

/** Postfix's printable(): control characters become "?" (names and texts from clients and backends in logs and replies). */
export function printable(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/[\x00-\x1f\x7f]/g, "?");
}
