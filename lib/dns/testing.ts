/**
 * A table-driven fake {@link FullResolver} for tests, failing the way the
 * system resolver does: names missing from a table, and "nxdomain", throw
 * a permanent DnsError (NXDOMAIN), "nodata" a permanent one for no records
 * of that type, "servfail" a temporary DnsError, "timeout" Deno's TimedOut
 * error. Records every query in `queries`.
 */
import { DnsError, type FullResolver, type MxRecord } from "./mod.ts";

/** An answer: records, or a failure. */
export type Answer<T> = T | "nxdomain" | "nodata" | "servfail" | "timeout";

/** A resolver answering from tables; missing names are NXDOMAIN. */
export function fakeResolver(zone: {
  mx?: Record<string, Answer<MxRecord[]>>;
  a?: Record<string, Answer<string[]>>;
  aaaa?: Record<string, Answer<string[]>>;
  txt?: Record<string, Answer<string[][]>>;
  ptr?: Record<string, Answer<string[]>>;
  ns?: Record<string, Answer<string[]>>;
}): FullResolver & { queries: string[] } {
  const queries: string[] = [];
  const answer = <T>(table: Record<string, Answer<T>> | undefined, name: string, type: string) => {
    queries.push(`${type} ${name}`);
    const v = table && Object.hasOwn(table, name) ? table[name] : undefined;
    if (v === undefined || v === "nxdomain") {
      return Promise.reject(new DnsError("notfound", name, type, "Host not found", "nxdomain"));
    }
    if (v === "nodata") {
      return Promise.reject(
        new DnsError(
          "notfound",
          name,
          type,
          "Host found but no data record of requested type",
          "nodata",
        ),
      );
    }
    if (v === "servfail") {
      return Promise.reject(
        new DnsError("temporary", name, type, "Host not found, try again", "servfail"),
      );
    }
    if (v === "timeout") return Promise.reject(new Deno.errors.TimedOut(`${name} ${type}`));
    return Promise.resolve(v);
  };
  return {
    queries,
    resolveMx: (n) => answer(zone.mx, n, "MX"),
    resolveA: (n) => answer(zone.a, n, "A"),
    resolveAaaa: (n) => answer(zone.aaaa, n, "AAAA"),
    resolveTxt: (n) => answer(zone.txt, n, "TXT"),
    resolvePtr: (n) => answer(zone.ptr, n, "PTR"),
    resolveNs: (n) => answer(zone.ns, n, "NS"),
  };
}
