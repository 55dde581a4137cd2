/**
 * Reading the authserv-id of an existing Authentication-Results header
 * value (RFC 8601 section 2.2), so that a receiver can delete the fields
 * that claim to come from it before adding its own (section 5).
 *
 * Reads `[CFWS] authserv-id [CFWS authres-version] [CFWS]` and wants ";"
 * or the end of the value after it; comments nest and may hold
 * quoted-pairs, the authserv-id may be a token or a quoted-string. Any
 * version number is accepted: a field claiming to be ours is forged
 * whatever its version. The rest of the field is not parsed.
 *
 * Pure: no I/O.
 *
 * @module
 */

const TOKEN_CHAR = /[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]/;

/**
 * The authserv-id of an Authentication-Results header value, with
 * quoting undone, or null when the start of the value does not parse.
 * Compare it with your own case-insensitively.
 */
export function authservIdOf(value: string): string | null {
  let i = skipCfws(value, 0);
  if (i < 0) return null;
  let id = "";
  if (value[i] === '"') {
    for (i++; i < value.length && value[i] !== '"'; i++) {
      if (value[i] === "\\") i++;
      if (i < value.length && value[i] !== "\r" && value[i] !== "\n") id += value[i];
    }
    if (i++ >= value.length) return null;
  } else {
    while (i < value.length && TOKEN_CHAR.test(value[i])) id += value[i++];
  }
  if (id === "") return null;
  const end = i;
  i = skipCfws(value, end);
  if (i > end && /[0-9]/.test(value[i] ?? "")) {
    while (/[0-9]/.test(value[i] ?? "")) i++;
    i = skipCfws(value, i);
  }
  return i === value.length || value[i] === ";" ? id : null;
}

/** The index after any whitespace and (nested) comments from i, or -1 for an unclosed comment. */
function skipCfws(s: string, i: number): number {
  while (i < s.length) {
    if (" \t\r\n".includes(s[i])) {
      i++;
    } else if (s[i] === "(") {
      let depth = 0;
      do {
        if (s[i] === "\\") i++;
        else if (s[i] === "(") depth++;
        else if (s[i] === ")") depth--;
        i++;
      } while (depth > 0 && i < s.length);
      if (depth > 0) return -1;
    } else {
      break;
    }
  }
  return i;
}
