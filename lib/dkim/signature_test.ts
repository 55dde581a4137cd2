/**
 * Unit tests for signature.ts: reading DKIM-Signature fields (RFC 6376
 * section 3.5) and the signed data (section 3.7), checked byte for byte
 * against RFC 8463 Appendix A, whose published signatures are reproduced
 * (Ed25519 and RSASSA-PKCS1-v1_5 are deterministic).
 */
import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { latin1 } from "./canon.ts";
import { loadSigningKey, signData } from "./key.ts";
import { MessageReader } from "./message.ts";
import {
  DkimSignatureError,
  parseSignature,
  signedHeaderData,
  stripSignatureValue,
} from "./signature.ts";
import {
  bytes,
  ed25519Pem,
  RFC8463_ED25519_SEED,
  RFC8463_MESSAGE,
  RFC8463_RSA_PEM,
} from "./testing.ts";

function rfcFields() {
  const reader = new MessageReader();
  reader.push(bytes(RFC8463_MESSAGE));
  return reader.fields!;
}

const VALID = "v=1; a=rsa-sha256; d=Example.COM; s=sel; h=From:To; bh=AQAB; b=AQAB";

Deno.test("parseSignature", async (t) => {
  await t.step("the RFC 8463 Ed25519 signature", () => {
    const field = latin1(rfcFields()[0].raw);
    const sig = parseSignature(field.slice(field.indexOf(":") + 1));
    assertEquals(
      [sig.algorithm, sig.keyType, sig.headerCanon, sig.bodyCanon, sig.domain, sig.selector],
      ["ed25519-sha256", "ed25519", "relaxed", "relaxed", "football.example.com", "brisbane"],
    );
    assertEquals(sig.identity, "@football.example.com");
    assertEquals(sig.signedHeaders, [
      "from",
      "to",
      "subject",
      "date",
      "message-id",
      "from",
      "subject",
      "date",
    ]);
    assertEquals(sig.timestamp, 1528637909);
    assertEquals(sig.signature.length, 64);
    assertEquals(sig.bodyHash.toBase64(), "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
  });
  await t.step("defaults: c=simple/simple, i=@d; d= lowercased, h= names lowercased", () => {
    const sig = parseSignature(VALID);
    assertEquals([sig.headerCanon, sig.bodyCanon, sig.identity], [
      "simple",
      "simple",
      "@example.com",
    ]);
    assertEquals([sig.domain, sig.signedHeaders], ["example.com", ["from", "to"]]);
  });
  await t.step("accepted: i= in a subdomain, l=, x= after t=, unknown tags, q=dns/txt", () => {
    const sig = parseSignature(
      `${VALID}; i=joe@News.Example.com; l=0; t=10; x=11; q=dns/txt; zz=whatever; z=From:x`,
    );
    assertEquals([sig.identity, sig.bodyLength, sig.timestamp, sig.expiration], [
      "joe@News.Example.com",
      0,
      10,
      11,
    ]);
  });
  await t.step("each refusal, with its reason", () => {
    const cases: [string, string][] = [
      ["v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AQAB", "missing required tag b="],
      ["a=rsa-sha256; d=example.com; s=sel; h=from", "missing required tag v=, b=, bh="],
      [VALID.replace("v=1", "v=2"), "unknown version v=2"],
      [VALID.replace("rsa-sha256", "rsa-sha1"), "a=rsa-sha1 is not accepted (RFC 8301)"],
      [VALID.replace("rsa-sha256", "ed448-sha256"), "unknown algorithm"],
      [`${VALID}; c=nofws`, "unknown canonicalization"],
      [`${VALID}; q=dns/other`, "unknown query method"],
      [VALID.replace("Example.COM", "com"), "d= is not a domain name"],
      [VALID.replace("Example.COM", "ex ample.com"), "d= is not a domain name"],
      [VALID.replace("s=sel", "s=a..b"), "s= is not a selector"],
      [VALID.replace("From:To", "To:Subject"), "h= does not sign From"],
      [VALID.replace("From:To", "From::To"), "h= is not a list"],
      [`${VALID}; i=joe@example.net`, "i= is not in d="],
      [`${VALID}; i=joe@badexample.com`, "i= is not in d="],
      [`${VALID}; i=example.com`, "i= is not in d="],
      [`${VALID}; l=-1`, "l= is not a number"],
      [`${VALID}; t=1234567890123`, "t= is not a number"],
      [`${VALID}; t=100; x=99`, "x= is not after t="],
      [`${VALID}; t=100; x=100`, "x= is not after t="],
      [VALID.replace("bh=AQAB", "bh=!!!"), "bh= is not base64"],
      [VALID.replace("b=AQAB", "b="), "b= is not base64"],
      [`${VALID}; d=example.com`, "d= is given twice"],
      [`${VALID}; bad`, 'has no "="'],
    ];
    for (const [value, reason] of cases) {
      assertThrows(() => parseSignature(value), DkimSignatureError, reason);
    }
  });
});

Deno.test("stripSignatureValue", () => {
  assertEquals(
    stripSignatureValue("DKIM-Signature: a=1; b=abc; bh=x"),
    "DKIM-Signature: a=1; b=; bh=x",
  );
  assertEquals(
    stripSignatureValue("DKIM-Signature: bh=x;\r\n b = ab\r\n cd \r\n"),
    "DKIM-Signature: bh=x;\r\n b =",
  );
  assertEquals(stripSignatureValue("X-B: b=1; a=2"), "X-B: b=; a=2", "only after the colon");
  assertEquals(stripSignatureValue("DKIM-Signature: a=1"), "DKIM-Signature: a=1");
});

Deno.test("signedHeaderData", async (t) => {
  const fields = rfcFields();
  const [edSig, rsaSig] = fields.slice(0, 2).map((f) => latin1(f.raw));
  const names = ["from", "to", "subject", "date", "message-id", "from", "subject", "date"];
  await t.step("RFC 8463: h= bottom-up, names listed again sign nothing, b= emptied", () => {
    const data = signedHeaderData(fields.slice(2), {
      names,
      signatureField: edSig,
      canon: "relaxed",
    });
    assertEquals(
      latin1(data),
      "from:Joe SixPack <joe@football.example.com>\r\n" +
        "to:Suzie Q <suzie@shopping.example.net>\r\n" +
        "subject:Is dinner ready?\r\n" +
        "date:Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n" +
        "message-id:<20030712040037.46341.5F8J@football.example.com>\r\n" +
        "dkim-signature:v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com; " +
        "i=@football.example.com; q=dns/txt; s=brisbane; t=1528637909; h=from : to : subject : " +
        "date : message-id : from : subject : date; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=",
    );
  });
  await t.step("RFC 8463: signing that data gives the published b= values", async () => {
    const published = (field: string) => field.slice(field.indexOf(" b=") + 3).replace(/\s+/g, "");
    const ed = await loadSigningKey(ed25519Pem(RFC8463_ED25519_SEED));
    const rsa = await loadSigningKey(RFC8463_RSA_PEM);
    const others = fields.slice(2);
    assertEquals(
      signData(ed, signedHeaderData(others, { names, signatureField: edSig, canon: "relaxed" }))
        .toBase64(),
      published(edSig),
    );
    assertEquals(
      signData(rsa, signedHeaderData(others, { names, signatureField: rsaSig, canon: "relaxed" }))
        .toBase64(),
      published(rsaSig),
    );
  });
  await t.step("instances are taken from the bottom, names compared case-insensitively", () => {
    const reader = new MessageReader();
    reader.push(bytes("From: one\r\nTO: x\r\nfrom: two\r\nX: y\r\n\r\n"));
    const data = signedHeaderData(reader.fields!, {
      names: ["From", "FROM", "from", "to", "x"],
      signatureField: "D: b=1",
      canon: "simple",
    });
    assertEquals(latin1(data), "from: two\r\nFrom: one\r\nTO: x\r\nX: y\r\nD: b=");
  });
  await t.step("simple keeps the signature field's folding", () => {
    const data = signedHeaderData([], {
      names: ["from"],
      signatureField: "DKIM-Signature: a=1;\r\n\tb=xyz\r\n",
      canon: "simple",
    });
    assertEquals(latin1(data), "DKIM-Signature: a=1;\r\n\tb=");
  });
});
