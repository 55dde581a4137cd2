/**
 * Tests of the lmtp delivery agent against a scripted fake LMTP server
 * (_testing.ts) on a UNIX-domain socket under the queue directory, as
 * `unix:private/dovecot-lmtp` names it, and on TCP. The real Dovecot is
 * in tests/interop/lmtp_dovecot_test.ts.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "../../tests/helpers/assert.ts";
import type { DeliveryRequest, RecipientStatus } from "../../lib/deliver/mod.ts";
import { fakeResolver } from "../../lib/dns/testing.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import { makeContext, openUnreadable, queueMessage } from "../smtp/_testing.ts";
import { type FakeLmtpScript, FakeLmtpServer } from "./_testing.ts";
import { LmtpAgent, type LmtpAgentOptions } from "./lmtp.ts";

type Ctx = ServiceContext & { lines: string[] };

async function run(agent: LmtpAgent, ctx: Ctx, req: DeliveryRequest): Promise<RecipientStatus[]> {
  const file = await QueueFile.open(req.path);
  try {
    return await agent.deliver({ ...req, transport: "lmtp" }, file, ctx);
  } finally {
    file.close();
  }
}

/** {@link run} as address verification, with a queue file whose content must not be read. */
async function runVerify(
  agent: LmtpAgent,
  ctx: Ctx,
  req: DeliveryRequest,
): Promise<RecipientStatus[]> {
  const file = await openUnreadable(req.path);
  try {
    return await agent.deliver({ ...req, transport: "lmtp", verify: true }, file, ctx);
  } finally {
    file.close();
  }
}

/** A fake server on $queue_directory/private/dovecot-lmtp (or TCP), a context, an agent. */
async function withServer(
  script: FakeLmtpScript,
  fn: (srv: FakeLmtpServer, ctx: Ctx, agent: LmtpAgent) => Promise<void>,
  opts: { mainCf?: string; tcp?: boolean; agent?: LmtpAgentOptions } = {},
): Promise<void> {
  const ctx = await makeContext(opts.mainCf);
  const srv = new FakeLmtpServer(
    script,
    opts.tcp ? undefined : `${ctx.queue.root}/private/dovecot-lmtp`,
  );
  const agent = new LmtpAgent(opts.agent);
  try {
    await fn(srv, ctx, agent);
  } finally {
    await agent.close();
    await srv.close();
    await Deno.remove(ctx.queue.root, { recursive: true }).catch(() => {});
  }
}

const UNIX = "unix:private/dovecot-lmtp";
const RELAY = "test.example[private/dovecot-lmtp]";

Deno.test("lmtp delivery agent", async (t) => {
  await t.step("unix: LHLO, one reply per recipient, Postfix's log line", async () => {
    await withServer({
      final: (r) => `250 2.0.0 ${r.replace(/^TO:/, "")} AbCdEf Saved`,
    }, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, UNIX, ["a@example.com", "b@example.com"]);
      const st = await run(agent, ctx, req);
      assertEquals(st.map((s) => s.status), ["sent", "sent"]);
      assertEquals(st[0].relay, RELAY);
      assertEquals(st[0].reason, "250 2.0.0 <a@example.com> AbCdEf Saved");
      assertEquals(st[1].reason, "250 2.0.0 <b@example.com> AbCdEf Saved");
      assertEquals(st[0].diagnostic, "smtp; 250 2.0.0 <a@example.com> AbCdEf Saved");
      assertEquals(srv.commands[0], "LHLO test.example");
      assertEquals(srv.messages.length, 1);
      assertEquals(srv.messages[0].rcptTo, ["TO:<a@example.com>", "TO:<b@example.com>"]);
      assertStringIncludes(srv.messages[0].content, "hello\r\n");
      assertMatch(
        ctx.lines[0],
        new RegExp(
          `: ${req.queueId}: to=<a@example\\.com>, relay=test\\.example\\[private/dovecot-lmtp\\], ` +
            `delay=[\\d.]+, delays=[\\d.]+/[\\d.]+/[\\d.]+/[\\d.]+, dsn=2\\.0\\.0, status=sent ` +
            `\\(250 2\\.0\\.0 <a@example\\.com> AbCdEf Saved\\)\n$`,
        ),
      );
    });
  });

  await t.step(
    "per-recipient results: unknown bounced, over quota deferred, the rest delivered",
    async () => {
      await withServer({
        rcpt: (arg) =>
          arg.includes("nobody@")
            ? "550 5.1.1 <nobody@example.com> User doesn't exist: nobody@example.com"
            : "250 2.1.5 OK",
        final: (r) =>
          r.includes("full@")
            ? "452 4.2.2 <full@example.com> Mailbox is full"
            : "250 2.0.0 <x> Saved",
      }, async (srv, ctx, agent) => {
        const req = await queueMessage(ctx, UNIX, [
          "ok1@example.com",
          "nobody@example.com",
          "full@example.com",
          "ok2@example.com",
        ]);
        const st = await run(agent, ctx, req);
        assertEquals(st.map((s) => s.status), ["sent", "bounced", "deferred", "sent"]);
        assertEquals(st[1].dsn, "5.1.1");
        assertEquals(
          st[1].reason,
          `host ${RELAY} said: 550 5.1.1 <nobody@example.com> User doesn't exist: ` +
            "nobody@example.com (in reply to RCPT TO command)",
        );
        assertEquals(st[2].dsn, "4.2.2");
        assertEquals(
          st[2].reason,
          `host ${RELAY} said: 452 4.2.2 <full@example.com> Mailbox is full ` +
            "(in reply to end of DATA command)",
        );
        assertEquals(st[2].diagnostic, "smtp; 452 4.2.2 <full@example.com> Mailbox is full");
        assertEquals(srv.messages[0].rcptTo.length, 3, "the refused one is not in the transaction");
      });
    },
  );

  await t.step("inet: relay=host[addr]:port, the name's A record, no MX lookup", async () => {
    const resolver = fakeResolver({ a: { "lmtp.example": ["127.0.0.1"] } });
    await withServer({}, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `inet:lmtp.example:${srv.port}`, ["a@example.com"]);
      const st = await run(agent, ctx, req);
      assertEquals(st[0].status, "sent", st[0].reason);
      assertEquals(st[0].relay, `lmtp.example[127.0.0.1]:${srv.port}`);
      assert(!resolver.queries.some((q) => q.startsWith("MX")), resolver.queries.join());
    }, { tcp: true, agent: { resolver } });
  });

  await t.step("inet: [address]:port, and lmtp_tcp_port when none is given", async () => {
    await withServer({}, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, `inet:[127.0.0.1]:${srv.port}`, ["a@example.com"]);
      assertEquals((await run(agent, ctx, req))[0].relay, `127.0.0.1[127.0.0.1]:${srv.port}`);
    }, { tcp: true });
    const srv = new FakeLmtpServer({});
    const ctx = await makeContext(`lmtp_tcp_port = ${srv.port}\n`);
    const agent = new LmtpAgent();
    try {
      const st = await run(agent, ctx, await queueMessage(ctx, "inet:127.0.0.1", ["a@x.test"]));
      assertEquals(st[0].status, "sent", st[0].reason);
      assertEquals(st[0].relay, `127.0.0.1[127.0.0.1]:${srv.port}`);
    } finally {
      await agent.close();
      await srv.close();
      await Deno.remove(ctx.queue.root, { recursive: true });
    }
  });

  await t.step("a destination list: the next one when the first cannot be reached", async () => {
    await withServer({}, async (srv, ctx, agent) => {
      const nh = `unix:private/missing, inet:[127.0.0.1]:${srv.port}`;
      const st = await run(agent, ctx, await queueMessage(ctx, nh, ["a@x.test"]));
      assertEquals(st[0].status, "sent", st[0].reason);
      assertEquals(st[0].relay, `127.0.0.1[127.0.0.1]:${srv.port}`);
      // Both down: the last one's reason.
      const down = "unix:private/missing, inet:[127.0.0.1]:1";
      const again = await run(agent, ctx, await queueMessage(ctx, down, ["b@x.test"]));
      assertEquals([again[0].status, again[0].dsn], ["deferred", "4.4.1"]);
      assertEquals(again[0].reason, "connect to 127.0.0.1[127.0.0.1]:1: Connection refused");
    }, { tcp: true });
  });

  await t.step(
    "421 in reply to end of data: that one deferred, later replies still read",
    async () => {
      const script = {
        final: (r: string) => r.includes("cut@") ? "421 4.3.2 Shutting down" : "250 2.0.0 Saved",
      };
      await withServer(script, async (_srv, ctx, agent) => {
        const req = await queueMessage(ctx, UNIX, ["a@x.test", "cut@x.test", "c@x.test"]);
        const st = await run(agent, ctx, req);
        assertEquals(st.map((s) => s.status), ["sent", "deferred", "sent"]);
        assertEquals(
          st[1].reason,
          `host ${RELAY} said: 421 4.3.2 Shutting down (in reply to end of DATA command)`,
        );
        assertEquals(agent.cache.size, 0, "a closing server's connection is not kept");
      });
      await withServer({ ...script, closeAfterReplies: 2 }, async (_srv, ctx, agent) => {
        const req = await queueMessage(ctx, UNIX, ["a@x.test", "cut@x.test", "c@x.test"]);
        const st = await run(agent, ctx, req);
        assertEquals(st.map((s) => s.status), ["sent", "deferred", "deferred"]);
        assertEquals(
          st[2].reason,
          `lost connection with ${RELAY} while sending end of data -- ` +
            "message may be sent more than once",
        );
      });
    },
  );

  await t.step(
    "connection lost between per-recipient replies: the open ones deferred",
    async () => {
      await withServer({ closeAfterReplies: 1 }, async (_srv, ctx, agent) => {
        const req = await queueMessage(ctx, UNIX, ["a@x.test", "b@x.test", "c@x.test"]);
        const st = await run(agent, ctx, req);
        assertEquals(st.map((s) => s.status), ["sent", "deferred", "deferred"]);
        assertEquals(st[1].dsn, "4.4.2");
        assertEquals(
          st[1].reason,
          `lost connection with ${RELAY} while sending end of data -- ` +
            "message may be sent more than once",
        );
      });
    },
  );

  await t.step("a server that stalls after the content: deferred on the time limit", async () => {
    await withServer({ final: null }, async (_srv, ctx, agent) => {
      const req = await queueMessage(ctx, UNIX, ["a@x.test"]);
      const st = await run(agent, ctx, req);
      assertEquals(st[0].status, "deferred");
      assertEquals(
        st[0].reason,
        `conversation with ${RELAY} timed out while sending end of data -- ` +
          "message may be sent more than once",
      );
    }, { mainCf: "lmtp_data_done_timeout = 1s\n" });
  });

  await t.step("421 greeting: deferred, refused to talk to me", async () => {
    await withServer({ greeting: "421 4.3.2 Not now" }, async (_srv, ctx, agent) => {
      const st = await run(agent, ctx, await queueMessage(ctx, UNIX, ["a@x.test"]));
      assertEquals(st[0].status, "deferred");
      assertEquals(st[0].dsn, "4.3.2");
      assertEquals(st[0].reason, `host ${RELAY} refused to talk to me: 421 4.3.2 Not now`);
      assertEquals(st[0].relay, RELAY);
    });
  });

  await t.step("5XX greeting: deferred (lmtp_skip_5xx_greeting), bounced with no", async () => {
    await withServer({ greeting: "554 5.3.2 Go away" }, async (_srv, ctx, agent) => {
      const st = await run(agent, ctx, await queueMessage(ctx, UNIX, ["a@x.test"]));
      assertEquals([st[0].status, st[0].dsn], ["deferred", "4.3.2"]);
    });
    await withServer({ greeting: "554 5.3.2 Go away" }, async (_srv, ctx, agent) => {
      const st = await run(agent, ctx, await queueMessage(ctx, UNIX, ["a@x.test"]));
      assertEquals([st[0].status, st[0].dsn], ["bounced", "5.3.2"]);
    }, { mainCf: "lmtp_skip_5xx_greeting = no\n" });
  });

  await t.step("LHLO refused: 5XX bounces, 4XX defers; never HELO or EHLO", async () => {
    await withServer({ lhlo: "500 5.5.1 Unknown command" }, async (srv, ctx, agent) => {
      const st = await run(agent, ctx, await queueMessage(ctx, UNIX, ["a@x.test"]));
      assertEquals(st[0].status, "bounced");
      assertEquals(st[0].reason, `host ${RELAY} refused to talk to me: 500 5.5.1 Unknown command`);
      assert(!srv.commands.some((c) => /^(HELO|EHLO)/.test(c)), srv.commands.join());
    });
    await withServer({ lhlo: "451 4.3.0 Try later" }, async (_srv, ctx, agent) => {
      const st = await run(agent, ctx, await queueMessage(ctx, UNIX, ["a@x.test"]));
      assertEquals([st[0].status, st[0].dsn], ["deferred", "4.3.0"]);
    });
  });

  await t.step("no socket: deferred 4.4.1 as Postfix words it, relay=none", async () => {
    await withServer({}, async (_srv, ctx, agent) => {
      const req = await queueMessage(ctx, "unix:private/nothing-here", ["a@x.test"]);
      const st = await run(agent, ctx, req);
      assertEquals([st[0].status, st[0].dsn, st[0].relay], ["deferred", "4.4.1", "none"]);
      assertEquals(
        st[0].reason,
        "connect to test.example[private/nothing-here]: No such file or directory",
      );
    });
  });

  await t.step("a socket the sandbox does not grant: a deferral saying so", async () => {
    await withServer({}, async (_srv, ctx, agent) => {
      const st = await run(agent, ctx, await queueMessage(ctx, UNIX, ["a@x.test"]));
      assertEquals(st[0].status, "deferred");
      assertEquals(
        st[0].reason,
        `connect to ${RELAY}: not permitted by this daemon's sandbox`,
      );
    }, {
      agent: {
        connectUnix: (o) => {
          throw new Deno.errors.NotCapable(`Requires net access to "unix:${o.path}"`);
        },
      },
    });
  });

  await t.step("a bad next hop or a path too long: 4.3.5, never a crash", async () => {
    await withServer({}, async (_srv, ctx, agent) => {
      let st = await run(agent, ctx, await queueMessage(ctx, "inet:host:99999", ["a@x.test"]));
      assertEquals([st[0].status, st[0].dsn], ["deferred", "4.3.5"]);
      assertStringIncludes(st[0].reason, 'bad port in destination "inet:host:99999"');
      st = await run(agent, ctx, await queueMessage(ctx, "unix:/" + "x".repeat(200), ["a@x.test"]));
      assertEquals([st[0].status, st[0].dsn, st[0].reason], [
        "deferred",
        "4.3.5",
        "Server configuration error",
      ]);
      assert(
        ctx.lines.some((l) => l.includes("warning: ") && l.includes("unix-domain name too long")),
      );
    });
  });

  await t.step("a server that sends garbage or an endless reply: deferred", async () => {
    await withServer({ lhlo: "hello there" }, async (_srv, ctx, agent) => {
      const st = await run(agent, ctx, await queueMessage(ctx, UNIX, ["a@x.test"]));
      assertEquals([st[0].status, st[0].dsn], ["deferred", "4.4.2"]);
      assertStringIncludes(st[0].reason, "malformed SMTP reply line");
    });
    const endless = Array.from({ length: 1500 }, () => "250-x").join("\r\n") + "\r\n250 x";
    await withServer({ lhlo: endless }, async (_srv, ctx, agent) => {
      const st = await run(agent, ctx, await queueMessage(ctx, UNIX, ["a@x.test"]));
      assertEquals(st[0].status, "deferred");
      assertStringIncludes(st[0].reason, "longer than 1000 lines");
    });
  });

  await t.step(
    "an endless line without CRLF: bounded memory, deferred on the time limit",
    async () => {
      // 4 MB of reply bytes and no line end: the parser keeps at most one line's worth.
      await withServer({ lhlo: "250-" + "x".repeat(4 * 1024 * 1024) }, async (_srv, ctx, agent) => {
        const st = await run(agent, ctx, await queueMessage(ctx, UNIX, ["a@x.test"]));
        assertEquals([st[0].status, st[0].dsn], ["deferred", "4.4.2"]);
        assertStringIncludes(st[0].reason, "timed out while performing the LHLO handshake");
      }, { mainCf: "lmtp_lhlo_timeout = 1s\n" });
    },
  );

  await t.step("control characters in a reply never reach the log line raw", async () => {
    await withServer(
      { final: () => "250 2.0.0 ok\x1b[31m\x07 red\rx" },
      async (_srv, ctx, agent) => {
        const st = await run(agent, ctx, await queueMessage(ctx, UNIX, ["a@x.test"]));
        assertEquals(st[0].status, "sent");
        const line = ctx.lines.find((l) => l.includes("to=<a@x.test>"))!;
        // deno-lint-ignore no-control-regex
        assert(!/[\x00-\x08\x0b-\x1f\x7f]/.test(line), JSON.stringify(line));
        assertStringIncludes(line, "(250 2.0.0 ok?[31m? red?x)");
      },
    );
  });

  await t.step("connection reuse: two requests, one connection, QUIT at close", async () => {
    await withServer({}, async (srv, ctx, agent) => {
      for (const r of ["a@x.test", "b@x.test"]) {
        const st = await run(agent, ctx, await queueMessage(ctx, UNIX, [r]));
        assertEquals(st[0].status, "sent");
      }
      assertEquals(srv.connections, 1);
      assertEquals(srv.commands.filter((c) => c.startsWith("LHLO")).length, 1);
      await agent.close();
      assertEquals(srv.commands.at(-1), "QUIT");
    });
  });

  await t.step("every recipient refused: RSET before the connection is used again", async () => {
    for (const lhlo of [undefined, ["8BITMIME"]]) {
      await withServer({
        lhlo,
        rcpt: (a) => a.includes("nobody@") ? "550 5.1.1 <nobody@x.test> unknown" : "250 2.1.5 OK",
      }, async (srv, ctx, agent) => {
        let st = await run(agent, ctx, await queueMessage(ctx, UNIX, ["nobody@x.test"]));
        assertEquals(st[0].status, "bounced");
        st = await run(agent, ctx, await queueMessage(ctx, UNIX, ["a@x.test"]));
        assertEquals(st[0].status, "sent", st[0].reason);
        assertEquals(srv.connections, 1);
        assert(srv.commands.includes("RSET"), srv.commands.join());
      });
    }
  });

  await t.step("a server that sends more replies than recipients: not reused", async () => {
    await withServer(
      { final: () => "250 2.0.0 Saved\r\n250 2.0.0 extra" },
      async (srv, ctx, agent) => {
        for (const r of ["a@x.test", "b@x.test"]) {
          const st = await run(agent, ctx, await queueMessage(ctx, UNIX, [r]));
          assertEquals([st[0].status, st[0].reason], ["sent", "250 2.0.0 Saved"]);
        }
        assertEquals(srv.connections, 2, "the second message went over a fresh connection");
      },
    );
  });

  await t.step("no cache with lmtp_connection_cache_on_demand = no", async () => {
    await withServer({}, async (srv, ctx, agent) => {
      for (const r of ["a@x.test", "b@x.test"]) {
        await run(agent, ctx, await queueMessage(ctx, UNIX, [r]));
      }
      assertEquals(srv.connections, 2);
    }, { mainCf: "lmtp_connection_cache_on_demand = no\n" });
  });

  await t.step("a cached connection the server dropped: a fresh one, no loss", async () => {
    await withServer({ closeAfterReplies: 1 }, async (srv, ctx, agent) => {
      for (const r of ["a@x.test", "b@x.test"]) {
        const st = await run(agent, ctx, await queueMessage(ctx, UNIX, [r]));
        assertEquals(st[0].status, "sent", st[0].reason);
      }
      assertEquals(srv.connections, 2);
    });
  });
});

Deno.test("lmtp address verification", async (t) => {
  const script: FakeLmtpScript = {
    rcpt: (arg) =>
      arg.includes("nobody@")
        ? "550 5.1.1 <nobody@example.com> User doesn't exist: nobody@example.com"
        : "250 2.1.5 OK",
  };

  await t.step(
    "RCPT replies are the answer: deliverable and undeliverable, no DATA, RSET before the cache",
    async () => {
      await withServer(script, async (srv, ctx, agent) => {
        const req = await queueMessage(ctx, UNIX, ["a@example.com", "nobody@example.com"]);
        const st = await runVerify(agent, ctx, req);
        assertEquals(st[0], {
          index: 0,
          status: "sent",
          dsn: "2.1.5",
          reason: "250 2.1.5 OK",
          relay: RELAY,
          diagnostic: "smtp; 250 2.1.5 OK",
          remoteMta: "test.example",
        });
        const refused = `host ${RELAY} said: 550 5.1.1 <nobody@example.com> User doesn't exist: ` +
          "nobody@example.com (in reply to RCPT TO command)";
        assertEquals([st[1].status, st[1].dsn, st[1].reason], ["bounced", "5.1.1", refused]);
        assertEquals(ctx.lines.length, 2);
        assertStringIncludes(ctx.lines[0], `to=<a@example.com>, relay=${RELAY}, delay=`);
        assertStringIncludes(ctx.lines[0], ", dsn=2.1.5, status=deliverable (250 2.1.5 OK)");
        assertStringIncludes(ctx.lines[1], `, dsn=5.1.1, status=undeliverable (${refused})`);
        assertEquals(srv.commands, [
          "LHLO test.example",
          "MAIL FROM:<sender@test.example>",
          "RCPT TO:<a@example.com>",
          "RCPT TO:<nobody@example.com>",
          "RSET",
        ]);
        assertEquals(srv.messages.length, 0);
        assertEquals(agent.cache.size, 1);

        // The connection carries the next message (the fake refuses a MAIL while one is open).
        const next = await run(agent, ctx, await queueMessage(ctx, UNIX, ["a@example.com"]));
        assertEquals(next[0].status, "sent", next[0].reason);
        assertEquals(srv.connections, 1);
        assertEquals(srv.messages.length, 1);
      });
    },
  );

  await t.step("no cache (lmtp_connection_cache_on_demand = no): QUIT, not RSET", async () => {
    await withServer({ ...script, lhlo: ["ENHANCEDSTATUSCODES"] }, async (srv, ctx, agent) => {
      const req = await queueMessage(ctx, UNIX, ["nobody@example.com", "a@example.com"]);
      const st = await runVerify(agent, ctx, req);
      assertEquals(st.map((s) => s.status), ["bounced", "sent"]);
      await agent.close();
      assertEquals(srv.commands, [
        "LHLO test.example",
        "MAIL FROM:<sender@test.example>",
        "RCPT TO:<nobody@example.com>",
        "RCPT TO:<a@example.com>",
        "QUIT",
      ]);
      assertEquals(srv.messages.length, 0);
    }, { mainCf: "lmtp_connection_cache_on_demand = no\n" });
  });

  await t.step("server down: undeliverable with the connect failure", async () => {
    await withServer({}, async (_srv, ctx, agent) => {
      const req = await queueMessage(ctx, "inet:127.0.0.1:1", ["a@x.test"]);
      const st = await runVerify(agent, ctx, req);
      assertEquals([st[0].status, st[0].dsn, st[0].relay], ["deferred", "4.4.1", "none"]);
      assertStringIncludes(
        ctx.lines[0],
        ", dsn=4.4.1, status=undeliverable (connect to 127.0.0.1[127.0.0.1]:1: Connection refused)",
      );
    });
  });
});
