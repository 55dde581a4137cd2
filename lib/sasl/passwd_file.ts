/**
 * Dovecot-style password files (passwd-file): one `user:{SCHEME}hash`
 * line per login, optionally followed by Dovecot's other fields
 * (`:uid:gid:gecos:home:shell:extra`), which are ignored. Blank lines and
 * `#` comments are skipped.
 *
 * Schemes verified: {SHA512-CRYPT} ($6$) and {SHA256-CRYPT} ($5$) here
 * (sha_crypt.ts); {BLF-CRYPT} ($2y$/$2b$/$2a$) and {ARGON2ID} through the
 * verifiers the caller injects (the auth daemon's npm packages), so this
 * module stays free of npm code. {PLAIN}, {CLEAR} and a hash without a
 * scheme are never accepted: the line is refused with a warning, as is
 * any other scheme. Comparisons are constant-time.
 *
 * Pure: parsing and verification; reading the file is the caller's.
 *
 * @module
 */
import { shaCryptVerify } from "./sha_crypt.ts";

/** Verifies a password against one hash of an injected scheme. */
export type HashVerifier = (password: Uint8Array, hash: string) => Promise<boolean>;

/** The verifiers for schemes that need npm code. */
export interface Verifiers {
  bcrypt: HashVerifier;
  argon2id: HashVerifier;
}

/** One usable line. */
export interface PasswdEntry {
  user: string;
  scheme: string;
  hash: string;
}

/** Schemes accepted, upper case. */
export const SCHEMES = ["SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT", "ARGON2ID"] as const;

/** A parsed file: the usable entries by user, and a warning per refused line. */
export interface PasswdFile {
  entries: Map<string, PasswdEntry>;
  warnings: string[];
}

/** Parses file text; `name` is the file's path for the warnings. */
export function parsePasswdFile(text: string, name: string): PasswdFile {
  const entries = new Map<string, PasswdEntry>();
  const warnings: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, "");
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const where = `${name}, line ${i + 1}`;
    const colon = line.indexOf(":");
    if (colon <= 0) {
      warnings.push(`${where}: malformed line (need user:{SCHEME}hash); ignored`);
      continue;
    }
    const user = line.slice(0, colon);
    const rest = line.slice(colon + 1);
    const end = rest.indexOf(":");
    const password = end < 0 ? rest : rest.slice(0, end);
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x20\x7f]/.test(user)) {
      warnings.push(`${where}: user name with white space or control characters; ignored`);
      continue;
    }
    const m = /^\{([A-Za-z0-9._-]+)\}(.*)$/.exec(password);
    if (!m) {
      warnings.push(
        `${where}: user ${user}: password without {SCHEME}; refused (use {SHA512-CRYPT}, ` +
          "{BLF-CRYPT} or {ARGON2ID} hashes, e.g. from doveadm pw)",
      );
      continue;
    }
    const scheme = m[1].toUpperCase();
    if (!(SCHEMES as readonly string[]).includes(scheme)) {
      const plain = ["PLAIN", "CLEAR", "CLEARTEXT", "PLAIN-TRUNC"].includes(scheme);
      warnings.push(
        `${where}: user ${user}: scheme {${scheme}} ${
          plain ? "stores the password itself" : "is not supported"
        }; refused (supported: ${SCHEMES.map((s) => `{${s}}`).join(", ")})`,
      );
      continue;
    }
    const hash = m[2];
    const shape = scheme === "SHA512-CRYPT"
      ? /^\$6\$/
      : scheme === "SHA256-CRYPT"
      ? /^\$5\$/
      : scheme === "BLF-CRYPT"
      ? /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/
      : /^\$argon2id\$/;
    if (!shape.test(hash)) {
      warnings.push(`${where}: user ${user}: malformed {${scheme}} hash; refused`);
      continue;
    }
    if (entries.has(user)) {
      warnings.push(`${where}: user ${user} is listed twice; the first line counts`);
      continue;
    }
    entries.set(user, { user, scheme, hash });
  }
  return { entries, warnings };
}

/** A hash with the right shape for {@link verifyPassword} when the user is unknown (same cost). */
const DUMMY: PasswdEntry = {
  user: "",
  scheme: "SHA512-CRYPT",
  hash: "$6$postwarden.dummy$" + "x".repeat(86),
};

/**
 * True when `password` is `user`'s. An unknown user costs a SHA512-CRYPT
 * verification too, so timing does not tell which names exist.
 */
export async function verifyPassword(
  file: PasswdFile,
  user: string,
  password: Uint8Array,
  v: Verifiers,
): Promise<boolean> {
  const e = file.entries.get(user);
  const entry = e ?? DUMMY;
  let ok: boolean;
  switch (entry.scheme) {
    case "SHA512-CRYPT":
    case "SHA256-CRYPT":
      try {
        ok = shaCryptVerify(password, entry.hash);
      } catch {
        ok = false;
      }
      break;
    case "BLF-CRYPT":
      ok = await v.bcrypt(password, entry.hash);
      break;
    case "ARGON2ID":
      ok = await v.argon2id(password, entry.hash);
      break;
    default:
      ok = false;
  }
  return ok && e !== undefined;
}
