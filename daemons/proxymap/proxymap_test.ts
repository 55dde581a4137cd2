/**
 * proxymap end to end over a real socket: a ProxyClient's lookups answered
 * by ProxyTables, approved tables only, errors kept as errors, pipelining,
 * and the cost of the extra hop against a direct lookup.
 */
import { assertEquals, assertRejects, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { fakeService } from "../../tests/helpers/fake_service.ts";
import { ipcListen } from "../../lib/ipc/mod.ts";
import { DictError, Maps, ProxyClient } from "../../lib/maps/mod.ts";
import { ProxyTables } from "./proxymap.ts";

Deno.test("proxymap answers approved tables only", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "pw-proxymap-" });
  const { ctx, lines } = await fakeService("proxymap", root, {
    mainCf: "local_recipient_maps = proxy:unix:passwd.byname, proxy:inline:{Joe=1, ann=2}\n" +
      "alias_maps = proxy:fail:down\n",
  });
  const tables = new ProxyTables(ctx);
  const sock = `${root}/proxymap.sock`;
  const server = ipcListen(sock, (conn) => tables.serve(conn));
  const client = new ProxyClient(sock);
  const open = (value: string) =>
    Maps.open("t", value, { proxy: (spec, fold) => client.dict(spec, fold) });
  try {
    await t.step("lookups through the socket, keys folded", async () => {
      const m = await open("proxy:inline:{Joe=1, ann=2}");
      assertEquals(await m.find("JOE"), "1");
      assertEquals(await m.find("bob"), undefined);
      const pw = await open("proxy:unix:passwd.byname");
      assertStringIncludes((await pw.find("root")) ?? "", "root:");
    });
    await t.step("a table the configuration does not name is refused", async () => {
      const m = await open("proxy:unix:group.byname");
      await assertRejects(() => m.find("root"), DictError, "not named in the configuration");
      assertEquals(lines.some((l) => l.includes("unapproved table")), true);
    });
    await t.step("a failing table stays a failure (try again)", async () => {
      const m = await open("proxy:fail:down");
      const e = await assertRejects(() => m.find("x"), DictError);
      assertEquals(e.kind, "retry");
    });
    await t.step("pipelined lookups come back in order", async () => {
      const m = await open("proxy:inline:{Joe=1, ann=2}");
      const keys = Array.from({ length: 500 }, (_, i) => (i % 3 === 0 ? "joe" : `u${i}`));
      const got = await Promise.all(keys.map((k) => m.find(k)));
      assertEquals(got, keys.map((k) => (k === "joe" ? "1" : undefined)));
    });
    await t.step("the extra hop costs (printed, not asserted)", async () => {
      const via = await open("proxy:inline:{Joe=1, ann=2}");
      const direct = await Maps.open("t", "inline:{Joe=1, ann=2}");
      const n = 5000;
      const time = async (m: Maps) => {
        const t0 = performance.now();
        for (let i = 0; i < n; i++) await m.find(i % 2 ? "joe" : "nobody");
        return (performance.now() - t0) * 1000 / n;
      };
      const d = await time(direct);
      const p = await time(via);
      console.log(`  lookup: direct ${d.toFixed(1)} µs, through proxymap ${p.toFixed(1)} µs`);
    });
    await t.step("proxymap gone: lookups fail with try again, then recover", async () => {
      const m = await open("proxy:inline:{Joe=1, ann=2}");
      assertEquals(await m.find("joe"), "1");
      client.close();
      assertEquals(await m.find("joe"), "1", "reconnects after a closed connection");
    });
  } finally {
    client.close();
    server.close();
    await tables.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("proxymap answers in order while lookups overlap", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "pw-proxymap-" });
  const { ctx } = await fakeService("proxymap", root, {
    mainCf: "virtual_alias_maps = proxy:inline:{a=1, b=2}\n",
  });
  const tables = new ProxyTables(ctx);
  // The first lookup of each pair is slow: a later one finishes first.
  const slow = new Map([["a", 40], ["b", 0]]);
  const answer = tables.answer.bind(tables);
  let running = 0;
  let most = 0;
  tables.answer = async (req) => {
    running++;
    most = Math.max(most, running);
    await new Promise((r) => setTimeout(r, slow.get(req.key) ?? 0));
    running--;
    return await answer(req);
  };
  const sock = `${root}/proxymap.sock`;
  const server = ipcListen(sock, (conn) => tables.serve(conn));
  const client = new ProxyClient(sock);
  try {
    await t.step("replies match their requests, and several were in progress at once", async () => {
      const m = await Maps.open("t", "proxy:inline:{a=1, b=2}", {
        proxy: (spec, fold) => client.dict(spec, fold),
      });
      const keys = ["a", "b", "a", "b", "x", "a"];
      assertEquals(await Promise.all(keys.map((k) => m.find(k))), [
        "1",
        "2",
        "1",
        "2",
        undefined,
        "1",
      ]);
      assertEquals(most > 1, true, `at most ${most} lookup(s) at once`);
    });
    await t.step(
      "a lookup that throws closes the connection; the next one reconnects",
      async () => {
        tables.answer = () => Promise.reject(new Error("bug"));
        const m = await Maps.open("t", "proxy:inline:{a=1, b=2}", {
          proxy: (spec, fold) => client.dict(spec, fold),
        });
        const e = await assertRejects(() => m.find("a"), DictError);
        assertEquals(e.kind, "retry");
        tables.answer = answer;
        assertEquals(await m.find("a"), "1");
      },
    );
  } finally {
    client.close();
    server.close();
    await tables.close();
    await Deno.remove(root, { recursive: true });
  }
});
