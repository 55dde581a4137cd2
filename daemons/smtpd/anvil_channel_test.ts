import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import { ipcConnect, ipcListen, type IpcServer } from "../../lib/ipc/mod.ts";
import { serve } from "../anvil/server.ts";
import { AnvilState } from "../anvil/state.ts";
import { clientLimits, limitSettings } from "./anvil.ts";
import { AnvilChannel } from "./anvil_channel.ts";

const main = "compatibility_level = 3.6\nmyhostname = mx.example\nmynetworks = 127.0.0.0/8\n";

/** A real anvil state on a temporary socket that counts the connections it accepts. */
async function anvil() {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/anvil`;
  const state = new AnvilState(60);
  let accepted = 0;
  const listen = () =>
    ipcListen(path, (conn) => {
      accepted++;
      return serve(state, conn, { now: () => 1000, warn: () => {} });
    });
  let server: IpcServer = listen();
  return {
    path,
    state,
    accepted: () => accepted,
    restart() {
      server.close();
      server = listen();
    },
    async close() {
      server.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("anvil channel", async (t) => {
  const a = await anvil();
  const settings = limitSettings(
    makeConfig("/x", main + "smtpd_client_connection_count_limit = 2\n"),
  );
  const client = { name: "c.example", addr: "192.0.2.9" };
  try {
    await t.step("sessions share one connection; the count limit still holds", async () => {
      const channel = new AnvilChannel(() => ipcConnect(a.path), 2000);
      const warnings: string[] = [];
      const deps = {
        service: "smtp",
        client,
        open: () => Promise.reject(new Error("a session's own connection is not used")),
        channel,
        warn: (m: string) => warnings.push(m),
      };
      const sessions = [1, 2, 3].map(() => clientLimits(settings, deps));
      // Asked at once: pipelined on the one connection, answered in order.
      const replies = await Promise.all(sessions.map((s) => s.connect()));
      assertEquals(replies.filter((r) => r === null).length, 2);
      assertEquals(replies.filter((r) => r?.code === 421).length, 1);
      for (const s of sessions) await s.disconnect();
      const again = clientLimits(settings, deps);
      assertEquals(await again.connect(), null);
      await again.disconnect();
      assertEquals(a.accepted(), 1);
      assertEquals(warnings, []);
      assertEquals(a.state.lookup("smtp:192.0.2.9", 1000).count, 0);
      channel.close();
    });

    await t.step(
      "after the connection is dropped, the next request connects again",
      async () => {
        const before = a.accepted();
        const channel = new AnvilChannel(() => ipcConnect(a.path), 2000);
        assertEquals((await channel.request({ request: "lookup", ident: "smtp:x" })).status, 0);
        a.restart(); // closes the listener only; the served connection stays
        channel.close();
        assertEquals((await channel.request({ request: "lookup", ident: "smtp:x" })).status, 0);
        assertEquals(a.accepted() - before, 2);
        channel.close();
      },
    );

    await t.step(
      "anvil that never answers: every waiting request fails at its deadline",
      async () => {
        const dir = await Deno.makeTempDir();
        const held: Deno.Conn[] = [];
        const l = Deno.listen({ transport: "unix", path: `${dir}/mute` });
        (async () => {
          for await (const c of l) held.push(c);
        })();
        try {
          const channel = new AnvilChannel(() => ipcConnect(`${dir}/mute`), 200);
          const started = Date.now();
          const results = await Promise.allSettled(
            [1, 2, 3].map(() => channel.request({ request: "connect", ident: "smtp:y" })),
          );
          const took = Date.now() - started;
          assert(results.every((r) => r.status === "rejected"), JSON.stringify(results));
          assert(took < 1500, `requests waited ${took}ms, not one deadline`);
          assertEquals(channel.pending, 0);
          // A session over a mute anvil goes unlimited with one warning.
          const warnings: string[] = [];
          const s = clientLimits(settings, {
            service: "smtp",
            client,
            open: () => Promise.reject(new Error("unused")),
            channel,
            warn: (m) => warnings.push(m),
          });
          assertEquals(await s.connect(), null);
          await s.disconnect();
          assertEquals(warnings.length, 1);
          assert(warnings[0].startsWith("problem talking to server private/anvil: read timeout"));
          channel.close();
        } finally {
          l.close();
          for (const c of held) c.close();
          await Deno.remove(dir, { recursive: true });
        }
      },
    );

    await t.step("anvil not running: the request fails, nothing waits", async () => {
      const channel = new AnvilChannel(() => ipcConnect(`${a.path}.missing`), 2000);
      let failed = false;
      await channel.request({ request: "connect", ident: "smtp:z" }).catch(() => failed = true);
      assert(failed);
      assertEquals(channel.pending, 0);
    });
  } finally {
    await a.close();
  }
});
