/**
 * DANE in the smtp delivery agent (dane.ts, starttls.ts) with a fake
 * DNSSEC-aware resolver: which hosts are authenticated by their TLSA
 * records, which fall back to may or encrypt, which are skipped. The real
 * validating resolver (unbound) is in tests/interop/dane_test.ts.
 *
 * Two fake servers: "good" presents testdata/server.pem, whose public key
 * the TLSA records name (3 1 1); "bad" presents another key. MX hosts
 * resolve to 127.0.0.2 (good) and 127.0.0.3 (bad); the injected connect
 * sends each to its server.
 */
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { createHash, createPublicKey } from "node:crypto";
import type { RecipientStatus } from "../../lib/deliver/mod.ts";
import { fakeResolver } from "../../lib/dns/testing.ts";
import { DnsError, type MxRecord } from "../../lib/dns/mod.ts";
import type { DnssecResolver, SecureAnswer, TlsaRecord } from "../../lib/dane/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import type { TlsRptEvent } from "../../lib/mtasts/mod.ts";
import { tlsaText } from "../../lib/dane/records.ts";
import { makeTestCert } from "../../tests/helpers/tls.ts";
import {
  deliverRequest,
  FakeSmtpServer,
  makeContext,
  queueMessage,
  TEST_CA,
  TEST_TLS,
} from "./_testing.ts";
import { SmtpAgent } from "./deliver.ts";

const GOOD = TEST_TLS;
const SPKI_SHA256 = new Uint8Array(
  createHash("sha256").update(
    createPublicKey(GOOD.certs).export({ type: "spki", format: "der" }),
  ).digest(),
);
const EE: TlsaRecord = { usage: 3, selector: 1, matchingType: 1, data: SPKI_SHA256 };

type Zone = Record<string, { records: unknown[]; secure: boolean } | "servfail">;

/** A DnssecResolver answering from `zone` ("TYPE name" keys); a missing key is NXDOMAIN. */
function fakeDnssec(zone: Zone): DnssecResolver & { asked: string[] } {
  const asked: string[] = [];
  const look = <T>(type: string) => (name: string): Promise<SecureAnswer<T>> => {
    asked.push(`${type} ${name}`);
    const a = zone[`${type} ${name}`];
    if (a === undefined) {
      return Promise.reject(new DnsError("notfound", name, type, "Host not found"));
    }
    if (a === "servfail") {
      return Promise.reject(new DnsError("temporary", name, type, "Host not found, try again"));
    }
    return Promise.resolve({ records: a.records as T[], secure: a.secure, name });
  };
  return {
    asked,
    tlsa: look<TlsaRecord>("TLSA"),
    mx: look<MxRecord>("MX"),
    a: look<string>("A"),
    aaaa: look<string>("AAAA"),
  };
}

const secure = (...records: unknown[]) => ({ records, secure: true });
const insecure = (...records: unknown[]) => ({ records, secure: false });
const mx = (preference: number, exchange: string): MxRecord => ({ preference, exchange });

type Ctx = ServiceContext & { lines: string[] };

async function withServers(
  mainCf: string,
  zone: (port: number) => Zone,
  fn: (ctx: Ctx, send: (domain: string) => Promise<RecipientStatus>, servers: {
    good: FakeSmtpServer;
    bad: FakeSmtpServer;
  }) => Promise<void>,
  opts: { ehlo?: string[]; requiretls?: true; events?: TlsRptEvent[] } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "pw-smtp-dane-" });
  const other = await makeTestCert(dir, "mx.test.example");
  const good = new FakeSmtpServer({ tls: GOOD, ehlo: opts.ehlo });
  const bad = new FakeSmtpServer({
    tls: { certs: other.cert, key: other.key },
    ehlo: opts.ehlo,
  });
  // Both servers answer on "port 25" of their own address.
  const PORT = 25;
  const ctx = await makeContext(mainCf) as Ctx;
  const agent = new SmtpAgent({
    // Without DNSSEC: the same zone, no verdicts.
    resolver: fakeResolver({
      mx: Object.fromEntries(
        Object.entries(zone(PORT)).filter(([k, v]) => k.startsWith("MX ") && v !== "servfail")
          .map(([k, v]) => [k.slice(3), (v as { records: MxRecord[] }).records]),
      ),
      a: Object.fromEntries(
        Object.entries(zone(PORT)).filter(([k, v]) => k.startsWith("A ") && v !== "servfail")
          .map(([k, v]) => [k.slice(2), (v as { records: string[] }).records]),
      ),
    }),
    dnssec: fakeDnssec(zone(PORT)),
    tlsRpt: (e) => opts.events?.push(e),
    connect: (o) => {
      const srv = o.hostname === "127.0.0.2" ? good : o.hostname === "127.0.0.3" ? bad : null;
      if (!srv) return Promise.reject(new Deno.errors.ConnectionRefused("refused"));
      return Deno.connect({ hostname: "127.0.0.1", port: srv.port, transport: "tcp" });
    },
  });
  const send = async (domain: string) => {
    const req = await queueMessage(ctx, domain, [`rcpt@${domain}`], undefined, {
      requiretls: opts.requiretls,
    });
    return (await deliverRequest(agent, ctx, req))[0];
  };
  try {
    await fn(ctx, send, { good, bad });
  } finally {
    await agent.close();
    await good.close();
    await bad.close();
    await Deno.remove(ctx.queue.root, { recursive: true }).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const DANE = "smtp_dns_support_level = dnssec\nsmtp_tls_security_level = dane\n" +
  "smtp_tls_loglevel = 1\n";

/** A signed zone: good.test's MX is mx.good.test, bad.test's mx.bad.test, both with the TLSA record. */
function signedZone(port: number): Zone {
  return {
    "MX good.test": secure(mx(10, "mx.good.test")),
    "A mx.good.test": secure("127.0.0.2"),
    [`TLSA _${port}._tcp.mx.good.test`]: secure(EE),
    "MX bad.test": secure(mx(10, "mx.bad.test")),
    "A mx.bad.test": secure("127.0.0.3"),
    [`TLSA _${port}._tcp.mx.bad.test`]: secure(EE),
    // The bad host first, the good one second.
    "MX both.test": secure(mx(10, "mx.bad.test"), mx(20, "mx.good.test")),
    "MX lost.test": secure(mx(10, "mx.lost.test")),
    "A mx.lost.test": secure("127.0.0.2"),
    [`TLSA _${port}._tcp.mx.lost.test`]: "servfail",
    "MX plain.test": insecure(mx(10, "mx.plain.test")),
    "A mx.plain.test": insecure("127.0.0.3"),
    "MX nota.test": secure(mx(10, "mx.nota.test")),
    "A mx.nota.test": secure("127.0.0.3"),
    "MX unusable.test": secure(mx(10, "mx.unusable.test")),
    "A mx.unusable.test": secure("127.0.0.3"),
    [`TLSA _${port}._tcp.mx.unusable.test`]: secure({ ...EE, usage: 1 }),
  };
}

Deno.test("smtp client DANE (smtp_tls_security_level = dane)", async (t) => {
  await t.step("a matching TLSA record: delivered, Verified", async () => {
    await withServers(DANE, signedZone, async (ctx, send, { good }) => {
      const st = await send("good.test");
      assertEquals(st.status, "sent", st.reason);
      assert(good.messages[0].tls);
      assertMatch(ctx.lines.join("\n"), /Verified TLS connection established to mx\.good\.test/);
    });
  });

  await t.step("a certificate no record matches: deferred, never in plaintext", async () => {
    await withServers(DANE, signedZone, async (ctx, send, { bad }) => {
      const st = await send("bad.test");
      assertEquals([st.status, st.dsn, st.reason], [
        "deferred",
        "4.7.5",
        "Server certificate not verified",
      ]);
      assertEquals(bad.messages.length, 0);
      assertEquals(bad.connections, 1); // one try: no plaintext retry
      assertMatch(
        ctx.lines.join("\n"),
        /server certificate verification failed for mx\.bad\.test\[127\.0\.0\.3\]:25: DANE: no TLSA record matches/,
      );
    });
  });

  await t.step("the first MX host does not match: the next one gets the mail", async () => {
    await withServers(DANE, signedZone, async (_ctx, send, { good, bad }) => {
      assertEquals((await send("both.test")).status, "sent");
      assertEquals([bad.messages.length, good.messages.length], [0, 1]);
    });
  });

  await t.step(
    "smtp_tlsrpt_enable: each host's session reported under its TLSA records",
    async () => {
      const events: TlsRptEvent[] = [];
      const cf = DANE + "smtp_tlsrpt_enable = yes\n";
      await withServers(cf, signedZone, async (_ctx, send) => {
        assertEquals((await send("both.test")).status, "sent");
      }, { events });
      assertEquals(events.map((e) => [e.domain, e.policyType, e.mx, e.ip, e.result]), [
        ["both.test", "tlsa", "mx.bad.test", "127.0.0.3", "tlsa-invalid"],
        ["both.test", "tlsa", "mx.good.test", "127.0.0.2", "success"],
      ]);
      assertEquals(events[0].policyString, [tlsaText(EE)]);
      // Off: nothing.
      const none: TlsRptEvent[] = [];
      await withServers(DANE, signedZone, (_ctx, send) => send("both.test").then(() => {}), {
        events: none,
      });
      assertEquals(none, []);
    },
  );

  await t.step("a TLSA lookup that fails in a signed zone: the host is skipped", async () => {
    await withServers(DANE, signedZone, async (_ctx, send, { good }) => {
      const st = await send("lost.test");
      assertEquals([st.status, st.dsn, st.reason], [
        "deferred",
        "4.7.5",
        "TLSA lookup error for mx.lost.test:25",
      ]);
      assertEquals(good.connections, 0);
    });
  });

  await t.step("unsigned zone or no TLSA records: opportunistic TLS (may)", async () => {
    await withServers(DANE, signedZone, async (ctx, send, { bad }) => {
      assertEquals((await send("plain.test")).status, "sent");
      assertEquals((await send("nota.test")).status, "sent");
      assertEquals(bad.messages.length, 2);
      assert(bad.messages.every((m) => m.tls));
      assertMatch(ctx.lines.join("\n"), /Untrusted TLS connection established to mx\.plain\.test/);
    });
  });

  await t.step("only unusable records (PKIX-EE): encrypt, any certificate", async () => {
    await withServers(DANE, signedZone, async (_ctx, send, { bad }) => {
      assertEquals((await send("unusable.test")).status, "sent");
      assert(bad.messages[0].tls);
    });
  });

  await t.step("dane-only: a host DANE does not apply to is a failure", async () => {
    const cf = DANE.replace("= dane\n", "= dane-only\n");
    await withServers(cf, signedZone, async (_ctx, send, { bad, good }) => {
      const st = await send("nota.test");
      assertEquals([st.status, st.dsn], ["deferred", "4.7.5"]);
      assertMatch(st.reason, /has no usable DANE TLSA records: no TLSA records/);
      assertEquals(bad.connections, 0);
      assertEquals((await send("good.test")).status, "sent");
      assertEquals(good.messages.length, 1);
    });
  });

  await t.step("smtp_tls_policy_maps: dane for one next hop", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/tls`, "bad.test dane\n");
      const cf = `smtp_dns_support_level = dnssec\nsmtp_tls_policy_maps = texthash:${dir}/tls\n`;
      await withServers(cf, signedZone, async (_ctx, send) => {
        const st = await send("bad.test");
        assertEquals([st.status, st.reason], ["deferred", "Server certificate not verified"]);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("smtp client REQUIRETLS (RFC 8689)", async (t) => {
  const offers = { ehlo: ["PIPELINING", "REQUIRETLS"], requiretls: true as const };
  const cf = DANE + `smtp_tls_CAfile = ${TEST_CA}\n`;

  await t.step("DANE-authenticated host that offers it: sent with REQUIRETLS", async () => {
    await withServers(cf, signedZone, async (_ctx, send, { good }) => {
      assertEquals((await send("good.test")).status, "sent");
      assert(
        good.commands.some((c) => /^MAIL FROM:<[^>]*> REQUIRETLS$/.test(c)),
        good.commands.join(),
      );
    }, offers);
  });

  await t.step("a server that does not offer it: bounced 5.7.30, no MAIL", async () => {
    await withServers(cf, signedZone, async (_ctx, send, { good }) => {
      const st = await send("good.test");
      assertEquals([st.status, st.dsn], ["bounced", "5.7.30"]);
      assertMatch(
        st.reason,
        /REQUIRETLS support required, but host mx\.good\.test\[127\.0\.0\.2\] does not offer it/,
      );
      assert(!good.commands.some((c) => c.startsWith("MAIL")), good.commands.join());
    }, { requiretls: true });
  });

  await t.step("MX records DNSSEC does not vouch for: bounced 5.7.30, no connection", async () => {
    await withServers(cf, signedZone, async (_ctx, send, { bad }) => {
      const st = await send("plain.test");
      assertEquals([st.status, st.dsn], ["bounced", "5.7.30"]);
      assertMatch(
        st.reason,
        /the MX hosts of plain\.test are authenticated by neither DNSSEC nor MTA-STS/,
      );
      assertEquals(bad.connections, 0);
    }, offers);
  });

  await t.step(
    "a signed MX without TLSA: the certificate must verify (here it does not)",
    async () => {
      await withServers(cf, signedZone, async (_ctx, send, { bad }) => {
        const st = await send("nota.test");
        assertEquals([st.status, st.reason], ["deferred", "Server certificate not verified"]);
        assertEquals(bad.messages.length, 0);
      }, offers);
    },
  );

  await t.step(
    "without smtp_dns_support_level = dnssec nothing vouches for MX records",
    async () => {
      const plain = `smtp_tls_CAfile = ${TEST_CA}\n`;
      await withServers(plain, signedZone, async (_ctx, send, { good }) => {
        const st = await send("good.test");
        assertEquals([st.status, st.dsn], ["bounced", "5.7.30"]);
        assertEquals(good.connections, 0);
      }, offers);
    },
  );
});
