/**
 * postscreen's memory of clients that passed (Postfix's postscreen_cache_map):
 * per client address, until when each test's pass holds. Kept in a Deno KV
 * database (one file, SQLite: several postscreen processes share it); an
 * entry expires postscreen_cache_retention_time after its last pass does,
 * and Deno KV removes it then.
 *
 * A cache that cannot be read or written is only slower: the client is
 * tested again (logged once per outage).
 *
 * @module
 */

/** Until when (ms since the epoch) each test's pass holds. */
export interface CacheEntry {
  greet: number;
  dnsbl: number;
}

/** Where entries are kept: {@link kvCache}, or a Map in tests. */
export interface ScreenCache {
  get(addr: string): Promise<CacheEntry | null>;
  put(addr: string, entry: CacheEntry): Promise<void>;
  close(): void;
}

/** A cache in memory (tests; and when the KV file cannot be opened). */
export function memoryCache(now: () => number = Date.now): ScreenCache {
  const m = new Map<string, CacheEntry>();
  return {
    get: (addr) => {
      const e = m.get(addr);
      return Promise.resolve(e && Math.max(e.greet, e.dnsbl) > now() ? e : null);
    },
    put: (addr, entry) => {
      m.set(addr, entry);
      return Promise.resolve();
    },
    close: () => m.clear(),
  };
}

/** A Deno KV cache at `path`; `warn` is told when it fails (once until it works again). */
export async function kvCache(
  path: string,
  retentionMs: number,
  warn: (msg: string) => void,
  now: () => number = Date.now,
): Promise<ScreenCache> {
  const kv = await Deno.openKv(path);
  let failing = false;
  const failed = (e: unknown) => {
    if (!failing) warn(`postscreen cache ${path}: ${(e as Error).message}`);
    failing = true;
  };
  return {
    async get(addr) {
      try {
        const r = await kv.get<CacheEntry>(["client", addr]);
        failing = false;
        const e = r.value;
        if (!e || typeof e.greet !== "number" || typeof e.dnsbl !== "number") return null;
        return e;
      } catch (e) {
        failed(e);
        return null;
      }
    },
    async put(addr, entry) {
      const until = Math.max(entry.greet, entry.dnsbl) - now() + retentionMs;
      try {
        await kv.set(["client", addr], entry, { expireIn: Math.max(1000, until) });
        failing = false;
      } catch (e) {
        failed(e);
      }
    },
    close: () => kv.close(),
  };
}
