/**
 * protocol.ts: the policy read from main.cf, forbidden commands with the
 * default inline regexp, bare-newline exclusions, and the log escaping.
 */
import { makeConfig } from "../../lib/config/mod.ts";
import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import {
  bareNewlineFor,
  discardedForLog,
  discardFor,
  escapeForLog,
  isForbiddenCommand,
  isHeaderLabel,
  parseDiscard,
  protocolPolicy,
  validUtf8,
} from "./protocol.ts";

const policy = (extra = "") =>
  protocolPolicy(
    makeConfig("/tmp", `compatibility_level = 3.6\nmynetworks = 10.0.0.0/8\n${extra}`),
  );

Deno.test("protocolPolicy defaults are Postfix 3.9's", () => {
  const p = policy();
  assertEquals(p.bareNewline, "normalize");
  assertEquals(p.bareNewlineRejectCode, 550);
  assertEquals(p.forbidUnauthPipelining, true);
  assertEquals(p.smtputf8, true);
  assertEquals(p.strictSmtputf8, false);
  assertEquals(p.discard.keywords.size, 0);
  assertEquals(p.discardMaps, null);
  assertEquals(protocolPolicy(makeConfig("/tmp", "")).smtputf8, false); // compatibility_level 0
  assertEquals(policy("smtpd_forbid_bare_newline = YES").bareNewline, "normalize");
  assertThrows(() => policy("smtpd_forbid_bare_newline = maybe"), Error, "bad smtpd_forbid");
});

Deno.test("bareNewlineFor: excluded clients ($mynetworks) get 'no'", () => {
  const p = policy("smtpd_forbid_bare_newline = reject");
  assertEquals(bareNewlineFor(p, { addr: "10.1.2.3", name: "x" }), "no");
  assertEquals(bareNewlineFor(p, { addr: "192.0.2.1", name: "x" }), "reject");
  const q = policy("smtpd_forbid_bare_newline = reject\nsmtpd_forbid_bare_newline_exclusions =");
  assertEquals(bareNewlineFor(q, { addr: "10.1.2.3", name: "x" }), "reject");
});

Deno.test("isForbiddenCommand", async (t) => {
  const p = policy();
  await t.step("the default list", async () => {
    for (const v of ["GET", "get", "POST", "CONNECT", "1FOO", "\u00e9HLO", "<X", "Subject:"]) {
      assertEquals(await isForbiddenCommand(p, v), true, v);
    }
    for (const v of ["FOO", "foo", "XYZZY", "Subject"]) {
      assertEquals(await isForbiddenCommand(p, v), false, v);
    }
  });
  await t.step("an empty list forbids only header labels", async () => {
    const q = policy("smtpd_forbidden_commands =");
    assertEquals(await isForbiddenCommand(q, "GET"), false);
    assertEquals(await isForbiddenCommand(q, "X-Header:"), true);
  });
});

Deno.test("discardFor: the address maps' list for a client they find, else the list", async () => {
  const p = policy(
    "smtpd_discard_ehlo_keywords = vrfy\n" +
      "smtpd_discard_ehlo_keyword_address_maps = inline:{{192.0.2.1=chunking, silent-discard}}",
  );
  assertEquals(await discardFor(p, { addr: "192.0.2.1" }), {
    keywords: new Set(["CHUNKING"]),
    silent: true,
  });
  assertEquals(await discardFor(p, { addr: "192.0.2.2" }), {
    keywords: new Set(["VRFY"]),
    silent: false,
  });
  assertEquals(discardedForLog(parseDiscard("chunking vrfy 8bitmime")), "8BITMIME VRFY CHUNKING");
  assertEquals(discardedForLog(parseDiscard("dsn enhancedstatuscodes")), null);
  assertEquals(discardedForLog(parseDiscard("dsn silent-discard")), null);
});

Deno.test("helpers", () => {
  assertEquals(isHeaderLabel("Received:"), true);
  assertEquals(isHeaderLabel(":x"), false);
  assertEquals(
    escapeForLog(new TextEncoder().encode("A\\b\r\n\x00\u00e9")),
    "A\\\\b\\r\\n\\000\\303\\251",
  );
  assertEquals(escapeForLog(new Uint8Array(300).fill(65)).length, 100);
  assertEquals(validUtf8(new Uint8Array([0x4e, 0xc3, 0xa9])), true);
  assertEquals(validUtf8(new Uint8Array([0x4e, 0xff])), false);
  assertEquals(validUtf8(new Uint8Array([0xed, 0xa0, 0x80])), false); // a UTF-16 surrogate
  assertEquals(validUtf8(new TextEncoder().encode("MAIL FROM:<a@example.com>")), true); // ASCII
  assertEquals(validUtf8(new Uint8Array([0x41, 0x42, 0x80])), false); // a stray continuation byte
  assertEquals(validUtf8(new Uint8Array(0)), true);
});
