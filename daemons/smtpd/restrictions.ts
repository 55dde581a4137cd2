/**
 * SMTP access restrictions, evaluated like Postfix's smtpd_check.c at each
 * stage: `smtpd_client_restrictions` at connect, `smtpd_helo_restrictions`
 * at HELO/EHLO, `smtpd_sender_restrictions` at MAIL, or all three at each
 * RCPT TO when `smtpd_delay_reject = yes` (the default); then
 * `smtpd_relay_restrictions` and `smtpd_recipient_restrictions` at RCPT (in
 * the order smtpd_relay_before_recipient_restrictions says), and
 * `smtpd_data_restrictions` at DATA, `smtpd_end_of_data_restrictions`
 * after the final dot. In each list the first restriction
 * that permits or rejects decides that list; a list that permits does not
 * skip the next list. A bare `RCPT TO:<postmaster>` passes every list, as
 * RFC 5321 requires and Postfix does.
 *
 * Implemented (lib/config/restrictions.ts names them): permit, reject,
 * defer, permit_mynetworks, permit_sasl_authenticated (a client that
 * authenticated with AUTH, but not ANONYMOUS), the *_sender_login_mismatch
 * restrictions (sender_login.ts), permit_auth_destination, reject_unauth_destination,
 * defer_unauth_destination, reject_invalid_helo_hostname,
 * reject_non_fqdn_helo_hostname, reject_non_fqdn_sender,
 * reject_non_fqdn_recipient, reject_unlisted_recipient and
 * reject_unlisted_sender (recipients.ts, as the implicit
 * smtpd_reject_unlisted_* checks), warn_if_reject, reject_unauth_pipelining
 * (the session saw improper pipelining: 503 5.5.0), the names of
 * smtpd_restriction_classes, and the access tables check_client_access
 * (host name and its parents, then the address and its truncations
 * 1.2.3.4, 1.2.3, 1.2, 1 or IPv6 at ":"), check_helo_access,
 * check_sender_access (the null sender as smtpd_null_access_lookup_key)
 * and check_recipient_access (Postfix's check_mail_access order on the
 * resolved address: user+ext@domain, user@domain, domain and parents,
 * user+ext@, user@). Access results are Postfix's check_table_result: OK,
 * RELAY or a number permit; REJECT, DEFER, NXX with optional enhanced code
 * and text; DUNNO; DEFER_IF_REJECT (for its stage), DEFER_IF_PERMIT (at
 * RCPT and DATA, carried from connect, HELO and MAIL with
 * smtpd_delay_reject = no); WARN and INFO log; anything else is a list of
 * restrictions or class names evaluated in place. A table that cannot
 * answer gives Postfix's "451 4.3.5 <who>: ... rejected: Server
 * configuration error". check_reverse_client_hostname_access looks up the
 * client's PTR name (confirmed or not) and address like check_client_access,
 * and may only refuse: OK is a configuration error, as Postfix.
 *
 * DNS-based (unknown.ts, dnsbl.ts, through the context's resolver):
 * reject_unknown_helo_hostname (reject_unknown_hostname),
 * reject_unknown_sender_domain (reject_unknown_address),
 * reject_unknown_recipient_domain, with unknown_hostname_reject_code,
 * unknown_address_reject_code, Postfix's null-MX replies (550 5.7.27 for a
 * sender, 556 5.1.10 for a recipient) and the *_tempfail_action after a
 * temporary DNS failure; reject_unknown_client_hostname
 * (reject_unknown_client) and reject_unknown_reverse_client_hostname from
 * the name status peername.ts found (unknown_client_reject_code, or 450
 * after a temporary failure); reject_rbl_client (reject_rbl),
 * reject_maps_rbl, permit_dnswl_client, reject_rhsbl_client,
 * permit_rhswl_client, reject_rhsbl_reverse_client, reject_rhsbl_helo,
 * reject_rhsbl_sender and reject_rhsbl_recipient (`domain=d.d.d.d` reply
 * filters; maps_rbl_reject_code, default_rbl_reply, rbl_reply_maps). A DNS
 * query the sandbox refuses is a configuration error, never a pass.
 * reject_unauth_pipelining uses the session's improper-pipelining flag.
 * postwarden_reject_spf_fail (Postwarden's own, no Postfix equivalent):
 * RFC 7208 SPF for the MAIL FROM domain (lib/spf), see spfCheck.
 * postwarden_reject_dmarc_fail: RFC 7489 DMARC (lib/dmarc, through
 * authentication.ts), see dmarcCheck.
 *
 * check_{client,reverse_client_hostname,helo,sender,recipient}_{mx,ns,a}_access
 * look up the domain's MX hosts, name servers or own addresses
 * (server_access.ts) and may only refuse, as Postfix; check_sasl_access
 * looks up the AUTH login name as is (no parent domains, no partial keys).
 *
 * HOLD, DISCARD, REDIRECT, BCC and FILTER are kept for the mail
 * transaction and handed to cleanup (actions.ts); where the request cannot
 * keep them each is a configuration error (451 4.3.5, logged by name).
 * check_ccert_access stops the start (lib/tls/ccert.ts). PREPEND adds its header
 * to the transaction's message (the session writes it above its Received:
 * header). check_policy_service asks a policy server (policy.ts) and
 * evaluates its action as an access table result about the list's subject. Keys with CR or LF are never looked up.
 * A restriction that needs what the stage does
 * not have yet (a recipient at connect) is skipped, as Postfix does. Any
 * other restriction is a configuration error answered with 451 4.3.5 and
 * logged by name; so is a configuration where neither the relay nor the
 * recipient list can refuse relaying (Postfix will not run one): no open
 * relay. Reply codes and texts are Postfix's, including reject_code,
 * defer_code, relay_domains_reject_code, non_fqdn_reject_code and
 * invalid_hostname_reject_code.
 *
 * The relay decision (permit_auth_destination, reject_unauth_destination,
 * defer_unauth_destination) is Postfix's: the recipient is rewritten in the
 * "local" context (lib/address/rewrite.ts: @$myorigin appended, bang paths
 * and "%" turned into "@") and resolved (lib/resolve) with the sender; it
 * is authorized when its address class is local, virtual alias, virtual
 * mailbox or relay, unless routing operators remain in its local part
 * (`"user@remote"@ours`, `user%remote@ours` with allow_percent_hack = no)
 * and allow_untrusted_routing is off. A resolver that cannot answer gives
 * 451 4.3.0 Temporary lookup failure. Recipient checks are therefore async.
 *
 * Pure apart from table lookups (the resolver's and the access tables,
 * opened once per process through the context's MapsOpener): parameters
 * come in the context.
 */
import type { Rejection } from "../../lib/outcome/mod.ts";
import { quoteAddress, splitAddress } from "../../lib/address/mod.ts";
import { accessAddressFind, DictError, domainFind, Maps } from "../../lib/maps/mod.ts";
import type { MapsOpener } from "../../lib/service/maps.ts";
import { checkListed, type ListedContext } from "./recipients.ts";
import { policyAttributes, PolicyClients, type PolicyFacts } from "./policy.ts";
import type { PeerStatus } from "./peername.ts";
import {
  type DnsxlContext,
  type DnsxlResult,
  expandRblTemplate,
  findDnsxlAddr,
  findDnsxlDomain,
} from "./dnsbl.ts";
import { DnsNotPermitted, hostStatus, mailhostStatus } from "./unknown.ts";
import { familiesFrom, type FullResolver, timedResolver } from "../../lib/dns/mod.ts";
import { cachingResolver } from "../../lib/dns/cache.ts";
import { checkHost, receivedSpfHeader, type SpfResult } from "../../lib/spf/mod.ts";
import type { DmarcResult } from "../../lib/dmarc/mod.ts";
import { findServerAccess, type ServerAccessContext, type ServerType } from "./server_access.ts";
import { type SenderLoginContext, senderLoginMismatch } from "./sender_login.ts";
import { applyAction, DELEGATED_ACTIONS, type TransactionActions } from "./actions.ts";
import {
  type Resolution,
  RESOLVE_CLASS_FINAL,
  RESOLVE_CLASS_RELAY,
  RESOLVE_FLAG_ERROR,
  RESOLVE_FLAG_ROUTED,
  ResolveError,
  Resolver,
  rewriteAddress,
  type RewriteContext,
} from "../../lib/resolve/mod.ts";
import {
  canRefuseRelay,
  CHECK_POLICY_SERVICE,
  type Config,
  ConfigError,
  DNSXL_RESTRICTIONS,
  dnsxlArgumentProblem,
  IMPLEMENTED_RESTRICTIONS,
  matchNetworkList,
  type NetworkList,
  OPEN_RELAY_MESSAGE,
  parseIp,
  parseNetworkList,
  restrictionItems,
  TABLE_RESTRICTIONS,
} from "../../lib/config/mod.ts";

/** Everything restriction evaluation needs. */
export interface RestrictionContext {
  client: string[];
  helo: string[];
  sender: string[];
  relay: string[];
  recipient: string[];
  data: string[];
  /** smtpd_end_of_data_restrictions. */
  eod: string[];
  /** smtpd_delay_reject: client, helo and sender lists run at RCPT. */
  delayReject: boolean;
  /** smtpd_relay_before_recipient_restrictions. */
  relayFirst: boolean;
  mynetworks: NetworkList;
  /**
   * The resolver qmgr uses too: smtpd counts as ours exactly what qmgr
   * delivers here or relays to, so nothing it accepts as local is relayed
   * elsewhere.
   */
  resolver: Resolver;
  /**
   * The "local" rewriting context applied to a recipient before it is
   * resolved; null when myorigin names a file this process could not read:
   * an address without domain is then not authorized.
   */
  rewrite: RewriteContext | null;
  /** allow_untrusted_routing. */
  allowUntrustedRouting: boolean;
  /** Recent resolutions by sender and address (see resolveFor). */
  resolveCache: Map<string, Promise<Resolution>>;
  codes: {
    reject: number;
    defer: number;
    relay: number;
    nonFqdn: number;
    invalidHostname: number;
    /** unknown_hostname_reject_code, unknown_address_reject_code, unknown_client_reject_code. */
    unknownHostname: number;
    unknownAddress: number;
    unknownClient: number;
  };
  /** unknown_helo_hostname_tempfail_action and unknown_address_tempfail_action. */
  tempfail: { helo: TempfailAction; address: TempfailAction };
  /** DNS for the unknown_* and DNS list restrictions. */
  dns: FullResolver;
  /**
   * DNS for mail authentication (SPF, DKIM, DMARC, ARC: the same sending
   * domains' records message after message): answers kept for their TTLs
   * (lib/dns cache.ts), one cache per smtpd process.
   */
  authDns: FullResolver;
  /** DNS lists: lookups, their cache and the reply parameters. */
  dnsxl: DnsxlContext & {
    /** maps_rbl_reject_code ($rbl_code). */
    code: number;
    /** default_rbl_reply, unexpanded. */
    defaultReply: string;
    /** rbl_reply_maps ("" for none), opened through access.open. */
    replyMaps: string;
    /** maps_rbl_domains, for reject_maps_rbl. */
    mapsRblDomains: string[];
    /** myhostname, for $server_name in replies. */
    serverName: string;
  };
  /** check_*_access, access table results and smtpd_restriction_classes. */
  access: {
    /** smtpd_restriction_classes: each class name and its restrictions. */
    classes: Map<string, string[]>;
    /** smtpd_access_maps is listed in parent_domain_matches_subdomains. */
    parentMatches: boolean;
    /** smtpd_null_access_lookup_key. */
    nullKey: string;
    /** recipient_delimiter. */
    delimiters: string;
    doubleBounceSender: string;
    /** access_map_reject_code, access_map_defer_code. */
    rejectCode: number;
    deferCode: number;
    /** The tables a check_*_access names, opened once per process (see tableOf). */
    open: MapsOpener;
    tables: Map<string, Promise<Maps>>;
  };
  /**
   * reject_unlisted_recipient and reject_unlisted_sender (recipients.ts);
   * without it those restrictions are a configuration error.
   */
  listed?: ListedContext;
  /** check_policy_service: the process's policy clients (policy.ts). */
  policy: PolicyClients;
  warn: (msg: string) => void;
  /** WARN and INFO results of access tables; warn when not given. */
  info?: (msg: string) => void;
  /**
   * postwarden_explain: each restriction's decision, for `postwarden test
   * --explain` ("explain: recipient <x@y>: reject_rbl_client zen...: 554 ...").
   */
  explain?: (msg: string) => void;
  /** smtpd_sender_login_maps (sender_login.ts); without it the *_login_mismatch restrictions do nothing. */
  senderLogin?: SenderLoginContext;
  /** check_*_{mx,ns,a}_access lookups (server_access.ts). */
  servers: ServerAccessContext;
  /** smtpd_sasl_auth_enable, for check_sasl_access. */
  saslEnabled: boolean;
}

/** What {@link restrictionContext} may be given besides the configuration. */
export interface RestrictionOptions {
  /** Opens access tables (smtpd's goes through proxymap when needed). */
  openMaps?: MapsOpener;
  /** For reject_unlisted_recipient and reject_unlisted_sender. */
  listed?: ListedContext;
  info?: (msg: string) => void;
  /** The policy clients (tests inject a connect function). @default from the configuration */
  policy?: PolicyClients;
  /** DNS for the unknown_* and DNS list restrictions. @default timedResolver(10 s per query) */
  dns?: FullResolver;
  /**
   * DNS for mail authentication. @default `dns` when given (tests), else
   * cachingResolver(10 s per query)
   */
  authDns?: FullResolver;
  /** /etc/hosts by name, for check_*_{mx,ns,a}_access. @default none */
  hostAddresses?: (name: string) => string[] | undefined;
}

/** What a temporary DNS failure does: reply 450 now, or only when the request would be accepted. */
export type TempfailAction = "defer" | "defer_if_permit";

/** A *_tempfail_action value; anything else stops the start, as Postfix's msg_fatal. */
function tempfailAction(c: Config, name: string): TempfailAction {
  const v = c.str(name).trim().toLowerCase();
  if (v === "defer" || v === "defer_if_permit") return v;
  throw new ConfigError(`bad configuration: ${name} = ${c.str(name).trim()}`);
}

/** Per DNS query of the restrictions: a dead name server delays a session by this much. */
const DNS_TIMEOUT_MS = 10_000;

/** A restriction list parameter: items split like Postfix (commas, spaces; braces kept). */
function restrictionList(c: Config, name: string): string[] {
  return restrictionItems(c.str(name));
}

/** smtpd_restriction_classes: each name and its list (a class without definition is left out, with a warning). */
function restrictionClasses(c: Config, warn: (msg: string) => void): Map<string, string[]> {
  const classes = new Map<string, string[]>();
  for (const name of c.list("smtpd_restriction_classes")) {
    let list: string[] = [];
    try {
      list = c.raw(name) === undefined ? [] : restrictionList(c, name);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
    }
    if (list.length === 0) warn(`restriction class \`${name}' needs a definition`);
    else classes.set(name, list);
  }
  return classes;
}

/**
 * The restriction context of a configuration. `resolver` is shared with
 * other users of the same configuration (its tables are opened once);
 * by default one is made from the configuration.
 */
export function restrictionContext(
  c: Config,
  warn: (msg: string) => void,
  resolver?: Resolver,
  opts: RestrictionOptions = {},
): RestrictionContext {
  const origin = originOrNull(c, warn);
  const dns = opts.dns ?? timedResolver(DNS_TIMEOUT_MS);
  const authDns = opts.authDns ?? opts.dns ?? cachingResolver({ timeoutMs: DNS_TIMEOUT_MS, warn });
  return {
    client: restrictionList(c, "smtpd_client_restrictions"),
    helo: restrictionList(c, "smtpd_helo_restrictions"),
    sender: restrictionList(c, "smtpd_sender_restrictions"),
    relay: restrictionList(c, "smtpd_relay_restrictions"),
    recipient: restrictionList(c, "smtpd_recipient_restrictions"),
    data: restrictionList(c, "smtpd_data_restrictions"),
    eod: restrictionList(c, "smtpd_end_of_data_restrictions"),
    delayReject: c.bool("smtpd_delay_reject"),
    relayFirst: c.bool("smtpd_relay_before_recipient_restrictions"),
    mynetworks: parseNetworkList("mynetworks", c.list("mynetworks")),
    resolver: resolver ?? Resolver.fromConfig(c, { warn }),
    rewrite: origin === null ? null : {
      myorigin: origin,
      mydomain: c.str("mydomain"),
      appendAtMyorigin: c.bool("append_at_myorigin"),
      appendDotMydomain: c.bool("append_dot_mydomain"),
      swapBangpath: c.bool("swap_bangpath"),
      percentHack: c.bool("allow_percent_hack"),
    },
    allowUntrustedRouting: c.bool("allow_untrusted_routing"),
    resolveCache: new Map(),
    codes: {
      reject: c.int("reject_code"),
      defer: c.int("defer_code"),
      relay: c.int("relay_domains_reject_code"),
      nonFqdn: c.int("non_fqdn_reject_code"),
      invalidHostname: c.int("invalid_hostname_reject_code"),
      unknownHostname: c.int("unknown_hostname_reject_code"),
      unknownAddress: c.int("unknown_address_reject_code"),
      unknownClient: c.int("unknown_client_reject_code"),
    },
    tempfail: {
      helo: tempfailAction(c, "unknown_helo_hostname_tempfail_action"),
      address: tempfailAction(c, "unknown_address_tempfail_action"),
    },
    dns,
    authDns,
    dnsxl: {
      resolver: dns,
      cache: new Map(),
      warn,
      code: c.int("maps_rbl_reject_code"),
      defaultReply: c.raw("default_rbl_reply") ?? "",
      replyMaps: c.str("rbl_reply_maps").trim(),
      mapsRblDomains: c.list("maps_rbl_domains"),
      serverName: c.str("myhostname"),
    },
    access: {
      classes: restrictionClasses(c, warn),
      parentMatches: c.list("parent_domain_matches_subdomains").includes("smtpd_access_maps"),
      nullKey: c.str("smtpd_null_access_lookup_key"),
      delimiters: c.str("recipient_delimiter"),
      doubleBounceSender: c.str("double_bounce_sender"),
      rejectCode: c.int("access_map_reject_code"),
      deferCode: c.int("access_map_defer_code"),
      open: opts.openMaps ?? ((title, value) => Maps.open(title, value, { warn })),
      tables: new Map(),
    },
    listed: opts.listed,
    policy: opts.policy ?? new PolicyClients(c, { warn }),
    warn,
    info: opts.info,
    explain: c.bool("postwarden_explain") ? (m) => (opts.info ?? warn)(`explain: ${m}`) : undefined,
    servers: {
      dns,
      families: familiesFrom(c.list("inet_protocols")),
      hostAddresses: opts.hostAddresses ?? (() => undefined),
      warn,
    },
    saslEnabled: c.bool("smtpd_sasl_auth_enable"),
  };
}

/** myorigin, or null (with a warning) when it names a file that cannot be read here. */
function originOrNull(c: Config, warn: (msg: string) => void): string | null {
  if (!c.bool("append_at_myorigin")) return "";
  try {
    return c.str("myorigin");
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    warn(`${e.message}; recipients without a domain are not authorized for relaying`);
    return null;
  }
}

/** What is known about the session when a list is evaluated. */
export interface CheckRequest {
  /**
   * The client: its verified name and address, and (from peername.ts) its
   * PTR name and how each name lookup ended; without them a name
   * "unknown" counts as a permanent failure.
   */
  client: {
    name: string;
    addr: string;
    port?: number;
    reverseName?: string;
    nameStatus?: PeerStatus;
    reverseStatus?: PeerStatus;
  };
  /** HELO/EHLO name, "" before HELO. */
  helo: string;
  /** MAIL FROM address ("" is the null sender), null before MAIL. */
  sender: string | null;
  /** The recipient being checked (at DATA: the only recipient, if just one). */
  recipient?: string;
  /** The AUTH login of the session (auth.ts), null or absent when none. */
  sasl?: { username: string; method: string } | null;
  /**
   * The session's DEFER_IF_PERMIT results of the checks at connect, HELO
   * and MAIL (smtpd_delay_reject = no), carried to RCPT as Postfix does;
   * without it they are not carried.
   */
  deferIfPermit?: DeferIfPermitCarry;
  /**
   * Logs a WARN, INFO or reject_warning as Postfix's log_whatsup does
   * (`NOQUEUE: warn: RCPT from client: text; from=<..> ...`); without it
   * they go to the context's info or warn.
   */
  log?: (action: string, text: string) => void;
  /** What check_policy_service sends besides the fields above; without it, little is known. */
  policy?: PolicyFacts;
  /**
   * Keeps a PREPEND result's header for the message (the session writes it
   * above its Received: header); without it PREPEND is a configuration error.
   */
  prepend?: (header: string) => void;
  /**
   * The client sent more commands before a reply where pipelining is not
   * allowed (Postfix's SMTPD_FLAG_ILL_PIPELINING), for reject_unauth_pipelining.
   */
  pipelining?: boolean;
  /** The command being checked, when it is RCPT (set by checkRecipient). */
  where?: "RCPT";
  /**
   * The mail transaction's HOLD, DISCARD, REDIRECT, BCC and FILTER actions
   * (actions.ts); without it these actions are a configuration error.
   */
  actions?: TransactionActions;
  /**
   * At the end of data: the message's authentication verdict
   * (authentication.ts), for postwarden_reject_dmarc_fail; `dmarc` absent
   * when not evaluated, null when the message has no usable From: domain.
   */
  authentication?: { dmarc?: DmarcResult | null; dmarcOverride?: string };
}

/** DEFER_IF_PERMIT as each early check left it (Postfix's defer_if_permit_client/helo/sender). */
export interface DeferIfPermitCarry {
  client?: Rejection;
  helo?: Rejection;
  sender?: Rejection;
}

type Stage = "client" | "reverse" | "helo" | "sender" | "recipient" | "data" | "eod" | "sasl";

const CONFIG_ERROR: Rejection = { code: 451, dsn: "4.3.5", text: "Server configuration error" };

/** Who the reply is about, and Postfix's name for the stage. */
function subject(stage: Stage, req: CheckRequest): { name: string; what: string } {
  switch (stage) {
    case "client":
      return { name: `${req.client.name}[${req.client.addr}]`, what: "Client host" };
    case "reverse":
      return { name: req.client.reverseName ?? req.client.name, what: "Unverified Client host" };
    case "helo":
      return { name: req.helo, what: "Helo command" };
    case "sender":
      return { name: quoteAddress(req.sender ?? ""), what: "Sender address" };
    case "recipient":
      // Postfix names the recipient in its internal (unquoted) form, as parsed.
      return { name: req.recipient ?? "", what: "Recipient address" };
    case "data":
      return { name: "DATA", what: "Data command" };
    case "eod":
      return { name: "END-OF-MESSAGE", what: "End-of-data" };
    case "sasl":
      // Postfix's printable(username, '_').
      return {
        name: (req.sasl?.username ?? "").replace(/[^\x20-\x7e]/g, "_"),
        what: "SASL login name",
      };
  }
}

/** A reply with Postfix's enhanced code, its class digit following the reply code. */
function verdict(code: number, dsn: string, text: string): Rejection {
  return { code, dsn: `${String(code)[0]}${dsn.slice(1)}`, text };
}

/** "name." becomes "name", "name.." stays (Postfix's dup_if_truncate). */
function truncateDot(name: string): string {
  return name.length > 1 && name.endsWith(".") && !name.endsWith("..") ? name.slice(0, -1) : name;
}

/** Postfix's valid_hostname: labels of letters, digits, "-" and "_", not all numeric. */
export function validHostname(name: string): boolean {
  if (name === "" || name.length > 255) return false;
  const labels = name.split(".");
  for (const label of labels) {
    if (label === "" || label.length > 63) return false;
    if (!/^[A-Za-z0-9_-]+$/.test(label) || label.startsWith("-") || label.endsWith("-")) {
      return false;
    }
  }
  return !/^[\d.]+$/.test(name);
}

/** An address literal's inside: IPv4, or IPv6 with its "IPv6:" tag. */
function validAddressLiteral(literal: string): boolean {
  const inner = literal.replace(/^\[|\]$/g, "");
  if (/^ipv6:/i.test(inner)) return parseIp(inner)?.length === 16;
  return parseIp(inner)?.length === 4;
}

/** Resolutions kept per smtpd process, as Postfix's smtpd_resolve cache (100 entries). */
const RESOLVE_CACHE_SIZE = 100;

/**
 * The recipient rewritten in the local context and resolved with the
 * sender, from a small cache (the syntax check and the relay decision ask
 * for the same address). A resolver failure is not cached.
 *
 * @throws {ResolveError} when the resolver cannot answer.
 */
export function resolveFor(
  ctx: RestrictionContext,
  sender: string,
  address: string,
): Promise<Resolution> {
  const key = `${sender}\0${address}`;
  const hit = ctx.resolveCache.get(key);
  if (hit) return hit;
  const rewritten = ctx.rewrite === null ? address : rewriteAddress(address, ctx.rewrite);
  const p = ctx.resolver.resolve(rewritten, { sender });
  ctx.resolveCache.set(key, p);
  p.catch(() => ctx.resolveCache.delete(key));
  if (ctx.resolveCache.size > RESOLVE_CACHE_SIZE) {
    ctx.resolveCache.delete(ctx.resolveCache.keys().next().value!);
  }
  return p;
}

/**
 * Postfix's smtpd_check_addr, run on MAIL FROM and RCPT TO addresses as
 * they are parsed: false when the resolver calls the address bad syntax (a
 * domain that is no host name or address literal, a recipient starting
 * with "-" unless allow_min_user); smtpd then answers 501 5.1.7 Bad sender
 * address syntax or 501 5.1.3 Bad recipient address syntax. The null
 * sender passes; so does an address the resolver cannot answer for now
 * (the relay decision then answers 451).
 */
export async function addressSyntaxOk(
  ctx: RestrictionContext,
  sender: string,
  address: string,
): Promise<boolean> {
  if (address === "") return true;
  try {
    return ((await resolveFor(ctx, sender, address)).flags & RESOLVE_FLAG_ERROR) === 0;
  } catch (e) {
    if (e instanceof ResolveError) return true;
    throw e;
  }
}

/**
 * Postfix's permit_auth_destination: "ok" when the recipient is ours to
 * deliver or relay to, "dunno" when not, or the 451 reply when the resolver
 * cannot answer.
 */
async function authDestination(
  ctx: RestrictionContext,
  req: CheckRequest,
  recipient: string,
): Promise<"ok" | "dunno" | Rejection> {
  if (ctx.rewrite === null && splitAddress(recipient).domain === "") return "dunno";
  try {
    const reply = await resolveFor(ctx, req.sender ?? "", recipient);
    if (!ctx.allowUntrustedRouting && (reply.flags & RESOLVE_FLAG_ROUTED)) return "dunno";
    return reply.flags & (RESOLVE_CLASS_FINAL | RESOLVE_CLASS_RELAY) ? "ok" : "dunno";
  } catch (e) {
    if (!(e instanceof ResolveError)) throw e;
    ctx.warn(e.message);
    return verdict(451, "4.3.0", `<${recipient}>: Temporary lookup failure`);
  }
}

/** reject_non_fqdn_sender/recipient: the domain must be a host name with a dot. */
function fqdnAddress(address: string): boolean {
  const at = address.lastIndexOf("@");
  const domain = at < 0 ? "" : address.slice(at + 1);
  if (domain.startsWith("[") && domain.endsWith("]")) return true; // not checked, as Postfix
  const name = truncateDot(domain);
  return name !== "" && validHostname(name) && name.includes(".");
}

/** How deep access table results and classes may nest (Postfix's recursion limit). */
const MAX_RECURSION = 100;

/** What one check (connect, HELO, MAIL, RCPT or DATA) carries from list to list. */
interface CheckState {
  /** permit_auth_destination's answer for the request's recipient, found at first need. */
  auth?: "ok" | "dunno" | Rejection;
  /** DEFER_IF_REJECT: a later 5xx rejection becomes this reply. */
  deferIfReject?: Rejection;
  /** DEFER_IF_PERMIT: accepting at the end becomes this reply. */
  deferIfPermit?: Rejection;
  depth: number;
  /** warn_if_reject precedes the restriction being evaluated. */
  warnIfReject?: boolean;
  /** reject_maps_rbl's deprecation warning was logged for this check. */
  mapsRblWarned?: boolean;
  /** The access table value the restriction being evaluated found (for explain). */
  hit?: string;
}

/** One list's outcome: a permit ends the list, a Rejection the check, null goes on. */
type Outcome = Rejection | "permit" | null;

/**
 * A rejection as Postfix's smtpd_check_reject: with DEFER_IF_REJECT in
 * effect, a 5xx reply becomes the deferral.
 */
function reject(state: CheckState, v: Rejection): Rejection {
  return v.code >= 500 && state.deferIfReject ? state.deferIfReject : v;
}

/**
 * Postfix's smtpd_dsn_fix: an address status (X.1.Y) in a reply about a
 * sender or recipient is made to fit that role.
 */
function dsnFix(dsn: string, stage: Stage): string {
  if (!/^[45]\.1\.\d+$/.test(dsn)) return dsn;
  const detail = dsn.split(".")[2];
  const sender: Record<string, string> = { "2": "1.8", "3": "1.7", "7": "1.7", "8": "1.8" };
  const rcpt: Record<string, string> = {
    "1": "1.1",
    "2": "1.2",
    "3": "1.3",
    "4": "1.4",
    "5": "1.5",
    "6": "1.6",
    "7": "1.3",
    "8": "1.2",
  };
  if (stage === "sender") return `${dsn[0]}.${sender[detail] ?? "1.0"}`;
  if (stage === "recipient") return `${dsn[0]}.${rcpt[detail] ?? "1.0"}`;
  return `${dsn[0]}.1.0`;
}

/** Postfix's dsn_split: an enhanced status code leading the text, or the default. */
function dsnSplit(defaultDsn: string, text: string): { dsn: string; text: string } {
  const m = /^([245]\.\d{1,3}\.\d{1,3})(?:[ \t]+|$)/.exec(text);
  return m ? { dsn: m[1], text: text.slice(m[0].length) } : { dsn: defaultDsn, text };
}

/**
 * Access table actions that need cleanup (the queue file): a configuration
 * error where the request cannot keep them (see actions.ts). PREPEND is one
 * only where the request cannot keep its header.
 */
const CLEANUP_ACTIONS = new Set(["HOLD", "DISCARD", "REDIRECT", "FILTER", "PREPEND", "BCC"]);

/** A table's value for a lookup key: CR and LF never reach a table (such keys find nothing). */
async function find<T>(key: string, lookup: () => Promise<T | undefined>): Promise<T | undefined> {
  return /[\r\n]/.test(key) ? undefined : await lookup();
}

/**
 * The tables of one check_*_access argument, opened at first use and kept
 * for the process; a table that failed to open is tried again next time.
 */
function tableOf(ctx: RestrictionContext, check: string, spec: string): Promise<Maps> {
  const key = spec;
  let m = ctx.access.tables.get(key);
  if (!m) {
    m = ctx.access.open(check, spec);
    m.catch(() => ctx.access.tables.delete(key));
    ctx.access.tables.set(key, m);
  }
  return m;
}

/**
 * Postfix's check_table_result: what an access table's value means. DUNNO
 * and the logging actions give null; OK, RELAY and numbers permit; REJECT,
 * DEFER and NXX reply; anything else is a list of restrictions evaluated in
 * place.
 */
async function tableResult(
  ctx: RestrictionContext,
  req: CheckRequest,
  stage: Stage,
  state: CheckState,
  table: string,
  value: string,
  key?: string,
): Promise<Outcome> {
  const { name, what } = subject(stage, req);
  if (ctx.explain) state.hit = key === undefined ? value : `${key} ${value}`;
  const m = /^(\S*)[ \t]*(.*)$/s.exec(value.replace(/^[ \t]+/, ""))!;
  const cmd = m[1].toUpperCase();
  const text = m[2].replace(/^\s+/, "");
  const reply = (code: number, defaultDsn: string, fallback: string) => {
    const d = dsnSplit(defaultDsn, text);
    return verdict(
      code,
      dsnFix(d.dsn, stage),
      `<${name}>: ${what} rejected: ${d.text || fallback}`,
    );
  };
  switch (cmd) {
    case "DUNNO":
      return null;
    case "REJECT":
      return reject(state, reply(ctx.access.rejectCode, "5.7.1", "Access denied"));
    case "DEFER":
      return reject(state, reply(ctx.access.deferCode, "4.7.1", "Access denied"));
    case "INFO":
    case "WARN":
      if (req.log) req.log(cmd.toLowerCase(), text);
      else (ctx.info ?? ctx.warn)(`${cmd.toLowerCase()}: <${name}>: ${what} ${text}`.trimEnd());
      return null;
    case "DEFER_IF_PERMIT":
      state.deferIfPermit ??= reply(ctx.access.deferCode, "4.7.1", "Service unavailable");
      return null;
    case "DEFER_IF_REJECT":
      state.deferIfReject ??= reply(ctx.access.deferCode, "4.7.1", "Service unavailable");
      return null;
    case "OK":
    case "RELAY":
      return "permit";
    case "PREPEND":
      if (!req.prepend) break;
      // Postfix's is_header: a field name, optional space, then ":".
      if (!/^[\x21-\x39\x3b-\x7e]+[ \t]*:/.test(text)) {
        ctx.warn(`access table ${table} entry "${value}" requires header: text`);
      } else req.prepend(text);
      return null;
  }
  if (req.actions && DELEGATED_ACTIONS.has(cmd)) {
    return applyAction(
      {
        actions: req.actions,
        inTransaction: req.sender !== null,
        name,
        what,
        table,
        value,
        warn: ctx.warn,
        log: req.log ?? ((action, t) => (ctx.info ?? ctx.warn)(`${action}: ${t}`)),
      },
      cmd,
      text,
    );
  }
  if (CLEANUP_ACTIONS.has(cmd) || cmd === "HANGUP") {
    ctx.warn(`access table ${table}: action ${cmd} is not supported by Postwarden`);
    return CONFIG_ERROR;
  }
  if (/^\d+$/.test(value.trim())) return "permit";
  if (/^[45]\d\d$/.test(m[1]) && text !== "") {
    const code = Number(m[1]);
    return reject(state, reply(code, `${m[1][0]}.7.1`, "Access denied"));
  }
  if (value.includes(":")) {
    ctx.warn(`access table ${table} has entry with lookup table: ${value}`);
    ctx.warn("do not specify lookup tables inside SMTPD access maps");
    ctx.warn("define a restriction class and specify its name instead.");
    return CONFIG_ERROR;
  }
  if (state.depth > MAX_RECURSION) {
    ctx.warn(`access table ${table} entry ${value} causes unreasonable recursion`);
    return CONFIG_ERROR;
  }
  const list = value.split(/[\s,]+/).filter((r) => r !== "");
  if (list.length === 0) {
    ctx.warn(`access table ${table} entry ${value} has empty value`);
    return "permit";
  }
  state.depth++;
  try {
    return await evaluate(list, stage, ctx, req, state);
  } finally {
    state.depth--;
  }
}

/**
 * One check_*_access: the keys in Postfix's order for what it checks, the
 * first key found decides (DUNNO included: the next restriction follows).
 */
async function checkAccess(
  ctx: RestrictionContext,
  req: CheckRequest,
  state: CheckState,
  check: string,
  table: string,
): Promise<Outcome> {
  // Each check speaks of its own subject, whatever list names it (Postfix).
  const stage = CHECK_STAGE[check];
  let maps: Maps;
  try {
    maps = await tableOf(ctx, check, table);
  } catch (e) {
    if (!(e instanceof DictError)) throw e;
    ctx.warn(`${check} ${table}: ${e.message}`);
    return await tableResult(ctx, req, stage, state, table, "451 4.3.5 Server configuration error");
  }
  // The name as given (fixed-string tables fold case themselves); a numerical
  // name has no parent domains (Postfix's check_domain_access).
  const domainKeys = (domain: string) =>
    find(domain, async () => {
      const numerical = !/^\[|^ipv6:/i.test(domain) && parseIp(domain) !== null;
      if (!numerical) {
        return await domainFind(maps, domain, { parentMatches: ctx.access.parentMatches });
      }
      const value = await maps.find(domain);
      return value === undefined ? undefined : { value };
    });
  let found: { value: string; key?: string } | undefined;
  const server = SERVER_CHECKS.get(check);
  try {
    if (server) {
      return await serverAccess(ctx, req, state, check, table, server, {
        hostname: domainKeys,
        address: (addr) => addressKeys(maps, addr),
      });
    }
    switch (check) {
      case "check_client_access": {
        found = await domainKeys(req.client.name);
        if (!found) found = await addressKeys(maps, req.client.addr);
        break;
      }
      case "check_reverse_client_hostname_access": {
        // The PTR name, confirmed or not: it may only refuse (Postfix's forbid_allowlist).
        const reverse = req.client.reverseName ?? req.client.name;
        found = await domainKeys(reverse);
        if (!found) found = await addressKeys(maps, req.client.addr);
        if (!found) return null;
        const outcome = await tableResult(ctx, req, stage, state, table, found.value, found.key);
        if (outcome !== "permit") return outcome;
        ctx.warn(`restriction ${check} returns OK for ${reverse}`);
        ctx.warn("this is not allowed for security reasons");
        ctx.warn("use DUNNO instead of OK if you want to make an exception");
        return CONFIG_ERROR;
      }
      case "check_helo_access":
        if (req.helo === "") return null;
        found = await domainKeys(req.helo);
        break;
      case "check_sender_access":
      case "check_recipient_access": {
        const address = check === "check_sender_access" ? req.sender : req.recipient;
        if (address === null || address === undefined) return null;
        if (address === "" && check === "check_sender_access") {
          const key = ctx.access.nullKey;
          const value = await find(key, () => maps.find(key));
          found = value === undefined ? undefined : { value };
          break;
        }
        if (/[\r\n]/.test(address)) return null; // never a lookup key, not even the resolver's
        let resolved: Resolution;
        try {
          resolved = await resolveFor(ctx, req.sender ?? "", address);
        } catch (e) {
          if (!(e instanceof ResolveError)) throw e;
          ctx.warn(e.message);
          return verdict(451, "4.3.0", `<${address}>: Temporary lookup failure`);
        }
        const rcpt = resolved.recipient;
        if (!rcpt.includes("@")) {
          ctx.warn(`check_mail_access: no @domain in address: ${rcpt}`);
          return null;
        }
        found = await find(rcpt, () =>
          accessAddressFind(maps, rcpt, {
            delimiters: ctx.access.delimiters,
            doubleBounceSender: ctx.access.doubleBounceSender,
            parentMatches: ctx.access.parentMatches,
          }));
        if (!found) return null;
        const outcome = await tableResult(ctx, req, stage, state, table, found.value, found.key);
        // A source-routed recipient is too suspicious for OK (Postfix).
        const suspicious = check === "check_recipient_access" && !ctx.allowUntrustedRouting &&
          (resolved.flags & RESOLVE_FLAG_ROUTED) !== 0;
        return outcome === "permit" && suspicious ? null : outcome;
      }
      case "check_sasl_access": {
        // The login name as the whole key: no parent domains, no partial keys (Postfix).
        const username = req.sasl?.username ?? "";
        if (!ctx.saslEnabled) {
          ctx.warn(`restriction \`${check}' ignored: no SASL support`);
          return null;
        }
        if (username === "") return null;
        const value = await find(username, () => maps.find(username));
        found = value === undefined ? undefined : { value };
        break;
      }
    }
  } catch (e) {
    if (!(e instanceof DictError)) throw e;
    ctx.warn(`${e.message}`);
    return await tableResult(ctx, req, stage, state, table, "451 4.3.5 Server configuration error");
  }
  return found ? await tableResult(ctx, req, stage, state, table, found.value, found.key) : null;
}

/**
 * Postfix's check_addr_access: the address, then shorter and shorter
 * prefixes ending at a "." (IPv4) or ":" (IPv6); only the full address goes
 * to pattern tables (cidr).
 */
async function addressKeys(
  maps: Maps,
  addr: string,
): Promise<{ value: string; key: string } | undefined> {
  let key = addr.toLowerCase();
  if (key.startsWith("::ffff:") && key.includes(".")) key = key.slice(7);
  const delim = key.includes(":") ? ":" : ".";
  let partial = false;
  for (;;) {
    const value = await find(key, () => maps.find(key, { partial }));
    if (value !== undefined) return { value, key };
    const cut = key.lastIndexOf(delim);
    if (cut <= 0) return undefined;
    key = key.slice(0, cut);
    partial = true;
  }
}

/**
 * check_policy_service: the service's action, evaluated as an access
 * table result about the list's subject (Postfix's check_policy_service
 * passes its caller's reply name and class).
 */
async function checkPolicy(
  ctx: RestrictionContext,
  req: CheckRequest,
  state: CheckState,
  stage: Stage,
  spec: string,
): Promise<Outcome> {
  let client;
  try {
    client = ctx.policy.get(spec);
  } catch (e) {
    ctx.warn(`${CHECK_POLICY_SERVICE} ${spec}: ${(e as Error).message}`);
    return CONFIG_ERROR;
  }
  const facts = req.policy ?? { command: stage === "data" ? "DATA" : "RCPT", protocol: "SMTP" };
  const action = await client.query(policyAttributes(req, facts));
  return await tableResult(ctx, req, stage, state, client.service.server, action);
}

/** The subject of each check_*_access's replies. */
const CHECK_STAGE: Record<string, Stage> = {
  check_client_access: "client",
  check_reverse_client_hostname_access: "reverse",
  check_helo_access: "helo",
  check_sender_access: "sender",
  check_recipient_access: "recipient",
  check_sasl_access: "sasl",
};

/** check_<subject>_<mx|ns|a>_access: whose domain, and which of its servers. */
const SERVER_CHECKS: ReadonlyMap<string, { stage: Stage; type: ServerType }> = new Map(
  (["client", "reverse_client_hostname", "helo", "sender", "recipient"] as const).flatMap((who) =>
    (["mx", "ns", "a"] as const).map((t) => [
      `check_${who}_${t}_access`,
      {
        stage: who === "reverse_client_hostname" ? "reverse" as const : who,
        type: t.toUpperCase() as ServerType,
      },
    ])
  ),
);
for (const [check, { stage }] of SERVER_CHECKS) CHECK_STAGE[check] = stage;

/**
 * Postfix's check_server_access for one check_*_{mx,ns,a}_access: the
 * subject's domain (a client name "unknown", a missing HELO, the null
 * sender check nothing), its servers' names and addresses in the table
 * (server_access.ts). OK is refused as a configuration error: these
 * checks may only refuse (Postfix's forbid_allowlist).
 */
async function serverAccess(
  ctx: RestrictionContext,
  req: CheckRequest,
  state: CheckState,
  check: string,
  table: string,
  server: { stage: Stage; type: ServerType },
  probe: Parameters<typeof findServerAccess>[4],
): Promise<Outcome> {
  let target: string | null | undefined;
  switch (server.stage) {
    case "client":
      target = req.client.name.toLowerCase() === "unknown" ? null : req.client.name;
      break;
    case "reverse": {
      const reverse = req.client.reverseName ?? req.client.name;
      target = reverse.toLowerCase() === "unknown" ? null : reverse;
      break;
    }
    case "helo":
      target = req.helo;
      break;
    case "sender":
      target = req.sender;
      break;
    default:
      target = req.recipient;
  }
  if (target === null || target === undefined || target === "" || /[\r\n]/.test(target)) {
    return null;
  }
  const { name, what } = subject(server.stage, req);
  let found: { value: string } | undefined;
  try {
    found = await findServerAccess(ctx.servers, server.type, target, {
      replyClass: what,
      replyName: name,
    }, probe);
  } catch (e) {
    if (!(e instanceof DnsNotPermitted)) throw e;
    ctx.warn(e.message);
    return CONFIG_ERROR;
  }
  if (!found) return null;
  const outcome = await tableResult(ctx, req, server.stage, state, table, found.value);
  if (outcome !== "permit") return outcome;
  ctx.warn(`restriction ${check} returns OK for ${target}`);
  ctx.warn("this is not allowed for security reasons");
  ctx.warn("use DUNNO instead of OK if you want to make an exception");
  return CONFIG_ERROR;
}

/** Restrictions followed by a table argument. */
function takesTable(r: string): boolean {
  return TABLE_RESTRICTIONS.has(r);
}

/**
 * Evaluates one list (Postfix's generic_checks); "permit", a Rejection, or
 * null when nothing decided. `shared` is the check's state, which access
 * table results (DEFER_IF_*) update.
 */
async function evaluate(
  list: string[],
  stage: Stage,
  ctx: RestrictionContext,
  req: CheckRequest,
  shared: CheckState,
): Promise<Outcome> {
  const { name, what } = subject(stage, req);
  let warnIfReject = false;
  for (let i = 0; i < list.length; i++) {
    // After DISCARD nothing more is checked in the transaction (Postfix's generic_checks).
    if (req.actions?.discard) break;
    const raw = list[i];
    const r = raw.toLowerCase();
    let outcome: Outcome = null;
    if (r === "warn_if_reject") {
      warnIfReject = true;
      continue;
    }
    if (r === CHECK_POLICY_SERVICE) {
      const spec = list[i + 1];
      if (spec === undefined) {
        ctx.warn(`restriction ${raw} must be followed by transport:server`);
        return CONFIG_ERROR;
      }
      i++;
      outcome = await checkPolicy(ctx, req, shared, stage, spec);
    } else if (takesTable(r)) {
      const table = list[i + 1];
      if (table === undefined) {
        ctx.warn(`restriction ${raw} requires a table argument`);
        return CONFIG_ERROR;
      }
      i++;
      const applies = r === "check_client_access" || r === "check_helo_access" ||
        r === "check_reverse_client_hostname_access" || SERVER_CHECKS.has(r) ||
        r === "check_sasl_access" ||
        (r === "check_sender_access" && req.sender !== null) ||
        (r === "check_recipient_access" && req.recipient !== undefined);
      if (applies) outcome = await checkAccess(ctx, req, shared, r, table);
    } else if (DNSXL_RESTRICTIONS.has(r)) {
      const arg = list[i + 1];
      if (arg === undefined) {
        ctx.warn(`restriction ${raw} requires domain name argument`);
      } else {
        i++;
        shared.warnIfReject = warnIfReject;
        outcome = await sandboxChecked(ctx, dnsxlCheck(r, arg, ctx, req, shared));
      }
    } else if (ctx.access.classes.has(raw) && !IMPLEMENTED_RESTRICTIONS.has(r)) {
      // A class named like a restriction is shadowed by it, as in Postfix.
      if (shared.depth > MAX_RECURSION) {
        ctx.warn(`restriction class ${raw} causes unreasonable recursion`);
        return CONFIG_ERROR;
      }
      shared.depth++;
      try {
        outcome = await evaluate(ctx.access.classes.get(raw)!, stage, ctx, req, shared);
      } finally {
        shared.depth--;
      }
    } else {
      shared.warnIfReject = warnIfReject;
      outcome = await sandboxChecked(ctx, builtin(r, raw, ctx, req, shared, name, what));
    }
    if (
      outcome !== null && typeof outcome === "object" && warnIfReject && outcome !== CONFIG_ERROR
    ) {
      const text = `${outcome.code} ${outcome.dsn} ${outcome.text}`;
      if (req.log) req.log("reject_warning", text);
      else ctx.warn(`reject_warning: ${text}`);
      outcome = null;
    }
    warnIfReject = false;
    if (ctx.explain) explainStep(ctx.explain, stage, req, list, raw, i, outcome, shared);
    if (outcome !== null) return outcome;
    // Nothing can change the outcome any more (Postfix stops here too).
    if (shared.deferIfPermit && shared.deferIfReject) break;
  }
  return null;
}

/**
 * One explain line: the restriction (with its argument, when `i` moved past
 * one), what it decided, and the access table value behind it.
 */
function explainStep(
  explain: (msg: string) => void,
  stage: Stage,
  req: CheckRequest,
  list: string[],
  raw: string,
  i: number,
  outcome: Outcome,
  shared: CheckState,
): void {
  const { name } = subject(stage, req);
  const arg = list[i] !== raw ? ` ${list[i]}` : "";
  const decided = outcome === null
    ? "no decision"
    : outcome === "permit"
    ? "permit"
    : `${outcome.code} ${outcome.dsn} ${outcome.text}`;
  const hit = shared.hit ? ` (table entry: ${shared.hit})` : "";
  shared.hit = undefined;
  explain(`${stage} <${name}>: ${raw}${arg}: ${decided}${hit}`);
}

/** A DNS query the sandbox refused is a configuration error (451 4.3.5), never a pass. */
async function sandboxChecked(ctx: RestrictionContext, p: Promise<Outcome>): Promise<Outcome> {
  try {
    return await p;
  } catch (e) {
    if (!(e instanceof DnsNotPermitted)) throw e;
    ctx.warn(e.message);
    return CONFIG_ERROR;
  }
}

/** One SPF verdict per transaction (per MAIL FROM): RCPT after RCPT asks again. */
const spfResults = new WeakMap<TransactionActions, { key: string; result: SpfResult }>();

/**
 * The transaction's SPF verdict: RFC 7208 check_host() for the client's
 * address and the MAIL FROM domain (for the null sender, postmaster@HELO),
 * through the session's resolver (lib/spf), made once per transaction.
 * `fresh` when this call made it. Null before MAIL FROM and for a client
 * without an IP address (a local submission).
 */
export async function spfVerdict(
  ctx: RestrictionContext,
  req: CheckRequest,
): Promise<{ result: SpfResult; fresh: boolean } | null> {
  if (req.sender === null) return null;
  const key = `${req.client.addr}\0${req.sender}\0${req.helo}`;
  const cached = req.actions ? spfResults.get(req.actions) : undefined;
  if (cached && cached.key === key) return { result: cached.result, fresh: false };
  const addr = req.client.addr.replace(/^ipv6:/i, "");
  const domain = req.sender === "" ? req.helo : req.sender.slice(req.sender.lastIndexOf("@") + 1);
  let result: SpfResult;
  try {
    result = await checkHost(addr, domain, req.sender, {
      resolver: ctx.authDns,
      helo: req.helo,
      receivingHost: ctx.dnsxl.serverName,
    });
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    return null; // no IP address: nothing to check
  }
  if (req.actions) spfResults.set(req.actions, { key, result });
  return { result, fresh: true };
}

/**
 * postwarden_reject_spf_fail (Postwarden's own; Postfix has no built-in
 * SPF): the transaction's {@link spfVerdict}. As postfix-policyd-spf-python
 * does by default: a fail is refused (550 5.7.23, RFC 7372), a temperror
 * deferred (451 4.7.24), and every other result (pass, neutral, none,
 * softfail, permerror) adds a Received-SPF: header (RFC 7208 section 9.1)
 * and goes on. Before MAIL FROM it does nothing. A transaction is checked
 * once; its header is added once.
 */
async function spfCheck(
  ctx: RestrictionContext,
  req: CheckRequest,
  state: CheckState,
): Promise<Outcome> {
  const cached = await spfVerdict(ctx, req);
  if (!cached || req.sender === null) return null;
  const r = cached.result.result;
  if (cached.fresh && r !== "fail" && r !== "temperror") {
    const value = receivedSpfHeader(cached.result, {
      ip: req.client.addr.replace(/^ipv6:/i, ""),
      envelopeFrom: req.sender,
      helo: req.helo,
      receiver: ctx.dnsxl.serverName,
      identity: req.sender === "" ? "helo" : "mailfrom",
    });
    req.prepend?.(`Received-SPF: ${value}`);
  }
  const { result } = cached;
  const who = `<${quoteAddress(req.sender)}>`;
  if (result.result === "fail") {
    const why = result.explanation
      ? result.explanation.replace(/\p{Cc}/gu, " ").slice(0, 200)
      : `SPF fail for ${result.domain} - not authorized from ${req.client.addr}`;
    return reject(state, verdict(550, "5.7.23", `${who}: Sender address rejected: ${why}`));
  }
  if (result.result === "temperror") {
    return reject(
      state,
      verdict(451, "4.7.24", `${who}: Sender address rejected: SPF temporary error`),
    );
  }
  return null;
}

/**
 * postwarden_reject_dmarc_fail (Postwarden's own; Postfix sites use
 * OpenDMARC): the message's DMARC verdict (authentication.ts) applied as
 * OpenDMARC does: the From: domain's policy "reject" refuses the message
 * (550 5.7.1), "quarantine" holds it (HOLD, logged as an access table's),
 * and a DNS failure defers it (451 4.7.1) rather than let a message that
 * may be refused through. Only smtpd_end_of_data_restrictions knows the
 * message; anywhere else (in a class) it is a configuration error.
 */
function dmarcCheck(ctx: RestrictionContext, req: CheckRequest, state: CheckState): Outcome {
  const auth = req.authentication;
  if (auth === undefined) {
    ctx.warn("postwarden_reject_dmarc_fail: only smtpd_end_of_data_restrictions has the message");
    return CONFIG_ERROR;
  }
  const d = auth.dmarc;
  if (!d) return null; // no usable From: domain (the header says why)
  if (d.result === "temperror") {
    return reject(state, verdict(451, "4.7.1", `DMARC temporary error for ${d.fromDomain}`));
  }
  if (d.result !== "fail") return null;
  if (auth.dmarcOverride) {
    req.log?.(
      "info",
      `DMARC fail for ${d.fromDomain} overridden: ARC pass from trusted sealer ${auth.dmarcOverride}`,
    );
    return null;
  }
  if (d.disposition === "reject") {
    return reject(
      state,
      verdict(550, "5.7.1", `Email rejected per DMARC policy for ${d.fromDomain}`),
    );
  }
  if (d.disposition === "quarantine" && req.actions && !req.actions.hold) {
    req.log?.("hold", `DMARC policy quarantine for ${d.fromDomain}`);
    req.actions.hold = true;
  }
  return null;
}

/** The restrictions that take no argument. */
async function builtin(
  r: string,
  raw: string,
  ctx: RestrictionContext,
  req: CheckRequest,
  state: CheckState,
  name: string,
  what: string,
): Promise<Outcome> {
  switch (r) {
    case "permit":
      return "permit";
    case "reject":
      return reject(
        state,
        verdict(ctx.codes.reject, "5.7.1", `<${name}>: ${what} rejected: Access denied`),
      );
    case "defer":
      return verdict(ctx.codes.defer, "4.3.2", `<${name}>: ${what} rejected: Try again later`);
    case "permit_mynetworks": {
      const m = matchNetworkList(ctx.mynetworks, req.client);
      if (m === "error") return verdict(451, "4.3.0", `<${name}>: Temporary lookup failure`);
      return m ? "permit" : null;
    }
    case "permit_sasl_authenticated":
      return req.sasl && req.sasl.method.toLowerCase() !== "anonymous" ? "permit" : null;
    case "reject_sender_login_mismatch":
    case "reject_authenticated_sender_login_mismatch":
    case "reject_known_sender_login_mismatch":
    case "reject_unauthenticated_sender_login_mismatch": {
      let v;
      try {
        v = await senderLoginMismatch(ctx.senderLogin, r, req.sender, req.sasl?.username ?? null);
      } catch (e) {
        if (!(e instanceof DictError) && !(e instanceof ResolveError)) throw e;
        ctx.warn(e.message);
        return verdict(
          451,
          "4.3.0",
          `<${quoteAddress(req.sender ?? "")}>: Temporary lookup failure`,
        );
      }
      return v === null ? null : reject(state, v);
    }
    case "permit_auth_destination":
    case "reject_unauth_destination":
    case "defer_unauth_destination": {
      if (req.recipient === undefined) return null;
      const auth = state.auth ??= await authDestination(ctx, req, req.recipient);
      if (typeof auth === "object") return auth;
      const ok = auth === "ok";
      if (ok && r === "permit_auth_destination") return "permit";
      if (ok || r === "permit_auth_destination") return null;
      const code = r === "reject_unauth_destination" ? ctx.codes.relay : 454;
      return reject(state, verdict(code, "4.7.1", `<${req.recipient}>: Relay access denied`));
    }
    case "reject_invalid_helo_hostname":
    case "reject_non_fqdn_helo_hostname": {
      if (req.helo === "") return null;
      if (req.helo.startsWith("[")) {
        if (validAddressLiteral(req.helo)) return null;
        return reject(
          state,
          verdict(
            ctx.codes.invalidHostname,
            "5.5.2",
            `<${req.helo}>: Helo command rejected: invalid ip address`,
          ),
        );
      }
      const host = truncateDot(req.helo);
      if (r === "reject_invalid_helo_hostname") {
        if (validHostname(host) || parseIp(host)?.length === 4) return null;
        return reject(
          state,
          verdict(
            ctx.codes.invalidHostname,
            "5.5.2",
            `<${req.helo}>: Helo command rejected: Invalid name`,
          ),
        );
      }
      if (validHostname(host) && host.includes(".")) return null;
      return reject(
        state,
        verdict(
          ctx.codes.nonFqdn,
          "5.5.2",
          `<${req.helo}>: Helo command rejected: need fully-qualified hostname`,
        ),
      );
    }
    case "reject_non_fqdn_sender":
    case "reject_non_fqdn_recipient": {
      const sender = r === "reject_non_fqdn_sender";
      const address = sender ? req.sender : req.recipient;
      if (address === undefined || address === null || address === "" || fqdnAddress(address)) {
        return null;
      }
      return reject(
        state,
        verdict(
          ctx.codes.nonFqdn,
          "5.5.2",
          `<${quoteAddress(address)}>: ${
            sender ? "Sender" : "Recipient"
          } address rejected: need fully-qualified address`,
        ),
      );
    }
    case "reject_unlisted_recipient":
    case "reject_unlisted_sender": {
      const sender = r === "reject_unlisted_sender";
      const address = sender ? req.sender : req.recipient;
      if (address === undefined || address === null) return null;
      if (!ctx.listed) {
        ctx.warn(`restriction ${raw} is not available in this process`);
        return CONFIG_ERROR;
      }
      const v = await checkListed(
        ctx.listed,
        address,
        sender ? "sender" : "recipient",
        sender ? address : req.sender ?? "",
      );
      return v === null ? null : reject(state, v);
    }
    case "reject_unknown_helo_hostname":
    case "reject_unknown_hostname": {
      if (req.helo === "") return null;
      if (req.helo.startsWith("[")) {
        if (validAddressLiteral(req.helo)) return null;
        return reject(
          state,
          verdict(
            ctx.codes.invalidHostname,
            "5.5.2",
            `<${req.helo}>: Helo command rejected: invalid ip address`,
          ),
        );
      }
      const status = await hostStatus(ctx.dns, req.helo);
      if (status === "ok" || status === "nullmx") return null;
      const text = `<${req.helo}>: Helo command rejected: Host not found`;
      if (status === "notfound") {
        return reject(state, verdict(ctx.codes.unknownHostname, "4.7.1", text));
      }
      return tempfail(state, ctx.tempfail.helo, verdict(450, "4.7.1", text));
    }
    case "reject_unknown_sender_domain":
    case "reject_unknown_address":
    case "reject_unknown_recipient_domain": {
      const sender = r !== "reject_unknown_recipient_domain";
      const address = sender ? req.sender : req.recipient;
      if (address === null || address === undefined || (sender && address === "")) return null;
      return await unknownAddress(ctx, req, state, address, sender ? "sender" : "recipient");
    }
    case "postwarden_reject_spf_fail":
      return await spfCheck(ctx, req, state);
    case "postwarden_reject_dmarc_fail":
      return dmarcCheck(ctx, req, state);
    case "reject_unknown_client_hostname":
    case "reject_unknown_client": {
      const status = req.client.nameStatus ?? (req.client.name === "unknown" ? "perm" : "ok");
      if (status === "ok") return null;
      const code = status === "temp" ? 450 : ctx.codes.unknownClient;
      return reject(
        state,
        verdict(
          code,
          "4.7.25",
          `Client host rejected: cannot find your hostname, [${req.client.addr}]`,
        ),
      );
    }
    case "reject_unknown_reverse_client_hostname": {
      const reverse = req.client.reverseName ?? req.client.name;
      const status = req.client.reverseStatus ?? (reverse === "unknown" ? "perm" : "ok");
      if (status === "ok") return null;
      const code = status === "perm" ? ctx.codes.unknownClient : 450;
      return reject(
        state,
        verdict(
          code,
          "4.7.1",
          `Client host rejected: cannot find your reverse hostname, [${req.client.addr}]`,
        ),
      );
    }
    case "reject_unauth_pipelining":
      if (!req.pipelining) return null;
      return reject(
        state,
        verdict(
          503,
          "5.5.0",
          `<${name}>: ${what} rejected: Improper use of SMTP command pipelining`,
        ),
      );
    case "reject_maps_rbl": {
      if (!state.mapsRblWarned) {
        state.mapsRblWarned = true;
        ctx.warn(
          'support for restriction "reject_maps_rbl" will be removed from Postfix; ' +
            'use "reject_rbl_client domain-name" instead',
        );
      }
      for (const list of ctx.dnsxl.mapsRblDomains) {
        const outcome = await dnsxlCheck("reject_rbl_client", list, ctx, req, state);
        if (outcome !== null) return outcome;
      }
      return null;
    }
    default:
      if (IMPLEMENTED_RESTRICTIONS.has(r)) throw new Error(`restriction ${r} not wired`);
      ctx.warn(`restriction "${raw}" is not supported by Postwarden`);
      return CONFIG_ERROR;
  }
}

/**
 * Postfix's DEFER_IF_PERMIT2 with a tempfail action: "defer" (or
 * warn_if_reject) replies now; "defer_if_permit" replies only if the
 * request would otherwise be accepted.
 */
function tempfail(state: CheckState, action: TempfailAction, v: Rejection): Outcome {
  if (action === "defer" || state.warnIfReject) return reject(state, v);
  state.deferIfPermit ??= v;
  return null;
}

/**
 * Postfix's reject_unknown_address: the address is resolved; a domain we
 * deliver to (local or virtual), an address literal and an address without
 * domain pass; otherwise its domain must have MX or address records.
 */
async function unknownAddress(
  ctx: RestrictionContext,
  req: CheckRequest,
  state: CheckState,
  address: string,
  stage: "sender" | "recipient",
): Promise<Outcome> {
  const { name, what } = subject(stage, { ...req, sender: address, recipient: address });
  if (/[\r\n]/.test(address)) return null;
  let resolved: Resolution;
  try {
    resolved = await resolveFor(ctx, req.sender ?? "", address);
  } catch (e) {
    if (!(e instanceof ResolveError)) throw e;
    ctx.warn(e.message);
    return verdict(451, "4.3.0", `<${address}>: Temporary lookup failure`);
  }
  const at = resolved.recipient.lastIndexOf("@");
  if (at < 0 || (resolved.flags & RESOLVE_CLASS_FINAL)) return null;
  const domain = resolved.recipient.slice(at + 1).toLowerCase();
  if (domain.startsWith("[") && domain.endsWith("]")) return null;
  const status = await mailhostStatus(ctx.dns, domain);
  if (status === "ok") return null;
  const sender = stage === "sender";
  if (status === "nullmx") {
    return reject(
      state,
      verdict(
        sender ? 550 : 556,
        sender ? "4.7.27" : "4.1.10",
        `<${name}>: ${what} rejected: Domain ${domain} does not accept mail (nullMX)`,
      ),
    );
  }
  const dsn = sender ? "4.1.8" : "4.1.2";
  const text = `<${name}>: ${what} rejected: Domain not found`;
  if (status === "notfound") return reject(state, verdict(ctx.codes.unknownAddress, dsn, text));
  return tempfail(state, ctx.tempfail.address, verdict(450, dsn, text));
}

/** The name Postfix gives each DNS list subject in replies ($rbl_class). */
const DNSXL_CLASS: Record<string, { stage: Stage; replyClass: string }> = {
  reject_rbl_client: { stage: "client", replyClass: "Client host" },
  reject_rbl: { stage: "client", replyClass: "Client host" },
  permit_dnswl_client: { stage: "client", replyClass: "Client host" },
  reject_rhsbl_client: { stage: "client", replyClass: "Client host" },
  permit_rhswl_client: { stage: "client", replyClass: "Client host" },
  reject_rhsbl_reverse_client: { stage: "reverse", replyClass: "Unverified Client host" },
  reject_rhsbl_helo: { stage: "helo", replyClass: "Helo command" },
  reject_rhsbl_sender: { stage: "sender", replyClass: "Sender address" },
  reject_rhsbl_recipient: { stage: "recipient", replyClass: "Recipient address" },
};

/**
 * One DNS list restriction (dnsbl.ts does the lookups): what it looks up,
 * and Postfix's outcome. A listed deny-list entry rejects with the
 * rbl_reply_maps or default_rbl_reply template; a listed allow-list entry
 * permits (never for a recipient we would not relay to); a lookup that
 * failed for now neither rejects nor permits.
 */
async function dnsxlCheck(
  r: string,
  arg: string,
  ctx: RestrictionContext,
  req: CheckRequest,
  state: CheckState,
): Promise<Outcome> {
  const problem = dnsxlArgumentProblem(arg);
  if (problem) {
    ctx.warn(`restriction ${r}: ${problem}`);
    return CONFIG_ERROR;
  }
  const { replyClass } = DNSXL_CLASS[r];
  const d = ctx.dnsxl;
  let what: string;
  switch (r) {
    case "reject_rbl_client":
    case "reject_rbl":
    case "permit_dnswl_client":
      what = req.client.addr;
      break;
    case "reject_rhsbl_client":
    case "permit_rhswl_client":
      what = req.client.name;
      if (what.toLowerCase() === "unknown") return null;
      break;
    case "reject_rhsbl_reverse_client":
      what = req.client.reverseName ?? req.client.name;
      if (what.toLowerCase() === "unknown") return null;
      break;
    case "reject_rhsbl_helo":
      what = req.helo;
      if (what === "") return null;
      break;
    case "reject_rhsbl_sender":
      if (req.sender === null || req.sender === "") return null;
      what = req.sender;
      break;
    default: // reject_rhsbl_recipient
      if (req.recipient === undefined) return null;
      what = req.recipient;
  }
  if (/[\r\n]/.test(what)) return null;
  const permitting = r.startsWith("permit_");
  if (permitting && req.where === "RCPT" && req.recipient !== undefined) {
    // Safety: an allow list never lets a recipient through that we do not relay for.
    const auth = state.auth ??= await authDestination(ctx, req, req.recipient);
    if (typeof auth === "object") return auth;
    if (auth !== "ok") return null;
  }
  const byAddress = r === "reject_rbl_client" || r === "reject_rbl" ||
    r === "permit_dnswl_client";
  const result: DnsxlResult | null = byAddress
    ? await findDnsxlAddr(d, arg, what, { confirm: permitting })
    : await findDnsxlDomain(d, arg, what, { confirm: permitting });
  if (result === null || result === "unlisted") return null;
  if (permitting) {
    if (result !== "soft") return "permit";
    state.deferIfReject ??= verdict(
      450,
      "4.7.1",
      `<${what}>: ${replyClass} rejected: Service unavailable`,
    );
    return null;
  }
  if (result === "soft") return null;
  return await rblReject(ctx, req, state, {
    list: arg,
    what,
    replyClass,
    txt: result.txt ?? "",
    code: d.code,
  }, DNSXL_CLASS[r].stage);
}

/** Postfix's rbl_reject_reply: the reply template, expanded and checked. */
async function rblReject(
  ctx: RestrictionContext,
  req: CheckRequest,
  state: CheckState,
  facts: { list: string; what: string; replyClass: string; txt: string; code: number },
  stage: Stage,
): Promise<Outcome> {
  const d = ctx.dnsxl;
  let template: string | undefined;
  if (d.replyMaps !== "") {
    try {
      const maps = await tableOf(ctx, "rbl_reply_maps", d.replyMaps);
      template = await find(facts.list, () => maps.find(facts.list));
    } catch (e) {
      if (!(e instanceof DictError)) throw e;
      ctx.warn(`rbl_reply_maps ${d.replyMaps}: ${e.message}`);
      return CONFIG_ERROR;
    }
  }
  const attrs = {
    serverName: d.serverName,
    clientName: req.client.name,
    clientAddr: req.client.addr,
    clientPort: req.client.port === undefined ? "" : String(req.client.port),
    reverseClientName: req.client.reverseName ?? req.client.name,
    helo: req.helo,
    sender: req.sender,
    recipient: req.recipient ?? null,
  };
  let reply: string | null = null;
  if (template !== undefined) {
    reply = expandRblTemplate(template, facts, attrs, ctx.warn);
    if (reply === null) {
      ctx.warn(
        `rbl_reject_reply: bad rbl reply template for domain ${facts.list}: ${template}`,
      );
    }
  }
  if (reply === null) reply = expandRblTemplate(d.defaultReply, facts, attrs, ctx.warn);
  if (reply === null) {
    ctx.warn(`rbl_reject_reply: bad default rbl reply template: ${d.defaultReply}`);
    return CONFIG_ERROR;
  }
  const m = /^([45]\d\d) (.*)$/s.exec(reply);
  if (!m) {
    ctx.warn(`rbl response code configuration error: ${reply}`);
    return reject(state, verdict(450, "4.7.1", "Service unavailable"));
  }
  const split = dsnSplit("4.7.1", m[2]);
  // Postfix's smtpd_check_reject: at most 510 characters, non-printable ones as spaces.
  const text = (split.text || "Service unavailable").replace(/[^\t\x20-\x7e]/g, " ")
    .slice(0, 510 - 4 - split.dsn.length - 1);
  return reject(state, verdict(Number(m[1]), dsnFix(split.dsn, stage), text));
}

/**
 * Runs lists in order; the first rejection wins, a permit ends only its
 * own list. DEFER_IF_REJECT lasts for its stage (the relay and recipient
 * lists are one); DEFER_IF_PERMIT lasts for the whole check, starting from
 * `carried` (an earlier stage's), and, when `final` (RCPT and DATA, as
 * Postfix), turns acceptance into its deferral; `keep` receives it at the
 * end.
 */
async function run(
  ctx: RestrictionContext,
  req: CheckRequest,
  lists: [string[], Stage][],
  final: boolean,
  carried?: Rejection,
  keep?: (v: Rejection | undefined) => void,
): Promise<Rejection | null> {
  const state: CheckState = { depth: 0, deferIfPermit: carried };
  try {
    return await runLists(ctx, req, lists, final, state);
  } finally {
    keep?.(state.deferIfPermit);
  }
}

async function runLists(
  ctx: RestrictionContext,
  req: CheckRequest,
  lists: [string[], Stage][],
  final: boolean,
  state: CheckState,
): Promise<Rejection | null> {
  let previous: Stage | null = null;
  for (const [list, stage] of lists) {
    if (stage !== previous) state.deferIfReject = undefined;
    previous = stage;
    const v = await evaluate(list, stage, ctx, req, state);
    if (v !== null && v !== "permit") return v;
  }
  return final ? state.deferIfPermit ?? null : null;
}

/** smtpd_client_restrictions at connect (only with smtpd_delay_reject = no). */
export function checkConnect(
  ctx: RestrictionContext,
  req: CheckRequest,
): Promise<Rejection | null> {
  const carry = req.deferIfPermit;
  return run(ctx, req, [[ctx.client, "client"]], false, undefined, (v) => {
    if (carry) carry.client = v;
  });
}

/** smtpd_helo_restrictions at HELO/EHLO (only with smtpd_delay_reject = no). */
export function checkHelo(ctx: RestrictionContext, req: CheckRequest): Promise<Rejection | null> {
  const carry = req.deferIfPermit;
  return run(ctx, req, [[ctx.helo, "helo"]], false, carry?.client, (v) => {
    if (carry) carry.helo = v;
  });
}

/** smtpd_sender_restrictions at MAIL (only with smtpd_delay_reject = no). */
export function checkSender(ctx: RestrictionContext, req: CheckRequest): Promise<Rejection | null> {
  const carry = req.deferIfPermit;
  return run(ctx, req, [[ctx.sender, "sender"]], false, carry?.client ?? carry?.helo, (v) => {
    if (carry) carry.sender = v;
  });
}
/**
 * At RCPT: with smtpd_delay_reject, the client, helo (when HELO was given)
 * and sender lists first; then the relay and recipient lists. Null means
 * accept.
 */
export async function checkRecipient(
  ctx: RestrictionContext,
  req: CheckRequest,
): Promise<Rejection | null> {
  if (req.recipient !== undefined && req.recipient.toLowerCase() === "postmaster") return null;
  if (!canRefuseRelay(ctx.relay, ctx.recipient)) {
    ctx.warn(OPEN_RELAY_MESSAGE);
    return CONFIG_ERROR;
  }
  const lists: [string[], Stage][] = [];
  if (ctx.delayReject) {
    lists.push([ctx.client, "client"]);
    if (req.helo !== "") lists.push([ctx.helo, "helo"]);
    lists.push([ctx.sender, "sender"]);
  }
  const relay: [string[], Stage] = [ctx.relay, "recipient"];
  const rcpt: [string[], Stage] = [ctx.recipient, "recipient"];
  lists.push(...(ctx.relayFirst ? [relay, rcpt] : [rcpt, relay]));
  // Without smtpd_delay_reject, MAIL's DEFER_IF_PERMIT (with connect's and HELO's) carries over.
  const carried = ctx.delayReject ? undefined : req.deferIfPermit?.sender;
  return await run(ctx, { ...req, where: "RCPT" }, lists, true, carried);
}

/**
 * smtpd_end_of_data_restrictions after the final dot, before cleanup
 * commits the message (the recipient is set when there is only one).
 */
export async function checkEndOfData(
  ctx: RestrictionContext,
  req: CheckRequest,
): Promise<Rejection | null> {
  return await run(ctx, req, [[ctx.eod, "eod"]], true);
}

/** smtpd_data_restrictions at DATA (the recipient is set when there is only one). */
export async function checkData(
  ctx: RestrictionContext,
  req: CheckRequest,
): Promise<Rejection | null> {
  return await run(ctx, req, [[ctx.data, "data"]], true);
}
