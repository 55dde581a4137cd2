/**
 * The mtasts daemon's decision (policy.ts) with a fake DNS, fetch and
 * clock: cache use, refetch on a new id, fallback on failure, the retry
 * pause, mode none, and one fetch for concurrent questions.
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { DnsError } from "../../lib/dns/mod.ts";
import type { StsPolicy } from "../../lib/mtasts/mod.ts";
import { PolicyResolver, RETRY_AFTER_MS } from "./policy.ts";
import { memoryStore } from "./store.ts";
import { answer } from "./main.ts";

const ENFORCE: StsPolicy = { mode: "enforce", mx: ["mx.example.com"], maxAge: 86400 };

function setUp() {
  const state = {
    txt: ["v=STSv1; id=1"] as string[] | "servfail" | null,
    policy: ENFORCE as StsPolicy | Error,
    now: 1_000_000,
    fetches: 0,
    lines: [] as string[],
  };
  const store = memoryStore();
  const r = new PolicyResolver({
    txt: (name) => {
      if (state.txt === "servfail") {
        return Promise.reject(new DnsError("temporary", name, "TXT", "try again"));
      }
      if (state.txt === null) return Promise.reject(new DnsError("notfound", name, "TXT", "none"));
      return Promise.resolve(state.txt.map((t) => [t]));
    },
    fetch: async () => {
      state.fetches++;
      await new Promise((r) => setTimeout(r, 5));
      if (state.policy instanceof Error) throw state.policy;
      return state.policy;
    },
    store,
    now: () => state.now,
    log: { info: (m) => state.lines.push(m), warn: (m) => state.lines.push(`warning: ${m}`) },
  });
  return { state, store, r };
}

Deno.test("mtasts policy resolver", async (t) => {
  await t.step("fetched once, then from the cache while the id stays", async () => {
    const { state, store, r } = setUp();
    assertEquals(await r.policyFor("example.com"), { policy: ENFORCE, source: "fetched" });
    assertEquals(store.entries.get("example.com")?.id, "1");
    state.now += 3600_000;
    assertEquals(await r.policyFor("example.com"), { policy: ENFORCE, source: "cache" });
    assertEquals(state.fetches, 1);
  });

  await t.step("concurrent questions share one fetch", async () => {
    const { state, r } = setUp();
    const all = await Promise.all([1, 2, 3].map(() => r.policyFor("example.com")));
    assertEquals(all.map((a) => a.source), ["fetched", "fetched", "fetched"]);
    assertEquals(state.fetches, 1);
  });

  await t.step("a new id refetches; a failed refetch keeps the cached policy", async () => {
    const { state, r } = setUp();
    await r.policyFor("example.com");
    state.txt = ["v=STSv1; id=2"];
    state.policy = new Error("HTTP 500");
    assertEquals(await r.policyFor("example.com"), { policy: ENFORCE, source: "fallback" });
    assertEquals(
      state.lines.at(-1),
      "warning: example.com: MTA-STS policy fetch failed: " +
        "HTTP 500; the cached enforce policy stays",
    );
    // Not asked again for a while, then asked again.
    await r.policyFor("example.com");
    assertEquals(state.fetches, 2);
    state.now += RETRY_AFTER_MS;
    state.policy = { ...ENFORCE, mx: ["mx2.example.com"] };
    assertEquals((await r.policyFor("example.com")).policy?.mx, ["mx2.example.com"]);
  });

  await t.step("the record gone or failing: the cached policy while it is fresh", async () => {
    const { state, r } = setUp();
    await r.policyFor("example.com");
    state.txt = null;
    assertEquals((await r.policyFor("example.com")).source, "cache");
    state.txt = "servfail";
    assertEquals((await r.policyFor("example.com")).source, "cache");
    state.now += 86400_000;
    assertEquals(await r.policyFor("example.com"), { policy: null, source: "none" });
  });

  await t.step("no record, or the fetch fails with nothing cached: no policy", async () => {
    const { state, r } = setUp();
    state.txt = null;
    assertEquals(await r.policyFor("example.com"), { policy: null, source: "none" });
    state.txt = ["v=STSv1; id=1"];
    state.policy = new Error("connection refused");
    assertEquals(await r.policyFor("example.com"), { policy: null, source: "none" });
  });

  await t.step("mode none is no policy, testing is one", async () => {
    const { state, r } = setUp();
    state.policy = { mode: "none", mx: [], maxAge: 86400 };
    assertEquals((await r.policyFor("none.example")).policy, null);
    state.policy = { ...ENFORCE, mode: "testing" };
    assertEquals((await r.policyFor("testing.example")).policy?.mode, "testing");
  });

  await t.step("requests: a domain name or an error", async () => {
    const { r } = setUp();
    assertEquals((await answer(r, { domain: "Example.COM." })).status, "ok");
    assertEquals(await answer(r, { domain: "a b" }), {
      status: "error",
      text: "not a domain name",
    });
    assertEquals(await answer(r, {}), { status: "error", text: "bad request" });
  });
});
