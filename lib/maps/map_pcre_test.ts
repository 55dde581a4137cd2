import { assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { openDict } from "./registry.ts";
import { translatePcre } from "./map_pcre.ts";

async function table(rules: string[]) {
  const warnings: string[] = [];
  const dict = await openDict(`pcre:{ ${rules.map((r) => `{${r}}`).join(", ")} }`, {
    warn: (m) => warnings.push(m),
  });
  return { dict, warnings };
}

Deno.test("pcre: flags", async (t) => {
  await t.step("$ also before a final newline, E: only at the end", async () => {
    const { dict } = await table(["/^a$/ dollar", "/^b$/E end-only"]);
    assertEquals(await dict.lookup("a\n"), "dollar");
    assertEquals(await dict.lookup("b\n"), undefined);
    assertEquals(await dict.lookup("b"), "end-only");
  });
  await t.step("s (on by default) lets . match a newline; m makes ^ line-aware", async () => {
    const { dict } = await table(["/^x.y$/s no-dotall", "/^x.y$/ dotall", "/^z$/m line"]);
    assertEquals(await dict.lookup("x\ny"), "dotall");
    assertEquals(await dict.lookup("a\nz\nb"), "line");
  });
  await t.step("A anchors, U inverts greediness, x ignores white space", async () => {
    const { dict } = await table(["/b/A anch", "/^u(a+)(a*)$/U $1-$2", "/^ e x t $/x ext"]);
    assertEquals(await dict.lookup("ab"), undefined);
    assertEquals(await dict.lookup("bc"), "anch");
    assertEquals(await dict.lookup("uaaa"), "a-aa");
    assertEquals(await dict.lookup("ext"), "ext");
  });
  await t.step("inline options keep their scope, alternatives included", async () => {
    const { dict } = await table(["/^(?-i)Ab|^cd$/ alt", "/^a(?i)B$/i mixed"]);
    assertEquals(await dict.lookup("ab"), "mixed", "(?-i) made Ab case-sensitive");
    assertEquals(await dict.lookup("Ab"), "alt");
    assertEquals(await dict.lookup("CD"), undefined, "(?-i) reaches the later alternative");
    assertEquals(await dict.lookup("AB"), undefined);
    assertEquals(await dict.lookup("Ab"), "alt", "same answer on a second call");
  });
  await t.step("X is ignored with Postfix's warning", async () => {
    const { dict, warnings } = await table(["/a/X x"]);
    assertEquals(await dict.lookup("a"), "x");
    assertEquals(warnings, [`pcre map ${dict.name}, line 1: ignoring obsolete regexp option "X"`]);
  });
});

Deno.test("pcre: bytes, not UTF-8, as Postfix compiles without PCRE2_UTF", async () => {
  const { dict } = await table([
    "/^\\xc3\\xa9$/ e-acute",
    "/^.$/ one",
    "/^(..)$/ two=$1",
    "/^É$/ E",
  ]);
  assertEquals(await dict.lookup("é"), "e-acute");
  assertEquals(await dict.lookup("É"), "two=É", "caseless is ASCII only");
  assertEquals(await dict.lookup("a"), "one");
});

Deno.test("pcre: what JavaScript cannot express is a clear error naming file and line", async () => {
  const rules = [
    "/(?|(a)|(b))/ branch-reset",
    "/(a)(?1)/ rec",
    "/(?(1)a|b)/ cond",
    "/a\\Kb/ k",
    "/ok/ ok",
  ];
  const { dict, warnings } = await table(rules);
  assertEquals(warnings.length, 4);
  warnings.forEach((w, i) => {
    assertStringIncludes(w, `pcre map ${dict.name}, line ${i + 1}: error in regex: `);
    assertStringIncludes(w, "is not supported");
  });
  assertEquals(await dict.lookup("ok"), "ok");
});

Deno.test("pcre: atomic groups, possessive quantifiers, empty optional items", async () => {
  const { dict } = await table([
    "/^(?>a+)ab/ never",
    "/^a++b$/ poss",
    "/^(a)(?>b(c))(d)$/ $1$2$3",
    "/^x(y*?)?(.*)$/ [$1][$2]",
  ]);
  assertEquals(await dict.lookup("aaab"), "poss", "a+ gives nothing back to ab");
  assertEquals(await dict.lookup("abcd"), "acd", "groups keep PCRE's numbers");
  assertEquals(await dict.lookup("xyy"), "[][yy]", "PCRE takes the empty (y*?)");
});

Deno.test("pcre: POSIX classes in brackets as PCRE2's", async () => {
  const { dict, warnings } = await table([
    "/^[[:^digit:]]+$/ nondigits",
    "/^[\\w-z]$/ bad-range",
    "/^[:alpha:]$/ bare-class",
    "/^[[.a.]]$/ collating",
  ]);
  assertEquals(await dict.lookup("ab-é"), "nondigits");
  assertEquals(await dict.lookup("a1"), undefined);
  assertEquals(warnings.length, 3);
  assertStringIncludes(warnings[0], "line 2: error in regex: invalid range in character class");
  assertStringIncludes(warnings[1], "line 3: error in regex: POSIX named classes");
  assertStringIncludes(warnings[2], "line 4: error in regex: POSIX collating elements");
});

Deno.test("translatePcre: constructs", async (t) => {
  const base = { i: false, m: false, s: true, x: false, U: false };
  const js = (s: string) => translatePcre(s, base, false).source;
  await t.step("named groups and references", () => {
    assertEquals(js("(?P<n>a)(?P=n)"), "(?<n>a)\\k<n>");
    assertEquals(js("(a)\\g{-1}"), "(a)(?:\\1)");
  });
  await t.step("\\Q...\\E and comments", () => {
    assertEquals(js("\\Q.*\\E(?#c)x"), "\\.\\*x");
  });
  await t.step("\\A \\z \\Z", () => {
    assertEquals(js("\\Aa\\z"), "(?<![^])a(?![^])");
    assertEquals(js("a\\Z"), "a(?=\\n?(?![^]))");
  });
  await t.step("caseless letters are spelled out", () => {
    assertEquals(translatePcre("a[b-c1]", { ...base, i: true }, false).source, "[aA][b-cB-C1]");
  });
});
