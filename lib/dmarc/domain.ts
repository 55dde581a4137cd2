/**
 * The domains DMARC works with: the author domain taken from the
 * RFC5322.From field (RFC 7489 section 6.6.1) and the organizational
 * domain (section 3.2), found with the Public Suffix List
 * (public_suffix.ts: the daemons load no npm code, so the list is a
 * generated module of ours).
 *
 * The organizational domain counts the list's private section too (as
 * mailauth does): alice.github.io and bob.github.io have different owners,
 * so they do not align with each other, and neither inherits a policy
 * published at _dmarc.github.io.
 *
 * The From field is read with lib/address's parseHeaderAddresses, which
 * skips what it cannot parse, reads groups as their members and joins
 * stray words into the domain: fine for finding recipients, not for
 * DMARC, where "a@x.example, junk", "g: a@x.example;" or "a@bank.example
 * evil" must not quietly become one author, or an author no reader sees.
 * So the field's outline (the value with comments, quoted strings and
 * domain literals blanked) is checked first for list commas, group
 * colons and second addresses, and the domain found must stand in it as
 * written.
 *
 * Pure: no I/O.
 *
 * @module
 */
import { domainToASCII } from "node:url";
import { registrableDomain } from "./public_suffix.ts";
import { normalizeDomain, parseHeaderAddresses, splitAddress } from "../address/mod.ts";

/**
 * A domain as DMARC compares and queries it: lower case, without a
 * trailing dot, internationalized labels as A-labels ("" when they are not
 * valid IDNA).
 */
export function canonicalDomain(domain: string): string {
  const d = normalizeDomain(domain.trim());
  return /[^ -~]/.test(d) ? domainToASCII(d) : d;
}

/** Whether a (canonical) domain can be looked up: LDH or "_" labels of 1 to 63 octets, 253 in all. */
export function isDnsName(domain: string): boolean {
  return domain.length <= 253 && domain.split(".").every((l) => /^[a-z0-9_-]{1,63}$/.test(l));
}

/**
 * The organizational domain of RFC 7489 section 3.2: the public suffix
 * (ICANN or private section of the Public Suffix List, or the last label
 * when no rule matches) plus one label. A public suffix itself, or
 * anything that is not a domain name, is its own organizational domain.
 * The result is canonical (lower case, no trailing dot).
 */
export function organizationalDomain(domain: string): string {
  const d = canonicalDomain(domain);
  // An address literal ("192.0.2.1": no top-level domain is all digits) is its own too.
  return (isDnsName(d) && !/(^|\.)\d+$/.test(d) && registrableDomain(d)) || d;
}

/**
 * RFC 7489 6.6.1: the RFC5322.From author domain, canonical, from the
 * values of the message's From header fields. An error (saying why in
 * words) when there is no From field, several From fields, several
 * addresses or a group, an address without a domain or with a domain
 * literal, or anything that does not parse as one mailbox.
 */
export function authorDomain(fromHeaderValues: string[]): { domain: string } | { error: string } {
  if (fromHeaderValues.length !== 1) {
    return {
      error: fromHeaderValues.length ? "several From header fields" : "no From header field",
    };
  }
  const value = fromHeaderValues[0];
  const shape = outline(value);
  if (shape === null) return { error: "unparsable From header field" };
  const bare = shape.replace(/<[^<>]*>/g, "<>");
  if (bare.includes(":")) return { error: "From header field is a group, not a mailbox" };
  const members = bare.split(",").filter((m) => m.trim() !== "").length;
  if (members === 0) return { error: "From header field has no address" };
  if (members > 1) return { error: "From header field has several addresses" };
  // "a@x <b@y>" and "<a@x> <b@y>": which address a reader sees is anyone's guess.
  if (bare.includes("<") && (bare.includes("@") || bare.indexOf("<") !== bare.lastIndexOf("<"))) {
    return { error: "unparsable From header field" };
  }
  const addresses = parseHeaderAddresses(value);
  if (addresses.length !== 1) return { error: "unparsable From address" };
  const { domain } = splitAddress(addresses[0]);
  if (domain === "") return { error: "From address has no domain" };
  if (domain.startsWith("[")) return { error: "From address has a domain literal" };
  // The parser joins the words of "a@bank.example foo" into "bank.examplefoo", a domain no
  // reader sees: the domain must stand as written, ended by space, a comment, ">", "," or the end.
  if (!standsAlone(shape.toLowerCase(), "@" + domain.toLowerCase())) {
    return { error: "unparsable From address" };
  }
  const canonical = canonicalDomain(domain);
  return isDnsName(canonical)
    ? { domain: canonical }
    : { error: "From address domain is not a valid domain name" };
}

/**
 * The value with comments blanked and quoted strings and domain literals
 * reduced to a placeholder, so that what is left is structure; null when
 * a comment, quoted string, domain literal or angle bracket is not closed.
 */
function outline(value: string): string | null {
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    const close = c === "(" ? ")" : c === '"' ? '"' : c === "[" ? "]" : "";
    if (close === "") {
      out += c;
      continue;
    }
    let depth = 1;
    for (i++; i < value.length && depth > 0; i++) {
      const d = value[i];
      if (d === "\\") i++;
      else if (d === close) depth--;
      else if (c === "(" && d === "(") depth++;
    }
    if (depth > 0) return null;
    i--;
    out += c === "(" ? " " : "x";
  }
  return /<[^>]*$/.test(out) ? null : out;
}

/** Whether `needle` occurs in `text` followed by whitespace, ">", "," or the end. */
function standsAlone(text: string, needle: string): boolean {
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    const next = text[at + needle.length];
    if (next === undefined || next === ">" || next === "," || /\s/.test(next)) return true;
  }
  return false;
}
