/**
 * Keys named like JavaScript object members (__proto__, constructor,
 * toString, hasOwnProperty) are plain data in every table type: a table
 * holding one matches only that key, a table without it matches nothing,
 * and a table type or character class of that name is an error, not
 * Object.prototype.
 */
import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { DictError } from "./dict.ts";
import { CompiledTable, encodeTable } from "./map_hash.ts";
import { Maps } from "./maps.ts";

const KEYS = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"];

Deno.test("table keys named like object members", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "maps-keys-" });
  try {
    const file = `${dir}/t`;
    await Deno.writeTextFile(file, "constructor only-constructor\nplain value\n");
    const specs = [
      "inline:{ constructor=only-constructor, plain=value }",
      `texthash:${file}`,
      "regexp:{ {/^constructor$/ only-constructor}, {/^plain$/ value} }",
      "pcre:{ {/^constructor$/ only-constructor}, {/^plain$/ value} }",
    ];
    for (const spec of specs) {
      await t.step(`${spec.split(":")[0]}: "constructor" matches only itself`, async () => {
        const maps = await Maps.open("test", spec);
        assertEquals(await maps.find("constructor"), "only-constructor");
        assertEquals(await maps.find("plain"), "value");
        for (const key of KEYS.filter((k) => k !== "constructor")) {
          assertEquals(await maps.find(key), undefined, key);
        }
        assertEquals(({} as Record<string, unknown>).polluted, undefined);
      });
    }
    await t.step("inline: a __proto__ entry is an entry", async () => {
      const maps = await Maps.open("test", "inline:{ __proto__=proto, toString=str }");
      assertEquals(await maps.find("__proto__"), "proto");
      assertEquals(await maps.find("toString"), "str");
      assertEquals(await maps.find("constructor"), undefined);
    });
    await t.step("static: answers every key the same", async () => {
      const maps = await Maps.open("test", "static:fixed");
      for (const key of KEYS) assertEquals(await maps.find(key), "fixed");
    });
    await t.step("hash: (compiled) finds only what it holds", () => {
      const table = new CompiledTable(encodeTable([["__proto__", "p"], ["plain", "v"]]), "t");
      assertEquals(table.get("__proto__"), "p");
      for (const key of KEYS.filter((k) => k !== "__proto__")) {
        assertEquals(table.get(key), undefined);
      }
    });
    await t.step("a table type named like an object member is unsupported", async () => {
      for (const type of KEYS) {
        await assertRejects(() => Maps.open("test", `${type}:x`), DictError);
      }
    });
    await t.step("unix: a table name like an object member is unknown", async () => {
      const maps = await Maps.open("test", "unix:constructor");
      await assertRejects(() => maps.find("root"), DictError);
    });
    await t.step("regexp and pcre: [[:constructor:]] is no character class", async () => {
      for (const type of ["regexp", "pcre"]) {
        for (const cls of ["constructor", "toString", "__proto__"]) {
          const warnings: string[] = [];
          const maps = await Maps.open("test", `${type}:{ {/[[:${cls}:]]/ x} }`, {
            warn: (m) => warnings.push(m),
          });
          // The line is refused with the library's error, as Postfix does; nothing matches.
          for (const key of ["c", "constructor", "function Object() { [native code] }"]) {
            assertEquals(await maps.find(key), undefined);
          }
          assertEquals(warnings.length, 1, `${type} ${cls}: ${warnings.join("; ")}`);
        }
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
