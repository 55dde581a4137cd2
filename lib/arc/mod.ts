/**
 * ARC, the Authenticated Received Chain of RFC 8617: validating the chain
 * of ARC sets a message arrives with, and sealing it with a new set
 * before it goes on.
 *
 * {@link ArcValidator} takes a message as it streams, holding only its
 * header section, and computes the chain validation status of section
 * 5.2 (none, pass or fail) with the reason, the d= and s= of each set's
 * seal and message signature, each set's ARC-Authentication-Results (the
 * first hop's verdicts are `sets[0].authResults`) and, for a pass, the
 * oldest-pass of section 6. Keys are looked up through an injected
 * resolver (lib/dns's FullResolver); every failure, a DNS time-out
 * included, is a fail (section 5.2.1).
 *
 * {@link sealMessage} returns the ARC-Seal, ARC-Message-Signature and
 * ARC-Authentication-Results to prepend to a message once every change to
 * it is made (DKIM signing included), with the cv= its validation gives,
 * or null when the chain may not grow (50 sets, or the newest seal says
 * cv=fail).
 *
 * Both build on lib/dkim: its tag lists, canonicalization, body hashing,
 * key records, key lookup, signing and verifying. A message signature is a
 * DKIM signature without v= and with i= for the instance, so it is read
 * by lib/dkim's DKIM-Signature parser and gets all of its checks.
 *
 * What it does not do: decide what a pass is worth (which sealers to
 * trust, DMARC local policy overrides of section 7.2.1) or write the
 * Authentication-Results arc= clause (lib/authres does, with
 * smtp.remote-ip and header.oldest-pass from here); cache keys; handle
 * more than one algorithm per instance (the ARC-MULTI draft: two sets with
 * one instance are a fail); accept U-labels in d= or s=; seal with
 * anything but relaxed/relaxed; refuse t= in the future; check an
 * ARC-Authentication-Results' payload (its syntax does not affect the
 * chain, section 3.4).
 *
 * Files: header.ts (reading the three fields, what a seal signs),
 * validate.ts (validation), seal.ts (sealing).
 *
 * @example
 * ```ts
 * import { loadSigningKey } from "../dkim/mod.ts";
 * import { systemResolver } from "../dns/mod.ts";
 * import { ArcValidator, sealMessage } from "./mod.ts";
 *
 * const message = new TextEncoder().encode("From: joe@example.com\r\nSubject: hi\r\n\r\nHello\r\n");
 * const validator = new ArcValidator();
 * validator.write(message);
 * const arc = await validator.finish(systemResolver({ timeoutMs: 5000 }));
 * console.log(`arc=${arc.status} (${arc.reason})`);
 *
 * const key = await loadSigningKey(await Deno.readTextFile("/etc/postwarden/dkim/arc.private"));
 * const set = await sealMessage([message], arc, "spf=pass smtp.mailfrom=joe@example.com", {
 *   domain: "forwarder.example.net",
 *   selector: "arc",
 *   key,
 *   authservId: "mx.forwarder.example.net",
 * });
 * if (set !== null) console.log(set); // put above the message's first line
 * ```
 *
 * @module
 */
export { type ArcChainStatus, MAX_SETS } from "./header.ts";
export { ARC_SIGNED_HEADERS, ArcSealError, sealMessage, type SealOptions } from "./seal.ts";
export {
  type ArcFinishOptions,
  type ArcSetInfo,
  type ArcValidation,
  ArcValidator,
  type ArcValidatorOptions,
} from "./validate.ts";
