/**
 * DKIM keys: the signer's private key (from PEM), the key records
 * published in DNS (RFC 6376 section 3.6.1, RFC 8463 section 4), the
 * public keys in them, and the two signature algorithms.
 *
 * rsa-sha256 is RSASSA-PKCS1-v1_5 with SHA-256 over the signed data;
 * ed25519-sha256 is PureEdDSA Ed25519 over the SHA-256 hash of the signed
 * data (RFC 8463 section 3). RSA keys shorter than 1024 bits are refused
 * (RFC 8301 section 3.2), and so are keys longer than 8192 bits and RSA
 * exponents over 2^32, whose cost a message's sender would choose. SHA-1
 * is not offered (RFC 8301 section 3.1).
 *
 * Pure: no I/O (key lookups are in verify.ts).
 *
 * @module
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { compact, decodeBase64, parseTagList, TagListError } from "./tags.ts";

/** The signature algorithms (RFC 6376 with RFC 8301; RFC 8463). */
export type DkimAlgorithm = "rsa-sha256" | "ed25519-sha256";

/** A key that cannot be used: the message says what was expected. */
export class DkimKeyError extends Error {
  /** The error class's name, for messages and logs. */
  override readonly name = "DkimKeyError";
}

/** A private key ready to sign with, from {@link loadSigningKey}. */
export interface DkimSigningKey {
  /** The algorithm the key signs with (its type decides). */
  readonly algorithm: DkimAlgorithm;
  /** The key's size: the RSA modulus length, 256 for Ed25519. */
  readonly bits: number;
  /** The key material (opaque: pass the object to signMessage). */
  readonly privateKey: KeyObject;
}

const MIN_RSA_BITS = 1024;
const MAX_RSA_BITS = 8192;
const EXPECTED = 'an RSA private key ("BEGIN RSA PRIVATE KEY" as opendkim-genkey writes, ' +
  'or PKCS#8 "BEGIN PRIVATE KEY") or an Ed25519 PKCS#8 key ("BEGIN PRIVATE KEY", ' +
  "as openssl genpkey -algorithm ed25519 writes)";

/**
 * Reads a PEM private key: RSA in PKCS#1 or PKCS#8, or Ed25519 in PKCS#8.
 * Throws {@link DkimKeyError} for anything else (other types, encrypted
 * keys, public keys, RSA keys under 1024 bits), naming what was found.
 */
export function loadSigningKey(pem: string): Promise<DkimSigningKey> {
  return Promise.resolve().then(() => {
    const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem)?.[1];
    if (label === undefined) throw new DkimKeyError(`not a PEM key: expected ${EXPECTED}`);
    if (label !== "RSA PRIVATE KEY" && label !== "PRIVATE KEY") {
      throw new DkimKeyError(`found "BEGIN ${label}": expected ${EXPECTED}`);
    }
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({ key: pem, format: "pem" });
    } catch (e) {
      throw new DkimKeyError(`malformed "BEGIN ${label}" key (${(e as Error).message})`);
    }
    const type = privateKey.asymmetricKeyType;
    if (type === "ed25519") return { algorithm: "ed25519-sha256", bits: 256, privateKey };
    if (type !== "rsa") {
      throw new DkimKeyError(`found a PKCS#8 key of type ${type}: expected ${EXPECTED}`);
    }
    const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) {
      throw new DkimKeyError(
        `RSA key of ${bits} bits: at least ${MIN_RSA_BITS} needed (RFC 8301), 2048 recommended`,
      );
    }
    return { algorithm: "rsa-sha256", bits, privateKey };
  });
}

/**
 * The TXT record to publish for a signing key at
 * `<selector>._domainkey.<domain>`: "v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo>"
 * or "v=DKIM1; k=ed25519; p=<32-byte key>". One string; DNS software cuts
 * it into strings of at most 255 bytes.
 */
export function keyRecordFor(key: DkimSigningKey): string {
  const spki = new Uint8Array(
    createPublicKey(key.privateKey).export({ type: "spki", format: "der" }),
  );
  return key.algorithm === "ed25519-sha256"
    ? `v=DKIM1; k=ed25519; p=${spki.subarray(spki.length - 32).toBase64()}`
    : `v=DKIM1; k=rsa; p=${spki.toBase64()}`;
}

/** A parsed key record (RFC 6376 section 3.6.1). */
export interface DkimKeyRecord {
  /** k=, lowercase. @default "rsa" */
  keyType: string;
  /** h=, lowercase; undefined when absent (all allowed). */
  hashes?: string[];
  /** p=, decoded; empty when the key is revoked. */
  publicKey: Uint8Array;
  /** t=y: the domain is testing DKIM. */
  testing: boolean;
  /** t=s: i= must be in d= exactly, not a subdomain. */
  strict: boolean;
}

/**
 * Parses a key record (one TXT record, its strings joined). Throws
 * {@link DkimKeyError} when it is not a DKIM1 key record for email: a
 * tag-list error, v= not "DKIM1" or not first, no p=, a p= that is not
 * base64, s= naming neither "*" nor "email". An unknown k= is not an error
 * here (the signature's a= decides).
 */
export function parseKeyRecord(text: string): DkimKeyRecord {
  let tags: Map<string, string>;
  try {
    tags = parseTagList(text);
  } catch (e) {
    if (e instanceof TagListError) throw new DkimKeyError(`key record: ${e.message}`);
    throw e;
  }
  const v = tags.get("v");
  if (v !== undefined && (v !== "DKIM1" || tags.keys().next().value !== "v")) {
    throw new DkimKeyError(`key record: v=${v} is not "v=DKIM1" as the first tag`);
  }
  const p = tags.get("p");
  if (p === undefined) throw new DkimKeyError("key record has no p= tag");
  const publicKey = decodeBase64(compact(p));
  if (publicKey === undefined) throw new DkimKeyError("key record: p= is not base64");
  const list = (tag: string) => tags.get(tag)?.split(":").map((s) => s.trim().toLowerCase());
  const services = list("s");
  if (services && !services.includes("*") && !services.includes("email")) {
    throw new DkimKeyError(`key record is not for email (s=${tags.get("s")})`);
  }
  const flags = list("t") ?? [];
  return {
    keyType: tags.get("k")?.toLowerCase() ?? "rsa",
    hashes: list("h"),
    publicKey,
    testing: flags.includes("y"),
    strict: flags.includes("s"),
  };
}

/** The DER header of an Ed25519 SubjectPublicKeyInfo, before the 32 key bytes. */
const ED25519_SPKI = Uint8Array.fromHex("302a300506032b6570032100");

/**
 * The public key of a key record's p= for a key type: for "rsa" a
 * SubjectPublicKeyInfo (or a bare PKCS#1 RSAPublicKey, which some
 * publish), 1024 to 8192 bits; for "ed25519" the raw 32-byte key.
 * Throws {@link DkimKeyError}.
 */
export function importPublicKey(keyType: string, der: Uint8Array): KeyObject {
  if (keyType === "ed25519") {
    if (der.length !== 32) {
      throw new DkimKeyError(`Ed25519 key of ${der.length} bytes: p= must be the 32-byte key`);
    }
    const spki = new Uint8Array(ED25519_SPKI.length + 32);
    spki.set(ED25519_SPKI);
    spki.set(der, ED25519_SPKI.length);
    return createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  }
  if (keyType !== "rsa") throw new DkimKeyError(`unknown key type k=${keyType}`);
  let key: KeyObject | undefined;
  for (const type of ["spki", "pkcs1"] as const) {
    try {
      key = createPublicKey({ key: Buffer.from(der), format: "der", type });
      break;
    } catch {
      // try the other form
    }
  }
  if (key?.asymmetricKeyType !== "rsa") throw new DkimKeyError("p= is not an RSA public key");
  const { modulusLength = 0, publicExponent = 0n } = key.asymmetricKeyDetails ?? {};
  if (modulusLength < MIN_RSA_BITS) {
    throw new DkimKeyError(`RSA key of ${modulusLength} bits is too short (RFC 8301)`);
  }
  if (modulusLength > MAX_RSA_BITS || publicExponent > 0xffffffffn) {
    throw new DkimKeyError(`RSA key of ${modulusLength} bits is larger than supported`);
  }
  return key;
}

/** Signs the signed data (RFC 6376 section 3.7) with a signing key. */
export function signData(key: DkimSigningKey, data: Uint8Array): Uint8Array {
  return new Uint8Array(
    key.algorithm === "ed25519-sha256"
      ? sign(null, sha256(data), key.privateKey)
      : sign("sha256", data, key.privateKey),
  );
}

/**
 * Verifies a signature over the signed data with a key from
 * {@link importPublicKey} (its type chooses the algorithm); false for any
 * mismatch, a signature of the wrong length included.
 */
export function verifyData(
  publicKey: KeyObject,
  signed: { data: Uint8Array; signature: Uint8Array },
): boolean {
  const { data, signature } = signed;
  try {
    return publicKey.asymmetricKeyType === "ed25519"
      ? verify(null, sha256(data), publicKey, signature)
      : verify("sha256", data, publicKey, signature);
  } catch {
    return false;
  }
}

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}
