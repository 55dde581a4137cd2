import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { DictError } from "./dict.ts";
import { openDict, tableGrants } from "./registry.ts";

Deno.test("unionmap and pipemap, as Postfix's dict_union and dict_pipe", async (t) => {
  await t.step("unionmap joins every value found with ','", async () => {
    const d = await openDict("unionmap:{inline:{x=y}, inline:{x=z, q=r}, static:{a b}}");
    assertEquals(await d.lookup("x"), "y,z,a b");
    assertEquals(await d.lookup("X"), "y,z,a b");
    const none = await openDict("unionmap:{inline:{x=y}, inline:{q=r}}");
    assertEquals(await none.lookup("nothing"), undefined);
  });
  await t.step("unionmap fails when any table fails", async () => {
    const d = await openDict("unionmap:{inline:{x=y}, fail:down}");
    await assertRejects(() => d.lookup("x"), DictError);
  });
  await t.step("pipemap feeds each result to the next table as its key", async () => {
    const d = await openDict("pipemap:{inline:{x=Y}, inline:{y=z}}");
    assertEquals(await d.lookup("X"), "z");
    assertEquals(await d.lookup("q"), undefined);
    const single = await openDict("pipemap:{inline:{x=y}}");
    assertEquals(await single.lookup("x"), "y");
  });
  await t.step("pipemap stops at the first miss; a later failing table is not asked", async () => {
    const d = await openDict("pipemap:{inline:{q=y}, fail:down}");
    assertEquals(await d.lookup("x"), undefined);
    await assertRejects(() => d.lookup("q"), DictError);
  });
  await t.step("bad syntax, as Postfix words it", async () => {
    for (
      const [spec, msg] of [
        ["unionmap:{}", 'bad syntax: "unionmap:{}"; need "unionmap:{type:name...}"'],
        [
          "pipemap:inline:{a=b}",
          'bad syntax: "pipemap:inline:{a=b}"; need "pipemap:{type:name...}"',
        ],
      ]
    ) {
      const e = await assertRejects(() => openDict(spec), DictError);
      assertEquals([e.message, e.kind], [msg, "config"]);
    }
    const e = await assertRejects(() => openDict("unionmap:{{inline:{a=b}}}"), DictError);
    assertEquals(e.kind, "config");
  });
  await t.step("grants: the nested tables' grants", async () => {
    const g = await tableGrants(
      "unionmap:{hash:/etc/a, pipemap:{texthash:/etc/b, environ:x}}",
      { readTextFile: () => Promise.reject(new Error("unused")) },
    );
    assertEquals(g.read, ["/etc/a.hash.pwdb", "/etc/a", "/etc/b"]);
    assertEquals(g.env, ["*"]);
  });
});
