/**
 * Mail addresses: the SMTP envelope path of MAIL FROM / RCPT TO (RFC 5321)
 * with Postfix's leniency, RFC 5322 header address lists, and the quoting
 * and domain normalization shared by the daemons.
 *
 * Addresses are kept in Postfix's internal form: quotes and backslash
 * escapes removed (`"john doe"@example.com` is `john doe@example.com`).
 * Since a domain never contains "@", the last "@" always separates local
 * part and domain. {@link quoteAddress} is the one formatter that puts the
 * quotes back (logs, headers); {@link formatPath} wraps it for the SMTP wire
 * and {@link headerAddress} for header fields.
 *
 * Pure: no DNS, no lookup tables. Whether a domain exists or is ours is
 * decided elsewhere (lib/resolve, trivial-rewrite's role). The canonical
 * form (Postfix's "local" rewriting context) is {@link rewriteAddress}, in
 * rewrite.ts.
 */

/** Bad address or parameter syntax; `part` says which, for the SMTP reply. */
export class AddressError extends Error {
  override readonly name = "AddressError";
  constructor(message: string, readonly part: "address" | "parameter" = "address") {
    super(message);
  }
}

/** An envelope address with its ESMTP parameters. */
export interface MailPath {
  /** Internal form; "" for the null sender `<>`. */
  address: string;
  /**
   * Parameter keyword (uppercased) -> value ("" for `KEY=`), or null for a
   * keyword without "=". A word that is no ESMTP keyword (`<x@y>`, `=1`) is
   * kept as sent, with null: the caller refuses it as an unsupported option.
   */
  params: Map<string, string | null>;
  /** Each parameter as the client sent it, by its key in `params` (for Postfix's replies). */
  sent: Map<string, string>;
  /** Keys given more than once (`params` holds the last value); DSN parameters must not repeat. */
  repeated: Set<string>;
}

/** Options for {@link parseMailPath}. */
export interface ParseMailPathOptions {
  /** Accept the null path `<>` (MAIL FROM). @default false */
  allowEmpty?: boolean;
  /** Accept UTF-8 (the client sent SMTPUTF8). @default false */
  smtputf8?: boolean;
}

/**
 * Parses the argument of MAIL FROM: / RCPT TO: (the text after the colon),
 * e.g. `<local@domain> SIZE=123 BODY=8BITMIME`.
 *
 * Like Postfix with `strict_rfc821_envelopes = no`: spaces after the colon,
 * an address without angle brackets or with extra ones (`<<a@b>>`,
 * `a@b>`), a source route `<@a,@b:user@d>` (removed), quoted local parts, dots anywhere in the local part, and, as
 * Postfix's parser reads them, an unquoted "@" between words
 * (`<user@remote@ours>`, the domain is after the last "@") and a bracketed
 * part (`<user%[192.0.2.1]@ours>`) in the local part are accepted, as
 * are a quoted pair outside quotes (`a\@b`) and control characters other
 * than NUL, CR and LF inside a quoted string (`"a<TAB>b"`), which
 * {@link formatPath} still refuses to write to SMTP; an address without a
 * domain (`<postmaster>`) is returned as is. A "<" never closed, an
 * unbalanced quote, two addresses (`<a@b><c@d>`), other control characters,
 * and 8-bit characters without `smtputf8` are rejected.
 *
 * @throws {AddressError} with a short reason for the log.
 */
export function parseMailPath(arg: string, opts: ParseMailPathOptions = {}): MailPath {
  checkChars(arg, opts.smtputf8 ?? false);
  const n = arg.length;
  let i = skipBlanks(arg, 0);
  if (i === n) throw new AddressError("missing address");
  // The path is one word, as Postfix's smtpd_token reads it: it ends at a
  // blank outside quotes and angle brackets; a "<" that is never closed
  // makes it bad syntax, a stray ">" does not.
  let j = i;
  let depth = 0;
  let quoted = false;
  for (; j < n; j++) {
    const c = arg[j];
    if (c === "\\") j++;
    else if (c === '"') quoted = !quoted;
    else if (quoted) continue;
    else if (c === "<") depth++;
    else if (c === ">") depth = Math.max(0, depth - 1);
    else if (depth === 0 && isBlank(arg.charCodeAt(j))) break;
  }
  if (quoted) throw new AddressError("unbalanced quote");
  if (depth > 0) throw new AddressError('unbalanced "<"');
  const word = arg.slice(i, Math.min(j, n));
  i = j;
  // One pair of brackets around it is taken off (extract_addr); brackets left
  // (`<<a@b>>`, `a@b>`) are ignored, as Postfix's address parser does, but
  // they still separate words: `<a@b>x` or `<a@b><c@d>` is two addresses.
  const text = word.length >= 2 && word[0] === "<" && word[word.length - 1] === ">"
    ? word.slice(1, -1)
    : word;
  const words = splitUnquoted(text, "<>").map(trimBlanks).filter((w) => w !== "");
  if (words.length > 1) throw new AddressError("more than one address");
  const address = parseInner(words[0] ?? "", true);
  if (address === "" && !(opts.allowEmpty ?? false)) {
    throw new AddressError("null address not allowed here");
  }
  return { address, ...parseParams(arg.slice(i)) };
}

/** `s` split at each character of `seps` outside quotes (a backslash escapes the next character). */
function splitUnquoted(s: string, seps: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let from = 0;
  for (let j = 0; j < s.length; j++) {
    const c = s[j];
    if (c === "\\") j++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && seps.includes(c)) {
      out.push(s.slice(from, j));
      from = j + 1;
    }
  }
  out.push(s.slice(from));
  return out;
}

/** The mailbox inside (or without) angle brackets, to internal form. */
function parseInner(s: string, routeAllowed: boolean): string {
  if (s === "") return "";
  if (s[0] === "@") {
    // Postfix drops everything up to the first ":" unread (`<@a,b:user@d>`);
    // what is left may be empty: `MAIL FROM:<@a:>` is the null sender.
    const colon = s.indexOf(":");
    if (!routeAllowed || colon < 0) throw new AddressError("bad source route");
    s = trimBlanks(s.slice(colon + 1));
    if (s === "") return "";
  }
  // The last "@" outside quotes separates local part and domain.
  let at = -1;
  let quoted = false;
  for (let j = 0; j < s.length; j++) {
    const c = s[j];
    if (quoted) {
      if (c === "\\") j++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === "\\") j++; // a quoted pair outside quotes (`a\@b`), as Postfix's parser reads it
    else if (c === "@") at = j;
  }
  if (quoted) throw new AddressError("unbalanced quote");
  const local = unquoteLocal(at < 0 ? s : s.slice(0, at));
  if (at < 0) {
    // Without a domain, a quoted "@" would make the internal form ambiguous.
    if (local.includes("@")) throw new AddressError("quoted @ in an address without domain");
    return local;
  }
  const domain = s.slice(at + 1);
  if (local === "") throw new AddressError("empty local part");
  if (domain === "") throw new AddressError("empty domain");
  if (!validDomain(domain)) throw new AddressError("bad domain syntax");
  return local + "@" + domain;
}

/** Removes quotes and escapes from a local part, checking unquoted characters. */
function unquoteLocal(s: string): string {
  let out = "";
  for (let j = 0; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 34) {
      for (j++; j < s.length && s.charCodeAt(j) !== 34; j++) {
        let q = s.charCodeAt(j);
        if (q === 92) q = s.charCodeAt(++j);
        if (isLineBreakOrNul(q)) throw new AddressError("control character in quoted string");
        out += String.fromCharCode(q);
      }
    } else if (isAtext(c) || c === 46) {
      out += s[j];
    } else if (c === 92 && j + 1 < s.length && (isAtext(s.charCodeAt(j + 1)) || s[j + 1] === "@")) {
      // A quoted pair outside quotes (`a\@b`, `a\b`): Postfix takes the character as is.
      out += s[++j];
    } else if (c === 64 && j > 0 && s[j - 1] !== "@" && j + 1 < s.length && s[j + 1] !== "@") {
      // An unquoted "@" between words (`user@remote@ours`) is kept, as
      // Postfix's parser does: the last "@" separates the domain and the
      // resolver sees the rest. An empty word (`b@@ours`) is bad syntax.
      out += s[j];
    } else if (c === 91) {
      // A bracketed part (`user%[192.0.2.1]@ours`), which Postfix's parser
      // reads as one token, as in a domain literal.
      const close = s.indexOf("]", j);
      const inner = close < 0 ? "" : s.slice(j + 1, close);
      // deno-lint-ignore no-control-regex
      if (close < 0 || /[[\\\x00-\x20\x7f]/.test(inner)) {
        throw new AddressError('invalid character "[" in local part');
      }
      out += s.slice(j, close + 1);
      j = close;
    } else {
      throw new AddressError(`invalid character ${JSON.stringify(s[j])} in local part`);
    }
  }
  return out;
}

/** Host name labels (trailing dot allowed) or an address literal; UTF-8 passes if present. */
function validDomain(d: string): boolean {
  if (d.length === 0 || d.length > 255) return false;
  if (d[0] === "[") {
    if (d.length < 3 || d[d.length - 1] !== "]") return false;
    for (let j = 1; j < d.length - 1; j++) {
      const c = d.charCodeAt(j);
      if (c === 91 || c === 92 || c === 93 || c <= 32 || c === 127) return false;
    }
    return true;
  }
  let labelLen = 0;
  for (let j = 0; j < d.length; j++) {
    const c = d.charCodeAt(j);
    if (c === 46) {
      if (labelLen === 0) return false;
      labelLen = 0;
    } else if (
      (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 ||
      c === 95 || c >= 128
    ) {
      labelLen++;
    } else {
      return false;
    }
  }
  return true;
}

const KEYWORD_RE = /^[A-Za-z0-9][A-Za-z0-9-]*$/;

/** ESMTP parameters after the path: `SIZE=123 BODY=8BITMIME`. */
function parseParams(s: string): Pick<MailPath, "params" | "sent" | "repeated"> {
  const params = new Map<string, string | null>();
  const sent = new Map<string, string>();
  const repeated = new Set<string>();
  for (const tok of s.split(/[ \t\v\f]+/)) {
    if (tok === "") continue;
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x1f\x7f]/.test(tok)) throw new AddressError("control character in parameter");
    const eq = tok.indexOf("=");
    const key = eq < 0 ? tok : tok.slice(0, eq);
    // Postfix answers any word it does not know with "Unsupported option: <word>".
    const known = KEYWORD_RE.test(key);
    const name = known ? key.toUpperCase() : tok;
    if (params.has(name)) repeated.add(name);
    params.set(name, known && eq >= 0 ? tok.slice(eq + 1) : null);
    sent.set(name, tok);
  }
  return { params, sent, repeated };
}

/** NUL, CR and LF: never part of an address, not even quoted. */
function isLineBreakOrNul(c: number): boolean {
  return c === 0 || c === 10 || c === 13;
}

/**
 * Rejects control characters (inside a quoted string, as Postfix, only NUL,
 * CR and LF), 8-bit without SMTPUTF8, and malformed UTF-16/UTF-8.
 */
function checkChars(s: string, smtputf8: boolean): void {
  let quoted = false;
  for (let j = 0; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c < 128) {
      if (quoted && c === 92 && j + 1 < s.length && s.charCodeAt(j + 1) < 128) {
        if (isLineBreakOrNul(s.charCodeAt(++j))) {
          throw new AddressError("control character in address");
        }
        continue;
      }
      if (c === 34) quoted = !quoted;
      if ((c < 32 && !isBlank(c)) || c === 127) {
        if (!quoted || isLineBreakOrNul(c)) throw new AddressError("control character in address");
      }
      continue;
    }
    if (!smtputf8) throw new AddressError("8-bit character in address without SMTPUTF8");
    // U+FFFD marks bytes that were not valid UTF-8 (see parseCommand).
    if (c === 0xfffd) throw new AddressError("invalid UTF-8 in address");
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(j + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) throw new AddressError("invalid UTF-8 in address");
      j++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      throw new AddressError("invalid UTF-8 in address");
    }
  }
}

/** RFC 5322 atext, with anything non-ASCII allowed (RFC 6531). */
function isAtext(c: number): boolean {
  if (c >= 128) return true;
  if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57)) return true;
  return c > 32 && c < 127 && "!#$%&'*+-/=?^_`{|}~".includes(String.fromCharCode(c));
}

/** Space, TAB, VT and FF separate words, as Postfix's SMTP tokenizer reads them. */
function isBlank(c: number): boolean {
  return c === 32 || c === 9 || c === 11 || c === 12;
}

function trimBlanks(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isBlank(s.charCodeAt(a))) a++;
  while (b > a && isBlank(s.charCodeAt(b - 1))) b--;
  return s.slice(a, b);
}

function skipBlanks(s: string, i: number): number {
  while (i < s.length && isBlank(s.charCodeAt(i))) i++;
  return i;
}

/**
 * Splits an internal-form address at its last "@" (a domain never contains
 * one). `domain` is "" when there is no "@".
 */
export function splitAddress(address: string): { local: string; domain: string } {
  const at = address.lastIndexOf("@");
  if (at < 0) return { local: address, domain: "" };
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}

// --- The one formatter: internal form to external (quoted) form ---

/**
 * The external form of an internal-form address, as Postfix's
 * quote_822_local() writes it (8-bit clean): the local part unchanged when
 * it is a dot-atom, otherwise in double quotes with `"` and `\` escaped by
 * a backslash; the domain as is. `john doe@example.com` becomes
 * `"john doe"@example.com`, `"v@t.example> X"@o.example` stays one
 * quoted local part. "" (the null sender) stays "".
 *
 * This is the form for log lines (`from=<...>`), SMTP commands and header
 * fields; it never throws. It does not remove control characters: use
 * {@link formatPath} for the SMTP wire and {@link headerAddress} for
 * header fields, which refuse or mask them. Log lines are masked by the
 * logger.
 */
export function quoteAddress(address: string): string {
  if (address === "") return "";
  const at = address.lastIndexOf("@");
  if (at < 0) return quoteLocal(address);
  return quoteLocal(address.slice(0, at)) + address.slice(at);
}

/**
 * The SMTP wire form of an internal-form address for MAIL FROM / RCPT TO:
 * `<` {@link quoteAddress} `>`, and `<>` for "" (like Postfix's
 * `smtp_quote_rfc821_envelope = yes`).
 *
 * Throws {@link AddressError} for an address that cannot be written into
 * an SMTP command safely: a control character anywhere (RFC 5321 allows
 * none, not even quoted; a CR or LF would end the command line), text
 * that was not valid UTF-8 (U+FFFD, lone surrogates), or a domain that is not a host name or address
 * literal (it is written unquoted, so `a@b> X=y` must not pass). Such an
 * address can never be delivered by SMTP: the caller bounces it.
 */
export function formatPath(address: string): string {
  if (address === "") return "<>";
  for (let j = 0; j < address.length; j++) {
    const c = address.charCodeAt(j);
    if (c < 32 || c === 127) throw new AddressError("control character in address");
    // U+FFFD marks bytes that were not valid UTF-8 (see parseMailPath).
    if (c === 0xfffd) throw new AddressError("invalid UTF-8 in address");
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = address.charCodeAt(j + 1);
      if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) {
        throw new AddressError("invalid UTF-8 in address");
      }
      j++;
    }
  }
  const at = address.lastIndexOf("@");
  // An address literal may hold "<" or ">" (RFC 5321 dcontent) but no real one does.
  if (at >= 0 && (!validDomain(address.slice(at + 1)) || /[<>"]/.test(address.slice(at + 1)))) {
    throw new AddressError("bad domain syntax");
  }
  return "<" + quoteAddress(address) + ">";
}

/**
 * The external form for a header field (Return-Path, Delivered-To, To,
 * DSN fields): {@link quoteAddress} with every control character replaced
 * by "?", so that no address can end the header line or start another.
 * Non-ASCII (SMTPUTF8) text is kept.
 */
export function headerAddress(address: string): string {
  // deno-lint-ignore no-control-regex
  return quoteAddress(address).replace(/[\x00-\x1f\x7f]/g, "?");
}

/**
 * Quotes a local part unless it is a dot-atom (RFC 5322 atext, non-ASCII
 * allowed as RFC 6531 does, no leading, trailing or double dot); "" is
 * `""`. Inside the quotes `"` and `\` get a backslash.
 */
export function quoteLocal(local: string): string {
  let atom = local.length > 0 && local[0] !== "." && local[local.length - 1] !== ".";
  for (let j = 0; atom && j < local.length; j++) {
    const c = local.charCodeAt(j);
    atom = isAtext(c) || (c === 46 && local.charCodeAt(j + 1) !== 46);
  }
  return atom ? local : '"' + local.replace(/["\\]/g, "\\$&") + '"';
}

/** Lowercases a domain and removes one trailing dot. */
export function normalizeDomain(domain: string): string {
  const d = domain.toLowerCase();
  return d.endsWith(".") ? d.slice(0, -1) : d;
}

// --- RFC 5322 header address lists ---

const enum Tok {
  Atom,
  Quoted,
  Literal,
  Special,
}

interface Token {
  type: Tok;
  text: string;
}

const HEADER_SPECIALS = '()<>[]:;@\\,."';

/** Splits a header value into atoms, quoted strings, literals and specials; comments dropped. */
function tokenize(v: string): Token[] {
  const out: Token[] = [];
  const n = v.length;
  let i = 0;
  while (i < n) {
    const c = v[i];
    if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      i++;
    } else if (c === "(") {
      let depth = 0;
      for (; i < n; i++) {
        const d = v[i];
        if (d === "\\") i++;
        else if (d === "(") depth++;
        else if (d === ")" && --depth === 0) break;
      }
      i++;
    } else if (c === '"') {
      let text = "";
      let closed = false;
      for (i++; i < n; i++) {
        const d = v[i];
        if (d === '"') {
          closed = true;
          break;
        }
        if (d === "\\" && i + 1 < n) text += v[++i];
        else if (d !== "\r" && d !== "\n") text += d;
      }
      i++;
      // An unterminated quoted string poisons its item: make it invalid.
      out.push(closed ? { type: Tok.Quoted, text } : { type: Tok.Special, text: '"' });
    } else if (c === "[") {
      const close = v.indexOf("]", i);
      const end = close < 0 ? n : close + 1;
      const text = v.slice(i, end).replace(/[\r\n]/g, "");
      out.push(close < 0 ? { type: Tok.Special, text: "[" } : { type: Tok.Literal, text });
      i = end;
    } else if (HEADER_SPECIALS.includes(c)) {
      out.push({ type: Tok.Special, text: c });
      i++;
    } else {
      const start = i;
      while (i < n && !HEADER_SPECIALS.includes(v[i]) && !" \t\r\n".includes(v[i])) i++;
      out.push({ type: Tok.Atom, text: v.slice(start, i) });
    }
  }
  return out;
}

/**
 * Addresses in an RFC 5322 address-list header value (To, Cc, Bcc, From,
 * Reply-To): `A <a@x>, b@y, group: c@z;, "Q, R" <q@r>` gives
 * `["a@x", "b@y", "c@z", "q@r"]`. Display names, comments and group names
 * are dropped; source routes are removed; a lone word (`To: postmaster`)
 * is returned as a local address. Malformed items are skipped; never
 * throws.
 */
export function parseHeaderAddresses(value: string): string[] {
  const result: string[] = [];
  let item: Token[] = [];
  let depth = 0;
  let inGroup = false;
  const finish = () => {
    const a = itemAddress(item);
    if (a !== null) result.push(a);
    item = [];
  };
  for (const t of tokenize(value)) {
    if (t.type === Tok.Special && depth === 0 && t.text === ",") {
      finish();
    } else if (t.type === Tok.Special && depth === 0 && t.text === ":" && !inGroup) {
      item = [];
      inGroup = true;
    } else if (t.type === Tok.Special && depth === 0 && t.text === ";") {
      finish();
      inGroup = false;
    } else {
      if (t.type === Tok.Special && t.text === "<") depth++;
      else if (t.type === Tok.Special && t.text === ">" && depth > 0) depth--;
      item.push(t);
    }
  }
  finish();
  return result;
}

/** The address of one list item: the angle-addr if any, else the whole item as addr-spec. */
function itemAddress(item: Token[]): string | null {
  let spec = item;
  const open = item.findIndex((t) => t.type === Tok.Special && t.text === "<");
  if (open >= 0) {
    const close = item.findIndex((t, k) => k > open && t.type === Tok.Special && t.text === ">");
    if (close < 0) return null;
    spec = item.slice(open + 1, close);
    if (spec.length > 0 && spec[0].type === Tok.Special && spec[0].text === "@") {
      const colon = spec.findIndex((t) => t.type === Tok.Special && t.text === ":");
      if (colon < 0) return null;
      spec = spec.slice(colon + 1);
    }
  }
  return addrSpec(spec);
}

/** `word *("." word) ["@" domain]` to internal form, or null. Stray dots are tolerated. */
function addrSpec(toks: Token[]): string | null {
  let local = "";
  let k = 0;
  let lastWord = false;
  for (; k < toks.length; k++) {
    const t = toks[k];
    if (t.type === Tok.Atom || t.type === Tok.Quoted) {
      if (lastWord) return null;
      if (t.type === Tok.Atom && !validAtom(t.text)) return null;
      if (t.type === Tok.Quoted && hasControl(t.text)) return null;
      local += t.text;
      lastWord = true;
    } else if (t.type === Tok.Special && t.text === ".") {
      local += ".";
      lastWord = false;
    } else break;
  }
  if (local === "" || local === ".".repeat(local.length)) return null;
  if (k === toks.length) return local;
  if (toks[k].type !== Tok.Special || toks[k].text !== "@") return null;
  const rest = toks.slice(k + 1);
  let domain: string;
  if (rest.length === 1 && rest[0].type === Tok.Literal) {
    domain = rest[0].text;
  } else {
    domain = "";
    for (const t of rest) {
      if (t.type === Tok.Atom || (t.type === Tok.Special && t.text === ".")) domain += t.text;
      else return null;
    }
  }
  return validDomain(domain) ? local + "@" + domain : null;
}

function hasControl(s: string): boolean {
  for (let j = 0; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c < 32 || c === 127) return true;
  }
  return false;
}

function validAtom(s: string): boolean {
  for (let j = 0; j < s.length; j++) if (!isAtext(s.charCodeAt(j))) return false;
  return true;
}

// --- Address extensions (recipient_delimiter) ---

/** Options for {@link splitExtension}. */
export interface SplitExtensionOptions {
  /** `double_bounce_sender`, never split. @default "double-bounce" */
  doubleBounceSender?: string;
}

/**
 * Splits a local part at the first `recipient_delimiter` character, as
 * Postfix's split_addr: `joe+foo` with "+" is `{ user: "joe", extension:
 * "+foo" }` (the extension keeps its delimiter, so `user + extension` gives
 * the local part back). Not split: postmaster, mailer-daemon, the double
 * bounce sender, `owner-*` and `*-request` when "-" is a delimiter, and a
 * local part that would be left empty (a leading delimiter) or that has no
 * delimiter. `extension` is "" when not split.
 */
export function splitExtension(
  local: string,
  delimiters: string,
  opts: SplitExtensionOptions = {},
): { user: string; extension: string } {
  const whole = { user: local, extension: "" };
  if (delimiters === "") return whole;
  const lower = local.toLowerCase();
  if (
    lower === "postmaster" || lower === "mailer-daemon" ||
    lower === (opts.doubleBounceSender ?? "double-bounce").toLowerCase()
  ) return whole;
  if (delimiters.includes("-")) {
    if (lower.startsWith("owner-")) return whole;
    if (lower.length > 8 && lower.endsWith("-request")) return whole;
  }
  let i = 0;
  while (i < local.length && !delimiters.includes(local[i])) i++;
  if (i === 0 || i === local.length) return whole;
  return { user: local.slice(0, i), extension: local.slice(i) };
}

// --- Canonical form (trivial-rewrite's "local" context), see rewrite.ts ---

export {
  quotedLocalPart,
  rewriteAddress,
  type RewriteContext,
  stripSourceRoute,
  stripTrailingDot,
} from "./rewrite.ts";
