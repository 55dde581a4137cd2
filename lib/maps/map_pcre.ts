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
 * `\x{..}`/`\o{..}`/octal escapes, lazy quantifiers, the U flag, inline
 * option settings `(?i)`, `(?s-i:...)` for i, m, s, x and U, and atomic
 * groups and possessive quantifiers (as `(?=(X))\k`, X matched once and
 * never backtracked into). Where JavaScript and PCRE fill groups
 * differently (a group inside a repeated group keeps an earlier
 * repetition's value in PCRE; an empty repetition), a rule that substitutes
 * such a group is kept and warned about at open ("... is not supported
 * exactly"); an optional item that can match empty is translated so that it
 * matches as PCRE's does.
 *
 * Not translatable to JavaScript, and reported as "... is not supported"
 * with the file and line (the rule is then skipped, as Postfix skips a rule
 * it cannot compile): recursion and subroutine calls, conditionals, branch
 * reset, backtracking verbs, callouts,
 * `\K`, `\C`, `\X`, `\p{..}`, inline options n and J. Compile errors are reported in our own words,
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

/** POSIX classes as PCRE2 sees them without UTF: ASCII code ranges. */
const CLASS_RANGES: Record<string, [number, number][]> = {
  alpha: [[65, 90], [97, 122]],
  digit: [[48, 57]],
  alnum: [[48, 57], [65, 90], [97, 122]],
  upper: [[65, 90]],
  lower: [[97, 122]],
  space: [[9, 13], [32, 32]],
  blank: [[9, 9], [32, 32]],
  punct: [[33, 47], [58, 64], [91, 96], [123, 126]],
  print: [[32, 126]],
  graph: [[33, 126]],
  cntrl: [[0, 31], [127, 127]],
  xdigit: [[48, 57], [65, 70], [97, 102]],
  word: [[48, 57], [65, 90], [95, 95], [97, 122]],
  ascii: [[0, 127]],
};

/** A class body for ranges, or for every byte-string character outside them. */
function classBody(ranges: [number, number][], negated: boolean): string {
  let list = ranges;
  if (negated) {
    list = [];
    let next = 0;
    for (const [lo, hi] of ranges) {
      if (lo > next) list.push([next, lo - 1]);
      next = hi + 1;
    }
    list.push([next, 0x28ff]);
  }
  const hex = (n: number) =>
    n < 0x100 ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16).padStart(4, "0")}`;
  return list.map(([lo, hi]) => lo === hi ? hex(lo) : `${hex(lo)}-${hex(hi)}`).join("");
}

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
  /** Groups whose value JavaScript may report differently from PCRE. */
  repeated: Set<number>;
  /** JavaScript group number of each PCRE group, when they differ. */
  map: number[] | null;
}

/** min and max of a translated quantifier (a lazy "?" suffix ignored). */
function bounds(q: string): [number, number] {
  const t = q.length > 1 && q.endsWith("?") ? q.slice(0, -1) : q;
  if (t === "*") return [0, Infinity];
  if (t === "+") return [1, Infinity];
  if (t === "?") return [0, 1];
  const m = /^\{(\d+)(,(\d*))?\}$/.exec(t)!;
  const lo = Number(m[1]);
  return [lo, m[2] === undefined ? lo : m[3] === "" ? Infinity : Number(m[3])];
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
  // JavaScript capture groups by a stable id, in the order of their "(":
  // atomic groups and possessive quantifiers add groups of their own
  // ("(?=(X))\\k" is X matched once, without backtracking into it), so a
  // PCRE group number and a JavaScript one can differ; references are
  // written as placeholders and numbered at the end.
  const order: number[] = [];
  const idOf: number[] = []; // PCRE group number -> id
  let nextId = 0;
  const ref = (id: number) => `\u0001${id}\u0002`;
  const pcreRef = (n: number) => `\u0003${n}\u0002`;
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

  /** PCRE2's check_posix_syntax: src[at] is "[" and a "[:...:]"-style item follows. */
  const looksPosix = (at: number): boolean => {
    const t = src[at + 1];
    if (t !== ":" && t !== "." && t !== "=") return false;
    for (let p = at + 2; p < src.length; p++) {
      if (src[p] === "\\" && (src[p + 1] === "]" || src[p + 1] === "\\")) p++;
      else if ((src[p] === "[" && src[p + 1] === t) || src[p] === "]") return false;
      else if (src[p] === t && src[p + 1] === "]") return true;
    }
    return false;
  };

  const bracket = (o: Opts): string => {
    // PCRE2 rejects "[:alpha:]" (and [.x.], [=x=]) used as a whole class.
    if (looksPosix(pos - 1)) {
      throw new PcreError("POSIX named classes are supported only within a class");
    }
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
    // A class (\d, [:alpha:]) can neither start nor end a range.
    const classRange = () => {
      if (src[pos] === "-" && pos + 1 < src.length && src[pos + 1] !== "]") {
        throw new PcreError("invalid range in character class");
      }
    };
    for (;;) {
      if (pos >= src.length) throw new PcreError("missing terminating ] for character class");
      const c = src[pos];
      if (c === "]" && !first) {
        pos++;
        break;
      }
      first = false;
      if (c === "[" && (src[pos + 1] === "." || src[pos + 1] === "=") && looksPosix(pos)) {
        throw new PcreError("POSIX collating elements are not supported");
      }
      if (c === "[" && src[pos + 1] === ":") {
        const end = src.indexOf(":]", pos + 2);
        if (looksPosix(pos)) {
          const negated = src[pos + 2] === "^";
          let name = src.slice(pos + (negated ? 3 : 2), end);
          if (o.i && (name === "upper" || name === "lower")) name = "alpha";
          if (!Object.hasOwn(CLASS_RANGES, name)) {
            throw new PcreError(`unknown POSIX class name "${name}"`);
          }
          const cls = classBody(CLASS_RANGES[name], negated);
          if (rangeNext) throw new PcreError("invalid range in character class");
          body += cls;
          pos = end + 2;
          classRange();
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
          if (rangeNext) throw new PcreError("invalid range in character class");
          body += t;
          classRange();
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

  let possessive = false; // set by quantifier() for "*+", "?+", "{n}+" ...
  const quantifier = (o: Opts): string | undefined => {
    possessive = false;
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
      possessive = true;
      lazy = false;
      pos++;
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
    // Per atom: can it match empty (for the repeated-group check).
    let nulls: boolean[] = [];
    let branchNullable = false;
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
        branchNullable ||= nulls.every((x) => x);
        nulls = [];
        flush();
        out += "|";
        continue;
      }
      let atom: string | undefined;
      let char: string | null = null;
      let nullable = true; // zero-width unless shown otherwise
      let own = 0; // the capturing group this atom is
      let assertion = false; // ^ $ \b \B \A \z \Z \G cannot be repeated
      const before = groups;
      const orderBefore = order.length;
      pos++;
      if (c === "(") {
        if (src[pos] === "*") throw unsupported("backtracking verb (*...)");
        if (src[pos] !== "?") {
          own = ++groups;
          idOf[own] = nextId;
          order.push(nextId++);
          atom = "(" + alternatives(o, depth + 1) + ")";
          nullable = innerNullable;
        } else {
          pos++;
          const k = src[pos];
          const rest = src.slice(pos);
          let m: RegExpExecArray | null;
          if (k === ":") {
            pos++;
            atom = "(?:" + alternatives(o, depth + 1) + ")";
            nullable = innerNullable;
          } else if (k === "=" || k === "!") {
            pos++;
            atom = `(?${k}` + alternatives(o, depth + 1) + ")";
          } else if (rest.startsWith("<=") || rest.startsWith("<!")) {
            pos += 2;
            atom = `(?${rest.slice(0, 2)}` + alternatives(o, depth + 1) + ")";
          } else if ((m = /^(?:<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)'|P<([A-Za-z_]\w*)>)/.exec(rest))) {
            pos += m[0].length;
            const name = m[1] ?? m[2] ?? m[3];
            names.set(name, own = ++groups);
            idOf[own] = nextId;
            order.push(nextId++);
            atom = `(?<${name}>` + alternatives(o, depth + 1) + ")";
            nullable = innerNullable;
          } else if ((m = /^P=([A-Za-z_]\w*)\)/.exec(rest))) {
            pos += m[0].length;
            atom = `\\k<${m[1]}>`;
            if (o.i) caselessBackref = true;
          } else if (k === "#") {
            const end = src.indexOf(")", pos);
            if (end < 0) throw new PcreError("missing ) after (?# comment");
            pos = end + 1;
            continue;
          } else if (k === ">") {
            pos++;
            const id = nextId++;
            order.push(id);
            atom = "(?=(" + alternatives(o, depth + 1) + "))" + ref(id);
            nullable = innerNullable;
          } else if (k === "|") throw unsupported("branch reset group (?|...)");
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
            nullable = innerNullable;
          }
        }
      } else if (c === "[") {
        atom = bracket(o);
        nullable = false;
      } else if (c === ".") {
        atom = o.s ? "[^]" : "[^\\n]";
        nullable = false;
      } else if (c === "^" || c === "$") {
        atom = c === "^" ? caret(o) : dollar(o);
        assertion = true;
      } else if (c === "\\") {
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
            nulls.push(false);
          }
          continue;
        } else if (e === "E") continue;
        else if ("AGzZbB".includes(e)) {
          atom = e === "A" || e === "G"
            ? "(?<![^])"
            : e === "z"
            ? "(?![^])"
            : e === "Z"
            ? "(?=\\n?(?![^]))"
            : "\\" + e;
          assertion = true;
        } else if (e === "N" || e === "R") {
          atom = e === "N" ? "[^\\n]" : `(?:\\r\\n|[${VSPACE}])`;
          nullable = false;
        } else if ((m = /^g\{?(-?\d+)\}?/.exec(rest))) {
          pos += m[0].length - 1;
          let n = Number(m[1]);
          if (n < 0) n = groups + 1 + n;
          if (n < 1) throw new PcreError("reference to non-existent subpattern");
          atom = `(?:${pcreRef(n)})`;
          if (o.i) caselessBackref = true;
        } else if ((m = /^(?:k<(\w+)>|k'(\w+)'|k\{(\w+)\}|g\{([A-Za-z_]\w*)\})/.exec(rest))) {
          pos += m[0].length - 1;
          atom = `\\k<${m[1] ?? m[2] ?? m[3] ?? m[4]}>`;
          if (o.i) caselessBackref = true;
        } else if (/[1-9]/.test(e)) {
          const d = /^\d+/.exec(rest)![0];
          pos += d.length - 1;
          atom = `(?:${pcreRef(Number(d))})`;
          if (o.i) caselessBackref = true;
        } else {
          const t = typeEscape(e, false);
          if (t !== undefined) {
            atom = t;
            nullable = false;
          } else {
            const v = charEscape(e);
            if (v !== undefined) {
              atom = lit1(char = byteChar(v), o.i);
              nullable = false;
            } else if ("KCXpPgk".includes(e)) throw unsupported(`"\\${e}"`);
            else if (/[A-Za-z0-9]/.test(e)) {
              throw new PcreError(`unrecognized character follows \\: "\\${e}"`);
            } else {
              atom = esc(char = e);
              nullable = false;
            }
          }
        }
      } else if (
        c === "*" || c === "+" || c === "?" || (c === "{" && /^\d+(,\d*)?\}/.test(src.slice(pos)))
      ) {
        throw new PcreError("quantifier does not follow a repeatable item");
      } else {
        atom = lit1(char = c, o.i);
        nullable = false;
      }
      if (atom === undefined) continue;
      skipExtended(o);
      const q = quantifier(o);
      if (q !== undefined && assertion) {
        throw new PcreError("quantifier does not follow a repeatable item");
      }
      if (q === undefined) atoms.push(atom);
      else if (possessive) {
        const id = nextId++;
        order.splice(orderBefore, 0, id);
        atoms.push(`(?=((?:${atom})${q}))${ref(id)}`);
      } else if (nullable && (q === "?" || q === "??")) {
        // JavaScript refuses an optional item that matches empty (and
        // backtracks into it for a longer match); PCRE takes the empty
        // match. An alternation with an empty branch does what PCRE does.
        atoms.push(q === "?" ? `(?:${atom}|)` : `(?:|${atom})`);
      } else atoms.push(`(?:${atom})${q}`);
      if (q !== undefined) {
        const [min, max] = bounds(q);
        if (max > 1 && nullable) {
          // An empty repetition: PCRE takes it and stops, JavaScript
          // refuses it and may match more; any group can differ.
          everyGroupInexact = true;
        } else if (max > 1) {
          // JavaScript clears the groups inside a repeated group on each
          // repetition; PCRE keeps the values set by earlier ones.
          for (let g = before + 1; g <= groups; g++) if (g !== own) repeated.add(g);
        }
        if (min === 0) nullable = true;
      }
      nulls.push(nullable);
      lits.push(q === undefined && char !== null ? { c: char, folded: o.i } : null);
    }
    if (depth === 0 && !levelBar) required = longestLiteral(lits);
    innerNullable = branchNullable || nulls.every((x) => x);
    flush();
    return out;
  };

  let required: Lit[] = [];
  let innerNullable = false;
  let everyGroupInexact = false;
  const repeated = new Set<number>();
  let source = alternatives(base, 0);
  const jsNumber = (id: number) => order.indexOf(id) + 1;
  // deno-lint-ignore no-control-regex
  source = source.replace(/\u0001(\d+)\u0002/g, (_, id) => `\\${jsNumber(Number(id))}`);
  // deno-lint-ignore no-control-regex
  source = source.replace(/\u0003(\d+)\u0002/g, (_, n) => {
    if (Number(n) > groups) throw new PcreError("reference to non-existent subpattern");
    return `\\${jsNumber(idOf[Number(n)])}`;
  });
  const map = Array.from({ length: groups + 1 }, (_, n) => n === 0 ? 0 : jsNumber(idOf[n]));
  const identity = map.every((v, n) => v === n);
  if (caselessBackref && inlineCase) {
    throw unsupported("a caseless back reference with inline case options");
  }
  if (everyGroupInexact) { for (let g = 1; g <= groups; g++) repeated.add(g); }
  const folded = required.length > 0 && required[0].folded;
  const text = required.map((l) => l.c).join("");
  return {
    source,
    groups,
    icase: caselessBackref,
    required: folded ? text.toLowerCase() : text,
    folded,
    repeated,
    map: identity ? null : map,
  };
}

/** One compiled pcre: pattern. */
class PcrePattern implements CompiledPattern {
  constructor(
    private readonly re: RegExp,
    readonly groups: number,
    readonly required: string,
    readonly folded: boolean,
    readonly repeated: ReadonlySet<number>,
    private readonly map: number[] | null,
  ) {}
  test(key: string): boolean {
    this.re.lastIndex = 0;
    return this.re.test(key);
  }
  exec(key: string): ArrayLike<string | undefined> | null {
    this.re.lastIndex = 0;
    const m = this.re.exec(key);
    if (m === null || this.map === null) return m;
    return this.map.map((js) => m[js]);
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
      return new PcrePattern(re, t.groups, t.required, t.folded, t.repeated, t.map);
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
