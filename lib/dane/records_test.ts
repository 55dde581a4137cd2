/**
 * Tests of the TLSA owner name, the usable-record filter of RFC 7672
 * 3.1.3 with digest agility (RFC 7671 9), the presentation form, and the
 * host name pattern rule shared with lib/mtasts.
 */
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { hostnameMatches } from "./cert.ts";
import { tlsaName, type TlsaRecord, tlsaText, usableTlsa } from "./records.ts";

const rec = (usage: number, selector: number, matchingType: number, len: number): TlsaRecord => ({
  usage,
  selector,
  matchingType,
  data: new Uint8Array(len).fill(0xab),
});

Deno.test("lib/dane records", async (t) => {
  await t.step("tlsaName: _port._tcp. before the normalised base domain", () => {
    assertEquals(tlsaName("MX1.Example.COM."), "_25._tcp.mx1.example.com");
    assertEquals(tlsaName("mx.example.com", 587), "_587._tcp.mx.example.com");
  });

  await t.step("usableTlsa: only DANE-TA and DANE-EE, known selectors and matching types", () => {
    const good = [rec(3, 1, 1, 32), rec(2, 0, 2, 64), rec(3, 0, 0, 300), rec(2, 1, 0, 91)];
    const bad = [
      rec(0, 0, 1, 32), // PKIX-TA
      rec(1, 1, 1, 32), // PKIX-EE
      rec(4, 1, 1, 32), // unknown usage
      rec(255, 1, 1, 32), // PrivCert
      rec(3, 2, 1, 32), // unknown selector
      rec(3, 1, 3, 32), // unknown matching type
      rec(3, 1, 1, 31), // SHA-256 of the wrong length
      rec(3, 1, 1, 64),
      rec(3, 1, 2, 32), // SHA-512 of the wrong length
      rec(3, 1, 0, 0), // Full without data
      rec(3, 1, 1, 0),
    ];
    assertEquals(usableTlsa([...bad, ...good]), good);
    assertEquals(usableTlsa(bad), []);
  });

  await t.step(
    "usableTlsa: a SHA-512 record retires SHA-256 ones of its usage and selector",
    () => {
      const s256 = rec(3, 1, 1, 32);
      const s512 = rec(3, 1, 2, 64);
      const full = rec(3, 1, 0, 91);
      const other = rec(3, 0, 1, 32); // another selector: not affected
      const ta = rec(2, 1, 1, 32); // another usage: not affected
      assertEquals(usableTlsa([s256, s512, full, other, ta]), [s512, full, other, ta]);
      assertEquals(usableTlsa([s256, other]), [s256, other]);
      // A malformed SHA-512 record does not retire anything.
      assertEquals(usableTlsa([s256, rec(3, 1, 2, 63)]), [s256]);
    },
  );

  await t.step("tlsaText: the presentation form, hex in upper case", () => {
    const r: TlsaRecord = {
      usage: 3,
      selector: 1,
      matchingType: 1,
      data: new Uint8Array([0, 0xab, 0x1f]),
    };
    assertEquals(tlsaText(r), "3 1 1 00AB1F");
    assertEquals(tlsaText({ ...r, data: new Uint8Array() }), "3 1 1");
  });

  await t.step("hostnameMatches: exact names and one-label wildcards (RFC 6125 6.4.3)", () => {
    const yes: [string, string][] = [
      ["mx.example.com", "mx.example.com"],
      ["MX.Example.com.", "mx.EXAMPLE.com"],
      ["*.example.com", "mx.example.com"],
      ["*.example.com.", "MX.example.com."],
    ];
    const no: [string, string][] = [
      ["*.example.com", "example.com"],
      ["*.example.com", "a.b.example.com"],
      ["*.example.com", ".example.com"],
      ["*.com", "example.com"], // a wildcard over a single label
      ["*", "example.com"],
      ["m*.example.com", "mx.example.com"], // partial wildcards are not honoured
      ["*.*.example.com", "a.b.example.com"],
      ["mx.*.com", "mx.example.com"],
      ["example.com", "*.example.com"], // the reference is never a pattern
      ["*.example.com", "*.example.com"],
      ["mx.example.com", "mx.example.com.evil"],
      ["", ""],
    ];
    for (const [p, r] of yes) assert(hostnameMatches(p, r), `${p} ~ ${r}`);
    for (const [p, r] of no) assert(!hostnameMatches(p, r), `${p} !~ ${r}`);
  });
});
