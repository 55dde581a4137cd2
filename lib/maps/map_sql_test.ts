/**
 * The SQL backends without a server: sqlite against a real database file
 * (hostile keys compared with a bound-parameter query, the truth), and
 * pgsql/mysql against a closed port (a connection failure is "retry",
 * never "not found").
 */
import { DatabaseSync } from "node:sqlite";
import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { DictError } from "./dict.ts";
import { openDict } from "./registry.ts";
import { HOSTILE_KEYS } from "./testdata/hostile_keys.ts";

Deno.test("sqlite: table", async (t) => {
  const dir = await Deno.makeTempDir();
  const dbpath = `${dir}/t.sqlite`;
  const db = new DatabaseSync(dbpath);
  db.exec("CREATE TABLE t (k TEXT, v TEXT)");
  const ins = db.prepare("INSERT INTO t VALUES (?, ?)");
  HOSTILE_KEYS.forEach((k, i) => ins.run(k, `value${i}`));
  ins.run("1", "one");
  ins.run("multi", "a");
  ins.run("multi", "b");
  db.close();
  const cf = `${dir}/t.cf`;
  await Deno.writeTextFile(cf, `dbpath = ${dbpath}\nquery = SELECT v FROM t WHERE k='%s'\n`);
  const truthDb = new DatabaseSync(dbpath, { readOnly: true });
  const truth = truthDb.prepare("SELECT v FROM t WHERE k = ?");
  const dict = await openDict(`sqlite:${cf}`, { fold: false });
  try {
    await t.step("hostile keys neither break the query nor change its meaning", async () => {
      for (const k of [...HOSTILE_KEYS, ...HOSTILE_KEYS.map((k) => k + "x")]) {
        const want = (truth.all(k) as { v: string }[]).map((r) => r.v).join(",") || undefined;
        assertEquals(await dict.lookup(k), want, JSON.stringify(k));
      }
    });
    await t.step("a NUL in the key finds nothing (a C string cannot hold it)", async () => {
      assertEquals(await dict.lookup("1\0' OR '1'='1"), undefined);
    });
    await t.step("rows are joined with ','", async () => {
      assertEquals(await dict.lookup("multi"), "a,b");
    });
    await t.step("a query the database cannot prepare is a config error", async () => {
      const bad = `${dir}/bad.cf`;
      await Deno.writeTextFile(
        bad,
        `dbpath = ${dbpath}\nquery = SELECT v FROM nosuch WHERE k='%s'\n`,
      );
      const d = await openDict(`sqlite:${bad}`);
      const e = await assertRejects(() => d.lookup("x"), DictError, "prepare");
      assertEquals(e.kind, "config");
      await d.close();
    });
    await t.step("a missing database file is a config error at open", async () => {
      const bad = `${dir}/missing.cf`;
      await Deno.writeTextFile(bad, `dbpath = ${dir}/nosuch.db\nquery = SELECT 1\n`);
      const e = await assertRejects(() => openDict(`sqlite:${bad}`), DictError, "nosuch.db");
      assertEquals(e.kind, "config");
    });
  } finally {
    await dict.close();
    truthDb.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pgsql: and mysql: servers that do not answer are 'retry', never 'not found'", async (t) => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  const dir = await Deno.makeTempDir();
  try {
    for (const type of ["pgsql", "mysql"]) {
      await t.step(type, async () => {
        const cf = `${dir}/${type}.cf`;
        await Deno.writeTextFile(
          cf,
          `hosts = 127.0.0.1:${port} inet:127.0.0.1:${port}\nuser = u\npassword = p\n` +
            `dbname = d\nquery = SELECT v FROM t WHERE k='%s'\n`,
        );
        const d = await openDict(`${type}:${cf}`);
        const e = await assertRejects(() => d.lookup("a@example.com"), DictError, "127.0.0.1");
        assertEquals(e.kind, "retry");
        await d.close();
      });
    }
    await t.step("mysql: settings Postwarden does not implement are named", async () => {
      const cf = `${dir}/tls.cf`;
      await Deno.writeTextFile(cf, "dbname = d\nquery = q '%s'\ntls_CAfile = /x\n");
      const e = await assertRejects(() => openDict(`mysql:${cf}`), DictError, "tls_CAfile");
      assertEquals(e.kind, "config");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
