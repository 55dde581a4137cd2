/**
 * checkDmarc compared with an independent implementation: mailauth's
 * dmarc() (npm, strict mode) on the same DNS data, for a table of cases.
 * Skipped when mailauth cannot be loaded (not in the npm cache).
 *
 * mailauth 7 follows DMARCbis (RFC 9989), which replaced RFC 7489's
 * Public Suffix List lookup with a DNS tree walk and reads a few broken
 * records differently. Where that makes the two disagree on purpose, the
 * case says what mailauth answers and why; everywhere else they must
 * agree on the result, the policy, the policy domain and what aligned.
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { fakeResolver } from "../dns/testing.ts";
import { checkDmarc } from "./check.ts";
import { authorDomain } from "./domain.ts";

type Zone = Parameters<typeof fakeResolver>[0];
type MailauthDmarc = (opts: Record<string, unknown>) => Promise<
  false | {
    status: { result: string };
    policy?: string;
    policyDomain?: string;
    alignment?: { spf: { result?: string }; dkim: { result?: string } };
  }
>;

let mailauthDmarc: MailauthDmarc | undefined;
try {
  mailauthDmarc = (await import("mailauth")).dmarc as unknown as MailauthDmarc;
} catch {
  mailauthDmarc = undefined;
}

/** A node:dns-style resolver over the same TXT table, for mailauth. */
function nodeStyleResolver(zone: Zone) {
  const fail = (code: string) => Promise.reject(Object.assign(new Error(code), { code }));
  return (name: string, type: string): Promise<unknown> => {
    const key = name.toLowerCase().replace(/\.$/, "");
    const v = type === "TXT" && zone.txt && Object.hasOwn(zone.txt, key)
      ? zone.txt[key]
      : undefined;
    if (v === undefined || v === "nxdomain") return fail("ENOTFOUND");
    if (v === "nodata") return fail("ENODATA");
    if (v === "servfail") return fail("ESERVFAIL");
    if (v === "timeout") return fail("ETIMEOUT");
    return Promise.resolve(v);
  };
}

const zone: Zone = {
  txt: {
    "_dmarc.example.com": [["v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com"]],
    "_dmarc.none.example": [["v=DMARC1; p=none"]],
    "_dmarc.strict.example": [["v=DMARC1; p=reject; adkim=s; aspf=s"]],
    "_dmarc.quarter.example": [["v=DMARC1; p=quarantine; pct=25"]],
    "_dmarc.example.org": [["v=DMARC1; p=none; sp=reject"]],
    "_dmarc.sub.example.org": [["v=DMARC1; p=quarantine"]],
    "_dmarc.example.co.uk": [["v=DMARC1; p=reject"]],
    "_dmarc.alice.github.io": [["v=DMARC1; p=reject"]],
    "_dmarc.split.example": [["v=DMARC1;", " p=REJECT"]],
    "_dmarc.spf.example": [["v=spf1 -all"]],
    "_dmarc.nodata.example.com": "nodata",
    "_dmarc.badrua.example": [["v=DMARC1; p=bogus; rua=mailto:r@badrua.example"]],
    "_dmarc.temp.example": "servfail",
    "_dmarc.slow.example": "timeout",
    "_dmarc.multi.example": [["v=DMARC1; p=none"], ["v=DMARC1; p=reject"]],
    "_dmarc.multi.example.com": [["v=DMARC1; p=none"], ["v=DMARC1; p=none"]],
    "_dmarc.bad.example": [["v=DMARC1; p=bogus"]],
    "_dmarc.dup.example": [["v=DMARC1; p=none; p=reject"]],
    "_dmarc.b.deep.example": [["v=DMARC1; p=reject"]],
    "_dmarc.only.example.net": [["v=DMARC1; p=reject"]],
  },
};

interface Case {
  /** The From address. */
  from: string;
  /** The domain with an SPF pass. */
  spf?: string;
  /** Domains of passing DKIM signatures. */
  dkim?: string[];
  /** Our result (RFC 7489). */
  result: string;
  /** mailauth's result where RFC 9989 differs on purpose, and why. */
  rfc9989?: [string, string];
}

const cases: Case[] = [
  { from: "joe@example.com", dkim: ["example.com"], result: "pass" },
  { from: "joe@example.com", dkim: ["mail.example.com"], result: "pass" },
  { from: "joe@example.com", spf: "bounces.example.com", result: "pass" },
  { from: "joe@example.com", spf: "example.net", dkim: ["example.net"], result: "fail" },
  { from: "joe@news.example.com", dkim: ["example.com"], result: "pass" },
  { from: "joe@news.example.com", spf: "other.example", result: "fail" },
  { from: "joe@a.b.c.example.com", spf: "x.example.com", result: "pass" },
  { from: "joe@nodata.example.com", result: "fail" },
  { from: "joe@none.example", result: "fail" },
  { from: "joe@none.example", dkim: ["none.example"], result: "pass" },
  { from: "joe@strict.example", dkim: ["strict.example"], result: "pass" },
  { from: "joe@strict.example", dkim: ["mail.strict.example"], result: "fail" },
  { from: "joe@strict.example", spf: "bounce.strict.example", result: "fail" },
  { from: "joe@mail.strict.example", spf: "strict.example", result: "fail" },
  { from: "joe@quarter.example", result: "fail" },
  { from: "joe@example.org", result: "fail" },
  { from: "joe@www.example.org", result: "fail" },
  { from: "joe@sub.example.org", result: "fail" },
  { from: "joe@sub.example.org", dkim: ["example.org"], result: "pass" },
  { from: "joe@mail.example.co.uk", dkim: ["example.co.uk"], result: "pass" },
  { from: "joe@mail.example.co.uk", dkim: ["co.uk"], result: "fail" },
  { from: "joe@alice.github.io", dkim: ["bob.github.io"], result: "fail" },
  { from: "joe@alice.github.io", dkim: ["github.io"], result: "fail" },
  { from: "joe@alice.github.io", dkim: ["www.alice.github.io"], result: "pass" },
  { from: "joe@split.example", result: "fail" },
  { from: "joe@spf.example", result: "none" },
  { from: "joe@example.net", result: "none" },
  { from: "joe@mail.example.net", dkim: ["example.net"], result: "none" },
  { from: "joe@badrua.example", result: "fail" },
  { from: "joe@temp.example", dkim: ["temp.example"], result: "temperror" },
  { from: "joe@slow.example", result: "temperror" },
  { from: "joe@Example.COM", dkim: ["EXAMPLE.com."], result: "pass" },
  { from: "joe@multi.example", result: "none" },
  { from: "joe@mail.example.com", result: "fail" },
  {
    from: "joe@multi.example.com",
    result: "none",
    rfc9989: ["fail", "several records are discarded and the walk goes on to example.com"],
  },
  {
    from: "joe@bad.example",
    result: "permerror",
    rfc9989: ["none", "a record without a valid p or rua gets no DMARC processing, not permerror"],
  },
  {
    from: "joe@dup.example",
    result: "permerror",
    rfc9989: ["none", "a duplicate tag discards the record as if it were not there"],
  },
  {
    from: "joe@a.b.deep.example",
    result: "none",
    rfc9989: ["fail", "the tree walk finds _dmarc.b.deep.example, between the two RFC 7489 names"],
  },
  {
    from: "joe@only.example.net",
    dkim: ["example.net"],
    result: "pass",
    rfc9989: [
      "fail",
      "with no record at example.net the walk makes only.example.net the org domain",
    ],
  },
];

Deno.test({
  name: "checkDmarc agrees with mailauth (strict mode) on a table of cases",
  ignore: mailauthDmarc === undefined,
  async fn(t) {
    for (const c of cases) {
      await t.step(`${c.from} spf=${c.spf ?? "-"} dkim=${c.dkim?.join(",") ?? "-"}`, async () => {
        const author = authorDomain([c.from]);
        if (!("domain" in author)) throw new Error(author.error);
        const ours = await checkDmarc({
          fromDomain: author.domain,
          spf: c.spf === undefined ? undefined : { result: "pass", domain: c.spf },
          dkim: (c.dkim ?? []).map((domain) => ({ result: "pass", domain })),
          resolver: fakeResolver(zone),
          random: () => 0.99,
        });
        const theirs = await mailauthDmarc!({
          headerFrom: c.from,
          spfDomains: c.spf === undefined ? [] : [c.spf],
          dkimDomains: (c.dkim ?? []).map((domain) => ({ domain })),
          resolver: nodeStyleResolver(zone),
          strict: true,
        });
        if (theirs === false) throw new Error("mailauth found no author domain");
        assertEquals(ours.result, c.result, ours.reason);
        assertEquals(theirs.status.result, c.rfc9989?.[0] ?? c.result, c.rfc9989?.[1]);
        if (c.rfc9989 || (ours.result !== "pass" && ours.result !== "fail")) return;
        assertEquals(ours.policy, theirs.policy);
        assertEquals(ours.policyDomain, theirs.policyDomain);
        assertEquals(ours.spfAligned, theirs.alignment?.spf.result !== undefined);
        assertEquals(ours.dkimAligned, theirs.alignment?.dkim.result !== undefined);
      });
    }
  },
});
