import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { DictError } from "./dict.ts";
import { openDict, tableGrants } from "./registry.ts";

Deno.test("texthash: read at open, as Postfix's dict_thash", async (t) => {
  const dir = await Deno.makeTempDir();
  const f = `${dir}/t`;
  await Deno.writeTextFile(f, "# c\nUser@Example.COM  a  b \nuser@example.com second\nbad\n");
  await t.step("first value of a key wins; warnings name the line", async () => {
    const w: string[] = [];
    const d = await openDict(`texthash:${f}`, { warn: (m) => w.push(m) });
    assertEquals(await d.lookup("USER@example.com"), "a  b");
    assertEquals(await d.lookup("bad"), undefined);
    assertEquals(w, [
      `${f}, line 3: duplicate entry: "user@example.com"`,
      `${f}, line 4: expected format: key whitespace value -- ignoring this line`,
    ]);
  });
  await t.step("without folding, keys are exact", async () => {
    const d = await openDict(`texthash:${f}`, { fold: false, warn: () => {} });
    assertEquals(await d.lookup("User@Example.COM"), "a  b");
    assertEquals(await d.lookup("user@example.com"), "second");
  });
  await t.step("a missing file is a config error", async () => {
    const e = await assertRejects(() => openDict(`texthash:${dir}/none`), DictError);
    assertEquals(e.kind, "config");
  });
  await t.step("grants: the source", async () => {
    assertEquals(
      (await tableGrants(`texthash:${f}`, { readTextFile: Deno.readTextFile })).read,
      [f],
    );
  });
  await Deno.remove(dir, { recursive: true });
});
