/**
 * The text source of a lookup table, read as Postfix's postmap, postalias
 * and texthash read it. One parser serves `texthash:` (at open), `postmap`
 * and `postalias` (at build):
 *
 * - Logical lines (Postfix's readllines): a line whose first non-blank
 *   character is "#" is a comment, a line of only white space is blank;
 *   both are skipped and do not end a logical line. A line that starts
 *   with white space continues the previous logical line (the newline is
 *   dropped, the white space kept). A continuation with nothing to
 *   continue is reported ("logical line must not start with whitespace")
 *   and skipped. A logical line is numbered by its first physical line.
 * - Map format (postmap, texthash): the key ends at the first white space
 *   outside double quotes ("\" escapes the next character); quotes and
 *   backslashes stay in the key. The value is the rest, without leading
 *   and trailing white space. A line with no key or no value, or with
 *   unbalanced quotes, is reported and skipped; a key ending in ":" is
 *   reported ("is this an alias file?") and kept.
 * - Alias format (postalias): the line is read as RFC 822 tokens
 *   (Postfix's tok822_scan): `name: value`, the name in unquoted form, the
 *   value re-written in quoted form with Postfix's spacing ("a,b" becomes
 *   "a, b"). No ":" before the value, an empty name or value, or a "," in
 *   the name is "need name:value pair"; "@" or "%" in the name is "name
 *   must be local".
 *
 * Warnings use Postfix's words ("PATH, line N: ..."); the caller prefixes
 * the program name. Duplicate keys are the caller's business (texthash,
 * postmap and postalias treat them differently). Case folding is
 * {@link foldKey}.
 *
 * Not done: postmap -F (values naming files to base64-encode).
 *
 * @module
 */

/** One logical line of a table source. */
export interface LogicalLine {
  /** The text, continuation lines joined, without the newline. */
  text: string;
  /** Number of its first physical line (1-based). */
  line: number;
}

/** One key/value entry read from a source, with where it was. */
export interface SourceEntry {
  key: string;
  value: string;
  line: number;
}

/** Options for the source parsers. */
export interface SourceOptions {
  /** The source's path as the user named it, for warnings. */
  path: string;
  /** Receives each warning, in Postfix's words without the program prefix. */
  warn: (message: string) => void;
  /**
   * Input must be UTF-8 (smtputf8_enable=yes): lines that are not are
   * reported and skipped; otherwise they are read with U+FFFD for bad
   * bytes. @default true
   */
  utf8?: boolean;
  /**
   * How a line without a value is reported: postmap's builder says
   * "expected format: key whitespace value", texthash adds
   * " -- ignoring this line". @default false
   */
  ignoringSuffix?: boolean;
}

/** Postfix's ISSPACE: the C locale white space. */
function isSpace(c: string): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\v" || c === "\f";
}

/**
 * Splits source text into logical lines as Postfix's readllines does.
 * Invalid UTF-8 must already be dealt with (see {@link decodeSource}).
 */
export function* logicalLines(text: string, opts: SourceOptions): Generator<LogicalLine> {
  const physical = text.split("\n");
  if (physical.length > 0 && physical[physical.length - 1] === "") physical.pop();
  let current: LogicalLine | undefined;
  for (let i = 0; i < physical.length; i++) {
    let raw = physical[i];
    if (raw.endsWith("\r")) raw = raw.slice(0, -1);
    let j = 0;
    while (j < raw.length && isSpace(raw[j])) j++;
    if (j === raw.length || raw[j] === "#") continue; // blank or comment
    if (j > 0) {
      if (current !== undefined) {
        current.text += raw;
        continue;
      }
      // Postfix shows at most 30 characters of the line.
      const shown = raw.length > 30 ? raw.slice(0, 30) + "..." : raw;
      opts.warn(`${opts.path}: logical line must not start with whitespace: "${shown}"`);
      continue;
    }
    if (current !== undefined) yield current;
    current = { text: raw, line: i + 1 };
  }
  if (current !== undefined) yield current;
}

/**
 * Decodes a source file. Lines that are not valid UTF-8 are reported
 * ("non-UTF-8 input ... -- ignoring this line", as Postfix with
 * smtputf8_enable) and dropped; the rest is decoded as UTF-8.
 */
export function decodeSource(bytes: Uint8Array, opts: SourceOptions): string {
  if (opts.utf8 === false) return new TextDecoder("utf-8").decode(bytes);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const strict = new TextDecoder("utf-8", { fatal: true });
    const loose = new TextDecoder("utf-8");
    const lines: string[] = [];
    let start = 0;
    let n = 0;
    while (start < bytes.length) {
      let end = bytes.indexOf(0x0a, start);
      if (end < 0) end = bytes.length;
      n++;
      const chunk = bytes.subarray(start, end);
      try {
        lines.push(strict.decode(chunk));
      } catch {
        opts.warn(
          `${opts.path}, line ${n}: non-UTF-8 input "${loose.decode(chunk)}" -- ignoring this line`,
        );
        lines.push(""); // keeps the line numbers of what follows
      }
      start = end + 1;
    }
    return lines.join("\n");
  }
}

/**
 * Entries of a postmap/texthash source ("key whitespace value"), in file
 * order, duplicates included. Lazy, so that a consumer's warnings (such
 * as duplicates) come out in line order with the parser's.
 */
export function* parseMapSource(text: string, opts: SourceOptions): Generator<SourceEntry> {
  for (const { text: line, line: n } of logicalLines(text, opts)) {
    const e = parseMapLine(line, n, opts);
    if (e !== undefined) yield e;
  }
}

/** One logical line in map format: the entry, or undefined after a warning. */
export function parseMapLine(
  line: string,
  n: number,
  opts: SourceOptions,
): SourceEntry | undefined {
  const suffix = opts.ignoringSuffix ? " -- ignoring this line" : "";
  let inQuotes = false;
  let i = 0;
  for (; i < line.length; i++) {
    const c = line[i];
    if (c === "\\") {
      if (++i >= line.length) break;
    } else if (isSpace(c)) {
      if (!inQuotes) break;
    } else if (c === '"') {
      inQuotes = !inQuotes;
    }
  }
  if (inQuotes) {
    opts.warn(`${opts.path}, line ${n}: unbalanced '"' in '${line}' -- ignoring this line`);
    return undefined;
  }
  const key = line.slice(0, Math.min(i, line.length));
  const value = line.slice(i + 1).replace(/^[ \t\n\r\v\f]+/, "").replace(/[ \t\n\r\v\f]+$/, "");
  if (key === "" || value === "") {
    opts.warn(`${opts.path}, line ${n}: expected format: key whitespace value${suffix}`);
    return undefined;
  }
  if (key.endsWith(":")) {
    opts.warn(`${opts.path}, line ${n}: record is in "key: value" format; is this an alias file?`);
  }
  return { key, value, line: n };
}

// --- RFC 822 tokens, as Postfix's tok822_scan/externalize/internalize ---

const OPCHARS = new Set([...'|%!()<>@,;:\\".[]']);

type TokKind = "atom" | "qstring" | "comment" | "domlit" | "op";
interface Tok {
  kind: TokKind;
  /** Text: the unquoted content, a comment in its external form, or the operator. */
  text: string;
}

const isSpaceTabCrLf = (c: string) => c === " " || c === "\t" || c === "\r" || c === "\n";

/** Collects characters while cond holds; "\" takes the next one literally. */
function collect(s: string, i: number, cond: (c: string) => boolean): [string, number] {
  let t = "";
  while (i < s.length) {
    let c = s[i];
    if (c === "\\") {
      if (++i >= s.length) break;
      c = s[i];
    } else if (!cond(c)) {
      break;
    }
    t += isSpaceTabCrLf(c) ? " " : c;
    i++;
  }
  return [t, i];
}

function isCntrl(c: string): boolean {
  const code = c.charCodeAt(0);
  return code < 0x20 || code === 0x7f;
}

/** Tokenizes one line as tok822_scan. */
export function tok822Scan(s: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i++];
    if (isSpaceTabCrLf(c)) continue;
    if (c === "(") {
      let level = 1;
      let t = "(";
      while (i < s.length) {
        const d = s[i++];
        t += d;
        if (d === "(") level++;
        else if (d === ")") {
          if (--level === 0) break;
        } else if (d === "\\") {
          if (i >= s.length) break;
          t += s[i++];
        }
      }
      toks.push({ kind: "comment", text: t });
    } else if (c === "[") {
      const [t, j] = collect(s, i, (d) => d !== "]");
      i = j < s.length ? j + 1 : j;
      toks.push({ kind: "domlit", text: t });
    } else if (c === '"') {
      const [t, j] = collect(s, i, (d) => d !== '"');
      i = j < s.length ? j + 1 : j;
      toks.push({ kind: "qstring", text: t });
    } else if (c !== "\\" && OPCHARS.has(c)) {
      toks.push({ kind: "op", text: c });
    } else {
      const [t, j] = collect(s, i - 1, (d) => !isSpaceTabCrLf(d) && !OPCHARS.has(d));
      i = j;
      const quote = [...t].some((d) => d === " " || isCntrl(d) || OPCHARS.has(d));
      toks.push({ kind: quote ? "qstring" : "atom", text: t });
    }
  }
  return toks;
}

const nonOperator = (t: Tok) => t.kind !== "op";

/** Postfix 3.7 writes a space after every ",", even a last one. */
function appendSpace(t: Tok, next: Tok | undefined): boolean {
  if (t.kind === "op" && t.text === ",") return true;
  if (next === undefined) return false;
  if (next.kind === "op" && next.text === "<") return true;
  return nonOperator(t) && nonOperator(next);
}

function quoted(text: string, set: string): string {
  let out = "";
  for (const c of text) out += set.includes(c) ? "\\" + c : c;
  return out;
}

/** Tokens back to text in quoted (external) form, as tok822_externalize. */
export function tok822Externalize(toks: Tok[]): string {
  let out = "";
  toks.forEach((t, i) => {
    if (t.kind === "qstring") out += '"' + quoted(t.text, '"\\\r\n') + '"';
    else if (t.kind === "domlit") out += "[" + quoted(t.text, "\\\r\n") + "]";
    else out += t.text;
    if (appendSpace(t, toks[i + 1])) out += " ";
  });
  return out;
}

/** Tokens back to text in unquoted (internal) form, as tok822_internalize. */
export function tok822Internalize(toks: Tok[]): string {
  let out = "";
  toks.forEach((t, i) => {
    out += t.kind === "domlit" ? `[${t.text}]` : t.text;
    if (appendSpace(t, toks[i + 1])) out += " ";
  });
  return out;
}

/**
 * Entries of an aliases(5) source ("name: value"), in file order,
 * duplicates included. Keys are in internal (unquoted) form, values in
 * external (quoted) form, as Postfix's postalias stores them. Lazy, as
 * {@link parseMapSource}.
 */
export function* parseAliasSource(text: string, opts: SourceOptions): Generator<SourceEntry> {
  for (const { text: line, line: n } of logicalLines(text, opts)) {
    const toks = tok822Scan(line);
    if (toks.length === 0) continue;
    const colon = toks.findIndex((t) => t.kind === "op" && t.text === ":");
    const keyToks = colon < 0 ? [] : toks.slice(0, colon);
    if (
      colon <= 0 || colon === toks.length - 1 ||
      keyToks.some((t) => t.kind === "op" && t.text === ",")
    ) {
      opts.warn(`${opts.path}, line ${n}: need name:value pair`);
      continue;
    }
    if (keyToks.some((t) => t.kind === "op" && (t.text === "@" || t.text === "%"))) {
      opts.warn(`${opts.path}, line ${n}: name must be local`);
      continue;
    }
    yield {
      key: tok822Internalize(keyToks),
      value: tok822Externalize(toks.slice(colon + 1)),
      line: n,
    };
  }
}

/**
 * Folds a key as Postfix does: with smtputf8_enable=yes (`utf8`, Postfix's
 * casefold_utf8) to lower case with full Unicode folding ("ß" folds to
 * "ss"); without it, ASCII letters only (Postfix's lowercase()).
 */
export function foldKey(key: string, utf8 = true): string {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(key)) return key.toLowerCase();
  if (!utf8) return key.replace(/[A-Z]+/g, (m) => m.toLowerCase());
  return key.toLowerCase().replaceAll("ß", "ss").replaceAll("ς", "σ");
}

/** What to do with a key seen before (postmap/postalias -r, -w; default warn). */
export type DuplicatePolicy = "warn" | "replace" | "ignore";

/**
 * Entries with duplicate keys resolved, in first-seen order: the first
 * value wins (with `warn` called for each later one) unless `replace`.
 * Keys are folded first when `fold`.
 */
export function resolveDuplicates(
  entries: Iterable<SourceEntry>,
  opts: {
    fold: boolean;
    utf8?: boolean;
    policy: DuplicatePolicy;
    /** Called with the entry as written and its folded key. */
    warn: (entry: SourceEntry, key: string) => void;
  },
): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of entries) {
    const key = opts.fold ? foldKey(e.key, opts.utf8 ?? true) : e.key;
    if (out.has(key)) {
      if (opts.policy === "replace") out.set(key, e.value);
      else if (opts.policy === "warn") opts.warn(e, key);
      continue;
    }
    out.set(key, e.value);
  }
  return out;
}
