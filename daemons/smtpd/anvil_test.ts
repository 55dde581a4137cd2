import { assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import { ipcConnect, ipcListen } from "../../lib/ipc/mod.ts";
import { serve } from "../anvil/server.ts";
import { AnvilState } from "../anvil/state.ts";
import { checkAuthRate, clientLimits, limitSettings } from "./anvil.ts";

const main = "compatibility_level = 3.6\nmyhostname = mx.example\nmynetworks = 127.0.0.0/8\n";

/** A real anvil state served on a temporary socket, with a clock the test moves. */
async function anvil() {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/anvil`;
  let now = 1000;
  const state = new AnvilState(60);
  const server = ipcListen(path, (conn) => serve(state, conn, { now: () => now, warn: () => {} }));
  return {
    open: () => ipcConnect(path),
    state,
    tick: (s: number) => (now += s),
    async close() {
      server.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("smtpd client limits", async (t) => {
  const a = await anvil();
  try {
    const settings = (extra: string) => limitSettings(makeConfig("/x", main + extra));
    const client = { name: "c.example", addr: "192.0.2.9" };
    await t.step(
      "count limit: the connection over it is refused, a disconnect frees it",
      async () => {
        const s = settings("smtpd_client_connection_count_limit = 2\n");
        const warnings: string[] = [];
        const deps = {
          service: "smtp",
          client,
          open: a.open,
          warn: (m: string) => warnings.push(m),
        };
        const one = clientLimits(s, deps),
          two = clientLimits(s, deps),
          three = clientLimits(s, deps);
        assertEquals(await one.connect(), null);
        assertEquals(await two.connect(), null);
        assertEquals(await three.connect(), {
          code: 421,
          dsn: "4.7.0",
          text: "mx.example Error: too many connections from 192.0.2.9",
          warning:
            "Connection concurrency limit exceeded: 3 from c.example[192.0.2.9] for service smtp",
        });
        await three.disconnect();
        await one.disconnect();
        const four = clientLimits(s, deps);
        assertEquals(await four.connect(), null);
        await four.disconnect();
        await two.disconnect();
        assertEquals(a.state.lookup("smtp:192.0.2.9", 1000).count, 0);
        assertEquals(warnings, []);
      },
    );
    await t.step("AUTH rate: checkAuthRate answers 450 4.7.1 and logs", async () => {
      const s = settings("smtpd_client_auth_rate_limit = 1\n");
      const warnings: string[] = [];
      const l = clientLimits(s, { service: "submission", client, open: a.open, warn: () => {} });
      await l.connect();
      assertEquals(await checkAuthRate(l, (m) => warnings.push(m)), null);
      assertEquals(
        (await checkAuthRate(l, (m) => warnings.push(m)))?.text,
        "Error: too many AUTH commands from 192.0.2.9",
      );
      assertEquals(warnings, [
        "AUTH command rate limit exceeded: 2 from c.example[192.0.2.9] for service submission",
      ]);
      a.tick(61);
      assertEquals(await checkAuthRate(l, () => {}), null, "a new time unit");
      await l.disconnect();
      assertEquals(await checkAuthRate(undefined, () => {}), null);
    });
    await t.step("new TLS sessions: refused before, counted after the handshake", async () => {
      const s = settings("smtpd_client_new_tls_session_rate_limit = 2\n");
      const l = clientLimits(s, { service: "smtp", client, open: a.open, warn: () => {} });
      await l.connect();
      assertEquals(await l.tlsRefused("STARTTLS request"), null);
      assertEquals(await l.newTls(), null);
      assertEquals(await l.tlsRefused("STARTTLS request"), null, "asking counts nothing");
      assertEquals(await l.newTls(), null);
      assertEquals(await l.tlsRefused("STARTTLS request"), null, "at the limit, not over");
      assertEquals(await l.newTls(), {
        code: 421,
        dsn: "4.7.0",
        text: "mx.example Error: too many new TLS sessions from c.example[192.0.2.9]",
        warning:
          "New TLS session rate limit exceeded: 3 from c.example[192.0.2.9] for service smtp",
      });
      assertEquals(
        await l.tlsRefused("TLS service request"),
        "Refusing TLS service request from c.example[192.0.2.9] for service smtp",
      );
      a.tick(61);
      assertEquals(await l.tlsRefused("STARTTLS request"), null, "a new time unit");
      await l.disconnect();
      const off = clientLimits(settings(""), {
        service: "smtp",
        client,
        open: a.open,
        warn: () => {},
      });
      assertEquals(await off.newTls(), null);
    });
    await t.step("exceptions ($mynetworks by default) never reach anvil", async () => {
      const s = settings("smtpd_client_connection_count_limit = 1\n");
      const local = { name: "localhost", addr: "127.0.0.1" };
      let opened = 0;
      const deps = {
        service: "smtp",
        client: local,
        open: () => (opened++, a.open()),
        warn: () => {},
      };
      const x = clientLimits(s, deps), y = clientLimits(s, deps);
      assertEquals([await x.connect(), await y.connect()], [null, null]);
      assertEquals(opened, 0);
    });
    await t.step("anvil unreachable: no limit, one warning, never a refusal", async () => {
      const s = settings(
        "smtpd_client_connection_count_limit = 1\nsmtpd_client_message_rate_limit = 1\n",
      );
      const warnings: string[] = [];
      const l = clientLimits(s, {
        service: "smtp",
        client,
        open: () => ipcConnect("/nonexistent/anvil"),
        warn: (m) => warnings.push(m),
      });
      assertEquals(await l.connect(), null);
      assertEquals(await l.message(), null);
      assertEquals(await l.message(), null);
      await l.disconnect();
      assertEquals(warnings.length, 1);
      assertMatch(warnings[0], /^problem talking to server private\/anvil: /);
    });
  } finally {
    await a.close();
  }
});
