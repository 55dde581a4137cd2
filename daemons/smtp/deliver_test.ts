/**
 * Tests of the smtp delivery agent against a scripted fake SMTP server on
 * loopback (_testing.ts) and a fake resolver (lib/dns/testing.ts).
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "../../tests/helpers/assert.ts";
import type { DeliveryRequest, RecipientStatus } from "../../lib/deliver/mod.ts";
import { fakeResolver } from "../../lib/dns/testing.ts";
import { type Resolver, systemResolver } from "../../lib/dns/mod.ts";
import { startDnsServer } from "../../tests/helpers/dns_server.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import {
  deliverRequest,
  type FakeServerScript,
  FakeSmtpServer,
  makeContext,
  openUnreadable,
  queueMessage,
} from "./_testing.ts";
import { type ConnectFn } from "./session.ts";
import { SmtpAgent } from "./deliver.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

const run = deliverRequest;

/** {@link run} as address verification, with a queue file whose content must not be read. */
async function runVerify(
  agent: SmtpAgent,
  ctx: ServiceContext,
  req: DeliveryRequest,
): Promise<RecipientStatus[]> {
  const file = await openUnreadable(req.path);
  try {
    return await agent.deliver({ ...req, verify: true }, file, ctx);
  } finally {
    file.close();
  }
}

/** Runs `fn` with a fresh server, context and agent, and cleans up all three. */
async function withServer(
  script: FakeServerScript,
  fn: (
    srv: FakeSmtpServer,
    ctx: ServiceContext & { lines: string[] },
    agent: SmtpAgent,
  ) => Promise<void>,
  opts: { mainCf?: string; resolver?: Resolver; connect?: ConnectFn } = {},
): Promise<void> {
  const srv = new FakeSmtpServer(script);
  const ctx = await makeContext(opts.mainCf);
  const agent = new SmtpAgent({ resolver: opts.resolver, connect: opts.connect });
  try {
    await fn(srv, ctx, agent);
  } finally {
    await agent.close();
    await srv.close();
    await Deno.remove(ctx.queue.root, { recursive: true }).catch(() => {});
  }
}

Deno.test("smtp delivery agent", async (t) => {
  await t.step(
    "success with PIPELINING: one batch, server text as reason, Postfix log line",
    async () => {
      await withServer({}, async (srv, ctx, agent) => {
        const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, [
          "a@dest.test",
          "b@dest.test",
        ]);
        const st = await run(agent, ctx, req);
        assertEquals(st.map((s) => s.status), ["sent", "sent"]);
        assertEquals(st[0].dsn, "2.0.0");
        assertEquals(st[0].reason, "250 2.0.0 Ok: queued as FAKE1");
        assertEquals(st[0].relay, `127.0.0.1[127.0.0.1]:${srv.port}`);
        assertEquals(srv.messages.length, 1);
        assertEquals(srv.messages[0].rcptTo, ["TO:<a@dest.test>", "TO:<b@dest.test>"]);
        assertEquals(dec.decode(srv.messages[0].content), "Subject: test\r\n\r\nhello\r\n");
        assertStringIncludes(srv.commands.join("\n"), "EHLO test.example");
        // MAIL, RCPT, RCPT, DATA arrived together
        assert(srv.batches.includes(4), `batches: ${srv.batches}`);
        assertMatch(
          srv.commands.find((c) => c.startsWith("MAIL"))!,
          /^MAIL FROM:<sender@test\.example> SIZE=\d+$/,
        );
        assertEquals(ctx.lines.length, 2);
        assertMatch(
          ctx.lines[0],
          new RegExp(
            `postwarden/smtp\\[\\d+\\]: ${req.queueId}: to=<a@dest\\.test>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${srv.port}, ` +
              `delay=[\\d.]+, delays=[\\d.]+/[\\d.]+/[\\d.]+/[\\d.]+, dsn=2\\.0\\.0, status=sent \\(250 2\\.0\\.0 Ok: queued as FAKE1\\)`,
          ),
        );
      });
    },
  );

  await t.step("per-recipient 550 and 450 replies", async () => {
    const script: FakeServerScript = {
      rcpt: (arg) =>
        arg.includes("bad@")
          ? "550 5.1.1 <bad@dest.test>: Recipient address rejected: User unknown"
          : arg.includes("later@")
          ? "450 4.2.0 <later@dest.test>: Recipient address rejected: Greylisted"
          : "250 2.1.5 Ok",
    };
    await withServer(script, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, [
        "ok@dest.test",
        "bad@dest.test",
        "later@dest.test",
      ]);
      const st = await run(agent, ctx, req);
      assertEquals(st.map((s) => s.status), ["sent", "bounced", "deferred"]);
      assertEquals(st.map((s) => s.dsn), ["2.0.0", "5.1.1", "4.2.0"]);
      assertEquals(
        st[1].reason,
        "host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <bad@dest.test>: Recipient address rejected: " +
          "User unknown (in reply to RCPT TO command)",
      );
      assertEquals(
        st[1].diagnostic,
        "smtp; 550 5.1.1 <bad@dest.test>: Recipient address rejected: User unknown",
      );
      assertEquals(srv.messages[0].rcptTo, ["TO:<ok@dest.test>"]);
    });
  });

  await t.step("all recipients rejected: no message, everyone bounced", async () => {
    await withServer({ rcpt: () => "550 5.1.1 User unknown" }, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, ["x@dest.test"]);
      const st = await run(agent, ctx, req);
      assertEquals(st[0].status, "bounced");
      assertEquals(srv.messages.length, 0);
    });
  });

  await t.step("MAIL FROM rejected applies to all recipients", async () => {
    await withServer({ mail: () => "553 5.7.1 Sender rejected" }, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, [
        "x@dest.test",
        "y@dest.test",
      ]);
      const st = await run(agent, ctx, req);
      assertEquals(st.map((s) => s.status), ["bounced", "bounced"]);
      assertStringIncludes(st[0].reason, "(in reply to MAIL FROM command)");
    });
  });

  await t.step("end of data rejected with 554", async () => {
    await withServer({ final: () => "554 5.7.1 Spam" }, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, ["x@dest.test"]);
      const st = await run(agent, ctx, req);
      assertEquals(st[0].status, "bounced");
      assertEquals(
        st[0].reason,
        "host 127.0.0.1[127.0.0.1] said: 554 5.7.1 Spam (in reply to end of DATA command)",
      );
    });
  });

  await t.step("421 greeting: deferred, refused to talk to me", async () => {
    await withServer({ greeting: "421 4.3.2 Service not available" }, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, ["x@dest.test"]);
      const st = await run(agent, ctx, req);
      assertEquals(st[0].status, "deferred");
      assertEquals(st[0].dsn, "4.3.2");
      assertEquals(
        st[0].reason,
        "host 127.0.0.1[127.0.0.1] refused to talk to me: 421 4.3.2 Service not available",
      );
      // Connected: relay= names the server, as Postfix logs it.
      assertEquals(st[0].relay, `127.0.0.1[127.0.0.1]:${srv.port}`);
    });
  });

  await t.step("connection refused: deferred 4.4.1", async () => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = l.addr.port;
    l.close();
    const ctx = await makeContext();
    const agent = new SmtpAgent();
    const req = await queueMessage(ctx, `[127.0.0.1]:${port}`, ["x@dest.test"]);
    const st = await run(agent, ctx, req);
    await agent.close();
    assertEquals(st[0].status, "deferred");
    assertEquals(st[0].dsn, "4.4.1");
    assertEquals(st[0].reason, `connect to 127.0.0.1[127.0.0.1]:${port}: Connection refused`);
    assertStringIncludes(ctx.lines[0], "relay=none");
    assertStringIncludes(ctx.lines[0], "status=deferred (connect to");
  });

  await t.step("a sandbox refusal is a deferral with a clear reason, not a crash", async () => {
    const connect: ConnectFn = () =>
      Promise.reject(new Deno.errors.NotCapable("Requires net access"));
    await withServer({}, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, ["x@dest.test"]);
      const st = await run(agent, ctx, req);
      assertEquals(st[0].status, "deferred");
      assertEquals(
        st[0].reason,
        `connect to 127.0.0.1[127.0.0.1]:${srv.port}: not permitted by this daemon's sandbox`,
      );
    }, { connect });
  });

  await t.step("dot-stuffing of lines starting with a dot", async () => {
    const body = ".leading\r\nmid.dle\r\n..two\r\n.\r\nend\r\n";
    await withServer({}, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, ["x@dest.test"], body);
      const st = await run(agent, ctx, req);
      assertEquals(st[0].status, "sent");
      assertEquals(srv.messages[0].raw, "..leading\r\nmid.dle\r\n...two\r\n..\r\nend\r\n");
      assertEquals(dec.decode(srv.messages[0].content), body);
    });
  });

  await t.step("8-bit body: BODY=8BITMIME when offered, bytes intact", async () => {
    const body = new Uint8Array([...enc.encode("Subject: x\r\n\r\ncaf"), 0xc3, 0xa9, 13, 10]);
    await withServer({}, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, ["x@dest.test"], body);
      assertEquals((await run(agent, ctx, req))[0].status, "sent");
      assertMatch(srv.commands.find((c) => c.startsWith("MAIL"))!, / BODY=8BITMIME$/);
      assertEquals(srv.messages[0].content, body);
    });
    // Not offered: sent anyway, without BODY=.
    await withServer({ ehlo: ["PIPELINING"] }, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, ["x@dest.test"], body);
      assertEquals((await run(agent, ctx, req))[0].status, "sent");
      assertEquals(
        srv.commands.find((c) => c.startsWith("MAIL")),
        "MAIL FROM:<sender@test.example>",
      );
      assertEquals(srv.messages[0].content, body);
    });
  });

  await t.step("no PIPELINING, EHLO rejected: HELO and one command at a time", async () => {
    await withServer({ ehlo: null }, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, [
        "x@dest.test",
        "y@dest.test",
      ]);
      const st = await run(agent, ctx, req);
      assertEquals(st.map((s) => s.status), ["sent", "sent"]);
      assert(srv.commands.includes("HELO test.example"));
      assert(srv.batches.every((b) => b === 1), `batches: ${srv.batches}`);
    });
  });

  await t.step("timeout waiting for the end-of-data reply: deferred", async () => {
    await withServer({ final: null }, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, ["x@dest.test"]);
      const t0 = Date.now();
      const st = await run(agent, ctx, req);
      assert(Date.now() - t0 < 5000);
      assertEquals(st[0].status, "deferred");
      assertEquals(st[0].dsn, "4.4.2");
      assertEquals(
        st[0].reason,
        "conversation with 127.0.0.1[127.0.0.1] timed out while sending end of data -- " +
          "message may be sent more than once",
      );
    }, { mainCf: "smtp_data_done_timeout = 1s\n" });
  });

  await t.step("lost connection mid-session: deferred", async () => {
    await withServer({ rcpt: () => "421 4.4.2 Closing" }, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, ["x@dest.test"]);
      const st = await run(agent, ctx, req);
      assertEquals(st[0].status, "deferred");
      assertStringIncludes(st[0].reason, "421 4.4.2 Closing (in reply to RCPT TO command)");
    });
  });

  await t.step("connection reuse: two requests, one TCP connection, QUIT at close", async () => {
    await withServer({}, async (srv, ctx, agent) => {
      const nh = `[127.0.0.1]:${srv.port}`;
      for (const r of ["x@dest.test", "y@dest.test"]) {
        const st = await run(agent, ctx, await queueMessage(ctx, nh, [r]));
        assertEquals(st[0].status, "sent");
      }
      assertEquals(srv.connections, 1);
      assertEquals(srv.messages.length, 2);
      assertEquals(srv.commands.filter((c) => c.startsWith("EHLO")).length, 1);
      await agent.close();
      await srv.until(() => srv.commands.includes("QUIT"));
    });
  });

  await t.step("every recipient refused (pipelined): RSET before the next MAIL", async () => {
    // Postfix's smtpd answers a second MAIL in an open transaction "503 5.5.1 Error: nested
    // MAIL command" (seen live): without the RSET the next message would bounce.
    const script = {
      rcpt: (a: string) => a.includes("bad@") ? "550 5.1.1 User unknown" : "250 2.1.5 Ok",
    };
    await withServer(script, async (srv, ctx, agent) => {
      const nh = `[127.0.0.1]:${srv.port}`;
      for (const r of ["bad@dest.test", "good@dest.test"]) {
        await run(agent, ctx, await queueMessage(ctx, nh, [r]));
      }
      assertEquals(srv.connections, 1);
      const mails = srv.commands.flatMap((c, i) => c.startsWith("MAIL") ? [i] : []);
      assertEquals(mails.length, 2);
      assert(srv.commands.slice(mails[0], mails[1]).includes("RSET"), srv.commands.join("|"));
    });
  });

  await t.step("a cached connection the server dropped is retried on a fresh one", async () => {
    await withServer({ closeAfterMessage: true }, async (srv, ctx, agent) => {
      const nh = `[127.0.0.1]:${srv.port}`;
      for (const r of ["x@dest.test", "y@dest.test"]) {
        const st = await run(agent, ctx, await queueMessage(ctx, nh, [r]));
        assertEquals(st[0].status, "sent", st[0].reason);
      }
      assertEquals(srv.connections, 2);
      assertEquals(srv.messages.length, 2);
    });
  });

  await t.step(
    "idle cached connections are closed after smtp_connection_cache_time_limit",
    async () => {
      await withServer({}, async (srv, ctx, agent) => {
        await run(agent, ctx, await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, ["x@dest.test"]));
        assertEquals(agent.cache.size, 1);
        await srv.until(() => srv.commands.includes("QUIT"), 3000);
        assertEquals(agent.cache.size, 0);
      }, { mainCf: "smtp_connection_cache_time_limit = 1s\n" });
    },
  );

  await t.step(
    "MX lookup: lower preference first, next MX after a refused connection",
    async () => {
      await withServer({}, async (srv, ctx, agent) => {
        const resolver = fakeResolver({
          mx: {
            "dest.test": [
              { preference: 20, exchange: "mx2.dest.test." },
              { preference: 10, exchange: "mx1.dest.test." },
            ],
          },
          // 127.0.0.2 has nothing listening on the port: refused.
          a: { "mx1.dest.test": ["127.0.0.2"], "mx2.dest.test": ["127.0.0.1"] },
        });
        const agent2 = new SmtpAgent({ resolver });
        try {
          const req = await queueMessage(ctx, `dest.test:${srv.port}`, ["x@dest.test"]);
          const st = await run(agent2, ctx, req);
          assertEquals(st[0].status, "sent");
          assertEquals(st[0].relay, `mx2.dest.test[127.0.0.1]:${srv.port}`);
          assertEquals(resolver.queries.slice(0, 3), [
            "MX dest.test",
            "A mx1.dest.test",
            "A mx2.dest.test",
          ]);
        } finally {
          await agent2.close();
        }
        void agent;
      });
    },
  );

  await t.step("domain without MX: its A record is used", async () => {
    const resolver = fakeResolver({ a: { "plain.test": ["127.0.0.1"] } });
    await withServer({}, async (srv, ctx, agent) => {
      const st = await run(
        agent,
        ctx,
        await queueMessage(ctx, `plain.test:${srv.port}`, ["x@plain.test"]),
      );
      assertEquals(st[0].status, "sent");
      assertEquals(st[0].relay, `plain.test[127.0.0.1]:${srv.port}`);
    }, { resolver });
  });

  await t.step(
    "DNS failures: NXDOMAIN bounces 5.1.2, SERVFAIL defers 4.4.3, null MX bounces 5.1.10",
    async () => {
      const resolver = fakeResolver({
        mx: { "broken.test": "servfail", "nomail.test": [{ preference: 0, exchange: "." }] },
      });
      const ctx = await makeContext();
      const agent = new SmtpAgent({ resolver });
      try {
        let st = await run(agent, ctx, await queueMessage(ctx, "gone.test", ["x@gone.test"]));
        assertEquals([st[0].status, st[0].dsn], ["bounced", "5.1.2"]);
        assertEquals(
          st[0].reason,
          "Host or domain name not found. Name service error for name=gone.test type=MX: Host not found",
        );
        st = await run(agent, ctx, await queueMessage(ctx, "broken.test", ["x@broken.test"]));
        assertEquals([st[0].status, st[0].dsn], ["deferred", "4.4.3"]);
        assertEquals(
          st[0].reason,
          "Host or domain name not found. Name service error for name=broken.test type=MX: " +
            "Host not found, try again",
        );
        st = await run(agent, ctx, await queueMessage(ctx, "nomail.test", ["x@nomail.test"]));
        assertEquals([st[0].status, st[0].dsn], ["bounced", "5.1.10"]);
        assertEquals(st[0].reason, "Domain nomail.test does not accept mail (nullMX)");
      } finally {
        await agent.close();
      }
    },
  );

  await t.step(
    "DNS failures through a real name server: SERVFAIL MX defers 4.4.3 without an A fallback, " +
      "NXDOMAIN bounces 5.1.2, no MX uses the A record, and an unconfirmable NotFound defers",
    async () => {
      const zone = {
        names: {
          "nomx.test": { A: ["127.0.0.1"] },
          "withmx.test": { MX: [[10, "nomx.test"]] as [number, string][] },
        },
        servfail: ["broken.test"],
      };
      const dns = startDnsServer("127.0.0.1", 0, zone);
      const udpOnly = startDnsServer("127.0.0.1", 0, zone, { tcp: false });
      const srv = new FakeSmtpServer({});
      const ctx = await makeContext();
      const warnings: string[] = [];
      const resolverOf = (port: number) =>
        systemResolver({
          nameServer: { ipAddr: "127.0.0.1", port },
          warn: (m) => warnings.push(m),
        });
      const agent = new SmtpAgent({ resolver: resolverOf(dns.port) });
      const port = srv.listener.addr.port;
      try {
        let st = await run(agent, ctx, await queueMessage(ctx, "broken.test", ["x@broken.test"]));
        assertEquals([st[0].status, st[0].dsn], ["deferred", "4.4.3"]);
        assertEquals(
          st[0].reason,
          "Host or domain name not found. Name service error for name=broken.test type=MX: " +
            "Host not found, try again",
        );
        assert(
          !dns.queries.some((q) => /^(TCP )?A(AAA)? broken\.test$/.test(q)),
          dns.queries.join(),
        );
        st = await run(agent, ctx, await queueMessage(ctx, "gone.test", ["x@gone.test"]));
        assertEquals([st[0].status, st[0].dsn], ["bounced", "5.1.2"]);
        assertEquals(
          st[0].reason,
          "Host or domain name not found. Name service error for name=gone.test type=MX: Host not found",
        );
        st = await run(agent, ctx, await queueMessage(ctx, `nomx.test:${port}`, ["x@nomx.test"]));
        assertEquals([st[0].status, st[0].relay], ["sent", `nomx.test[127.0.0.1]:${port}`]);
        st = await run(
          agent,
          ctx,
          await queueMessage(ctx, `withmx.test:${port}`, ["y@withmx.test"]),
        );
        assertEquals([st[0].status, st[0].relay], ["sent", `nomx.test[127.0.0.1]:${port}`]);
        assertEquals(warnings, []);
        // A resolver that does not answer over TCP: the NotFound cannot be confirmed.
        const blind = new SmtpAgent({ resolver: resolverOf(udpOnly.port) });
        try {
          st = await run(blind, ctx, await queueMessage(ctx, "gone.test", ["x@gone.test"]));
          assertEquals([st[0].status, st[0].dsn], ["deferred", "4.4.3"]);
          assertEquals(warnings.length, 1);
        } finally {
          await blind.close();
        }
      } finally {
        await agent.close();
        await srv.close();
        dns.close();
        udpOnly.close();
        await Deno.remove(ctx.queue.root, { recursive: true }).catch(() => {});
      }
    },
  );

  await t.step(
    "a domain that is no host name bounces 5.1.2 without a lookup (it deferred forever)",
    async () => {
      // Deno's resolver refuses such names with an error that reads as temporary.
      const refusing = fakeResolver({});
      const proto = (n: string) => {
        refusing.queries.push(n);
        return Promise.reject(new Error(`proto error: label bytes exceed 63: ${n}`));
      };
      const resolver: Resolver & { queries: string[] } = {
        queries: refusing.queries,
        resolveMx: proto,
        resolveA: proto,
        resolveAaaa: proto,
      };
      const ctx = await makeContext();
      const agent = new SmtpAgent({ resolver });
      try {
        for (const domain of [`${"a".repeat(64)}.test`, "x_y.test", "-a.test", "a-.test"]) {
          const st = await run(agent, ctx, await queueMessage(ctx, domain, [`x@${domain}`]));
          assertEquals([st[0].status, st[0].dsn], ["bounced", "5.1.2"], domain);
          assertEquals(
            st[0].reason,
            `Host or domain name not found. Name service error for name=${domain} type=MX: ` +
              "invalid host or domain name",
          );
        }
        const st = await run(agent, ctx, await queueMessage(ctx, "[bad_host]:25", ["x@y.test"]));
        assertEquals([st[0].status, st[0].dsn], ["bounced", "5.1.2"]);
        assertEquals(resolver.queries, []);
      } finally {
        await agent.close();
        await Deno.remove(ctx.queue.root, { recursive: true }).catch(() => {});
      }
    },
  );

  await t.step("an MX host that is no host name is skipped like one without address", async () => {
    const resolver = fakeResolver({
      mx: {
        "mx.test": [{ preference: 0, exchange: `${"b".repeat(64)}.test` }, {
          preference: 10,
          exchange: "good.test",
        }],
        "only.test": [{ preference: 0, exchange: "bad_mx.test" }],
      },
      a: { "good.test": ["127.0.0.1"] },
    });
    await withServer({}, async (srv, ctx, agent) => {
      let st = await run(agent, ctx, await queueMessage(ctx, `mx.test:${srv.port}`, ["x@mx.test"]));
      assertEquals(st[0].status, "sent");
      st = await run(agent, ctx, await queueMessage(ctx, "only.test", ["x@only.test"]));
      assertEquals([st[0].status, st[0].dsn], ["bounced", "5.4.4"]);
      assert(!resolver.queries.some((q) => q.includes("bad_mx") || q.includes("bbbb")));
    }, { resolver });
  });

  await t.step("large message is streamed and arrives intact", async () => {
    const line = "x".repeat(998) + "\r\n";
    const body = "Subject: big\r\n\r\n" + line.repeat(5000) + ".dot\r\n";
    await withServer({}, async (srv, ctx, agent) => {
      const st = await run(
        agent,
        ctx,
        await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, ["x@dest.test"], body),
      );
      assertEquals(st[0].status, "sent");
      assertEquals(srv.messages[0].content.length, body.length);
      assertMatch(
        srv.commands.find((c) => c.startsWith("MAIL"))!,
        new RegExp(`SIZE=${body.length}$`),
      );
    });
  });

  await t.step("concurrent requests to one next hop use separate connections", async () => {
    await withServer({}, async (srv, ctx, agent) => {
      const nh = `[127.0.0.1]:${srv.port}`;
      const reqs = await Promise.all(
        [1, 2, 3].map((i) => queueMessage(ctx, nh, [`r${i}@dest.test`])),
      );
      const sts = await Promise.all(reqs.map((r) => run(agent, ctx, r)));
      assert(sts.every((s) => s[0].status === "sent"));
      assertEquals(srv.messages.length, 3);
      // Later requests reuse the parked connections.
      const more = await Promise.all(reqs.map((r) => run(agent, ctx, r)));
      assert(more.every((s) => s[0].status === "sent"));
      assertEquals(srv.connections, 3);
    });
  });
});

Deno.test("smtp delivery agent: envelope data never injects into the session", async (t) => {
  const HELLO = "Subject: t\r\n\r\nhi\r\n";

  await t.step("a quoted local part that looks like parameters is quoted again", async () => {
    await withServer({}, async (srv, ctx, agent) => {
      // smtpd accepts MAIL FROM:<"v@t.example> ORCPT=rfc822;x"@o.example> and stores it unquoted.
      const sender = "v@t.example> ORCPT=rfc822;x@o.example";
      const req = await queueMessage(
        ctx,
        `[127.0.0.1]:${srv.port}`,
        [
          "a b@dest.test",
          'q"uo\\te@dest.test',
          "plain@dest.test",
        ],
        HELLO,
        { sender },
      );
      const st = await run(agent, ctx, req);
      assertEquals(st.map((s) => s.status), ["sent", "sent", "sent"]);
      const mail = srv.commands.filter((c) => c.startsWith("MAIL"));
      assertEquals(mail, [
        `MAIL FROM:<"v@t.example> ORCPT=rfc822;x"@o.example> SIZE=${HELLO.length}`,
      ]);
      assertEquals(srv.commands.filter((c) => c.startsWith("RCPT")), [
        'RCPT TO:<"a b"@dest.test>',
        'RCPT TO:<"q\\"uo\\\\te"@dest.test>',
        "RCPT TO:<plain@dest.test>",
      ]);
      assertStringIncludes(ctx.lines[0], `${req.queueId}: to=<"a b"@dest.test>, relay=`);
      assertStringIncludes(ctx.lines[1], `to=<"q\\"uo\\\\te"@dest.test>, relay=`);
    });
  });

  await t.step("a recipient with CR/LF or a bad domain bounces and is never written", async () => {
    await withServer({}, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, [
        "ok@dest.test",
        "evil\r\nRSET@dest.test",
        "x@dest.test> NOTIFY=NEVER",
        "nul\x00@dest.test",
      ], HELLO);
      const st = await run(agent, ctx, req);
      assertEquals(st.map((s) => [s.status, s.dsn]), [
        ["sent", "2.0.0"],
        ["bounced", "5.1.3"],
        ["bounced", "5.1.3"],
        ["bounced", "5.1.3"],
      ]);
      assertStringIncludes(st[1].reason, "control character");
      assertStringIncludes(st[2].reason, "bad domain syntax");
      assertEquals(srv.commands.filter((c) => c.startsWith("RCPT")), ["RCPT TO:<ok@dest.test>"]);
      assert(!srv.commands.some((c) => c.startsWith("RSET")), srv.commands.join("|"));
      assertEquals(ctx.lines.length, 4);
      assertStringIncludes(ctx.lines[1], 'to=<"evil??RSET"@dest.test>, relay=none');
      assertStringIncludes(ctx.lines[1], "dsn=5.1.3, status=bounced (bad recipient address");
      assert(ctx.lines.every((l) => l.indexOf("\n") === l.length - 1 && !l.includes("\r")));
    });
  });

  await t.step("a sender that cannot be sent bounces everything without connecting", async () => {
    await withServer({}, async (srv, ctx, agent) => {
      const req = await queueMessage(
        ctx,
        `[127.0.0.1]:${srv.port}`,
        [
          "a@dest.test",
          "b@dest.test",
        ],
        HELLO,
        { sender: "s@x.test\r\nRCPT TO:<victim@elsewhere.test>" },
      );
      const st = await run(agent, ctx, req);
      assertEquals(st.map((s) => [s.status, s.dsn]), [["bounced", "5.1.7"], ["bounced", "5.1.7"]]);
      assertStringIncludes(st[0].reason, "bad sender address syntax");
      assertEquals(srv.connections, 0);
    });
  });

  await t.step(
    "DSN parameters: ENVID and ORCPT xtext-encoded, NOTIFY and RET checked",
    async () => {
      await withServer({ ehlo: ["PIPELINING", "DSN"] }, async (srv, ctx, agent) => {
        const req = await queueMessage(
          ctx,
          `[127.0.0.1]:${srv.port}`,
          [
            // The queue file holds ORCPT and ENVID xtext-decoded (Postfix's dsn_orcpt).
            { address: "a@dest.test", orcpt: "rfc822;a+b=c d@x.test\r\nDATA", notify: ["SUCCESS"] },
            {
              address: "b c@dest.test",
              orcpt: "b c@dest.test",
              notify: ["NEVER\r\nRSET", "DELAY"],
            },
            { address: "d@dest.test", orcpt: "utf-8;j\u00f6rg+x\\y=z@b\u00fccher.example" },
            { address: "e@dest.test", orcpt: "\u00e9@dest.test" },
          ],
          HELLO,
          { envid: "id+1 x=\r\nQUIT", ret: "FULL\r\nRSET" },
        );
        const st = await run(agent, ctx, req);
        assertEquals(st.map((s) => s.status), ["sent", "sent", "sent", "sent"]);
        assertEquals(srv.commands.filter((c) => /^(MAIL|RCPT)/.test(c)), [
          "MAIL FROM:<sender@test.example> ENVID=id+2B1+20x+3D+0D+0AQUIT",
          "RCPT TO:<a@dest.test> NOTIFY=SUCCESS ORCPT=rfc822;a+2Bb+3Dc+20d@x.test+0D+0ADATA",
          'RCPT TO:<"b c"@dest.test> NOTIFY=DELAY ORCPT=rfc822;"b+20c"@dest.test',
          "RCPT TO:<d@dest.test> ORCPT=utf-8;j\\x{F6}rg\\x{2B}x\\x{5C}y\\x{3D}z@b\\x{FC}cher.example",
          "RCPT TO:<e@dest.test> ORCPT=utf-8;\\x{E9}@dest.test",
        ]);
        // Every command is one line of printable ASCII: no raw value got through.
        for (const c of srv.commands) assertMatch(c, /^[\x21-\x7e]+( [\x21-\x7e]+)*$/);
      });
    },
  );

  await t.step("RET goes out when valid", async () => {
    await withServer({ ehlo: ["DSN"] }, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, ["a@dest.test"], HELLO, {
        ret: "hdrs",
      });
      await run(agent, ctx, req);
      assertEquals(
        srv.commands.find((c) => c.startsWith("MAIL")),
        "MAIL FROM:<sender@test.example> RET=HDRS",
      );
    });
  });
});

Deno.test("smtp address verification", async (t) => {
  const script: FakeServerScript = {
    rcpt: (arg) =>
      arg.includes("bad@")
        ? "550 5.1.1 <bad@dest.test>: Recipient address rejected"
        : "250 2.1.5 Ok",
  };

  await t.step(
    "RCPT replies are the answer: deliverable and undeliverable, no DATA, RSET before the cache",
    async () => {
      await withServer(script, async (srv, ctx, agent) => {
        const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, [
          "a@dest.test",
          "bad@dest.test",
        ]);
        const st = await runVerify(agent, ctx, req);
        const relay = `127.0.0.1[127.0.0.1]:${srv.port}`;
        assertEquals(st[0], {
          index: 0,
          status: "sent",
          dsn: "2.1.5",
          reason: "250 2.1.5 Ok",
          relay,
          diagnostic: "smtp; 250 2.1.5 Ok",
          remoteMta: "127.0.0.1",
        });
        assertEquals([st[1].status, st[1].dsn], ["bounced", "5.1.1"]);
        const refused = "host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <bad@dest.test>: " +
          "Recipient address rejected (in reply to RCPT TO command)";
        assertEquals(st[1].reason, refused);
        assertEquals(ctx.lines.length, 2);
        assertStringIncludes(
          ctx.lines[0],
          `to=<a@dest.test>, relay=${relay}, delay=`,
        );
        assertStringIncludes(ctx.lines[0], ", dsn=2.1.5, status=deliverable (250 2.1.5 Ok)");
        assertStringIncludes(ctx.lines[1], `, dsn=5.1.1, status=undeliverable (${refused})`);
        // PIPELINING: MAIL and the RCPTs in one batch, then RSET, and nothing else.
        assertEquals(srv.commands.slice(1), [
          // SIZE= from the queue file's size: the content's, though none of it was read.
          `MAIL FROM:<sender@test.example> SIZE=${"Subject: test\r\n\r\nhello\r\n".length}`,
          "RCPT TO:<a@dest.test>",
          "RCPT TO:<bad@dest.test>",
          "RSET",
        ]);
        assertEquals(srv.messages.length, 0);
        assertEquals(agent.cache.size, 1);

        // The connection carries the next message.
        const next = await run(
          agent,
          ctx,
          await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, ["a@dest.test"]),
        );
        assertEquals(next[0].status, "sent");
        assertEquals(srv.connections, 1);
        assertEquals(srv.messages.length, 1);
      });
    },
  );

  await t.step("a connection that is not cached again gets QUIT, not RSET", async () => {
    // smtp_connection_reuse_count_limit = 1: the second request on a connection is its last.
    await withServer({ ...script, ehlo: ["ENHANCEDSTATUSCODES"] }, async (srv, ctx, agent) => {
      const dest = `[127.0.0.1]:${srv.port}`;
      assertEquals(
        (await run(agent, ctx, await queueMessage(ctx, dest, ["a@dest.test"])))[0]
          .status,
        "sent",
      );
      const before = srv.commands.length;
      const req = await queueMessage(ctx, dest, ["bad@dest.test", "a@dest.test"]);
      const st = await runVerify(agent, ctx, req);
      assertEquals(st.map((s) => s.status), ["bounced", "sent"]);
      await srv.until(() => srv.commands.includes("QUIT"));
      // No PIPELINING: one command at a time; no SIZE offered, none sent.
      assertEquals(srv.commands.slice(before), [
        "MAIL FROM:<sender@test.example>",
        "RCPT TO:<bad@dest.test>",
        "RCPT TO:<a@dest.test>",
        "QUIT",
      ]);
      assertEquals(srv.connections, 1);
      assertEquals(srv.messages.length, 1, "only the delivered message");
      assertEquals(agent.cache.size, 0);
    }, { mainCf: "smtp_connection_reuse_count_limit = 1\n" });
  });

  await t.step("MAIL FROM refused: every recipient undeliverable, no RSET needed", async () => {
    await withServer({ mail: () => "553 5.7.1 Sender rejected" }, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `[127.0.0.1]:${srv.port}`, ["a@dest.test"]);
      const st = await runVerify(agent, ctx, req);
      assertEquals([st[0].status, st[0].dsn], ["bounced", "5.7.1"]);
      assertStringIncludes(ctx.lines[0], "status=undeliverable (host 127.0.0.1[127.0.0.1] said:");
      assert(!srv.commands.some((c) => c === "DATA" || c === "RSET"), srv.commands.join("|"));
    });
  });

  await t.step("server down: undeliverable with the connect failure", async () => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = l.addr.port;
    l.close();
    const ctx = await makeContext();
    const agent = new SmtpAgent();
    try {
      const req = await queueMessage(ctx, `[127.0.0.1]:${port}`, ["x@dead.test"]);
      const st = await runVerify(agent, ctx, req);
      assertEquals([st[0].status, st[0].dsn, st[0].relay], ["deferred", "4.4.1", "none"]);
      assertStringIncludes(
        ctx.lines[0],
        `to=<x@dead.test>, relay=none, delay=`,
      );
      assertStringIncludes(
        ctx.lines[0],
        `, dsn=4.4.1, status=undeliverable (connect to 127.0.0.1[127.0.0.1]:${port}: ` +
          "Connection refused)",
      );
    } finally {
      await agent.close();
      await Deno.remove(ctx.queue.root, { recursive: true }).catch(() => {});
    }
  });
});
