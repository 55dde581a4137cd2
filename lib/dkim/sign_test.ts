/**
 * Unit tests for sign.ts: the DKIM-Signature field signMessage writes
 * (tags, folding, over-signing), its options, and that what it signs
 * verifies, cut into chunks anywhere.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "../../tests/helpers/assert.ts";
import { fakeResolver } from "../dns/testing.ts";
import { parseTagList } from "./tags.ts";
import { DkimSignError, signMessage, type SignOptions } from "./sign.ts";
import { bytes, testKey } from "./testing.ts";
import { DkimVerifier } from "./verify.ts";

const rsa = await testKey("rsa");
const ed = await testKey("ed25519");
const zone = {
  txt: { "rsa._domainkey.example.com": [[rsa.record]], "ed._domainkey.example.com": [[ed.record]] },
};
const TIME = new Date("2026-12-01T12:00:00Z");

const MESSAGE = "Received: from a\r\nReceived: from b\r\nFrom: Joe <joe@example.com>\r\n" +
  "To: a@example.org,\r\n b@example.org\r\nTo: c@example.org\r\nSubject: hello\r\n" +
  "List-Id: <list.example.com>\r\nContent-Type: text/plain\r\nX-Other: 1\r\n\r\nHi.\r\n";

function sign(message: string, opts: Partial<SignOptions> = {}) {
  return signMessage([bytes(message)], {
    domain: "example.com",
    selector: "rsa",
    key: rsa.key,
    time: TIME,
    ...opts,
  });
}

/** The field's tags. */
function tags(field: string) {
  return parseTagList(field.slice(field.indexOf(":") + 1));
}

async function verify(chunks: Uint8Array[]) {
  const v = new DkimVerifier({ now: () => TIME });
  for (const c of chunks) v.write(c);
  return (await v.finish(fakeResolver(zone))).map((r) => `${r.result}: ${r.reason}`);
}

Deno.test("signMessage: the field", async (t) => {
  for (const [name, key, selector] of [["rsa", rsa, "rsa"], ["ed25519", ed, "ed"]] as const) {
    await t.step(`${name}: tags, folding at 78 columns with CRLF TAB, no l= or i=`, async () => {
      const field = await sign(MESSAGE, { key: key.key, selector });
      assertMatch(field, /^DKIM-Signature: v=1; a=[^]*[^\r\n]\r\n$/);
      const lines = field.slice(0, -2).split("\r\n");
      assert(lines.every((l) => l.length <= 78), field);
      assert(lines.slice(1).every((l) => l.startsWith("\t") && l.trim() !== ""), field);
      const tg = tags(field);
      assertEquals([...tg.keys()], ["v", "a", "c", "d", "s", "t", "h", "bh", "b"]);
      assertEquals(tg.get("a"), key.key.algorithm);
      assertEquals(tg.get("c"), "relaxed/relaxed");
      assertEquals(tg.get("t"), String(TIME.getTime() / 1000));
      assertEquals(await verify([bytes(field + MESSAGE)]), ["pass: signature verified"]);
    });
  }
  await t.step("over-signing: each present field once per instance and once more", async () => {
    const h = tags(await sign(MESSAGE)).get("h")!.replace(/\s+/g, "");
    assertEquals(
      h,
      "from:from:subject:subject:to:to:to:list-id:list-id:content-type:content-type",
    );
  });
  await t.step("a chosen list: From added, absent fields left out, prefixes", async () => {
    const h = tags(await sign(MESSAGE, { headers: ["Received", "X-Missing", "x-*"] })).get("h")!;
    assertEquals(h.replace(/\s+/g, ""), "from:from:received:received:received:x-other:x-other");
  });
  await t.step("a message without From still signs From (h= must name it)", async () => {
    const h = tags(await sign("Subject: x\r\n\r\n")).get("h")!;
    assertEquals(h.replace(/\s+/g, ""), "from:subject:subject");
  });
  await t.step("x= when an expiry is asked for; other canonicalizations", async () => {
    const tg = tags(
      await sign(MESSAGE, { expireSeconds: 3600, canonicalization: "simple/simple" }),
    );
    assertEquals([tg.get("x"), tg.get("c")], [
      String(TIME.getTime() / 1000 + 3600),
      "simple/simple",
    ]);
    assertEquals(
      tags(await sign(MESSAGE, { canonicalization: "relaxed" })).get("c"),
      "relaxed/simple",
    );
  });
  await t.step("an internationalized domain is signed as A-labels", async () => {
    assertEquals(
      tags(await sign(MESSAGE, { domain: "bücher.example" })).get("d"),
      "xn--bcher-kva.example",
    );
  });
  await t.step("unusable options", async () => {
    const cases: [Partial<SignOptions>, string][] = [
      [{ canonicalization: "nofws" }, "canonicalization"],
      [{ domain: "example com" }, "not a domain name"],
      [{ domain: "localhost" }, "not a domain name"],
      [{ selector: "a;b=c" }, "selector"],
      [{ headers: ["from", "bad:name"] }, "not a header field name"],
      [{ expireSeconds: 0 }, "expireSeconds"],
      [{ expireSeconds: 1.5 }, "expireSeconds"],
      [{ time: new Date(NaN) }, "time"],
    ];
    for (const [opts, message] of cases) {
      await assertRejects(() => sign(MESSAGE, opts), DkimSignError, message);
    }
  });
});

Deno.test("signMessage: what it signs verifies", async (t) => {
  const messages = {
    "ordinary": MESSAGE,
    "empty body": "From: joe@example.com\r\n\r\n",
    "no body separator": "From: joe@example.com\r\nSubject: x\r\n",
    "trailing blank lines": `${MESSAGE}\r\n\r\n \r\n`,
    "bare LF line ends": MESSAGE.replaceAll("\r\n", "\n"),
    "8-bit bytes":
      "From: Jos\xc3\xa9 <j@example.com>\r\nSubject: \xe9t\xe9\r\n\r\ncaf\xe9 \xff\r\n",
  };
  for (const [name, message] of Object.entries(messages)) {
    for (const c of ["relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"]) {
      await t.step(`${name}, ${c}`, async () => {
        const field = await sign(message, { canonicalization: c });
        assertEquals(await verify([bytes(field + message)]), ["pass: signature verified"]);
      });
    }
  }
  await t.step("chunks cut anywhere, from an async iterable, give the same field", async () => {
    const whole = await sign(MESSAGE, { key: ed.key, selector: "ed" });
    const all = bytes(MESSAGE);
    async function* oneByteAtATime() {
      for (let i = 0; i < all.length; i++) yield all.subarray(i, i + 1);
    }
    const field = await signMessage(oneByteAtATime(), {
      domain: "example.com",
      selector: "ed",
      key: ed.key,
      time: TIME,
    });
    assertEquals(field, whole);
  });
});

Deno.test("signMessage: time to sign a 2 KB message (printed, not asserted)", async () => {
  const message = bytes(
    MESSAGE + "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n".repeat(34),
  );
  for (const [name, key] of [["rsa-2048", rsa.key], ["ed25519", ed.key]] as const) {
    const opts = { domain: "example.com", selector: "s", key };
    for (let i = 0; i < 20; i++) await signMessage([message], opts); // warm up
    const n = 200;
    const start = performance.now();
    for (let i = 0; i < n; i++) await signMessage([message], opts);
    const ms = (performance.now() - start) / n;
    console.log(`signing ${message.length} bytes with ${name}: ${ms.toFixed(3)} ms`);
  }
});
