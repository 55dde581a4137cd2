/**
 * MTA-STS in the smtp delivery agent (mta_sts.ts) with the policy lookup
 * injected: which MX hosts an enforced policy allows, the WebPKI check of
 * their certificates (postwarden_mta_sts_CAfile), and when no policy is
 * asked or applied. The daemon and the HTTPS fetch are in
 * daemons/mtasts and tests/interop/mta_sts_test.ts.
 */
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import type { RecipientStatus } from "../../lib/deliver/mod.ts";
import { fakeResolver } from "../../lib/dns/testing.ts";
import { type StsPolicy, stsPolicyLines, type TlsRptEvent } from "../../lib/mtasts/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import {
  deliverRequest,
  type FakeServerScript,
  FakeSmtpServer,
  makeContext,
  OTHER_CA,
  queueMessage,
  TEST_CA,
  TEST_TLS,
} from "./_testing.ts";
import { SmtpAgent } from "./deliver.ts";

const CA = TEST_CA;
const TLS = TEST_TLS;
const resolver = fakeResolver({
  mx: { "sts.example": [{ preference: 10, exchange: "mx.test.example" }] },
  a: { "mx.test.example": ["127.0.0.1"], "fallback.example": ["127.0.0.1"] },
});
const enforce = (...mx: string[]): StsPolicy => ({ mode: "enforce", mx, maxAge: 86400 });

type Ctx = ServiceContext & { lines: string[] };

async function withAgent(
  mainCf: string,
  policy: StsPolicy | null | Error,
  fn: (
    send: () => Promise<RecipientStatus>,
    srv: FakeSmtpServer,
    asked: string[],
    ctx: Ctx,
    events: TlsRptEvent[],
  ) => Promise<void>,
  script: FakeServerScript = { tls: TLS },
): Promise<void> {
  const srv = new FakeSmtpServer(script);
  const ctx = await makeContext(mainCf.replaceAll("PORT", String(srv.port))) as Ctx;
  const asked: string[] = [];
  const events: TlsRptEvent[] = [];
  const agent = new SmtpAgent({
    resolver,
    mtaSts: (d) => {
      asked.push(d);
      return policy instanceof Error ? Promise.reject(policy) : Promise.resolve(policy);
    },
    tlsRpt: (e) => events.push(e),
  });
  const send = async () => {
    const req = await queueMessage(ctx, `sts.example:${srv.port}`, ["rcpt@sts.example"]);
    return (await deliverRequest(agent, ctx, req))[0];
  };
  try {
    await fn(send, srv, asked, ctx, events);
  } finally {
    await agent.close();
    await srv.close();
    await Deno.remove(ctx.queue.root, { recursive: true }).catch(() => {});
  }
}

const STS = `postwarden_mta_sts = yes\npostwarden_mta_sts_CAfile = ${CA}\nsmtp_tls_loglevel = 1\n`;

Deno.test("smtp client MTA-STS (postwarden_mta_sts = yes)", async (t) => {
  await t.step(
    "enforce, a named MX host with a trusted certificate for its name: sent",
    async () => {
      await withAgent(STS, enforce("mx.test.example"), async (send, srv, asked, ctx) => {
        assertEquals((await send()).status, "sent");
        assertEquals(asked, ["sts.example"]);
        assert(srv.messages[0].tls);
        assertMatch(
          ctx.lines.join("\n"),
          /Verified TLS connection established to mx\.test\.example/,
        );
      });
    },
  );

  await t.step("enforce, a certificate from another CA: deferred, not sent", async () => {
    const cf = STS.replace(CA, OTHER_CA);
    await withAgent(cf, enforce("mx.test.example"), async (send, srv) => {
      const st = await send();
      assertEquals([st.status, st.dsn, st.reason], [
        "deferred",
        "4.7.5",
        "Server certificate not verified",
      ]);
      assertEquals(srv.messages.length, 0);
    });
  });

  await t.step("enforce, an MX host the policy does not name: skipped", async () => {
    await withAgent(STS, enforce("*.elsewhere.example"), async (send, srv) => {
      const st = await send();
      assertEquals([st.status, st.reason], [
        "deferred",
        "MX host mx.test.example is not named by the MTA-STS policy of sts.example",
      ]);
      assertEquals(srv.connections, 0);
    });
  });

  await t.step("enforce: no smtp_fallback_relay", async () => {
    const cf = STS + "smtp_fallback_relay = [fallback.example]:PORT\n";
    await withAgent(cf, enforce("*.elsewhere.example"), async (send, srv) => {
      assertEquals((await send()).status, "deferred");
      assertEquals(srv.connections, 0);
    });
  });

  await t.step("testing mode or no policy: delivered as without MTA-STS", async () => {
    const cf = STS.replace(CA, OTHER_CA);
    await withAgent(cf, { ...enforce("x.example"), mode: "testing" }, async (send, srv) => {
      assertEquals((await send()).status, "sent");
      assertEquals(srv.messages[0].tls, false); // smtp_tls_security_level is empty: none
    });
    await withAgent(cf, null, async (send) => assertEquals((await send()).status, "sent"));
  });

  await t.step("the policy cannot be asked: deferred, never sent without it", async () => {
    await withAgent(STS, new Error("mtasts is down"), async (send, srv, _asked, ctx) => {
      const st = await send();
      assertEquals([st.status, st.reason], [
        "deferred",
        "cannot determine the MTA-STS policy of sts.example",
      ]);
      assertEquals(srv.connections, 0);
      assertMatch(ctx.lines.join("\n"), /warning: MTA-STS policy of sts\.example: mtasts is down/);
    });
  });

  await t.step("an smtp_tls_policy_maps entry or postwarden_mta_sts = no: not asked", async () => {
    const dir = await Deno.makeTempDir();
    try {
      const cf = STS + `smtp_tls_policy_maps = texthash:${dir}/tls\n`;
      await withAgent(cf, enforce("nothing.example"), async (send, srv, asked) => {
        await Deno.writeTextFile(`${dir}/tls`, `sts.example:${srv.port} may\n`);
        assertEquals((await send()).status, "sent");
        assertEquals(asked, []);
      });
      await withAgent("", enforce("nothing.example"), async (send, _srv, asked) => {
        assertEquals((await send()).status, "sent");
        assertEquals(asked, []);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("smtp client TLS-RPT events (smtp_tlsrpt_enable = yes)", async (t) => {
  const RPT = STS + "smtp_tlsrpt_enable = yes\n";
  const policy = enforce("mx.test.example");
  const testing: StsPolicy = { ...policy, mode: "testing" };
  const event = (
    p: StsPolicy,
    result: TlsRptEvent["result"],
    extra: Partial<TlsRptEvent> = {},
  ): TlsRptEvent => ({
    domain: "sts.example",
    policyType: "sts",
    policyString: stsPolicyLines(p),
    mxHost: p.mx,
    result,
    mx: "mx.test.example",
    ip: "127.0.0.1",
    ...extra,
  });

  await t.step("enforce: a verified session is a success", async () => {
    await withAgent(RPT, policy, async (send, _srv, _a, _c, events) => {
      assertEquals((await send()).status, "sent");
      assertEquals(events, [event(policy, "success")]);
    });
  });

  await t.step("enforce: an untrusted certificate, an unnamed MX host", async () => {
    await withAgent(RPT.replace(CA, OTHER_CA), policy, async (send, _srv, _a, _c, events) => {
      assertEquals((await send()).status, "deferred");
      assertEquals(events.map((e) => e.result), ["certificate-not-trusted"]);
    });
    const other = enforce("*.elsewhere.example");
    await withAgent(RPT, other, async (send, srv, _a, _c, events) => {
      assertEquals((await send()).status, "deferred");
      assertEquals(srv.connections, 0);
      assertEquals(events, [
        event(other, "validation-failure", { reason: "MX host not named by the MTA-STS policy" }),
      ]);
    });
  });

  await t.step("testing at may: checked against the MTA-STS anchors, sent anyway", async () => {
    const may = RPT + "smtp_tls_security_level = may\n";
    await withAgent(may.replace(CA, OTHER_CA), testing, async (send, srv, _a, _c, events) => {
      assertEquals((await send()).status, "sent");
      assert(srv.messages[0].tls);
      assertEquals(events.map((e) => e.result), ["certificate-not-trusted"]);
    });
    await withAgent(may, testing, async (send, _srv, _a, _c, events) => {
      assertEquals((await send()).status, "sent");
      assertEquals(events, [event(testing, "success")]);
    });
    // No STARTTLS at all.
    await withAgent(may, testing, async (send, srv, _a, _c, events) => {
      assertEquals((await send()).status, "sent");
      assertEquals(srv.messages[0].tls, false);
      assertEquals(events.map((e) => e.result), ["starttls-not-supported"]);
    }, {});
  });

  await t.step("a failed handshake at may: reported once, not again in plaintext", async () => {
    const may = RPT + "smtp_tls_security_level = may\n";
    const script = { tls: TLS, starttlsGarbage: "not TLS\r\n" };
    await withAgent(may, testing, async (send, _srv, _a, _c, events) => {
      await send();
      assertEquals(events.map((e) => e.result), ["validation-failure"]);
    }, script);
  });

  await t.step("off, or no policy: nothing reported", async () => {
    await withAgent(STS, policy, async (send, _srv, _a, _c, events) => {
      assertEquals((await send()).status, "sent");
      assertEquals(events, []);
    });
    await withAgent(RPT + "smtp_tls_security_level = may\n", null, async (send, _s, _a, _c, ev) => {
      assertEquals((await send()).status, "sent");
      assertEquals(ev, []);
    });
  });
});
