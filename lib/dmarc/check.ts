/**
 * DMARC evaluation (RFC 7489 sections 3.1, 6.6.2 to 6.6.4): policy
 * discovery in the DNS, identifier alignment of the SPF and DKIM results
 * the caller already has, and the disposition the policy asks for.
 *
 * Discovery makes at most two TXT queries: _dmarc.<from domain>, and when
 * that has no DMARC record (NXDOMAIN, no data, or no TXT record starting
 * with v=DMARC1) _dmarc.<organizational domain>. Several DMARC records at
 * the name that answered mean no policy (result none); a record that
 * cannot be used is a permerror (section 11.2), a temporary DNS failure a
 * temperror.
 *
 * No I/O but through the injected resolver; the random number for pct
 * sampling is injected too.
 *
 * @module
 */
import { DnsError, type FullResolver } from "../dns/mod.ts";
import type { SpfResultCode } from "../spf/mod.ts";
import { canonicalDomain, isDnsName, organizationalDomain } from "./domain.ts";
import {
  type DmarcPolicy,
  type DmarcRecord,
  DmarcSyntaxError,
  isDmarcRecord,
  parseDmarcRecord,
} from "./record.ts";

/** What DMARC is asked to evaluate: the author domain and the results of SPF and DKIM. */
export interface DmarcInput {
  /** The RFC5322.From domain (see authorDomain). */
  fromDomain: string;
  /** The SPF result and the domain SPF checked (MAIL FROM domain, or HELO for a null sender). */
  spf?: { result: SpfResultCode; domain: string };
  /** Each DKIM signature's result ("pass", "fail", ...) and its d= domain. */
  dkim: { result: string; domain: string }[];
  /** Resolver for the _dmarc TXT queries. */
  resolver: Pick<FullResolver, "resolveTxt">;
  /** Uniform in [0, 1), for pct sampling. @default Math.random */
  random?: () => number;
}

/** The outcome of {@link checkDmarc}. */
export interface DmarcResult {
  /** The DMARC result, as in Authentication-Results (RFC 7489 section 11.2). */
  result: "pass" | "fail" | "none" | "temperror" | "permerror";
  /**
   * The policy to apply: the record's p (or sp for subdomains) when result
   * is fail, after pct sampling (pct miss: the next lower policy, per RFC
   * 7489 6.6.4: reject→quarantine, quarantine→none); "none" otherwise.
   */
  disposition: DmarcPolicy;
  /** The published p or sp that applied, before pct; set when a usable record was found. */
  policy?: DmarcPolicy;
  /** The From domain, canonical (lower case, no trailing dot, A-labels). */
  fromDomain: string;
  /** Where the record was found: the From domain or its organizational domain. */
  policyDomain?: string;
  /** An SPF pass for a domain aligned with the From domain (false when no record was evaluated). */
  spfAligned: boolean;
  /** A DKIM pass with a d= aligned with the From domain (false when no record was evaluated). */
  dkimAligned: boolean;
  /** What happened, in words. */
  reason: string;
}

/** What one _dmarc query found; "absent" (no DMARC record) sends discovery on. */
type Discovery =
  | { kind: "absent" | "none" | "temperror" | "permerror"; reason: string; domain?: string }
  | { kind: "record"; domain: string; record: DmarcRecord };

const LOWER: Record<DmarcPolicy, DmarcPolicy> = {
  reject: "quarantine",
  quarantine: "none",
  none: "none",
};

/**
 * Evaluates DMARC for a message: finds the From domain's policy, checks
 * whether an SPF or DKIM pass is aligned with it, and says what the policy
 * asks for. Never throws for DNS or record problems; those are results.
 */
export async function checkDmarc(input: DmarcInput): Promise<DmarcResult> {
  const fromDomain = canonicalDomain(input.fromDomain);
  const base = { fromDomain, spfAligned: false, dkimAligned: false, disposition: "none" as const };
  if (!isDnsName(fromDomain)) {
    return { ...base, result: "none", reason: "the From domain is not a domain name" };
  }
  const orgDomain = organizationalDomain(fromDomain);
  let found = await discover(input.resolver, fromDomain);
  if (found.kind === "absent" && orgDomain !== fromDomain) {
    found = await discover(input.resolver, orgDomain);
    if (found.kind === "absent") {
      found.reason = `no DMARC record at _dmarc.${fromDomain} or _dmarc.${orgDomain}`;
    }
  }
  if (found.kind !== "record") {
    const result = found.kind === "absent" ? "none" : found.kind;
    const where = found.domain === undefined ? {} : { policyDomain: found.domain };
    return { ...base, ...where, result, reason: found.reason };
  }

  const { record, domain: policyDomain } = found;
  const aligned = (domain: string, mode: "r" | "s") => {
    const d = canonicalDomain(domain);
    return d !== "" && (mode === "s" ? d === fromDomain : organizationalDomain(d) === orgDomain);
  };
  const spfAligned = input.spf?.result === "pass" && aligned(input.spf.domain, record.aspf);
  const dkimAligned = input.dkim.some((s) =>
    s.result === "pass" && aligned(s.domain, record.adkim)
  );
  const policy = policyDomain !== fromDomain ? record.sp ?? record.p : record.p;
  const evaluated = { ...base, policy, policyDomain, spfAligned, dkimAligned };
  if (spfAligned || dkimAligned) {
    const which = [dkimAligned && "DKIM", spfAligned && "SPF"].filter(Boolean).join(" and ");
    return { ...evaluated, result: "pass", reason: `aligned ${which} pass for ${fromDomain}` };
  }
  const sampled = record.pct >= 100 || (input.random ?? Math.random)() * 100 < record.pct;
  const disposition = sampled ? policy : LOWER[policy];
  const why =
    `no aligned SPF or DKIM pass for ${fromDomain}, policy ${policy} from ${policyDomain}`;
  return {
    ...evaluated,
    result: "fail",
    disposition,
    reason: sampled ? why : `${why}, not applied (pct=${record.pct}): ${disposition} instead`,
  };
}

/** RFC 7489 6.6.3 steps 1, 2, 5 and 6 for one name. */
async function discover(resolver: DmarcInput["resolver"], domain: string): Promise<Discovery> {
  const name = `_dmarc.${domain}`;
  let txt: string[][];
  try {
    txt = await resolver.resolveTxt(name);
  } catch (e) {
    if (e instanceof DnsError && e.kind === "notfound") {
      return { kind: "absent", reason: `no DMARC record at ${name}` };
    }
    const why = e instanceof Error ? e.message : String(e);
    return { kind: "temperror", reason: `DNS failure looking up ${name}: ${why}` };
  }
  const records = txt.map((strings) => strings.join("")).filter(isDmarcRecord);
  if (records.length === 0) return { kind: "absent", reason: `no DMARC record at ${name}` };
  if (records.length > 1) {
    return { kind: "none", reason: `${records.length} DMARC records at ${name}, none applies` };
  }
  try {
    return { kind: "record", domain, record: parseDmarcRecord(records[0]) };
  } catch (e) {
    if (!(e instanceof DmarcSyntaxError)) throw e;
    return { kind: "permerror", domain, reason: `unusable DMARC record at ${name}: ${e.message}` };
  }
}
