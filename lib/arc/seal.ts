/**
 * ARC sealing (RFC 8617 section 5.1): {@link sealMessage} reads a message
 * and returns the ARC set to put on top of it: ARC-Seal,
 * ARC-Message-Signature and ARC-Authentication-Results, in that order.
 *
 * The instance is one more than the highest found on the message. No set
 * is added (null) when the chain already has 50 sets (section 4.2.1) or
 * its newest seal says cv=fail (section 5.1 step 2). The new seal's cv=
 * comes from the validation of the same message: none without prior
 * sets, else pass or fail; a seal with cv=fail signs only its own set
 * (section 5.1.2), a seal with cv=pass all sets in instance order.
 *
 * The ARC-Message-Signature is a DKIM signature (relaxed/relaxed, the
 * key's algorithm, no l=, v= or x=) over the fields of
 * {@link ARC_SIGNED_HEADERS} present, each instance signed once and not
 * over-signed (as mailauth does: a set's AMS is checked by the next hop
 * only, and over-signing would break it on every field a hop that does
 * not seal adds, Delivered-To or DKIM-Signature). ARC fields and
 * Authentication-Results are never signed (section 4.1.2). The three
 * fields are folded at 78 columns, ARC-Authentication-Results one result
 * per line.
 *
 * @module
 */
import {
  DEFAULT_SIGNED_HEADERS,
  type DkimSigningKey,
  Folder,
  isDomainName,
  isFieldName,
  isSelector,
  latin1,
  readForSigning,
  signData,
  signedHeaderData,
  signedNames,
  signingDomain,
  trimWhitespace,
} from "../dkim/mod.ts";
import {
  type ArcChainStatus,
  type ArcField,
  type CanonicalSet,
  canonicalSet,
  FIELD_NAMES,
  MAX_SETS,
  readArcField,
  sealData,
} from "./header.ts";
import type { ArcValidation } from "./validate.ts";

/** Options that cannot make an ARC set, or a validation of another message; the message says which. */
export class ArcSealError extends Error {
  /** The error class's name, for messages and logs. */
  override readonly name = "ArcSealError";
}

/**
 * The fields an ARC-Message-Signature signs by default: mailauth's choice,
 * DKIM-Signature (RFC 8617 section 4.1.2 says SHOULD) and Delivered-To,
 * then lib/dkim's DEFAULT_SIGNED_HEADERS. "*" ends a prefix.
 */
export const ARC_SIGNED_HEADERS: readonly string[] = [
  "dkim-signature",
  "delivered-to",
  ...DEFAULT_SIGNED_HEADERS,
];

/** Options for {@link sealMessage}. */
export interface SealOptions {
  /** d= of both signatures (an internationalized domain is written as A-labels). */
  domain: string;
  /** s= of both signatures; the key is published at `<selector>._domainkey.<domain>`. */
  selector: string;
  /** The private key, from lib/dkim's loadSigningKey; its type chooses a=. */
  key: DkimSigningKey;
  /** The authserv-id of the ARC-Authentication-Results: this host's name, as in its Authentication-Results. */
  authservId: string;
  /** t=. @default now */
  time?: Date;
  /**
   * Header fields the ARC-Message-Signature signs (case-insensitive; "list-*"
   * for a prefix); From is always signed, ARC fields and Authentication-Results never.
   * @default ARC_SIGNED_HEADERS
   */
  headers?: readonly string[];
}

const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;
const NEVER_SIGNED =
  /^(?:arc-seal|arc-message-signature|arc-authentication-results|authentication-results)$/;

/**
 * Seals a message: the whole message as it will be sent (header section
 * with any prior ARC sets, empty line, body) in chunks cut anywhere, lines
 * ending in CRLF (a bare LF counts as CRLF); `validation` is the
 * {@link ArcValidation} of this message's chain; `authResults` this
 * host's Authentication-Results payload, the text after its authserv-id
 * ("spf=pass smtp.mailfrom=...; dkim=pass ...", folded or not; a leading
 * ";" is skipped; empty for "none"). Returns the three fields, each ending
 * CRLF, to put above the message's first line, or null when no set may be
 * added. Throws {@link ArcSealError} for unusable options, an authResults
 * that would end the field, or a validation that does not fit the message.
 */
export async function sealMessage(
  message: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  validation: ArcValidation,
  authResults: string,
  opts: SealOptions,
): Promise<string | null> {
  const domain = signingDomain(opts.domain);
  if (!isDomainName(domain)) throw new ArcSealError(`domain ${opts.domain} is not a domain name`);
  if (!isSelector(opts.selector)) throw new ArcSealError(`selector ${opts.selector} is not valid`);
  if (!TOKEN.test(opts.authservId)) {
    throw new ArcSealError(`authserv-id "${opts.authservId}" is not a token (a host name)`);
  }
  const wanted = wantedNames(opts.headers ?? ARC_SIGNED_HEADERS);
  const payload = clauses(authResults);
  const t = Math.floor((opts.time ?? new Date()).getTime() / 1000);
  if (!(t >= 0)) throw new ArcSealError("time is not a valid date after 1970");

  const { fields, bodyHash } = await readForSigning(message, "relaxed");

  const arc = fields.map(readArcField).filter((f): f is ArcField => f?.instance !== undefined);
  const highest = arc.reduce((max, f) => Math.max(max, f.instance!), 0);
  if (highest >= MAX_SETS) return null;
  const newestSeal = arc.find((f) => f.instance === highest && f.kind === "as");
  if (newestSeal?.tags?.get("cv")?.toLowerCase() === "fail") return null;
  const cv = chainStatus(validation, highest);
  const prior = cv === "pass" ? priorSets(arc, highest) : [];
  const i = highest + 1;

  const aar = `${FIELD_NAMES.aar}: i=${i}; ${opts.authservId};` +
    (payload.length ? payload.map((c) => `\r\n\t${c}`).join(";") : " none");

  // Each instance signed once, From first and at least once (see the module comment).
  const present = fields.map((f) => f.name).filter(isFieldName).map((n) => n.toLowerCase());
  const names = signedNames(present.filter((n) => !NEVER_SIGNED.test(n)), ["from", ...wanted], {
    overSign: false,
  });
  const ams = new Folder(`${FIELD_NAMES.ams}:`);
  ams.tag("i", String(i));
  ams.tag("a", opts.key.algorithm);
  ams.tag("c", "relaxed/relaxed");
  ams.tag("d", domain);
  ams.tag("s", opts.selector);
  ams.tag("t", String(t));
  ams.tag("h", names[0], names.slice(1).map((n) => `:${n}`));
  ams.tag("bh", bodyHash.toBase64());
  ams.tag("b", "", [], true);
  const amsData = signedHeaderData(fields, {
    names,
    signatureField: ams.text,
    canon: "relaxed",
  });
  ams.pieces([...signData(opts.key, amsData).toBase64()]);

  const seal = new Folder(`${FIELD_NAMES.as}:`);
  seal.tag("i", String(i));
  seal.tag("a", opts.key.algorithm);
  seal.tag("t", String(t));
  seal.tag("cv", cv);
  seal.tag("d", domain);
  seal.tag("s", opts.selector);
  seal.tag("b", "", [], true);
  const own = canonicalSet(utf8Binary(aar), ams.text, seal.text);
  seal.pieces([...signData(opts.key, sealData([...prior, own])).toBase64()]);

  return `${seal.text}\r\n${ams.text}\r\n${aar}\r\n`;
}

/** cv= of the new seal, checking that the validation is of a message with this chain. */
function chainStatus(validation: ArcValidation, highest: number): ArcChainStatus {
  if (validation.status === "fail") return "fail";
  if (validation.instance !== highest) {
    throw new ArcSealError(
      `the validation (${validation.status}, i=${validation.instance}) is not of this message, ` +
        `whose chain ends at i=${highest}: validate the message as it is sealed`,
    );
  }
  return highest === 0 ? "none" : "pass";
}

/** The canonical prior sets a cv=pass seal signs; each instance must have one of each field. */
function priorSets(arc: ArcField[], highest: number): CanonicalSet[] {
  const sets: CanonicalSet[] = [];
  for (let i = 1; i <= highest; i++) {
    const [aar, ams, as] = (["aar", "ams", "as"] as const).map((kind) => {
      const found = arc.filter((f) => f.instance === i && f.kind === kind);
      if (found.length !== 1) {
        throw new ArcSealError(
          `the validation passed, but i=${i} has ${found.length} ${FIELD_NAMES[kind]} fields`,
        );
      }
      return found[0].text;
    });
    sets.push(canonicalSet(aar, ams, as));
  }
  return sets;
}

/** The names asked for, lowercase; throws for names that are not field names or must not be signed. */
function wantedNames(headers: readonly string[]): string[] {
  return headers.map((h) => {
    const name = h.toLowerCase();
    if (!isFieldName(name.replace(/\*$/, ""))) {
      throw new ArcSealError(`"${h}" is not a header field name`);
    }
    if (NEVER_SIGNED.test(name)) {
      throw new ArcSealError(`${h} must not be signed by an ARC-Message-Signature`);
    }
    return name;
  });
}

/**
 * The results of an authres-payload (without the authserv-id), each
 * trimmed, split at the ";" outside quoted-strings and comments; line
 * breaks must be folds (followed by SP or HTAB) and become CRLF.
 */
function clauses(payload: string): string[] {
  const s = trimWhitespace(payload).replace(/\r?\n/g, "\r\n");
  if (/\p{Cc}/u.test(s.replace(/\r\n(?=[ \t])|\t/g, ""))) {
    throw new ArcSealError(
      "authResults has a line break that is not folding, or a control character",
    );
  }
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "\\" && (quoted || depth > 0)) i++;
    else if (quoted) quoted = c !== '"';
    else if (c === '"' && depth === 0) quoted = true;
    else if (c === "(") depth++;
    else if (c === ")" && depth > 0) depth--;
    else if (c === ";" && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out.map(trimWhitespace).filter((c) => c);
}

/** A text as the binary string of its UTF-8 bytes (8-bit authentication results, RFC 8601). */
function utf8Binary(s: string): string {
  return latin1(new TextEncoder().encode(s));
}
