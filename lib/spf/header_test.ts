/** Unit tests for header.ts: Received-SPF values (RFC 7208 section 9.1), wording and quoting. */
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import type { SpfResult } from "./check.ts";
import { type ReceivedSpfContext, receivedSpfHeader } from "./header.ts";

const ctx: ReceivedSpfContext = {
  ip: "192.0.2.1",
  envelopeFrom: "joe@example.com",
  helo: "mail.example.com",
  receiver: "mx.example.org",
};

Deno.test("receivedSpfHeader", async (t) => {
  await t.step("pass: comment, key-value pairs, the mechanism quoted", () => {
    const r: SpfResult = { result: "pass", mechanism: "ip4:192.0.2.0/24", domain: "example.com" };
    assertEquals(
      receivedSpfHeader(r, ctx),
      "pass (mx.example.org: domain of joe@example.com designates 192.0.2.1 as permitted sender) " +
        'client-ip=192.0.2.1; envelope-from="joe@example.com"; helo=mail.example.com; ' +
        'receiver=mx.example.org; identity=mailfrom; mechanism="ip4:192.0.2.0/24";',
    );
  });
  await t.step("each result's words", () => {
    const words: [SpfResult["result"], string][] = [
      ["fail", "domain of joe@example.com does not designate 192.0.2.1 as permitted sender"],
      [
        "softfail",
        "domain of transitioning joe@example.com does not designate 192.0.2.1 as permitted sender",
      ],
      ["neutral", "192.0.2.1 is neither permitted nor denied by domain of joe@example.com"],
      ["none", "domain of joe@example.com does not designate permitted sender hosts"],
      ["permerror", "permanent error in processing domain of joe@example.com"],
      ["temperror", "temporary error in processing domain of joe@example.com"],
    ];
    for (const [result, text] of words) {
      const h = receivedSpfHeader({ result, domain: "example.com" }, ctx);
      assert(h.startsWith(`${result} (mx.example.org: ${text}) `), h);
    }
  });
  await t.step("no mechanism matched: default; none: neither mechanism nor problem", () => {
    const neutral = receivedSpfHeader({ result: "neutral", domain: "example.com" }, ctx);
    assert(neutral.endsWith(" identity=mailfrom; mechanism=default;"), neutral);
    const none = receivedSpfHeader({ result: "none", domain: "example.com" }, ctx);
    assert(none.endsWith(" identity=mailfrom;"), none);
  });
  await t.step("errors carry the problem, not a mechanism", () => {
    const h = receivedSpfHeader(
      { result: "permerror", problem: "example.com has 2 SPF records", domain: "example.com" },
      ctx,
    );
    assert(h.endsWith(' identity=mailfrom; problem="example.com has 2 SPF records";'), h);
  });
  await t.step("HELO identity, null sender, no receiver", () => {
    const h = receivedSpfHeader(
      { result: "fail", mechanism: "-all", domain: "mail.example.com" },
      { ip: "2001:db8::1", envelopeFrom: "", helo: "mail.example.com", identity: "helo" },
    );
    assertEquals(
      h,
      "fail (domain of mail.example.com does not designate 2001:db8::1 as permitted sender) " +
        'client-ip="2001:db8::1"; helo=mail.example.com; identity=helo; mechanism=-all;',
    );
  });
  await t.step("the null sender's mail from identity is postmaster@<helo>", () => {
    const h = receivedSpfHeader(
      { result: "pass", mechanism: "a", domain: "mail.example.com" },
      { ip: "192.0.2.1", envelopeFrom: "", helo: "mail.example.com" },
    );
    assert(h.includes("domain of postmaster@mail.example.com designates"), h);
    assert(!h.includes("envelope-from"), h);
  });
  await t.step("no CR, LF or other control character gets through; quotes are escaped", () => {
    const h = receivedSpfHeader(
      {
        result: "permerror",
        problem: 'bad SPF record of x.example: "a:x\r\nX-Injected: yes"\\',
        domain: "x.example",
      },
      {
        ip: "192.0.2.1",
        envelopeFrom: '"evil\r\nX-Injected: 1 (x)"@x.example',
        helo: "h\x00.example\r\n\tX-Other: 2",
        receiver: "mx.example.org",
      },
    );
    assert([...h].every((c) => c >= " " && c !== "\x7f"), JSON.stringify(h));
    assertEquals(
      h,
      "permerror (mx.example.org: permanent error in processing domain of " +
        '"evil X-Injected: 1 \\(x\\)"@x.example) ' +
        'client-ip=192.0.2.1; envelope-from="\\"evil X-Injected: 1 (x)\\"@x.example"; ' +
        'helo="h .example X-Other: 2"; receiver=mx.example.org; identity=mailfrom; ' +
        'problem="bad SPF record of x.example: \\"a:x X-Injected: yes\\"\\\\";',
    );
  });
  await t.step("a long problem is shortened", () => {
    const h = receivedSpfHeader(
      { result: "temperror", problem: "x".repeat(500), domain: "example.com" },
      ctx,
    );
    assert(h.endsWith(`problem="${"x".repeat(197)}...";`), h);
  });
});
