import { assertEquals } from "../../tests/helpers/assert.ts";
import type { IpcConn } from "./mod.ts";
import { IdleConns } from "./idle.ts";

type Fake = IpcConn & { closed: boolean; name: string };

/** A stand-in connection that records whether it was closed. */
function fake(name: string): Fake {
  const f = { name, closed: false, close: () => void (f.closed = true) };
  return f as unknown as Fake;
}

Deno.test("IdleConns", async (t) => {
  await t.step("the newest idle connection of a key first; keys apart", () => {
    const pool = new IdleConns<string>(5000, () => 0);
    const a = fake("a"), b = fake("b"), c = fake("c");
    pool.put("smtp", a);
    pool.put("smtp", b);
    pool.put("local", c);
    assertEquals(pool.take("smtp"), b);
    assertEquals(pool.take("smtp"), a);
    assertEquals(pool.take("smtp"), undefined);
    assertEquals(pool.take("local"), c);
  });
  await t.step("a connection idle for the limit or longer is closed, not reused", () => {
    let now = 0;
    const pool = new IdleConns<string>(5000, () => now);
    const old = fake("old");
    pool.put("k", old);
    now = 4999;
    const young = fake("young");
    pool.put("k", young);
    now = 5000;
    assertEquals(pool.take("k"), young);
    assertEquals(pool.take("k"), undefined);
    assertEquals(old.closed, true);
    assertEquals(young.closed, false);
  });
  await t.step("close() closes what is idle", () => {
    const pool = new IdleConns<string>();
    const a = fake("a");
    pool.put("k", a);
    pool.close();
    assertEquals([a.closed, pool.take("k")], [true, undefined]);
  });
});
