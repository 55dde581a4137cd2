/**
 * The SPF macro language (RFC 7208 section 7): parsing of macro-strings,
 * domain-specs and explanation strings, and their expansion.
 *
 * Parsing is strict, as section 7.1's grammar: a "%" not starting "%{",
 * "%%", "%_" or "%-" is an error, as is an unknown letter, a zero digit
 * transformer, or the letters c, r and t outside explanation text. A
 * domain-spec must end in a macro or in "." and a top label that is not
 * all digits ("a:abc.123" and "a:museum" are errors).
 *
 * Expansion splits a value on its delimiters ("." unless given), reverses
 * the parts for "r", keeps the right-most N for a digit, and joins with
 * "."; an uppercase letter then URL-encodes everything outside RFC 3986's
 * unreserved set. The "p" letter needs DNS, so expansion is async and the
 * caller supplies it (bounded lookups, "unknown" on failure).
 *
 * {@link targetName} turns an expanded domain-spec into the name to query:
 * trailing dot dropped, left labels removed past 253 characters (section
 * 7.3), and null when what remains is not a usable domain name.
 *
 * @module
 */
import type { ClientIp } from "./ip.ts";
import { clientText, dottedIp } from "./ip.ts";

/** A parse error in a macro-string; its message says what and where. */
export class MacroSyntaxError extends Error {
  override readonly name = "MacroSyntaxError";
}

/** One piece of a parsed macro-string. */
export type MacroPart =
  /** Text copied as is: literal characters and the %%, %_ and %- escapes. */
  | { kind: "text"; text: string; escape: boolean }
  /** A %{...} expansion. */
  | {
    kind: "macro";
    /** Lowercase letter. */
    letter: string;
    /** Uppercase in the record: URL-encode the result. */
    encode: boolean;
    /** Keep this many right-hand parts; 0 keeps all. */
    keep: number;
    reverse: boolean;
    /** Characters to split on; "" means ".". */
    delimiters: string;
  };

/** Where a macro-string appears: it decides which letters and characters are allowed. */
export type MacroContext =
  /** A domain-spec of a mechanism, redirect= or exp=. */
  | "domain"
  /** An unknown modifier's value (never expanded, only checked). */
  | "modifier"
  /** Explanation text fetched by exp=: spaces and the c, r, t letters allowed. */
  | "explain";

const LETTERS = "slodiphv";
const EXPLAIN_ONLY = "crt";

/** Parses a macro-string; throws {@link MacroSyntaxError}. */
export function parseMacroString(text: string, context: MacroContext): MacroPart[] {
  const parts: MacroPart[] = [];
  let literal = "";
  const flush = () => {
    if (literal) parts.push({ kind: "text", text: literal, escape: false });
    literal = "";
  };
  for (let i = 0; i < text.length;) {
    const ch = text[i];
    if (ch !== "%") {
      const code = ch.charCodeAt(0);
      const ok = (code >= 0x21 && code <= 0x7e) || (code === 0x20 && context === "explain");
      if (!ok) throw new MacroSyntaxError(`invalid character ${JSON.stringify(ch)} at ${i + 1}`);
      literal += ch;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === "%" || next === "_" || next === "-") {
      flush();
      parts.push({
        kind: "text",
        text: next === "%" ? "%" : next === "_" ? " " : "%20",
        escape: true,
      });
      i += 2;
      continue;
    }
    if (next !== "{") {
      throw new MacroSyntaxError(`"%" not followed by "{", "%", "_" or "-" at ${i + 1}`);
    }
    const end = text.indexOf("}", i + 2);
    if (end < 0) throw new MacroSyntaxError(`unterminated macro at ${i + 1}`);
    flush();
    parts.push(parseExpand(text.slice(i + 2, end), context));
    i = end + 1;
  }
  flush();
  return parts;
}

/** The inside of "%{...}": letter, digits, "r", delimiters. */
function parseExpand(body: string, context: MacroContext): MacroPart {
  const m = /^([A-Za-z])(\d*)([rR]?)([.\-+,/_=]*)$/.exec(body);
  if (!m) throw new MacroSyntaxError(`invalid macro "%{${body}}"`);
  const letter = m[1].toLowerCase();
  const allowed = LETTERS.includes(letter) ||
    (EXPLAIN_ONLY.includes(letter) && context === "explain");
  if (!allowed) {
    throw new MacroSyntaxError(
      EXPLAIN_ONLY.includes(letter)
        ? `macro letter "${m[1]}" is allowed only in explanation text`
        : `unknown macro letter "${m[1]}"`,
    );
  }
  let keep = 0;
  if (m[2] !== "") {
    const digits = m[2].replace(/^0+/, "");
    if (digits === "") throw new MacroSyntaxError(`zero transformer in "%{${body}}"`);
    // More parts than a name can have means all of them (and stays a safe integer).
    keep = digits.length > 3 ? 999 : Number(digits);
  }
  return {
    kind: "macro",
    letter,
    encode: m[1] !== letter,
    keep,
    reverse: m[3] !== "",
    delimiters: m[4],
  };
}

/** toplabel of RFC 7208 section 7.1: not all digits, dashes only inside. */
const TOPLABEL = /^(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9])$/;

/**
 * Parses a domain-spec: a macro-string that ends in a macro or in "."
 * toplabel with an optional final ".". Throws {@link MacroSyntaxError}.
 */
export function parseDomainSpec(text: string): MacroPart[] {
  if (text === "") throw new MacroSyntaxError("empty domain-spec");
  const parts = parseMacroString(text, "domain");
  const last = parts[parts.length - 1];
  if (last.kind === "macro" || last.escape) return parts;
  // The final literal run holds the "." toplabel ["."] ending.
  const body = text.endsWith(".") ? text.slice(0, -1) : text;
  const dot = body.lastIndexOf(".");
  if (dot < 0 || !TOPLABEL.test(body.slice(dot + 1))) {
    throw new MacroSyntaxError(`${JSON.stringify(text)} does not end in a valid top-level label`);
  }
  return parts;
}

/** What the macro letters expand to in one check_host() evaluation. */
export interface MacroValues {
  /** <sender>, with a local part ("postmaster" when there was none). */
  sender: string;
  /** Its local part. */
  local: string;
  /** Its domain. */
  senderDomain: string;
  /** <domain>: the domain whose record is being evaluated. */
  domain: string;
  ip: ClientIp;
  /** HELO/EHLO name. */
  helo: string;
  /** The checking host's name ("r"). */
  receiver: string;
  /** The current time ("t"). */
  now: () => Date;
  /** The validated name of the client ("p"), looked up on demand. */
  validatedName: () => Promise<string>;
}

/** Expands parsed parts with `values`. */
export async function expandMacro(parts: MacroPart[], values: MacroValues): Promise<string> {
  let out = "";
  for (const part of parts) {
    if (part.kind === "text") {
      out += part.text;
      continue;
    }
    const value = await letterValue(part.letter, values);
    const split = splitOn(value, part.delimiters || ".");
    if (part.reverse) split.reverse();
    const kept = part.keep > 0 && part.keep < split.length
      ? split.slice(split.length - part.keep)
      : split;
    const joined = kept.join(".");
    out += part.encode ? urlEncode(joined) : joined;
  }
  return out;
}

async function letterValue(letter: string, v: MacroValues): Promise<string> {
  switch (letter) {
    case "s":
      return v.sender;
    case "l":
      return v.local;
    case "o":
      return v.senderDomain;
    case "d":
      return v.domain;
    case "i":
      return dottedIp(v.ip);
    case "p":
      return await v.validatedName();
    case "v":
      return v.ip.v4 ? "in-addr" : "ip6";
    case "h":
      return v.helo;
    case "c":
      return clientText(v.ip);
    case "r":
      return v.receiver;
    case "t":
      return String(Math.floor(v.now().getTime() / 1000));
  }
  throw new MacroSyntaxError(`unknown macro letter "${letter}"`);
}

function splitOn(value: string, delimiters: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    if (delimiters.includes(value[i])) {
      parts.push(value.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(value.slice(start));
  return parts;
}

/** Percent-encodes all but RFC 3986 unreserved characters (ALPHA DIGIT - . _ ~), UTF-8 bytes. */
export function urlEncode(s: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(s)) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The longest name a query can carry, in presentation form without the final dot. */
const MAX_NAME = 253;

/**
 * The name to query for an expanded domain-spec: one trailing dot dropped,
 * then left labels removed while it is longer than 253 characters (RFC 7208
 * section 7.3). Null when it is not a usable name: fewer than two labels,
 * an empty label, a label over 63 octets, or a character outside printable
 * ASCII (section 4.3's "malformed"; the caller treats it as nonexistent).
 */
export function targetName(expanded: string): string | null {
  let name = expanded.endsWith(".") ? expanded.slice(0, -1) : expanded;
  while (name.length > MAX_NAME) {
    const dot = name.indexOf(".");
    if (dot < 0) return null;
    name = name.slice(dot + 1);
  }
  if (!/^[\x20-\x7e]+$/.test(name)) return null;
  const labels = name.split(".");
  if (labels.length < 2) return null;
  return labels.every((l) => l.length > 0 && l.length <= 63) ? name : null;
}
