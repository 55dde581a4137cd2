/**
 * Address resolution, the part of Postfix's trivial-rewrite that qmgr
 * needs: which transport delivers a recipient, and to which next hop.
 * Pure: takes the address and the parameter values.
 *
 * Order (Postfix's, for the classes implemented here): a domain in
 * `mydestination` goes to `local_transport`; anything else goes to
 * `default_transport`, to `relayhost` when set, else to the domain itself
 * (MX lookup by the smtp client). transport_maps, relay_domains and
 * virtual domains are not implemented.
 */
import { splitAddress } from "../address/mod.ts";

/** Where a recipient goes. */
export interface Route {
  transport: string;
  nexthop: string;
}

/** The parameter values resolution depends on. */
export interface ResolveParams {
  myhostname: string;
  /** mydestination items, already expanded. */
  mydestination: string[];
  /** local_transport, e.g. "local:$myhostname" expanded. */
  localTransport: string;
  /** default_transport, e.g. "smtp". */
  defaultTransport: string;
  relayhost: string;
}

/** Splits "transport:nexthop" (nexthop may be empty). */
export function splitTransport(value: string): { transport: string; nexthop: string } {
  const i = value.indexOf(":");
  return i < 0
    ? { transport: value.trim(), nexthop: "" }
    : { transport: value.slice(0, i).trim(), nexthop: value.slice(i + 1).trim() };
}

/** True if the domain is one of ours per mydestination. */
export function isLocalDomain(domain: string, p: ResolveParams): boolean {
  const d = domain.toLowerCase().replace(/\.$/, "");
  return p.mydestination.some((m) => m.toLowerCase().replace(/\.$/, "") === d);
}

/** Resolves one recipient address. */
export function resolve(address: string, p: ResolveParams): Route {
  const { domain } = splitAddress(address);
  if (domain === "" || isLocalDomain(domain, p)) {
    const t = splitTransport(p.localTransport);
    return { transport: t.transport, nexthop: t.nexthop || p.myhostname };
  }
  const t = splitTransport(p.defaultTransport);
  if (t.nexthop) return t;
  if (p.relayhost.trim()) return { transport: t.transport, nexthop: p.relayhost.trim() };
  return { transport: t.transport, nexthop: domain.toLowerCase() };
}
