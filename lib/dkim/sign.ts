/**
 * DKIM signing (RFC 6376 section 5): {@link signMessage} reads a message
 * and returns the DKIM-Signature field to put on top of it.
 *
 * The field has v, a, c, d, s, t, x (when an expiry is asked for), h, bh
 * and b, folded with CRLF TAB at 78 columns at most (only a d= or s= longer
 * than a line can pass it). It never has l= (a length limit lets anyone
 * append to the body) nor i= (the default, "@" + d=, is what verifiers
 * assume).
 *
 * h= over-signs: each named field is listed once per instance present
 * plus once more, so that no further instance can be added without
 * breaking the signature; From is always signed.
 *
 * lib/arc seals with the same parts: {@link readForSigning},
 * {@link signedNames} (without over-signing) and {@link Folder}.
 *
 * @module
 */
import { domainToASCII } from "node:url";
import type { HeaderField } from "../mime/mod.ts";
import { asciiLower, BodyHasher, type Canonicalization, parseCanonicalization } from "./canon.ts";
import { type DkimSigningKey, signData } from "./key.ts";
import { MessageReader } from "./message.ts";
import { isDomainName, isFieldName, isSelector, signedHeaderData } from "./signature.ts";

/** Options that cannot make a signature (the message says which); a programming or configuration error. */
export class DkimSignError extends Error {
  /** The error class's name, for messages and logs. */
  override readonly name = "DkimSignError";
}

/**
 * The fields signed by default: RFC 6376 section 5.4.1's recommendation
 * plus Message-ID and the MIME fields. A name ending in "*" stands for
 * every field present whose name starts with the rest.
 */
export const DEFAULT_SIGNED_HEADERS: readonly string[] = [
  "from",
  "reply-to",
  "subject",
  "date",
  "to",
  "cc",
  "resent-*",
  "in-reply-to",
  "references",
  "list-*",
  "message-id",
  "mime-version",
  "content-*",
];

/** Options for {@link signMessage}. */
export interface SignOptions {
  /** d=: the signing domain (an internationalized one is written as A-labels). */
  domain: string;
  /** s=: the selector; the key is published at `<selector>._domainkey.<domain>`. */
  selector: string;
  /** The private key, from loadSigningKey; its type chooses a=. */
  key: DkimSigningKey;
  /**
   * Header fields to sign (case-insensitive; "list-*" for a prefix), each
   * present one over-signed; From is added when missing.
   * @default DEFAULT_SIGNED_HEADERS
   */
  headers?: readonly string[];
  /** c=: "relaxed/relaxed", "simple/simple", "relaxed/simple", ... @default "relaxed/relaxed" */
  canonicalization?: string;
  /** t=. @default now */
  time?: Date;
  /** x= = t= plus this many seconds, when given. */
  expireSeconds?: number;
}

const MAX_COLUMNS = 78;

/**
 * Signs a message: the whole message (header section, empty line, body)
 * in chunks cut anywhere, lines ending in CRLF (a bare LF counts as
 * CRLF). Returns the complete header field, "DKIM-Signature: ...\r\n", to
 * put above the message's first line. Throws {@link DkimSignError} for
 * unusable options.
 */
export async function signMessage(
  message: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  opts: SignOptions,
): Promise<string> {
  const canon = parseCanonicalization(opts.canonicalization ?? "relaxed/relaxed");
  if (!canon) throw new DkimSignError(`canonicalization ${opts.canonicalization} is not c= syntax`);
  const domain = signingDomain(opts.domain);
  if (!isDomainName(domain)) throw new DkimSignError(`domain ${opts.domain} is not a domain name`);
  if (!isSelector(opts.selector)) throw new DkimSignError(`selector ${opts.selector} is not valid`);
  const wanted = (opts.headers ?? DEFAULT_SIGNED_HEADERS).map(asciiLower);
  const badName = wanted.find((n) => !isFieldName(n.replace(/\*$/, "")));
  if (badName !== undefined) throw new DkimSignError(`"${badName}" is not a header field name`);
  const expire = opts.expireSeconds;
  if (expire !== undefined && !(Number.isInteger(expire) && expire > 0)) {
    throw new DkimSignError("expireSeconds must be a positive whole number");
  }
  const t = Math.floor((opts.time ?? new Date()).getTime() / 1000);
  if (!(t >= 0)) throw new DkimSignError("time is not a valid date after 1970");

  const { fields, bodyHash } = await readForSigning(message, canon.body);
  const names = signedNames(fields.map((f) => asciiLower(f.name)), wanted);

  const header = new Folder("DKIM-Signature:");
  header.tag("v", "1");
  header.tag("a", opts.key.algorithm);
  header.tag("c", `${canon.header}/${canon.body}`);
  header.tag("d", domain);
  header.tag("s", opts.selector);
  header.tag("t", String(t));
  if (expire !== undefined) header.tag("x", String(t + expire));
  header.tag("h", names[0], names.slice(1).map((n) => `:${n}`));
  header.tag("bh", bodyHash.toBase64());
  header.tag("b", "", [], true);
  const data = signedHeaderData(fields, {
    names,
    signatureField: header.text,
    canon: canon.header,
  });
  header.pieces([...signData(opts.key, data).toBase64()]);
  return `${header.text}\r\n`;
}

/** d= for a domain: an internationalized one as its A-labels (RFC 8616 section 4). */
export function signingDomain(domain: string): string {
  return /[^ -~]/.test(domain) ? domainToASCII(domain) : domain;
}

/** A message read by {@link readForSigning}. */
export interface MessageToSign {
  /** The header fields, top first. */
  fields: HeaderField[];
  /** The hash (bh=) of the whole body, canonicalized. */
  bodyHash: Uint8Array;
}

/**
 * Reads a whole message (chunks cut anywhere, a bare LF counting as CRLF)
 * for signing: its header fields and the hash of its body in `bodyCanon`.
 */
export async function readForSigning(
  message: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  bodyCanon: Canonicalization,
): Promise<MessageToSign> {
  const reader = new MessageReader();
  const hasher = new BodyHasher(bodyCanon);
  for await (const chunk of message) {
    const body = reader.push(chunk);
    if (body) hasher.update(body);
  }
  hasher.update(reader.end());
  return { fields: reader.fields!, bodyHash: hasher.digest().hash };
}

/** Options for {@link signedNames}. */
export interface SignedNamesOptions {
  /**
   * List each field once more than it is present, so that no instance can
   * be added without breaking the signature (false: once per instance, as
   * lib/arc's ARC-Message-Signature does).
   * @default true
   */
  overSign?: boolean;
}

/**
 * h= (lowercase names): From first when not asked for, then each wanted
 * field present ("list-*" for a prefix), once per instance plus once more
 * when over-signing; From at least once even when absent.
 */
export function signedNames(
  present: readonly string[],
  wanted: readonly string[],
  opts: SignedNamesOptions = {},
): string[] {
  const extra = (opts.overSign ?? true) ? 1 : 0;
  const count = new Map<string, number>();
  for (const n of present) count.set(n, (count.get(n) ?? 0) + 1);
  const names: string[] = [];
  const done = new Set<string>();
  const add = (n: string) => {
    if (done.has(n)) return;
    done.add(n);
    const instances = count.get(n) ?? 0;
    if (instances || n === "from") names.push(...Array(Math.max(instances + extra, 1)).fill(n));
  };
  if (!wanted.includes("from")) add("from");
  for (const w of wanted) {
    if (!w.endsWith("*")) add(w);
    else for (const n of count.keys()) if (n.startsWith(w.slice(0, -1))) add(n);
  }
  return names;
}

/**
 * Builds a header field folded at 78 columns (CRLF TAB) from pieces that
 * may each start a continuation line.
 */
export class Folder {
  #lines: string[];

  /** A field starting with `start` (its name and colon). */
  constructor(start: string) {
    this.#lines = [start];
  }

  /**
   * Adds "name=value;" after a space, `more` being pieces of the value that
   * may go on the next line (FWS is allowed between them); `last` omits the
   * semicolon.
   */
  tag(name: string, value: string, more: string[] = [], last = false): void {
    const pieces = [`${name}=${value}`, ...more];
    if (!last) pieces[pieces.length - 1] += ";";
    this.#add(` ${pieces[0]}`);
    this.pieces(pieces.slice(1));
  }

  /** Adds pieces with nothing between them (a line break where needed). */
  pieces(pieces: string[]): void {
    for (const p of pieces) this.#add(p);
  }

  /** The field so far, without a final CRLF. */
  get text(): string {
    return this.#lines.join("\r\n");
  }

  #add(piece: string): void {
    const line = this.#lines[this.#lines.length - 1];
    if (line.length + piece.length <= MAX_COLUMNS) {
      this.#lines[this.#lines.length - 1] += piece;
    } else {
      this.#lines.push(`\t${piece.trimStart()}`);
    }
  }
}
