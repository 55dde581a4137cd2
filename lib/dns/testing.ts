/**
 * A table-driven fake {@link Resolver} for tests: names missing from a
 * table answer NotFound (as Deno does for NXDOMAIN), "servfail" answers a
 * temporary error. Records every query in `queries`.
 */
import type { MxRecord, Resolver } from "./mod.ts";

/** An answer: records, or a failure. */
export type Answer<T> = T | "nxdomain" | "servfail";

/** A resolver answering from tables; missing names are NXDOMAIN (NotFound, like Deno). */
export function fakeResolver(zone: {
  mx?: Record<string, Answer<MxRecord[]>>;
  a?: Record<string, Answer<string[]>>;
  aaaa?: Record<string, Answer<string[]>>;
}): Resolver & { queries: string[] } {
  const queries: string[] = [];
  const answer = <T>(table: Record<string, Answer<T>> | undefined, name: string, type: string) => {
    queries.push(`${type} ${name}`);
    const v = table?.[name];
    if (v === undefined || v === "nxdomain") {
      return Promise.reject(new Deno.errors.NotFound(`no records found for ${name} ${type}`));
    }
    if (v === "servfail") return Promise.reject(new Error("SERVFAIL"));
    return Promise.resolve(v);
  };
  return {
    queries,
    resolveMx: (n) => answer(zone.mx, n, "MX"),
    resolveA: (n) => answer(zone.a, n, "A"),
    resolveAaaa: (n) => answer(zone.aaaa, n, "AAAA"),
  };
}
