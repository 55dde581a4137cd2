/**
 * The mtasts daemon's answer to "which MTA-STS policy applies to mail for
 * this domain now?" (RFC 8461 section 5.1), from the domain's
 * "_mta-sts" TXT record, the policy cache and, when those say so, a
 * fetch over HTTPS (lib/mtasts):
 *
 * - the cached policy while it is fresh and the record's id is the same
 *   (or the record is gone or cannot be looked up: section 8.3);
 * - otherwise a fetch; a fetched policy is stored under the record's id
 *   until its max_age ends; a failed fetch falls back to the cached
 *   policy if it is still fresh, else to none (the domain is then treated
 *   as one without MTA-STS, section 5.1) and is not tried again for
 *   {@link RETRY_AFTER_MS}, so that a broken policy server is not asked
 *   once per message;
 * - mode "none" is no policy.
 *
 * Concurrent questions about one domain share one lookup and fetch.
 * Nothing here does I/O itself: the TXT lookup, the fetch, the store and
 * the clock are given (main.ts binds them to lib/dns, lib/mtasts's
 * addressFetch and Deno KV).
 *
 * @module
 */
import {
  type CachedStsPolicy,
  parseStsRecord,
  stsCacheDecision,
  type StsPolicy,
  type StsRecordLookup,
} from "../../lib/mtasts/mod.ts";
import { DnsError } from "../../lib/dns/mod.ts";

/** After a failed fetch, the domain's policy is not fetched again for this long. */
export const RETRY_AFTER_MS = 5 * 60_000;

/** Where fetched policies are kept (store.ts: Deno KV; a Map in tests). */
export interface PolicyStore {
  get(domain: string): Promise<CachedStsPolicy | null>;
  put(domain: string, entry: CachedStsPolicy): Promise<void>;
}

/** What the resolver needs from the outside. */
export interface PolicyIo {
  /** The TXT records of a name (lib/dns FullResolver.resolveTxt); DnsError when there are none. */
  txt(name: string): Promise<string[][]>;
  /** The domain's policy over HTTPS (lib/mtasts fetchStsPolicy); throws when it cannot be had. */
  fetch(domain: string): Promise<StsPolicy>;
  store: PolicyStore;
  now?: () => number;
  log: { info(m: string): void; warn(m: string): void };
}

/** The answer: the policy that applies (never mode "none"), or null. */
export interface PolicyAnswer {
  policy: StsPolicy | null;
  /** How it was found, for the log and the client: cache, fetched, fallback, none. */
  source: "cache" | "fetched" | "fallback" | "none";
}

/** Answers policy questions; one per daemon process. */
export class PolicyResolver {
  readonly #inFlight = new Map<string, Promise<PolicyAnswer>>();
  readonly #failedUntil = new Map<string, number>();
  readonly #now: () => number;

  constructor(private readonly io: PolicyIo) {
    this.#now = io.now ?? Date.now;
  }

  /** The policy for `domain` (lower case, no trailing dot: the caller checks it). */
  policyFor(domain: string): Promise<PolicyAnswer> {
    let p = this.#inFlight.get(domain);
    if (!p) {
      p = this.#resolve(domain).finally(() => this.#inFlight.delete(domain));
      this.#inFlight.set(domain, p);
    }
    return p;
  }

  async #record(domain: string): Promise<StsRecordLookup> {
    try {
      return parseStsRecord(await this.io.txt(`_mta-sts.${domain}`));
    } catch (e) {
      if (e instanceof DnsError && e.kind === "notfound") return null;
      this.io.log.warn(`${domain}: MTA-STS record lookup failed: ${(e as Error).message}`);
      return "error";
    }
  }

  async #resolve(domain: string): Promise<PolicyAnswer> {
    const now = this.#now();
    const [record, cached] = await Promise.all([
      this.#record(domain),
      this.io.store.get(domain).catch((e) => {
        this.io.log.warn(`${domain}: MTA-STS policy cache: ${(e as Error).message}`);
        return null;
      }),
    ]);
    const d = stsCacheDecision(cached, record, now);
    if (d.action === "none") return { policy: null, source: "none" };
    if (d.action === "use") return applied(d.policy, "cache");
    const failedUntil = this.#failedUntil.get(domain) ?? 0;
    if (now < failedUntil) return applied(d.fallback, "fallback");
    let policy: StsPolicy;
    try {
      policy = await this.io.fetch(domain);
    } catch (e) {
      this.#failedUntil.set(domain, now + RETRY_AFTER_MS);
      const keeps = d.fallback ? `; the cached ${d.fallback.mode} policy stays` : "";
      this.io.log.warn(`${domain}: MTA-STS policy fetch failed: ${(e as Error).message}${keeps}`);
      return applied(d.fallback, "fallback");
    }
    this.#failedUntil.delete(domain);
    const id = (record as { id: string }).id;
    try {
      await this.io.store.put(domain, { id, policy, fetchedAt: now });
    } catch (e) {
      this.io.log.warn(`${domain}: MTA-STS policy cache: ${(e as Error).message}`);
    }
    this.io.log.info(
      `${domain}: MTA-STS policy id=${id} mode=${policy.mode} max_age=${policy.maxAge}` +
        (policy.mx.length ? ` mx=${policy.mx.join(",")}` : ""),
    );
    return applied(policy, "fetched");
  }
}

function applied(policy: StsPolicy | null, source: PolicyAnswer["source"]): PolicyAnswer {
  if (!policy || policy.mode === "none") return { policy: null, source: policy ? source : "none" };
  return { policy, source };
}
