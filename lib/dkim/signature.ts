/**
 * DKIM-Signature header fields (RFC 6376 section 3.5): reading one into
 * a {@link DkimSignature}, with every check that needs neither the key nor
 * the clock, and building the data a signature signs (section 3.7): the
 * header fields h= names, chosen from the bottom up, then the signature
 * field itself with its b= value emptied.
 *
 * Refused as permanent errors ({@link DkimSignatureError}): tag-list syntax
 * and duplicate tags, a missing required tag (v, a, b, bh, d, h, s), v= not
 * 1, a= other than rsa-sha256 and ed25519-sha256 (rsa-sha1 included, RFC
 * 8301), an unknown c= or q=, h= without From, i= outside d=, malformed
 * numbers, b= or bh= not base64, x= not after t=, a d= or s= that is not a
 * domain name. Unknown tags are ignored; z= is not used.
 *
 * Pure: no I/O.
 *
 * @module
 */
import {
  asciiLower,
  type Canonicalization,
  canonicalizeHeader,
  latin1,
  latin1Bytes,
  parseCanonicalization,
} from "./canon.ts";
import type { DkimAlgorithm } from "./key.ts";
import { compact, decodeBase64, parseTagList, TagListError } from "./tags.ts";

/** A DKIM-Signature that cannot be evaluated (a permerror); the message says why. */
export class DkimSignatureError extends Error {
  /** The error class's name, for messages and logs. */
  override readonly name = "DkimSignatureError";
}

/** A DKIM-Signature field's tags, read and checked. */
export interface DkimSignature {
  /** All tags as written (names case-sensitive, values trimmed). */
  tags: Map<string, string>;
  /** a=, lowercase. */
  algorithm: DkimAlgorithm;
  /** The key type a= asks for: "rsa" or "ed25519". */
  keyType: "rsa" | "ed25519";
  /** c=, the header part. */
  headerCanon: Canonicalization;
  /** c=, the body part. */
  bodyCanon: Canonicalization;
  /** d=, lowercase. */
  domain: string;
  /** s=, as written. */
  selector: string;
  /** i= as written, or "@" + d= when absent. */
  identity: string;
  /** h=, names lowercased, in order. */
  signedHeaders: string[];
  /** bh=, decoded. */
  bodyHash: Uint8Array;
  /** b=, decoded. */
  signature: Uint8Array;
  /** l=: the count of canonical body bytes signed. */
  bodyLength?: number;
  /** t=, seconds since the epoch. */
  timestamp?: number;
  /** x=, seconds since the epoch. */
  expiration?: number;
}

const REQUIRED = ["v", "a", "b", "bh", "d", "h", "s"];
const LABEL = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?";
const DOMAIN = new RegExp(`^${LABEL}(?:\\.${LABEL})+$`);
const SELECTOR = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/** True for a d= domain name: two or more labels of letters, digits, "-" and "_". */
export function isDomainName(s: string): boolean {
  return s.length <= 253 && DOMAIN.test(s);
}

/** True for an s= selector: one or more such labels. */
export function isSelector(s: string): boolean {
  return s.length <= 253 && SELECTOR.test(s);
}

/** True for a header field name (printable ASCII but ":"). */
export function isFieldName(s: string): boolean {
  return FIELD_NAME.test(s);
}

/** Reads a DKIM-Signature field's value (after the colon); throws {@link DkimSignatureError}. */
export function parseSignature(value: string): DkimSignature {
  let tags: Map<string, string>;
  try {
    tags = parseTagList(value);
  } catch (e) {
    if (e instanceof TagListError) throw new DkimSignatureError(e.message);
    throw e;
  }
  return signatureFromTags(tags);
}

/** Options for {@link signatureFromTags}. */
export interface SignatureFromTagsOptions {
  /**
   * Whether v= must be present. An ARC-Message-Signature has none (RFC
   * 8617 section 4.1.2); a v= that is present must be 1 either way.
   * @default true
   */
  requireVersion?: boolean;
}

/**
 * The checks of {@link parseSignature} on a tag list already parsed;
 * throws {@link DkimSignatureError}.
 */
export function signatureFromTags(
  tags: Map<string, string>,
  opts: SignatureFromTagsOptions = {},
): DkimSignature {
  const bad = (why: string) => new DkimSignatureError(why);
  const required = (opts.requireVersion ?? true) ? REQUIRED : REQUIRED.filter((t) => t !== "v");
  const missing = required.filter((t) => !tags.has(t));
  if (missing.length) throw bad(`missing required tag ${missing.map((t) => `${t}=`).join(", ")}`);
  const tag = (name: string) => tags.get(name)!;
  const v = tags.get("v");
  if (v !== undefined && v !== "1") throw bad(`unknown version v=${v}`);

  const a = tag("a").toLowerCase();
  if (a === "rsa-sha1") throw bad("a=rsa-sha1 is not accepted (RFC 8301)");
  if (a !== "rsa-sha256" && a !== "ed25519-sha256") throw bad(`unknown algorithm a=${tag("a")}`);

  const canon = parseCanonicalization(tags.get("c") ?? "simple/simple");
  if (!canon) throw bad(`unknown canonicalization c=${tags.get("c")}`);

  const q = tags.get("q");
  if (q !== undefined && !q.split(":").some((m) => m.trim().toLowerCase() === "dns/txt")) {
    throw bad(`unknown query method q=${q}`);
  }

  const domain = tag("d").toLowerCase();
  if (!isDomainName(domain)) throw bad("d= is not a domain name");
  const selector = tag("s");
  if (!isSelector(selector)) throw bad("s= is not a selector");

  const signedHeaders = tag("h").split(":").map((n) => asciiLower(n.replace(/[ \t\r\n]+/g, "")));
  if (!signedHeaders.every(isFieldName)) throw bad("h= is not a list of header field names");
  if (!signedHeaders.includes("from")) throw bad("h= does not sign From");

  const identity = tags.get("i") ?? `@${domain}`;
  const at = identity.lastIndexOf("@");
  const idDomain = identity.slice(at + 1).toLowerCase();
  if (at < 0 || (idDomain !== domain && !idDomain.endsWith(`.${domain}`))) {
    throw bad("i= is not in d= or a subdomain of it");
  }

  const bodyHash = decodeBase64(compact(tag("bh")));
  const signature = decodeBase64(compact(tag("b")));
  if (!bodyHash?.length) throw bad("bh= is not base64");
  if (!signature?.length) throw bad("b= is not base64");

  const number = (name: string, digits: number) => {
    const v = tags.get(name);
    if (v === undefined) return undefined;
    if (!new RegExp(`^[0-9]{1,${digits}}$`).test(v)) throw bad(`${name}= is not a number`);
    return Number(v);
  };
  const bodyLength = number("l", 76);
  const timestamp = number("t", 12);
  const expiration = number("x", 12);
  if (timestamp !== undefined && expiration !== undefined && expiration <= timestamp) {
    throw bad("x= is not after t=");
  }

  return {
    tags,
    algorithm: a,
    keyType: a === "rsa-sha256" ? "rsa" : "ed25519",
    headerCanon: canon.header,
    bodyCanon: canon.body,
    domain,
    selector,
    identity,
    signedHeaders,
    bodyHash,
    signature,
    bodyLength,
    timestamp,
    expiration,
  };
}

/**
 * A signature field (binary string, name included) with the value of its
 * b= tag and the whitespace around it deleted (RFC 6376 section 3.7),
 * everything else kept byte for byte.
 */
export function stripSignatureValue(field: string): string {
  const colon = field.indexOf(":");
  let start = colon + 1;
  for (const spec of field.slice(colon + 1).split(";")) {
    const eq = spec.indexOf("=");
    if (eq >= 0 && spec.slice(0, eq).trim() === "b") {
      return field.slice(0, start + eq + 1) + field.slice(start + spec.length);
    }
    start += spec.length + 1;
  }
  return field;
}

/** A header field as lib/mime's HeaderSplitter gives it. */
export interface RawHeaderField {
  /** The field name as written. */
  name: string;
  /** The field's bytes, folding and line end included. */
  raw: Uint8Array;
}

/** What {@link signedHeaderData} needs of a signature. */
export interface SignedHeaderSpec {
  /** The header field names it signs (h=). */
  names: readonly string[];
  /** The signature field itself, name included, as a binary string. */
  signatureField: string;
  /** The header canonicalization (c=). */
  canon: Canonicalization;
}

/**
 * The data a signature signs (RFC 6376 sections 3.7 and 5.4.2): for each
 * of `names` the next instance of that field from the bottom of `fields`
 * (none left: nothing), canonicalized; then the signature field with its
 * b= value deleted, canonicalized, without its final CRLF. `fields` must
 * not include the signature field itself. Names are compared
 * case-insensitively.
 */
export function signedHeaderData(
  fields: readonly RawHeaderField[],
  { names, signatureField, canon }: SignedHeaderSpec,
): Uint8Array {
  const instances = new Map<string, number[]>();
  fields.forEach((f, i) => {
    const name = asciiLower(f.name);
    const list = instances.get(name);
    if (list) list.push(i);
    else instances.set(name, [i]);
  });
  let data = "";
  for (const name of names) {
    const i = instances.get(asciiLower(name))?.pop();
    if (i !== undefined) data += canonicalizeHeader(latin1(fields[i].raw), canon);
  }
  data += canonicalizeHeader(stripSignatureValue(signatureField), canon).slice(0, -2);
  return latin1Bytes(data);
}
