/**
 * Where the mtasts daemon keeps the policies it fetched
 * (postwarden_mta_sts_cache): a Deno KV database, one entry per domain
 * with the record id it was fetched under, expiring with the policy's
 * max_age. A store that cannot be read or written only costs fetches
 * (policy.ts warns); an entry that does not have the expected shape is
 * treated as absent, never trusted.
 *
 * @module
 */
import type { CachedStsPolicy } from "../../lib/mtasts/mod.ts";
import { isDomainName, MAX_AGE_LIMIT } from "../../lib/mtasts/mod.ts";
import type { PolicyStore } from "./policy.ts";

/** A store in memory (tests). */
export function memoryStore(): PolicyStore & { entries: Map<string, CachedStsPolicy> } {
  const entries = new Map<string, CachedStsPolicy>();
  return {
    entries,
    get: (d) => Promise.resolve(entries.get(d) ?? null),
    put: (d, e) => {
      entries.set(d, e);
      return Promise.resolve();
    },
  };
}

/** True for a stored value that is a whole policy entry. */
function wellFormed(v: unknown): v is CachedStsPolicy {
  const e = v as CachedStsPolicy;
  const p = e?.policy;
  return typeof e === "object" && e !== null && typeof e.id === "string" &&
    typeof e.fetchedAt === "number" && typeof p === "object" && p !== null &&
    ["enforce", "testing", "none"].includes(p.mode) && Array.isArray(p.mx) &&
    p.mx.every((m) => typeof m === "string" && isDomainName(m.replace(/^\*\./, ""))) &&
    Number.isInteger(p.maxAge) && p.maxAge >= 0 && p.maxAge <= MAX_AGE_LIMIT;
}

/** A Deno KV store at `path` (opened once; closed with the returned close). */
export async function kvStore(path: string): Promise<PolicyStore & { kv: Deno.Kv; close(): void }> {
  const kv = await Deno.openKv(path);
  return {
    kv,
    async get(domain) {
      const r = await kv.get(["policy", domain]);
      return wellFormed(r.value) ? r.value : null;
    },
    async put(domain, entry) {
      await kv.set(["policy", domain], entry, {
        expireIn: Math.max(1000, entry.policy.maxAge * 1000),
      });
    },
    close: () => kv.close(),
  };
}
