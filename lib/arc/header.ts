/**
 * The three ARC header fields (RFC 8617 section 4.1): reading one into an
 * {@link ArcField} (its instance and tags), the checks of an ARC-Seal's
 * tags and of an ARC-Message-Signature's, and the data a seal signs
 * (section 5.1.1).
 *
 * ARC-Authentication-Results starts with "i=N;" (comments and whitespace
 * allowed around its parts); ARC-Seal and ARC-Message-Signature are tag
 * lists with an i= tag. An instance is one or two digits; whether it is
 * in 1..50 is the chain's business. An ARC-Message-Signature is read by
 * lib/dkim's DKIM-Signature parser with its v= and i= tags left out (RFC
 * 8617 section 4.1.2: no v=, i= is the instance), so it gets every DKIM
 * check (From in h=, base64, a=, c=, d=, s=, t=, x=, l=).
 *
 * Header fields are binary strings (one character per byte), as in
 * lib/dkim. Pure: no I/O.
 *
 * @module
 */
import {
  compact,
  decodeBase64,
  type DkimAlgorithm,
  type DkimSignature,
  isDomainName,
  isSelector,
  latin1,
  latin1Bytes,
  parseTagList,
  relaxedHeader,
  signatureFromTags,
  stripSignatureValue,
  TagListError,
  trimWhitespace,
} from "../dkim/mod.ts";
import type { HeaderField } from "../mime/mod.ts";

/** The chain validation status (RFC 8617 section 4.4), the cv= of a seal. */
export type ArcChainStatus = "none" | "pass" | "fail";

/** The most ARC sets a message may carry (RFC 8617 section 4.2.1). */
export const MAX_SETS = 50;

/** Which of the three fields: ARC-Authentication-Results, ARC-Message-Signature, ARC-Seal. */
export type ArcKind = "aar" | "ams" | "as";

/** The field names, as written when sealing. */
export const FIELD_NAMES: Record<ArcKind, string> = {
  aar: "ARC-Authentication-Results",
  ams: "ARC-Message-Signature",
  as: "ARC-Seal",
};

const KINDS = new Map<string, ArcKind>(
  Object.entries(FIELD_NAMES).map(([kind, name]) => [name.toLowerCase(), kind as ArcKind]),
);

/** An ARC header field as read from a message. */
export interface ArcField {
  /** Which of the three fields. */
  kind: ArcKind;
  /** The field as lib/mime gives it. */
  field: HeaderField;
  /** The whole field (name, value, folding), binary string. */
  text: string;
  /** i=, when readable. */
  instance?: number;
  /** Why the instance cannot be read (a tag-list error, no i=, ...). */
  error?: string;
  /** The tags of an ARC-Seal or ARC-Message-Signature. */
  tags?: Map<string, string>;
  /** ARC-Authentication-Results: the authres-payload after "i=N;", unfolded. */
  payload?: string;
}

/** The kind of an ARC header field by its name, or undefined for any other field. */
function arcKind(name: string): ArcKind | undefined {
  return KINDS.get(name.toLowerCase());
}

const CFWS = String.raw`(?:[ \t\r\n]|\([^()\\]*\))*`;
/** RFC 8617 section 4.1.1: arc-info = instance [CFWS] ";" authres-payload, instance first. */
const AAR_INSTANCE = new RegExp(`^${CFWS}i${CFWS}=${CFWS}([0-9]{1,2})${CFWS};`);
const POSITION = /^[0-9]{1,2}$/;

/** Reads an ARC header field; undefined when the field is not one. */
export function readArcField(field: HeaderField): ArcField | undefined {
  const kind = arcKind(field.name);
  if (kind === undefined) return undefined;
  const text = latin1(field.raw);
  const value = text.slice(text.indexOf(":") + 1);
  const f: ArcField = { kind, field, text };
  if (kind === "aar") {
    // Only the start is matched, so that backtracking never runs over the whole of a
    // hostile value.
    const m = AAR_INSTANCE.exec(value.slice(0, 512));
    if (!m || Number(m[1]) === 0) f.error = 'does not start with "i=<instance>;"';
    else [f.instance, f.payload] = [Number(m[1]), unfold(value.slice(m[0].length))];
    return f;
  }
  try {
    f.tags = parseTagList(value);
  } catch (e) {
    if (!(e instanceof TagListError)) throw e;
    f.error = e.message;
    return f;
  }
  const i = f.tags.get("i");
  if (i === undefined) f.error = "has no i= tag";
  else if (!POSITION.test(i) || Number(i) === 0) f.error = `i=${clip(i)} is not an instance`;
  else f.instance = Number(i);
  return f;
}

/** An ARC-Seal's tags, read and checked. */
export interface SealTags {
  /** a=, lowercase. */
  algorithm: DkimAlgorithm;
  /** The key type a= asks for. */
  keyType: "rsa" | "ed25519";
  /** cv=, lowercase. */
  cv: ArcChainStatus;
  /** d=, lowercase. */
  domain: string;
  /** s=, as written. */
  selector: string;
  /** b=, decoded. */
  signature: Uint8Array;
}

/** An ARC header field that breaks a rule of RFC 8617 or RFC 6376; the message says which. */
export class ArcFieldError extends Error {
  /** The error class's name, for messages and logs. */
  override readonly name = "ArcFieldError";
}

/**
 * Checks an ARC-Seal's tags (RFC 8617 section 4.1.3): a, b, cv, d and s
 * present and valid, t a number when present, and no h= (which "MUST
 * result in a cv status of fail"). Other tags are ignored. Throws
 * {@link ArcFieldError}.
 */
export function readSealTags(tags: Map<string, string>): SealTags {
  const bad = (why: string) => new ArcFieldError(why);
  if (tags.has("h")) throw bad("has an h= tag, which an ARC-Seal must not have");
  const missing = ["a", "b", "cv", "d", "s"].filter((t) => !tags.has(t));
  if (missing.length) throw bad(`missing required tag ${missing.map((t) => `${t}=`).join(", ")}`);
  const a = tags.get("a")!.toLowerCase();
  if (a !== "rsa-sha256" && a !== "ed25519-sha256") {
    throw bad(`unknown algorithm a=${clip(tags.get("a")!)}`);
  }
  const cv = tags.get("cv")!.toLowerCase();
  if (cv !== "none" && cv !== "pass" && cv !== "fail") throw bad(`cv=${clip(cv)} is not a status`);
  const domain = tags.get("d")!.toLowerCase();
  if (!isDomainName(domain)) throw bad("d= is not a domain name");
  const selector = tags.get("s")!;
  if (!isSelector(selector)) throw bad("s= is not a selector");
  const t = tags.get("t");
  if (t !== undefined && !/^[0-9]{1,12}$/.test(t)) throw bad("t= is not a number");
  const signature = decodeBase64(compact(tags.get("b")!));
  if (!signature?.length) throw bad("b= is not base64");
  return {
    algorithm: a,
    keyType: a === "rsa-sha256" ? "rsa" : "ed25519",
    cv,
    domain,
    selector,
    signature,
  };
}

/**
 * Reads an ARC-Message-Signature's tags as a DKIM-Signature without v=
 * and i=, and refuses an h= that names ARC-Seal (RFC 8617 section
 * 4.1.2). Throws {@link ArcFieldError}.
 */
export function readMessageSignatureTags(tags: Map<string, string>): DkimSignature {
  const dkimTags = new Map([...tags].filter(([name]) => name !== "v" && name !== "i"));
  let sig: DkimSignature;
  try {
    sig = signatureFromTags(dkimTags, { requireVersion: false });
  } catch (e) {
    throw new ArcFieldError((e as Error).message);
  }
  if (sig.signedHeaders.includes("arc-seal")) throw new ArcFieldError("h= signs ARC-Seal");
  return sig;
}

/** The relaxed forms of an ARC set's fields that a seal signs (RFC 8617 section 5.1.1). */
export interface CanonicalSet {
  /** ARC-Authentication-Results then ARC-Message-Signature. */
  head: string;
  /** The ARC-Seal. */
  seal: string;
  /** The ARC-Seal with its b= value deleted and no final CRLF: the end of its own signed data. */
  unsigned: string;
}

/** The canonical forms of a set's three fields (binary strings, names included). */
export function canonicalSet(aar: string, ams: string, as: string): CanonicalSet {
  return {
    head: relaxedHeader(aar) + relaxedHeader(ams),
    seal: relaxedHeader(as),
    unsigned: relaxedHeader(stripSignatureValue(as)).slice(0, -2),
  };
}

/**
 * The data the seal of the last set signs: every set before it in
 * instance order (AAR, AMS, AS), then its own AAR, AMS and AS without b=.
 */
export function sealData(sets: readonly CanonicalSet[]): Uint8Array {
  const last = sets[sets.length - 1];
  const before = sets.slice(0, -1).map((s) => s.head + s.seal).join("");
  return latin1Bytes(before + last.head + last.unsigned);
}

/** Folding removed, each run of SP and HTAB one SP, none at either end. */
function unfold(s: string): string {
  return trimWhitespace(s.replace(/\r?\n(?=[ \t])/g, "").replace(/[ \t]+/g, " "));
}

/** The start of a long text, for messages. */
function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}
