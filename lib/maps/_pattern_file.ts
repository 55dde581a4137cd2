/**
 * What Postfix's regexp:, pcre: and cidr: tables share: reading the table
 * text (a file, or Postfix 3.7's inline `{ {rule}, {rule} }` form) into
 * logical lines as readllines(3) does, the `$1`/`${1}`/`$(1)`/`$$`
 * replacement syntax as mac_parse(3) and the two dict_*_prescan()
 * callbacks check it, the `!/pattern/flags` and `if`/`endif` rule syntax,
 * and the first-match rule walk with if/endif blocks.
 *
 * Matching is on bytes, as Postfix's: its regexp (glibc regcomp in the C
 * locale) and pcre (PCRE2 without PCRE2_UTF, even with smtputf8_enable=yes)
 * tables see a key's UTF-8 bytes, so `.` matches one byte and case folding
 * is ASCII only. Keys and table text are therefore carried as "byte
 * strings": ASCII stays itself and each byte 0x80-0xff becomes U+2880-U+28FF
 * (Braille patterns, which have no case mapping and are neither word nor
 * space characters, so JavaScript's `i` flag and `\w`/`\s` treat them as
 * PCRE and glibc treat high bytes). The translators map `\xHH` escapes the
 * same way.
 *
 * Lookups stay fast on large tables without changing which rule answers:
 * each pattern knows a string every match must contain (e.g. "@example.com"
 * in `^user([0-9]+)@example\.com$`), and a trigram index over those strings
 * lets a lookup skip the rules whose string the key cannot contain; rules
 * without one, negated rules and if/endif are always tried, in order.
 *
 * No I/O except {@link readTableText}, which reads the one file named.
 *
 * @module
 */
import { type Dict, DictError, splitMapList } from "./dict.ts";

/** First code point that stands for byte 0x80 in a byte string. */
const HIGH_BASE = 0x2800;

/** The byte string of a byte (see the module comment). */
export function byteChar(b: number): string {
  return String.fromCharCode(b < 0x80 ? b : HIGH_BASE + b);
}

const ASCII = /^[^\u0080-\uffff]*$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A JavaScript string as the byte string of its UTF-8 encoding. */
export function toBytes(text: string): string {
  if (ASCII.test(text)) return text;
  return bytesToByteString(encoder.encode(text));
}

/** Raw bytes as a byte string. */
export function bytesToByteString(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    const chunk = bytes.subarray(i, i + 4096);
    const codes = Array.from(chunk, (b) => (b < 0x80 ? b : HIGH_BASE + b));
    out += String.fromCharCode(...codes);
  }
  return out;
}

const HIGH = /[\u2880-\u28ff]/;

/** A byte string back to text (invalid UTF-8 becomes U+FFFD). */
export function fromBytes(bytes: string): string {
  if (!HIGH.test(bytes)) return bytes;
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes.charCodeAt(i);
    out[i] = c >= 0x2880 && c <= 0x28ff ? c - HIGH_BASE : c & 0xff;
  }
  return decoder.decode(out);
}

/** One logical line: its text and the number of its first physical line. */
export interface LogicalLine {
  lineno: number;
  text: string;
}

const isSpace = (c: string | undefined) =>
  c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\v" || c === "\f";

/**
 * Splits table text into logical lines as Postfix's readllines(): a line
 * that starts with white space continues the previous logical line (its
 * white space kept, the newline dropped); lines whose first non-blank is
 * `#` and blank lines are skipped; trailing white space is removed.
 */
export function logicalLines(text: string): LogicalLine[] {
  const out: LogicalLine[] = [];
  const physical = text.split("\n");
  if (physical.length > 0 && physical[physical.length - 1] === "") physical.pop();
  let cur: LogicalLine | undefined;
  const flush = () => {
    if (cur) {
      const t = cur.text.replace(/[ \t\n\r\v\f]+$/, "");
      if (t !== "") out.push({ lineno: cur.lineno, text: t });
    }
    cur = undefined;
  };
  physical.forEach((raw, i) => {
    const line = raw;
    const first = line.search(/[^ \t\r\v\f]/);
    if (first < 0 || line[first] === "#") return;
    if (first > 0 && cur) {
      cur.text += line;
      return;
    }
    flush();
    cur = { lineno: i + 1, text: line };
  });
  flush();
  return out;
}

/**
 * The table text for a name: Postfix 3.7's inline form `{ {rule-1}, {rule-2} }`
 * (each rule one line), or the file's bytes as a byte string.
 *
 * @throws {DictError} (kind "config") when the file cannot be read.
 */
export async function readTableText(type: string, name: string): Promise<string> {
  const t = name.trim();
  if (t.startsWith("{")) return toBytes(inlineRules(type, t).join("\n") + "\n");
  try {
    return bytesToByteString(await Deno.readFile(name));
  } catch (e) {
    throw new DictError(`open ${name}: ${(e as Error).message}`, "config");
  }
}

/**
 * The rules of an inline `{ {rule}, {rule} }` table name, as Postfix 3.7
 * splits them (items on white space and commas, each in braces).
 */
function inlineRules(type: string, t: string): string[] {
  if (!t.endsWith("}")) throw new DictError(`${type} map: missing '}' in "${t}"`, "config");
  let items: string[];
  try {
    items = splitMapList(t.slice(1, -1));
  } catch {
    throw new DictError(`${type} map: missing '}' in "${t}"`, "config");
  }
  return items.map((item) => {
    if (!item.startsWith("{") || !item.endsWith("}")) {
      throw new DictError(`${type} map: no '{' at start of text in "${item}"`, "config");
    }
    return item.slice(1, -1).trim();
  });
}

/** A replacement text split into literal parts and `$number` references. */
export interface Replacement {
  /** Literal strings and group numbers, in order ($$ already made $). */
  parts: (string | number)[];
  /** Largest group number referenced; 0 when the text is a constant. */
  maxSub: number;
}

/**
 * Parses a replacement text as Postfix's mac_parse() with the
 * dict_regexp/dict_pcre prescan: `$$` is `$`, `$name`, `${name}` and
 * `$(name)` are references that must be positive numbers. Warnings are
 * Postfix's words; undefined means the rule is skipped.
 */
export function parseReplacement(
  text: string,
  where: string,
  warn: (m: string) => void,
  outOfRange: string,
): Replacement | undefined {
  const parts: (string | number)[] = [];
  let lit = "";
  let error = false;
  let maxSub = 0;
  const varname = (name: string) => {
    if (!/^[0-9]*$/.test(name)) {
      warn(`${where}: non-numeric replacement index "${fromBytes(name)}"`);
      error = true;
      return;
    }
    const n = parseInt(name, 10);
    if (!(n >= 1)) {
      warn(`${where}: ${outOfRange} replacement index "${name}"`);
      error = true;
      return;
    }
    if (n > maxSub) maxSub = n;
    parts.push(n);
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c !== "$") {
      lit += c;
      i++;
      continue;
    }
    if (text[i + 1] === "$") {
      lit += "$";
      i += 2;
      continue;
    }
    if (lit !== "") parts.push(lit);
    lit = "";
    i++;
    let name: string;
    const open = text[i];
    if (open === "{" || open === "(") {
      const close = open === "{" ? "}" : ")";
      let level = 1;
      let j = i + 1;
      for (; level > 0; j++) {
        if (j >= text.length) {
          warn(`truncated macro reference: "${fromBytes(text)}"`);
          return undefined;
        }
        if (text[j] === open) level++;
        if (text[j] === close) level--;
      }
      name = text.slice(i + 1, j - 1);
      i = j;
    } else {
      let j = i;
      while (j < text.length && /[A-Za-z0-9_]/.test(text[j])) j++;
      name = text.slice(i, j);
      i = j;
    }
    if (name === "") {
      warn(`empty macro name: "${fromBytes(text)}"`);
      return undefined;
    }
    varname(name);
  }
  if (lit !== "" && !error) parts.push(lit);
  if (error) return undefined;
  if (maxSub === 0) return { parts: [parts.join("")], maxSub };
  return { parts, maxSub };
}

/** A compiled pattern as the rule walk uses it. */
export interface CompiledPattern {
  /** Number of capture groups ("re_nsub"). */
  readonly groups: number;
  /**
   * A string every match contains ("" when none is known): a key without
   * it cannot match, which spares running the pattern.
   */
  readonly required: string;
  /** `required` is in lower case and is looked for in the lower-cased key. */
  readonly folded: boolean;
  /**
   * Groups inside a repeated group, or repeating a group that can match
   * empty: JavaScript clears them on each repetition (and refuses an empty
   * repetition) where glibc and PCRE keep the last value set, so `$n` of
   * such a group can differ from Postfix's for some keys.
   */
  readonly repeated: ReadonlySet<number>;
  /** Whether the pattern matches somewhere in key (a byte string). */
  test(key: string): boolean;
  /** The groups of the match Postfix would report (index 1..groups), or null. */
  exec(key: string): ArrayLike<string | undefined> | null;
}

/** One pattern as written: `!/text/flags`. */
export interface PatternSpec {
  /** The pattern between the delimiters (byte string). */
  source: string;
  /** The flag letters after the closing delimiter. */
  flags: string;
  /** False for a negated (`!`) pattern. */
  match: boolean;
}

/** What differs between the regexp: and pcre: file syntax. */
export interface Dialect {
  /** "regexp" or "pcre", for messages. */
  type: string;
  /** Word used when the closing delimiter is missing ("skipping"/"ignoring"). */
  noDelimiterVerb: string;
  /** Flags stop at "!" too (regexp, for /pat1/!/pat2/). */
  bangEndsFlags: boolean;
  /** Allows a second `!/pattern/` (regexp only). */
  secondPattern: boolean;
  /** Wording of the "n < 1" replacement index warning. */
  outOfRange: string;
  /**
   * Checks the flag letters; returns false after warning to skip the rule.
   */
  checkFlags(flags: string, where: string, warn: (m: string) => void): boolean;
  /**
   * Compiles one pattern; undefined after a warning (the rule is skipped).
   * `substitutions` is false when no group is needed (REG_NOSUB).
   */
  compile(
    pat: PatternSpec,
    where: string,
    warn: (m: string) => void,
    substitutions: boolean,
  ): CompiledPattern | undefined;
}

type Rule =
  | {
    op: "match";
    lineno: number;
    first: CompiledPattern;
    firstMatch: boolean;
    second?: CompiledPattern;
    secondMatch: boolean;
    repl: Replacement;
  }
  | { op: "if"; lineno: number; pattern: CompiledPattern; match: boolean; endif: number }
  | { op: "endif"; lineno: number };

const isAlnum = (c: string | undefined) => c !== undefined && /[A-Za-z0-9]/.test(c);

/** Reads `!/pattern/flags` at text[pos]; returns the spec and the position after the flags. */
function getPattern(
  d: Dialect,
  text: string,
  pos: number,
  where: string,
  warn: (m: string) => void,
): { pat: PatternSpec; end: number } | undefined {
  let p = pos;
  let match = true;
  for (;;) {
    if (text[p] === "!") match = !match;
    else if (!isSpace(text[p])) break;
    p++;
  }
  if (p >= text.length) {
    warn(`${where}: no regexp: skipping this rule`);
    return undefined;
  }
  const delim = text[p++];
  const start = p;
  while (p < text.length) {
    if (text[p] === "\\") {
      if (p + 1 < text.length) p++;
      else break;
    } else if (text[p] === delim) break;
    p++;
  }
  if (p >= text.length || text[p] !== delim) {
    warn(
      `${where}: no closing regexp delimiter "${fromBytes(delim)}": ${d.noDelimiterVerb} this rule`,
    );
    return undefined;
  }
  const source = text.slice(start, p);
  p++;
  const flagStart = p;
  while (p < text.length && !isSpace(text[p]) && !(d.bangEndsFlags && text[p] === "!")) p++;
  const flags = text.slice(flagStart, p);
  if (!d.checkFlags(flags, where, warn)) return undefined;
  return { pat: { source, flags, match }, end: p };
}

/** A parsed regexp: or pcre: table: its rules in order. */
export class PatternTable {
  /**
   * The trigram index: for each positive match rule whose pattern has a
   * required string, one of its trigrams (the rarest among the rules) maps
   * to the rule. A lookup marks the rules whose trigram occurs in the key
   * and skips the other indexed rules without running anything; rules not
   * indexed (negated, if/endif, no required string) are always tried, so
   * the first match is the one Postfix finds.
   */
  private readonly exact = new Map<string, number[]>();
  private readonly folded = new Map<string, number[]>();
  /** Rules not in the index (negated, if, no usable required string), ascending. */
  private readonly always: number[] = [];
  private readonly stamp: Uint32Array;
  private generation = 0;

  private constructor(private readonly rules: Rule[], index: boolean) {
    this.stamp = new Uint32Array(rules.length);
    const trigrams = (p: CompiledPattern) => {
      const out = new Set<string>();
      for (let i = 0; i + 3 <= p.required.length; i++) out.add(p.required.slice(i, i + 3));
      return out;
    };
    const count = new Map<string, number>();
    const candidates: (Set<string> | undefined)[] = rules.map((r) => {
      if (!index || r.op !== "match" || !r.firstMatch || r.first.required.length < 3) {
        return undefined;
      }
      const set = trigrams(r.first);
      const tag = r.first.folded ? "f" : "e";
      for (const t of set) count.set(tag + t, (count.get(tag + t) ?? 0) + 1);
      return set;
    });
    candidates.forEach((set, i) => {
      const rule = rules[i];
      if (set === undefined || rule.op !== "match") return;
      const tag = rule.first.folded ? "f" : "e";
      let best = "";
      for (const t of set) {
        if (best === "" || count.get(tag + t)! < count.get(tag + best)!) best = t;
      }
      const index = rule.first.folded ? this.folded : this.exact;
      const list = index.get(best);
      if (list) list.push(i);
      else index.set(best, [i]);
    });
    candidates.forEach((set, i) => {
      if (set === undefined && rules[i].op !== "endif") this.always.push(i);
    });
  }

  /**
   * Parses and compiles a table's text (a byte string) as Postfix's
   * dict_regexp_open()/dict_pcre_open(): bad rules are skipped with
   * Postfix's warning.
   */
  static parse(
    d: Dialect,
    mapName: string,
    text: string,
    warn: (m: string) => void,
    opts: { index?: boolean } = {},
  ): PatternTable {
    const rules: Rule[] = [];
    const stack: number[] = [];
    for (const { lineno, text: line } of logicalLines(text)) {
      const where = `${d.type} map ${mapName}, line ${lineno}`;
      const rule = parseRule(d, line, lineno, where, warn, stack.length);
      if (!rule) continue;
      if (rule.op === "if") stack.push(rules.length);
      else if (rule.op === "endif") {
        const ifRule = rules[stack.pop()!];
        if (ifRule.op === "if") ifRule.endif = rules.length;
      }
      rules.push(rule);
    }
    while (stack.length > 0) {
      warn(
        `${d.type} map ${mapName}, line ${rules[stack.pop()!].lineno}: IF has no matching ENDIF`,
      );
    }
    return new PatternTable(rules, opts.index ?? true);
  }

  /** Number of rules (match, if and endif) kept. */
  get size(): number {
    return this.rules.length;
  }

  /** The indexed rules whose trigram occurs in key (or lower), ascending, each once. */
  private candidates(key: string, lower: string): number[] {
    let gen = ++this.generation;
    if (gen === 0xffffffff) {
      this.stamp.fill(0);
      gen = this.generation = 1;
    }
    const out: number[] = [];
    const visit = (index: Map<string, number[]>, k: string) => {
      if (index.size === 0) return;
      for (let i = 0; i + 3 <= k.length; i++) {
        const list = index.get(k.slice(i, i + 3));
        if (list === undefined) continue;
        for (const r of list) {
          if (this.stamp[r] !== gen) {
            this.stamp[r] = gen;
            out.push(r);
          }
        }
      }
    };
    visit(this.exact, key);
    visit(this.folded, lower);
    return out.length > 1 ? out.sort((a, b) => a - b) : out;
  }

  /** The first matching rule's result for key, both byte strings, or undefined. */
  lookup(key: string): string | undefined {
    const rules = this.rules;
    const lower = key.toLowerCase();
    // Whether p matches key, sparing the pattern when key lacks p.required.
    const test = (p: CompiledPattern): boolean => {
      if (p.required !== "" && !(p.folded ? lower : key).includes(p.required)) return false;
      return p.test(key);
    };
    // Rules in order: those always tried merged with the indexed ones
    // whose trigram the key has.
    const always = this.always;
    const marked = this.candidates(key, lower);
    let a = 0;
    let b = 0;
    let floor = 0; // rules before this were skipped by a false "if"
    for (;;) {
      let i: number;
      if (a < always.length && (b >= marked.length || always[a] < marked[b])) i = always[a++];
      else if (b < marked.length) i = marked[b++];
      else return undefined;
      if (i < floor) continue;
      const rule = rules[i];
      if (rule.op === "match") {
        let groups: ArrayLike<string | undefined> | null = null;
        if (rule.repl.maxSub > 0) {
          const p = rule.first;
          if (p.required !== "" && !(p.folded ? lower : key).includes(p.required)) continue;
          groups = p.exec(key);
          if (groups === null) continue;
        } else if (test(rule.first) !== rule.firstMatch) continue;
        if (rule.second && test(rule.second) !== rule.secondMatch) continue;
        if (groups === null) return rule.repl.parts[0] as string;
        let out = "";
        for (const part of rule.repl.parts) {
          if (typeof part === "string") out += part;
          else out += groups[part] ?? "";
        }
        return out;
      }
      if (rule.op === "if") {
        if (test(rule.pattern) === rule.match) continue;
        if (rule.endif < 0) return undefined;
        floor = rule.endif + 1;
      }
    }
  }
}

function parseRule(
  d: Dialect,
  line: string,
  lineno: number,
  where: string,
  warn: (m: string) => void,
  nesting: number,
): Rule | undefined {
  if (!isAlnum(line[0])) {
    const first = getPattern(d, line, 0, where, warn);
    if (!first) return undefined;
    let p = first.end;
    let second: { pat: PatternSpec; end: number } | undefined;
    if (d.secondPattern && line[p] === "!") {
      second = getPattern(d, line, p, where, warn);
      if (!second) return undefined;
      p = second.end;
    }
    while (isSpace(line[p])) p++;
    const replText = line.slice(p);
    if (replText === "") warn(`${where}: no replacement text: using empty string`);
    const repl = parseReplacement(replText, where, warn, d.outOfRange);
    if (!repl) {
      warn(`${where}: bad replacement syntax: skipping this rule`);
      return undefined;
    }
    if (repl.maxSub > 0 && !first.pat.match) {
      warn(`${where}: $number found in negative match replacement text: skipping this rule`);
      return undefined;
    }
    const firstExp = d.compile(first.pat, where, warn, repl.maxSub > 0);
    if (!firstExp) return undefined;
    if (repl.maxSub > firstExp.groups) {
      warn(`${where}: out of range replacement index "${repl.maxSub}": skipping this rule`);
      return undefined;
    }
    const inexact = repl.parts.filter((x) => typeof x === "number" && firstExp.repeated.has(x));
    if (inexact.length > 0) {
      warn(
        `${where}: $${inexact[0]} of a group inside a repetition is not supported exactly ` +
          `(its value can differ from Postfix's when the last repetition does not set it)`,
      );
    }
    let secondExp: CompiledPattern | undefined;
    if (second) {
      secondExp = d.compile(second.pat, where, warn, false);
      if (!secondExp) return undefined;
    }
    return {
      op: "match",
      lineno,
      first: firstExp,
      firstMatch: first.pat.match,
      second: secondExp,
      secondMatch: second?.pat.match ?? true,
      repl,
    };
  }
  const word = line.slice(0, 5).toLowerCase();
  if (word.startsWith("if") && !isAlnum(line[2])) {
    let p = 2;
    while (isSpace(line[p])) p++;
    const got = getPattern(d, line, p, where, warn);
    if (!got) return undefined;
    p = got.end;
    while (isSpace(line[p])) p++;
    if (p < line.length) {
      warn(`${where}: ignoring extra text after IF statement: "${fromBytes(line.slice(p))}"`);
      warn(`${where}: do not prepend whitespace to statements between IF and ENDIF`);
    }
    const pattern = d.compile(got.pat, where, warn, false);
    if (!pattern) return undefined;
    return { op: "if", lineno, pattern, match: got.pat.match, endif: -1 };
  }
  if (word === "endif" && !isAlnum(line[5])) {
    if (nesting === 0) {
      warn(`${where}: ignoring ENDIF without matching IF`);
      return undefined;
    }
    if (line.slice(5).trim() !== "") warn(`${where}: ignoring extra text after ENDIF`);
    return { op: "endif", lineno };
  }
  warn(`${where}: ignoring unrecognized request`);
  return undefined;
}

/** Table lookups on a parsed pattern table (shared by regexp: and pcre:). */
export function patternDict(type: string, name: string, table: PatternTable): Dict {
  return {
    type,
    name,
    pattern: true,
    lookup: (key) => {
      const v = table.lookup(toBytes(key));
      return Promise.resolve(v === undefined ? undefined : fromBytes(v));
    },
    close: () => Promise.resolve(),
  };
}

/** Grants for a table read from one file (none for the inline `{...}` form). */
export function fileGrants(name: string): Promise<{ read: string[] }> {
  return Promise.resolve({ read: name.trim().startsWith("{") ? [] : [name] });
}
