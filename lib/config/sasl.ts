/**
 * Start-time checks of the SMTP AUTH settings (smtpd_sasl_*): what
 * daemons/smtpd/auth.ts cannot honour stops the start, so that AUTH is
 * never offered with a backend or policy other than the one configured.
 *
 * - smtpd_sasl_type: "dovecot" or "passwd-file"; Postfix's default
 *   "cyrus" (Cyrus SASL) is not supported.
 * - smtpd_sasl_path: for dovecot a socket path (relative to
 *   queue_directory, as Postfix) or inet:host:port; for passwd-file an
 *   absolute file path.
 * - smtpd_sasl_security_options / smtpd_sasl_tls_security_options: only
 *   the words Postfix's Dovecot client knows.
 * - smtpd_sasl_mechanism_filter: names, "!name" and static: only
 *   (lib/sasl/mech_filter.ts).
 *
 * Pure: reads the Config only. The checks run only with
 * smtpd_sasl_auth_enable = yes (in main.cf or a master.cf -o).
 *
 * @module
 */
import type { Config } from "./config.ts";
import { parseMechFilter } from "../sasl/mech_filter.ts";

/** The backends smtpd_sasl_type may name. */
export const SASL_TYPES = ["dovecot", "passwd-file"] as const;

/** smtpd_sasl_security_options words (Postfix's xsasl_dovecot_conf_sec_props). */
export const SASL_SECURITY_OPTIONS = [
  "noplaintext",
  "noactive",
  "nodictionary",
  "noanonymous",
  "mutual_auth",
  "forward_secrecy",
] as const;

/** Where the SASL backend is, as smtpd_sasl_type and smtpd_sasl_path say. */
export type SaslEndpoint =
  | { type: "dovecot"; unix: string }
  | { type: "dovecot"; host: string; port: number }
  | { type: "passwd-file"; file: string };

/** A SASL setting that cannot be honoured. */
export class SaslConfigError extends Error {
  override readonly name = "SaslConfigError";
}

/**
 * The backend endpoint of a configuration with AUTH enabled; `param` gives
 * expanded values (a Config's str, or master's lookup with a service's -o).
 * @throws {SaslConfigError} for an unsupported type or a bad path.
 */
export function saslEndpoint(param: (name: string) => string): SaslEndpoint {
  const type = param("smtpd_sasl_type").trim();
  const path = param("smtpd_sasl_path").trim();
  if (type === "cyrus") {
    throw new SaslConfigError(
      'smtpd_sasl_type = cyrus: Cyrus SASL is not supported by Postwarden; set "dovecot" ' +
        '(with smtpd_sasl_path naming Dovecot\'s auth socket) or "passwd-file" (with ' +
        "smtpd_sasl_path naming a Dovecot-style password file)",
    );
  }
  if (type === "dovecot") {
    if (path === "") throw new SaslConfigError("smtpd_sasl_path is empty (Dovecot auth socket)");
    const inet = /^inet:(?:\[([^\]]+)\]|([^:\s]+)):(\d+)$/.exec(path);
    if (inet) {
      const port = Number(inet[3]);
      if (port < 1 || port > 65535) {
        throw new SaslConfigError(`smtpd_sasl_path = ${path}: bad port`);
      }
      return { type, host: inet[1] ?? inet[2], port };
    }
    if (/^[a-z]+:/i.test(path) && !path.startsWith("unix:")) {
      throw new SaslConfigError(
        `smtpd_sasl_path = ${path}: need a socket path or inet:host:port`,
      );
    }
    const p = path.replace(/^unix:/, "");
    const abs = p.startsWith("/") ? p : `${param("queue_directory").replace(/\/+$/, "")}/${p}`;
    return { type, unix: abs };
  }
  if (type === "passwd-file") {
    if (!path.startsWith("/")) {
      throw new SaslConfigError(
        `smtpd_sasl_path = ${path}: with smtpd_sasl_type = passwd-file, name the password ` +
          "file by its absolute path",
      );
    }
    return { type, file: path };
  }
  throw new SaslConfigError(
    `smtpd_sasl_type = ${type}: unsupported SASL server implementation (supported: ` +
      `${SASL_TYPES.join(", ")})`,
  );
}

/** The security option words of one parameter; unknown words throw. */
export function saslSecurityOptions(c: Config, name: string): Set<string> {
  const out = new Set<string>();
  for (const w of c.list(name)) {
    const word = w.toLowerCase();
    if (!(SASL_SECURITY_OPTIONS as readonly string[]).includes(word)) {
      throw new SaslConfigError(`${name}: unknown SASL security option "${w}"`);
    }
    out.add(word);
  }
  return out;
}

/** What stops the start in the AUTH settings (empty when AUTH is off). */
export function saslProblems(c: Config): { names: string[]; message: string }[] {
  const out: { names: string[]; message: string }[] = [];
  let enabled = false;
  try {
    enabled = c.bool("smtpd_sasl_auth_enable");
  } catch {
    return out; // the typed accessor reports it (validate.ts)
  }
  if (!enabled) return out;
  const attempt = (names: string[], f: () => unknown) => {
    try {
      f();
    } catch (e) {
      if (e instanceof SaslConfigError) out.push({ names, message: e.message });
    }
  };
  attempt(["smtpd_sasl_type", "smtpd_sasl_path"], () => saslEndpoint((n) => c.str(n)));
  attempt(
    ["smtpd_sasl_security_options"],
    () => saslSecurityOptions(c, "smtpd_sasl_security_options"),
  );
  // By default the TLS options are the same words: reported once, above.
  if (c.isSet("smtpd_sasl_tls_security_options")) {
    attempt(
      ["smtpd_sasl_tls_security_options"],
      () => saslSecurityOptions(c, "smtpd_sasl_tls_security_options"),
    );
  }
  attempt(["smtpd_sasl_mechanism_filter"], () => {
    const f = parseMechFilter(c.list("smtpd_sasl_mechanism_filter"));
    if ("error" in f) throw new SaslConfigError(f.error);
  });
  return out;
}
