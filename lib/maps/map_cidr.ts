/**
 * `cidr:/path` tables (cidr_table(5), Postfix 3.7's dict_cidr.c and
 * cidr_match.c): rules `network/prefix result` and `address result`, IPv4
 * and IPv6, optionally in brackets (`[::1]/128`, `[10.0.0.0/8]`), `!pattern
 * result` (negation, white space after `!` allowed), `if pattern` ...
 * `endif` blocks (nested, `if !pattern` too); the first matching rule wins.
 *
 * Addresses are read as glibc's inet_pton() reads them: IPv4 is exactly
 * four decimal octets without leading zeros ("01.2.3.4" is not an
 * address), IPv6 is eight groups with at most one "::" standing for at
 * least one zero group, optionally ending in a dotted quad. A key that is
 * not an address (a name, "[1.2.3.4]", text with spaces) matches nothing,
 * and a key matches only rules of its own family: "::ffff:1.2.3.4" is IPv6
 * and matches "::ffff:0:0/96", never "1.2.3.0/24". A rule whose network has
 * host bits set, a bad mask or a bad address is skipped with Postfix's
 * warning ("cidr map /path, line N: ...: skipping this rule").
 *
 * @module
 */
import type { Dict, DictBackend, DictOpener } from "./dict.ts";
import { fileGrants, fromBytes, logicalLines, readTableText, toBytes } from "./_pattern_file.ts";

/** An IPv4 address as inet_pton(AF_INET) reads it: 4 bytes, or null. */
function pton4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

/** An IPv6 address as inet_pton(AF_INET6) reads it: 16 bytes, or null. */
function pton6(text: string): number[] | null {
  let head = text;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(":");
  if (text.indexOf(".", lastColon) > lastColon) {
    const v4 = pton4(text.slice(lastColon + 1));
    if (!v4) return null;
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    head = text.slice(0, lastColon + 1);
    if (!head.endsWith("::")) head = head.slice(0, -1);
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = groups(halves[0]);
  const right = halves.length === 2 ? groups(halves[1]) : [];
  if (!left || !right) return null;
  const have = left.length + right.length + tail.length;
  let words: number[];
  if (halves.length === 2) {
    if (have > 7) return null;
    words = [...left, ...new Array(8 - have).fill(0), ...right, ...tail];
  } else {
    if (have !== 8) return null;
    words = [...left, ...tail];
  }
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

/** A key or pattern address: family by the presence of ":", as Postfix. */
function pton(text: string): { v6: boolean; bytes: number[] } | null {
  const v6 = text.includes(":");
  const bytes = v6 ? pton6(text) : pton4(text);
  return bytes ? { v6, bytes } : null;
}

function ntop(v6: boolean, bytes: number[]): string {
  if (!v6) return bytes.join(".");
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i] << 8) | bytes[i + 1]);
  // The longest run of two or more zero words becomes "::", as inet_ntop.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  const v4tail = best === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff));
  if (v4tail) {
    return `::${bestLen === 5 ? "ffff:" : ""}${bytes.slice(12).join(".")}`;
  }
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

interface CidrPattern {
  v6: boolean;
  net: number[];
  mask: number[];
  match: boolean;
}

type CidrRule =
  | { op: "match"; pattern: CidrPattern; value: string }
  | { op: "if"; pattern: CidrPattern; lineno: number; endif: number }
  | { op: "endif" };

class CidrSyntax extends Error {
  override readonly name = "CidrSyntax";
}

/** Parses `!pattern` as cidr_match_parse(); throws CidrSyntax with Postfix's reason. */
function parsePattern(text: string): CidrPattern {
  let p = 0;
  let match = true;
  while (text[p] === "!" || text[p] === " " || text[p] === "\t") {
    if (text[p] === "!") match = !match;
    p++;
  }
  let pattern = text.slice(p);
  if (pattern === "") throw new CidrSyntax("no address pattern");
  let maskText: string | undefined;
  if (pattern.startsWith("[")) {
    const close = pattern.indexOf("]");
    if (close < 0) throw new CidrSyntax(`missing ']' character after "${pattern}"`);
    const after = pattern.slice(close + 1);
    const inner = pattern.slice(1, close);
    if (after !== "" && !after.startsWith("/")) {
      throw new CidrSyntax(`garbage after "${inner === "" ? "[]" : `[${inner}]`}"`);
    }
    const slash = inner.indexOf("/");
    if (after.startsWith("/")) {
      pattern = inner;
      maskText = after.slice(1);
    } else if (slash >= 0) {
      pattern = inner.slice(0, slash);
      maskText = inner.slice(slash + 1);
    } else pattern = inner;
  } else {
    const slash = pattern.indexOf("/");
    if (slash >= 0) {
      maskText = pattern.slice(slash + 1);
      pattern = pattern.slice(0, slash);
    }
  }
  const v6 = pattern.includes(":");
  const bits = v6 ? 128 : 32;
  if (maskText === undefined) {
    const a = pton(pattern);
    if (!a) throw new CidrSyntax(`bad address pattern: "${pattern}"`);
    return { v6, net: a.bytes, mask: new Array(bits / 8).fill(255), match };
  }
  const shown = `${pattern}/${maskText}`;
  if (!/^[0-9]+$/.test(maskText)) throw new CidrSyntax(`bad mask value in "${shown}"`);
  const len = Number(maskText);
  if (len > bits) throw new CidrSyntax(`bad mask length in "${shown}"`);
  const a = pton(pattern);
  if (!a) throw new CidrSyntax(`bad network value in "${shown}"`);
  const mask = Array.from({ length: bits / 8 }, (_, i) => {
    const b = Math.min(8, Math.max(0, len - 8 * i));
    return (0xff << (8 - b)) & 0xff;
  });
  if (a.bytes.some((b, i) => (b & ~mask[i]) !== 0)) {
    const fixed = a.bytes.map((b, i) => b & mask[i]);
    throw new CidrSyntax(
      `non-null host address bits in "${shown}", perhaps you should use "${
        ntop(v6, fixed)
      }/${len}" instead`,
    );
  }
  return { v6, net: a.bytes, mask, match };
}

function matches(p: CidrPattern, key: { v6: boolean; bytes: number[] }): boolean {
  // A rule of the other family neither matches nor, negated, matches.
  if (p.v6 !== key.v6) return false;
  for (let i = 0; i < p.net.length; i++) {
    if ((key.bytes[i] & p.mask[i]) !== p.net[i]) return !p.match;
  }
  return p.match;
}

/** A parsed cidr: table. */
export class CidrTable {
  private constructor(private readonly rules: CidrRule[]) {}

  /** Parses table text (a byte string) as dict_cidr_open(), warning about and skipping bad rules. */
  static parse(mapName: string, text: string, warn: (m: string) => void): CidrTable {
    const rules: CidrRule[] = [];
    const stack: number[] = [];
    for (const { lineno, text: line } of logicalLines(text)) {
      const where = `cidr map ${mapName}, line ${lineno}`;
      try {
        const lower = line.slice(0, 5).toLowerCase();
        const alnum = (c: string | undefined) => c !== undefined && /[A-Za-z0-9]/.test(c);
        if (lower.startsWith("if") && !alnum(line[2])) {
          const pattern = parsePattern(line.slice(2).trim());
          stack.push(rules.length);
          rules.push({ op: "if", pattern, lineno, endif: -1 });
        } else if (lower === "endif" && !alnum(line[5])) {
          if (line.slice(5).trim() !== "") throw new CidrSyntax("garbage after ENDIF");
          if (stack.length === 0) throw new CidrSyntax("ENDIF without IF");
          const ifRule = rules[stack.pop()!];
          if (ifRule.op === "if") ifRule.endif = rules.length;
          rules.push({ op: "endif" });
        } else {
          let p = 0;
          while (line[p] === "!" || line[p] === " " || line[p] === "\t") p++;
          while (p < line.length && line[p] !== " " && line[p] !== "\t") p++;
          const pattern = parsePattern(line.slice(0, p));
          const value = line.slice(p).trim();
          if (value === "") throw new CidrSyntax("no lookup result");
          rules.push({ op: "match", pattern, value: fromBytes(value) });
        }
      } catch (e) {
        if (!(e instanceof CidrSyntax)) throw e;
        warn(`${where}: ${fromBytes(e.message)}: skipping this rule`);
      }
    }
    while (stack.length > 0) {
      const r = rules[stack.pop()!];
      if (r.op === "if") warn(`cidr map ${mapName}, line ${r.lineno}: IF has no matching ENDIF`);
    }
    return new CidrTable(rules);
  }

  /** The first matching rule's value for an address key, or undefined. */
  lookup(key: string): string | undefined {
    const addr = pton(key);
    if (!addr) return undefined;
    const rules = this.rules;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i];
      if (r.op === "match") {
        if (matches(r.pattern, addr)) return r.value;
      } else if (r.op === "if") {
        if (matches(r.pattern, addr)) continue;
        if (r.endif < 0) return undefined;
        i = r.endif;
      }
    }
    return undefined;
  }
}

/** `cidr:/path` or `cidr:{ {rule}, ... }`. */
export const openCidr: DictOpener = async (name, opts) => {
  const table = CidrTable.parse(name, await readTableText("cidr", name), opts.warn);
  const dict: Dict = {
    type: "cidr",
    name,
    pattern: true,
    lookup: (key) => Promise.resolve(table.lookup(toBytes(key))),
    close: () => Promise.resolve(),
  };
  return dict;
};

/** The cidr: backend for registry.ts. */
export const cidrBackend: DictBackend = { open: openCidr, grants: fileGrants };
