/**
 * Unit tests for key.ts: loading signing keys from PEM, key records (RFC
 * 6376 section 3.6.1), public keys in them (RFC 8301 sizes, RFC 8463 raw
 * Ed25519 keys), and the two algorithms.
 */
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/helpers/assert.ts";
import {
  DkimKeyError,
  importPublicKey,
  keyRecordFor,
  loadSigningKey,
  parseKeyRecord,
  signData,
  verifyData,
} from "./key.ts";
import { ed25519Pem, RFC8463_ED25519_SEED, RFC8463_RECORDS, RFC8463_RSA_PEM } from "./testing.ts";

const rsa2048 = generateKeyPairSync("rsa", { modulusLength: 2048 });
const rsa512 = generateKeyPairSync("rsa", { modulusLength: 512 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const pem = (k: { export(o: object): string | Uint8Array }, type: string) =>
  k.export({ type, format: "pem" }).toString();
const der = (k: { export(o: object): string | Uint8Array }, type: string) =>
  new Uint8Array(k.export({ type, format: "der" }) as Uint8Array);

Deno.test("loadSigningKey", async (t) => {
  await t.step("RSA in PKCS#1 (opendkim-genkey) and PKCS#8, Ed25519 in PKCS#8", async () => {
    const pkcs1 = await loadSigningKey(RFC8463_RSA_PEM);
    assertEquals([pkcs1.algorithm, pkcs1.bits], ["rsa-sha256", 1024]);
    const pkcs8 = await loadSigningKey(pem(rsa2048.privateKey, "pkcs8"));
    assertEquals([pkcs8.algorithm, pkcs8.bits], ["rsa-sha256", 2048]);
    const ed = await loadSigningKey(ed25519Pem(RFC8463_ED25519_SEED));
    assertEquals([ed.algorithm, ed.bits], ["ed25519-sha256", 256]);
  });
  await t.step("anything else says what was found and what is expected", async () => {
    const cases: [string, string][] = [
      ["", "not a PEM key: expected an RSA private key"],
      ["ssh-ed25519 AAAA", "not a PEM key"],
      [pem(rsa2048.publicKey, "spki"), 'found "BEGIN PUBLIC KEY": expected'],
      [pem(ec.privateKey, "sec1"), 'found "BEGIN EC PRIVATE KEY"'],
      [pem(ec.privateKey, "pkcs8"), "found a PKCS#8 key of type ec: expected"],
      [
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        "ENCRYPTED",
      ],
      [
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        'malformed "BEGIN PRIVATE KEY"',
      ],
      [pem(rsa512.privateKey, "pkcs1"), "RSA key of 512 bits: at least 1024 needed (RFC 8301)"],
    ];
    for (const [text, message] of cases) {
      await assertRejects(() => loadSigningKey(text), DkimKeyError, message);
    }
  });
  await t.step("keyRecordFor gives what RFC 8463 publishes for its keys", async () => {
    const ed = await loadSigningKey(ed25519Pem(RFC8463_ED25519_SEED));
    const rsa = await loadSigningKey(RFC8463_RSA_PEM);
    const published = (name: string) => RFC8463_RECORDS[`${name}._domainkey.football.example.com`];
    assertEquals(keyRecordFor(ed), published("brisbane")[0][0]);
    assertEquals(keyRecordFor(rsa), published("test")[0].join(""));
  });
});

Deno.test("parseKeyRecord", async (t) => {
  await t.step("defaults: k=rsa, all hashes, not testing, not strict", () => {
    assertEquals(parseKeyRecord("p=AQAB"), {
      keyType: "rsa",
      hashes: undefined,
      publicKey: new Uint8Array([1, 0, 1]),
      testing: false,
      strict: false,
    });
  });
  await t.step("every tag", () => {
    const r = parseKeyRecord(
      "v=DKIM1; k=Ed25519; h=sha1 : SHA256; s=email:*; t=y:s:z; n=hi; p=AQ AB",
    );
    assertEquals(r, {
      keyType: "ed25519",
      hashes: ["sha1", "sha256"],
      publicKey: new Uint8Array([1, 0, 1]),
      testing: true,
      strict: true,
    });
  });
  await t.step("an empty p= is a revoked key, not an error", () => {
    assertEquals(parseKeyRecord("v=DKIM1; p=").publicKey.length, 0);
  });
  await t.step("errors", () => {
    const cases: [string, string][] = [
      ["v=DKIM1; k=rsa", "no p= tag"],
      ["v=DKIM1; p=not base64!", "p= is not base64"],
      ["v=DKIM2; p=AQAB", "v=DKIM2"],
      ["k=rsa; v=DKIM1; p=AQAB", "as the first tag"],
      ["v=DKIM1; s=tlsrpt; p=AQAB", "not for email"],
      ["v=DKIM1; p=AQAB; p=AQAB", "p= is given twice"],
      ["google-site-verification=abc", "is not a tag name"],
      ["v=spf1 -all", 'not "v=DKIM1"'],
      ["\x00\xff;;==", "key record:"],
    ];
    for (const [text, message] of cases) {
      assertThrows(() => parseKeyRecord(text), DkimKeyError, message);
    }
  });
});

Deno.test("importPublicKey", async (t) => {
  await t.step("RSA as SubjectPublicKeyInfo, or bare PKCS#1 RSAPublicKey", () => {
    const spki = importPublicKey("rsa", der(rsa2048.publicKey, "spki"));
    const pkcs1 = importPublicKey("rsa", der(rsa2048.publicKey, "pkcs1"));
    assertEquals(spki.asymmetricKeyDetails?.modulusLength, 2048);
    assertEquals(pkcs1.asymmetricKeyDetails?.modulusLength, 2048);
  });
  await t.step("Ed25519 as the raw 32-byte key (RFC 8463), nothing else", () => {
    const raw = Uint8Array.fromBase64("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    assertEquals(importPublicKey("ed25519", raw).asymmetricKeyType, "ed25519");
    const spki = der(importPublicKey("ed25519", raw), "spki");
    assertThrows(() => importPublicKey("ed25519", spki), DkimKeyError, "must be the 32-byte key");
  });
  await t.step("refused: short RSA keys (RFC 8301), garbage, the wrong type", () => {
    assertThrows(
      () => importPublicKey("rsa", der(rsa512.publicKey, "spki")),
      DkimKeyError,
      "512 bits is too short",
    );
    assertThrows(() => importPublicKey("rsa", new Uint8Array([1, 2, 3])), DkimKeyError);
    assertThrows(() => importPublicKey("rsa", der(ec.publicKey, "spki")), DkimKeyError);
    assertThrows(
      () => importPublicKey("dsa", new Uint8Array(32)),
      DkimKeyError,
      "unknown key type",
    );
  });
});

Deno.test("signData and verifyData", async () => {
  const data = new TextEncoder().encode("from:a@example.com\r\ndkim-signature:v=1; b=");
  for (const pemText of [RFC8463_RSA_PEM, ed25519Pem(RFC8463_ED25519_SEED)]) {
    const key = await loadSigningKey(pemText);
    const pub = createPublicKey(key.privateKey);
    const sig = signData(key, data);
    assert(verifyData(pub, { data, signature: sig }));
    assert(!verifyData(pub, { data: data.subarray(1), signature: sig }), "other data");
    assert(!verifyData(pub, { data, signature: sig.subarray(1) }), "a signature too short");
    assert(!verifyData(pub, { data, signature: new Uint8Array(4096) }), "a signature too long");
  }
});
