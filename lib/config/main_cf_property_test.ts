/**
 * Property tests for main.cf parsing, editing and expansion (main_cf.ts,
 * config.ts, expand.ts): no input makes them throw anything but
 * ConfigError or hang, and writing, editing and parsing agree.
 */
import fc from "fast-check";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { makeConfig } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { editMainCf, parseMainCf } from "./main_cf.ts";

const RUNS = { numRuns: 500 };

/** Runs fn; an error other than ConfigError fails the property. */
function onlyConfigError<T>(fn: () => T): T | ConfigError {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw new Error(`threw ${(e as Error)?.name ?? typeof e}, not ConfigError: ${e}`);
  }
}

/** Text made mostly of the characters that matter to main.cf syntax, or anything at all. */
const mainCfText = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.fullUnicodeString({ maxLength: 100 }),
  fc.array(
    fc.constantFrom(
      "=",
      " ",
      "\t",
      "\n",
      "\r\n",
      "\r",
      "#",
      "a",
      "b_1",
      "$",
      "{",
      "}",
      "x = y",
      "\n ",
      "\n#c\n",
      "\u00a0",
      "\u2028",
    ),
    { maxLength: 60 },
  ).map((parts) => parts.join("")),
);

/** Postfix-style parameter names (letters, digits, underscore). */
const paramName = fc.stringMatching(/^[A-Za-z0-9_]{1,12}$/);

/** ASCII space and tab: the only whitespace generated values contain. */
const trimPostfix = (v: string) => v.replace(/^[ \t]+|[ \t]+$/g, "");

/** A value on one line: no line breaks nor other whitespace than space and tab. */
const lineValue = fc.string({ maxLength: 40 }).filter((v) => !/[^\S \t]/.test(v));

Deno.test("parseMainCf: arbitrary text parses or throws ConfigError", () => {
  fc.assert(
    fc.property(mainCfText, (text) => {
      const r = onlyConfigError(() => parseMainCf(text));
      if (r instanceof ConfigError) return;
      for (const [name, value] of r.entries) {
        assert(name !== "" && !/\s/.test(name), `bad name ${JSON.stringify(name)}`);
        assertEquals(value, value.trim(), "values come out trimmed");
        // (A lone CR is an ordinary character, as in Postfix; CRLF ends a line.)
        assert(!value.includes("\n"), "no line break survives in a value");
        assert(r.lines.has(name), `line number for ${name}`);
      }
    }),
    { numRuns: 2000 },
  );
});

Deno.test("editMainCf: arbitrary text edits or throws ConfigError", () => {
  fc.assert(
    fc.property(mainCfText, paramName, lineValue, (text, name, value) => {
      onlyConfigError(() => editMainCf(text, { set: new Map([[name, value]]) }));
      onlyConfigError(() => editMainCf(text, { remove: [name] }));
    }),
    RUNS,
  );
});

// ---- expansion -------------------------------------------------------------

/**
 * Names used in expressions: a few free ones, and parameters with computed
 * or referencing defaults (myhostname <-> mydomain, myorigin = $myhostname).
 */
const NAMES = ["a", "b", "c", "myhostname", "mydomain", "myorigin", "mail_name", "nosuch"];
const exprName = fc.constantFrom(...NAMES);

/** Random expressions: $name forms, conditionals, nesting, and some broken syntax. */
const expr: fc.Arbitrary<string> = fc.letrec<{ e: string; atom: string }>((tie) => ({
  e: fc.array(tie("atom"), { maxLength: 4 }).map((parts) => parts.join("")),
  atom: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { arbitrary: fc.constantFrom("x", "y.z", " ", ",", "$$"), weight: 4 },
    // Broken syntax, now and then.
    { arbitrary: fc.constantFrom("{", "}", "(", ")", "?", ":", "$", "${", "$("), weight: 1 },
    { arbitrary: exprName.map((n) => `$${n}`), weight: 4 },
    { arbitrary: exprName.map((n) => `\${${n}}`), weight: 2 },
    { arbitrary: exprName.map((n) => `$(${n})`), weight: 1 },
    { arbitrary: fc.tuple(exprName, tie("e")).map(([n, x]) => `\${${n}?${x}}`), weight: 3 },
    { arbitrary: fc.tuple(exprName, tie("e")).map(([n, x]) => `\${${n}:${x}}`), weight: 3 },
    {
      arbitrary: fc.tuple(exprName, tie("e"), tie("e"))
        .map(([n, x, y]) => `\${${n}?{${x}}:{${y}}}`),
      weight: 1,
    },
    {
      arbitrary: fc.tuple(tie("e"), fc.constantFrom("==", "!=", "<", ">="), tie("e"), tie("e"))
        .map(([l, op, r, v]) => `\${{${l}} ${op} {${r}} ? {${v}}}`),
      weight: 1,
    },
  ),
})).e;

/** Settings for some of NAMES (values without line breaks). */
const settings = fc.dictionary(
  fc.constantFrom(...NAMES.filter((n) => n !== "nosuch")),
  expr.map((v) => v.replace(/[\r\n]/g, " ")),
  { maxKeys: 6 },
);

Deno.test("makeConfig().str: expressions expand or throw ConfigError, quickly", () => {
  let expanded = 0, errors = 0;
  fc.assert(
    fc.property(settings, exprName, expr, (set, name, extra) => {
      // One more parameter holding the expression under test.
      const text = [...Object.entries(set), ["zz_probe", extra]]
        .map(([n, v]) => `${n} = ${v}`).join("\n");
      const started = performance.now();
      const cfg = onlyConfigError(() => makeConfig("/conf", text));
      if (cfg instanceof ConfigError) return;
      for (const n of [name, "zz_probe", ...NAMES]) {
        const v = onlyConfigError(() => cfg.str(n));
        if (typeof v === "string") assert(!v.includes("\n"), "no line break from expansion");
        if (n === "zz_probe") v instanceof ConfigError ? errors++ : expanded++;
      }
      const ms = performance.now() - started;
      assert(ms < 2000, `expansion took ${ms.toFixed(0)}ms for ${JSON.stringify(text)}`);
    }),
    RUNS,
  );
  // Both outcomes were exercised, not just one.
  assert(expanded > 100 && errors > 50, `expanded ${expanded}, errors ${errors}`);
});

Deno.test("makeConfig().str: self-references are ConfigErrors, not hangs", () => {
  fc.assert(
    fc.property(
      exprName.filter((n) => n !== "nosuch"),
      fc.constantFrom("$N", "${N}", "$(N)", "x${N?y}", "${N:y}", "${N?{$N}:{z}}", "${N:$N}"),
      (name, form) => {
        const value = form.replaceAll("N", name);
        const cfg = makeConfig("/conf", `${name} = ${value}\n`);
        const r = onlyConfigError(() => cfg.str(name));
        // ${N:y} and ${N:$N} test N's value, which refers to itself: a loop too.
        assert(r instanceof ConfigError, `${name} = ${value} gave ${JSON.stringify(r)}`);
      },
    ),
    RUNS,
  );
});

// ---- writing, parsing and editing ------------------------------------------

/** name = value definitions; names may repeat (the last one wins). */
const definitions = fc.array(fc.tuple(paramName, lineValue), { maxLength: 15 });

/** What parseMainCf should give: last value of each name, in first-definition order. */
function expected(defs: [string, string][]): [string, string][] {
  const m = new Map<string, string>();
  for (const [n, v] of defs) m.set(n, trimPostfix(v));
  return [...m];
}

/** main.cf text for the definitions, with comments and blank lines in between. */
function format(defs: [string, string][], spacing: string[]): string {
  return defs.map(([n, v], i) => `${spacing[i % spacing.length] ?? ""}${n} = ${v}`).join("\n") +
    "\n";
}

const spacing = fc.array(
  fc.constantFrom("", "# a comment\n", "\n", "#x = y\n", "   # indented\n"),
  {
    minLength: 1,
    maxLength: 4,
  },
);

Deno.test("format then parse gives the same entries", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(paramName, lineValue), { selector: ([n]) => n, maxLength: 15 }),
      spacing,
      (defs, sp) => {
        const { entries, warnings } = parseMainCf(format(defs, sp));
        assertEquals([...entries], expected(defs));
        assertEquals(warnings, []);
      },
    ),
    RUNS,
  );
});

Deno.test("format then parse, repeated names: last wins, one warning per repeat", () => {
  fc.assert(
    fc.property(definitions, spacing, (defs, sp) => {
      const { entries, warnings } = parseMainCf(format(defs, sp));
      assertEquals([...entries], expected(defs));
      assertEquals(warnings.length, defs.length - new Set(defs.map(([n]) => n)).size);
    }),
    RUNS,
  );
});

Deno.test("editMainCf then parse: the new value, every other entry kept", () => {
  fc.assert(
    fc.property(
      definitions,
      spacing,
      fc.oneof(paramName, fc.constant("")),
      lineValue,
      fc.nat(),
      (defs, sp, fresh, value, pick) => {
        // Edit an existing name, or a new one.
        const name = fresh !== "" || defs.length === 0
          ? fresh || "newname"
          : defs[pick % defs.length][0];
        const text = format(defs, sp);
        const before = expected(defs);
        const after = parseMainCf(editMainCf(text, { set: new Map([[name, value]]) }));
        const want = before.some(([n]) => n === name)
          ? before.map(([n, v]) => [n, n === name ? trimPostfix(value) : v])
          : [...before, [name, trimPostfix(value)]];
        assertEquals([...after.entries], want);
        assert(
          after.warnings.every((w) => !w.includes(`overriding earlier entry: ${name}=`)),
          `one definition of the edited name is left: ${after.warnings}`,
        );
        // Comments stay.
        const comments = (s: string) => s.split("\n").filter((l) => l.trimStart().startsWith("#"));
        assertEquals(comments(editMainCf(text, { set: new Map([[name, value]]) })), comments(text));
      },
    ),
    RUNS,
  );
});

Deno.test("editMainCf remove then parse: the name is gone, every other entry kept", () => {
  fc.assert(
    fc.property(definitions, spacing, fc.nat(), (defs, sp, pick) => {
      const name = defs.length ? defs[pick % defs.length][0] : "absent";
      const after = parseMainCf(editMainCf(format(defs, sp), { remove: [name] }));
      assertEquals([...after.entries], expected(defs).filter(([n]) => n !== name));
    }),
    RUNS,
  );
});
