import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { DictError } from "./dict.ts";
import { Maps } from "./maps.ts";
import { openDict, tableGrants } from "./registry.ts";
import { translatePosix } from "./map_regexp.ts";

/** Opens an inline regexp table and collects its warnings. */
async function table(rules: string[], type = "regexp") {
  const warnings: string[] = [];
  const dict = await openDict(`${type}:{ ${rules.map((r) => `{${r}}`).join(", ")} }`, {
    warn: (m) => warnings.push(m),
  });
  return { dict, warnings };
}

Deno.test("regexp: rules, flags and substitution", async (t) => {
  await t.step("case-insensitive by default, i toggles", async () => {
    const { dict } = await table(["/^Abc$/i exact", "/^abc$/ folded"]);
    assertEquals(await dict.lookup("Abc"), "exact");
    assertEquals(await dict.lookup("ABC"), "folded");
  });
  await t.step("$n from the key as written; unset group is empty", async () => {
    const { dict } = await table(["/^(a)?b(C)$/ [$1][$2]$$"]);
    assertEquals(await dict.lookup("bc"), "[][c]$");
    assertEquals(await dict.lookup("ABC"), "[A][C]$");
  });
  await t.step("leftmost-longest: the alternative that makes the match longest", async () => {
    const { dict } = await table(["/^x(a|ab)/ $1", "/(b|bc)(c|cd)?$/ $1.$2"]);
    assertEquals(await dict.lookup("xabz"), "ab");
    assertEquals(await dict.lookup("bcd"), "b.cd");
  });
  await t.step("m makes ^, $ and . line-aware; without it . matches a newline", async () => {
    const { dict } = await table(["/^b$/m line", "/a.b/ dot"]);
    assertEquals(await dict.lookup("a\nb"), "line");
    assertEquals(await dict.lookup("a\nxb"), undefined);
    const { dict: d2 } = await table(["/a.b/ dot"]);
    assertEquals(await d2.lookup("a\nb"), "dot");
  });
  await t.step("x switches to basic syntax", async () => {
    const { dict } = await table(["/^\\(a\\)\\{2\\}+$/x bre=$1"]);
    assertEquals(await dict.lookup("aa+"), "bre=a");
  });
  await t.step("bytes: . is one byte, classes are ASCII", async () => {
    const { dict } = await table(["/^.$/ one", "/^..$/ two", "/^[[:alpha:]]+$/ alpha"]);
    assertEquals(await dict.lookup("é"), "two");
    assertEquals(await dict.lookup("abc"), "alpha");
    assertEquals(await dict.lookup("ébc"), undefined);
  });
  await t.step("a second pattern and nested if/endif", async () => {
    const { dict } = await table([
      "/^a/!/^ab/ a-not-ab",
      "if /^n/",
      "if !/x$/",
      "/^n(.*)/ n=$1",
      "endif",
      "endif",
    ]);
    assertEquals(await dict.lookup("ac"), "a-not-ab");
    assertEquals(await dict.lookup("ab"), undefined);
    assertEquals(await dict.lookup("nop"), "n=op");
    assertEquals(await dict.lookup("nox"), undefined);
  });
});

Deno.test("regexp: bad rules are skipped with Postfix's warnings", async () => {
  const { dict, warnings } = await table([
    "/a/q x",
    "/(a)/ $2",
    "!/(a)/ $1",
    "/a(/ x",
    "/b/",
    "endif",
    "if /c/ extra",
    "junk",
  ]);
  const n = (line: number, m: string) => `regexp map ${dict.name}, line ${line}: ${m}`;
  assertEquals(warnings, [
    n(1, 'unknown regexp option "q": skipping this rule'),
    n(2, 'out of range replacement index "2": skipping this rule'),
    n(3, "$number found in negative match replacement text: skipping this rule"),
    n(4, "Unmatched ( or \\("),
    n(5, "no replacement text: using empty string"),
    n(6, "ignoring ENDIF without matching IF"),
    n(7, 'ignoring extra text after IF statement: "extra"'),
    n(7, "do not prepend whitespace to statements between IF and ENDIF"),
    n(8, "ignoring unrecognized request"),
    n(7, "IF has no matching ENDIF"),
  ]);
  assertEquals(await dict.lookup("b"), "");
  assertEquals(await dict.lookup("a"), undefined);
});

Deno.test("translatePosix: POSIX constructs", async (t) => {
  const js = (s: string, ext = true) => translatePosix(s, ext, false).source;
  await t.step("brackets: ] first, backslash literal, classes", () => {
    assertEquals(js("[]a]"), "[\\]a]");
    assertEquals(js("[a\\]"), "[a\\\\]");
    assertEquals(js("[^[:digit:]x]"), "[^0-9x]");
  });
  await t.step("stacked quantifiers apply to the whole", () => {
    assertEquals(js("a+?"), "(?:a+)?");
    assertEquals(js("a{,2}"), "a{0,2}");
  });
  await t.step("a lone ) is literal, glibc's errors otherwise", () => {
    assertEquals(js("a)"), "a\\)");
    for (
      const [bad, msg] of [
        ["*a", "Invalid preceding regular expression"],
        ["[z-a]", "Invalid range end"],
        ["a{2,1}", "Invalid content of \\{\\}"],
        ["\\1(a)", "Invalid back reference"],
      ]
    ) {
      let got = "";
      try {
        js(bad);
      } catch (e) {
        got = (e as Error).message;
      }
      assertEquals(got, msg, bad);
    }
  });
  await t.step("escaped letters as glibc under REG_ICASE", () => {
    assertEquals(translatePosix("\\d", true, false, true).source, "[]");
    assertEquals(translatePosix("\\d", true, false, false).source, "d");
    assertEquals(translatePosix("\\D", true, false, true).source, "D");
  });
  await t.step("required string for the pre-filter", () => {
    assertEquals(
      translatePosix("^user([0-9]+)@example\\.com$", true, false).required,
      "@example.com",
    );
    assertEquals(translatePosix("a|bcd", true, false).required, "");
  });
});

Deno.test("regexp: open and grants", async () => {
  await assertRejects(() => openDict("regexp:/nonexistent/x.re"), DictError, "nonexistent");
  const ctx = { readTextFile: () => Promise.reject(new Error("unused")) };
  assertEquals((await tableGrants("regexp:/etc/postfix/a.re", ctx)).read, ["/etc/postfix/a.re"]);
  assertEquals((await tableGrants("regexp:{ {/a/ b} }", ctx)).read, []);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/t.re`, "/^a/ A\n");
    const d = await openDict(`regexp:${dir}/t.re`);
    assertEquals(d.pattern, true);
    // Read once at open: a later change is not seen.
    await Deno.writeTextFile(`${dir}/t.re`, "/^a/ B\n");
    assertEquals(await d.lookup("abc"), "A");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("regexp: a pattern table gets full keys only", async () => {
  const maps = await Maps.open("virtual_alias_maps", "regexp:{ {/^joe/ found} }");
  assertEquals(await maps.find("joe@example.com"), "found");
  assertEquals(await maps.find("joe", { partial: true }), undefined);
});
