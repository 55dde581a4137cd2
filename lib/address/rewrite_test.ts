/**
 * The "local" rewriting context, case by case as Postfix's rewrite_tree()
 * (the same forms are checked against a real Postfix in
 * tests/interop/resolve_test.ts), and a property test that it never throws.
 */
import fc from "fast-check";
import { assertEquals } from "../../tests/helpers/assert.ts";
import { rewriteAddress, type RewriteContext, stripTrailingDot } from "./rewrite.ts";

const CTX: RewriteContext = { myorigin: "example.org", mydomain: "example.org" };

Deno.test("rewriteAddress in the local context", async (t) => {
  const cases: [string, string, Partial<RewriteContext>?][] = [
    ["", ""],
    ["@", ""],
    ["alice", "alice@example.org"],
    ["alice@mx.example.org", "alice@mx.example.org"],
    ["alice@example.org.", "alice@example.org"],
    ["alice@example.org..", "alice@example.org.."],
    ["alice@.", "alice@."],
    // Source routes go.
    ["@relay.one,@relay.two:bob@remote.example", "bob@remote.example"],
    ["@relay.one:bob", "bob@example.org"],
    ["@relay.one:", "@relay.one:"],
    // Bang paths, at the first "!", only without "@".
    ["remote.example!bob", "bob@remote.example"],
    ["a.example!b.example!bob", "b.example!bob@a.example"],
    ["remote.example!bob@example.org", "remote.example!bob@example.org"],
    ["remote.example!bob", "remote.example!bob@example.org", { swapBangpath: false }],
    // The percent hack, at the last "%", only without "@".
    ["bob%remote.example", "bob@remote.example"],
    ["bob%a.example%b.example", "bob%a.example@b.example"],
    ["bob%remote.example@example.org", "bob%remote.example@example.org"],
    ["bob%remote.example", "bob%remote.example@example.org", { percentHack: false }],
    // Bang before percent.
    ["a.example!bob%b.example", "bob%b.example@a.example"],
    // Inside quotes they are text (the local part needs quotes: a space).
    ["a b!c", "a b!c@example.org"],
    ["a b%c", "a b%c@example.org"],
    // append_at_myorigin.
    ["alice", "alice", { appendAtMyorigin: false }],
    ["alice", "alice", { myorigin: "" }],
    ["alice", "alice@example.org", { myorigin: "example.org." }],
    // append_dot_mydomain: a domain without a dot, not a literal.
    ["alice@host", "alice@host.example.org", { appendDotMydomain: true }],
    ["alice", "alice@mx.example.org", { appendDotMydomain: true, myorigin: "mx" }],
    ["alice@host.sub", "alice@host.sub", { appendDotMydomain: true }],
    ["alice@[192.0.2.1]", "alice@[192.0.2.1]", { appendDotMydomain: true }],
    ["alice@host", "alice@host", { appendDotMydomain: true, mydomain: "" }],
    ["alice@host", "alice@host"],
    ["remote!bob", "bob@remote.example.org", { appendDotMydomain: true }],
    // The trailing dot counts as a dot, then goes (Postfix's token order).
    ["alice@host.", "alice@host", { appendDotMydomain: true }],
  ];
  for (const [input, expected, over] of cases) {
    await t.step(`${JSON.stringify(input)} ${JSON.stringify(over ?? {})}`, () => {
      assertEquals(rewriteAddress(input, { ...CTX, ...over }), expected);
    });
  }
  await t.step("an unquoted scan treats a local part needing quotes as words", () => {
    assertEquals(rewriteAddress("a b!c", CTX, { unquoted: true }), "c@a b");
  });
});

Deno.test("stripTrailingDot", () => {
  assertEquals(
    ["a@b.", "a@b..", "a@.", "a.", "a@b"].map(stripTrailingDot),
    ["a@b", "a@b..", "a@.", "a.", "a@b"],
  );
});

Deno.test("rewriteAddress never throws and is idempotent on its output", () => {
  const ctx = fc.record({
    myorigin: fc.constantFrom("", "example.org", "mx"),
    mydomain: fc.constantFrom("", "example.org"),
    appendAtMyorigin: fc.boolean(),
    appendDotMydomain: fc.boolean(),
    swapBangpath: fc.boolean(),
    percentHack: fc.boolean(),
  });
  const addr = fc.stringOf(fc.constantFrom("a", "b", ".", "@", "!", "%", " ", ":", "[", "]"), {
    maxLength: 12,
  });
  fc.assert(fc.property(addr, ctx, (a, c) => {
    const once = rewriteAddress(a, c);
    // Nothing left to rewrite once the address has a domain, except (as in
    // Postfix) ".$mydomain" for a domain whose only dot was the trailing one.
    const dotless = !once.slice(once.lastIndexOf("@") + 1).includes(".");
    if (once.includes("@") && !once.startsWith("@") && !(c.appendDotMydomain && dotless)) {
      assertEquals(rewriteAddress(once, c), once);
    }
  }));
});
