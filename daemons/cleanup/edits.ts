/**
 * Milter edits applied to the message cleanup has built: header fields
 * added, inserted, changed or deleted, and the body replaced. Postfix's
 * cleanup applies them to the queue file it has written (cleanup_milter.c);
 * here the content is held in memory until the end-of-data actions arrive
 * (cleanup.ts), so the edits apply before anything is written. The header
 * indexes count the fields of the message as it stands when the edits
 * arrive, and each edit sees the ones before it, as with Sendmail.
 *
 * Recipient and sender edits need cleanup's address rewriting and are
 * applied in cleanup.ts. No I/O.
 */
import type { ContentEdit } from "../../lib/cleanup/client.ts";
import { type HeaderField, HeaderSplitter } from "../../lib/mime/mod.ts";
import { authservIdOf } from "../../lib/authres/mod.ts";

const enc = new TextEncoder();
const CRLF = new Uint8Array([0x0d, 0x0a]);

/** A header field made from a milter's name and (already folded, CRLF) value. */
export function milterField(name: string, value: string): HeaderField {
  // A value that starts with white space (SMFIP_HDR_LEADSPC) keeps it as the separator.
  const sep = /^[ \t]/.test(value) ? "" : " ";
  return {
    name,
    value: value.replace(/\r\n(?=[ \t])/g, "").replace(/^[ \t]+/, ""),
    raw: enc.encode(`${name}:${sep}${value}\r\n`),
  };
}

/** The header edits among `edits`, applied to `headers` in order (a new array). */
export function applyHeaderEdits(headers: HeaderField[], edits: ContentEdit[]): HeaderField[] {
  const out = [...headers];
  for (const e of edits) {
    switch (e.op) {
      case "addHeader":
        out.push(milterField(e.name, e.value));
        break;
      case "insertHeader":
        out.splice(Math.min(e.index, out.length), 0, milterField(e.name, e.value));
        break;
      case "deleteAuthResults": {
        // A field that does not parse but starts with the id goes too: a lax reader takes it as ours.
        const id = e.authservId.toLowerCase();
        const ours = (v: string) =>
          (authservIdOf(v) ?? v.trim().split(/[\s;(]/, 1)[0]).toLowerCase() === id;
        const kept = out.filter((h) =>
          h.name.toLowerCase() !== "authentication-results" || !ours(h.value)
        );
        out.splice(0, out.length, ...kept);
        break;
      }
      case "changeHeader": {
        // The index counts fields of this name from 1 (libmilter's smfi_chgheader); 0 is 1.
        const want = Math.max(1, e.index);
        const lower = e.name.toLowerCase();
        let seen = 0;
        const at = out.findIndex((h) => h.name.toLowerCase() === lower && ++seen === want);
        if (at >= 0) {
          if (e.value.trim() === "") out.splice(at, 1);
          else out[at] = milterField(out[at].name, e.value);
        } else if (e.value.trim() !== "") {
          // No such field: it is added, as Sendmail and Postfix do.
          out.push(milterField(e.name, e.value));
        }
        break;
      }
    }
  }
  return out;
}

/** Whether any edit changes the header section. */
export function editsHeaders(edits: ContentEdit[]): boolean {
  return edits.some((e) =>
    e.op === "addHeader" || e.op === "insertHeader" || e.op === "changeHeader" ||
    e.op === "deleteAuthResults"
  );
}

/**
 * The complete message `content` (header section and body, CRLF) with the
 * header edits applied and, when `body` is given, its body replaced by it.
 */
export function editContent(
  content: Uint8Array[],
  edits: ContentEdit[],
  body: Uint8Array | null,
): Uint8Array[] {
  if (!editsHeaders(edits) && body === null) return content;
  const { headers, rest } = splitContent(content);
  const out = applyHeaderEdits(headers, edits).map((h) => h.raw);
  if (body === null) return [...out, ...rest];
  out.push(CRLF);
  if (body.length) out.push(canonicalBody(body));
  return out;
}

/**
 * Cleanup's own content (header section and body, CRLF) as its header
 * fields and the rest (the empty line and the body, as given).
 */
export function splitContent(
  content: Uint8Array[],
): { headers: HeaderField[]; rest: Uint8Array[] } {
  // The content is cleanup's own output: fields are whole and within limits already.
  const splitter = new HeaderSplitter({ maxBytes: 1 << 30, lineBytes: 1 << 30 });
  let headers: HeaderField[] | null = null;
  const rest: Uint8Array[] = [];
  for (const c of content) {
    if (headers) rest.push(c);
    else {
      const r = splitter.push(c);
      if (r.done) {
        headers = r.headers!;
        if (r.rest?.length) rest.push(r.rest);
      }
    }
  }
  if (!headers) {
    const r = splitter.end();
    headers = r.headers;
    if (r.rest.length) rest.push(r.rest);
  }
  return { headers, rest };
}

/**
 * A body as the queue keeps it: every line ending in CRLF (a bare LF or a
 * bare CR from the milter becomes CRLF), the last one too.
 */
export function canonicalBody(body: Uint8Array): Uint8Array {
  // Two passes: the size, then the bytes (bodies can be megabytes).
  let n = 0;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (b === 0x0d && body[i + 1] === 0x0a) i++;
    n += b === 0x0d || b === 0x0a ? 2 : 1;
  }
  const last = body[body.length - 1];
  if (body.length && last !== 0x0a && last !== 0x0d) n += 2;
  const out = new Uint8Array(n);
  let o = 0;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (b === 0x0d || b === 0x0a) {
      if (b === 0x0d && body[i + 1] === 0x0a) i++;
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    } else out[o++] = b;
  }
  if (o < n) out.set(CRLF, o);
  return out;
}
