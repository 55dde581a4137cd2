/**
 * screen.ts with a scripted client and fake DNS lists, cache and access
 * list: each way a screening ends, what the client is sent, what is
 * logged and what is remembered.
 */
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { memoryCache } from "./cache.ts";
import { addressQuery as dnsblQuery } from "../../lib/config/restrictions.ts";
import { proxyHeader } from "./main.ts";
import { ChunkReader, type DnsblScore, screen, type ScreenDeps } from "./screen.ts";
import type { ScreenSettings } from "./settings.ts";

const enc = new TextEncoder();

const SETTINGS: ScreenSettings = {
  greetAction: "enforce",
  greetWaitMs: 100,
  greetTtlMs: 86_400_000,
  banner: "mx.test ESMTP",
  dnsblSites: [{ text: "bl.test*2", domain: "bl.test", filter: null, weight: 2 }],
  dnsblAction: "drop",
  dnsblThreshold: 1,
  dnsblAllowlistThreshold: null,
  dnsblTimeoutMs: 1000,
  dnsblTtlMs: 60_000,
  denylistAction: "drop",
  accessList: [],
  mynetworks: { items: [], errors: [] } as unknown as ScreenSettings["mynetworks"],
  cachePath: null,
  cacheRetentionMs: 0,
  commandTimeLimitMs: 500,
  commandCountLimit: 20,
  smtpdService: "smtpd",
  preQueueLimit: 100,
  clientConnectionLimit: 0,
};

/** A client that sends `lines` at the given times (ms after connect); what it was sent. */
function client(script: [number, string][]) {
  const sent: string[] = [];
  const t0 = Date.now();
  let i = 0;
  const reader = new ChunkReader(async () => {
    if (i >= script.length) return await new Promise<null>((r) => setTimeout(() => r(null), 2000));
    const [at, text] = script[i++];
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + at - Date.now())));
    return enc.encode(text);
  });
  return { reader, sent, write: (s: string) => Promise.resolve(void sent.push(s)) };
}

function deps(over: Partial<ScreenDeps> = {}, score: DnsblScore = { score: 0, listedBy: [] }) {
  const log: string[] = [];
  const d: ScreenDeps = {
    settings: SETTINGS,
    cache: memoryCache(),
    dnsbl: () => Promise.resolve(score),
    access: () => Promise.resolve(null),
    info: (m) => log.push(m),
    myhostname: "mx.test",
    now: Date.now,
    ...over,
  };
  return { d, log };
}

const C = { addr: "192.0.2.1", port: 4000 };

Deno.test("postscreen screen()", async (t) => {
  await t.step(
    "a quiet, unlisted client passes, is remembered, and passes at once next time",
    async () => {
      const { d, log } = deps();
      const c = client([]);
      const r = await screen(C, c.reader, c.write, d);
      assertEquals(r, { kind: "pass", early: [] });
      assertEquals(c.sent, ["220-mx.test ESMTP\r\n"]);
      assert(log.includes("PASS NEW [192.0.2.1]:4000"), log.join("\n"));
      const again = client([]);
      const t0 = Date.now();
      assertEquals((await screen(C, again.reader, again.write, d)).kind, "pass");
      assertEquals(again.sent, [], "no greeting line: smtpd greets");
      assert(Date.now() - t0 < 50);
      assert(log.includes("PASS OLD [192.0.2.1]:4000"));
    },
  );
  await t.step("pregreet with enforce: the client's own commands get 550 at RCPT", async () => {
    const { d, log } = deps();
    const c = client([[10, "EHLO z\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nQUIT\r\n"]]);
    assertEquals((await screen(C, c.reader, c.write, d)).kind, "done");
    assertEquals(c.sent[1], "220 mx.test ESMTP\r\n");
    assertMatch(c.sent.join(""), /250 2\.1\.0 Ok\r\n550 5\.5\.1 Protocol error\r\n221 2\.0\.0 Bye/);
    assertMatch(
      log.join("\n"),
      /^PREGREET 46 after 0\.\d+ from \[192\.0\.2\.1\]:4000: EHLO z\\r\\nMAIL/m,
    );
    assertMatch(
      log.join("\n"),
      /NOQUEUE: reject: RCPT from \[192\.0\.2\.1\]:4000: 550 5\.5\.1 Protocol error; from=<a@b>, to=<c@d>, proto=ESMTP, helo=<z>/,
    );
    assertEquals(await d.cache.get(C.addr), null, "a failure is not remembered");
  });
  await t.step("listed with drop: 521 naming the list, then the end", async () => {
    const { d, log } = deps({}, { score: 2, listedBy: ["bl.test"] });
    const c = client([]);
    assertEquals((await screen(C, c.reader, c.write, d)).kind, "done");
    assertEquals(
      c.sent.at(-1),
      "521 5.7.1 Service unavailable; client [192.0.2.1] blocked using bl.test\r\n",
    );
    assert(log.includes("DNSBL rank 2 for [192.0.2.1]:4000"));
  });
  await t.step(
    "ignore: a pregreeting client goes on with what it sent, not remembered",
    async () => {
      const { d } = deps({ settings: { ...SETTINGS, greetAction: "ignore" } });
      const c = client([[5, "EHLO early\r\n"]]);
      const r = await screen(C, c.reader, c.write, d);
      assertEquals(r.kind, "pass");
      assertEquals(
        new TextDecoder().decode((r as { early: Uint8Array[] }).early[0]),
        "EHLO early\r\n",
      );
      assertEquals(await d.cache.get(C.addr), null);
    },
  );
  await t.step("a DNS allow list under its threshold passes at once", async () => {
    const settings = { ...SETTINGS, greetWaitMs: 2000, dnsblAllowlistThreshold: -1 };
    const { d, log } = deps({ settings }, { score: -2, listedBy: [] });
    const c = client([]);
    const t0 = Date.now();
    assertEquals((await screen(C, c.reader, c.write, d)).kind, "pass");
    assert(Date.now() - t0 < 1000, `${Date.now() - t0} ms`);
    assert(log.includes("PASS NEW [192.0.2.1]:4000"));
  });
  await t.step("the access list: permit skips every test, reject drops", async () => {
    const permit = deps({ access: () => Promise.resolve("permit") });
    const c = client([]);
    assertEquals((await screen(C, c.reader, c.write, permit.d)).kind, "pass");
    assertEquals(c.sent, []);
    assert(permit.log.includes("ALLOWLISTED [192.0.2.1]:4000"));
    const reject = deps({ access: () => Promise.resolve("reject") });
    const c2 = client([]);
    assertEquals((await screen(C, c2.reader, c2.write, reject.d)).kind, "done");
    assertMatch(c2.sent[0], /^521 5\.7\.1 /);
    assert(reject.log.includes("DENYLISTED [192.0.2.1]:4000"));
  });
  await t.step("a client that hangs up during the wait", async () => {
    const { d, log } = deps();
    const reader = new ChunkReader(() => Promise.resolve(null));
    assertEquals((await screen(C, reader, () => Promise.resolve(), d)).kind, "done");
    assertMatch(log.join("\n"), /HANGUP after 0\.\d from \[192\.0\.2\.1\]:4000/);
  });
  await t.step("enforce: too many commands end the session", async () => {
    const settings = { ...SETTINGS, commandCountLimit: 3 };
    const { d } = deps({ settings });
    const c = client([[5, "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n"]]);
    assertEquals((await screen(C, c.reader, c.write, d)).kind, "done");
    assertMatch(c.sent.at(-1)!, /^421 4\.7\.0 mx\.test Error: too many commands/);
  });
});

Deno.test("postscreen: DNSBL query names and the PROXY header", () => {
  assertEquals(dnsblQuery("192.0.2.1", "bl.test"), "1.2.0.192.bl.test");
  assertEquals(dnsblQuery("::ffff:192.0.2.1", "bl.test"), "1.2.0.192.bl.test");
  assertEquals(
    dnsblQuery("2001:db8::1", "bl.test"),
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test",
  );
  assertEquals(dnsblQuery("not-an-address", "bl.test"), null);
  assertEquals(
    proxyHeader({ transport: "tcp", hostname: "192.0.2.1", port: 4000 }, {
      transport: "tcp",
      hostname: "192.0.2.25",
      port: 25,
    }),
    "PROXY TCP4 192.0.2.1 192.0.2.25 4000 25\r\n",
  );
});
