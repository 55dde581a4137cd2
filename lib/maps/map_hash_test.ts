import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { DictError } from "./dict.ts";
import {
  compiledPath,
  CompiledTable,
  encodeTable,
  TableBuilder,
  writeCompiled,
} from "./map_hash.ts";
import { openDict, tableGrants } from "./registry.ts";

const noRead = { readTextFile: () => Promise.reject(new Error("no")) };

Deno.test("compiled index", async (t) => {
  await t.step("round trip, misses, UTF-8 and empty values", () => {
    const table = new CompiledTable(
      encodeTable([["a", "1"], ["jürgen@example.de", "ü"], ["", "empty key"], ["e", ""]]),
      "t",
    );
    assertEquals(table.get("a"), "1");
    assertEquals(table.get("jürgen@example.de"), "ü");
    assertEquals(table.get(""), "empty key");
    assertEquals(table.get("e"), "");
    assertEquals(table.get("A"), undefined);
    assertEquals(table.get("b"), undefined);
    assertEquals(table.count, 4);
  });
  await t.step("many keys, every one found", () => {
    const entries = Array.from({ length: 5000 }, (_, i) => [`k${i}`, `v${i}`] as [string, string]);
    const table = new CompiledTable(encodeTable(entries), "t");
    for (const [k, v] of entries) assertEquals(table.get(k), v);
    assertEquals([...table.entries()], entries);
  });
  await t.step("a replaced entry is gone from the listing and the lookup", () => {
    const b = new TableBuilder(4);
    assertEquals(b.addText("k", "old"), "added");
    assertEquals(b.addText("k", "dup"), "duplicate");
    assertEquals(b.addText("x", "y"), "added");
    assertEquals(b.addText("k", "new", true), "replaced");
    const table = new CompiledTable(b.finish(), "t");
    assertEquals(table.get("k"), "new");
    assertEquals([...table.entries()], [["x", "y"], ["k", "new"]]);
    assertEquals(table.count, 2);
  });
  await t.step("a torn file is corrupt, never read", () => {
    const whole = encodeTable([["a", "1"], ["b", "2"]]);
    for (const cut of [whole.length - 1, 30, 19]) {
      try {
        new CompiledTable(whole.slice(0, cut), "x");
        assert(false, `no error at ${cut}`);
      } catch (e) {
        assert(e instanceof DictError && e.kind === "config", String(e));
      }
    }
  });
  await t.step("not an index", () => {
    try {
      new CompiledTable(new TextEncoder().encode("SQLite format 3\0"), "x.db");
      assert(false, "no error");
    } catch (e) {
      assert(e instanceof DictError && e.kind === "config");
      assertEquals(e.message, "x.db: not a Postwarden table index (rebuild it with postmap)");
    }
  });
});

Deno.test("hash: tables", async (t) => {
  const dir = await Deno.makeTempDir();
  const src = `${dir}/virtual`;
  await t.step("a missing index is a config error that says to run postmap", async () => {
    await Deno.writeTextFile(src, "a b\n");
    const e = await assertRejects(() => openDict(`hash:${src}`), DictError);
    assertEquals(e.kind, "config");
    assertEquals(
      e.message,
      `open database ${src}.hash.pwdb: No such file or directory; run "postmap hash:${src}" to build it`,
    );
  });
  await t.step("lookups fold the key unless opened without folding", async () => {
    await writeCompiled(
      compiledPath("hash", src),
      encodeTable([["user@example.com", "x"], ["Mixed", "m"]]),
    );
    const d = await openDict(`hash:${src}`, { warn: () => {} });
    assertEquals(await d.lookup("USER@Example.com"), "x");
    assertEquals(await d.lookup("Mixed"), undefined);
    const raw = await openDict(`btree:${src}`, { fold: false, warn: () => {} }).catch((e) => e);
    assert(raw instanceof DictError, "btree has its own index file");
    await writeCompiled(compiledPath("btree", src), encodeTable([["Mixed", "m"]]));
    const nofold = await openDict(`btree:${src}`, { fold: false, warn: () => {} });
    assertEquals(await nofold.lookup("Mixed"), "m");
  });
  await t.step("an index older than its source is reported at open", async () => {
    const old = new Date(Date.now() - 60_000);
    await Deno.utime(compiledPath("hash", src), old, old);
    const warnings: string[] = [];
    await openDict(`hash:${src}`, { warn: (m) => warnings.push(m) });
    assertEquals(warnings, [`database ${src}.hash.pwdb is older than source file ${src}`]);
  });
  await t.step("writes leave no temporary file behind", async () => {
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assertEquals(names.sort(), ["virtual", "virtual.btree.pwdb", "virtual.hash.pwdb"]);
  });
  await t.step("grants: the index, and its source for the age check", async () => {
    assertEquals((await tableGrants(`hash:${src}, cdb:/etc/x`, noRead)).read, [
      `${src}.hash.pwdb`,
      src,
      "/etc/x.cdb.pwdb",
      "/etc/x",
    ]);
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a daemon opens an index with read permission for that one file", async () => {
  const dir = await Deno.makeTempDir();
  await writeCompiled(compiledPath("lmdb", `${dir}/t`), encodeTable([["k", "v"]]));
  const mod = new URL("./mod.ts", import.meta.url).href;
  const code = `const { openDict } = await import(${JSON.stringify(mod)});
    const d = await openDict("lmdb:${dir}/t", { warn: (m) => console.log("warn", m) });
    console.log(await d.lookup("K"));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `--allow-read=${dir}/t.lmdb.pwdb,${new URL("../..", import.meta.url).pathname}`,
      code,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(new TextDecoder().decode(out.stderr), "");
  assertEquals(new TextDecoder().decode(out.stdout), "v\n");
  await Deno.remove(dir, { recursive: true });
});
