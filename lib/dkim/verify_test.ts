/**
 * Tests for verify.ts: RFC 8463 Appendix A; each rule of RFC 6376 section
 * 6 (with RFC 8301) that decides a result; tampered messages; key lookups
 * through lib/dns's fake resolver; messages cut into chunks at random
 * points; and hostile input, which must always end in results.
 */
import fc from "fast-check";
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/helpers/assert.ts";
import type { FullResolver } from "../dns/mod.ts";
import { fakeResolver } from "../dns/testing.ts";
import { signMessage } from "./sign.ts";
import { bytes, craftSignature, RFC8463_MESSAGE, RFC8463_RECORDS, testKey } from "./testing.ts";
import { type DkimResult, DkimVerifier, type DkimVerifierOptions } from "./verify.ts";

type Zone = Parameters<typeof fakeResolver>[0];
type Resolver = Pick<FullResolver, "resolveTxt">;

const rsa = await testKey("rsa");
const ed = await testKey("ed25519");
const NOW = new Date("2026-12-01T12:00:00Z");
const T = NOW.getTime() / 1000;
const MESSAGE = "From: Joe <joe@example.com>\r\nTo: Ann <ann@example.org>\r\nSubject: dinner\r\n" +
  "Date: Tue, 01 Dec 2026 11:59:00 +0000\r\n\r\nHello.\r\n\r\nAre you hungry yet?\r\n";
const BODY_LENGTH = "Hello.\r\n\r\nAre you hungry yet?\r\n".length;
const ZONE: Zone = {
  txt: { "rsa._domainkey.example.com": [[rsa.record]], "ed._domainkey.example.com": [[ed.record]] },
};

/** Verifies a message given as a binary string or chunks. */
async function verify(
  message: string | Uint8Array[],
  resolver: Resolver = fakeResolver(ZONE),
  opts: DkimVerifierOptions & { timeoutMs?: number } = {},
): Promise<DkimResult[]> {
  const v = new DkimVerifier({ now: () => NOW, ...opts });
  for (const chunk of typeof message === "string" ? [bytes(message)] : message) v.write(chunk);
  return await v.finish(resolver, { timeoutMs: opts.timeoutMs });
}

/** "result: reason" of each signature. */
async function outcome(
  message: string,
  zone: Zone = ZONE,
  opts?: DkimVerifierOptions,
): Promise<string[]> {
  return (await verify(message, fakeResolver(zone), opts)).map((r) => `${r.result}: ${r.reason}`);
}

/** MESSAGE (or another) under a signature crafted with these tags (rsa key unless a=ed25519). */
function crafted(tags: string, message = MESSAGE, bh?: string): string {
  const key = tags.includes("a=ed25519-sha256") ? ed.key : rsa.key;
  return craftSignature(bytes(message), { tags, key, bh }) + message;
}

const TAGS = "v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=rsa; h=from:to:subject";

Deno.test("RFC 8463 Appendix A: both signatures verify", async (t) => {
  const zone = { txt: RFC8463_RECORDS };
  await t.step("ed25519-sha256 and rsa-sha256 (a 1024-bit key)", async () => {
    const [edResult, rsaResult] = await verify(RFC8463_MESSAGE, fakeResolver(zone));
    assertEquals(edResult, {
      result: "pass",
      domain: "football.example.com",
      selector: "brisbane",
      identity: "@football.example.com",
      algorithm: "ed25519-sha256",
      signatureB:
        "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==",
      reason: "signature verified",
    });
    assertEquals([rsaResult.result, rsaResult.selector, rsaResult.algorithm], [
      "pass",
      "test",
      "rsa-sha256",
    ]);
  });
  await t.step("with bare LF line ends", async () => {
    assertEquals(await outcome(RFC8463_MESSAGE.replaceAll("\r\n", "\n"), zone), [
      "pass: signature verified",
      "pass: signature verified",
    ]);
  });
  await t.step(
    "a changed body, a changed field, a From added below or above: all fail",
    async () => {
      const fail = (why: string) => [`fail: ${why}`, `fail: ${why}`];
      const edits: [string, string, string[]][] = [
        ["hungry", "angry", fail("body hash did not verify")],
        ["dinner", "lunch", fail("signature did not verify")],
        [
          "Message-ID: <",
          "From: Mallory <m@evil.example>\r\nMessage-ID: <",
          fail("signature did not verify"),
        ],
        [
          "From: Joe",
          "From: Mallory <m@evil.example>\r\nFrom: Joe",
          fail("signature did not verify"),
        ],
        ["Message-ID:", "X-Mailer: any\r\nMessage-ID:", [
          "pass: signature verified",
          "pass: signature verified",
        ]],
      ];
      for (const [from, to, expected] of edits) {
        assertEquals(await outcome(RFC8463_MESSAGE.replace(from, to), zone), expected, to);
      }
    },
  );
});

Deno.test("signature rules", async (t) => {
  const cases: [string, string, string][] = [
    ["valid", crafted(TAGS), "pass: signature verified"],
    [
      "ed25519",
      crafted(TAGS.replace("rsa-sha256", "ed25519-sha256").replace("s=rsa", "s=ed")),
      "pass: signature verified",
    ],
    ["unknown tags are ignored", crafted(`${TAGS}; foo=bar; z=From:x`), "pass: signature verified"],
    [
      "tags in any order, folded",
      crafted(`s=rsa;\r\n\th=from : to;\r\n d=example.com; a=rsa-sha256; v=1`),
      "pass: signature verified",
    ],
    [
      "x= passed: expired",
      crafted(`${TAGS}; t=${T - 100}; x=${T - 1}`),
      "permerror: signature expired",
    ],
    ["x= to come", crafted(`${TAGS}; t=${T - 100}; x=${T + 1}`), "pass: signature verified"],
    ["x= before t=", crafted(`${TAGS}; t=${T + 10}; x=${T + 5}`), "permerror: x= is not after t="],
    [
      "t= in the future is not refused",
      crafted(`${TAGS}; t=${T + 86400}`),
      "pass: signature verified",
    ],
    ["i= in d=", crafted(`${TAGS}; i=joe@example.com`), "pass: signature verified"],
    [
      "i= in a subdomain of d=",
      crafted(`${TAGS}; i=@mail.example.com`),
      "pass: signature verified",
    ],
    [
      "i= elsewhere",
      crafted(`${TAGS}; i=joe@example.net`),
      "permerror: i= is not in d= or a subdomain of it",
    ],
    ["h= without From", crafted(TAGS.replace("from:", "")), "permerror: h= does not sign From"],
    ["v=2", crafted(TAGS.replace("v=1", "v=2")), "permerror: unknown version v=2"],
    [
      "rsa-sha1 (RFC 8301)",
      crafted(TAGS.replace("sha256", "sha1")),
      "permerror: a=rsa-sha1 is not accepted (RFC 8301)",
    ],
    ["a tag twice", crafted(TAGS).replace("v=1;", "v=1; s=rsa;"), "permerror: s= is given twice"],
    [
      "a required tag missing",
      `DKIM-Signature: ${TAGS}; bh=AQAB\r\n${MESSAGE}`,
      "permerror: missing required tag b=",
    ],
    ["l= the body's length", crafted(`${TAGS}; l=${BODY_LENGTH}`), "pass: signature verified"],
    [
      "l= past the body",
      crafted(`${TAGS}; l=${BODY_LENGTH + 1}`),
      "permerror: l= is longer than the body",
    ],
    [
      "l= of 76 digits",
      crafted(`${TAGS}; l=${"9".repeat(76)}`),
      "permerror: l= is longer than the body",
    ],
    [
      "bh= of another body",
      crafted(TAGS, MESSAGE, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
      "fail: body hash did not verify",
    ],
    ["bh= of the wrong length", crafted(TAGS, MESSAGE, "AQAB"), "fail: body hash did not verify"],
  ];
  for (const [name, message, expected] of cases) {
    await t.step(name, async () => assertEquals(await outcome(message), [expected]));
  }
  await t.step("a b= of the wrong length, or of garbage", async () => {
    const valid = crafted(TAGS);
    const short = valid.replace(/ b=[A-Za-z0-9+/=]+(?=\r\n)/, " b=AQAB");
    assertEquals(await outcome(short), ["fail: signature did not verify"]);
    const garbage = valid.replace(/ b=[A-Za-z0-9+/=]+(?=\r\n)/, " b=!!not*base64??");
    assertEquals(await outcome(garbage), ["permerror: b= is not base64"]);
  });
  await t.step("the result carries d=, s=, i=, a= and b= as found", async () => {
    const [r] = await verify(
      crafted(`${TAGS}; i=joe@Example.com`.replace("d=example.com", "d=EXAMPLE.com")),
    );
    assertEquals([r.result, r.domain, r.selector, r.identity, r.algorithm], [
      "pass",
      "example.com",
      "rsa",
      "joe@Example.com",
      "rsa-sha256",
    ]);
    assert(/^[A-Za-z0-9+/]+=*$/.test(r.signatureB) && r.signatureB.length === 344);
  });
});

Deno.test("key records and lookups", async (t) => {
  const name = "rsa._domainkey.example.com";
  const withKey = (records: string[][] | "nxdomain" | "nodata" | "servfail" | "timeout") => ({
    txt: { [name]: records },
  });
  const p = rsa.record.slice(rsa.record.indexOf("p="));
  const short = generateKeyPairSync("rsa", { modulusLength: 512 }).publicKey;
  const der = (type: "spki" | "pkcs1") =>
    new Uint8Array(short.export({ type, format: "der" }) as Uint8Array).toBase64();
  const pkcs1 = new Uint8Array(
    generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({
      type: "pkcs1",
      format: "der",
    }),
  );
  const cases: [string, Zone, string, string?][] = [
    [
      "the first TXT record that parses is used",
      withKey([["v=spf1 -all"], ["p=!!"], [rsa.record], ["v=DKIM1; p="]]),
      "pass: signature verified",
    ],
    [
      "a record in several strings",
      withKey([[rsa.record.slice(0, 100), rsa.record.slice(100)]]),
      "pass: signature verified",
    ],
    [
      "no record parses",
      withKey([["v=spf1 -all"], ["hello"]]),
      'permerror: key record: v=spf1 -all is not "v=DKIM1" as the first tag',
    ],
    ["no TXT records", withKey([]), "permerror: no key for signature (rsa._domainkey.example.com)"],
    [
      "NXDOMAIN",
      withKey("nxdomain"),
      "permerror: no key for signature (rsa._domainkey.example.com)",
    ],
    [
      "no TXT data",
      withKey("nodata"),
      "permerror: no key for signature (rsa._domainkey.example.com)",
    ],
    [
      "SERVFAIL",
      withKey("servfail"),
      "temperror: key lookup failed: Name service error for name=rsa._domainkey.example.com type=TXT: Host not found, try again",
    ],
    [
      "a time-out",
      withKey("timeout"),
      "temperror: key lookup failed: rsa._domainkey.example.com TXT",
    ],
    ["revoked (empty p=)", withKey([["v=DKIM1; k=rsa; p="]]), "permerror: key revoked"],
    [
      "k= of another type",
      withKey([[`v=DKIM1; k=ed25519; ${p}`]]),
      "permerror: key type k=ed25519 does not match a=rsa-sha256",
    ],
    [
      "an unknown k=",
      withKey([[`v=DKIM1; k=dsa; ${p}`]]),
      "permerror: key type k=dsa does not match a=rsa-sha256",
    ],
    [
      "h= without sha256",
      withKey([[`v=DKIM1; h=sha1; ${p}`]]),
      "permerror: key h= does not allow sha256",
    ],
    ["h= with sha256", withKey([[`v=DKIM1; h=sha1:sha256; ${p}`]]), "pass: signature verified"],
    [
      "s= not email",
      withKey([[`v=DKIM1; s=tlsrpt; ${p}`]]),
      "permerror: key record is not for email (s=tlsrpt)",
    ],
    [
      "t=s, i= in d=",
      withKey([[`v=DKIM1; t=s; ${p}`]]),
      "pass: signature verified",
      "@example.com",
    ],
    [
      "t=s, i= in a subdomain",
      withKey([[`v=DKIM1; t=s; ${p}`]]),
      "permerror: key t=s requires i= in d= itself, not a subdomain",
      "@a.example.com",
    ],
    [
      "an RSA key of 512 bits (RFC 8301)",
      withKey([[`v=DKIM1; p=${der("spki")}`]]),
      "permerror: RSA key of 512 bits is too short (RFC 8301)",
    ],
    [
      "a 512-bit PKCS#1 key",
      withKey([[`v=DKIM1; p=${der("pkcs1")}`]]),
      "permerror: RSA key of 512 bits is too short (RFC 8301)",
    ],
    [
      "p= of base64 garbage",
      withKey([["v=DKIM1; p=AAAAAAAAAAAAAAAA"]]),
      "permerror: p= is not an RSA public key",
    ],
    [
      "a record of garbage",
      withKey([["\x00\x01v=DKIM1;;;=;p"]]),
      'permerror: key record: "\x00\x01v" is not a tag name',
    ],
    [
      "another PKCS#1 key signs nothing here",
      withKey([[`p=${pkcs1.toBase64()}`]]),
      "fail: signature did not verify",
    ],
  ];
  for (const [title, zone, expected, identity] of cases) {
    await t.step(title, async () => {
      const tags = identity ? `${TAGS}; i=${identity}` : TAGS;
      assertEquals(await outcome(crafted(tags), zone), [expected]);
    });
  }
  await t.step("the key of a PKCS#1 record (RSAPublicKey, as some publish) verifies", async () => {
    const pub = createPublicKey(rsa.key.privateKey).export({ type: "pkcs1", format: "der" });
    const record = `v=DKIM1; p=${new Uint8Array(pub).toBase64()}`;
    assertEquals(await outcome(crafted(TAGS), withKey([[record]])), ["pass: signature verified"]);
  });
  await t.step("t=y is reported as testing", async () => {
    const [r] = await verify(crafted(TAGS), fakeResolver(withKey([[`v=DKIM1; t=y; ${p}`]])));
    assertEquals([r.result, r.testing], ["pass", true]);
  });
  await t.step("a resolver that never answers, with timeoutMs: temperror", async () => {
    const hang: Resolver = { resolveTxt: () => new Promise(() => {}) };
    const [r] = await verify(crafted(TAGS), hang, { timeoutMs: 5 });
    assertEquals([r.result, r.reason], ["temperror", "key lookup failed: no answer in 5 ms"]);
  });
  await t.step("a resolver that throws anything else: temperror", async () => {
    const broken: Resolver = { resolveTxt: () => Promise.reject(new Error("socket closed")) };
    assertEquals((await verify(crafted(TAGS), broken)).map((r) => r.result), ["temperror"]);
  });
  await t.step("each key name is looked up once", async () => {
    const resolver = fakeResolver(ZONE);
    const once = crafted(TAGS);
    const twice = craftSignature(bytes(once), { tags: TAGS, key: rsa.key }) + once;
    assertEquals((await verify(twice, resolver)).map((r) => r.result), ["pass", "pass"]);
    assertEquals(resolver.queries, ["TXT rsa._domainkey.example.com"]);
  });
});

Deno.test("tampering", async (t) => {
  const field = await signMessage([bytes(MESSAGE)], {
    domain: "example.com",
    selector: "ed",
    key: ed.key,
    time: NOW,
  });
  const signed = field + MESSAGE;
  const cases: [string, string, string][] = [
    ["untouched", signed, "pass: signature verified"],
    [
      "a signed field changed",
      signed.replace("Subject: dinner", "Subject: diner"),
      "fail: signature did not verify",
    ],
    [
      "a signed field's name case changed (relaxed)",
      signed.replace("Subject:", "SUBJECT:"),
      "pass: signature verified",
    ],
    [
      "a signed field refolded (relaxed)",
      signed.replace("Subject: dinner", "Subject:\r\n   dinner  "),
      "pass: signature verified",
    ],
    ["the body changed", signed.replace("hungry", "angry"), "fail: body hash did not verify"],
    [
      "whitespace in the body changed (relaxed)",
      signed.replace("Are you", "Are \t you  "),
      "pass: signature verified",
    ],
    ["blank lines added at the end (relaxed)", `${signed}\r\n\r\n`, "pass: signature verified"],
    ["text appended", `${signed}PS\r\n`, "fail: body hash did not verify"],
    [
      "a From added below",
      signed.replace("\r\n\r\n", "\r\nFrom: Mallory <m@evil.example>\r\n\r\n"),
      "fail: signature did not verify",
    ],
    [
      "a From added above",
      signed.replace("From: Joe", "From: Mallory <m@evil.example>\r\nFrom: Joe"),
      "fail: signature did not verify",
    ],
    [
      "a Subject added (over-signed)",
      signed.replace("\r\n\r\n", "\r\nSubject: free money\r\n\r\n"),
      "fail: signature did not verify",
    ],
    [
      "a field it does not sign added",
      signed.replace("\r\n\r\n", "\r\nX-Spam: no\r\n\r\n"),
      "pass: signature verified",
    ],
    [
      "the signature's d= changed",
      signed.replace("d=example.com", "d=example.org"),
      "permerror: no key for signature (ed._domainkey.example.org)",
    ],
    [
      "the signature's t= changed",
      signed.replace(/t=\d+/, `t=${T - 1}`),
      "fail: signature did not verify",
    ],
  ];
  for (const [name, message, expected] of cases) {
    await t.step(name, async () => assertEquals(await outcome(message), [expected]));
  }
  await t.step("simple/simple does not forgive refolding or whitespace", async () => {
    const simple = await signMessage([bytes(MESSAGE)], {
      domain: "example.com",
      selector: "ed",
      key: ed.key,
      canonicalization: "simple/simple",
    }) + MESSAGE;
    assertEquals(await outcome(simple), ["pass: signature verified"]);
    assertEquals(await outcome(simple.replace("Subject: dinner", "Subject:  dinner")), [
      "fail: signature did not verify",
    ]);
    assertEquals(await outcome(simple.replace("Are you", "Are  you")), [
      "fail: body hash did not verify",
    ]);
    assertEquals(await outcome(`${simple}\r\n\r\n`), ["pass: signature verified"]);
  });
  await t.step(
    "l=: what follows the signed length is not covered, and cutting the body fails",
    async () => {
      const limited = crafted(`${TAGS}; l=${BODY_LENGTH}`);
      assertEquals(await outcome(`${limited}--\r\nContent-Type: text/html\r\n\r\n<a href=x>`), [
        "pass: signature verified",
      ]);
      assertEquals(await outcome(limited.replace("yet?\r\n", "")), [
        "permerror: l= is longer than the body",
      ]);
      assertEquals(await outcome(limited.replace("hungry", "Hungry")), [
        "fail: body hash did not verify",
      ]);
    },
  );
});

Deno.test("results do not depend on where the message is cut", async () => {
  const signed = await signMessage([bytes(MESSAGE)], {
    domain: "example.com",
    selector: "rsa",
    key: rsa.key,
  });
  const messages: [string, Zone][] = [
    [RFC8463_MESSAGE, { txt: RFC8463_RECORDS }],
    [RFC8463_MESSAGE.replace("hungry", "angry").replaceAll("\r\n", "\n"), { txt: RFC8463_RECORDS }],
    [signed + MESSAGE.replace("Hello.\r\n", "Hello. \t\r\n\r\n") + "\r\n\r\n", ZONE],
    [crafted(`${TAGS}; l=${BODY_LENGTH}`) + "more\r\n", ZONE],
    [crafted(TAGS, "From: a@example.com\r\nTo: b\r\nSubject: c"), ZONE],
    [crafted(TAGS, "From: a@example.com\r\n\r\n") + "\r\n\r", ZONE],
  ];
  const whole = await Promise.all(messages.map(([m, zone]) => verify(m, fakeResolver(zone))));
  assert(
    whole.flat().some((r) => r.result === "pass") && whole.flat().some((r) => r.result === "fail"),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.nat(messages.length - 1),
      fc.array(fc.nat(), { maxLength: 12 }),
      async (i, cuts) => {
        const [message, zone] = messages[i];
        const all = bytes(message);
        const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
        const chunks = [...points, all.length].map((end, j) =>
          all.subarray(j ? points[j - 1] : 0, end)
        );
        assertEquals(await verify(chunks, fakeResolver(zone)), whole[i]);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("hostile input always ends in results", async (t) => {
  const valid = crafted(TAGS);
  const field = valid.slice(0, valid.indexOf("From: "));
  await t.step("1000 signatures: 8 evaluated, the rest reported, one key lookup", async () => {
    const resolver = fakeResolver(ZONE);
    const start = performance.now();
    const results = await verify(field.repeat(1000) + MESSAGE, resolver);
    const ms = performance.now() - start;
    assertEquals(results.length, 1000);
    assertEquals(results.slice(0, 8).map((r) => r.result), Array(8).fill("pass"));
    assert(
      results.slice(8).every((r) => r.result === "permerror" && r.reason === "too many signatures"),
    );
    assertEquals(results[999].domain, "example.com");
    assertEquals(resolver.queries.length, 1);
    assert(ms < 2000, `${ms} ms`);
  });
  await t.step("maxSignatures", async () => {
    const results = await outcome(field.repeat(3) + MESSAGE, ZONE, { maxSignatures: 1 });
    assertEquals(results, [
      "pass: signature verified",
      "permerror: too many signatures",
      "permerror: too many signatures",
    ]);
  });
  await t.step("a header section over maxHeaderBytes: none is evaluated", async () => {
    const big = `${field}X-Big: ${"x".repeat(2000)}\r\n${MESSAGE}`;
    assertEquals(await outcome(big, ZONE, { maxHeaderBytes: 1000 }), [
      "permerror: header section too large to verify",
    ]);
    const many = field + "X-A: b\r\n".repeat(200) + field + MESSAGE;
    assertEquals(await outcome(many, ZONE, { maxHeaderBytes: 1500 }), [
      "permerror: header section too large to verify",
    ]);
    assertEquals(await outcome(big, ZONE, { maxHeaderBytes: 4000 }), ["pass: signature verified"]);
  });
  await t.step("giant tag values", async () => {
    const huge = "A".repeat(600_000);
    const cases: [string, string][] = [
      [crafted(`${TAGS}; zz=${huge}`), "pass: signature verified"],
      [valid.replace(/ b=[A-Za-z0-9+/=]+(?=\r\n)/, ` b=${huge}`), "fail: signature did not verify"],
      [
        valid.replace("h=from:to:subject", `h=from${":x-a".repeat(100_000)}`),
        "fail: signature did not verify",
      ],
      [
        valid.replace("d=example.com", `d=${"a.".repeat(1000)}com`),
        "permerror: d= is not a domain name",
      ],
      [valid.replace("s=rsa", `s=${"s".repeat(64)}`), "permerror: s= is not a selector"],
      [valid.replace("h=from:", `h=from${" ".repeat(500_000)}:`), "fail: signature did not verify"],
      [valid.replace(" bh=", ` bh=${"\t".repeat(500_000)}`), "fail: signature did not verify"],
    ];
    for (const [message, expected] of cases) assertEquals(await outcome(message), [expected]);
  });
  await t.step("odd fields", async () => {
    const cases: [string, string[]][] = [
      [MESSAGE, []],
      [`DKIM-Signature:\r\n${MESSAGE}`, [
        "permerror: missing required tag v=, a=, b=, bh=, d=, h=, s=",
      ]],
      [`dkim-signature: ;;;\r\n${MESSAGE}`, [
        "permerror: missing required tag v=, a=, b=, bh=, d=, h=, s=",
      ]],
      [`DKIM-Signature: v=1; a=\xff\xfe\r\n${MESSAGE}`, [
        "permerror: the value of a= has a character not allowed in a tag value",
      ]],
      [`DKIM-Signature: ${"=".repeat(5000)}\r\n${MESSAGE}`, ['permerror: "" is not a tag name']],
      [field.replace("DKIM-Signature", "DkIm-SiGnAtUrE") + MESSAGE, ["pass: signature verified"]],
    ];
    for (const [message, expected] of cases) assertEquals(await outcome(message), expected);
  });
  await t.step("random bytes and random damage", async () => {
    const signed = bytes(valid);
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(signed.length),
        fc.boolean(),
        async (junk, at, insert) => {
          const message = insert
            ? new Uint8Array([...signed.subarray(0, at), ...junk, ...signed.subarray(at)])
            : junk;
          const results = await verify([message]);
          for (const r of results) {
            assert(["pass", "fail", "permerror", "temperror"].includes(r.result));
            assert(r.reason.length > 0);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
  await t.step("misuse: write() after finish(), finish() twice", async () => {
    const v = new DkimVerifier();
    v.write(bytes(MESSAGE));
    assertEquals(await v.finish(fakeResolver(ZONE)), []);
    assertThrows(() => v.write(bytes("x")));
    await assertRejects(() => v.finish(fakeResolver(ZONE)));
  });
});
