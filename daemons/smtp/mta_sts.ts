/**
 * MTA-STS (RFC 8461) in the SMTP client, with postwarden_mta_sts = yes:
 * for a next hop that is a domain looked up by MX (not "[host]", not a
 * domain whose smtp_tls_policy_maps entry says what to do), the policy
 * that applies is asked of master.cf's mtasts service
 * (daemons/mtasts). Under a policy in "enforce" mode:
 *
 * - an MX host the policy does not name is skipped: "4.7.5 MX host H is
 *   not named by the MTA-STS policy of D";
 * - the others get STARTTLS with a certificate that chains to
 *   postwarden_mta_sts_CAfile's anchors and is valid for the MX host name
 *   (the verify level with match=hostname), unless DANE authenticates the
 *   host (dane.ts; RFC 8461 section 2: DANE takes precedence);
 * - smtp_fallback_relay is not used: the policy names where the mail may go.
 *
 * A policy in "testing" mode changes nothing but what is reported with
 * smtp_tlsrpt_enable (tlsrpt.ts). When mtasts cannot answer, the mail is deferred: a policy it has
 * cached may be in force, and going on without it would let a network
 * attacker strip it.
 *
 * @module
 */
import { ipcRequest } from "../../lib/ipc/mod.ts";
import { mxMatchesPolicy, type StsPolicy } from "../../lib/mtasts/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import type { SiteTls } from "../../lib/tls/client_policy.ts";
import { SecurityFailure } from "./security.ts";

/** Asks which policy applies to a domain; throws when that cannot be known. */
export type StsLookup = (domain: string) => Promise<StsPolicy | null>;

/** The longest wait for mtasts (it may be fetching the policy: 10 s, and DNS). */
const ANSWER_MS = 30_000;

/** The lookup through the mtasts service, for a daemon's context. */
export function ipcStsLookup(ctx: ServiceContext): StsLookup {
  return async (domain) => {
    const ask = ipcRequest<{ status: string; policy?: StsPolicy | null; text?: string }>(
      ctx.peer("mtasts"),
      { domain },
      { retryMs: 5000 },
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("no answer in time")), ANSWER_MS);
    });
    try {
      const r = await Promise.race([ask, late]);
      if (r.status !== "ok") throw new Error(r.text ?? "error");
      return r.policy ?? null;
    } finally {
      clearTimeout(timer);
    }
  };
}

/** The MTA-STS policy (mode enforce or testing) of the next hop's domain. */
export interface Enforced {
  domain: string;
  policy: StsPolicy;
}

/**
 * The policy the mail for `domain` goes under: one in enforce or testing
 * mode, or null. Throws SecurityFailure when mtasts cannot say.
 */
export async function stsPolicyOf(
  lookup: StsLookup,
  domain: string,
  log: { warn(m: string): void },
): Promise<Enforced | null> {
  let policy: StsPolicy | null;
  try {
    policy = await lookup(domain);
  } catch (e) {
    log.warn(`MTA-STS policy of ${domain}: ${(e as Error).message}`);
    throw new SecurityFailure("4.7.5", `cannot determine the MTA-STS policy of ${domain}`);
  }
  return policy?.mode === "enforce" || policy?.mode === "testing" ? { domain, policy } : null;
}

/**
 * The connection policy of one MX host under an enforced policy: `site`
 * when DANE authenticates the host, else `sts` (verify, match=hostname,
 * the MTA-STS anchors); a host the policy does not name is a failure.
 */
export function enforcedSite(
  e: Enforced,
  host: string,
  site: SiteTls,
  sts: SiteTls,
): SiteTls | SecurityFailure {
  if (!mxMatchesPolicy(e.policy, host)) {
    return new SecurityFailure(
      "4.7.5",
      `MX host ${host} is not named by the MTA-STS policy of ${e.domain}`,
    );
  }
  return site.level === "dane" ? site : sts;
}
