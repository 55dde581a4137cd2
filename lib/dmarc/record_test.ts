/**
 * Unit tests for record.ts: recognising a DMARC record and parsing it
 * (RFC 7489 6.3 and 6.4, the examples of Appendix B.2), defaults, the
 * p=none fallback of 6.6.3 step 6, and hostile records.
 */
import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { type DmarcRecord, DmarcSyntaxError, isDmarcRecord, parseDmarcRecord } from "./record.ts";

const DEFAULTS: Omit<DmarcRecord, "p" | "raw"> = {
  adkim: "r",
  aspf: "r",
  pct: 100,
  rua: [],
  ruf: [],
  fo: "0",
  rf: "afrf",
  ri: 86400,
};

Deno.test("isDmarcRecord", async (t) => {
  await t.step("v=DMARC1 first: v any case, DMARC1 exact, then ; or the end", () => {
    for (const r of ["v=DMARC1; p=none", "V=DMARC1;p=none", " v = DMARC1 ;", "v=DMARC1"]) {
      assertEquals(isDmarcRecord(r), true, r);
    }
    for (
      const r of [
        "v=dmarc1; p=none",
        "v=DMARC10; p=none",
        "p=none; v=DMARC1",
        "v=DMARC1 p=none",
        "",
      ]
    ) {
      assertEquals(isDmarcRecord(r), false, r);
    }
  });
});

Deno.test("parseDmarcRecord: RFC 7489 examples", async (t) => {
  await t.step("B.2.1: monitoring with aggregate reports", () => {
    const raw = "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com";
    assertEquals(parseDmarcRecord(raw), {
      ...DEFAULTS,
      p: "none",
      rua: ["mailto:dmarc-feedback@example.com"],
      raw,
    });
  });
  await t.step("B.2.3: failure reports to a third party", () => {
    const r = parseDmarcRecord(
      "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; " +
        "ruf=mailto:auth-reports@thirdparty.example.net",
    );
    assertEquals(r.ruf, ["mailto:auth-reports@thirdparty.example.net"]);
  });
  await t.step("B.2.4: quarantine a quarter, two report URIs, one with a size limit", () => {
    const r = parseDmarcRecord(
      "v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com," +
        "mailto:tld-test@thirdparty.example.net!10m; pct=25",
    );
    assertEquals([r.p, r.pct], ["quarantine", 25]);
    assertEquals(r.rua, [
      "mailto:dmarc-feedback@example.com",
      "mailto:tld-test@thirdparty.example.net!10m",
    ]);
  });
  await t.step("every tag set", () => {
    const r = parseDmarcRecord(
      "v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=s; pct=0; fo=1 : d; rf=afrf; ri=3600; " +
        "rua=mailto:a@example.com; ruf=mailto:f@example.com",
    );
    assertEquals({ ...r, raw: "" }, {
      p: "reject",
      sp: "quarantine",
      adkim: "s",
      aspf: "s",
      pct: 0,
      rua: ["mailto:a@example.com"],
      ruf: ["mailto:f@example.com"],
      fo: "1:d",
      rf: "afrf",
      ri: 3600,
      raw: "",
    });
  });
});

Deno.test("parseDmarcRecord: syntax", async (t) => {
  await t.step("space around = and ;, a trailing ;, values any case", () => {
    const r = parseDmarcRecord("v = DMARC1 ;\tp = REJECT ; sp=None;ADKIM=x; adkim = S ;");
    assertEquals([r.p, r.sp, r.adkim], ["reject", "none", "s"]);
  });
  await t.step("unknown tags, including differently cased known ones, are ignored", () => {
    const r = parseDmarcRecord("v=DMARC1; p=none; np=reject; t=y; psd=n; Pct=5; X_1=a b c");
    assertEquals([r.p, r.pct, r.sp], ["none", 100, undefined]);
  });
  await t.step("bad values of other tags fall back to the defaults", () => {
    const r = parseDmarcRecord(
      "v=DMARC1; p=none; adkim=relaxed; aspf=; pct=101; fo=2; rf=a..b; ri=-1",
    );
    assertEquals({ ...r, raw: "" }, { ...DEFAULTS, p: "none", raw: "" });
    assertEquals(parseDmarcRecord("v=DMARC1; p=none; pct=1000").pct, 100);
    assertEquals(parseDmarcRecord("v=DMARC1; p=none; pct=007").pct, 7);
    assertEquals(parseDmarcRecord("v=DMARC1; p=none; ri=99999999999").ri, 86400);
    assertEquals(parseDmarcRecord("v=DMARC1; p=none; ri=4294967295").ri, 4294967295);
  });
  await t.step("invalid report URIs are dropped one by one", () => {
    const r = parseDmarcRecord(
      "v=DMARC1; p=none; rua=dmarc@example.com, mailto:ok@example.com , mailto:a b, https://r.example/x%2",
    );
    assertEquals(r.rua, ["mailto:ok@example.com"]);
  });
  await t.step("not starting with v=DMARC1", () => {
    assertThrows(() => parseDmarcRecord("p=reject; v=DMARC1"), DmarcSyntaxError, "v=DMARC1");
  });
  await t.step("no p, or an invalid p or sp, without rua", () => {
    assertThrows(() => parseDmarcRecord("v=DMARC1"), DmarcSyntaxError, "no p= tag");
    assertThrows(() => parseDmarcRecord("v=DMARC1; p=block"), DmarcSyntaxError, "invalid p=");
    assertThrows(() => parseDmarcRecord("v=DMARC1; p=reject; sp=x"), DmarcSyntaxError, "sp=");
    assertThrows(() => parseDmarcRecord("v=DMARC1; P=reject"), DmarcSyntaxError, "no p= tag");
    assertThrows(() => parseDmarcRecord("v=DMARC1; p=nope; rua=nope"), DmarcSyntaxError);
  });
  await t.step("no valid p but a valid rua: p=none (6.6.3 step 6)", () => {
    const raw = "v=DMARC1; p=block; sp=reject; rua=mailto:r@example.com";
    assertEquals(parseDmarcRecord(raw), {
      ...DEFAULTS,
      p: "none",
      rua: ["mailto:r@example.com"],
      raw,
    });
    assertEquals(parseDmarcRecord("v=DMARC1; rua=mailto:r@example.com").p, "none");
  });
});

Deno.test("parseDmarcRecord: hostile records", async (t) => {
  await t.step("duplicate tags make the record unusable (RFC 6376 3.2)", () => {
    assertThrows(() => parseDmarcRecord("v=DMARC1; p=none; p=reject"), DmarcSyntaxError, "p=");
    assertThrows(() => parseDmarcRecord("v=DMARC1; p=none; v=DMARC1"), DmarcSyntaxError);
    assertThrows(() => parseDmarcRecord("v=DMARC1; p=none; pct=x; pct=50"), DmarcSyntaxError);
  });
  await t.step("control characters make a value invalid, never part of one", () => {
    assertThrows(() => parseDmarcRecord("v=DMARC1; p=reject\r\nX: y"), DmarcSyntaxError);
    assertThrows(() => parseDmarcRecord("v=DMARC1; p=re\0ject"), DmarcSyntaxError);
    const r = parseDmarcRecord("v=DMARC1; p=none; rua=mailto:a@example.com\x1b[31m; fo=\x07");
    assertEquals([r.rua, r.fo], [[], "0"]);
  });
  await t.step("8-bit values are invalid", () => {
    assertThrows(() => parseDmarcRecord("v=DMARC1; p=rejéct"), DmarcSyntaxError);
    assertEquals(parseDmarcRecord("v=DMARC1; p=none; rua=mailto:é@example.com").rua, []);
  });
  await t.step("a huge record parses in linear time", () => {
    const many = Array.from({ length: 20000 }, (_, i) => `x${i}=${"a ".repeat(20)}a`).join(";");
    const start = performance.now();
    const r = parseDmarcRecord(
      `v=DMARC1; p=quarantine; ${many}; rua=${"mailto:a@b,".repeat(5000)}`,
    );
    assertEquals([r.p, r.rua.length], ["quarantine", 5000]);
    // A value that almost matches, the worst case for a backtracking pattern.
    parseDmarcRecord(`v=DMARC1; p=none; x=${"a ".repeat(50000)}\x01`);
    assertEquals(performance.now() - start < 2000, true);
  });
  await t.step("a tag without = or without a name is ignored", () => {
    assertEquals(parseDmarcRecord("v=DMARC1; reject; =none; 1p=x; p=none").p, "none");
  });
});
