/**
 * `pcre:/path` tables (pcre_table(5), Postfix's dict_pcre.c with PCRE2):
 * the regexp: file syntax (one pattern per rule, no `/a/!/b/` form) with
 * Perl-compatible patterns and the flags i (caseless, on), m (multiline),
 * s (dotall, on), x (extended), A (anchored), E (dollar end only), U
 * (ungreedy); X is accepted with Postfix's "ignoring obsolete regexp
 * option" warning, as Postfix built with PCRE2 does.
 *
 * Each pattern is translated once, at open, to a JavaScript RegExp over
 * byte strings (see _pattern_file.ts): Postfix compiles without PCRE2_UTF,
 * even with smtputf8_enable=yes, so `.` is one byte and caseless matching
 * is ASCII only; no `u`/`v` flag is used, on purpose. Translated: groups,
 * named groups (`(?<n>`, `(?'n'`, `(?P<n>`) and their back references
 * (`\k<n>`, `(?P=n)`, `\g{n}`, `\g{-n}`), lookahead and lookbehind, `\Q..\E`,
 * `(?#...)`, `\A \z \Z \G`, PCRE's `$` (end or before a final newline),
 * multiline `^`/`$`, `\h \H \v \V \R \N`, POSIX classes in brackets,
 * `\x{..}`/`\o{..}`/octal escapes, lazy quantifiers, the U flag, and inline
 * option settings `(?i)`, `(?s-i:...)` for i, m, s, x and U.
 *
 * Not translatable to JavaScript, and reported as "... is not supported"
 * with the file and line (the rule is then skipped, as Postfix skips a rule
 * it cannot compile): possessive quantifiers, atomic groups, recursion and
 * subroutine calls, conditionals, branch reset, backtracking verbs, callouts,
 * `\K`, `\C`, `\X`, `\p{..}`, negated POSIX classes inside brackets,
 * inline options n and J. Compile errors are reported in our own words,
 * not PCRE2's ("error in regex: ...").
 *
 * @module
 */
import type { DictBackend, DictOpener } from "./dict.ts";
import {
  byteChar,
  type CompiledPattern,
  type Dialect,
  fileGrants,
  fromBytes,
  patternDict,
  type PatternSpec,
  PatternTable,
  readTableText,
} from "./_pattern_file.ts";

/** A pattern that cannot be translated. */
class PcreError extends Error {
  override readonly name = "PcreError";
}

const unsupported = (what: string) => new PcreError(`${what} is not supported`);

/** Per-group option state. */
interface Opts {
  i: boolean;
  m: boolean;
  s: boolean;
  x: boolean;
  U: boolean;
}

const HSPACE = `\\t ${byteChar(0xa0)}`;
const VSPACE = `\\n\\v\\f\\r${byteChar(0x85)}`;

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
  word: "\\w",
  ascii: "\\x00-\\x7f",
};

function esc(c: string): string {
  if (/[\\^$.|?*+()[\]{}\/\-]/.test(c)) return "\\" + c;
  const code = c.charCodeAt(0);
  if (code < 0x20 || code === 0x7f) return "\\x" + code.toString(16).padStart(2, "0");
  return c;
}

interface Translation {
  source: string;
  groups: number;
  /** Compile with the JavaScript i flag (a caseless back reference needs it). */
  icase: boolean;
  /** A string every match contains ("" when none is known). */
  required: string;
  /** `required` is lower case, to be found in the lower-cased key. */
  folded: boolean;
}

/** A plain character and whether it matches caselessly. */
interface Lit {
  c: string;
  folded: boolean;
}

/** The longest run of plain characters of one case mode. */
function longestLiteral(lits: readonly (Lit | null)[]): Lit[] {
  let best: Lit[] = [];
  let cur: Lit[] = [];
  for (const l of lits) {
    if (l === null) cur = [];
    else {
      if (cur.length > 0 && cur[0].folded !== l.folded) cur = [];
      cur.push(l);
      if (cur.length > best.length) best = [...cur];
    }
  }
  return best;
}

const isLetter = (c: string) => /^[A-Za-z]$/.test(c);
const swap = (c: string) => c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();

/** One character outside a class, both cases when caseless. */
function lit1(c: string, icase: boolean): string {
  if (icase && isLetter(c)) return `[${c.toLowerCase()}${c.toUpperCase()}]`;
  return esc(c);
}

/** The other-case counterparts of the range lo-hi, as class members. */
function swappedRanges(lo: number, hi: number): string {
  let out = "";
  for (const [a, z, shift] of [[65, 90, 32], [97, 122, -32]]) {
    const l = Math.max(lo, a);
    const h = Math.min(hi, z);
    if (l <= h) out += `${String.fromCharCode(l + shift)}-${String.fromCharCode(h + shift)}`;
  }
  return out;
}

/**
 * Translates a PCRE2 pattern (a byte string) to a JavaScript pattern body.
 *
 * @throws {PcreError} for what JavaScript cannot express or a bad pattern.
 */
export function translatePcre(src: string, base: Opts, dollarEndOnly: boolean): Translation {
  let pos = 0;
  let groups = 0;
  const names = new Map<string, number>();
  // JavaScript's case modifiers (?i:...) are not used: V8 mis-matches some
  // of them (e.g. /^a(?-i:B(?=x))/i after a first call); caseless letters
  // are spelled out as [aA] instead.
  let inlineCase = false;
  let caselessBackref = false;

  const skipExtended = (o: Opts) => {
    if (!o.x) return;
    for (;;) {
      if (pos < src.length && /[ \t\n\r\v\f]/.test(src[pos])) pos++;
      else if (src[pos] === "#") {
        while (pos < src.length && src[pos] !== "\n") pos++;
      } else break;
    }
  };

  /** A character escape (after "\"), as one byte value, or undefined. */
  const charEscape = (e: string): number | undefined => {
    switch (e) {
      case "n":
        return 10;
      case "r":
        return 13;
      case "t":
        return 9;
      case "f":
        return 12;
      case "e":
        return 27;
      case "a":
        return 7;
      case "c": {
        const x = src[pos++];
        if (x === undefined) throw new PcreError("\\c at end of pattern");
        return x.toUpperCase().charCodeAt(0) ^ 0x40;
      }
      case "x": {
        if (src[pos] === "{") {
          const end = src.indexOf("}", pos);
          const hex = src.slice(pos + 1, end);
          if (end < 0 || !/^[0-9a-fA-F]+$/.test(hex)) throw new PcreError("bad \\x{...}");
          pos = end + 1;
          const v = parseInt(hex, 16);
          if (v > 0xff) throw new PcreError("character code point value in \\x{} is too large");
          return v;
        }
        const m = /^[0-9a-fA-F]{0,2}/.exec(src.slice(pos))![0];
        pos += m.length;
        return m === "" ? 0 : parseInt(m, 16);
      }
      case "o": {
        const end = src.indexOf("}", pos);
        if (src[pos] !== "{" || end < 0) throw new PcreError("bad \\o{...}");
        const v = parseInt(src.slice(pos + 1, end), 8);
        pos = end + 1;
        if (!(v <= 0xff)) throw new PcreError("character code point value in \\o{} is too large");
        return v;
      }
      case "0": {
        const m = /^[0-7]{0,2}/.exec(src.slice(pos))![0];
        pos += m.length;
        return parseInt("0" + m, 8);
      }
    }
    return undefined;
  };

  /** A class escape as a JS class body part, or undefined. */
  const typeEscape = (e: string, inClass: boolean): string | undefined => {
    switch (e) {
      case "d":
      case "D":
      case "w":
      case "W":
      case "s":
      case "S":
        return "\\" + e;
      case "h":
        return inClass ? HSPACE : `[${HSPACE}]`;
      case "v":
        return inClass ? VSPACE : `[${VSPACE}]`;
      case "H":
        if (inClass) throw unsupported("\\H inside a character class");
        return `[^${HSPACE}]`;
      case "V":
        if (inClass) throw unsupported("\\V inside a character class");
        return `[^${VSPACE}]`;
    }
    return undefined;
  };

  const bracket = (o: Opts): string => {
    let negate = false;
    if (src[pos] === "^") {
      negate = true;
      pos++;
    }
    let body = "";
    let first = true;
    let prevSingle = false;
    let rangeNext = false;
    let prevChar = "";
    // "a-" before something that cannot end a range: both literal.
    const pending = () => {
      if (!rangeNext) return;
      body += esc(prevChar) + "\\-";
      if (o.i && isLetter(prevChar)) body += swap(prevChar);
      rangeNext = false;
    };
    for (;;) {
      if (pos >= src.length) throw new PcreError("missing terminating ] for character class");
      const c = src[pos];
      if (c === "]" && !first) {
        pos++;
        break;
      }
      first = false;
      if (c === "[" && src[pos + 1] === ":") {
        const end = src.indexOf(":]", pos + 2);
        if (end >= 0) {
          let name = src.slice(pos + 2, end);
          if (name.startsWith("^")) {
            throw unsupported(`negated POSIX class [:${name}:] in brackets`);
          }
          const cls = o.i && (name === "upper" || name === "lower") ? "A-Za-z" : CLASSES[name];
          if (cls === undefined) throw new PcreError(`unknown POSIX class name "${name}"`);
          name = "";
          pending();
          body += cls;
          pos = end + 2;
          prevSingle = false;
          continue;
        }
      }
      let single: string;
      pos++;
      if (c === "\\") {
        const e = src[pos++];
        if (e === undefined) throw new PcreError("\\ at end of pattern");
        if (e === "Q") {
          const end = src.indexOf("\\E", pos);
          const lit = end < 0 ? src.slice(pos) : src.slice(pos, end);
          pos = end < 0 ? src.length : end + 2;
          pending();
          for (const ch of lit) body += esc(ch) + (o.i && isLetter(ch) ? swap(ch) : "");
          prevSingle = false;
          continue;
        }
        if (e === "E") continue;
        const t = typeEscape(e, true);
        if (t !== undefined) {
          pending();
          body += t;
          prevSingle = false;
          continue;
        }
        if (e === "b") single = "\b";
        else {
          const v = charEscape(e);
          if (v !== undefined) single = byteChar(v);
          else if (/[A-Za-z0-9]/.test(e)) throw unsupported(`"\\${e}" in a character class`);
          else single = e;
        }
      } else single = c;
      if (c === "-" && prevSingle && src[pos] !== "]" && pos < src.length) {
        rangeNext = true;
        prevSingle = false;
        continue;
      }
      if (rangeNext) {
        rangeNext = false;
        const lo = prevChar.charCodeAt(0);
        const hi = single.charCodeAt(0);
        if (hi < lo) throw new PcreError("range out of order in character class");
        body += `${esc(prevChar)}-${esc(single)}`;
        if (o.i) body += swappedRanges(lo, hi);
        continue;
      }
      if (src[pos] !== "-" || src[pos + 1] === "]") {
        body += esc(single);
        if (o.i && isLetter(single)) body += swap(single);
      }
      prevChar = single;
      prevSingle = true;
    }
    if (negate) return `[^${body}]`;
    return body === "" ? "[]" : `[${body}]`;
  };

  const quantifier = (o: Opts): string | undefined => {
    const c = src[pos];
    let q: string;
    if (c === "*" || c === "+" || c === "?") {
      q = c;
      pos++;
    } else if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(pos));
      if (!m) return undefined; // a literal "{"
      q = m[0];
      pos += m[0].length;
    } else return undefined;
    skipExtended(o);
    let lazy = o.U;
    if (src[pos] === "?") {
      lazy = !lazy;
      pos++;
    } else if (src[pos] === "+") {
      throw unsupported("possessive quantifier");
    }
    return lazy ? q + "?" : q;
  };

  const dollar = (o: Opts) =>
    o.m ? "(?=\\n|(?![^]))" : dollarEndOnly ? "(?![^])" : "(?=\\n?(?![^]))";
  const caret = (o: Opts) => o.m ? "(?:^|(?<=\\n)(?=[^]))" : "^";

  /** Parses option letters "imsxU-" (pos at the first letter); returns the new options. */
  const optionLetters = (o: Opts): Opts => {
    const out = { ...o };
    let on = true;
    if (src[pos] === "^") {
      out.i =
        out.m =
        out.s =
        out.x =
        out.U =
          false;
      pos++;
    }
    while (pos < src.length && src[pos] !== ")" && src[pos] !== ":") {
      const f = src[pos++];
      if (f === "-") on = false;
      else if (f === "i" || f === "m" || f === "s" || f === "x" || f === "U") out[f] = on;
      else if (f === "x" || f === "n" || f === "J") throw unsupported(`inline option "${f}"`);
      else throw new PcreError(`unrecognized character after (? or (?-`);
    }
    return out;
  };

  /** Parses alternatives up to ")" or the end. */
  const alternatives = (o0: Opts, depth: number): string => {
    let o = { ...o0 };
    let out = "";
    const atoms: string[] = [];
    // Plain characters of the atoms (null: anything else), for the
    // required-literal pre-filter; only a top level without "|" counts.
    const lits: (Lit | null)[] = [];
    let levelBar = false;
    const flush = () => {
      out += atoms.join("");
      atoms.length = 0;
    };
    for (;;) {
      skipExtended(o);
      if (pos >= src.length) {
        if (depth > 0) throw new PcreError("missing closing parenthesis");
        break;
      }
      const c = src[pos];
      if (c === ")") {
        if (depth === 0) throw new PcreError("unmatched closing parenthesis");
        pos++;
        break;
      }
      if (c === "|") {
        pos++;
        levelBar = true;
        flush();
        out += "|";
        continue;
      }
      let atom: string | undefined;
      let char: string | null = null;
      pos++;
      if (c === "(") {
        if (src[pos] === "*") throw unsupported("backtracking verb (*...)");
        if (src[pos] !== "?") {
          groups++;
          atom = "(" + alternatives(o, depth + 1) + ")";
        } else {
          pos++;
          const k = src[pos];
          const rest = src.slice(pos);
          let m: RegExpExecArray | null;
          if (k === ":") {
            pos++;
            atom = "(?:" + alternatives(o, depth + 1) + ")";
          } else if (k === "=" || k === "!") {
            pos++;
            atom = `(?${k}` + alternatives(o, depth + 1) + ")";
          } else if (rest.startsWith("<=") || rest.startsWith("<!")) {
            pos += 2;
            atom = `(?${rest.slice(0, 2)}` + alternatives(o, depth + 1) + ")";
          } else if ((m = /^(?:<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)'|P<([A-Za-z_]\w*)>)/.exec(rest))) {
            pos += m[0].length;
            const name = m[1] ?? m[2] ?? m[3];
            names.set(name, ++groups);
            atom = `(?<${name}>` + alternatives(o, depth + 1) + ")";
          } else if ((m = /^P=([A-Za-z_]\w*)\)/.exec(rest))) {
            pos += m[0].length;
            atom = `\\k<${m[1]}>`;
            if (o.i) caselessBackref = true;
          } else if (k === "#") {
            const end = src.indexOf(")", pos);
            if (end < 0) throw new PcreError("missing ) after (?# comment");
            pos = end + 1;
            continue;
          } else if (k === ">") throw unsupported("atomic group (?>...)");
          else if (k === "|") throw unsupported("branch reset group (?|...)");
          else if (k === "(") throw unsupported("conditional group (?(...)...)");
          else if (k === "C") throw unsupported("callout (?C...)");
          else if (/^(?:R|[+-]?\d|&|P>)/.test(rest)) {
            throw unsupported("recursion or subroutine call");
          } else {
            const next = optionLetters(o);
            if (src[pos] === ")") {
              pos++;
              // Options for the rest of this group, alternatives included.
              if (next.i !== o.i) inlineCase = true;
              o = next;
              continue;
            }
            if (src[pos] !== ":") throw new PcreError("bad option setting");
            pos++;
            if (next.i !== o.i) inlineCase = true;
            atom = "(?:" + alternatives(next, depth + 1) + ")";
          }
        }
      } else if (c === "[") atom = bracket(o);
      else if (c === ".") atom = o.s ? "[^]" : "[^\\n]";
      else if (c === "^") atom = caret(o);
      else if (c === "$") atom = dollar(o);
      else if (c === "\\") {
        const e = src[pos++];
        if (e === undefined) throw new PcreError("\\ at end of pattern");
        let m: RegExpExecArray | null;
        const rest = src.slice(pos - 1);
        if (e === "Q") {
          const end = src.indexOf("\\E", pos);
          const lit = end < 0 ? src.slice(pos) : src.slice(pos, end);
          pos = end < 0 ? src.length : end + 2;
          for (const ch of lit) {
            atoms.push(lit1(ch, o.i));
            lits.push({ c: ch, folded: o.i });
          }
          continue;
        } else if (e === "E") continue;
        else if (e === "A" || e === "G") atom = "(?<![^])";
        else if (e === "z") atom = "(?![^])";
        else if (e === "Z") atom = "(?=\\n?(?![^]))";
        else if (e === "b" || e === "B") atom = "\\" + e;
        else if (e === "N") atom = "[^\\n]";
        else if (e === "R") atom = `(?:\\r\\n|[${VSPACE}])`;
        else if ((m = /^g\{?(-?\d+)\}?/.exec(rest))) {
          pos += m[0].length - 1;
          let n = Number(m[1]);
          if (n < 0) n = groups + 1 + n;
          if (n < 1) throw new PcreError("reference to non-existent subpattern");
          atom = `(?:\\${n})`;
          if (o.i) caselessBackref = true;
        } else if ((m = /^(?:k<(\w+)>|k'(\w+)'|k\{(\w+)\}|g\{([A-Za-z_]\w*)\})/.exec(rest))) {
          pos += m[0].length - 1;
          atom = `\\k<${m[1] ?? m[2] ?? m[3] ?? m[4]}>`;
          if (o.i) caselessBackref = true;
        } else if (/[1-9]/.test(e)) {
          const d = /^\d+/.exec(rest)![0];
          pos += d.length - 1;
          atom = `(?:\\${Number(d)})`;
          if (o.i) caselessBackref = true;
        } else {
          const t = typeEscape(e, false);
          if (t !== undefined) atom = t;
          else {
            const v = charEscape(e);
            if (v !== undefined) atom = lit1(char = byteChar(v), o.i);
            else if ("KCXpPgk".includes(e)) throw unsupported(`"\\${e}"`);
            else if (/[A-Za-z0-9]/.test(e)) {
              throw new PcreError(`unrecognized character follows \\: "\\${e}"`);
            } else atom = esc(char = e);
          }
        }
      } else if (c === "*" || c === "+" || c === "?") {
        throw new PcreError("quantifier does not follow a repeatable item");
      } else atom = lit1(char = c, o.i);
      if (atom === undefined) continue;
      skipExtended(o);
      const q = quantifier(o);
      atoms.push(q === undefined ? atom : `(?:${atom})${q}`);
      lits.push(q === undefined && char !== null ? { c: char, folded: o.i } : null);
    }
    if (depth === 0 && !levelBar) required = longestLiteral(lits);
    flush();
    return out;
  };

  let required: Lit[] = [];
  const source = alternatives(base, 0);
  if (caselessBackref && inlineCase) {
    throw unsupported("a caseless back reference with inline case options");
  }
  const folded = required.length > 0 && required[0].folded;
  const text = required.map((l) => l.c).join("");
  return {
    source,
    groups,
    icase: caselessBackref,
    required: folded ? text.toLowerCase() : text,
    folded,
  };
}

/** One compiled pcre: pattern. */
class PcrePattern implements CompiledPattern {
  constructor(
    private readonly re: RegExp,
    readonly groups: number,
    readonly required: string,
    readonly folded: boolean,
  ) {}
  test(key: string): boolean {
    this.re.lastIndex = 0;
    return this.re.test(key);
  }
  exec(key: string): ArrayLike<string | undefined> | null {
    this.re.lastIndex = 0;
    return this.re.exec(key);
  }
}

/** The pcre_table(5) syntax for PatternTable. */
export const pcreDialect: Dialect = {
  type: "pcre",
  noDelimiterVerb: "ignoring",
  bangEndsFlags: false,
  secondPattern: false,
  outOfRange: "out of range",
  checkFlags(flags, where, warn) {
    for (const f of flags) {
      if (f === "X") {
        warn(`${where}: ignoring obsolete regexp option "X"`);
      } else if (!"imsxAEU".includes(f)) {
        warn(`${where}: unknown regexp option "${fromBytes(f)}": skipping this rule`);
        return false;
      }
    }
    return true;
  },
  compile(pat: PatternSpec, where, warn) {
    const o: Opts = { i: true, m: false, s: true, x: false, U: false };
    let anchored = false;
    let endOnly = false;
    for (const f of pat.flags) {
      if (f === "i" || f === "m" || f === "s" || f === "x" || f === "U") o[f] = !o[f];
      else if (f === "A") anchored = !anchored;
      else if (f === "E") endOnly = !endOnly;
    }
    try {
      const t = translatePcre(pat.source, o, endOnly);
      const re = new RegExp(t.source, (t.icase ? "i" : "") + (anchored ? "y" : ""));
      return new PcrePattern(re, t.groups, t.required, t.folded);
    } catch (e) {
      if (e instanceof PcreError || e instanceof SyntaxError) {
        warn(`${where}: error in regex: ${e.message}`);
        return undefined;
      }
      throw e;
    }
  },
};

/** `pcre:/path` or `pcre:{ {rule}, ... }`. */
export const openPcre: DictOpener = async (name, opts) => {
  const text = await readTableText("pcre", name);
  return patternDict("pcre", name, PatternTable.parse(pcreDialect, name, text, opts.warn));
};

/** The pcre: backend for registry.ts. */
export const pcreBackend: DictBackend = { open: openPcre, grants: fileGrants };
