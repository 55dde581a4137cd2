import fc from "fast-check";
import { assertEquals } from "../../tests/helpers/assert.ts";
import {
  fromBytes,
  logicalLines,
  parseReplacement,
  PatternTable,
  readTableText,
  toBytes,
} from "./_pattern_file.ts";
import { pcreDialect } from "./map_pcre.ts";
import { regexpDialect } from "./map_regexp.ts";

Deno.test("logicalLines: continuation, comments, blank lines, first line number", () => {
  const text = "# c\n/a/ x\n  y\n\n   \n  # not a comment inside? skipped\n/b/ z \t\n";
  assertEquals(logicalLines(text), [
    { lineno: 2, text: "/a/ x  y" },
    { lineno: 7, text: "/b/ z" },
  ]);
});

Deno.test("byte strings: UTF-8 bytes in and out, ASCII unchanged", () => {
  assertEquals(toBytes("abc"), "abc");
  assertEquals(toBytes("é").length, 2);
  assertEquals(fromBytes(toBytes("é€x")), "é€x");
  // A group that splits a character gives U+FFFD, never a crash.
  assertEquals(fromBytes(toBytes("é").slice(0, 1)), "\ufffd");
});

Deno.test("parseReplacement follows mac_parse and the prescan", async (t) => {
  const warnings: string[] = [];
  const parse = (s: string) => parseReplacement(s, "w", (m) => warnings.push(m), "out-of-range");
  await t.step("$$ and constants", () => {
    assertEquals(parse("a$$b"), { parts: ["a$b"], maxSub: 0 });
    assertEquals(parse(""), { parts: [""], maxSub: 0 });
  });
  await t.step("$n, ${n}, $(n)", () => {
    assertEquals(parse("x$1-${2}$(3)y"), { parts: ["x", 1, "-", 2, 3, "y"], maxSub: 3 });
    assertEquals(parse("$1x"), undefined, "$1x is the name 1x");
  });
  await t.step("errors are Postfix's warnings", () => {
    warnings.length = 0;
    assertEquals(parse("$0"), undefined);
    assertEquals(parse("${1"), undefined);
    assertEquals(parse("a$ b"), undefined);
    assertEquals(parse("$x"), undefined);
    assertEquals(warnings, [
      'w: out-of-range replacement index "0"',
      'truncated macro reference: "${1"',
      'empty macro name: "a$ b"',
      'w: non-numeric replacement index "x"',
    ]);
  });
});

Deno.test("inline table text { {rule}, {rule} }", async () => {
  assertEquals(await readTableText("regexp", "{ {/a/ b}, { /c/ d e } }"), "/a/ b\n/c/ d e\n");
});

Deno.test("the trigram index never changes which rule answers", () => {
  // Rules mix anchored, unanchored, negated, case-sensitive and if/endif;
  // keys are drawn from the same small alphabet so that rules do match.
  const word = fc.stringMatching(/^[abcAB.@]{0,6}$/);
  const rule = fc.oneof(
    word.map((w) => `/${w.replace(/\./g, "\\.")}/ r-${w}`),
    word.map((w) => `/^${w.replace(/\./g, "\\.")}/i c-${w}`),
    word.map((w) => `!/${w.replace(/\./g, "\\.")}/ n-${w}`),
    word.map((w) => `/(${w.replace(/\./g, "\\.")})(.*)$/ s-$1-$2`),
    word.map((w) => `if /${w.replace(/\./g, "\\.")}/`),
    fc.constant("endif"),
  );
  fc.assert(
    fc.property(
      fc.array(rule, { maxLength: 30 }),
      fc.array(word, { maxLength: 10 }),
      (rules, keys) => {
        const text = rules.join("\n") + "\n";
        for (const d of [regexpDialect, pcreDialect]) {
          const fast = PatternTable.parse(d, "t", text, () => {});
          const slow = PatternTable.parse(d, "t", text, () => {}, { index: false });
          for (const key of keys) assertEquals(fast.lookup(key), slow.lookup(key), key);
        }
      },
    ),
    { numRuns: 300 },
  );
});
