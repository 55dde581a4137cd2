/**
 * The alias value tokenizer: splits the right-hand side of an aliases(5)
 * entry (`bob, "|/usr/bin/vacation bob", /var/log/copy, :include:/etc/list`)
 * into its destinations, in internal form, as Postfix's local(8) does with
 * tok822_parse() and tok822_internalize().
 *
 * The value is read as an RFC 822 address list, permissively:
 * - destinations are separated by commas, and also by white space between
 *   two words (`a b` is two destinations: Postfix adds the missing comma),
 *   so a command with arguments must be quoted (`"|cmd arg"`);
 * - `"..."` quotes (the quotes are removed; `\` escapes a character), a
 *   backslash escapes one character outside quotes too;
 * - `(comments)` are dropped; `Name <addr>` gives `addr`; a group
 *   `name: a, b;` gives `a` and `b`;
 * - words joined by operators (`@ . % ! : |`) stay one destination, so
 *   `|/bin/cmd`, `/var/log/mail.txt` and `:include:/etc/list` are single
 *   items, and inside one destination no white space is kept.
 *
 * {@link classifyDestination} then says what a destination is, by its
 * first characters as Postfix's deliver_token(): `/file`, `~/file`,
 * `|command`, `:include:file` (case-insensitive), or a mail address.
 *
 * Pure: no I/O, never throws.
 *
 * @module
 */

/** Operator characters: single-character tokens (Postfix adds `| % !` to RFC 822's specials). */
const OPERATORS = new Set([...'|%!()<>@,;:\\".[]']);

const enum Kind {
  Word, // atom or quoted string
  DomainLiteral,
  Comment,
  Operator,
}

interface Token {
  kind: Kind;
  /** The text in internal form (quotes and escapes removed); the operator character. */
  text: string;
}

function isSpace(c: string): boolean {
  return c === " " || c === "\t" || c === "\r" || c === "\n";
}

/**
 * Collects characters from `s` at `i` while `more(c)` holds, a backslash
 * taking the next character literally; white space becomes a space.
 * Returns the text and the index of the first character not taken.
 */
function collect(s: string, i: number, more: (c: string) => boolean): [string, number] {
  let out = "";
  while (i < s.length) {
    let c = s[i];
    if (c === "\\") {
      if (i + 1 >= s.length) {
        i++;
        break;
      }
      c = s[++i];
    } else if (!more(c)) {
      break;
    }
    out += isSpace(c) ? " " : c;
    i++;
  }
  return [out, i];
}

/** Splits a value into words, literals, comments and operators. */
function scan(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i++];
    if (isSpace(c)) continue;
    if (c === "(") {
      let depth = 1;
      let text = "(";
      while (i < s.length && depth > 0) {
        const d = s[i++];
        text += d;
        if (d === "(") depth++;
        else if (d === ")") depth--;
        else if (d === "\\" && i < s.length) text += s[i++];
      }
      out.push({ kind: Kind.Comment, text });
    } else if (c === "[" || c === '"') {
      const close = c === "[" ? "]" : '"';
      const [text, next] = collect(s, i, (d) => d !== close);
      i = next < s.length ? next + 1 : next;
      out.push({ kind: c === "[" ? Kind.DomainLiteral : Kind.Word, text });
    } else if (c !== "\\" && OPERATORS.has(c)) {
      out.push({ kind: Kind.Operator, text: c });
    } else {
      const [text, next] = collect(s, i - 1, (d) => !isSpace(d) && !OPERATORS.has(d));
      i = next;
      out.push({ kind: Kind.Word, text });
    }
  }
  return out;
}

function isWord(t: Token): boolean {
  return t.kind === Kind.Word || t.kind === Kind.DomainLiteral;
}

function isOp(t: Token | undefined, chars: string): boolean {
  return t !== undefined && t.kind === Kind.Operator && chars.includes(t.text);
}

/** One destination's tokens in internal form: texts joined, literals in brackets. */
function internalize(toks: Token[]): string {
  return toks.map((t) => (t.kind === Kind.DomainLiteral ? `[${t.text}]` : t.text)).join("");
}

/**
 * The destinations of an alias value, in order, in internal form. Empty
 * items (`a,,b`) and comments are left out; an empty or comment-only
 * value gives [].
 */
export function parseAliasValue(value: string): string[] {
  // Comments never belong to a destination; dropping them first gives the
  // same grouping as parsing around them.
  const toks = scan(value).filter((t) => t.kind !== Kind.Comment);
  const found: Token[][] = [];
  const take = (from: number, to: number) => {
    if (to > from) found.push(toks.slice(from, to));
  };
  // Right to left, as Postfix: `right` ends the destination being gathered.
  let right = toks.length;
  let wordOk = true; // a word here does not need a comma before the word to its right
  let group = false;
  let i = toks.length - 1;
  while (i >= 0) {
    const t = toks[i];
    if (isOp(t, ";")) {
      take(i + 1, right);
      right = i;
      group = true;
      wordOk = true;
    } else if (isOp(t, ":") && group) {
      take(i + 1, right);
      // The group's name is not a destination: skip back to the previous comma.
      let j = i - 1;
      while (j >= 0 && !isOp(toks[j], ",")) j--;
      right = Math.max(j, 0);
      i = j;
      continue;
    } else if (isOp(t, ">")) {
      take(i + 1, right);
      let open = i - 1;
      while (open >= 0 && !isOp(toks[open], "<")) open--;
      take(open + 1, i);
      // The display name before "<" is not a destination.
      let j = open - 1;
      while (j >= 0 && !isOp(toks[j], ">;,:")) j--;
      right = Math.max(j, 0);
      wordOk = true;
      i = j;
      continue;
    } else if (isWord(t)) {
      if (!wordOk) {
        take(i + 1, right);
        right = i + 1;
      }
      wordOk = false;
    } else if (isOp(t, ",")) {
      take(i + 1, right);
      right = i;
      wordOk = true;
    } else {
      wordOk = true;
    }
    i--;
  }
  take(0, right);
  return found.reverse().map(internalize).filter((d) => d !== "");
}

/** What one destination of an alias is. */
export type Destination =
  | { kind: "address"; address: string }
  | { kind: "file"; path: string }
  /** `~/path` or `~user/path`, relative to a home directory. */
  | { kind: "home"; path: string }
  | { kind: "command"; command: string }
  | { kind: "include"; path: string };

/** Classifies one destination as Postfix's deliver_token(). */
export function classifyDestination(item: string): Destination {
  if (item.startsWith("/")) return { kind: "file", path: item };
  if (item.startsWith("~")) return { kind: "home", path: item };
  if (item.startsWith("|")) return { kind: "command", command: item.slice(1) };
  if (item.slice(0, 9).toLowerCase() === ":include:") {
    return { kind: "include", path: item.slice(9) };
  }
  return { kind: "address", address: item };
}
