/** The MTA-STS cache decision table (RFC 8461 3, 5.1, 8.3), with a clock that is just a number. */
import { assertEquals } from "../../tests/helpers/assert.ts";
import {
  type CachedStsPolicy,
  type StsCacheDecision,
  stsCacheDecision,
  type StsRecordLookup,
} from "./cache.ts";
import type { StsPolicy } from "./policy.ts";

const POLICY: StsPolicy = { mode: "enforce", mx: ["mx.example.com"], maxAge: 86400 };
const FETCHED = 1_700_000_000_000;
const cached: CachedStsPolicy = { id: "v1", policy: POLICY, fetchedAt: FETCHED };
const FRESH = FETCHED + 3600_000; // an hour later
const EXPIRED = FETCHED + 86400_000; // max_age later: expired at that very moment

Deno.test("lib/mtasts stsCacheDecision", () => {
  const use: StsCacheDecision = { action: "use", policy: POLICY };
  const rows: [CachedStsPolicy | null, StsRecordLookup, number, StsCacheDecision][] = [
    // Nothing cached
    [null, { id: "v1" }, FRESH, { action: "fetch", fallback: null }],
    [null, null, FRESH, { action: "none" }],
    [null, "error", FRESH, { action: "none" }],
    // A fresh cache
    [cached, { id: "v1" }, FRESH, use], // same id: no fetch
    [cached, { id: "v2" }, FRESH, { action: "fetch", fallback: POLICY }], // new id: fetch, keep on failure
    [cached, null, FRESH, use], // record gone: the policy lives until max_age
    [cached, "error", FRESH, use],
    // An expired cache is never used
    [cached, { id: "v1" }, EXPIRED, { action: "fetch", fallback: null }],
    [cached, { id: "v2" }, EXPIRED, { action: "fetch", fallback: null }],
    [cached, null, EXPIRED, { action: "none" }],
    [cached, "error", EXPIRED + 1, { action: "none" }],
    // max_age 0: never fresh
    [{ ...cached, policy: { ...POLICY, maxAge: 0 } }, { id: "v1" }, FETCHED, {
      action: "fetch",
      fallback: null,
    }],
  ];
  for (const [c, record, now, want] of rows) {
    assertEquals(
      stsCacheDecision(c, record, now),
      want,
      JSON.stringify({ c: !!c, record, now: now - FETCHED }),
    );
  }
});
