/**
 * The DANE decision table (RFC 7672 2.2, Postfix's dane level and
 * smtp_tls_dane_insecure_mx_policy) and the TLSA base domain order of
 * lookupTlsa, with a table-driven fake resolver.
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { DnsError } from "../dns/mod.ts";
import {
  type DaneFacts,
  daneLevel,
  type DaneLevelOptions,
  lookupTlsa,
  type TlsaLookup,
} from "./level.ts";
import type { TlsaRecord } from "./records.ts";
import type { SecureAnswer } from "./resolver.ts";

const EE: TlsaRecord = { usage: 3, selector: 1, matchingType: 1, data: new Uint8Array(32) };
const PKIX: TlsaRecord = { usage: 1, selector: 1, matchingType: 1, data: new Uint8Array(32) };
const secure: TlsaLookup = { kind: "records", secure: true, records: [EE, PKIX], base: "mx.test" };
const insecure: TlsaLookup = { ...secure, secure: false };
const unusable: TlsaLookup = { ...secure, records: [PKIX] };
const none: TlsaLookup = { kind: "none" };
const error: TlsaLookup = { kind: "error", reason: "SERVFAIL" };

Deno.test("lib/dane daneLevel: the decision table", () => {
  const rows: [DaneFacts["mxSecure"], boolean, TlsaLookup, DaneLevelOptions, string][] = [
    // mxSecure, hostSecure, TLSA, options -> level
    [true, true, secure, {}, "dane"],
    [null, true, secure, {}, "dane"], // no MX: the domain's own host
    [true, true, unusable, {}, "encrypt"],
    [true, true, insecure, {}, "may"],
    [true, true, none, {}, "may"],
    [true, true, error, {}, "defer"],
    [true, false, secure, {}, "may"], // an unsigned host: its TLSA records mean nothing
    [true, false, error, {}, "may"], // ...nor does their failure
    [false, true, secure, {}, "dane"], // insecure MX, smtp_tls_dane_insecure_mx_policy = dane
    [false, true, error, {}, "defer"],
    [false, true, secure, { insecureMx: "encrypt" }, "encrypt"],
    [false, true, none, { insecureMx: "encrypt" }, "may"],
    [false, true, secure, { insecureMx: "may" }, "may"],
    [false, true, error, { insecureMx: "may" }, "may"],
    [true, true, secure, { insecureMx: "may" }, "dane"],
    [null, true, error, { insecureMx: "may" }, "defer"],
  ];
  for (const [mxSecure, hostSecure, tlsa, opts, want] of rows) {
    const got = daneLevel({ mxSecure, hostSecure, tlsa }, opts);
    assertEquals(got.level, want, JSON.stringify({ mxSecure, hostSecure, tlsa: tlsa.kind, opts }));
  }
  assertEquals(daneLevel({ mxSecure: true, hostSecure: true, tlsa: secure }), {
    level: "dane",
    records: [EE],
  });
});

Deno.test("lib/dane lookupTlsa: the CNAME-expanded base domain first, then the host", async (t) => {
  const asked: string[] = [];
  const answers: Record<string, SecureAnswer<TlsaRecord> | DnsError> = {
    "_25._tcp.real.test": { records: [EE], secure: true, name: "_25._tcp.real.test" },
    "_25._tcp.host.test": { records: [EE], secure: false, name: "_25._tcp.host.test" },
    "_25._tcp.broken.test": new DnsError(
      "temporary",
      "_25._tcp.broken.test",
      "TLSA",
      "Host not found, try again",
      "servfail",
    ),
  };
  const resolver = {
    tlsa: (name: string) => {
      asked.push(name);
      const a = answers[name] ??
        new DnsError("notfound", name, "TLSA", "Host not found", "nxdomain");
      return a instanceof DnsError ? Promise.reject(a) : Promise.resolve(a);
    },
  };
  await t.step("found at the canonical name", async () => {
    asked.length = 0;
    const got = await lookupTlsa(resolver, "host.test", { canonical: "real.test" });
    assertEquals(got, { kind: "records", secure: true, records: [EE], base: "real.test" });
    assertEquals(asked, ["_25._tcp.real.test"]);
  });
  await t.step("none at the canonical name: the host name", async () => {
    asked.length = 0;
    const got = await lookupTlsa(resolver, "HOST.test.", { canonical: "nothing.test" });
    assertEquals(got, { kind: "records", secure: false, records: [EE], base: "host.test" });
    assertEquals(asked, ["_25._tcp.nothing.test", "_25._tcp.host.test"]);
  });
  await t.step("no CNAME, another port, nothing anywhere", async () => {
    asked.length = 0;
    assertEquals(await lookupTlsa(resolver, "none.test", { port: 587, canonical: "none.test" }), {
      kind: "none",
    });
    assertEquals(asked, ["_587._tcp.none.test"]);
  });
  await t.step(
    "a failure at the canonical name is an error, not a reason to ask elsewhere",
    async () => {
      asked.length = 0;
      const got = await lookupTlsa(resolver, "host.test", { canonical: "broken.test" });
      assertEquals(got.kind, "error");
      assertEquals(asked, ["_25._tcp.broken.test"]);
    },
  );
});
