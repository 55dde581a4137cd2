/**
 * The MTA-STS policy cache rules of RFC 8461 (sections 3, 5.1 and 8.3) as one
 * pure decision: given what is cached for a domain and what its TXT record
 * says now, use the cached policy, fetch a new one (and what to fall back
 * on when that fails), or go on without a policy.
 *
 * - A cached policy lives max_age seconds from its fetch. While it lives
 *   it applies even when the TXT record is gone or cannot be looked up
 *   (removing MTA-STS takes a "mode: none" policy under a new id,
 *   section 8.3), and is kept when a refetch fails.
 * - A TXT id other than the cached one asks for a fetch.
 * - An expired policy is never used: without a record there is no policy,
 *   with one it must be fetched again, and if that fails there is none.
 *
 * The store (Deno KV or another) is the caller's: after a successful fetch
 * it saves `{ id: record.id, policy, fetchedAt: now }`. Does not: refresh
 * policies ahead of expiry in the background, rate-limit fetches after a
 * failure, or check for a new policy before a permanent failure (section
 * 5.1 step 3): the caller does these.
 *
 * @module
 */
import type { StsPolicy } from "./policy.ts";

/** A cached policy: the TXT id it was fetched under and when (ms since the epoch). */
export interface CachedStsPolicy {
  id: string;
  policy: StsPolicy;
  fetchedAt: number;
}

/** What the TXT lookup gave: a valid record, none (or no valid one), or a temporary failure. */
export type StsRecordLookup = { id: string } | null | "error";

/** What to do; see the module comment. */
export type StsCacheDecision =
  /** Apply the cached policy; no fetch. */
  | { action: "use"; policy: StsPolicy }
  /** Fetch the policy; when that fails, apply `fallback` (null: no policy). */
  | { action: "fetch"; fallback: StsPolicy | null }
  /** No policy applies: deliver as to a domain without MTA-STS. */
  | { action: "none" };

/** True while the cached policy is within its max_age at `now` (ms). */
export function stsPolicyFresh(cached: CachedStsPolicy, now: number): boolean {
  return now < cached.fetchedAt + cached.policy.maxAge * 1000;
}

/** The cache decision for one domain (see the module comment). */
export function stsCacheDecision(
  cached: CachedStsPolicy | null,
  record: StsRecordLookup,
  now: number,
): StsCacheDecision {
  const live = cached && stsPolicyFresh(cached, now) ? cached : null;
  if (record === null || record === "error") {
    return live ? { action: "use", policy: live.policy } : { action: "none" };
  }
  if (live && live.id === record.id) return { action: "use", policy: live.policy };
  return { action: "fetch", fallback: live?.policy ?? null };
}
