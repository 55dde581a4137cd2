/**
 * ARC chain validation (RFC 8617 section 5.2): {@link ArcValidator} reads
 * a message as it streams, keeps only its header section, hashes the
 * body for the ARC-Message-Signatures it will check, and at the end looks
 * up the keys and computes the chain validation status.
 *
 * The steps, in the RFC's order; the first that fails gives "fail" and
 * its reason:
 * 1. no ARC header field: "none"; more than 50 sets: fail. An ARC header
 *    field whose instance cannot be read, or a header section larger than
 *    `maxHeaderBytes`, fails here too (the chain cannot be collected);
 * 2. the newest ARC-Seal says cv=fail;
 * 3. the structure: instances 1..N without gap, exactly one of each of
 *    the three fields per instance, cv=none at i=1 and cv=pass above, no
 *    ARC-Seal with a bad tag (h= among them), the newest
 *    ARC-Message-Signature parses (as a DKIM-Signature without v= and
 *    i=, From signed, ARC-Seal not signed);
 * 4. the newest ARC-Message-Signature verifies (key, body hash, signature;
 *    expired by x=, or an l= past the body, fails);
 * 6. each ARC-Seal verifies, newest first, over the sets up to its own
 *    (relaxed header canonicalization, section 5.1.1);
 * 5. only for a chain that passed: the "oldest-pass" (the lowest instance
 *    from which every ARC-Message-Signature up to the newest verifies, 0
 *    when all do), checking the older signatures newest first. Bodies are
 *    hashed for at most two (canonicalization, l=) variants: an older
 *    signature needing a third counts as not verifying.
 *
 * Every failure is permanent (section 5.2.1): a key lookup that fails for
 * now, a time-out included, fails the chain; the reason says so.
 *
 * @module
 */
import {
  type BodyDigest,
  BodyHasher,
  cachedKeyLookup,
  type DkimSignature,
  evaluateSignature,
  type KeyLookup,
  MessageReader,
  usableKey,
  verifyData,
} from "../dkim/mod.ts";
import type { FullResolver } from "../dns/mod.ts";
import type { HeaderField } from "../mime/mod.ts";
import {
  type ArcChainStatus,
  type ArcField,
  ArcFieldError,
  type CanonicalSet,
  canonicalSet,
  FIELD_NAMES,
  MAX_SETS,
  readArcField,
  readMessageSignatureTags,
  readSealTags,
  sealData,
  type SealTags,
} from "./header.ts";

/** What the validation found of one ARC set, for Authentication-Results and DMARC reports. */
export interface ArcSetInfo {
  /** i=. */
  instance: number;
  /** The ARC-Seal's d=, lowercase ("" when unreadable). */
  sealDomain: string;
  /** The ARC-Seal's s=. */
  sealSelector: string;
  /** The ARC-Message-Signature's d=, lowercase. */
  amsDomain: string;
  /** The ARC-Message-Signature's s=. */
  amsSelector: string;
  /** The ARC-Seal's cv=, lowercase. */
  cv: string;
  /**
   * The ARC-Authentication-Results after "i=N;", unfolded: that hop's
   * authserv-id and verdicts ("mx.example.org; spf=pass smtp.mailfrom=...").
   */
  authResults: string;
}

/** The outcome of {@link ArcValidator.finish}. */
export interface ArcValidation {
  /** The chain validation status as RFC 8617 section 5.2 computes it. */
  status: ArcChainStatus;
  /** The highest instance found (the newest set's i=), 0 for none. */
  instance: number;
  /** Why, for logs and Authentication-Results comments ("i=2: ARC-Seal: signature did not verify"). */
  reason: string;
  /**
   * The sets found, by instance (the first field of each kind where an
   * instance has several). Vouched for only when status is "pass".
   */
  sets: ArcSetInfo[];
  /** For a pass, the header.oldest-pass of RFC 8617 section 6: 0 when every AMS verifies. */
  oldestPass?: number;
}

/** Options for {@link ArcValidator}. */
export interface ArcValidatorOptions {
  /** The largest header section read; beyond it the chain fails (none if no ARC field was read). @default 1048576 */
  maxHeaderBytes?: number;
  /** The clock, for an ARC-Message-Signature's x=. @default () => new Date() */
  now?: () => Date;
}

/** Options for {@link ArcValidator.finish}. */
export interface ArcFinishOptions {
  /** Time limit per key lookup (the chain fails when reached). @default none: the resolver's own */
  timeoutMs?: number;
}

/** A set of a chain whose structure is valid. */
interface ChainSet {
  instance: number;
  ams: ArcField;
  seal: SealTags;
  canonical: CanonicalSet;
  /** The ARC-Message-Signature read, or why it cannot be. */
  signature: DkimSignature | string;
  /** Which body hasher, when the body is hashed for it. */
  hasherKey?: string;
}

/** Body hash variants hashed at most (the newest AMS's is always among them). */
const MAX_BODY_HASHERS = 2;

/**
 * Validates the ARC chain of one message fed in chunks of any size (lines
 * ending in CRLF; a bare LF counts as one). Use once per message.
 */
export class ArcValidator {
  readonly #reader: MessageReader;
  readonly #maxHeaderBytes: number;
  readonly #now: () => Date;
  readonly #hashers = new Map<string, BodyHasher>();
  #found: { validation: ArcValidation; chain?: ChainSet[] } | undefined;
  #finished = false;

  /** A validator for one message. */
  constructor(opts: ArcValidatorOptions = {}) {
    this.#maxHeaderBytes = opts.maxHeaderBytes ?? 1024 * 1024;
    this.#reader = new MessageReader(this.#maxHeaderBytes);
    this.#now = opts.now ?? (() => new Date());
  }

  /** Feeds the next bytes of the message. */
  write(chunk: Uint8Array): void {
    if (this.#finished) throw new Error("ArcValidator: write() after finish()");
    const body = this.#reader.push(chunk);
    if (body !== undefined) this.#body(body);
  }

  /**
   * Ends the message and validates the chain, looking keys up through
   * `resolver` (each name once; the seals' keys all at the same time).
   */
  async finish(
    resolver: Pick<FullResolver, "resolveTxt">,
    opts: ArcFinishOptions = {},
  ): Promise<ArcValidation> {
    if (this.#finished) throw new Error("ArcValidator: finish() called twice");
    this.#body(this.#reader.end());
    this.#finished = true;
    const { validation, chain } = this.#found!;
    if (!chain) return validation;
    const fail = (reason: string): ArcValidation => ({ ...validation, status: "fail", reason });

    const digests = new Map<string, BodyDigest>();
    for (const [key, hasher] of this.#hashers) digests.set(key, hasher.digest());
    const lookup = cachedKeyLookup(resolver, opts);
    const fields = this.#reader.fields!;
    const checkAms = (set: ChainSet) => this.#checkAms(set, fields, digests, lookup);
    const newest = chain[chain.length - 1];
    const sig = newest.signature as DkimSignature;
    await Promise.all([
      ...chain.map((s) => lookup(s.seal.domain, s.seal.selector)),
      lookup(sig.domain, sig.selector),
    ]);

    const ams = await checkAms(newest);
    if (ams) return fail(`i=${newest.instance}: ARC-Message-Signature: ${ams}`);
    for (let k = chain.length; k >= 1; k--) {
      const seal = await checkSeal(chain.slice(0, k), lookup);
      if (seal) return fail(`i=${k}: ARC-Seal: ${seal}`);
    }
    let oldestPass = 0;
    for (let k = chain.length - 1; k >= 1 && oldestPass === 0; k--) {
      if (await checkAms(chain[k - 1])) oldestPass = k + 1;
    }
    const sets = chain.length === 1 ? "1 set" : `${chain.length} sets`;
    return { ...validation, status: "pass", reason: `chain of ${sets} validated`, oldestPass };
  }

  /** Body bytes: the first ones end the header section, and the chain is read. */
  #body(bytes: Uint8Array): void {
    if (!this.#found) this.#start();
    for (const hasher of this.#hashers.values()) hasher.update(bytes);
  }

  #start(): void {
    this.#found = readChain(this.#reader.fields!, this.#reader.truncated, this.#maxHeaderBytes);
    const chain = this.#found.chain ?? [];
    for (const set of chain.toReversed()) {
      if (typeof set.signature === "string") continue;
      const { bodyCanon, bodyLength } = set.signature;
      const key = `${bodyCanon}/${bodyLength ?? ""}`;
      if (!this.#hashers.has(key) && this.#hashers.size < MAX_BODY_HASHERS) {
        this.#hashers.set(key, new BodyHasher(bodyCanon, { limit: bodyLength }));
      }
      if (this.#hashers.has(key)) set.hasherKey = key;
    }
  }

  /** Section 5.2 step 4 for one set: undefined when it verifies, else why not. */
  async #checkAms(
    set: ChainSet,
    fields: HeaderField[],
    digests: Map<string, BodyDigest>,
    lookup: (domain: string, selector: string) => Promise<KeyLookup>,
  ): Promise<string | undefined> {
    const sig = set.signature;
    if (typeof sig === "string") return sig;
    const body = set.hasherKey && digests.get(set.hasherKey);
    if (!body) return "body not hashed (too many body canonicalization and l= variants)";
    // The checks of a DKIM signature. A t=s key cannot refuse it: without its i=,
    // the signature's identity is "@" + d=.
    const evaluated = await evaluateSignature(sig, {
      field: set.ams.field,
      fields,
      body,
      lookup,
      now: this.#now,
    });
    return evaluated.result === "pass" ? undefined : failure(evaluated);
  }
}

/** Section 5.2 step 6 for the newest of `sets`: undefined when its seal verifies, else why not. */
async function checkSeal(
  sets: ChainSet[],
  lookup: (domain: string, selector: string) => Promise<KeyLookup>,
): Promise<string | undefined> {
  const { seal } = sets[sets.length - 1];
  const found = await lookup(seal.domain, seal.selector);
  if ("result" in found) return failure(found);
  const key = usableKey(found.record, seal);
  if ("reason" in key) return key.reason;
  const data = sealData(sets.map((s) => s.canonical));
  return verifyData(key.publicKey, { data, signature: seal.signature })
    ? undefined
    : "signature did not verify";
}

/** Steps 1 to 3: the sets found, and the chain when its structure is valid. */
function readChain(
  fields: HeaderField[],
  truncated: boolean,
  maxHeaderBytes: number,
): { validation: ArcValidation; chain?: ChainSet[] } {
  const arc = fields.map(readArcField).filter((f) => f !== undefined);
  const byInstance = new Map<number, Record<"aar" | "ams" | "as", ArcField[]>>();
  for (const f of arc) {
    if (f.instance === undefined) continue;
    let set = byInstance.get(f.instance);
    if (!set) byInstance.set(f.instance, set = { aar: [], ams: [], as: [] });
    set[f.kind].push(f);
  }
  const instances = [...byInstance.keys()].sort((a, b) => a - b);
  const n = instances.at(-1) ?? 0;
  const validation: ArcValidation = {
    status: "none",
    instance: n,
    reason: "no ARC sets",
    sets: instances.map((i) => describe(i, byInstance.get(i)!)),
  };
  const fail = (reason: string) => ({
    validation: { ...validation, status: "fail" as const, reason },
  });
  if (arc.length === 0) return { validation };
  if (truncated) return fail(`header section larger than ${maxHeaderBytes} bytes, not validated`);
  const unreadable = arc.find((f) => f.error !== undefined);
  if (unreadable) return fail(`${FIELD_NAMES[unreadable.kind]}: ${unreadable.error}`);
  if (n > MAX_SETS) return fail(`more than ${MAX_SETS} ARC sets (i=${n})`);
  if (byInstance.get(n)!.as[0]?.tags?.get("cv")?.toLowerCase() === "fail") {
    return fail(`the newest ARC-Seal (i=${n}) has cv=fail`);
  }
  const chain: ChainSet[] = [];
  for (let i = 1; i <= n; i++) {
    const set = byInstance.get(i);
    if (!set) return fail(`no ARC set i=${i}: instances must run from 1 to ${n}`);
    for (const kind of ["aar", "ams", "as"] as const) {
      const count = set[kind].length;
      if (count !== 1) return fail(`i=${i}: ${count || "no"} ${FIELD_NAMES[kind]} fields`);
    }
    const [aar, ams, as] = [set.aar[0], set.ams[0], set.as[0]];
    let seal: SealTags;
    try {
      seal = readSealTags(as.tags!);
    } catch (e) {
      if (e instanceof ArcFieldError) return fail(`i=${i}: ARC-Seal: ${e.message}`);
      throw e;
    }
    const expected = i === 1 ? "none" : "pass";
    if (seal.cv !== expected) return fail(`i=${i}: ARC-Seal has cv=${seal.cv}, not ${expected}`);
    let signature: DkimSignature | string;
    try {
      signature = readMessageSignatureTags(ams.tags!);
    } catch (e) {
      if (!(e instanceof ArcFieldError)) throw e;
      if (i === n) return fail(`i=${i}: ARC-Message-Signature: ${e.message}`);
      signature = e.message;
    }
    chain.push({
      instance: i,
      ams,
      seal,
      canonical: canonicalSet(aar.text, ams.text, as.text),
      signature,
    });
  }
  return { validation, chain };
}

/** The set's report: the first field of each kind, what of it is readable. */
function describe(instance: number, set: Record<"aar" | "ams" | "as", ArcField[]>): ArcSetInfo {
  const seal = set.as[0]?.tags;
  const ams = set.ams[0]?.tags;
  return {
    instance,
    sealDomain: seal?.get("d")?.toLowerCase() ?? "",
    sealSelector: seal?.get("s") ?? "",
    amsDomain: ams?.get("d")?.toLowerCase() ?? "",
    amsSelector: ams?.get("s") ?? "",
    cv: seal?.get("cv")?.toLowerCase() ?? "",
    authResults: set.aar[0]?.payload ?? "",
  };
}

/** Why a key lookup or a signature failed: a temperror is a failure too (RFC 8617 section 5.2.1). */
function failure({ result, reason }: { result: string; reason: string }): string {
  return result === "temperror"
    ? `${reason} (temporary, but a failure for ARC: RFC 8617 section 5.2.1)`
    : reason;
}
