/**
 * Test helpers: keys with their DNS zone, a message forwarded through
 * sealing hops, and hand-made ARC sets with whatever tags a test needs
 * and valid signatures, for testing what a validator makes of sets
 * sealMessage never writes (cv=none at i=2, h= in a seal, l=, x=, ...).
 */
import {
  BodyHasher,
  type DkimSigningKey,
  MessageReader,
  parseCanonicalization,
  parseTagList,
  signData,
  signedHeaderData,
} from "../dkim/mod.ts";
import { bytes, testKey } from "../dkim/testing.ts";
import { fakeResolver } from "../dns/testing.ts";
import { canonicalSet, readArcField, sealData } from "./header.ts";
import { sealMessage } from "./seal.ts";
import { type ArcValidation, ArcValidator, type ArcValidatorOptions } from "./validate.ts";

export { bytes };

/** The clock of the tests. */
export const NOW = new Date("2026-12-01T12:00:00Z");

/** A DNS zone for fakeResolver. */
export type Zone = Parameters<typeof fakeResolver>[0];

/** An RSA and an Ed25519 key, published as rsa._domainkey.example.com and ed._domainkey.example.com. */
export async function arcKeys(): Promise<{ rsa: DkimSigningKey; ed: DkimSigningKey; zone: Zone }> {
  const [rsa, ed] = [await testKey("rsa"), await testKey("ed25519")];
  return {
    rsa: rsa.key,
    ed: ed.key,
    zone: {
      txt: {
        "rsa._domainkey.example.com": [[rsa.record]],
        "ed._domainkey.example.com": [[ed.record]],
      },
    },
  };
}

/** Validates a message given as a binary string or chunks. */
export async function validate(
  message: string | Uint8Array[],
  zone: Zone,
  opts: ArcValidatorOptions & { timeoutMs?: number } = {},
): Promise<ArcValidation> {
  const v = new ArcValidator({ now: () => NOW, ...opts });
  for (const chunk of typeof message === "string" ? [bytes(message)] : message) v.write(chunk);
  return await v.finish(fakeResolver(zone), { timeoutMs: opts.timeoutMs });
}

/**
 * The message after `hops` forwarders: each validates it, seals it with
 * `key` (selector "rsa" or "ed" by the key's type) and a Received field
 * is added above the set, as the next hop would.
 */
export async function forward(
  message: string,
  hops: number,
  { key, zone }: { key: DkimSigningKey; zone: Zone },
): Promise<string> {
  for (let hop = 1; hop <= hops; hop++) {
    const validation = await validate(message, zone);
    const set = await sealMessage([bytes(message)], validation, `spf=pass (hop ${hop})`, {
      domain: "example.com",
      selector: key.algorithm === "rsa-sha256" ? "rsa" : "ed",
      key,
      authservId: `hop${hop}.example.com`,
      time: NOW,
    });
    if (set === null) throw new Error(`hop ${hop} did not seal`);
    message = `Received: from hop${hop}.example.com by hop${
      hop + 1
    }.example.com\r\n${set}${message}`;
  }
  return message;
}

/** What {@link craftSet} makes. */
export interface CraftOptions {
  instance: number;
  key: DkimSigningKey;
  /** cv= of the seal. */
  cv: string;
  /** Whether the seal signs the sets below its instance. @default cv === "pass" */
  signPrior?: boolean;
  /** Rewrites the ARC-Message-Signature's tags (without bh= and b=). */
  ams?: (tags: string) => string;
  /** Rewrites the ARC-Seal's tags (without b=). */
  seal?: (tags: string) => string;
}

/**
 * A hand-made ARC set for `message` (a binary string), ARC-Seal first, to
 * put on top of it: the ARC-Message-Signature's bh= and b= and the
 * ARC-Seal's b= are valid for the tags given, whatever they say.
 */
export function craftSet(message: string, opts: CraftOptions): string {
  const { instance: i, key, cv } = opts;
  const selector = key.algorithm === "rsa-sha256" ? "rsa" : "ed";
  const base = `i=${i}; a=${key.algorithm}; d=example.com; s=${selector}`;
  const amsTags = (opts.ams ?? ((t) => t))(`${base}; c=relaxed/relaxed; h=from:to:subject`);
  const sealTags = (opts.seal ?? ((t) => t))(`${base}; cv=${cv}`);
  const tags = parseTagList(amsTags);
  const canon = parseCanonicalization(tags.get("c") ?? "simple/simple")!;

  const reader = new MessageReader();
  const hasher = new BodyHasher(canon.body, {
    limit: tags.has("l") ? Number(tags.get("l")) : undefined,
  });
  hasher.update(reader.push(bytes(message)) ?? reader.end());
  const fields = reader.fields!;

  const aar = `ARC-Authentication-Results: i=${i}; crafted.example.com; spf=pass\r\n`;
  const amsUnsigned =
    `ARC-Message-Signature: ${amsTags}; bh=${hasher.digest().hash.toBase64()}; b=`;
  const names = (tags.get("h") ?? "").split(":").map((n) => n.trim());
  const amsData = signedHeaderData(fields, {
    names,
    signatureField: amsUnsigned,
    canon: canon.header,
  });
  const ams = `${amsUnsigned}${signData(key, amsData).toBase64()}\r\n`;

  const arc = fields.map(readArcField).filter((f) => f?.instance !== undefined);
  const prior = (opts.signPrior ?? cv === "pass")
    ? [...Array(i - 1).keys()].map((k) => {
      const text = (kind: string) =>
        arc.find((f) => f!.instance === k + 1 && f!.kind === kind)!.text;
      return canonicalSet(text("aar"), text("ams"), text("as"));
    })
    : [];
  const sealUnsigned = `ARC-Seal: ${sealTags}; b=`;
  const data = sealData([...prior, canonicalSet(aar, ams, sealUnsigned)]);
  return `${sealUnsigned}${signData(key, data).toBase64()}\r\n${ams}${aar}`;
}
