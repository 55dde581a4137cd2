/**
 * SPF records (RFC 7208 sections 4.5, 4.6, 5, 6): choosing the one record
 * among a name's TXT records, and parsing it whole before anything is
 * evaluated, so that a syntax error anywhere is a permerror even when an
 * earlier mechanism would have matched.
 *
 * Parsed: the eight mechanisms with their qualifiers, arguments and CIDR
 * lengths (dual for a and mx), domain-specs with their macros, redirect=
 * and exp= (each at most once), unknown modifiers (checked, then ignored).
 * Mechanism and modifier names are case-insensitive, terms are separated
 * by one or more spaces only, and the record must be printable ASCII.
 *
 * Pure: no I/O.
 *
 * @module
 */
import { parseIp4Network, parseIp6Network } from "./ip.ts";
import { type MacroPart, MacroSyntaxError, parseDomainSpec, parseMacroString } from "./macro.ts";

/** A syntax error in an SPF record (a permerror); the message says which term and why. */
export class SpfSyntaxError extends Error {
  override readonly name = "SpfSyntaxError";
}

/** A domain-spec: its text as written and its parsed macro-string. */
export interface DomainSpec {
  text: string;
  parts: MacroPart[];
}

/** A mechanism and its arguments. */
export type Mechanism =
  | { kind: "all" }
  | { kind: "include"; domain: DomainSpec }
  | { kind: "a" | "mx"; domain?: DomainSpec; cidr4: number; cidr6: number }
  | { kind: "ptr"; domain?: DomainSpec }
  | { kind: "ip4" | "ip6"; network: Uint8Array; prefix: number }
  | { kind: "exists"; domain: DomainSpec };

/** "+" pass, "-" fail, "~" softfail, "?" neutral. */
export type Qualifier = "+" | "-" | "~" | "?";

/** A qualified mechanism and the term as written. */
export interface Directive {
  qualifier: Qualifier;
  mechanism: Mechanism;
  term: string;
}

/** A parsed record. */
export interface SpfRecord {
  directives: Directive[];
  redirect?: DomainSpec;
  exp?: DomainSpec;
}

/** What a name's TXT records hold: its SPF record, none, or more than one (a permerror). */
export type Selection =
  | { kind: "record"; text: string }
  | { kind: "none" }
  | { kind: "multiple"; count: number };

/**
 * Picks the SPF record among TXT records (each given as its strings, which
 * are joined without spaces): those starting "v=spf1" (any case) followed
 * by a space or the end.
 */
export function selectRecord(txt: readonly (readonly string[])[]): Selection {
  const found = txt.map((strings) => strings.join("")).filter((t) => /^v=spf1(?: |$)/i.test(t));
  if (found.length === 0) return { kind: "none" };
  if (found.length > 1) return { kind: "multiple", count: found.length };
  return { kind: "record", text: found[0] };
}

/** Parses a selected record (starting "v=spf1"); throws {@link SpfSyntaxError}. */
export function parseRecord(text: string): SpfRecord {
  const bad = /[^\x20-\x7e]/.exec(text);
  if (bad) {
    throw new SpfSyntaxError(
      `character ${JSON.stringify(bad[0])} at ${bad.index + 1}: records are printable ASCII`,
    );
  }
  if (!/^v=spf1(?: |$)/i.test(text)) throw new SpfSyntaxError("record does not start with v=spf1");
  const record: SpfRecord = { directives: [] };
  for (const term of text.slice(6).split(" ")) {
    if (term === "") continue;
    try {
      parseTerm(term, record);
    } catch (e) {
      if (e instanceof MacroSyntaxError) {
        throw new SpfSyntaxError(`${JSON.stringify(term)}: ${e.message}`);
      }
      throw e;
    }
  }
  return record;
}

function parseTerm(term: string, record: SpfRecord): void {
  const modifier = /^([A-Za-z][A-Za-z0-9_.-]*)=(.*)$/.exec(term);
  if (modifier) {
    const name = modifier[1].toLowerCase();
    if (name === "redirect" || name === "exp") {
      if (record[name]) throw new SpfSyntaxError(`${name}= appears more than once`);
      record[name] = { text: modifier[2], parts: parseDomainSpec(modifier[2]) };
    } else {
      parseMacroString(modifier[2], "modifier");
    }
    return;
  }
  const m = /^([+\-~?]?)([A-Za-z][A-Za-z0-9]*)(.*)$/.exec(term);
  if (!m) throw new SpfSyntaxError(`${JSON.stringify(term)} is neither a mechanism nor a modifier`);
  const qualifier = (m[1] || "+") as Qualifier;
  const name = m[2].toLowerCase();
  const rest = m[3];
  if (rest !== "" && rest[0] !== ":" && rest[0] !== "/") {
    throw new SpfSyntaxError(`unknown mechanism ${JSON.stringify(term)}`);
  }
  record.directives.push({ qualifier, mechanism: parseMechanism(name, rest, term), term });
}

function parseMechanism(name: string, rest: string, term: string): Mechanism {
  const noArgument = () => {
    if (rest !== "") throw new SpfSyntaxError(`${JSON.stringify(term)}: ${name} takes no argument`);
  };
  const requiredDomain = (): DomainSpec => {
    if (!rest.startsWith(":")) {
      throw new SpfSyntaxError(`${JSON.stringify(term)}: ${name} needs ":domain"`);
    }
    return domainSpec(rest.slice(1));
  };
  switch (name) {
    case "all":
      noArgument();
      return { kind: "all" };
    case "include":
    case "exists":
      return { kind: name, domain: requiredDomain() };
    case "ptr":
      return { kind: "ptr", domain: rest === "" ? undefined : requiredDomain() };
    case "a":
    case "mx": {
      // The domain-spec may itself hold "/" and ":", so the CIDR lengths are taken from the end.
      const c = /^(.*?)(?:\/(\d+))?(?:\/\/(\d+))?$/.exec(rest)!;
      if (c[1] !== "" && !c[1].startsWith(":")) {
        throw new SpfSyntaxError(`${JSON.stringify(term)}: bad domain or CIDR length`);
      }
      return {
        kind: name,
        domain: c[1] === "" ? undefined : domainSpec(c[1].slice(1)),
        cidr4: c[2] === undefined ? 32 : cidrLength(c[2], 32, term),
        cidr6: c[3] === undefined ? 128 : cidrLength(c[3], 128, term),
      };
    }
    case "ip4":
    case "ip6": {
      if (!rest.startsWith(":")) {
        throw new SpfSyntaxError(`${JSON.stringify(term)}: ${name} needs ":network"`);
      }
      const arg = rest.slice(1);
      const slash = arg.indexOf("/");
      const text = slash < 0 ? arg : arg.slice(0, slash);
      const max = name === "ip4" ? 32 : 128;
      const network = name === "ip4" ? parseIp4Network(text) : parseIp6Network(text);
      if (!network) throw new SpfSyntaxError(`${JSON.stringify(term)}: bad ${name} network`);
      const prefix = slash < 0 ? max : cidrLength(arg.slice(slash + 1), max, term);
      return { kind: name, network, prefix };
    }
  }
  throw new SpfSyntaxError(`unknown mechanism ${JSON.stringify(term)}`);
}

function domainSpec(text: string): DomainSpec {
  return { text, parts: parseDomainSpec(text) };
}

/** A CIDR length: decimal without leading zeros, at most `max`. */
function cidrLength(text: string, max: number, term: string): number {
  if (!/^(?:0|[1-9]\d{0,2})$/.test(text) || Number(text) > max) {
    throw new SpfSyntaxError(`${JSON.stringify(term)}: bad CIDR length "/${text}"`);
  }
  return Number(text);
}
