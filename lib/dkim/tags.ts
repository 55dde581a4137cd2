/**
 * Tag=value lists (RFC 6376 section 3.2), the syntax of DKIM-Signature
 * fields, DKIM key records and ARC's header fields, and the base64 values
 * they carry (b=, bh=, p=).
 *
 * Strict where it matters: a tag given twice, a tag name that is not
 * ALPHA *(ALPHA / DIGIT / "_"), a spec without "=", or a value with a
 * character outside VALCHAR (printable ASCII but ";") is a
 * {@link TagListError}. Whitespace (WSP and folding) around names, around
 * "=" and around values is ignored, and kept inside values (h=from : to).
 * One leniency: empty specs (";;", a final ";") are skipped.
 *
 * Pure: no I/O.
 *
 * @module
 */

/** A tag list that does not follow RFC 6376 section 3.2; the message says where. */
export class TagListError extends Error {
  /** The error class's name, for messages and logs. */
  override readonly name = "TagListError";
}

const TAG_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const NOT_VALCHAR = /[^\x21-\x3a\x3c-\x7e \t\r\n]/;

/**
 * Parses a tag list into its tags in order of appearance, names as written
 * (they are case-sensitive), values without surrounding whitespace.
 */
export function parseTagList(text: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const spec of text.split(";")) {
    if (trimWhitespace(spec) === "") continue;
    const eq = spec.indexOf("=");
    if (eq < 0) throw new TagListError(`"${clip(spec)}" has no "="`);
    const name = trimWhitespace(spec.slice(0, eq));
    if (!TAG_NAME.test(name)) throw new TagListError(`"${clip(name)}" is not a tag name`);
    const value = trimWhitespace(spec.slice(eq + 1));
    if (NOT_VALCHAR.test(value)) {
      throw new TagListError(`the value of ${name}= has a character not allowed in a tag value`);
    }
    if (tags.has(name)) throw new TagListError(`${name}= is given twice`);
    tags.set(name, value);
  }
  return tags;
}

/**
 * A text without SP, HTAB, CR and LF at either end. A loop, not a regular
 * expression: /[ \t]+$/ takes quadratic time on a long run of whitespace
 * followed by something else, which a message's sender can write.
 */
export function trimWhitespace(s: string): string {
  const space = (c: number) => c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
  let start = 0;
  let end = s.length;
  while (start < end && space(s.charCodeAt(start))) start++;
  while (end > start && space(s.charCodeAt(end - 1))) end--;
  return s.slice(start, end);
}

/** A value with all whitespace removed, as base64 values (b=, bh=, p=) are read. */
export function compact(value: string): string {
  return value.replace(/[ \t\r\n]+/g, "");
}

/**
 * Decodes a base64 value (whitespace allowed, padding optional), or
 * returns undefined when it is not base64.
 */
export function decodeBase64(value: string): Uint8Array | undefined {
  try {
    return Uint8Array.fromBase64(value);
  } catch {
    return undefined;
  }
}

/** The start of a long text, for messages. */
function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}
