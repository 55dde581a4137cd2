/**
 * Writing an Authentication-Results header value (RFC 8601 section 2.2):
 * the authserv-id, then one "method=result" clause per result with its
 * reason and properties, each clause on its own folded line.
 *
 * Whatever came from the message or the DNS is made safe for a header:
 * control characters (CR and LF among them, C1 controls, U+2028/2029)
 * become spaces, lone surrogates U+FFFD, and a value that is not an RFC
 * 2045 token (or, for a property, an address or domain) is written as a
 * quoted-string with '"' and "\" escaped, so a value can neither end the
 * field nor add a clause. 8-bit text is left as UTF-8 inside the quotes
 * (RFC 6532). Values are cut at 400 octets, so no line nears the 998
 * octet limit. Method, result and property names and the authserv-id
 * come from code and configuration, not from messages: an invalid name or
 * an empty authserv-id throws a RangeError.
 *
 * Pure: no I/O.
 *
 * @module
 */

/** One authentication result: a method (spf, dkim, dmarc, ...), its result and details. */
export interface AuthResult {
  /** The method, a keyword with an optional "/version" ("spf", "dkim", "dmarc", "auth"). */
  method: string;
  /** The result keyword ("pass", "fail", "none", "temperror", ...). */
  result: string;
  /** Why, in words; always written quoted. */
  reason?: string;
  /**
   * Properties as [ptype.property, value], in order: ["smtp.mailfrom",
   * "user@example.com"], ["header.d", "example.com"], ["header.b",
   * "abcd1234"], ["header.from", "example.com"], ["policy.dmarc", "reject"].
   */
  props?: [string, string][];
}

const KEYWORD = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?";
const METHOD = new RegExp(`^${KEYWORD}(?:/[0-9]+)?$`);
const RESULT = new RegExp(`^${KEYWORD}$`);
const PROPERTY = new RegExp(`^${KEYWORD}\\.${KEYWORD}$`);
/** RFC 2045 token: printable ASCII but tspecials. */
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;
/** The unquoted pvalue forms: [local-part] "@" domain-name with a dot-atom local part. */
const ADDRESS =
  /^(?:[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*)?@[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9])?)*$/;
/** Folding point: lines are kept to this many characters where the values allow. */
const LINE = 78;
/** Longest value written, in UTF-8 octets. */
const MAX_VALUE_OCTETS = 400;

/**
 * The header value (without "Authentication-Results:") folded for a
 * header: "authserv-id;\r\n\tspf=pass smtp.mailfrom=...;\r\n\tdkim=pass
 * header.d=...". With no results: "authserv-id; none".
 */
export function authenticationResults(authservId: string, results: AuthResult[]): string {
  if (authservId === "") throw new RangeError("empty authserv-id");
  const id = value(authservId, false);
  if (results.length === 0) return `${id}; none`;
  return `${id};\r\n\t` + results.map(resinfo).join(";\r\n\t");
}

/** One "method=result reason=... ptype.property=value" clause, folded where a line grows long. */
function resinfo(r: AuthResult): string {
  if (!METHOD.test(r.method)) throw new RangeError(`invalid method ${JSON.stringify(r.method)}`);
  if (!RESULT.test(r.result)) throw new RangeError(`invalid result ${JSON.stringify(r.result)}`);
  const words = [`${r.method}=${r.result}`];
  if (r.reason !== undefined) words.push(`reason=${quote(clean(r.reason))}`);
  for (const [name, v] of r.props ?? []) {
    if (!PROPERTY.test(name)) throw new RangeError(`invalid property ${JSON.stringify(name)}`);
    words.push(`${name}=${value(v, true)}`);
  }
  let out = words[0];
  let line = 8 + out.length; // a tab counts as 8
  for (const w of words.slice(1)) {
    const fold = line + 1 + w.length > LINE;
    out += (fold ? "\r\n\t" : " ") + w;
    line = (fold ? 8 : line + 1) + w.length;
  }
  return out;
}

/** A value as written: a token (or for a property an address) as is, else quoted. */
function value(v: string, property: boolean): string {
  const s = clean(v);
  return TOKEN.test(s) || (property && ADDRESS.test(s)) ? s : quote(s);
}

function quote(s: string): string {
  return `"${s.replace(/["\\]/g, "\\$&")}"`;
}

/** Controls and line separators to spaces, lone surrogates to U+FFFD, cut to MAX_VALUE_OCTETS. */
function clean(v: string): string {
  let out = "";
  let octets = 0;
  for (const ch of v.toWellFormed().replace(/[\p{Cc}\u2028\u2029]/gu, " ")) {
    const cp = ch.codePointAt(0)!;
    octets += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (octets > MAX_VALUE_OCTETS) break;
    out += ch;
  }
  return out;
}
