/**
 * Tests for seal.ts: the fields written (order, tags, folding, what the
 * message signature signs), the cv= each validation gives and what a
 * cv=fail seal signs, when no set is added, the authResults payload forms,
 * and the options refused.
 */
import { createPublicKey } from "node:crypto";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "../../tests/helpers/assert.ts";
import { verifyData } from "../dkim/mod.ts";
import { authenticationResults } from "../authres/mod.ts";
import { canonicalSet, sealData } from "./header.ts";
import { ArcSealError, sealMessage, type SealOptions } from "./seal.ts";
import { arcKeys, bytes, craftSet, NOW, validate } from "./testing.ts";
import type { ArcValidation } from "./validate.ts";

const { rsa, ed, zone: ZONE } = await arcKeys();
const MESSAGE = "Received: from a.example by b.example\r\nFrom: Joe <joe@example.org>\r\n" +
  "To: ann@example.net\r\nCc: bob@example.net\r\nCc: carl@example.net\r\nSubject: hi\r\n" +
  "Authentication-Results: mx.example.com; spf=pass\r\nList-Id: <l.example.net>\r\n" +
  "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=x; h=from; bh=AAAA; b=AAAA\r\n" +
  "\r\nHello.\r\n";
const NONE: ArcValidation = { status: "none", instance: 0, reason: "no ARC sets", sets: [] };
const OPTS: SealOptions = {
  domain: "example.com",
  selector: "rsa",
  key: rsa,
  authservId: "mx.example.com",
  time: NOW,
};

function seal(
  message: string,
  validation: ArcValidation = NONE,
  authResults = "spf=pass smtp.mailfrom=joe@example.org",
  opts: Partial<SealOptions> = {},
): Promise<string | null> {
  return sealMessage([bytes(message)], validation, authResults, { ...OPTS, ...opts });
}

/** A field's value unfolded. */
function value(set: string, name: string): string {
  const m = new RegExp(`^${name}: (.*(?:\r\n[ \t].*)*)`, "m").exec(set);
  assert(m, `no ${name}`);
  return m[1].replace(/\r\n/g, "");
}

Deno.test("sealMessage writes the three fields", async (t) => {
  const set = (await seal(MESSAGE))!;
  await t.step("in order, folded at 78 columns, each ending CRLF", () => {
    const lines = set.split("\r\n");
    assertEquals(lines.at(-1), "");
    assertMatch(lines[0], /^ARC-Seal: i=1; /);
    assert(lines.every((l) => l.length <= 78), "a line is longer than 78");
    const names = lines.filter((l) => /^\S/.test(l)).map((l) => l.slice(0, l.indexOf(":")));
    assertEquals(names, ["ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results"]);
  });
  await t.step("the ARC-Seal: i, a, t, cv, d, s, b and no h=", () => {
    assertMatch(
      value(set, "ARC-Seal"),
      /^i=1; a=rsa-sha256; t=1796126400; cv=none; d=example\.com; s=rsa;\s*b=[A-Za-z0-9+/=\t]+$/,
    );
  });
  await t.step("the ARC-Message-Signature: relaxed/relaxed, no v=, l= or x=", () => {
    assertMatch(
      value(set, "ARC-Message-Signature"),
      /^i=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.com;\s*s=rsa; t=1796126400; h=[^;]+;\s*bh=[^;]+;\s*b=[^;]+$/,
    );
  });
  await t.step(
    "h=: each field present once per instance, no ARC field or Authentication-Results",
    () => {
      const h = /h=([^;]+);/.exec(value(set, "ARC-Message-Signature"))![1].replace(/\s/g, "");
      assertEquals(h, "from:dkim-signature:subject:to:cc:cc:list-id");
    },
  );
  await t.step("the ARC-Authentication-Results: i=, authserv-id, one result per line", () => {
    assertEquals(
      set.slice(set.indexOf("ARC-Authentication-Results")),
      "ARC-Authentication-Results: i=1; mx.example.com;\r\n\tspf=pass smtp.mailfrom=joe@example.org\r\n",
    );
  });
  await t.step("it validates, with the ed25519 key too", async () => {
    assertEquals((await validate(set + MESSAGE, ZONE)).status, "pass");
    const edSet = (await seal(MESSAGE, NONE, "", { key: ed, selector: "ed" }))!;
    assertMatch(edSet, /a=ed25519-sha256/);
    assertEquals((await validate(edSet + MESSAGE, ZONE)).status, "pass");
  });
  await t.step("From is signed even when asked for nothing, and when missing", async () => {
    const noFrom = MESSAGE.replace(/From: .*\r\n/, "");
    const s = (await seal(noFrom, NONE, "", { headers: [] }))!;
    assertMatch(value(s, "ARC-Message-Signature"), /h=from;/);
    assertEquals((await validate(s + noFrom, ZONE)).status, "pass");
  });
  await t.step("headers: names and prefixes", async () => {
    const s = (await seal(MESSAGE, NONE, "", { headers: ["Subject", "c*", "received"] }))!;
    assertMatch(value(s, "ARC-Message-Signature"), /h=from:subject:cc:cc:received;/);
  });
  await t.step("an internationalized domain is written as A-labels", async () => {
    const s = (await seal(MESSAGE, NONE, "", { domain: "bücher.example" }))!;
    assertStringIncludes(s, "d=xn--bcher-kva.example;");
  });
});

Deno.test("sealMessage: cv= and what the seal signs", async (t) => {
  const one = (await seal(MESSAGE))! + MESSAGE;
  await t.step("after a pass: i=2, cv=pass, over both sets", async () => {
    const validation = await validate(one, ZONE);
    const set = (await seal(one, validation))!;
    assertMatch(set, /^ARC-Seal: i=2; a=rsa-sha256; t=\d+; cv=pass;/);
    assertEquals((await validate(set + one, ZONE)).status, "pass");
  });
  await t.step("after a fail: cv=fail, over its own set only (section 5.1.2)", async () => {
    const broken = `${one}tampered\r\n`;
    const validation = await validate(broken, ZONE);
    assertEquals(validation.status, "fail");
    const set = (await seal(broken, validation))!;
    assertMatch(set, /^ARC-Seal: i=2; a=rsa-sha256; t=\d+; cv=fail;/);
    const [as, ams, aar] = set.split(/\r\n(?=\S)/);
    const b = /b=([^;]*)$/.exec(as.replace(/\r\n\t/g, ""))![1];
    const publicKey = createPublicKey(rsa.privateKey);
    const data = sealData([canonicalSet(aar, `${ams}\r\n`, as)]);
    assert(verifyData(publicKey, { data, signature: Uint8Array.fromBase64(b) }));
    assertEquals(
      (await validate(set + broken, ZONE)).reason,
      "the newest ARC-Seal (i=2) has cv=fail",
    );
  });
  await t.step("no set after a cv=fail seal (section 5.1 step 2)", async () => {
    const failed = craftSet(one, { instance: 2, key: rsa, cv: "fail" }) + one;
    assertEquals(await seal(failed, await validate(failed, ZONE)), null);
  });
  await t.step("a chain that fails without a readable instance: i=1, cv=fail", async () => {
    const bad = `ARC-Seal: garbage\r\n${MESSAGE}`;
    const set = (await seal(bad, await validate(bad, ZONE)))!;
    assertMatch(set, /^ARC-Seal: i=1; a=rsa-sha256; t=\d+; cv=fail;/);
  });
  await t.step("a pass for a chain that is not well-formed is refused", async () => {
    const doubled = one.replace(/ARC-Message-Signature: [^]*?\r\n(?=ARC-Auth)/, "$&$&");
    const pass: ArcValidation = { status: "pass", instance: 1, reason: "", sets: [] };
    await assertRejects(
      () => seal(doubled, pass),
      ArcSealError,
      "i=1 has 2 ARC-Message-Signature fields",
    );
  });
  await t.step("a validation of another message is refused", async () => {
    await assertRejects(() => seal(one, NONE), ArcSealError, "is not of this message");
    const pass = await validate(one, ZONE);
    await assertRejects(() => seal(MESSAGE, pass), ArcSealError, "whose chain ends at i=0");
  });
});

Deno.test("sealMessage: the authResults payload", async (t) => {
  const aar = async (payload: string) => {
    const set = (await seal(MESSAGE, NONE, payload))!;
    // The set is text, to be sent as UTF-8.
    assertEquals((await validate([new TextEncoder().encode(set + MESSAGE)], ZONE)).status, "pass");
    return set.slice(set.indexOf("ARC-Authentication-Results: ") + 28, -2);
  };
  await t.step("empty: none", async () => {
    assertEquals(await aar(""), "i=1; mx.example.com; none");
    assertEquals(await aar(" ; "), "i=1; mx.example.com; none");
  });
  await t.step("split at the semicolons outside quotes and comments", async () => {
    assertEquals(
      await aar('; spf=pass (a;b) smtp.mailfrom=x@y;dkim=pass reason="a\\";b";  arc=none '),
      'i=1; mx.example.com;\r\n\tspf=pass (a;b) smtp.mailfrom=x@y;\r\n\tdkim=pass reason="a\\";b";' +
        "\r\n\tarc=none",
    );
  });
  await t.step("lib/authres's folded value, after its authserv-id", async () => {
    const value = authenticationResults("mx.example.com", [
      { method: "spf", result: "pass", props: [["smtp.mailfrom", "joe@example.org"]] },
      { method: "dkim", result: "pass", props: [["header.d", "x".repeat(60) + ".example"]] },
    ]);
    assertEquals(
      await aar(value.slice("mx.example.com".length)),
      "i=1; mx.example.com;\r\n\tspf=pass smtp.mailfrom=joe@example.org;\r\n\tdkim=pass\r\n" +
        `\theader.d=${"x".repeat(60)}.example`,
    );
  });
  await t.step("8-bit text is signed as UTF-8", async () => {
    assertEquals(
      await aar('dmarc=pass reason="café"'),
      'i=1; mx.example.com;\r\n\tdmarc=pass reason="café"',
    );
  });
  await t.step("a line break that is not folding, or a control character, is refused", async () => {
    for (const bad of ["spf=pass\r\nX-Forged: yes", "spf=pass\rx", "spf=pass\x00", "a\nb"]) {
      await assertRejects(() => seal(MESSAGE, NONE, bad), ArcSealError, "line break");
    }
  });
});

Deno.test("sealMessage refuses unusable options", async () => {
  const cases: [Partial<SealOptions>, string][] = [
    [{ domain: "localhost" }, "is not a domain name"],
    [{ selector: "a b" }, "is not valid"],
    [{ authservId: "mx example" }, "is not a token"],
    [{ headers: ["from", "ARC-Seal"] }, "must not be signed"],
    [{ headers: ["authentication-results"] }, "must not be signed"],
    [{ headers: ["bad name"] }, "is not a header field name"],
    [{ time: new Date(NaN) }, "time is not a valid date"],
  ];
  for (const [opts, why] of cases) {
    await assertRejects(() => seal(MESSAGE, NONE, "", opts), ArcSealError, why);
  }
});
