/**
 * MIME structure of a message body, line by line, for content inspection:
 * which body lines are the headers of a multipart part, which are the
 * headers of an attached message (message/rfc822), and which are body text,
 * as Postfix's mime_state sees them for header_checks, mime_header_checks,
 * nested_header_checks and body_checks.
 *
 * It follows multipart boundaries (nested multiparts included) and
 * message/rfc822 attachments, and it joins a part header with its
 * continuation lines into one logical header. It does not decode anything
 * (base64, quoted-printable, RFC 2047), does not check 8-bit or encoding
 * domains, and does not report MIME errors: a malformed structure is read
 * as body text. Pure: it takes lines and returns events.
 *
 * @module
 */

/** What kind of header block a part header belongs to (Postfix's MIME_HDR_*). */
export type MimeHeaderClass = "multipart" | "nested";

/** One unit of body output, in order. */
export type MimeEvent =
  /** A body line (boundary lines and blank lines included), raw with its line end. */
  | { kind: "body"; raw: Uint8Array }
  /**
   * A complete logical header of a part: its raw lines (line ends
   * included), and whether it is in a multipart part or an attached message.
   */
  | { kind: "header"; headerClass: MimeHeaderClass; lines: Uint8Array[] };

/** The media type and boundary of a Content-Type value. */
export interface ContentType {
  /** "type/subtype", lower case; "" when unparseable. */
  type: string;
  /** The boundary parameter, or "". */
  boundary: string;
}

/**
 * Parses a Content-Type value: `multipart/mixed; boundary="b1"`. Comments
 * are not supported (rare in practice); a value that does not parse gives
 * type "".
 */
export function parseContentType(value: string): ContentType {
  const semi = value.indexOf(";");
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  let boundary = "";
  if (semi >= 0) {
    const re = /;\s*([A-Za-z0-9_.*'-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
    const params = value.slice(semi);
    let m: RegExpExecArray | null;
    while ((m = re.exec(params)) !== null) {
      if (m[1].toLowerCase() === "boundary") {
        boundary = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3];
        break;
      }
    }
  }
  return { type: /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type) ? type : "", boundary };
}

const dec = new TextDecoder();
/** Deepest multipart nesting followed, as Postfix's mime_nesting_limit default. */
const NESTING_LIMIT = 100;

type State = "body" | "header";

/**
 * Walks the body of a message whose primary Content-Type is given. Feed it
 * complete lines (each with its line end, the last one may have none) with
 * {@link push}; call {@link end} after the last line.
 */
export class MimeScanner {
  #state: State = "body";
  #headerClass: MimeHeaderClass = "multipart";
  /** Open multipart boundaries, outermost first, and whether each is a multipart/digest. */
  #boundaries: { boundary: string; digest: boolean }[] = [];
  /** The part header being collected. */
  #current: Uint8Array[] = [];
  /** The Content-Type of the header block being read (or its default). */
  #partType: ContentType = NO_TYPE;

  /** @param primary the Content-Type value of the message header ("" when none). */
  constructor(primary: string) {
    this.#partType = parseContentType(primary);
    this.#endHeaders(true);
  }

  /** True while the line just pushed belongs to a part's body text (not headers). */
  get inBody(): boolean {
    return this.#state === "body";
  }

  /** Takes one line; returns what it completes. */
  push(line: Uint8Array): MimeEvent[] {
    const out: MimeEvent[] = [];
    if (this.#state === "header") {
      const first = line[0];
      if ((first === 0x20 || first === 0x09) && this.#current.length > 0) {
        this.#current.push(line);
        return out;
      }
      this.#flushHeader(out);
      if (isHeaderLine(line)) {
        this.#current.push(line);
        return out;
      }
      // A blank line ends the block; so does any other line, which is then
      // body text (it may be a boundary), as in Postfix's mime_state.
      const blank = isBlank(line);
      this.#endHeaders(blank);
      if (blank) out.push({ kind: "body", raw: line });
      else out.push(...this.push(line));
      return out;
    }
    if (line[0] === 0x2d && line[1] === 0x2d && this.#boundaries.length > 0) {
      // Postfix matches "--boundary" as a prefix (trailing cruft ignored),
      // innermost multipart first.
      const text = dec.decode(line.subarray(2));
      for (let i = this.#boundaries.length - 1; i >= 0; i--) {
        const { boundary, digest } = this.#boundaries[i];
        if (!text.startsWith(boundary)) continue;
        out.push({ kind: "body", raw: line });
        if (text.startsWith("--", boundary.length)) {
          this.#boundaries.length = i;
        } else {
          this.#boundaries.length = i + 1;
          this.#state = "header";
          this.#headerClass = "multipart";
          // multipart/digest parts are messages unless they say otherwise.
          this.#partType = digest ? { type: "message/rfc822", boundary: "" } : NO_TYPE;
        }
        return out;
      }
    }
    out.push({ kind: "body", raw: line });
    return out;
  }

  /** Ends the input: a part header still being collected is returned. */
  end(): MimeEvent[] {
    const out: MimeEvent[] = [];
    this.#flushHeader(out);
    return out;
  }

  #flushHeader(out: MimeEvent[]): void {
    if (this.#current.length === 0) return;
    const lines = this.#current;
    this.#current = [];
    const text = dec.decode(lines[0]);
    const colon = text.indexOf(":");
    if (colon > 0 && text.slice(0, colon).trim().toLowerCase() === "content-type") {
      this.#partType = parseContentType(
        lines.map((l) => dec.decode(l)).join("").slice(colon + 1).replace(/\r?\n/g, ""),
      );
    }
    out.push({ kind: "header", headerClass: this.#headerClass, lines });
  }

  /**
   * The end of a header block: a multipart opens its boundary; an attached
   * message (message/rfc822) starts with its own headers, but only after a
   * proper blank line.
   */
  #endHeaders(blank: boolean): void {
    const type = this.#partType;
    this.#partType = NO_TYPE;
    this.#state = "body";
    if (type.type.startsWith("multipart/") && type.boundary !== "") {
      if (this.#boundaries.length < NESTING_LIMIT) {
        this.#boundaries.push({
          boundary: type.boundary,
          digest: type.type === "multipart/digest",
        });
      }
    } else if (blank && (type.type === "message/rfc822" || type.type === "message/global")) {
      this.#state = "header";
      this.#headerClass = "nested";
    }
  }
}

const NO_TYPE: ContentType = Object.freeze({ type: "", boundary: "" });

function isBlank(line: Uint8Array): boolean {
  return line.length === 0 || line[0] === 0x0a || (line[0] === 0x0d && line[1] === 0x0a);
}

/** A header field line: printable label, optional blanks, colon (Postfix's is_header). */
export function isHeaderLine(line: Uint8Array): boolean {
  let sawSpace = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === 0x3a) return i > 0;
    if (c === 0x20 || c === 0x09) {
      sawSpace = true;
      continue;
    }
    if (c < 0x21 || c > 0x7e || sawSpace) return false;
  }
  return false;
}
