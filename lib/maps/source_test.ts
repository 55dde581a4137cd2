import fc from "fast-check";
import { assertEquals } from "../../tests/helpers/assert.ts";
import { CompiledTable, compileMapSource } from "./map_hash.ts";
import {
  decodeSource,
  foldKey,
  logicalLines,
  parseAliasSource,
  parseMapSource,
  resolveDuplicates,
} from "./source.ts";

function collect(text: string, ignoringSuffix = false) {
  const warnings: string[] = [];
  const entries = [
    ...parseMapSource(text, { path: "t", warn: (m) => warnings.push(m), ignoringSuffix }),
  ]
    .map((e) => [e.key, e.value, e.line]);
  return { entries, warnings };
}

Deno.test("logical lines as Postfix's readllines", async (t) => {
  await t.step("comments and blank lines are skipped inside a continued line", () => {
    const w: string[] = [];
    const got = [
      ...logicalLines("a b\n# c\n\n  d\n   # e\n\tf\ng h\n", { path: "t", warn: (m) => w.push(m) }),
    ];
    assertEquals(got, [{ text: "a b  d\tf", line: 1 }, { text: "g h", line: 7 }]);
    assertEquals(w, []);
  });
  await t.step("a leading continuation is reported, shortened to 30 characters", () => {
    const w: string[] = [];
    const got = [
      ...logicalLines("  short\n  " + "x".repeat(40) + "\nk v", {
        path: "t",
        warn: (m) => w.push(m),
      }),
    ];
    assertEquals(got, [{ text: "k v", line: 3 }]);
    assertEquals(w, [
      't: logical line must not start with whitespace: "  short"',
      `t: logical line must not start with whitespace: "  ${"x".repeat(28)}..."`,
    ]);
  });
  await t.step("CRLF line ends", () => {
    assertEquals(collect("k v\r\n").entries, [["k", "v", 1]]);
  });
});

Deno.test("map format: key whitespace value", async (t) => {
  await t.step(
    "value trimmed, inner white space kept, quotes and backslashes stay in the key",
    () => {
      assertEquals(collect('K  a  b \t\n"x y" q\na\\ b e\n').entries, [
        ["K", "a  b", 1],
        ['"x y"', "q", 2],
        ["a\\ b", "e", 3],
      ]);
    },
  );
  await t.step("Postfix's warnings for malformed lines", () => {
    const { entries, warnings } = collect('novalue\nk: v\n"open x\nk2 \t \n');
    assertEquals(entries, [["k:", "v", 2]]);
    assertEquals(warnings, [
      "t, line 1: expected format: key whitespace value",
      't, line 2: record is in "key: value" format; is this an alias file?',
      `t, line 3: unbalanced '"' in '"open x' -- ignoring this line`,
      "t, line 4: expected format: key whitespace value",
    ]);
    assertEquals(collect("novalue\n", true).warnings, [
      "t, line 1: expected format: key whitespace value -- ignoring this line",
    ]);
  });
  await t.step("non-UTF-8 lines are reported and skipped with SMTPUTF8", () => {
    const w: string[] = [];
    const text = decodeSource(new Uint8Array([0x6b, 0xff, 0x20, 0x76, 0x0a, 0x6f, 0x20, 0x76]), {
      path: "t",
      warn: (m) => w.push(m),
    });
    assertEquals(collect(text).entries, [["o", "v", 2]]);
    assertEquals(w, ['t, line 1: non-UTF-8 input "k\uFFFD v" -- ignoring this line']);
  });
});

Deno.test("duplicates: first wins with a warning, -r replaces, -w is silent", () => {
  const entries = [...parseMapSource("a 1\nA 2\nb 3\n", { path: "t", warn: () => {} })];
  const seen: string[] = [];
  const warn = (e: { line: number }, key: string) => seen.push(`${key}@${e.line}`);
  assertEquals([...resolveDuplicates(entries, { fold: true, policy: "warn", warn })], [["a", "1"], [
    "b",
    "3",
  ]]);
  assertEquals(seen, ["a@2"]);
  assertEquals([...resolveDuplicates(entries, { fold: true, policy: "replace", warn })], [[
    "a",
    "2",
  ], ["b", "3"]]);
  assertEquals([...resolveDuplicates(entries, { fold: false, policy: "warn", warn })].length, 3);
});

Deno.test("foldKey: Unicode folding with SMTPUTF8, ASCII only without", () => {
  assertEquals(foldKey("User@Example.COM"), "user@example.com");
  assertEquals(foldKey("STRAẞE"), "strasse");
  assertEquals(foldKey("Émile"), "émile");
  assertEquals(foldKey("Émile ÜBER", false), "Émile Über");
  assertEquals(foldKey("ÉMILE", false), "Émile");
});

Deno.test("aliases format as Postfix's postalias", async (t) => {
  const parse = (text: string) => {
    const w: string[] = [];
    const e = [...parseAliasSource(text, { path: "a", warn: (m) => w.push(m) })].map((
      x,
    ) => [x.key, x.value]);
    return { e, w };
  };
  await t.step("values re-written as RFC 822 tokens", () => {
    assertEquals(
      parse('a: x,y\nb : p  q\nc: a(c)b\nd: a\\ b\ne: a,\nf: "x y"@z, <w@z>\ng: a<b\n').e,
      [
        ["a", "x, y"],
        ["b", "p q"],
        ["c", "a (c) b"],
        ["d", '"a b"'],
        ["e", "a, "],
        ["f", '"x y"@z, <w@z>'],
        ["g", "a <b"],
      ],
    );
  });
  await t.step("names in unquoted form", () => {
    assertEquals(parse('"Quoted Name": q\n').e, [["Quoted Name", "q"]]);
  });
  await t.step("malformed lines", () => {
    assertEquals(parse("novalue x\n: v\nk:\na,b: c\nr@x: y\n").w, [
      "a, line 1: need name:value pair",
      "a, line 2: need name:value pair",
      "a, line 3: need name:value pair",
      "a, line 4: need name:value pair",
      "a, line 5: name must be local",
    ]);
  });
});

/** The same bytes at an odd offset in their buffer (the ASCII check reads words). */
function misaligned(bytes: Uint8Array): Uint8Array {
  const b = new Uint8Array(bytes.length + 1);
  b.set(bytes, 1);
  return b.subarray(1);
}

Deno.test("compileMapSource's byte path gives what the string parser gives", () => {
  const piece = fc.constantFrom(
    "k",
    "K",
    "v",
    " ",
    "\t",
    "\n",
    "#",
    '"',
    "\\",
    ":",
    "@",
    "+",
    "é",
    "Ü",
    "\r\n",
    "x y",
    "\n  ",
  );
  fc.assert(
    fc.property(
      fc.array(piece, { maxLength: 60 }),
      fc.boolean(),
      fc.constantFrom("warn", "replace", "ignore"),
      (parts, fold, policy) => {
        const text = parts.join("");
        const w1: string[] = [];
        const w2: string[] = [];
        const opts = { path: "t", fold, policy: policy as "warn" | "replace" | "ignore" };
        const bytes = compileMapSource(misaligned(new TextEncoder().encode(text)), {
          ...opts,
          warn: (m) => w1.push(m),
        });
        const got = [...new CompiledTable(bytes, "t").entries()];
        const src = { path: "t", warn: (m: string) => w2.push(m) };
        const want = resolveDuplicates(
          parseMapSource(decodeSource(new TextEncoder().encode(text), src), src),
          {
            ...opts,
            warn: (e, key) => w2.push(`t, line ${e.line}: duplicate entry: "${key}"`),
          },
        );
        // -r keeps the last value; the index lists it where it was added.
        assertEquals(new Map(got), want);
        assertEquals(w1, w2);
      },
    ),
    { numRuns: 500 },
  );
});
