/**
 * The DNS checks behind reject_unknown_helo_hostname and
 * reject_unknown_sender/recipient_domain, as Postfix's dns_lookup_l does
 * them: a host name is known when it has an A, AAAA or MX record (a null
 * MX is fine for a host); a mail domain when it has an MX record, else an
 * A or AAAA record, and a null MX (RFC 7505: "MX 0 .") says it accepts no
 * mail. The types are asked in that order and the first answer ends the
 * search; "retry" means no type answered and at least one failed for now
 * (a time-out, SERVFAIL), "notfound" that each said NXDOMAIN or no data.
 *
 * Numeric names and names that are no valid host name are "notfound"
 * without a query, as Postfix's dns_lookup (so `HELO 1.2.3.4` is unknown).
 * No DNSSEC, no reply filter (smtpd_dns_reply_filter is not supported).
 *
 * The resolver tells the answers apart (lib/dns systemResolver confirms
 * each negative answer): NXDOMAIN and no data are "notfound"; SERVFAIL,
 * REFUSED, a time-out, an unreachable server and a negative answer that
 * could not be confirmed are "retry", as Postfix's DNS_RETRY. A query the
 * sandbox refuses throws DnsNotPermitted.
 */
import { classifyDnsError, type FullResolver } from "../../lib/dns/mod.ts";
import { parseIp } from "../../lib/config/mod.ts";
import { validHostname } from "./restrictions.ts";

/**
 * A DNS query this process may not make (its sandbox has no permission for
 * the name server): a configuration error, never "not listed".
 */
export class DnsNotPermitted extends Error {
  override readonly name = "DnsNotPermitted";
}

/** Rethrows a sandbox refusal as {@link DnsNotPermitted}; other errors are DNS answers. */
export function sandboxed(e: unknown): void {
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    throw new DnsNotPermitted(
      "DNS lookup not permitted by this daemon's sandbox (needs --allow-net to the name server)",
    );
  }
}

/** How a name lookup ended (Postfix's DNS_OK, DNS_NOTFOUND, DNS_RETRY, DNS_NULLMX). */
export type NameStatus = "ok" | "notfound" | "retry" | "nullmx";

type RrType = "A" | "AAAA" | "MX";

async function one(resolver: FullResolver, name: string, type: RrType): Promise<NameStatus> {
  try {
    if (type === "MX") {
      const mx = await resolver.resolveMx(name);
      if (mx.length === 0) return "notfound";
      const isNull = (e: string) => e === "" || e === ".";
      return mx.length === 1 && isNull(mx[0].exchange) ? "nullmx" : "ok";
    }
    const addrs = await (type === "A" ? resolver.resolveA(name) : resolver.resolveAaaa(name));
    return addrs.length > 0 ? "ok" : "notfound";
  } catch (e) {
    sandboxed(e);
    return classifyDnsError(e, name, type).kind === "notfound" ? "notfound" : "retry";
  }
}

/**
 * Postfix's dns_lookup_l with DNS_REQ_FLAG_STOP_OK (and STOP_NULLMX when
 * asked). The types are first asked without confirming negative answers
 * (the resolver's `unconfirmed`): when one answers, how the others failed
 * does not matter, and a name with only an A record costs no TCP query.
 * Only when none answered are the NotFound ones asked again, confirmed.
 */
async function lookupTypes(
  resolver: FullResolver,
  name: string,
  types: RrType[],
  stopNullMx: boolean,
): Promise<NameStatus> {
  if (parseIp(name) !== null || !validHostname(name)) return "notfound";
  const statuses = new Map<RrType, NameStatus>();
  const pass = async (r: FullResolver, which: RrType[]): Promise<NameStatus | null> => {
    for (const type of which) {
      const s = await one(r, name, type);
      statuses.set(type, s);
      if (s === "ok") return "ok";
      if (s === "nullmx" && stopNullMx) return "nullmx";
    }
    return null;
  };
  const fast = resolver.unconfirmed;
  const done = await pass(fast ?? resolver, types) ??
    (fast ? await pass(resolver, types.filter((t) => statuses.get(t) === "notfound")) : null);
  if (done) return done;
  const all = [...statuses.values()];
  if (all.includes("nullmx")) return "nullmx";
  return all.includes("retry") ? "retry" : "notfound";
}

/** reject_unknown_helo_hostname's lookup: A, AAAA, then MX; a null MX counts as known. */
export async function hostStatus(resolver: FullResolver, name: string): Promise<NameStatus> {
  const s = await lookupTypes(resolver, name, ["A", "AAAA", "MX"], false);
  return s === "nullmx" ? "ok" : s;
}

/** reject_unknown_*_domain's lookup: MX (a null MX ends it), then A and AAAA. */
export function mailhostStatus(resolver: FullResolver, name: string): Promise<NameStatus> {
  return lookupTypes(resolver, name, ["MX", "A", "AAAA"], true);
}
