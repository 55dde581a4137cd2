/**
 * A resolver that keeps each answer for as long as its TTL says, for the
 * lookups mail authentication repeats from message to message (SPF, DKIM
 * keys, DMARC and ARC records of the same sending domains). Deno's
 * resolver gives no TTLs, so every lookup here is asked over TCP by
 * confirm.ts (the query systemResolver makes to confirm a negative
 * answer): records come with their TTLs, NXDOMAIN and no data with the
 * SOA's negative TTL (RFC 2308 section 5).
 *
 * - Records are kept for their smallest TTL, at most {@link CachingOptions.maxTtlS};
 *   a TTL of 0 is not kept (RFC 1035 3.2.1).
 * - NXDOMAIN and no data are kept for the negative TTL, at most
 *   {@link CachingOptions.maxNegativeTtlS} (RFC 2308 section 5 suggests
 *   one to three hours); an answer without a SOA record is not kept.
 * - Temporary failures (SERVFAIL, a time-out, no name server) are never
 *   kept: the next lookup asks again.
 * - Concurrent lookups of one name and type share one query; at most
 *   {@link CachingOptions.maxEntries} answers are kept, the least recently
 *   used going first.
 *
 * No `unconfirmed` variant: every answer here is classified.
 *
 * @module
 */
import { type Confirmation, confirmNegative } from "./confirm.ts";
import {
  confirmedRecords,
  type FullResolver,
  fullResolver,
  outageWarner,
  type SystemResolverOptions,
} from "./mod.ts";
import type { RrType } from "./wire.ts";

/** Options for {@link cachingResolver}. */
export interface CachingOptions extends SystemResolverOptions {
  /** Answers kept at most. @default 10000 */
  maxEntries?: number;
  /** Longest time records are kept, seconds. @default 86400 */
  maxTtlS?: number;
  /** Longest time a negative answer is kept, seconds. @default 3600 */
  maxNegativeTtlS?: number;
  /** The clock of the TTLs, ms (not of the time limit). @default Date.now */
  now?: () => number;
  /** The TCP lookup. @default confirm.ts confirmNegative */
  ask?: typeof confirmNegative;
}

interface Entry {
  answer: Confirmation;
  expires: number;
}

/** How long an answer may be kept, ms (0: not at all). */
function keepMs(c: Confirmation, maxTtlS: number, maxNegativeTtlS: number): number {
  if (c.status === "records") {
    const ttl = Math.min(...c.records.map((r) => r.ttl));
    return Math.min(ttl, maxTtlS) * 1000;
  }
  if ((c.status === "nxdomain" || c.status === "nodata") && c.ttl !== undefined) {
    return Math.min(c.ttl, maxNegativeTtlS) * 1000;
  }
  return 0;
}

/** A {@link FullResolver} whose answers are kept for their TTLs. */
export function cachingResolver(
  opts: CachingOptions = {},
): FullResolver & { readonly size: number; readonly queries: number } {
  const maxEntries = opts.maxEntries ?? 10_000;
  const maxTtlS = opts.maxTtlS ?? 86_400;
  const maxNegativeTtlS = opts.maxNegativeTtlS ?? 3600;
  const now = opts.now ?? Date.now;
  const ask = opts.ask ?? confirmNegative;
  const noteOutage = outageWarner(opts.warn);
  const entries = new Map<string, Entry>();
  const pending = new Map<string, Promise<Confirmation>>();
  const stats = { queries: 0 };

  const fetch = (name: string, type: RrType, key: string): Promise<Confirmation> => {
    let p = pending.get(key);
    if (p) return p;
    stats.queries++;
    const start = now();
    p = ask(name, type, {
      nameServer: opts.nameServer,
      resolvConf: opts.resolvConf,
      deadline: opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs,
    }).then((c) => {
      noteOutage(c);
      const ms = keepMs(c, maxTtlS, maxNegativeTtlS);
      if (ms > 0) {
        entries.set(key, { answer: c, expires: start + ms });
        while (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
      }
      return c;
    }).finally(() => pending.delete(key));
    pending.set(key, p);
    return p;
  };

  const lookup = async (name: string, type: RrType) => {
    const key = `${type} ${name.toLowerCase().replace(/\.$/, "")}`;
    const hit = entries.get(key);
    let c: Confirmation;
    if (hit && hit.expires > now()) {
      // Most recently used last: the first key is the one to drop.
      entries.delete(key);
      entries.set(key, hit);
      c = hit.answer;
    } else {
      if (hit) entries.delete(key);
      c = await fetch(name, type, key);
    }
    return structuredClone(confirmedRecords(c, name, type));
  };

  return {
    ...fullResolver(lookup),
    get size() {
      return entries.size;
    },
    get queries() {
      return stats.queries;
    },
  };
}
