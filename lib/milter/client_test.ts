import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { FakeMilter, type FakeMilterOptions, reply } from "./_testing.ts";
import {
  defaultActionReply,
  type MilterEdit,
  type MilterReply,
  MilterSession,
  type MilterSessionOptions,
} from "./client.ts";
import type { MilterSettings } from "./config.ts";
import {
  decodeOptneg,
  MilterError,
  offeredProtocol,
  SMFIC_BODY,
  SMFIC_BODYEOB,
  SMFIC_CONNECT,
  SMFIC_EOH,
  SMFIC_HEADER,
  SMFIC_HELO,
  SMFIC_MAIL,
  SMFIC_OPTNEG,
  SMFIC_RCPT,
  SMFIF_ADDHDRS,
  SMFIF_CHGFROM,
  SMFIM_CONNECT,
  SMFIM_ENVFROM,
  SMFIP_HDR_LEADSPC,
  SMFIP_NOBODY,
  SMFIP_NOCONNECT,
  SMFIP_NOEOH,
  SMFIP_NOHDRS,
  SMFIP_NOHELO,
  SMFIP_NR_BODY,
  SMFIP_NR_CONN,
  SMFIP_NR_HDR,
  SMFIP_NR_RCPT,
  SMFIP_RCPT_REJ,
} from "./protocol.ts";

const NO_MACROS: MilterSessionOptions = { macro: () => undefined };

/** Runs `fn` against a fresh fake milter, closed afterwards whatever happens. */
async function withMilter(
  opts: FakeMilterOptions,
  fn: (m: FakeMilter) => Promise<void>,
): Promise<void> {
  const m = FakeMilter.start(opts);
  try {
    await fn(m);
  } finally {
    await m.close();
  }
}

/** Opens a session to `m`, runs `fn`, and closes it. */
async function session(
  m: FakeMilter,
  fn: (s: MilterSession) => void | Promise<void>,
  overrides: Partial<MilterSettings> = {},
  opts: MilterSessionOptions = NO_MACROS,
): Promise<void> {
  const s = await MilterSession.open(m.settings(overrides), opts);
  try {
    await fn(s);
  } finally {
    s.close();
    // Whatever the session sent is then recorded.
    await m.idle();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("milter client: negotiation", async (t) => {
  await t.step("offers the configured version, its actions and steps", async () => {
    await withMilter({}, async (m) => {
      await session(m, (s) => {
        assertEquals(s.negotiated, { version: 6, actions: 0x1ff, protocol: 0 });
        assertEquals(s.name, m.name);
      });
      await session(m, () => {}, { protocol: 2 });
      await session(m, () => {}, { protocol: 4, noHeaderReply: true });
      const offers = m.received.filter((r) => r.cmd === SMFIC_OPTNEG).map((r) =>
        decodeOptneg(r.data)
      );
      assertEquals(offers, [
        { version: 6, actions: 0x1ff, protocol: offeredProtocol(6), symlists: [] },
        { version: 2, actions: 0x1f, protocol: 0x7f, symlists: [] },
        { version: 4, actions: 0x3f, protocol: offeredProtocol(4) | SMFIP_NR_HDR, symlists: [] },
      ]);
    });
  });

  await t.step("refuses a higher version, a version below 2, actions not offered", async () => {
    for (
      const [optneg, protocol, message] of [
        [{ version: 7 }, 6, "protocol version 7 conflicts with MTA protocol version 6"],
        [{ version: 6 }, 4, "protocol version 6 conflicts with MTA protocol version 4"],
        [{ version: 1 }, 6, "protocol version 1 conflicts"],
        [{ actions: SMFIF_CHGFROM }, 4, "request mask 0x40 conflicts with MTA request mask 0x3f"],
        [{ actions: 0x200 }, 6, "request mask 0x200 conflicts"],
      ] as const
    ) {
      await withMilter({ optneg }, async (m) => {
        const e = await assertRejects(
          () => MilterSession.open(m.settings({ protocol }), NO_MACROS),
          MilterError,
          message,
        );
        assert(e.message.startsWith(`milter ${m.name}: `));
      });
    }
  });

  await t.step("a reply other than OPTNEG, or a short one, is refused", async () => {
    await withMilter({ handler: () => [reply.continue()] }, async (m) => {
      await assertRejects(
        () => MilterSession.open(m.settings(), NO_MACROS),
        MilterError,
        "unexpected SMFIR_CONTINUE in the initial handshake",
      );
    });
    await withMilter({ handler: () => [reply.packet("O", new Uint8Array(8))] }, async (m) => {
      await assertRejects(
        () => MilterSession.open(m.settings(), NO_MACROS),
        MilterError,
        "too short",
      );
    });
  });

  await t.step("an older milter is not sent DATA or UNKNOWN", async () => {
    await withMilter({ optneg: { version: 2, actions: 0x1f } }, async (m) => {
      await session(m, async (s) => {
        assertEquals(await s.connect("c", "4", 1, "192.0.2.1"), { action: "continue" });
        assertEquals(await s.mail(["<a@b>"]), { action: "continue" });
        assertEquals(await s.data(), { action: "continue" });
        assertEquals(await s.unknown("XYZZY"), { action: "continue" });
        assertEquals(await s.rcpt(["<c@d>"]), { action: "continue" });
      });
      assertEquals(m.commands(), ["O", "C", "M", "R"]);
    });
  });

  await t.step("unwanted steps are not sent; their macros still are", async () => {
    const protocol = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOBODY;
    await withMilter({ optneg: { protocol } }, async (m) => {
      const macros = { ...m.settings().macros, connect: ["j"], eoh: ["i"], eom: ["i"] };
      const values: Record<string, string> = { j: "mx.example", i: "QID" };
      await session(
        m,
        async (s) => {
          assertEquals(await s.connect("c", "4", 1, "192.0.2.1"), { action: "continue" });
          assertEquals(await s.helo("c"), { action: "continue" });
          assertEquals(await s.header("Subject", " x"), { action: "continue" });
          assertEquals(await s.eoh(), { action: "continue" });
          assertEquals(await s.body(new Uint8Array(70000)), { action: "continue" });
          assertEquals(await s.eom(), { reply: { action: "continue" }, edits: [] });
        },
        { macros },
        { macro: (n) => values[n] },
      );
      // Connect macros go without the CONNECT; nothing for headers or body.
      assertEquals(m.commands(), ["O", "D", "D", "E"]);
      assertEquals(m.macrosFor(SMFIC_CONNECT), { j: "mx.example" });
      assertEquals(m.macrosFor(SMFIC_BODYEOB), { i: "QID" });
    });
  });

  await t.step("no-reply steps are sent and not waited for", async () => {
    const protocol = SMFIP_NR_CONN | SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_BODY;
    await withMilter({ optneg: { protocol } }, async (m) => {
      await session(m, async (s) => {
        assertEquals(await s.connect("c", "4", 1, "192.0.2.1"), { action: "continue" });
        assertEquals(await s.mail(["<a@b>"]), { action: "continue" });
        assertEquals(await s.rcpt(["<c@d>"]), { action: "continue" });
        assertEquals(await s.rcpt(["<e@f>"]), { action: "continue" });
        assertEquals(await s.header("A", " 1"), { action: "continue" });
        assertEquals(await s.eoh(), { action: "continue" });
        assertEquals(await s.body(new Uint8Array(65535)), { action: "continue" });
        assertEquals(await s.eom(), { reply: { action: "continue" }, edits: [] });
      }, { commandTimeoutMs: 300, contentTimeoutMs: 300 });
      assertEquals(m.commands(), ["O", "C", "M", "R", "R", "L", "N", "B", "E"]);
    });
  });

  await t.step("symbol lists replace the configured macro lists", async () => {
    const optneg = {
      symlists: [[SMFIM_ENVFROM, "{mail_addr} i"], [SMFIM_CONNECT, ""], [9, "x"]] as [
        number,
        string,
      ][],
    };
    await withMilter({ optneg }, async (m) => {
      const macros = { ...m.settings().macros, connect: ["j", "{none}"], mail: ["{auth_type}"] };
      const values: Record<string, string> = {
        j: "mx",
        auth_type: "PLAIN",
        mail_addr: "a@b",
        i: "QID",
      };
      const log: string[] = [];
      await session(
        m,
        async (s) => {
          await s.connect("c", "4", 1, "192.0.2.1");
          await s.mail(["<a@b>"]);
          await s.rcpt(["<c@d>"]);
        },
        { macros },
        { macro: (n) => values[n], log: (l) => log.push(l) },
      );
      // An empty list keeps the configured one; undefined values are not sent.
      assertEquals(m.macrosFor(SMFIC_CONNECT), { j: "mx" });
      assertEquals(m.macrosFor(SMFIC_MAIL), { "{mail_addr}": "a@b", i: "QID" });
      // No macro has a value at RCPT: no SMFIC_MACRO at all.
      assertEquals(m.commands(), ["O", "D", "C", "D", "M", "R"]);
      assertEquals(log, [`milter ${m.name}: ignoring unknown macro type 9`]);
    });
  });

  await t.step("over a UNIX socket", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await withMilter({ path: `${dir}/milter` }, async (m) => {
        assertEquals(m.name, `unix:${dir}/milter`);
        await session(m, async (s) => {
          assertEquals(await s.connect("localhost", "L", 0, "/run/smtpd"), { action: "continue" });
        });
        assertEquals(m.received[1].args, ["localhost", "L", "0", "/run/smtpd"]);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("a refused connection", async () => {
    const m = FakeMilter.start();
    const settings = m.settings();
    await m.close();
    const e = await assertRejects(
      () => MilterSession.open(settings, NO_MACROS),
      MilterError,
      `milter ${m.name}: connect:`,
    );
    assertEquals(e.timeout, false);
  });
});

Deno.test("milter client: replies", async (t) => {
  await t.step("continue, reject, tempfail, reply codes per recipient", async () => {
    const answers: Record<string, Uint8Array> = {
      "<r@x>": reply.reject(),
      "<t@x>": reply.tempfail(),
      "<y@x>": reply.replyCode("550 5.1.1 No such user"),
      "<m@x>": reply.replyCode("452-4.2.2 Mailbox full\r\n452 4.2.2 Try later"),
      "<p@x>": reply.replyCode("450 greylisted, 100%% sure"),
    };
    await withMilter({
      handler(cmd, data) {
        if (cmd !== SMFIC_RCPT) return;
        const addr = new TextDecoder().decode(data.subarray(0, data.indexOf(0)));
        return [answers[addr] ?? reply.continue()];
      },
    }, async (m) => {
      await session(m, async (s) => {
        await s.connect("c", "4", 1, "192.0.2.1");
        await s.mail(["<a@b>"]);
        assertEquals(await s.rcpt(["<ok@x>"]), { action: "continue" });
        assertEquals(await s.rcpt(["<r@x>"]), { action: "reject" });
        assertEquals(await s.rcpt(["<t@x>"]), { action: "tempfail" });
        assertEquals(await s.rcpt(["<y@x>"]), {
          action: "reject",
          reply: { code: 550, dsn: "5.1.1", text: "No such user" },
        });
        assertEquals(await s.rcpt(["<m@x>"]), {
          action: "tempfail",
          reply: { code: 452, dsn: "4.2.2", text: "Mailbox full\nTry later" },
        });
        assertEquals(await s.rcpt(["<p@x>"]), {
          action: "tempfail",
          reply: { code: 450, dsn: "4.0.0", text: "greylisted, 100% sure" },
        });
        // A recipient's verdict does not end the transaction.
        assertEquals(await s.data(), { action: "continue" });
      });
    });
  });

  await t.step("accept and discard end the message, abort starts anew", async () => {
    for (const verdict of ["accept", "discard"] as const) {
      await withMilter({
        handler: (cmd) => cmd === SMFIC_RCPT ? [reply[verdict]()] : undefined,
      }, async (m) => {
        await session(m, async (s) => {
          await s.connect("c", "4", 1, "192.0.2.1");
          await s.mail(["<a@b>"]);
          assertEquals(await s.rcpt(["<c@d>"]), { action: verdict });
          assertEquals(await s.rcpt(["<e@f>"]), { action: "continue" });
          assertEquals(await s.data(), { action: "continue" });
          assertEquals(await s.header("A", " 1"), { action: "continue" });
          assertEquals(await s.body(new Uint8Array(100_000)), { action: "continue" });
          assertEquals(await s.eom(), { reply: { action: "continue" }, edits: [] });
          await s.abort();
          assertEquals(await s.mail(["<a@b>"]), { action: "continue" });
          await s.quit();
        });
        assertEquals(m.commands(), ["O", "C", "M", "R", "A", "M", "Q"]);
      });
    }
  });

  await t.step("a verdict on CONNECT or HELO decides the connection", async () => {
    const cases = [
      [SMFIC_CONNECT, reply.reject(), { action: "reject" }, { action: "reject" }],
      [SMFIC_CONNECT, reply.tempfail(), { action: "tempfail" }, { action: "tempfail" }],
      [SMFIC_HELO, reply.accept(), { action: "accept" }, { action: "continue" }],
      [
        SMFIC_HELO,
        reply.replyCode("554 5.7.1 Go away"),
        { action: "reject", reply: { code: 554, dsn: "5.7.1", text: "Go away" } },
        { action: "reject", reply: { code: 554, dsn: "5.7.1", text: "Go away" } },
      ],
    ] as const;
    for (const [at, packet, now, later] of cases) {
      await withMilter({ handler: (cmd) => cmd === at ? [packet] : undefined }, async (m) => {
        await session(m, async (s) => {
          const first = await s.connect("c", "4", 1, "192.0.2.1");
          const second = await s.helo("c");
          assertEquals(at === SMFIC_CONNECT ? first : second, now);
          assertEquals(await s.mail(["<a@b>"]), later);
          assertEquals(await s.eom(), { reply: later, edits: [] });
          await s.abort();
          await s.quit();
        });
        assertEquals(m.commands(), at === SMFIC_CONNECT ? ["O", "C"] : ["O", "C", "H"]);
      });
    }
  });

  await t.step("DISCARD on CONNECT is not allowed: a warning, continue", async () => {
    await withMilter(
      { handler: (cmd) => cmd === SMFIC_CONNECT ? [reply.discard()] : undefined },
      async (m) => {
        const log: string[] = [];
        await session(
          m,
          async (s) => {
            assertEquals(await s.connect("c", "4", 1, "192.0.2.1"), { action: "continue" });
            assertEquals(await s.helo("c"), { action: "continue" });
          },
          {},
          { ...NO_MACROS, log: (l) => log.push(l) },
        );
        assertEquals(log, [`milter ${m.name}: DISCARD action is not allowed for connect or helo`]);
      },
    );
  });

  await t.step("SMFIR_SHUTDOWN: 421, and for everything after", async () => {
    await withMilter(
      { handler: (cmd) => cmd === SMFIC_MAIL ? [reply.shutdown()] : undefined },
      async (m) => {
        await session(m, async (s) => {
          await s.connect("c", "4", 1, "192.0.2.1");
          const shutdown: MilterReply = {
            action: "tempfail",
            reply: { code: 421, dsn: "4.7.0", text: "Server closing connection" },
          };
          assertEquals(await s.mail(["<a@b>"]), shutdown);
          assertEquals(await s.rcpt(["<c@d>"]), shutdown);
        });
      },
    );
  });

  await t.step("progress restarts the wait", async () => {
    await withMilter({
      async handler(cmd, _data, state) {
        if (cmd !== SMFIC_RCPT) return;
        for (let i = 0; i < 4; i++) {
          await sleep(100);
          await state.send(reply.progress());
        }
        return [reply.continue()];
      },
    }, async (m) => {
      await session(m, async (s) => {
        await s.connect("c", "4", 1, "192.0.2.1");
        assertEquals(await s.rcpt(["<c@d>"]), { action: "continue" });
      }, { commandTimeoutMs: 250 });
    });
  });

  await t.step("skip stops body chunks until end of message", async () => {
    await withMilter({
      optneg: { protocol: 0 },
      handler: (cmd) => cmd === SMFIC_BODY ? [reply.skip()] : undefined,
    }, async (m) => {
      await session(m, async (s) => {
        await s.connect("c", "4", 1, "192.0.2.1");
        assertEquals(await s.body(new Uint8Array(65535 * 2)), { action: "skip" });
        assertEquals(await s.body(new Uint8Array(65535 * 2)), { action: "continue" });
        assertEquals(await s.eom(), { reply: { action: "continue" }, edits: [] });
      });
      assertEquals(m.commands(), ["O", "C", "B", "E"]);
    });
  });

  await t.step("bad reply codes are protocol errors", async () => {
    for (const text of ["250 2.0.0 fine", "550 4.7.1 mixed", "550-a\r\n550-b", "hello"]) {
      await withMilter({
        handler: (cmd) => cmd === SMFIC_HELO ? [reply.replyCode(text)] : undefined,
      }, async (m) => {
        await session(m, async (s) => {
          await s.connect("c", "4", 1, "192.0.2.1");
          await assertRejects(() => s.helo("c"), MilterError, `milter ${m.name}: SMFIR_REPLYCODE`);
        });
      });
    }
  });

  await t.step("edits are refused before end of message", async () => {
    await withMilter({
      handler: (cmd) => cmd === SMFIC_RCPT ? [reply.addHeader("X", "y")] : undefined,
    }, async (m) => {
      await session(m, async (s) => {
        await s.connect("c", "4", 1, "192.0.2.1");
        await assertRejects(
          () => s.rcpt(["<c@d>"]),
          MilterError,
          "unexpected SMFIR_ADDHEADER in reply to SMFIC_RCPT",
        );
      });
    });
  });

  await t.step("an unknown client name goes as the bracketed address", async () => {
    await withMilter({}, async (m) => {
      await session(m, async (s) => {
        await s.connect("unknown", "6", 2525, "2001:db8::1");
      });
      await session(m, async (s) => {
        await s.connect("unknown", "U", 0, "unknown");
      });
      const connects = m.received.filter((r) => r.cmd === SMFIC_CONNECT).map((r) => r.args);
      assertEquals(connects, [["[2001:db8::1]", "6", "2525", "2001:db8::1"], ["unknown", "U"]]);
    });
  });

  await t.step("rejected recipients wanted", async () => {
    await withMilter({ optneg: { protocol: SMFIP_RCPT_REJ } }, async (m) => {
      await session(m, (s) => assertEquals(s.wantsRejectedRecipients, true));
    });
    await withMilter({}, async (m) => {
      await session(m, (s) => assertEquals(s.wantsRejectedRecipients, false));
    });
  });
});

Deno.test("milter client: message content and edits", async (t) => {
  await t.step("headers lose one leading space unless HDR_LEADSPC", async () => {
    for (const protocol of [0, SMFIP_HDR_LEADSPC]) {
      await withMilter({ optneg: { protocol } }, async (m) => {
        await session(m, async (s) => {
          await s.header("Subject", " hello\n\tworld");
          await s.header("X-Tab", "\tx");
          await s.eoh();
        });
        const headers = m.received.filter((r) => r.cmd === SMFIC_HEADER).map((r) => r.args);
        assertEquals(
          headers,
          protocol
            ? [["Subject", " hello\n\tworld"], ["X-Tab", "\tx"]]
            : [["Subject", "hello\n\tworld"], ["X-Tab", "\tx"]],
        );
        assertEquals(m.commands().includes(SMFIC_EOH), true);
      });
    }
  });

  await t.step("body goes in packets of 65535 bytes", async () => {
    await withMilter({}, async (m) => {
      const body = new Uint8Array(150_000).map((_, i) => i % 251);
      await session(m, async (s) => {
        assertEquals(await s.body(body.subarray(0, 100)), { action: "continue" });
        assertEquals(await s.body(body.subarray(100, 140_000)), { action: "continue" });
        assertEquals(await s.body(body.subarray(140_000)), { action: "continue" });
        assertEquals(await s.eom(), { reply: { action: "continue" }, edits: [] });
      });
      const chunks = m.received.filter((r) => r.cmd === SMFIC_BODY).map((r) => r.data);
      assertEquals(chunks.map((c) => c.length), [65535, 65535, 18930]);
      const joined = new Uint8Array(chunks.flatMap((c) => [...c]));
      assertEquals(joined, body);
      assertEquals(m.commands().slice(-1), [SMFIC_BODYEOB]);
    });
  });

  await t.step("a verdict on a body chunk ends the message", async () => {
    await withMilter(
      { handler: (cmd) => cmd === SMFIC_BODY ? [reply.reject()] : undefined },
      async (m) => {
        await session(m, async (s) => {
          assertEquals(await s.body(new Uint8Array(200_000)), { action: "reject" });
        });
        assertEquals(m.commands(), ["O", "B"]);
      },
    );
    await withMilter(
      { handler: (cmd) => cmd === SMFIC_BODY ? [reply.tempfail()] : undefined },
      async (m) => {
        await session(m, async (s) => {
          assertEquals(await s.body(new Uint8Array(10)), { action: "continue" });
          assertEquals(await s.eom(), { reply: { action: "tempfail" }, edits: [] });
        });
        assertEquals(m.commands(), ["O", "B"]);
      },
    );
  });

  await t.step("every edit kind", async () => {
    let messages = 0;
    await withMilter({
      handler(cmd) {
        if (cmd !== SMFIC_BODYEOB || messages++ > 0) return;
        return [
          reply.addHeader("X-Added", "yes"),
          reply.insertHeader(0, "X-First", "top"),
          reply.changeHeader(2, "Subject", "new"),
          reply.changeHeader(0, "X-Gone", ""),
          reply.progress(),
          reply.addRcpt("<new@x>"),
          reply.addRcptPar("<par@x>", "NOTIFY=NEVER"),
          reply.addRcptPar("<bare@x>"),
          reply.deleteRcpt("<old@x>"),
          reply.changeFrom("<s@x>", "SIZE=100"),
          reply.changeFrom("<t@x>"),
          reply.replaceBody("new "),
          reply.replaceBody("body\r\n"),
          reply.quarantine("looks odd"),
          reply.accept(),
        ];
      },
    }, async (m) => {
      await session(m, async (s) => {
        await s.body(new TextEncoder().encode("old\r\n"));
        const { reply: verdict, edits } = await s.eom();
        assertEquals(verdict, { action: "accept" });
        const expected: MilterEdit[] = [
          { kind: "addHeader", name: "X-Added", value: " yes" },
          { kind: "insertHeader", index: 0, name: "X-First", value: " top" },
          { kind: "changeHeader", index: 2, name: "Subject", value: " new" },
          { kind: "changeHeader", index: 1, name: "X-Gone", value: "" },
          { kind: "addRcpt", address: "<new@x>" },
          { kind: "addRcpt", address: "<par@x>", args: "NOTIFY=NEVER" },
          { kind: "addRcpt", address: "<bare@x>" },
          { kind: "deleteRcpt", address: "<old@x>" },
          { kind: "changeFrom", address: "<s@x>", args: "SIZE=100" },
          { kind: "changeFrom", address: "<t@x>" },
          { kind: "replaceBody", body: new TextEncoder().encode("new body\r\n") },
          { kind: "quarantine", reason: "looks odd" },
        ];
        assertEquals(edits, expected);
        // The next message starts clean.
        await s.abort();
        assertEquals(await s.eom(), { reply: { action: "continue" }, edits: [] });
      });
    });
  });

  await t.step("header values as sent with HDR_LEADSPC", async () => {
    await withMilter({
      optneg: { protocol: SMFIP_HDR_LEADSPC },
      handler: (cmd) =>
        cmd === SMFIC_BODYEOB ? [reply.addHeader("X-A", " spaced"), reply.continue()] : undefined,
    }, async (m) => {
      await session(m, async (s) => {
        assertEquals((await s.eom()).edits, [{ kind: "addHeader", name: "X-A", value: " spaced" }]);
      });
    });
  });

  await t.step("an edit not negotiated is refused", async () => {
    await withMilter({
      optneg: { actions: SMFIF_ADDHDRS },
      handler: (cmd) =>
        cmd === SMFIC_BODYEOB ? [reply.addHeader("X", "1"), reply.addRcpt("<x@y>")] : undefined,
    }, async (m) => {
      await session(m, async (s) => {
        await assertRejects(
          () => s.eom(),
          MilterError,
          `milter ${m.name}: SMFIR_ADDRCPT without the action negotiated for it`,
        );
      });
    });
  });

  await t.step("malformed edits are refused", async () => {
    for (
      const [packets, message] of [
        [[reply.addHeader("Bad Name", "x")], 'bad header name "Bad Name"'],
        [[reply.changeHeader(1, "", "x")], 'bad header name ""'],
        [
          [reply.replaceBody("a"), reply.addHeader("X", "1"), reply.replaceBody("b")],
          "body replacement mixed with other edits",
        ],
        [[reply.skip()], "unexpected SMFIR_SKIP in reply to SMFIC_BODYEOB"],
      ] as const
    ) {
      await withMilter(
        { handler: (cmd) => cmd === SMFIC_BODYEOB ? [...packets] : undefined },
        async (m) => {
          await session(m, async (s) => {
            await assertRejects(() => s.eom(), MilterError, message);
          });
        },
      );
    }
  });
});

Deno.test("milter client: failures", async (t) => {
  await t.step("read timeout, then every call throws", async () => {
    await withMilter({ handler: (cmd) => cmd === SMFIC_RCPT ? [] : undefined }, async (m) => {
      const s = await MilterSession.open(m.settings({ commandTimeoutMs: 200 }), NO_MACROS);
      await s.connect("c", "4", 1, "192.0.2.1");
      const started = Date.now();
      const e = await assertRejects(() => s.rcpt(["<c@d>"]), MilterError);
      assert(Date.now() - started >= 190);
      assertEquals(e.message, `milter ${m.name}: read timeout after 200ms`);
      assertEquals(e.timeout, true);
      assertEquals(s.failed, e);
      const again = await assertRejects(
        () => s.data(),
        MilterError,
        "unusable after an earlier error",
      );
      assertEquals(again.timeout, true);
      await assertRejects(() => s.abort(), MilterError);
      await assertRejects(() => s.eom(), MilterError);
      // Teardown never throws.
      await s.quit();
      s.close();
    });
  });

  await t.step("the content timeout applies to the message", async () => {
    await withMilter({ handler: (cmd) => cmd === SMFIC_BODYEOB ? [] : undefined }, async (m) => {
      await session(m, async (s) => {
        await s.header("A", " 1");
        const e = await assertRejects(() => s.eom(), MilterError);
        assertEquals(e.message, `milter ${m.name}: read timeout after 300ms`);
      }, { commandTimeoutMs: 5000, contentTimeoutMs: 300 });
    });
  });

  await t.step("negotiation within the connect timeout", async () => {
    await withMilter({ handler: (cmd) => cmd === SMFIC_OPTNEG ? [] : undefined }, async (m) => {
      const e = await assertRejects(
        () => MilterSession.open(m.settings({ connectTimeoutMs: 200 }), NO_MACROS),
        MilterError,
      );
      assertEquals(e.message, `milter ${m.name}: read timeout after 200ms`);
      assertEquals(e.timeout, true);
    });
  });

  await t.step("a connect that hangs is abandoned at the connect timeout", async () => {
    await withMilter({}, async (m) => {
      let signalled = false;
      const e = await assertRejects(
        () =>
          MilterSession.open(m.settings({ connectTimeoutMs: 100 }), {
            ...NO_MACROS,
            connect: (_ep, signal) =>
              new Promise((_, reject) => {
                signal.addEventListener("abort", () => {
                  signalled = true;
                  reject(new Error("aborted"));
                });
              }),
          }),
        MilterError,
      );
      assertEquals(e.message, `milter ${m.name}: connect timeout after 100ms`);
      assert(signalled);
    });
  });

  await t.step("a milter that hangs up inside a reply", async () => {
    await withMilter({
      async handler(cmd, _data, state) {
        if (cmd !== SMFIC_RCPT) return;
        await state.send(reply.addHeader("X", "y").subarray(0, 7));
        return "close";
      },
    }, async (m) => {
      await session(m, async (s) => {
        await s.connect("c", "4", 1, "192.0.2.1");
        const e = await assertRejects(() => s.rcpt(["<c@d>"]), MilterError);
        assertEquals(
          e.message,
          `milter ${m.name}: connection closed by the milter while waiting for the reply to ` +
            "SMFIC_RCPT",
        );
        assertEquals(e.timeout, false);
      });
    });
  });

  await t.step("an oversize packet", async () => {
    const huge = new Uint8Array([0x7f, 0xff, 0xff, 0xff, 0x63]);
    await withMilter({ handler: (cmd) => cmd === SMFIC_HELO ? [huge] : undefined }, async (m) => {
      await session(m, async (s) => {
        await assertRejects(
          () => s.helo("c"),
          MilterError,
          `milter ${m.name}: packet length 2147483647 exceeds the limit of 1048576`,
        );
      });
    });
  });

  await t.step("garbage: an unknown reply, data after a simple reply", async () => {
    for (
      const [packet, message] of [
        [reply.packet("Z"), "unknown reply 0x5a"],
        [reply.packet("c", new Uint8Array(2)), "followed by 2 unexpected data bytes"],
      ] as const
    ) {
      await withMilter(
        { handler: (cmd) => cmd === SMFIC_HELO ? [packet] : undefined },
        async (m) => {
          await session(m, async (s) => {
            await assertRejects(() => s.helo("c"), MilterError, message);
          });
        },
      );
    }
  });

  await t.step("one call at a time", async () => {
    await withMilter({}, async (m) => {
      await session(m, async (s) => {
        const first = s.helo("a");
        await assertRejects(() => s.helo("b"), Error, "call while another is in progress");
        assertEquals(await first, { action: "continue" });
        assertEquals(s.failed, null);
      });
    });
  });

  await t.step("closed sessions refuse calls", async () => {
    await withMilter({}, async (m) => {
      const s = await MilterSession.open(m.settings(), NO_MACROS);
      await s.connect("c", "4", 1, "192.0.2.1");
      await s.quit();
      await assertRejects(() => s.helo("c"), MilterError, "session closed");
      await m.idle();
      assertEquals(m.commands(), ["O", "C", "Q"]);
    });
  });
});

Deno.test("milter client: default actions", () => {
  assertEquals(defaultActionReply("accept"), { reply: { action: "continue" } });
  assertEquals(defaultActionReply("tempfail"), {
    reply: {
      action: "tempfail",
      reply: { code: 451, dsn: "4.7.1", text: "Service unavailable - try again later" },
    },
  });
  assertEquals(defaultActionReply("reject"), {
    reply: { action: "reject", reply: { code: 550, dsn: "5.5.0", text: "Service unavailable" } },
  });
  assertEquals(defaultActionReply("quarantine"), {
    reply: { action: "continue" },
    quarantine: "milter default_action quarantine",
  });
});
