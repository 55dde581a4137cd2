/** Tests for main.cf parsing and in-place editing (main_cf.ts). */

import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { ConfigError } from "./errors.ts";
import { editMainCf, parseAssignment, parseMainCf } from "./main_cf.ts";

Deno.test("parseMainCf", async (t) => {
  await t.step("name = value with whitespace trimmed", () => {
    const { entries, lines, warnings } = parseMainCf("a = 1\n b_x=2\nc   =   x y   \nd =\n");
    assertEquals([...entries], [["a", "1 b_x=2"], ["c", "x y"], ["d", ""]]);
    assertEquals(lines.get("c"), 3);
    assertEquals(warnings, []);
  });
  await t.step("comments only at line start, # inside a value is text", () => {
    const { entries } = parseMainCf("# c\n   # indented\na = x # not comment\n");
    assertEquals([...entries], [["a", "x # not comment"]]);
  });
  await t.step("continuation lines, skipping blank and comment lines between them", () => {
    const text = "a = 1,\n  2\n\n# note\n\t3\nb = x\n #foo\n y\n";
    const { entries, lines } = parseMainCf(text);
    assertEquals(entries.get("a"), "1, 2 3");
    assertEquals(entries.get("b"), "x y");
    assertEquals(lines.get("b"), 6);
  });
  await t.step("CRLF line ends", () => {
    assertEquals(parseMainCf("a = 1\r\n  2\r\nb = 3\r\n").entries.get("a"), "1 2");
  });
  await t.step("last definition wins, with Postfix's warning", () => {
    const { entries, warnings } = parseMainCf("z = 1\nz = 2\n");
    assertEquals(entries.get("z"), "2");
    assertEquals(warnings, ["main.cf, line 2: overriding earlier entry: z=1"]);
  });
  await t.step("leading whitespace before the first definition is a warning", () => {
    const { entries, warnings } = parseMainCf("  lead\na = 1\n");
    assertEquals(entries.get("a"), "1");
    assertEquals(warnings, ['main.cf: logical line must not start with whitespace: "  lead"']);
  });
  await t.step("syntax errors", () => {
    assertThrows(
      () => parseMainCf("a\n"),
      ConfigError,
      `line 1: missing '=' after attribute name: "a"`,
    );
    assertThrows(() => parseMainCf("x = 1\nmy host = a\n"), ConfigError, "line 2: missing '='");
    assertThrows(() => parseMainCf("= a\n"), ConfigError, "missing attribute name");
  });
  await t.step("empty text", () => {
    assertEquals(parseMainCf("").entries.size, 0);
  });
});

Deno.test("parseAssignment", async (t) => {
  await t.step("trims name and value", () => {
    assertEquals(parseAssignment(" a =  b c "), ["a", "b c"]);
    assertEquals(parseAssignment("a="), ["a", ""]);
  });
  await t.step("missing = is an error", () => {
    assertThrows(() => parseAssignment("c"), ConfigError, "missing '='");
  });
});

Deno.test("editMainCf", async (t) => {
  const text = "# head\na = 1\n  cont\n# mid\nb = 2\na = 3\n";
  await t.step("replaces every definition (with continuations) at the first place", () => {
    assertEquals(editMainCf(text, { set: new Map([["a", "9"]]) }), "# head\na = 9\n# mid\nb = 2\n");
  });
  await t.step("appends new names", () => {
    assertEquals(editMainCf("x = 1", { set: new Map([["y", "2"]]) }), "x = 1\ny = 2\n");
    assertEquals(editMainCf("", { set: new Map([["y", ""]]) }), "y = \n");
  });
  await t.step("removes names, keeps comments", () => {
    assertEquals(editMainCf(text, { remove: ["a", "nope"] }), "# head\n# mid\nb = 2\n");
  });
  await t.step("a comment between continuation lines survives", () => {
    const t2 = "a = 1\n# keep\n  2\nb = 3\n";
    assertEquals(editMainCf(t2, { set: new Map([["a", "x"]]) }), "a = x\n# keep\nb = 3\n");
  });
});
