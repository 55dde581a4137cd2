/**
 * Tests for validate.ts: chains sealed by sealMessage, one to fifty hops;
 * each rule of RFC 8617 section 5.2 that fails a chain, on chains that
 * are tampered with or hand-made with valid signatures (craftSet), so
 * that only the rule under test can fail them; key lookups through
 * lib/dns's fake resolver; the oldest-pass; messages cut into chunks at
 * random points; and hostile input, which must always end in a result.
 */
import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { fakeResolver } from "../dns/testing.ts";
import { sealMessage } from "./seal.ts";
import { arcKeys, bytes, craftSet, forward, NOW, validate, type Zone } from "./testing.ts";
import { ArcValidator } from "./validate.ts";

const { rsa, ed, zone: ZONE } = await arcKeys();
const MESSAGE = "From: Joe <joe@example.org>\r\nTo: list@example.net\r\nSubject: dinner\r\n" +
  "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=x; h=from; bh=AAAA; b=AAAA\r\n" +
  "Date: Tue, 01 Dec 2026 11:59:00 +0000\r\n\r\nHello.\r\n\r\nAre you hungry yet?\r\n";
const ONE = await forward(MESSAGE, 1, { key: rsa, zone: ZONE });
const TWO = await forward(MESSAGE, 2, { key: ed, zone: ZONE });

/** "status: reason" of a message's validation. */
async function outcome(message: string, zone: Zone = ZONE): Promise<string> {
  const r = await validate(message, zone);
  return `${r.status}: ${r.reason}`;
}

/** The message with the first match of `from` replaced. */
function edit(message: string, from: string | RegExp, to: string): string {
  const edited = message.replace(from, to);
  assert(edited !== message, `${from} not found`);
  return edited;
}

/** The message without the fields matched (a field and its continuation lines). */
function drop(message: string, field: RegExp): string {
  const [header, body] = [
    message.slice(0, message.indexOf("\r\n\r\n") + 2),
    message.slice(message.indexOf("\r\n\r\n") + 2),
  ];
  const fields = header.split(/\r\n(?![ \t])/).filter((f) => f !== "");
  const kept = fields.filter((f) => !field.test(f));
  assert(kept.length < fields.length, `${field} not found`);
  return kept.map((f) => `${f}\r\n`).join("") + body;
}

Deno.test("chains that validate", async (t) => {
  await t.step("no ARC set: none", async () => {
    assertEquals(await validate(MESSAGE, ZONE), {
      status: "none",
      instance: 0,
      reason: "no ARC sets",
      sets: [],
    });
  });
  await t.step("one hop, rsa-sha256: the sets and the first hop's results", async () => {
    assertEquals(await validate(ONE, ZONE), {
      status: "pass",
      instance: 1,
      reason: "chain of 1 set validated",
      sets: [{
        instance: 1,
        sealDomain: "example.com",
        sealSelector: "rsa",
        amsDomain: "example.com",
        amsSelector: "rsa",
        cv: "none",
        authResults: "hop1.example.com; spf=pass (hop 1)",
      }],
      oldestPass: 0,
    });
  });
  await t.step("two and three hops, ed25519-sha256, with fields added between hops", async () => {
    const r = await validate(TWO, ZONE);
    assertEquals([r.status, r.instance, r.sets.map((s) => s.cv)], ["pass", 2, ["none", "pass"]]);
    const three = await forward(TWO.replace("Subject:", "X-Scanned: yes\r\nSubject:"), 1, {
      key: rsa,
      zone: ZONE,
    });
    const r3 = await validate(three, ZONE);
    assertEquals([r3.status, r3.instance, r3.oldestPass], ["pass", 3, 0]);
    assertEquals(r3.sets.map((s) => s.sealSelector), ["ed", "ed", "rsa"]);
  });
  await t.step("fifty hops pass; a fifty-first is not added", async () => {
    const fifty = await forward(MESSAGE, 50, { key: ed, zone: ZONE });
    const r = await validate(fifty, ZONE);
    assertEquals([r.status, r.instance, r.sets.length], ["pass", 50, 50]);
    const set = await sealMessage([bytes(fifty)], r, "", {
      domain: "example.com",
      selector: "ed",
      key: ed,
      authservId: "mx.example.com",
    });
    assertEquals(set, null);
  });
  await t.step("bare LF line ends", async () => {
    assertEquals(await outcome(TWO.replaceAll("\r\n", "\n")), "pass: chain of 2 sets validated");
  });
  await t.step(
    "oldest-pass: a list validates, tags the subject, seals; AMS i=1 no longer verifies",
    async () => {
      const validation = await validate(ONE, ZONE);
      const tagged = edit(ONE, "Subject: dinner", "Subject: [list] dinner");
      const set = await sealMessage([bytes(tagged)], validation, "arc=pass", {
        domain: "example.com",
        selector: "rsa",
        key: rsa,
        authservId: "list.example.com",
      });
      const two = set + tagged;
      const r = await validate(two, ZONE);
      assertEquals([r.status, r.oldestPass], ["pass", 2]);
      const three = await forward(two, 1, { key: rsa, zone: ZONE });
      assertEquals((await validate(three, ZONE)).oldestPass, 2);
    },
  );
  await t.step("oldest-pass: an older AMS that does not parse stops it", async () => {
    const noFrom = (t: string) => t.replace("h=from:", "h=");
    const one = craftSet(MESSAGE, { instance: 1, key: rsa, cv: "none", ams: noFrom }) + MESSAGE;
    const two = craftSet(one, { instance: 2, key: ed, cv: "pass" }) + one;
    const r = await validate(two, ZONE);
    assertEquals([r.status, r.oldestPass], ["pass", 2]);
  });
  await t.step("oldest-pass: bodies are hashed for two variants at most", async () => {
    const simple = (t: string) => t.replace("relaxed/relaxed", "simple/simple");
    const one = craftSet(MESSAGE, { instance: 1, key: rsa, cv: "none", ams: simple }) + MESSAGE;
    const two = craftSet(one, { instance: 2, key: rsa, cv: "pass", ams: (t) => `${t}; l=5` }) + one;
    const three = craftSet(two, { instance: 3, key: rsa, cv: "pass" }) + two;
    const r = await validate(three, ZONE);
    assertEquals([r.status, r.oldestPass], ["pass", 2]);
    assertEquals((await validate(two, ZONE)).oldestPass, 0);
  });
  await t.step("an AMS with l=: text appended after the signed length is not covered", async () => {
    const bodyLength = "Hello.\r\n".length;
    const set = craftSet(MESSAGE, {
      instance: 1,
      key: rsa,
      cv: "none",
      ams: (t) => `${t}; l=${bodyLength}`,
    });
    assertEquals(
      await outcome(`${set}${MESSAGE}P.S. appended\r\n`),
      "pass: chain of 1 set validated",
    );
  });
  await t.step("a seal's unknown tags are ignored, cv= is case-insensitive", async () => {
    const set = craftSet(MESSAGE, {
      instance: 1,
      key: rsa,
      cv: "None",
      seal: (t) => `${t}; t=1796000000; x=whatever; z=1`,
    });
    assertEquals(await outcome(set + MESSAGE), "pass: chain of 1 set validated");
  });
});

Deno.test("chains that fail", async (t) => {
  const cases: [string, () => string | Promise<string>, string][] = [
    [
      "body modified after sealing",
      () => `${ONE}P.S. added by a list\r\n`,
      "i=1: ARC-Message-Signature: body hash did not verify",
    ],
    [
      "a signed field modified",
      () => edit(TWO, "Subject: dinner", "Subject: lunch"),
      "i=2: ARC-Message-Signature: signature did not verify",
    ],
    [
      "an ARC-Seal modified",
      () => edit(ONE, /t=(\d+); cv=none/, "t=1; cv=none"),
      "i=1: ARC-Seal: signature did not verify",
    ],
    [
      "an older set's ARC-Authentication-Results modified: the newest seal fails first",
      () => edit(TWO, "spf=pass (hop 1)", "spf=fail (hop 1)"),
      "i=2: ARC-Seal: signature did not verify",
    ],
    [
      "a set missing",
      () => drop(TWO, /^ARC-[^:]*: i=1;/),
      "no ARC set i=1: instances must run from 1 to 2",
    ],
    [
      "an ARC-Authentication-Results missing",
      () => drop(TWO, /^ARC-Authentication-Results: i=2;/),
      "i=2: no ARC-Authentication-Results fields",
    ],
    [
      "an ARC-Seal duplicated",
      () => TWO.replace(/ARC-Seal: i=1;[^]*?\r\n(?![ \t])/, (seal) => seal + seal),
      "i=1: 2 ARC-Seal fields",
    ],
    [
      "an instance duplicated (a whole set twice)",
      () => {
        const set = ONE.slice(ONE.indexOf("ARC-Seal"), ONE.indexOf("From:"));
        return set + ONE;
      },
      "i=1: 2 ARC-Authentication-Results fields",
    ],
    [
      "i=2 with cv=none",
      () => craftSet(ONE, { instance: 2, key: rsa, cv: "none", signPrior: true }) + ONE,
      "i=2: ARC-Seal has cv=none, not pass",
    ],
    [
      "i=1 with cv=pass",
      () => craftSet(MESSAGE, { instance: 1, key: rsa, cv: "pass" }) + MESSAGE,
      "i=1: ARC-Seal has cv=pass, not none",
    ],
    [
      "the newest seal says cv=fail",
      () => craftSet(ONE, { instance: 2, key: rsa, cv: "fail" }) + ONE,
      "the newest ARC-Seal (i=2) has cv=fail",
    ],
    [
      "an older seal says cv=fail",
      () => {
        const bad = craftSet(MESSAGE, { instance: 1, key: rsa, cv: "fail" }) + MESSAGE;
        return craftSet(bad, { instance: 2, key: rsa, cv: "pass" }) + bad;
      },
      "i=1: ARC-Seal has cv=fail, not none",
    ],
    [
      "h= in an ARC-Seal",
      () =>
        craftSet(MESSAGE, { instance: 1, key: rsa, cv: "none", seal: (t) => `${t}; h=from` }) +
        MESSAGE,
      "i=1: ARC-Seal: has an h= tag, which an ARC-Seal must not have",
    ],
    [
      "an ARC-Message-Signature signing ARC-Seal",
      () =>
        craftSet(MESSAGE, { instance: 1, key: rsa, cv: "none", ams: (t) => `${t}:arc-seal` }) +
        MESSAGE,
      "i=1: ARC-Message-Signature: h= signs ARC-Seal",
    ],
    [
      "an ARC-Message-Signature not signing From",
      () =>
        craftSet(MESSAGE, {
          instance: 1,
          key: rsa,
          cv: "none",
          ams: (t) => t.replace("h=from:", "h="),
        }) + MESSAGE,
      "i=1: ARC-Message-Signature: h= does not sign From",
    ],
    [
      "an expired ARC-Message-Signature",
      () => {
        const x = NOW.getTime() / 1000 - 1;
        return craftSet(MESSAGE, {
          instance: 1,
          key: rsa,
          cv: "none",
          ams: (t) => `${t}; t=${x - 10}; x=${x}`,
        }) +
          MESSAGE;
      },
      "i=1: ARC-Message-Signature: signature expired",
    ],
    [
      "an l= past the body",
      () =>
        craftSet(MESSAGE, { instance: 1, key: rsa, cv: "none", ams: (t) => `${t}; l=1000` }) +
        MESSAGE,
      "i=1: ARC-Message-Signature: l= is longer than the body",
    ],
    [
      "an ARC-Seal with an unknown algorithm",
      () => edit(ONE, "a=rsa-sha256; t=", "a=rsa-sha512; t="),
      "i=1: ARC-Seal: unknown algorithm a=rsa-sha512",
    ],
    [
      "an ARC-Seal with garbage base64",
      () => edit(ONE, /; b=[^]*?\r\nARC-Message/, "; b=$$$!!!\r\nARC-Message"),
      "i=1: ARC-Seal: b= is not base64",
    ],
    [
      "an ARC-Seal whose tag list does not parse",
      () => edit(ONE, "ARC-Seal: i=1;", "ARC-Seal: i=1; oops;"),
      'ARC-Seal: " oops" has no "="',
    ],
    [
      "an ARC-Authentication-Results without its instance first",
      () => edit(ONE, "ARC-Authentication-Results: i=1;", "ARC-Authentication-Results: mx; i=1;"),
      'ARC-Authentication-Results: does not start with "i=<instance>;"',
    ],
    [
      "51 sets",
      () =>
        "ARC-Seal: i=51; a=rsa-sha256; cv=pass; d=example.com; s=rsa; b=AAAA\r\n" +
        "ARC-Message-Signature: i=51; a=rsa-sha256; d=example.com; s=rsa; h=from; bh=AA; b=AA\r\n" +
        `ARC-Authentication-Results: i=51; mx; none\r\n${ONE}`,
      "more than 50 ARC sets (i=51)",
    ],
  ];
  for (const [name, message, reason] of cases) {
    await t.step(name, async () => {
      const r = await validate(await message(), ZONE);
      assertEquals(`${r.status}: ${r.reason}`, `fail: ${reason}`);
      assertEquals(r.oldestPass, undefined);
    });
  }
  await t.step("a failed chain still reports the sets it has", async () => {
    const r = await validate(`${TWO}P.S.\r\n`, ZONE);
    assertEquals([r.status, r.instance, r.sets.map((s) => s.instance)], ["fail", 2, [1, 2]]);
  });
});

Deno.test("key lookups: every failure fails the chain", async (t) => {
  const name = "rsa._domainkey.example.com";
  const record = ZONE.txt![name] as string[][];
  const p = record[0][0].slice(record[0][0].indexOf("p="));
  const cases: [string, Zone["txt"], string][] = [
    ["no key record", {}, `no key for signature (${name})`],
    [
      "SERVFAIL",
      { [name]: "servfail" },
      "key lookup failed: Name service error for name=rsa._domainkey.example.com type=TXT: " +
      "Host not found, try again (temporary, but a failure for ARC: RFC 8617 section 5.2.1)",
    ],
    ["a revoked key", { [name]: [["v=DKIM1; p="]] }, "key revoked"],
    [
      "k= not a='s",
      { [name]: [[`v=DKIM1; k=ed25519; ${p}`]] },
      "key type k=ed25519 does not match",
    ],
    ["key h=sha1", { [name]: [[`v=DKIM1; h=sha1; ${p}`]] }, "key h= does not allow sha256"],
    ["a key of garbage", { [name]: [["v=DKIM1; p=AAAA"]] }, "p= is not an RSA public key"],
  ];
  for (const [what, txt, reason] of cases) {
    await t.step(what, async () => {
      const r = await validate(ONE, { txt });
      assertEquals(r.status, "fail");
      assert(
        r.reason.startsWith(`i=1: ARC-Message-Signature: ${reason}`),
        `${r.reason} does not start with ${reason}`,
      );
    });
  }
  await t.step("a time-out", async () => {
    const r = await validate(ONE, { txt: { [name]: "timeout" } }, { timeoutMs: 50 });
    assertEquals(r.status, "fail");
    assert(r.reason.includes("RFC 8617 section 5.2.1"), r.reason);
  });
  await t.step("each name is looked up once, the seals' keys all at once", async () => {
    const resolver = fakeResolver(ZONE);
    const v = new ArcValidator({ now: () => NOW });
    v.write(bytes(await forward(TWO, 1, { key: rsa, zone: ZONE })));
    assertEquals((await v.finish(resolver)).status, "pass");
    assertEquals(resolver.queries.toSorted(), [
      "TXT ed._domainkey.example.com",
      "TXT rsa._domainkey.example.com",
    ]);
  });
});

Deno.test("chunk boundaries do not change the result", async () => {
  const messages = [TWO, `${TWO}tampered\r\n`, edit(TWO, "spf=pass (hop 1)", "spf=none"), MESSAGE];
  const expected = await Promise.all(messages.map((m) => validate(m, ZONE)));
  await fc.assert(
    fc.asyncProperty(
      fc.nat(messages.length - 1),
      fc.array(fc.nat(), { maxLength: 20 }),
      async (which, cuts) => {
        const data = bytes(messages[which]);
        const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...points].map((p, i) => data.subarray(p, [...points, data.length][i]));
        assertEquals(await validate(chunks, ZONE), expected[which]);
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("hostile input always ends in a result, quickly", async (t) => {
  const timed = async (message: string, opts = {}) => {
    const start = performance.now();
    const r = await validate(message, ZONE, opts);
    assert(performance.now() - start < 3000, "took too long");
    return r;
  };
  await t.step("a giant ARC-Seal value", async () => {
    const r = await timed(`ARC-Seal: i=1; b=${"A".repeat(2_000_000)}\r\n${MESSAGE}`);
    assertEquals(r.reason, "header section larger than 1048576 bytes, not validated");
  });
  await t.step(
    "a header section over maxHeaderBytes: fail with ARC fields, none without",
    async () => {
      assertEquals((await timed(ONE, { maxHeaderBytes: 500 })).status, "fail");
      assertEquals((await timed(MESSAGE, { maxHeaderBytes: 100 })).status, "none");
    },
  );
  await t.step("garbage base64 in every signature", async () => {
    const r = await timed(ONE.replace(/b=[A-Za-z0-9+/=\r\n\t]+/g, "b=!!!!"));
    assertEquals(r.status, "fail");
  });
  await t.step("whitespace, comments and parentheses by the hundred thousand", async () => {
    for (
      const value of [
        `i=1; ${" ".repeat(200_000)}x`,
        `${"(".repeat(100_000)}i=1;`,
        `(${" ".repeat(100_000)}`,
        `i${" \t".repeat(100_000)}=1;`,
      ]
    ) {
      const r = await timed(`ARC-Authentication-Results: ${value}\r\n${ONE}`);
      assertEquals(r.status, "fail");
    }
  });
  await t.step("ten thousand ARC-Seal fields", async () => {
    const seals = "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.com; s=rsa; b=AAAA\r\n".repeat(
      10_000,
    );
    assertEquals((await timed(seals + ONE)).reason, "i=1: 10001 ARC-Seal fields");
  });
  await t.step("fifty sets with fifty different keys (none published)", async () => {
    let sets = "";
    for (let i = 50; i >= 1; i--) {
      sets += `ARC-Seal: i=${i}; a=rsa-sha256; cv=${i === 1 ? "none" : "pass"}; d=d${i}.example; ` +
        "s=s; b=AAAA\r\nARC-Message-Signature: i=" +
        `${i}; a=rsa-sha256; d=d${i}.example; s=s; h=from; bh=AAAA; b=AAAA\r\n` +
        `ARC-Authentication-Results: i=${i}; mx; none\r\n`;
    }
    const r = await timed(sets + MESSAGE);
    assertEquals(
      r.reason,
      "i=50: ARC-Message-Signature: no key for signature (s._domainkey.d50.example)",
    );
  });
  await t.step("random ARC-like header fields", async () => {
    const piece = fc.constantFrom(
      "ARC-Seal:",
      "ARC-Message-Signature:",
      "ARC-Authentication-Results:",
      " i=1;",
      " i=2;",
      "i=50",
      " cv=none;",
      " cv=pass;",
      " a=rsa-sha256;",
      " a=ed25519-sha256;",
      " d=example.com;",
      " s=rsa;",
      " s=ed;",
      " h=from:to;",
      " bh=AAAA;",
      " b=",
      "AAAA",
      "(",
      ")",
      ";",
      "=",
      " ",
      "\t",
      "\r\n",
      "\r\n ",
      "\n",
      "\x00",
      "\xff",
    );
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 60 }), async (pieces) => {
        const r = await validate(`${pieces.join("")}\r\n${ONE}`, ZONE);
        assert(["none", "pass", "fail"].includes(r.status));
      }),
      { numRuns: 300 },
    );
  });
});

Deno.test("ArcValidator is used once", async () => {
  const v = new ArcValidator();
  v.write(bytes(MESSAGE));
  await v.finish(fakeResolver({}));
  assertThrows(() => v.write(bytes("x")), Error, "write() after finish()");
  let threw = false;
  await v.finish(fakeResolver({})).catch(() => threw = true);
  assert(threw);
});
