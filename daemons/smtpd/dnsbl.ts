/**
 * DNS allow and deny lists for smtpd's restrictions, as Postfix's
 * smtpd_check.c does them: reject_rbl_client and permit_dnswl_client look
 * up the client address (IPv4 octets reversed; IPv6 as 32 reversed
 * nibbles) under the list's domain; the reject_rhsbl_* and
 * permit_rhswl_client restrictions look up a domain (the client or reverse
 * client name, the HELO name, the sender's or recipient's domain) under it.
 * A name is listed when its A query answers; `domain=127.0.0.[2..11]`
 * keeps only answers that match the pattern. A listed name's TXT records
 * (joined with " / ", at most 500 characters) are its $rbl_reason.
 *
 * A lookup that fails other than NXDOMAIN/no data (SERVFAIL, a time-out)
 * is Postfix's "soft" result: deny lists do not reject, allow lists do not
 * permit (they set DEFER_IF_REJECT), and "RBL lookup error" is logged.
 * Allow lists ask the resolver that confirms each negative answer over TCP
 * (lib/dns systemResolver), since a SERVFAIL changes their outcome. Deny
 * lists ask without the confirmation (the resolver's `unconfirmed`): for
 * them NXDOMAIN and SERVFAIL both end in "not rejected", and NXDOMAIN is
 * what every clean client gets from every list, so confirming would add a
 * TCP query per list to nearly every connection for nothing but a log
 * line. The price: a deny list that answers SERVFAIL is not logged as an
 * "RBL lookup error" (a time-out still is).
 *
 * Rejections use rbl_reply_maps (by list domain, `=pattern` included) or
 * default_rbl_reply, expanded with $rbl_code (maps_rbl_reject_code),
 * $rbl_class, $rbl_what, $rbl_domain, $rbl_reason (also $rbl_txt) and the
 * session attributes of Postfix's smtpd_expand (client_address,
 * client_name, reverse_client_name, client_port, client, helo_name,
 * sender, sender_name, sender_domain, recipient..., server_name,
 * localtime). Every substituted value passes Postfix's default
 * smtpd_expansion_filter (printable ASCII, space, tab; anything else
 * becomes "_"), so a TXT record cannot break the reply; it cannot expand
 * names either. A reply that does not start with a 4XX or 5XX code gives
 * "450 4.7.1 Service unavailable", as Postfix.
 *
 * Results are cached per process (100 names, 60 seconds; failures are not
 * cached): Postfix's per-process cache, whose processes live about as long.
 * postscreen's `domain*weight` syntax is refused (support.ts stops the
 * start; at run time it is a configuration error).
 */
import { classifyDnsError, type FullResolver } from "../../lib/dns/mod.ts";
import { expand } from "../../lib/config/expand.ts";
import { addressQuery, parseDnsxlFilter, parseIp } from "../../lib/config/mod.ts";

export { addressQuery };
import { validHostname } from "./restrictions.ts";
import { sandboxed } from "./unknown.ts";

/** A listed name: its A records and its TXT text (null without TXT). */
export interface DnsxlListed {
  a: string[];
  txt: string | null;
}

/** A DNS list answer: listed, not listed, or a lookup that failed for now ("soft"). */
export type DnsxlResult = DnsxlListed | "unlisted" | "soft";

/** What DNS list lookups need. */
export interface DnsxlContext {
  resolver: FullResolver;
  /** Recent answers by query name (see {@link dnsxlLookup}). */
  cache: Map<string, { expires: number; result: Promise<DnsxlResult> }>;
  warn: (msg: string) => void;
  /** Milliseconds since the epoch. @default Date.now */
  now?: () => number;
}

const CACHE_SIZE = 100;
const CACHE_MS = 60_000;
/** Postfix's RBL_TXT_LIMIT. */
const TXT_LIMIT = 500;

/** Options for {@link dnsxlLookup}. */
export interface DnsxlLookupOptions {
  /**
   * Confirm a negative answer (an allow list, where SERVFAIL is "soft");
   * false for deny lists (see the module comment). @default true
   */
  confirm?: boolean;
}

/** Postfix's rbl_pagein: the A records of a query name, then its TXT records. */
export function dnsxlLookup(
  ctx: DnsxlContext,
  query: string,
  opts: DnsxlLookupOptions = {},
): Promise<DnsxlResult> {
  const confirm = opts.confirm ?? true;
  // An unconfirmed "unlisted" must not answer an allow list's question.
  const key = confirm ? query : `unconfirmed ${query}`;
  const now = (ctx.now ?? Date.now)();
  const hit = ctx.cache.get(key);
  if (hit && hit.expires > now) return hit.result;
  const resolver = confirm ? ctx.resolver : ctx.resolver.unconfirmed ?? ctx.resolver;
  const result = pagein(ctx, resolver, query);
  ctx.cache.delete(key);
  ctx.cache.set(key, { expires: now + CACHE_MS, result });
  result.then(
    (r) => {
      if (r === "soft") ctx.cache.delete(key);
    },
    () => ctx.cache.delete(key), // DnsNotPermitted: the caller reports it
  );
  while (ctx.cache.size > CACHE_SIZE) ctx.cache.delete(ctx.cache.keys().next().value!);
  return result;
}

async function pagein(
  ctx: DnsxlContext,
  resolver: FullResolver,
  query: string,
): Promise<DnsxlResult> {
  let a: string[];
  try {
    a = await resolver.resolveA(query);
  } catch (e) {
    sandboxed(e);
    if (classifyDnsError(e, query, "A").kind === "notfound") return "unlisted";
    ctx.warn(
      `${query}: RBL lookup error: Host or domain name not found. ` +
        `Name service error for name=${query} type=A: Host not found, try again`,
    );
    return "soft";
  }
  if (a.length === 0) return "unlisted";
  let txt: string | null = null;
  try {
    const records = await resolver.resolveTxt(query);
    if (records.length > 0) {
      let buf = "";
      for (let i = 0; i < records.length && buf.length < TXT_LIMIT; i++) {
        buf += records[i].join("").slice(0, TXT_LIMIT - buf.length);
        if (i + 1 < records.length && TXT_LIMIT - buf.length > 3) buf += " / ";
      }
      txt = buf;
    }
  } catch {
    // no TXT: listed without a reason
  }
  return { a, txt };
}

/** The list domain and its reply filter: "zen.example=127.0.0.[2..11]". */
function splitList(list: string): { domain: string; filter: string | null } {
  const eq = list.indexOf("=");
  return eq < 0
    ? { domain: list, filter: null }
    : { domain: list.slice(0, eq), filter: list.slice(eq + 1) };
}

/** A listed answer kept only when one of its A records matches the filter. */
function filtered(r: DnsxlResult, filter: string | null): DnsxlResult {
  if (typeof r === "string" || filter === null) return r;
  const octets = parseDnsxlFilter(filter);
  if (!octets) return "unlisted"; // refused at start; never a match
  const match = r.a.some((a) => {
    const b = parseIp(a);
    return b !== null && b.length === 4 && octets.every((m, i) => m(b[i]));
  });
  return match ? r : "unlisted";
}

/** Postfix's find_dnsxl_addr: the client address in a DNS list. */
export async function findDnsxlAddr(
  ctx: DnsxlContext,
  list: string,
  addr: string,
  opts: DnsxlLookupOptions = {},
): Promise<DnsxlResult> {
  const { domain, filter } = splitList(list);
  const query = addressQuery(addr, domain);
  if (query === null) return "unlisted";
  return filtered(await dnsxlLookup(ctx, query, opts), filter);
}

/**
 * Postfix's find_dnsxl_domain: the domain of `what` (after its last "@")
 * in a DNS list; null when it is not looked up (an address literal, a
 * numeric last label, no valid host name).
 */
export async function findDnsxlDomain(
  ctx: DnsxlContext,
  list: string,
  what: string,
  opts: DnsxlLookupOptions = {},
): Promise<DnsxlResult | null> {
  const at = what.lastIndexOf("@");
  const name = at < 0 ? what : what.slice(at + 1);
  if (name === "" || name.startsWith("[")) return null;
  const last = name.slice(name.lastIndexOf(".") + 1);
  if (/^\d+$/.test(last)) return null;
  if (!validHostname(name)) return null;
  const { domain, filter } = splitList(list);
  return filtered(await dnsxlLookup(ctx, `${name}.${domain}`, opts), filter);
}

/** Session attributes a reply template may name (Postfix's smtpd_expand_lookup). */
export interface ExpandAttributes {
  serverName: string;
  clientName: string;
  clientAddr: string;
  clientPort: string;
  reverseClientName: string;
  helo: string;
  sender: string | null;
  recipient: string | null;
}

/** What one rejection is about. */
export interface RblFacts {
  /** The list as configured, `=pattern` included. */
  list: string;
  /** The rejected value ($rbl_what). */
  what: string;
  /** The rejected value's name ($rbl_class): "Client host", "Sender address", ... */
  replyClass: string;
  /** TXT text ("" when none). */
  txt: string;
  /** maps_rbl_reject_code. */
  code: number;
}

/**
 * Postfix's default smtpd_expansion_filter: tab, space and printable
 * ASCII; each other byte becomes "_".
 */
export function expansionFilter(value: string): string {
  let out = "";
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (c === 9 || (c >= 0x20 && c <= 0x7e)) out += ch;
    else out += "_".repeat(new TextEncoder().encode(ch).length);
  }
  return out;
}

function addressPart(address: string | null, suffix: string): string | undefined {
  if (address === null) return "";
  const at = address.lastIndexOf("@");
  if (suffix === "") return address === "" ? "<>" : address;
  if (suffix === "_name") return address === "" ? "<>" : at < 0 ? address : address.slice(0, at);
  if (suffix === "_domain") return address === "" || at < 0 ? "" : address.slice(at + 1);
  return undefined;
}

function localtime(d: Date): string {
  const mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const p = (n: number) => String(n).padStart(2, "0");
  return `${mon[d.getMonth()]} ${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${
    p(d.getSeconds())
  }`;
}

/**
 * A reply template expanded as Postfix's rbl_reject_reply does, or null
 * when the template is malformed or names an unknown attribute (logged).
 */
export function expandRblTemplate(
  template: string,
  facts: RblFacts,
  attrs: ExpandAttributes,
  warn: (msg: string) => void,
): string | null {
  const value = (name: string): string | undefined => {
    switch (name) {
      case "rbl_code":
        return String(facts.code);
      case "rbl_domain":
        return splitList(facts.list).domain;
      case "rbl_reason":
      case "rbl_txt":
        return facts.txt;
      case "rbl_what":
        return facts.what;
      case "rbl_class":
        return facts.replyClass;
      case "server_name":
        return attrs.serverName;
      case "client":
        return `${attrs.clientName}[${attrs.clientAddr}]`;
      case "client_port":
        return attrs.clientPort;
      case "client_address":
        return attrs.clientAddr;
      case "client_name":
        return attrs.clientName;
      case "reverse_client_name":
        return attrs.reverseClientName;
      case "helo_name":
        return attrs.helo;
      case "localtime":
        return localtime(new Date());
    }
    if (name.startsWith("sender")) return addressPart(attrs.sender, name.slice(6));
    if (name.startsWith("recipient")) return addressPart(attrs.recipient, name.slice(9));
    return undefined;
  };
  let bad = false;
  try {
    const out = expand(template, (name) => {
      const v = value(name);
      // Values are filtered and never expanded again ("$" doubled for the expander).
      return v === undefined ? undefined : expansionFilter(v).replaceAll("$", () => "$$");
    }, {
      onUndefined: (name) => {
        warn(`unknown macro name "${name}" in expansion request`);
        bad = true;
      },
    });
    return bad ? null : out;
  } catch {
    return null;
  }
}
