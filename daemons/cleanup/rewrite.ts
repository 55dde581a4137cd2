/**
 * cleanup's one-to-one address rewriting, as Postfix's cleanup_map11.c,
 * cleanup_masquerade.c and the header half of cleanup_message.c:
 *
 * - {@link mapOne}: canonical_maps and friends. The result of a lookup is
 *   looked up again until an address maps to itself or 10 rounds pass
 *   ("unreasonable ... map nesting", logged, the last result kept). A
 *   multi-valued result uses its first address (logged). A result
 *   `@domain` keeps the original local part. An unmatched address
 *   extension is carried over when propagate_unmatched_extensions names
 *   "canonical".
 * - {@link masquerade}: masquerade_domains / masquerade_exceptions.
 * - {@link parseClasses}: canonical_classes, masquerade_classes.
 * - {@link headerKind} and {@link rewriteHeaderAddresses}: which header
 *   fields hold sender or recipient addresses (Postfix's header_opts.c) and
 *   the rewriting of each address in them. Only rewritten addresses
 *   change; the rest of the field keeps its text; a changed field is
 *   folded again.
 *
 * It does not append @$myorigin: that is trivial-rewrite's "rewrite
 * local" (cleanup.ts calls qualify() where Postfix calls it). Table errors
 * ({@link DictError}) propagate: the caller refuses the message with a
 * temporary error, never queues it half-rewritten.
 *
 * @module
 */
import { parseHeaderAddresses, quoteAddress, splitAddress } from "../../lib/address/mod.ts";
import { addressFind, type AddressSearchOptions, type Maps } from "../../lib/maps/mod.ts";

/** Postfix's MAX_RECURSION in cleanup_map11.c. */
const MAP11_MAX_ROUNDS = 10;

/** The four address classes of canonical_classes and masquerade_classes. */
export interface AddressClasses {
  envelopeSender: boolean;
  envelopeRecipient: boolean;
  headerSender: boolean;
  headerRecipient: boolean;
}

const CLASS_NAMES: Record<string, keyof AddressClasses> = {
  envelope_sender: "envelopeSender",
  envelope_recipient: "envelopeRecipient",
  header_sender: "headerSender",
  header_recipient: "headerRecipient",
};

/** A bad class name in a *_classes parameter (Postfix: fatal "bad ... value"). */
export class ClassesError extends Error {
  override readonly name = "ClassesError";
}

/**
 * Parses a *_classes parameter value (already split into words).
 *
 * @throws {ClassesError} naming the parameter and the unknown word.
 */
export function parseClasses(param: string, words: string[]): AddressClasses {
  const out: AddressClasses = {
    envelopeSender: false,
    envelopeRecipient: false,
    headerSender: false,
    headerRecipient: false,
  };
  for (const w of words) {
    const key = Object.hasOwn(CLASS_NAMES, w.toLowerCase())
      ? CLASS_NAMES[w.toLowerCase()]
      : undefined;
    if (!key) throw new ClassesError(`bad ${param} value: "${w}"`);
    out[key] = true;
  }
  return out;
}

/** How {@link mapOne} searches and reports. */
export interface MapOneOptions extends AddressSearchOptions {
  /** Carry an unmatched address extension over to the result. @default false */
  propagate?: boolean;
  /** Warnings, worded as Postfix's (the caller prefixes the queue id). */
  warn?: (message: string) => void;
  /**
   * Canonicalizes each result address, as Postfix's mail_addr_crunch does
   * with trivial-rewrite's "rewrite local" (a bare `joe` becomes
   * `joe@$myorigin`). @default unchanged
   */
  canonicalize?: (address: string) => string;
}

/**
 * The result of one mail_addr_map lookup: the addresses (internal form) the
 * value names, `@domain` expanded, the unmatched extension propagated.
 * undefined when the address is not in the tables.
 *
 * @throws {DictError} when a table cannot answer.
 */
export async function addrMap(
  maps: Maps,
  address: string,
  opts: MapOneOptions = {},
): Promise<string[] | undefined> {
  const hit = await addressFind(maps, address, opts);
  if (!hit) return undefined;
  const value = hit.value;
  if (value.startsWith("@")) {
    // "@otherdomain": the original user, without the unmatched extension.
    let local = splitAddress(address).local;
    if (address.lastIndexOf("@") < 0) local = address;
    if (hit.extension) local = local.slice(0, local.length - hit.extension.length);
    return [local + value];
  }
  const ext = opts.propagate ? hit.extension : "";
  const canon = opts.canonicalize ?? ((a: string) => a);
  // mail_addr_crunch: the value is an address list; a lone word is a local address.
  return parseHeaderAddresses(value).map((a) => canon(ext ? withExtension(a, ext) : a));
}

/** Inserts an extension ("+foo") before the "@" of an address, or at its end. */
function withExtension(address: string, ext: string): string {
  const at = address.lastIndexOf("@");
  return at < 0 ? address + ext : address.slice(0, at) + ext + address.slice(at);
}

/**
 * One-to-one mapping (cleanup_map11): the address after `maps`, applied
 * until it maps to itself or {@link MAP11_MAX_ROUNDS} rounds pass. An
 * address that is not found comes back unchanged.
 *
 * @throws {DictError} when a table cannot answer.
 */
export async function mapOne(
  maps: Maps,
  address: string,
  opts: MapOneOptions = {},
): Promise<string> {
  if (maps.empty) return address;
  let addr = address;
  for (let round = 0; round < MAP11_MAX_ROUNDS; round++) {
    const found = await addrMap(maps, addr, opts);
    if (found === undefined) return addr;
    if (found.length === 0) {
      opts.warn?.(`${maps.title} lookup of ${addr} returns non-address result`);
      return addr;
    }
    if (found.length > 1) opts.warn?.(`multi-valued ${maps.title} entry for ${addr}`);
    const next = found[0];
    const self = next.toLowerCase() === addr.toLowerCase();
    addr = next;
    if (self) return addr;
  }
  opts.warn?.(`unreasonable ${maps.title} map nesting for ${addr}`);
  return addr;
}

/** masquerade_domains and masquerade_exceptions, ready to use. */
export interface Masquerade {
  /** The domains in order; a leading "!" (or an odd number of them) means "do not strip". */
  domains: string[];
  /** Local parts (lower case) never masqueraded. */
  exceptions: Set<string>;
}

/**
 * Strips subdomains below a masquerade domain (cleanup_masquerade): with
 * `example.com`, `joe@host.sub.example.com` becomes `joe@example.com`. The
 * first listed domain that is the address's domain or a parent of it
 * decides; `!host.example.com` before `example.com` keeps that host.
 */
export function masquerade(address: string, m: Masquerade): string {
  const at = address.lastIndexOf("@");
  if (at < 0 || m.domains.length === 0) return address;
  if (m.exceptions.size > 0 && m.exceptions.has(address.slice(0, at).toLowerCase())) return address;
  const domain = address.slice(at + 1);
  const lower = domain.toLowerCase();
  for (let masq of m.domains) {
    let strip = true;
    while (masq.startsWith("!")) {
      strip = !strip;
      masq = masq.slice(1);
    }
    if (masq === "") continue;
    const lm = masq.toLowerCase();
    if (lm.length === lower.length) {
      if (lm === lower) break;
    } else if (lm.length < lower.length) {
      if (lower.endsWith(lm) && lower[lower.length - lm.length - 1] === ".") {
        return strip ? address.slice(0, at + 1) + masq : address;
      }
    }
  }
  return address;
}

/** What a header field holds for rewriting: sender or recipient addresses, or neither. */
export type HeaderKind = "sender" | "recipient" | undefined;

/** Postfix's header_opts.c: fields with HDR_OPT_SENDER or HDR_OPT_RECIP/XRECIP. */
const HEADER_KINDS: Record<string, HeaderKind> = {
  "apparently-to": "recipient",
  "bcc": "recipient",
  "cc": "recipient",
  "disposition-notification-to": "sender",
  "errors-to": "sender",
  "from": "sender",
  "mail-followup-to": "sender",
  "reply-to": "sender",
  "resent-bcc": "recipient",
  "resent-cc": "recipient",
  "resent-from": "sender",
  "resent-reply-to": "recipient",
  "resent-sender": "sender",
  "resent-to": "recipient",
  "return-path": "sender",
  "return-receipt-to": "sender",
  "sender": "sender",
  "to": "recipient",
};

/** The MIME fields (HDR_OPT_MIME): checked by mime_header_checks wherever they appear. */
const MIME_HEADERS = new Set([
  "content-description",
  "content-disposition",
  "content-id",
  "content-transfer-encoding",
  "content-type",
  "mime-version",
]);

/** Whether a header field (by name) holds sender or recipient addresses. */
export function headerKind(name: string): HeaderKind {
  // Own keys only: a header named "constructor" or "__proto__" is no address field.
  const key = name.trim().toLowerCase();
  return Object.hasOwn(HEADER_KINDS, key) ? HEADER_KINDS[key] : undefined;
}

/** True for the MIME header fields that mime_header_checks inspects. */
export function isMimeHeader(name: string): boolean {
  return MIME_HEADERS.has(name.trim().toLowerCase());
}

/**
 * Rewrites each address of an address-list header value with `rewrite`
 * (internal form in, internal form out). Returns the new value, or
 * undefined when no address changed. Display names, comments, groups and
 * white space stay as they were; a rewritten address is written in
 * external (quoted) form.
 *
 * @throws whatever `rewrite` throws (a DictError).
 */
export async function rewriteHeaderAddresses(
  value: string,
  rewrite: (address: string) => Promise<string>,
): Promise<string | undefined> {
  let out = "";
  let changed = false;
  let pos = 0;
  for (const span of addressSpans(value)) {
    const text = value.slice(span.start, span.end);
    const parsed = parseHeaderAddresses(text);
    if (parsed.length !== 1) continue;
    const next = await rewrite(parsed[0]);
    if (next === parsed[0]) continue;
    out += value.slice(pos, span.start) + quoteAddress(next);
    pos = span.end;
    changed = true;
  }
  if (!changed) return undefined;
  return out + value.slice(pos);
}

/** Where the addr-spec of each list item sits: inside `<...>`, or the item without comments. */
function addressSpans(value: string): { start: number; end: number }[] {
  const spans: { start: number; end: number }[] = [];
  let itemStart = 0;
  let angleStart = -1;
  let angle: { start: number; end: number } | null = null;
  let inGroup = false;
  const finish = (end: number) => {
    if (angle) spans.push(angle);
    else {
      // The item without surrounding blanks and comments (no regex: linear
      // on hostile input).
      let s = itemStart;
      let e = end;
      for (;;) {
        while (s < e && /\s/.test(value[s])) s++;
        if (value[s] !== "(") break;
        let close = s + 1;
        while (close < e && value[close] !== ")") close++;
        if (close >= e) break;
        s = close + 1;
      }
      for (;;) {
        while (e > s && /\s/.test(value[e - 1])) e--;
        if (value[e - 1] !== ")") break;
        let open = e - 2;
        while (open >= s && value[open] !== "(") open--;
        if (open < s) break;
        e = open;
      }
      if (e > s) spans.push({ start: s, end: e });
    }
    angle = null;
    angleStart = -1;
  };
  let i = 0;
  let depth = 0; // comment depth
  while (i < value.length) {
    const c = value[i];
    if (depth > 0) {
      if (c === "\\") i++;
      else if (c === "(") depth++;
      else if (c === ")") depth--;
      i++;
      continue;
    }
    if (c === "(") {
      depth = 1;
      i++;
    } else if (c === '"') {
      for (i++; i < value.length && value[i] !== '"'; i++) if (value[i] === "\\") i++;
      i++;
    } else if (c === "[") {
      const close = value.indexOf("]", i);
      i = close < 0 ? value.length : close + 1;
    } else if (c === "<") {
      angleStart = i + 1;
      i++;
    } else if (c === ">" && angleStart >= 0) {
      angle = { start: angleStart, end: i };
      angleStart = -1;
      i++;
    } else if (c === ":" && angleStart < 0 && !inGroup) {
      inGroup = true;
      itemStart = i + 1;
      i++;
    } else if ((c === "," || c === ";") && angleStart < 0) {
      finish(i);
      if (c === ";") inGroup = false;
      itemStart = i + 1;
      i++;
    } else i++;
  }
  finish(value.length);
  return spans;
}
