import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { DictError } from "../../lib/maps/mod.ts";
import { failingDict, fixedDict, mapsOf, regexpDict } from "./_test_tables.ts";
import { expandVirtual, ExpansionError } from "./virtual.ts";

const LIMITS = { expansion: 1000, recursion: 1000, addressLength: 1000 };

Deno.test("virtual alias expansion (cleanup_map1n)", async (t) => {
  await t.step("expands recursively, one address into many", async () => {
    const maps = mapsOf(
      "virtual_alias_maps",
      fixedDict({
        "list@v.example": "a@v.example, b@v.example",
        "a@v.example": "alice@real.example",
        "b@v.example": "bob@real.example, carol@real.example",
      }),
    );
    assertEquals(await expandVirtual(maps, "list@v.example", LIMITS), [
      "alice@real.example",
      "bob@real.example",
      "carol@real.example",
    ]);
  });
  await t.step("an address without entry is itself", async () => {
    const maps = mapsOf("virtual_alias_maps", fixedDict({ "x@v.example": "y@v.example" }));
    assertEquals(await expandVirtual(maps, "z@v.example", LIMITS), ["z@v.example"]);
  });
  await t.step(
    "an address that maps to itself among others is kept, not expanded again",
    async () => {
      const d = fixedDict({ "joe@v.example": "joe@v.example, archive@v.example" });
      const maps = mapsOf("virtual_alias_maps", d);
      assertEquals(await expandVirtual(maps, "joe@v.example", LIMITS), [
        "joe@v.example",
        "archive@v.example",
      ]);
      // joe looked up once, archive once: no loop.
      assertEquals(d.keys.filter((k) => k === "joe@v.example").length, 1);
    },
  );
  await t.step("duplicates in the expansion are left for cleanup's duplicate removal", async () => {
    const maps = mapsOf(
      "virtual_alias_maps",
      fixedDict({ "l@v.example": "a@r.example, m@v.example", "m@v.example": "a@r.example" }),
    );
    assertEquals(await expandVirtual(maps, "l@v.example", LIMITS), ["a@r.example", "a@r.example"]);
  });
  await t.step("@domain and extension propagation (propagate_unmatched_extensions)", async () => {
    const maps = mapsOf(
      "virtual_alias_maps",
      fixedDict({ "@old.example": "@new.example", "joe@v.example": "joseph@r.example" }),
    );
    assertEquals(await expandVirtual(maps, "x@old.example", LIMITS), ["x@new.example"]);
    assertEquals(
      await expandVirtual(maps, "joe+tag@v.example", LIMITS, { delimiters: "+", propagate: true }),
      ["joseph+tag@r.example"],
    );
    assertEquals(
      await expandVirtual(maps, "joe+tag@v.example", LIMITS, { delimiters: "+" }),
      ["joseph@r.example"],
    );
  });
  await t.step("expansion limit: deferred with Postfix's warning", async () => {
    const warnings: string[] = [];
    const maps = mapsOf(
      "virtual_alias_maps",
      fixedDict({ "big@v.example": "a@r, b@r, c@r, d@r" }),
    );
    const e = await assertRejects(
      () =>
        expandVirtual(maps, "big@v.example", { ...LIMITS, expansion: 3 }, {
          warn: (m) => warnings.push(m),
        }),
      ExpansionError,
    );
    assertEquals([e.dsn, e.reason], ["4.6.0", "Alias expansion error"]);
    assertEquals(warnings, [
      "unreasonable virtual_alias_maps map expansion size for big@v.example -- " +
      "message not accepted, try again later",
    ]);
  });
  await t.step("recursion limit: a chain deeper than the limit is deferred", async () => {
    const warnings: string[] = [];
    const re = regexpDict([[/^n(\d+)@v\.example$/, "n1$1@v.example"]]);
    await assertRejects(
      () =>
        expandVirtual(mapsOf("virtual_alias_maps", re), "n1@v.example", {
          ...LIMITS,
          recursion: 5,
        }, { warn: (m) => warnings.push(m) }),
      ExpansionError,
    );
    assertEquals(re.keys.length, 5);
    assertEquals(
      warnings[0].startsWith("unreasonable virtual_alias_maps map nesting for n1@"),
      true,
    );
  });
  await t.step("address length limit", async () => {
    const maps = mapsOf("virtual_alias_maps", fixedDict({ "a@v.example": "x".repeat(50) + "@r" }));
    await assertRejects(
      () => expandVirtual(maps, "a@v.example", { ...LIMITS, addressLength: 20 }),
      ExpansionError,
    );
  });
  await t.step("a table that cannot answer is a DictError", async () => {
    await assertRejects(
      () => expandVirtual(mapsOf("virtual_alias_maps", failingDict()), "a@v.example", LIMITS),
      DictError,
    );
  });
});
