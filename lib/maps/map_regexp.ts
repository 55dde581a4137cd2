/**
 * `regexp:/path` tables (regexp_table(5), Postfix's dict_regexp.c): rules
 * `/pattern/flags result`, `!/pattern/ result`, `/pat1/!/pat2/ result`,
 * `if /pattern/` ... `endif` (nested), flags i (case, on by default), m
 * (REG_NEWLINE) and x (toggles extended syntax: off means POSIX basic
 * syntax), `$1`/`${1}`/`$(1)` substitution and `$$`. Bad rules get Postfix's
 * warning ("regexp map /path, line N: ...") and are skipped, as Postfix
 * skips them.
 *
 * Patterns are POSIX regular expressions as glibc's regcomp() reads them in
 * the C locale; each is translated once, at open, to a JavaScript RegExp
 * over byte strings (see _pattern_file.ts):
 * - bracket expressions: `]` first is literal, backslash is literal inside
 *   brackets (`[a\]` is "a or backslash"), `[:alpha:]` and the other C
 *   locale classes, `[=c=]` and single-character `[.c.]`;
 * - glibc's escapes `\w \W \s \S \b \B \< \> \` \'` and back references;
 *   `\` before any other punctuation is that character; a lone `)` is
 *   literal, as glibc has it;
 * - `{n}`, `{n,}`, `{n,m}`, `{,m}`; a quantifier on a quantifier applies to
 *   the whole (`a+?` is `(a+)?`, never a lazy `+`);
 * - POSIX picks the longest of the leftmost matches, JavaScript the first
 *   alternative that matches: where a rule substitutes groups and its
 *   pattern has an alternation, the match is redone to end as far right as
 *   possible, so `/x(a|ab)/` gives `$1` = "ab" as Postfix does. Within
 *   that longest match, groups are still assigned by JavaScript's
 *   first-alternative order; POSIX's "each group as long as possible" rule
 *   can differ in rare nested cases (not emulated).
 *
 * - `\` before another letter is that letter, except that with the
 *   default REG_ICASE glibc folds the key to upper case but not the escaped
 *   letter, so `\d`, `\n` or `\t` then match nothing (and `\D` matches
 *   "d" or "D"): translated so.
 *
 * Not supported (a clear warning names the file and line, and the rule is
 * skipped): multi-character collating elements (`[.space.]`).
 *
 * @module
 */
import type { DictBackend, DictOpener } from "./dict.ts";
import {
  type CompiledPattern,
  type Dialect,
  fileGrants,
  fromBytes,
  patternDict,
  type PatternSpec,
  PatternTable,
  readTableText,
} from "./_pattern_file.ts";

/** A pattern glibc would reject, with regerror()'s text. */
class RegexError extends Error {
  override readonly name = "RegexError";
}

const E = {
  paren: "Unmatched ( or \\(",
  rparen: "Unmatched ) or \\)",
  brack: "Unmatched [, [^, [:, [., or [=",
  brace: "Unmatched \\{",
  badbr: "Invalid content of \\{\\}",
  badrpt: "Invalid preceding regular expression",
  ctype: "Invalid character class name",
  range: "Invalid range end",
  subreg: "Invalid back reference",
  escape: "Trailing backslash",
  collate: "Invalid collation character",
};

/** C locale character classes as JavaScript class bodies. */
const CLASSES: Record<string, string> = {
  alpha: "A-Za-z",
  digit: "0-9",
  alnum: "0-9A-Za-z",
  upper: "A-Z",
  lower: "a-z",
  space: " \\t\\n\\r\\f\\v",
  blank: " \\t",
  punct: "!-\\/:-@\\[-`{-~",
  print: " -~",
  graph: "!-~",
  cntrl: "\\x00-\\x1f\\x7f",
  xdigit: "0-9A-Fa-f",
};

const RE_DUP_MAX = 0x7fff;

/** A JavaScript class member for one character. */
function classChar(c: string): string {
  return /[\\\]\[\^\-]/.test(c) ? "\\" + c : c;
}

/** A JavaScript literal for one character outside classes. */
function literal(c: string): string {
  if (/[\\^$.|?*+()[\]{}\/]/.test(c)) return "\\" + c;
  if (c === "\n") return "\\n";
  if (c === "\r") return "\\r";
  return c;
}

interface Translation {
  source: string;
  groups: number;
  alternation: boolean;
  /** A string every match contains ("" when none is known). */
  required: string;
  /** Groups whose value JavaScript may report differently (see repeatedGroupWarning). */
  repeated: Set<number>;
}

/** min and max of a translated quantifier. */
function bounds(q: string): [number, number] {
  if (q === "*") return [0, Infinity];
  if (q === "+") return [1, Infinity];
  if (q === "?") return [0, 1];
  const m = /^\{(\d+)(,(\d*))?\}$/.exec(q)!;
  const lo = Number(m[1]);
  return [lo, m[2] === undefined ? lo : m[3] === "" ? Infinity : Number(m[3])];
}

/** The longest run of consecutive plain characters. */
export function longestRun(lits: readonly (string | null)[]): string {
  let best = "";
  let cur = "";
  for (const c of lits) {
    if (c === null) cur = "";
    else if ((cur += c).length > best.length) best = cur;
  }
  return best;
}

/**
 * Translates a POSIX pattern (ERE when `extended`, BRE otherwise) to a
 * JavaScript pattern body over byte strings.
 *
 * @throws {RegexError} with glibc's message, or "... is not supported".
 */
export function translatePosix(
  src: string,
  extended: boolean,
  newline: boolean,
  icase = true,
): Translation {
  let pos = 0;
  let groups = 0;
  let alternation = false;
  const closed = new Set<number>();

  const bracket = (): string => {
    // pos is just after "["
    let negate = false;
    if (src[pos] === "^") {
      negate = true;
      pos++;
    }
    const items: string[] = [];
    let first = true;
    for (;;) {
      if (pos >= src.length) throw new RegexError(E.brack);
      let c = src[pos];
      if (c === "]" && !first) {
        pos++;
        break;
      }
      first = false;
      if (c === "[" && (src[pos + 1] === ":" || src[pos + 1] === "=" || src[pos + 1] === ".")) {
        const kind = src[pos + 1];
        const end = src.indexOf(kind + "]", pos + 2);
        if (end < 0) throw new RegexError(E.brack);
        const name = src.slice(pos + 2, end);
        pos = end + 2;
        // A class cannot start a range: "[[:alpha:]-z]" is glibc's error.
        const startsRange = src[pos] === "-" && src[pos + 1] !== "]" && pos + 1 < src.length;
        if (kind === ":") {
          const body = Object.hasOwn(CLASSES, name) ? CLASSES[name] : undefined;
          if (body === undefined) throw new RegexError(E.ctype);
          if (startsRange) throw new RegexError(E.range);
          items.push(body);
          continue;
        }
        if (kind === "=" && startsRange) throw new RegexError(E.range);
        if (name.length !== 1) throw new RegexError(E.collate);
        c = name;
      } else pos++;
      // c is one character; a range follows when "-" and not "-]".
      if (src[pos] === "-" && src[pos + 1] !== "]" && pos + 1 < src.length) {
        pos++;
        let hi = src[pos];
        if (hi === "[" && (src[pos + 1] === "=" || src[pos + 1] === ":")) {
          // A class cannot end a range either.
          if (src.indexOf(src[pos + 1] + "]", pos + 2) < 0) throw new RegexError(E.brack);
          throw new RegexError(E.range);
        }
        if (hi === "[" && src[pos + 1] === ".") {
          const end = src.indexOf(".]", pos + 2);
          if (end < 0) throw new RegexError(E.brack);
          hi = src.slice(pos + 2, end);
          if (hi.length !== 1) throw new RegexError(E.collate);
          pos = end + 2;
        } else pos++;
        // Under REG_ICASE glibc folds range ends (and the key) to upper
        // case: [a-Z] is [A-Z], [_-a] is out of order. JavaScript's i flag
        // folds the key the same way.
        const lo = icase ? c.toUpperCase() : c;
        const up = icase ? hi.toUpperCase() : hi;
        if (up.charCodeAt(0) < lo.charCodeAt(0)) throw new RegexError(E.range);
        items.push(classChar(lo) + "-" + classChar(up));
        // Nor can a range start where one ends: "[a-c-e]".
        if (src[pos] === "-" && src[pos + 1] !== "]" && pos + 1 < src.length) {
          throw new RegexError(E.range);
        }
        continue;
      }
      items.push(classChar(c));
    }
    const body = items.join("");
    if (negate) return `[^${body}${newline ? "\\n" : ""}]`;
    return body === "" ? "[]" : `[${body}]`;
  };

  const interval = (bk: boolean): string => {
    // pos is just after "{" (or "\{")
    const m = /^(\d*)(,(\d*))?/.exec(src.slice(pos))!;
    pos += m[0].length;
    const close = bk ? "\\}" : "}";
    if (!src.startsWith(close, pos)) {
      if (pos >= src.length) throw new RegexError(E.brace);
      throw new RegexError(E.badbr);
    }
    pos += close.length;
    if (m[1] === "" && m[2] === undefined) throw new RegexError(E.badbr);
    const lo = m[1] === "" ? 0 : Number(m[1]);
    const hi = m[2] === undefined ? lo : m[3] === "" ? Infinity : Number(m[3]);
    if (lo > RE_DUP_MAX || (hi !== Infinity && (hi > RE_DUP_MAX || hi < lo))) {
      throw new RegexError(E.badbr);
    }
    if (m[2] === undefined) return `{${lo}}`;
    return hi === Infinity ? `{${lo},}` : `{${lo},${hi}}`;
  };

  /** Parses alternatives until ")" (depth > 0) or the end. */
  const regex = (depth: number): string => {
    const branches: string[] = [];
    let pieces: string[] = [];
    let quantified: boolean[] = [];
    // The literal character of each piece (null: not a plain character),
    // for the required-literal pre-filter; only the top level counts.
    let lits: (string | null)[] = [];
    let levelAlternation = false;
    // Per piece: can it match empty, and which groups it holds.
    let nulls: boolean[] = [];
    let spans: ([number, number] | null)[] = [];
    let branchNullable = false;
    let atStart = true; // for BRE "^" and "*", and ERE BADRPT
    for (;;) {
      if (pos >= src.length) {
        if (depth > 0) throw new RegexError(E.paren);
        break;
      }
      const c = src[pos];
      // Group end.
      if (extended ? c === ")" : src.startsWith("\\)", pos)) {
        if (depth > 0) {
          pos += extended ? 1 : 2;
          branches.push(pieces.join(""));
          innerNullable = branchNullable || nulls.every((x) => x);
          return branches.join("|");
        }
        if (!extended) throw new RegexError(E.rparen);
        // A lone ")" in an ERE is literal to glibc.
        pos++;
        pieces.push("\\)");
        quantified.push(false);
        lits.push(")");
        nulls.push(false);
        spans.push(null);
        atStart = false;
        continue;
      }
      // Alternation.
      if (extended ? c === "|" : src.startsWith("\\|", pos)) {
        pos += extended ? 1 : 2;
        alternation = true;
        levelAlternation = true;
        branches.push(pieces.join(""));
        branchNullable ||= nulls.every((x) => x);
        pieces = [];
        quantified = [];
        lits = [];
        nulls = [];
        spans = [];
        atStart = true;
        continue;
      }
      // Quantifiers.
      let q: string | undefined;
      if (c === "*") {
        if (!extended && atStart) q = undefined; // literal "*" in a BRE
        else q = "*";
      } else if (extended && (c === "+" || c === "?")) q = c;
      else if (!extended && (src.startsWith("\\+", pos) || src.startsWith("\\?", pos))) {
        q = src[pos + 1];
        pos++;
      } else if (extended && c === "{") q = "{";
      else if (!extended && src.startsWith("\\{", pos)) {
        q = "{";
        pos++;
      }
      if (q !== undefined) {
        pos++;
        if (pieces.length === 0 || atStart) throw new RegexError(E.badrpt);
        const quant = q === "{" ? interval(!extended) : q;
        const i = pieces.length - 1;
        pieces[i] = quantified[i] ? `(?:${pieces[i]})${quant}` : pieces[i] + quant;
        quantified[i] = true;
        lits[i] = null;
        const [min, max] = bounds(quant);
        const span = spans[i];
        if (span && max > 1) {
          // JavaScript clears the groups inside a repeated group on each
          // repetition and refuses an empty repetition, where glibc keeps
          // values from earlier repetitions; and glibc may split the text
          // into repetitions differently (POSIX's rules for subexpressions).
          for (let g = span[0]; g <= span[1]; g++) repeated.add(g);
        }
        if (min === 0) nulls[i] = true;
        continue;
      }
      // Atoms.
      let atom: string;
      let char: string | null = null;
      let nullable = false;
      let span: [number, number] | null = null;
      pos++;
      if (extended ? c === "(" : c === "\\" && src[pos] === "(") {
        if (!extended) pos++;
        const n = ++groups;
        const inner = regex(depth + 1);
        closed.add(n);
        atom = `(${inner})`;
        nullable = innerNullable;
        span = [n, groups];
      } else if (c === ".") {
        atom = newline ? "[^\\n]" : "[^]";
      } else if (c === "[") {
        atom = bracket();
      } else if (c === "^" && (extended || atStart)) {
        // An anchor cannot be repeated: "^*" is glibc's error in an ERE and
        // a literal "*" in a BRE, as at the start.
        pieces.push(newline ? "(?:^|(?<=\\n))" : "^");
        quantified.push(false);
        lits.push(null);
        nulls.push(true);
        spans.push(null);
        atStart = true;
        continue;
      } else if (
        c === "$" &&
        (extended || pos >= src.length || src.startsWith("\\)", pos) || src.startsWith("\\|", pos))
      ) {
        atom = newline ? "(?=\\n|$)" : "$";
        nullable = true;
      } else if (c === "\\") {
        if (pos >= src.length) throw new RegexError(E.escape);
        const e = src[pos++];
        if (e >= "1" && e <= "9") {
          const n = Number(e);
          if (!closed.has(n)) throw new RegexError(E.subreg);
          atom = `\\${n}`;
          nullable = true;
        } else if ("wWsS".includes(e)) {
          atom = `\\${e}`;
        } else if (e === "b" || e === "B") {
          atom = `\\${e}`;
          nullable = true;
        } else if (e === "<" || e === ">" || e === "`" || e === "'") {
          atom = { "<": "\\b(?=\\w)", ">": "\\b(?<=\\w)", "`": "(?<![^])", "'": "(?![^])" }[e];
          nullable = true;
        } else if (/[a-z]/.test(e)) {
          // glibc: an escaped letter is that letter, but REG_ICASE folds the
          // key to upper case and not the escaped letter, so an escaped
          // lower-case letter then matches nothing.
          atom = icase ? "[]" : e;
          if (!icase) char = e;
        } else if (/[A-Z]/.test(e)) atom = char = e;
        else {
          atom = literal(e);
          char = e;
        }
      } else {
        atom = literal(c);
        char = c;
      }
      pieces.push(atom);
      quantified.push(false);
      lits.push(char);
      nulls.push(nullable);
      spans.push(span);
      atStart = false;
    }
    branches.push(pieces.join(""));
    innerNullable = branchNullable || nulls.every((x) => x);
    if (depth === 0 && !levelAlternation) required = longestRun(lits);
    return branches.join("|");
  };

  let required = "";
  let innerNullable = false;
  const repeated = new Set<number>();
  const source = regex(0);
  return { source, groups, alternation, required, repeated };
}

/** One compiled rule pattern: the JavaScript RegExp and, for substitutions, longest-match. */
class PosixPattern implements CompiledPattern {
  private readonly re: RegExp;
  private readonly sticky = new Map<number, RegExp>();
  private whole: RegExp | undefined;
  /** The pattern has $, \b, \B or a lookahead: it sees past its match's end. */
  private readonly endSensitive: boolean;
  readonly required: string;
  readonly folded: boolean;
  constructor(
    private readonly source: string,
    private readonly flags: string,
    readonly groups: number,
    private readonly longest: boolean,
    required: string,
    readonly repeated: ReadonlySet<number>,
  ) {
    this.re = new RegExp(source, flags);
    this.endSensitive = /\$|\\[bB]|\(\?[=!]/.test(source);
    this.folded = flags.includes("i");
    this.required = this.folded ? required.toLowerCase() : required;
  }

  test(key: string): boolean {
    return this.re.test(key);
  }

  exec(key: string): ArrayLike<string | undefined> | null {
    const m = this.re.exec(key);
    if (m === null || !this.longest) return m;
    // Leftmost-longest: the same start, ending as far right as possible.
    const start = m.index;
    const shortest = start + m[0].length;
    if (!this.endSensitive) {
      // Nothing in the pattern looks past the end of its match, so a match
      // that must end at e is a match in the key cut at e.
      this.whole ??= new RegExp(`(?:${this.source})(?![^])`, this.flags + "y");
      for (let e = key.length; e > shortest; e--) {
        this.whole.lastIndex = start;
        const longer = this.whole.exec(key.slice(0, e));
        if (longer) return longer;
      }
      return m;
    }
    for (let rest = 0; rest < key.length - shortest; rest++) {
      let re = this.sticky.get(rest);
      if (!re) {
        re = new RegExp(`(?:${this.source})(?=[^]{${rest}}(?![^]))`, this.flags + "y");
        if (this.sticky.size < 256) this.sticky.set(rest, re);
      }
      re.lastIndex = start;
      const longer = re.exec(key);
      if (longer) return longer;
    }
    return m;
  }
}

/** The regexp_table(5) syntax for PatternTable. */
export const regexpDialect: Dialect = {
  type: "regexp",
  noDelimiterVerb: "skipping",
  bangEndsFlags: true,
  secondPattern: true,
  outOfRange: "out-of-range",
  checkFlags(flags, where, warn) {
    for (const f of flags) {
      if (f !== "i" && f !== "m" && f !== "x") {
        warn(`${where}: unknown regexp option "${fromBytes(f)}": skipping this rule`);
        return false;
      }
    }
    return true;
  },
  compile(pat: PatternSpec, where, warn, substitutions) {
    let icase = true;
    let newline = false;
    let extended = true;
    for (const f of pat.flags) {
      if (f === "i") icase = !icase;
      else if (f === "m") newline = !newline;
      else if (f === "x") extended = !extended;
    }
    try {
      const t = translatePosix(pat.source, extended, newline, icase);
      return new PosixPattern(
        t.source,
        icase ? "i" : "",
        t.groups,
        substitutions && /[*+?{|]/.test(t.source),
        t.required,
        t.repeated,
      );
    } catch (e) {
      if (e instanceof RegexError) {
        warn(`${where}: ${e.message}`);
        return undefined;
      }
      if (e instanceof SyntaxError) {
        warn(`${where}: pattern is not supported: ${e.message}`);
        return undefined;
      }
      throw e;
    }
  },
};

/** `regexp:/path` or `regexp:{ {rule}, ... }`. */
export const openRegexp: DictOpener = async (name, opts) => {
  const text = await readTableText("regexp", name);
  return patternDict("regexp", name, PatternTable.parse(regexpDialect, name, text, opts.warn));
};

/** The regexp: backend for registry.ts. */
export const regexpBackend: DictBackend = { open: openRegexp, grants: fileGrants };
