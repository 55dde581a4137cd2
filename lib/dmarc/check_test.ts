/**
 * Tests for checkDmarc over lib/dmarc's fake resolver: policy discovery
 * (RFC 7489 6.6.3), the alignment examples of section 3.1, p against sp,
 * pct sampling with an injected random, DNS failures and unusable or
 * hostile records.
 */
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { fakeResolver } from "../dns/testing.ts";
import { checkDmarc, type DmarcInput, type DmarcResult } from "./check.ts";

type Txt = NonNullable<Parameters<typeof fakeResolver>[0]["txt"]>;

/** A TXT table: a string is one single-string record; failures and record lists as given. */
function zone(records: Record<string, string | Txt[string]>): Txt {
  const failures: unknown[] = ["nxdomain", "nodata", "servfail", "timeout"];
  const out: Txt = {};
  for (const [name, v] of Object.entries(records)) {
    out[name] = typeof v === "string" && !failures.includes(v) ? [[v]] : v as Txt[string];
  }
  return out;
}

/** Runs checkDmarc on a zone; `spf` and `dkim` default to nothing passing. */
async function check(
  txt: Txt,
  input: Partial<DmarcInput> & { fromDomain: string },
): Promise<DmarcResult & { queries: string[] }> {
  const resolver = fakeResolver({ txt });
  const r = await checkDmarc({ dkim: [], resolver, ...input });
  return { ...r, queries: resolver.queries };
}

const never = () => {
  throw new Error("random() called");
};

Deno.test("checkDmarc: policy discovery (RFC 7489 6.6.3)", async (t) => {
  const txt = zone({
    "_dmarc.example.com": "v=DMARC1; p=reject; sp=quarantine",
    "_dmarc.own.example.com": "v=DMARC1; p=none",
    "_dmarc.spf.example.com": [["v=spf1 -all"], ["some verification token"]],
    "_dmarc.nodata.example.com": "nodata",
    "_dmarc.split.example.org": [["v=DMARC1; ", "p=reject"]],
    "_dmarc.example.net": [["v=DMARC1; p=none"], ["v=DMARC1; p=reject"]],
    "_dmarc.two.example.com": [["v=DMARC1; p=none"], ["V=DMARC1; p=reject"]],
    "_dmarc.bad.example.com": "v=DMARC1; p=bogus",
    "_dmarc.fallback.example.com": "v=DMARC1; p=bogus; rua=mailto:r@example.com",
    "_dmarc.fail.example.com": "servfail",
    "_dmarc.slow.example.com": "timeout",
    "_dmarc.example.edu": "servfail",
  });
  await t.step("a record at the From domain: p applies, the org domain is not asked", async () => {
    const r = await check(txt, { fromDomain: "own.example.com" });
    assertEquals(r, {
      result: "fail",
      disposition: "none",
      policy: "none",
      fromDomain: "own.example.com",
      policyDomain: "own.example.com",
      spfAligned: false,
      dkimAligned: false,
      reason: "no aligned SPF or DKIM pass for own.example.com, policy none from own.example.com",
      queries: ["TXT _dmarc.own.example.com"],
    });
  });
  await t.step("none there (NXDOMAIN): the organizational domain's record, its sp", async () => {
    const r = await check(txt, { fromDomain: "a.b.mail.example.com" });
    assertEquals([r.result, r.policy, r.disposition, r.policyDomain], [
      "fail",
      "quarantine",
      "quarantine",
      "example.com",
    ]);
    assertEquals(r.queries, ["TXT _dmarc.a.b.mail.example.com", "TXT _dmarc.example.com"]);
  });
  await t.step("no data, or TXT records that are not DMARC records: the same", async () => {
    for (const fromDomain of ["nodata.example.com", "spf.example.com"]) {
      const r = await check(txt, { fromDomain });
      assertEquals([r.policyDomain, r.queries.length], ["example.com", 2], fromDomain);
    }
  });
  await t.step("a record's strings are joined", async () => {
    const r = await check(txt, { fromDomain: "split.example.org" });
    assertEquals([r.result, r.disposition], ["fail", "reject"]);
  });
  await t.step("no record anywhere: none", async () => {
    const r = await check(txt, { fromDomain: "mail.example.org" });
    assertEquals(r, {
      result: "none",
      disposition: "none",
      fromDomain: "mail.example.org",
      spfAligned: false,
      dkimAligned: false,
      reason: "no DMARC record at _dmarc.mail.example.org or _dmarc.example.org",
      queries: ["TXT _dmarc.mail.example.org", "TXT _dmarc.example.org"],
    });
  });
  await t.step(
    "the From domain is the organizational domain, or a public suffix: one query",
    async () => {
      assertEquals((await check(txt, { fromDomain: "example.info" })).queries.length, 1);
      assertEquals((await check(txt, { fromDomain: "co.uk" })).queries, ["TXT _dmarc.co.uk"]);
    },
  );
  await t.step("several DMARC records: no policy, and no fallback", async () => {
    const org = await check(txt, { fromDomain: "mail.example.net" });
    assertEquals([org.result, org.policy, org.disposition], ["none", undefined, "none"]);
    assertEquals(org.reason, "2 DMARC records at _dmarc.example.net, none applies");
    const own = await check(txt, { fromDomain: "two.example.com" });
    assertEquals([own.result, own.queries.length], ["none", 1]);
  });
  await t.step("an unusable record: permerror, no fallback", async () => {
    const r = await check(txt, { fromDomain: "bad.example.com" });
    assertEquals([r.result, r.disposition, r.policyDomain, r.queries.length], [
      "permerror",
      "none",
      "bad.example.com",
      1,
    ]);
    assertEquals(
      r.reason,
      "unusable DMARC record at _dmarc.bad.example.com: invalid p= value, and no valid rua= to make it p=none",
    );
  });
  await t.step("no valid p but a valid rua: evaluated as p=none", async () => {
    const r = await check(txt, { fromDomain: "fallback.example.com" });
    assertEquals([r.result, r.policy, r.disposition], ["fail", "none", "none"]);
  });
  await t.step("temporary DNS failures: temperror, no fallback", async () => {
    for (const fromDomain of ["fail.example.com", "slow.example.com", "www.example.edu"]) {
      const r = await check(txt, { fromDomain });
      assertEquals([r.result, r.disposition, r.policy], ["temperror", "none", undefined]);
    }
    assertEquals((await check(txt, { fromDomain: "fail.example.com" })).queries.length, 1);
  });
  await t.step("any resolver error counts as temporary", async () => {
    const resolver = { resolveTxt: () => Promise.reject(new TypeError("boom")) };
    const r = await checkDmarc({ fromDomain: "example.com", dkim: [], resolver });
    assertEquals([r.result, r.reason], [
      "temperror",
      "DNS failure looking up _dmarc.example.com: boom",
    ]);
  });
  await t.step("the From domain is canonicalized", async () => {
    const r = await check(txt, { fromDomain: "Own.Example.COM." });
    assertEquals([r.fromDomain, r.policyDomain], ["own.example.com", "own.example.com"]);
  });
  await t.step("a From domain that is not a domain name: none, without a query", async () => {
    for (const fromDomain of ["", "a..example.com", "ex ample.com", `${"a".repeat(64)}.com`]) {
      const r = await check(txt, { fromDomain });
      assertEquals([r.result, r.queries], ["none", []], fromDomain);
    }
  });
});

Deno.test("checkDmarc: identifier alignment (RFC 7489 3.1)", async (t) => {
  const txt = zone({
    "_dmarc.example.com": "v=DMARC1; p=reject",
    "_dmarc.strict.example": "v=DMARC1; p=reject; adkim=s; aspf=s",
    "_dmarc.alice.github.io": "v=DMARC1; p=reject",
  });
  const aligned = async (
    fromDomain: string,
    spf?: DmarcInput["spf"],
    dkim: DmarcInput["dkim"] = [],
  ) => {
    const r = await check(txt, { fromDomain, spf, dkim, random: never });
    assertEquals(r.result === "pass", r.spfAligned || r.dkimAligned);
    assertEquals(r.disposition, r.result === "pass" ? "none" : "reject");
    return [r.spfAligned, r.dkimAligned];
  };
  const pass = (domain: string) => [{ result: "pass", domain }];
  await t.step("DKIM: d= the same domain, or a subdomain in relaxed mode (3.1.1)", async () => {
    assertEquals(await aligned("example.com", undefined, pass("example.com")), [false, true]);
    assertEquals(await aligned("example.com", undefined, pass("foo.example.com")), [false, true]);
    assertEquals(await aligned("news.example.com", undefined, pass("example.com")), [false, true]);
    assertEquals(await aligned("strict.example", undefined, pass("strict.example")), [false, true]);
    assertEquals(await aligned("strict.example", undefined, pass("foo.strict.example")), [
      false,
      false,
    ]);
  });
  await t.step("SPF: the MAIL FROM domain, likewise (3.1.2)", async () => {
    const spf = (domain: string) => ({ result: "pass" as const, domain });
    assertEquals(await aligned("example.com", spf("example.com")), [true, false]);
    assertEquals(await aligned("example.com", spf("cbg.bounces.example.com")), [true, false]);
    assertEquals(await aligned("example.com", spf("example.net")), [false, false]);
    assertEquals(await aligned("strict.example", spf("strict.example")), [true, false]);
    assertEquals(await aligned("strict.example", spf("bounces.strict.example")), [false, false]);
  });
  await t.step("only a pass counts", async () => {
    for (const result of ["fail", "softfail", "neutral", "none", "temperror"] as const) {
      assertEquals(await aligned("example.com", { result, domain: "example.com" }), [false, false]);
    }
    const dkim = [{ result: "fail", domain: "example.com" }, {
      result: "pass",
      domain: "example.net",
    }];
    assertEquals(await aligned("example.com", undefined, dkim), [false, false]);
    assertEquals(
      await aligned("example.com", undefined, [...dkim, {
        result: "pass",
        domain: "mail.example.com",
      }]),
      [false, true],
    );
  });
  await t.step("domains compare without case and trailing dot", async () => {
    assertEquals(await aligned("strict.example", undefined, pass("STRICT.Example.")), [
      false,
      true,
    ]);
    assertEquals(await aligned("strict.example", { result: "pass", domain: "Strict.EXAMPLE" }), [
      true,
      false,
    ]);
  });
  await t.step("a public suffix or a PSL private domain is not a common parent", async () => {
    assertEquals(await aligned("alice.github.io", undefined, pass("github.io")), [false, false]);
    assertEquals(await aligned("alice.github.io", undefined, pass("bob.github.io")), [
      false,
      false,
    ]);
    assertEquals(await aligned("alice.github.io", undefined, pass("www.alice.github.io")), [
      false,
      true,
    ]);
    assertEquals(await aligned("example.com", undefined, pass("com")), [false, false]);
    assertEquals(await aligned("example.com", undefined, pass("")), [false, false]);
  });
  await t.step("the pass reason names what aligned", async () => {
    const r = await check(txt, {
      fromDomain: "example.com",
      spf: { result: "pass", domain: "example.com" },
      dkim: pass("example.com"),
    });
    assertEquals(r.reason, "aligned DKIM and SPF pass for example.com");
    assertEquals([r.policy, r.disposition], ["reject", "none"]);
  });
});

Deno.test("checkDmarc: p, sp and pct", async (t) => {
  const txt = zone({
    "_dmarc.example.com": "v=DMARC1; p=reject; sp=none; pct=25",
    "_dmarc.example.org": "v=DMARC1; p=none; sp=reject",
    "_dmarc.example.net": "v=DMARC1; p=quarantine",
    "_dmarc.sub.example.net": "v=DMARC1; p=reject; sp=none",
    "_dmarc.example.info": "v=DMARC1; p=quarantine; pct=50",
    "_dmarc.example.edu": "v=DMARC1; p=reject; pct=0",
  });
  const outcome = async (fromDomain: string, random: () => number = never) => {
    const r = await check(txt, { fromDomain, random });
    return [r.policy, r.disposition];
  };
  await t.step("sp for a subdomain whose record is the organizational domain's", async () => {
    assertEquals(await outcome("example.org"), ["none", "none"]);
    assertEquals(await outcome("mail.example.org"), ["reject", "reject"]);
    assertEquals(await outcome("mail.example.net"), ["quarantine", "quarantine"]);
    assertEquals(await outcome("sub.example.net"), ["reject", "reject"]);
  });
  await t.step(
    "pct: the policy for that share of failing mail, the next lower for the rest",
    async () => {
      assertEquals(await outcome("example.com", () => 0.2499), ["reject", "reject"]);
      assertEquals(await outcome("example.com", () => 0.25), ["reject", "quarantine"]);
      assertEquals(await outcome("example.info", () => 0), ["quarantine", "quarantine"]);
      assertEquals(await outcome("example.info", () => 0.99), ["quarantine", "none"]);
      assertEquals(await outcome("example.edu", () => 0), ["reject", "quarantine"]);
      assertEquals(await outcome("mail.example.com", () => 0.9), ["none", "none"]);
    },
  );
  await t.step("the reason says when pct spared the message", async () => {
    const r = await check(txt, { fromDomain: "example.com", random: () => 0.5 });
    assertEquals(
      r.reason,
      "no aligned SPF or DKIM pass for example.com, policy reject from example.com, " +
        "not applied (pct=25): quarantine instead",
    );
  });
  await t.step("no sampling for pct=100 or a pass", async () => {
    assertEquals(await outcome("example.net"), ["quarantine", "quarantine"]);
    const r = await check(txt, {
      fromDomain: "example.com",
      dkim: [{ result: "pass", domain: "example.com" }],
      random: never,
    });
    assertEquals([r.result, r.disposition], ["pass", "none"]);
  });
});

Deno.test("checkDmarc: hostile DNS data", async (t) => {
  await t.step("many TXT records, one of them DMARC", async () => {
    const junk = Array.from({ length: 500 }, (_, i) => [`junk ${i}`]);
    const r = await check({ "_dmarc.example.com": [...junk, ["v=DMARC1; p=reject"]] }, {
      fromDomain: "example.com",
    });
    assertEquals([r.result, r.disposition], ["fail", "reject"]);
  });
  await t.step("record text never reaches the reason", async () => {
    const raw = "v=DMARC1; p=reject\r\nX-Injected: 1; rua=mailto:a@example.com";
    const r = await check({ "_dmarc.example.com": [[raw]] }, { fromDomain: "example.com" });
    assertEquals([r.result, r.disposition], ["fail", "none"]);
    assert(!/[\r\n]/.test(r.reason) && !r.reason.includes("Injected"), r.reason);
  });
  await t.step("a huge record with duplicate tags: permerror", async () => {
    const raw = `v=DMARC1; p=none; ${"x=y; ".repeat(100000)}p=reject`;
    const r = await check({ "_dmarc.example.com": [[raw]] }, { fromDomain: "example.com" });
    assertEquals([r.result, r.reason.length < 200], ["permerror", true]);
  });
});
