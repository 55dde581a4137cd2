/**
 * Which servers the smtp agent tries, and how often it reuses a
 * connection: smtp_mx_address_limit, smtp_mx_session_limit,
 * smtp_fallback_relay, smtp_connection_reuse_count_limit. A fake resolver
 * names the MX hosts; a connect function records every attempt and sends
 * the ones the test chooses to the scripted fake server.
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import type { RecipientStatus } from "../../lib/deliver/mod.ts";
import { fakeResolver } from "../../lib/dns/testing.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import { type FakeServerScript, FakeSmtpServer, makeContext, queueMessage } from "./_testing.ts";
import { SmtpAgent } from "./deliver.ts";
import type { ConnectFn } from "./session.ts";
import { NexthopFailure, parseNexthop } from "./nexthop.ts";

const resolver = fakeResolver({
  mx: {
    "dest.test": [
      { exchange: "mx1.dest.test", preference: 10 },
      { exchange: "mx2.dest.test", preference: 20 },
      { exchange: "mx3.dest.test", preference: 30 },
    ],
    "nullmx.test": [{ exchange: "", preference: 0 }],
    "loop.test": [
      { exchange: "gone.loop.test", preference: 10 },
      { exchange: "mx1.dest.test", preference: 20 },
    ],
  },
  a: {
    "mx1.dest.test": ["192.0.2.1"],
    "mx2.dest.test": ["192.0.2.2"],
    "mx3.dest.test": ["192.0.2.3"],
    "backup.test": ["192.0.2.9"],
  },
});

/**
 * Runs one delivery per entry of `nexthops`; `reach` maps an address to
 * the fake server (true) or a refused connection (false).
 */
async function deliver(
  script: FakeServerScript,
  mainCf: string,
  nexthops: string[],
  reach: (addr: string) => boolean,
  files: Record<string, string> = {},
): Promise<{ st: RecipientStatus[]; attempts: string[]; srv: FakeSmtpServer }> {
  const srv = new FakeSmtpServer(script);
  const dir = await Deno.makeTempDir();
  for (const [n, t] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${n}`, t);
  const ctx = await makeContext(mainCf.replaceAll("DIR", dir));
  const attempts: string[] = [];
  const connect: ConnectFn = (o) => {
    attempts.push(`${o.hostname}:${o.port}`);
    if (!reach(o.hostname!)) {
      return Promise.reject(new Deno.errors.ConnectionRefused("refused"));
    }
    return Deno.connect({ hostname: "127.0.0.1", port: srv.port });
  };
  const agent = new SmtpAgent({ resolver, connect });
  const st: RecipientStatus[] = [];
  try {
    for (const hop of nexthops) {
      const req = await queueMessage(ctx, hop, ["rcpt@dest.test"]);
      const file = await QueueFile.open(req.path);
      try {
        st.push(...await agent.deliver(req, file, ctx));
      } finally {
        file.close();
      }
    }
  } finally {
    await agent.close();
    await srv.close();
    await Deno.remove(ctx.queue.root, { recursive: true }).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return { st, attempts, srv };
}

Deno.test("smtp agent routing limits", async (t) => {
  await t.step("smtp_mx_address_limit: at most that many MX addresses", async () => {
    const two = await deliver({}, "smtp_mx_address_limit = 2\n", ["dest.test"], () => false);
    assertEquals(two.attempts, ["192.0.2.1:25", "192.0.2.2:25"]);
    assertEquals(two.st[0].status, "deferred");
    const all = await deliver({}, "smtp_mx_address_limit = 0\n", ["dest.test"], () => false);
    assertEquals(all.attempts.length, 3);
  });

  await t.step("smtp_mx_session_limit: sessions past EHLO count, refused ones do not", async () => {
    const script: FakeServerScript = {
      auth: { mechanisms: ["PLAIN"], user: "u", password: "right" },
    };
    const cf = "smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = texthash:DIR/p\n" +
      "smtp_sasl_security_options =\n";
    const files = { p: "dest.test u:wrong\n" };
    const limited = await deliver(script, cf, ["dest.test"], () => true, files);
    assertEquals(limited.attempts.length, 2, "the default limit, 2");
    assertEquals(limited.srv.auths, ["failed", "failed"]);
    assertEquals(limited.st[0].status, "deferred");
    const one = await deliver(
      script,
      cf + "smtp_mx_session_limit = 1\n",
      ["dest.test"],
      (a) => a !== "192.0.2.1",
      files,
    );
    // The refused first MX is no session: the second is, and it is the last one.
    assertEquals(one.attempts, ["192.0.2.1:25", "192.0.2.2:25"]);
  });

  await t.step("smtp_fallback_relay: tried in order when the destination fails", async () => {
    const r = await deliver(
      {},
      "smtp_fallback_relay = [192.0.2.7]:2525, backup.test\n",
      ["dest.test"],
      (a) => a === "192.0.2.9",
    );
    assertEquals(r.attempts, [
      "192.0.2.1:25",
      "192.0.2.2:25",
      "192.0.2.3:25",
      "192.0.2.7:2525",
      "192.0.2.9:25",
    ]);
    assertEquals([r.st[0].status, r.st[0].relay], ["sent", "backup.test[192.0.2.9]:25"]);
    // Not found is a reason to use it too; a null MX is not.
    const nx = await deliver(
      {},
      "smtp_fallback_relay = backup.test\n",
      ["nosuch.test"],
      () => true,
    );
    assertEquals(nx.st[0].status, "sent");
    const nullmx = await deliver(
      {},
      "smtp_fallback_relay = backup.test\n",
      ["nullmx.test"],
      () => true,
    );
    assertEquals([nullmx.st[0].status, nullmx.st[0].dsn], ["bounced", "5.1.10"]);
    assertEquals(nullmx.attempts, []);
    // A fallback relay's connection is not cached for the destination it stood in for.
    const twice = await deliver(
      {},
      "smtp_fallback_relay = backup.test\n",
      ["dest.test", "dest.test"],
      (a) => a === "192.0.2.9",
    );
    assertEquals(twice.srv.connections, 2);
  });

  await t.step(
    "smtp_connection_reuse_count_limit N: a connection serves N+1 deliveries",
    async () => {
      const hops = ["[192.0.2.1]", "[192.0.2.1]", "[192.0.2.1]"];
      const one = await deliver({}, "smtp_connection_reuse_count_limit = 1\n", hops, () => true);
      assertEquals(one.srv.connections, 2);
      const none = await deliver({}, "", hops, () => true);
      assertEquals(none.srv.connections, 1);
    },
  );

  await t.step("an MX list that reaches this host ends there; the best MX is a loop", async () => {
    // mx2 is this host: it and mx3 (worse) are dropped.
    const second = await deliver({}, "inet_interfaces = 192.0.2.2\n", ["dest.test"], () => false);
    assertEquals(second.attempts, ["192.0.2.1:25"]);
    assertEquals(second.st[0].status, "deferred");
    for (const cf of ["inet_interfaces = 192.0.2.1\n", "proxy_interfaces = 192.0.2.1\n"]) {
      const best = await deliver(
        {},
        cf + "smtp_fallback_relay = backup.test\n",
        ["dest.test"],
        () => true,
      );
      assertEquals(best.attempts, [], "neither the MX hosts nor the fallback relay");
      assertEquals([best.st[0].status, best.st[0].dsn, best.st[0].reason], [
        "bounced",
        "5.4.6",
        "mail for dest.test loops back to myself",
      ]);
    }
    // A better MX host did not resolve: it may be the primary, so try again later.
    const unsure = await deliver({}, "inet_interfaces = 192.0.2.1\n", ["loop.test"], () => true);
    assertEquals([unsure.st[0].status, unsure.st[0].dsn, unsure.st[0].reason], [
      "deferred",
      "4.4.4",
      "unable to find primary relay for loop.test",
    ]);
    // A next hop in brackets is not an MX lookup: no loop check, as in Postfix.
    const literal = await deliver({}, "inet_interfaces = 192.0.2.1\n", ["[192.0.2.1]"], () => true);
    assertEquals(literal.st[0].status, "sent");
  });
});

Deno.test("a malformed next hop is a NexthopFailure 4.3.5 that names the transport", () => {
  assertEquals(parseNexthop("[192.0.2.1]:2525"), { host: "192.0.2.1", port: 2525, mx: false });
  for (const bad of ["[192.0.2.1]:99999", "host:port:x"]) {
    try {
      parseNexthop(bad);
      throw new Error(`${bad}: accepted`);
    } catch (e) {
      assertEquals(e instanceof NexthopFailure, true, String(e));
      assertEquals((e as NexthopFailure).dsn, "4.3.5");
      assertEquals((e as NexthopFailure).permanent, false);
      assertEquals((e as Error).message.endsWith(": check the transport's next hop"), true);
    }
  }
});
