/**
 * DKIM verification (RFC 6376 section 6): {@link DkimVerifier} reads a
 * message as it streams, keeps only its header section, hashes the body
 * on the way with one {@link BodyHasher} per distinct (body
 * canonicalization, hash, l=) among the signatures, and at the end looks
 * up each signature's key and checks it.
 *
 * Each signature gets one result, in the order of the fields, top first:
 * - permerror: the field does not parse or fails a check of signature.ts;
 *   it has expired (x= passed; section 6.1.1 allows treating that as a
 *   failure, and it is reported as one that retrying will not change);
 *   l= is longer than the body; no key record (NXDOMAIN, no TXT, no TXT
 *   record that parses: the first that does is used); a revoked key (empty
 *   p=); k= not a='s key type; h= in the key without sha256; t=s in the key
 *   and an i= in a subdomain of d=; a key the algorithm cannot use (RSA
 *   under 1024 bits, RFC 8301); more signatures than `maxSignatures` (not
 *   evaluated); a header section larger than `maxHeaderBytes` (none is);
 * - temperror: the key lookup failed for now (SERVFAIL, time-out);
 * - fail: the body hash or the signature does not match;
 * - pass.
 * "neutral" and "policy" are not produced: they are for callers' policies.
 *
 * A signature in the future (t= after now) is not refused.
 *
 * {@link evaluateSignature}, {@link usableKey} and {@link cachedKeyLookup}
 * are the verifier's steps on their own, for lib/arc, whose
 * ARC-Message-Signatures and ARC-Seals are checked the same way.
 *
 * @module
 */
import type { KeyObject } from "node:crypto";
import { DnsError, type FullResolver } from "../dns/mod.ts";
import type { HeaderField } from "../mime/mod.ts";
import { asciiLower, type BodyDigest, BodyHasher, latin1 } from "./canon.ts";
import { type DkimKeyRecord, importPublicKey, parseKeyRecord, verifyData } from "./key.ts";
import { MessageReader } from "./message.ts";
import { type DkimSignature, signatureFromTags, signedHeaderData } from "./signature.ts";
import { compact, parseTagList } from "./tags.ts";

/** The result codes of RFC 8601 section 2.7.1 for DKIM. */
export type DkimResultCode = "pass" | "fail" | "neutral" | "policy" | "temperror" | "permerror";

/** What became of one DKIM-Signature field. */
export interface DkimResult {
  /** The verdict (see the module comment for which rule gives which). */
  result: DkimResultCode;
  /** d=, lowercase; "" when the field could not be read. */
  domain: string;
  /** s=; "" when the field could not be read. */
  selector: string;
  /** i=, when present. */
  identity?: string;
  /** a=, when present. */
  algorithm?: string;
  /** b= without whitespace (Authentication-Results' header.b= uses a prefix of it). */
  signatureB: string;
  /** Why, for logs and Authentication-Results comments ("signature verified", "key revoked"). */
  reason: string;
  /** The key record has t=y: the domain is testing DKIM (results must not be treated differently). */
  testing?: boolean;
}

/** Options for {@link DkimVerifier}. */
export interface DkimVerifierOptions {
  /** Signatures evaluated; later ones are reported as permerror "too many signatures". @default 8 */
  maxSignatures?: number;
  /** The largest header section read; beyond it no signature is evaluated. @default 1048576 */
  maxHeaderBytes?: number;
  /** The clock, for x=. @default () => new Date() */
  now?: () => Date;
}

/** Options for {@link DkimVerifier.finish}. */
export interface DkimFinishOptions {
  /** Time limit per key lookup (a temperror when reached). @default none: the resolver's own */
  timeoutMs?: number;
}

/** One signature field and what is known of it so far. */
interface Entry {
  field: HeaderField;
  result: DkimResult;
  /** Set while the signature is still to be evaluated. */
  signature?: DkimSignature;
  hasherKey?: string;
}

/** A key record, or the result that ends the evaluation. */
export type KeyLookup = { record: DkimKeyRecord } | {
  result: "permerror" | "temperror";
  reason: string;
};

/**
 * Verifies the DKIM signatures of one message fed in chunks of any size
 * (lines ending in CRLF; a bare LF counts as one). Use once per message.
 */
export class DkimVerifier {
  readonly #maxSignatures: number;
  readonly #now: () => Date;
  readonly #reader: MessageReader;
  #entries: Entry[] | undefined;
  readonly #hashers = new Map<string, BodyHasher>();
  #finished = false;

  /** A verifier for one message. */
  constructor(opts: DkimVerifierOptions = {}) {
    this.#maxSignatures = opts.maxSignatures ?? 8;
    this.#now = opts.now ?? (() => new Date());
    this.#reader = new MessageReader(opts.maxHeaderBytes ?? 1024 * 1024);
  }

  /** Feeds the next bytes of the message. */
  write(chunk: Uint8Array): void {
    if (this.#finished) throw new Error("DkimVerifier: write() after finish()");
    const body = this.#reader.push(chunk);
    if (body !== undefined) this.#body(body);
  }

  /**
   * Ends the message and evaluates each signature, looking keys up through
   * `resolver` (each name once, all at the same time). Resolves to one
   * result per DKIM-Signature field, top first; [] when there is none.
   */
  async finish(
    resolver: Pick<FullResolver, "resolveTxt">,
    opts: DkimFinishOptions = {},
  ): Promise<DkimResult[]> {
    if (this.#finished) throw new Error("DkimVerifier: finish() called twice");
    this.#body(this.#reader.end());
    this.#finished = true;
    const entries = this.#entries!;
    const digests = new Map<string, BodyDigest>();
    for (const [key, hasher] of this.#hashers) digests.set(key, hasher.digest());
    const lookup = cachedKeyLookup(resolver, opts);
    const fields = this.#reader.fields!;
    await Promise.all(entries.map(async (e) => {
      if (!e.signature) return;
      Object.assign(
        e.result,
        await evaluateSignature(e.signature, {
          field: e.field,
          fields,
          body: digests.get(e.hasherKey!)!,
          lookup,
          now: this.#now,
        }),
      );
    }));
    return entries.map((e) => e.result);
  }

  /** Body bytes: the first ones start the evaluation (the header section is complete). */
  #body(bytes: Uint8Array): void {
    if (!this.#entries) this.#start();
    for (const hasher of this.#hashers.values()) hasher.update(bytes);
  }

  /** Reads the signature fields and sets up a body hasher for each kind needed. */
  #start(): void {
    const fields = this.#reader.fields!;
    const truncated = this.#reader.truncated;
    this.#entries = fields.filter((f) => asciiLower(f.name) === "dkim-signature").map(
      (field, i) => {
        const e = readSignature(field);
        if (truncated) return refuse(e, "header section too large to verify");
        if (!e.signature) return e;
        if (i >= this.#maxSignatures) return refuse(e, "too many signatures");
        const { bodyCanon, bodyLength } = e.signature;
        e.hasherKey = `${bodyCanon}/sha256/${bodyLength ?? ""}`;
        if (!this.#hashers.has(e.hasherKey)) {
          this.#hashers.set(e.hasherKey, new BodyHasher(bodyCanon, { limit: bodyLength }));
        }
        return e;
      },
    );
  }
}

/** What {@link evaluateSignature} checks a signature against. */
export interface SignatureEvidence {
  /** The signature's header field, one of `fields`. */
  field: HeaderField;
  /** The message's header fields, top first. */
  fields: readonly HeaderField[];
  /** The body's digest under the signature's body canonicalization and l=. */
  body: BodyDigest;
  /** Looks a key up by d= and s= (one from {@link cachedKeyLookup}). */
  lookup: (domain: string, selector: string) => Promise<KeyLookup>;
  /** The clock, for x=. */
  now: () => Date;
}

/**
 * RFC 6376 section 6.1, the checks that need the clock, the body and the
 * key, on a signature signatureFromTags has read: the result and its reason
 * (see the module comment for which rule gives which). The key is looked
 * up only when the clock and the body allow the signature.
 */
export async function evaluateSignature(
  sig: DkimSignature,
  { field, fields, body, lookup, now }: SignatureEvidence,
): Promise<Pick<DkimResult, "result" | "reason" | "testing">> {
  const permerror = (reason: string) => ({ result: "permerror" as const, reason });
  if (sig.expiration !== undefined && now().getTime() / 1000 > sig.expiration) {
    return permerror("signature expired");
  }
  if (sig.bodyLength !== undefined && sig.bodyLength > body.length) {
    return permerror("l= is longer than the body");
  }
  const found = await lookup(sig.domain, sig.selector);
  if ("result" in found) return found;
  const testing = found.record.testing ? { testing: true } : {};
  const key = usableKey(found.record, sig);
  if ("reason" in key) return permerror(key.reason);
  if (!equalBytes(body.hash, sig.bodyHash)) {
    return { result: "fail", reason: "body hash did not verify", ...testing };
  }
  const data = signedHeaderData(fields.filter((f) => f !== field), {
    names: sig.signedHeaders,
    signatureField: latin1(field.raw),
    canon: sig.headerCanon,
  });
  return verifyData(key.publicKey, { data, signature: sig.signature })
    ? { result: "pass", reason: "signature verified", ...testing }
    : { result: "fail", reason: "signature did not verify", ...testing };
}

/** What {@link usableKey} checks a key record against. */
export interface KeyUse {
  /** The key type a= asks for. */
  keyType: "rsa" | "ed25519";
  /** a=, for the reason when the key type does not match. */
  algorithm: string;
  /** d=, lowercase: with `identity`, for a key with t=s. */
  domain?: string;
  /** i=: when given, a key with t=s requires it in `domain` itself, not a subdomain. */
  identity?: string;
}

/**
 * The public key of a key record for a signature, or why the record
 * cannot verify it (RFC 6376 section 6.1.2 steps 6 to 8): revoked (empty
 * p=), k= not a='s key type, h= without sha256, t=s and an i= in a
 * subdomain of d=, or a key the algorithm cannot use (RFC 8301).
 */
export function usableKey(
  record: DkimKeyRecord,
  use: KeyUse,
): { publicKey: KeyObject } | { reason: string } {
  if (record.publicKey.length === 0) return { reason: "key revoked" };
  if (record.keyType !== use.keyType) {
    return { reason: `key type k=${record.keyType} does not match a=${use.algorithm}` };
  }
  if (record.hashes && !record.hashes.includes("sha256")) {
    return { reason: "key h= does not allow sha256" };
  }
  const { identity } = use;
  if (
    record.strict && identity !== undefined &&
    identity.slice(identity.lastIndexOf("@") + 1).toLowerCase() !== use.domain
  ) {
    return { reason: "key t=s requires i= in d= itself, not a subdomain" };
  }
  try {
    return { publicKey: importPublicKey(record.keyType, record.publicKey) };
  } catch (err) {
    return { reason: (err as Error).message };
  }
}

/** Reads a signature field: its result so far (d=, s=, i=, a=, b= as far as they parse). */
function readSignature(field: HeaderField): Entry {
  const text = latin1(field.raw);
  const result: DkimResult = {
    result: "permerror",
    domain: "",
    selector: "",
    signatureB: "",
    reason: "",
  };
  const e: Entry = { field, result };
  try {
    const tags = parseTagList(text.slice(text.indexOf(":") + 1));
    result.domain = tags.get("d")?.toLowerCase() ?? "";
    result.selector = tags.get("s") ?? "";
    if (tags.has("i")) result.identity = tags.get("i");
    if (tags.has("a")) result.algorithm = tags.get("a");
    result.signatureB = compact(tags.get("b") ?? "");
    e.signature = signatureFromTags(tags);
  } catch (err) {
    result.reason = (err as Error).message;
  }
  return e;
}

function refuse(e: Entry, reason: string): Entry {
  e.signature = undefined;
  e.result.reason = reason;
  return e;
}

/**
 * A key lookup by d= and s= that asks `resolver` for each name (lowercase
 * `<s>._domainkey.<d>`) once, however often it is called: lookups of the
 * same key share one answer.
 */
export function cachedKeyLookup(
  resolver: Pick<FullResolver, "resolveTxt">,
  opts: DkimFinishOptions = {},
): (domain: string, selector: string) => Promise<KeyLookup> {
  const lookups = new Map<string, Promise<KeyLookup>>();
  return (domain, selector) => {
    const name = `${selector}._domainkey.${domain}`.toLowerCase();
    let p = lookups.get(name);
    if (!p) lookups.set(name, p = lookupKey(resolver, name, opts));
    return p;
  };
}

/**
 * Fetches the key record at `name` (RFC 6376 section 6.1.2): the first TXT
 * record that parses as a key record. NXDOMAIN, no TXT records or none that
 * parses is a permerror; a temporary DNS failure (any error that is not a
 * permanent DnsError, a time-out included) a temperror.
 */
export async function lookupKey(
  resolver: Pick<FullResolver, "resolveTxt">,
  name: string,
  opts: DkimFinishOptions = {},
): Promise<KeyLookup> {
  let txt: string[][];
  try {
    txt = await withTimeout(resolver.resolveTxt(name), opts.timeoutMs);
  } catch (err) {
    if (err instanceof DnsError && err.permanent) {
      return { result: "permerror", reason: `no key for signature (${name})` };
    }
    return { result: "temperror", reason: `key lookup failed: ${(err as Error).message}` };
  }
  let firstError: unknown;
  for (const strings of txt) {
    try {
      return { record: parseKeyRecord(strings.join("")) };
    } catch (err) {
      firstError ??= err;
    }
  }
  return {
    result: "permerror",
    reason: firstError ? (firstError as Error).message : `no key for signature (${name})`,
  };
}

function withTimeout<T>(p: Promise<T>, ms: number | undefined): Promise<T> {
  if (ms === undefined) return p;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Deno.errors.TimedOut(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
