/**
 * Tests for header.ts: reading the instance of each ARC field, the
 * checks of ARC-Seal and ARC-Message-Signature tags, and the data a seal
 * signs.
 */
import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { latin1 } from "../dkim/mod.ts";
import type { HeaderField } from "../mime/mod.ts";
import {
  ArcFieldError,
  canonicalSet,
  readArcField,
  readMessageSignatureTags,
  readSealTags,
  sealData,
} from "./header.ts";
import { bytes } from "./testing.ts";

function field(text: string): HeaderField {
  const colon = text.indexOf(":");
  return { name: text.slice(0, colon), value: text.slice(colon + 1).trim(), raw: bytes(text) };
}

/** [instance, error, payload] of a field. */
function read(text: string) {
  const f = readArcField(field(text));
  return f && [f.instance, f.error, f.payload];
}

const SEAL = "i=1; a=rsa-sha256; cv=none; d=example.com; s=sel; t=1; b=AAAA";
const AMS =
  "i=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel; h=from:to; bh=AAAA; b=AAAA";

Deno.test("readArcField", async (t) => {
  await t.step("other fields are not ARC fields", () => {
    assertEquals(read("DKIM-Signature: i=1"), undefined);
    assertEquals(read("ARC-Foo: i=1"), undefined);
  });
  await t.step("ARC-Authentication-Results: i= first, CFWS allowed, payload unfolded", () => {
    assertEquals(read("ARC-Authentication-Results: i=1; mx.example; spf=pass\r\n"), [
      1,
      undefined,
      "mx.example; spf=pass",
    ]);
    assertEquals(
      read("arc-authentication-results:(c) i (x)= 12 ;\r\n\tmx.example;\r\n\tdkim=pass \r\n"),
      [12, undefined, "mx.example; dkim=pass"],
    );
    for (const bad of ["mx.example; i=1", "i=1 mx.example", "i=0; x", "i=123; x", "I=1; x", ""]) {
      assertEquals(
        read(`ARC-Authentication-Results: ${bad}`)![1],
        'does not start with "i=<instance>;"',
      );
    }
  });
  await t.step("ARC-Seal and ARC-Message-Signature: the i= tag, anywhere", () => {
    assertEquals(read(`ARC-Seal: ${SEAL}`), [1, undefined, undefined]);
    assertEquals(read("ARC-Message-Signature: a=x; i=50"), [50, undefined, undefined]);
    assertEquals(read("ARC-Seal: a=x; i=99")![0], 99); // more than 50 is the chain's to refuse
    assertEquals(read("ARC-Seal: a=x")![1], "has no i= tag");
    assertEquals(read("ARC-Seal: i=0")![1], "i=0 is not an instance");
    assertEquals(read("ARC-Seal: i=1a")![1], "i=1a is not an instance");
    assertEquals(read("ARC-Seal: i=100")![1], "i=100 is not an instance");
    assertEquals(read("ARC-Seal: i=1; i=2")![1], "i= is given twice");
    assertEquals(read("ARC-Seal: i=1; garbage")![1], '" garbage" has no "="');
  });
});

Deno.test("readSealTags", async (t) => {
  const seal = (tags: string) => readSealTags(readArcField(field(`ARC-Seal: ${tags}`))!.tags!);
  await t.step("a valid seal", () => {
    const s = seal("i=1; a=Ed25519-SHA256; cv=Pass; d=Example.COM; s=Sel; b=AQID; x=unknown");
    assertEquals(s, {
      algorithm: "ed25519-sha256",
      keyType: "ed25519",
      cv: "pass",
      domain: "example.com",
      selector: "Sel",
      signature: new Uint8Array([1, 2, 3]),
    });
  });
  await t.step("refused", () => {
    const cases: [string, string][] = [
      [`${SEAL}; h=from`, "has an h= tag, which an ARC-Seal must not have"],
      ["i=1; a=rsa-sha256; b=AAAA", "missing required tag cv=, d=, s="],
      [SEAL.replace("rsa-sha256", "rsa-sha1"), "unknown algorithm a=rsa-sha1"],
      [SEAL.replace("cv=none", "cv=maybe"), "cv=maybe is not a status"],
      [SEAL.replace("example.com", "localhost"), "d= is not a domain name"],
      [SEAL.replace("s=sel", "s=a b"), "s= is not a selector"],
      [SEAL.replace("t=1", "t=soon"), "t= is not a number"],
      [SEAL.replace("b=AAAA", "b=!!!"), "b= is not base64"],
      [SEAL.replace("b=AAAA", "b="), "b= is not base64"],
    ];
    for (const [tags, why] of cases) assertThrows(() => seal(tags), ArcFieldError, why);
  });
});

Deno.test("readMessageSignatureTags", async (t) => {
  const ams = (tags: string) =>
    readMessageSignatureTags(readArcField(field(`ARC-Message-Signature: ${tags}`))!.tags!);
  await t.step("a DKIM-Signature without v=, whose i= is the instance", () => {
    const sig = ams(AMS);
    assertEquals([sig.domain, sig.selector, sig.signedHeaders, sig.identity], [
      "example.com",
      "sel",
      ["from", "to"],
      "@example.com",
    ]);
    assertEquals(ams(`v=9; ${AMS}`).domain, "example.com"); // v= is ignored (section 4.1.2)
    assertEquals(ams(AMS.replace("c=relaxed/relaxed; ", "")).headerCanon, "simple");
  });
  await t.step("refused: ARC-Seal signed, and whatever DKIM refuses", () => {
    const cases: [string, string][] = [
      [AMS.replace("h=from:to", "h=from:arc-seal"), "h= signs ARC-Seal"],
      [AMS.replace("h=from:to", "h=to"), "h= does not sign From"],
      [AMS.replace("; bh=AAAA", ""), "missing required tag bh="],
      [AMS.replace("rsa-sha256", "rsa-sha1"), "a=rsa-sha1 is not accepted"],
      [`${AMS}; t=5; x=4`, "x= is not after t="],
    ];
    for (const [tags, why] of cases) assertThrows(() => ams(tags), ArcFieldError, why);
  });
});

Deno.test("sealData: sets in instance order, each AAR, AMS, AS, the last seal without b=", () => {
  const set = (i: number) =>
    canonicalSet(
      `ARC-Authentication-Results: i=${i};  a\r\n`,
      `ARC-Message-Signature: i=${i}; b=x\r\n`,
      `ARC-Seal: i=${i};\r\n b=sig${i}; cv=none\r\n`,
    );
  assertEquals(
    latin1(sealData([set(1), set(2)])),
    "arc-authentication-results:i=1; a\r\narc-message-signature:i=1; b=x\r\n" +
      "arc-seal:i=1; b=sig1; cv=none\r\n" +
      "arc-authentication-results:i=2; a\r\narc-message-signature:i=2; b=x\r\n" +
      "arc-seal:i=2; b=; cv=none",
  );
});
