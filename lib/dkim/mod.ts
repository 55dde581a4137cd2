/**
 * DKIM, DomainKeys Identified Mail (RFC 6376, with RFC 8301's algorithm
 * and key-size rules and RFC 8463's Ed25519): signing outgoing messages
 * and verifying the signatures of incoming ones.
 *
 * {@link signMessage} returns the DKIM-Signature field to put on top of a
 * message, signed with a key from {@link loadSigningKey} (rsa-sha256 or
 * ed25519-sha256, relaxed/relaxed unless asked otherwise, From and the
 * other recommended fields over-signed). {@link DkimVerifier} takes a
 * message as it streams, holding only its header section, and gives one
 * result per signature (pass, fail, permerror, temperror) with the reason,
 * looking keys up through an injected resolver (lib/dns's FullResolver).
 *
 * The parts an ARC implementation (RFC 8617) reuses are exported as well:
 * the tag-list parser, header canonicalization, the streaming
 * {@link BodyHasher}, the key record parser and key import, the builder
 * of the signed header data, and the key lookup. The section "For lib/arc"
 * at the end adds the internals lib/arc shares rather than copies: binary
 * strings, name syntax, reading a signature's tags, the checks of a
 * signature and of its key, and the parts of signing.
 *
 * What it does not do: decide what to do with a result (DMARC, local
 * policy, Authentication-Results formatting are the caller's), cache keys,
 * sign or accept rsa-sha1 (RFC 8301), sign with l= (an l= is honoured when
 * verifying), use z= (copied header fields), look keys up by anything but
 * DNS TXT (q=dns/txt), accept U-labels in a signature's d= or s= (RFC
 * 8616; signMessage writes an internationalized domain as A-labels), or
 * refuse signatures whose t= is in the future.
 *
 * Files: tags.ts (tag lists, base64), canon.ts (canonicalization, body
 * hashing), message.ts (header section and body), key.ts (keys, key
 * records, the algorithms), signature.ts (DKIM-Signature fields, signed
 * data), sign.ts (signing), verify.ts (verifying, key lookup); testing.ts
 * holds test helpers (RFC 8463's example, fresh keys, hand-made signatures).
 *
 * @example
 * ```ts
 * import { systemResolver } from "../dns/mod.ts";
 * import { DkimVerifier, keyRecordFor, loadSigningKey, signMessage } from "./mod.ts";
 *
 * const key = await loadSigningKey(await Deno.readTextFile("/etc/postwarden/dkim/mail.private"));
 * console.log(`mail._domainkey.example.com. IN TXT "${keyRecordFor(key)}"`);
 * const message = new TextEncoder().encode("From: joe@example.com\r\nSubject: hi\r\n\r\nHello\r\n");
 * const field = await signMessage([message], { domain: "example.com", selector: "mail", key });
 *
 * const verifier = new DkimVerifier();
 * verifier.write(new TextEncoder().encode(field));
 * verifier.write(message);
 * for (const r of await verifier.finish(systemResolver({ timeoutMs: 5000 }))) {
 *   console.log(`dkim=${r.result} header.d=${r.domain} (${r.reason})`);
 * }
 * ```
 *
 * @module
 */
export {
  type BodyDigest,
  BodyHasher,
  type BodyHasherOptions,
  type Canonicalization,
  type CanonicalizationPair,
  canonicalizeHeader,
  type HashAlgorithm,
  parseCanonicalization,
  relaxedHeader,
  simpleHeader,
} from "./canon.ts";
export {
  type DkimAlgorithm,
  DkimKeyError,
  type DkimKeyRecord,
  type DkimSigningKey,
  importPublicKey,
  keyRecordFor,
  loadSigningKey,
  parseKeyRecord,
  signData,
  verifyData,
} from "./key.ts";
export { MessageReader } from "./message.ts";
export {
  type DkimSignature,
  DkimSignatureError,
  parseSignature,
  type RawHeaderField,
  signedHeaderData,
  type SignedHeaderSpec,
  stripSignatureValue,
} from "./signature.ts";
export { DEFAULT_SIGNED_HEADERS, DkimSignError, signMessage, type SignOptions } from "./sign.ts";
export { compact, decodeBase64, parseTagList, TagListError } from "./tags.ts";
export {
  type DkimFinishOptions,
  type DkimResult,
  type DkimResultCode,
  DkimVerifier,
  type DkimVerifierOptions,
  type KeyLookup,
  lookupKey,
} from "./verify.ts";

// For lib/arc: internals it shares with DKIM instead of keeping copies.
export { latin1, latin1Bytes } from "./canon.ts";
export {
  isDomainName,
  isFieldName,
  isSelector,
  signatureFromTags,
  type SignatureFromTagsOptions,
} from "./signature.ts";
export {
  Folder,
  type MessageToSign,
  readForSigning,
  signedNames,
  type SignedNamesOptions,
  signingDomain,
} from "./sign.ts";
export { trimWhitespace } from "./tags.ts";
export {
  cachedKeyLookup,
  evaluateSignature,
  type KeyUse,
  type SignatureEvidence,
  usableKey,
} from "./verify.ts";
