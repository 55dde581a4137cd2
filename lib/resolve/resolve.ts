/**
 * The address resolver: the part of Postfix's trivial-rewrite (resolve.c,
 * transport.c, resolve_local.c) that says where a recipient goes. qmgr
 * asks it for the transport and next hop of each recipient; smtpd asks it
 * for the address class and routing flags behind reject_unauth_destination.
 *
 * For an internal-form address (see lib/address), in Postfix's order:
 *
 * 1. Strip every domain of ours (mydestination, or an address literal of
 *    inet_interfaces / proxy_interfaces) from the right, applying after
 *    each strip the bang path swap and the percent hack to what is left,
 *    and looking inside a quoted local part for "@", "%" and "!"; a local
 *    part left empty becomes $empty_address_recipient; an address without
 *    any domain gets @$myhostname. The result is the recipient.
 * 2. Bad syntax (a domain that is not a host name or address literal; a
 *    recipient starting with "-" unless allow_min_user) is flagged
 *    {@link RESOLVE_FLAG_ERROR}; qmgr bounces it.
 * 3. Routing operators left in the local part ("@", "!" or "%" before the
 *    domain) set {@link RESOLVE_FLAG_ROUTED}, whatever swap_bangpath and
 *    allow_percent_hack say (the next hop may honour them).
 * 4. Class and transport: a domain of ours is local (local_transport);
 *    else virtual_alias_domains gives `error:5.1.1 User unknown in virtual
 *    alias table`, virtual_mailbox_domains virtual_transport, relay_domains
 *    relay_transport, anything else default_transport (or what
 *    sender_dependent_default_transport_maps says for the sender). The
 *    next hop is the recipient domain; for relay and default classes
 *    sender_dependent_relayhost_maps (unless it says DUNNO), else
 *    relayhost, overrides it; a
 *    `transport:nexthop` value of the class's parameter overrides both.
 * 5. transport_maps (not for the virtual alias class), see transport.ts.
 * 6. relocated_maps: `error:5.1.6 User has moved to <value>`.
 *
 * A table that cannot answer makes the resolution fail with a
 * {@link ResolveError}: the caller tries again later (qmgr defers with
 * 4.3.0, smtpd answers 451 4.3.0), never "not found".
 *
 * Tables are opened once, on first use or by {@link Resolver.open}.
 *
 * @module
 */
import { quotedLocalPart, rewriteAddress, type RewriteContext } from "../address/rewrite.ts";
import { splitAddress } from "../address/mod.ts";
import { type Config, ConfigError, parseIp } from "../config/mod.ts";
import { addressFind, DictError, Maps } from "../maps/mod.ts";
import { interfaceAddresses, type InterfaceOptions, literalMatches } from "./interfaces.ts";
import { MatchList } from "./match_list.ts";
import { transportLookup } from "./transport.ts";

/** The domain is one of ours: local, virtual alias or virtual mailbox class. */
export const RESOLVE_FLAG_FINAL = 1 << 0;
/** The local part still routes ("@", "!" or "%" before the domain). */
export const RESOLVE_FLAG_ROUTED = 1 << 1;
/** Bad address syntax: qmgr bounces, the address is never delivered. */
export const RESOLVE_FLAG_ERROR = 1 << 2;
/** mydestination, inet_interfaces, proxy_interfaces. */
export const RESOLVE_CLASS_LOCAL = 1 << 8;
/** virtual_alias_domains. */
export const RESOLVE_CLASS_ALIAS = 1 << 9;
/** virtual_mailbox_domains. */
export const RESOLVE_CLASS_VIRTUAL = 1 << 10;
/** relay_domains. */
export const RESOLVE_CLASS_RELAY = 1 << 11;
/** Everything else. */
export const RESOLVE_CLASS_DEFAULT = 1 << 12;
/** The classes Postfix delivers here (permit_auth_destination permits them). */
export const RESOLVE_CLASS_FINAL = RESOLVE_CLASS_LOCAL | RESOLVE_CLASS_ALIAS |
  RESOLVE_CLASS_VIRTUAL;

/** Address class names, for logs and tests. */
export type AddressClass = "local" | "alias" | "virtual" | "relay" | "default";

/** Where one recipient goes. */
export interface Resolution {
  /** master.cf service name ("" when flags has RESOLVE_FLAG_ERROR). */
  transport: string;
  /** Next hop: a domain, `[host]:port`, or the error text for the error transport. */
  nexthop: string;
  /** The recipient to deliver to (internal form, always user@domain). */
  recipient: string;
  class: AddressClass;
  /** RESOLVE_FLAG_* and RESOLVE_CLASS_* bits, as Postfix's resolve reply. */
  flags: number;
  /**
   * What chose the transport and next hop, for people (`postwarden test
   * --explain`): "default_transport = smtp", "relay_transport = relay;
   * relayhost = [mail.isp.example]", "transport_maps: partner.example
   * smtp:[relay.partner.example]" (the table entry), "relocated_maps: ...".
   */
  rule?: string;
}

/** The resolver could not decide (a table failed, a null transport): try again later. */
export class ResolveError extends Error {
  override readonly name = "ResolveError";
  constructor(
    message: string,
    /** The parameter whose table failed ("transport_maps"), or "" for other failures. */
    readonly parameter = "",
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Parameter values the resolver reads (all expanded). */
export interface ResolverParams {
  myhostname: string;
  myorigin: string;
  mydomain: string;
  mydestination: string;
  inetInterfaces: string[];
  proxyInterfaces: string[];
  inetProtocols: string[];
  virtualAliasDomains: string;
  virtualMailboxDomains: string;
  relayDomains: string;
  localTransport: string;
  virtualTransport: string;
  relayTransport: string;
  defaultTransport: string;
  relayhost: string;
  transportMaps: string;
  senderRelayhostMaps: string;
  senderRelayhostNullKey: string;
  senderTransportMaps: string;
  senderTransportNullKey: string;
  relocatedMaps: string;
  recipientDelimiter: string;
  doubleBounceSender: string;
  emptyAddressRecipient: string;
  swapBangpath: boolean;
  percentHack: boolean;
  appendDotMydomain: boolean;
  resolveNullDomain: boolean;
  resolveNumericDomain: boolean;
  allowMinUser: boolean;
  showUnknownTable: boolean;
  /** The parameter names listed in parent_domain_matches_subdomains. */
  parentMatches: string[];
}

const PARENT_DEFAULT = "debug_peer_list,fast_flush_domains,mynetworks," +
  "permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps";

/**
 * The resolver's parameters from a configuration.
 *
 * @throws {ConfigError} for a bad value (or an unreadable myorigin file).
 */
export function resolverParams(c: Config): ResolverParams {
  return {
    myhostname: c.str("myhostname"),
    myorigin: originOrEmpty(c),
    mydomain: c.str("mydomain"),
    mydestination: c.str("mydestination"),
    inetInterfaces: c.list("inet_interfaces"),
    proxyInterfaces: c.list("proxy_interfaces"),
    inetProtocols: c.list("inet_protocols"),
    virtualAliasDomains: c.str("virtual_alias_domains"),
    virtualMailboxDomains: c.str("virtual_mailbox_domains"),
    relayDomains: c.str("relay_domains"),
    localTransport: c.str("local_transport"),
    virtualTransport: c.str("virtual_transport"),
    relayTransport: c.str("relay_transport"),
    defaultTransport: c.str("default_transport"),
    relayhost: c.str("relayhost").trim(),
    transportMaps: c.str("transport_maps"),
    senderRelayhostMaps: c.str("sender_dependent_relayhost_maps"),
    senderRelayhostNullKey: c.str("empty_address_relayhost_maps_lookup_key"),
    senderTransportMaps: c.str("sender_dependent_default_transport_maps"),
    senderTransportNullKey: c.str("empty_address_default_transport_maps_lookup_key"),
    relocatedMaps: c.str("relocated_maps"),
    recipientDelimiter: c.str("recipient_delimiter"),
    doubleBounceSender: c.str("double_bounce_sender"),
    emptyAddressRecipient: c.str("empty_address_recipient"),
    swapBangpath: c.bool("swap_bangpath"),
    percentHack: c.bool("allow_percent_hack"),
    appendDotMydomain: c.bool("append_dot_mydomain"),
    resolveNullDomain: c.bool("resolve_null_domain"),
    resolveNumericDomain: c.bool("resolve_numeric_domain"),
    allowMinUser: c.bool("allow_min_user"),
    showUnknownTable: c.bool("show_user_unknown_table_name"),
    // Not in the parameter table (setting it is refused): Postfix's default.
    parentMatches: (c.raw("parent_domain_matches_subdomains") ?? PARENT_DEFAULT)
      .split(/[\s,]+/).filter((s) => s !== ""),
  };
}

/**
 * $myorigin, or "" when it names a file this process cannot read: the
 * resolver uses it only to try a bare user name in address tables, and
 * whoever appends it (cleanup, smtpd) reports the file.
 */
function originOrEmpty(c: Config): string {
  try {
    return c.str("myorigin");
  } catch (e) {
    if (e instanceof ConfigError) return "";
    throw e;
  }
}

/**
 * The "local" rewriting context of a configuration, for
 * {@link rewriteAddress}: what cleanup applies to every address and smtpd
 * to a recipient before it resolves it.
 *
 * @throws {ConfigError} for a bad value (or an unreadable myorigin file).
 */
export function rewriteContext(c: Config): RewriteContext {
  return {
    myorigin: c.str("myorigin"),
    mydomain: c.str("mydomain"),
    appendAtMyorigin: c.bool("append_at_myorigin"),
    appendDotMydomain: c.bool("append_dot_mydomain"),
    swapBangpath: c.bool("swap_bangpath"),
    percentHack: c.bool("allow_percent_hack"),
  };
}

interface Tables {
  mydestination: MatchList;
  aliasDomains: MatchList;
  mailboxDomains: MatchList;
  relayDomains: MatchList;
  transport: Maps;
  senderRelay: Maps;
  senderTransport: Maps;
  relocated: Maps;
  own: Uint8Array[];
}

/** Options for {@link Resolver}. */
export interface ResolverOptions {
  /** How inet_interfaces = all is listed, and where that reports. */
  interfaces?: Pick<InterfaceOptions, "lister" | "warn">;
  /** Warnings (a null lookup result). @default console.warn */
  warn?: (message: string) => void;
  /**
   * How the tables are opened: a daemon passes its ctx.maps (log, proxymap).
   * @default Maps.open
   */
  openMaps?: (title: string, value: string) => Promise<Maps>;
}

/** Options for {@link Resolver.resolve}. */
export interface ResolveOptions {
  /** The envelope sender, for the sender-dependent maps ("" is the null sender). @default "" */
  sender?: string;
}

/** One configuration's resolver; async, its tables opened once. */
export class Resolver {
  #tables: Promise<Tables> | null = null;
  readonly #warn: (message: string) => void;

  constructor(readonly params: ResolverParams, readonly opts: ResolverOptions = {}) {
    this.#warn = opts.warn ?? ((m) => console.warn(m));
  }

  /** A resolver for a configuration (see {@link resolverParams}). */
  static fromConfig(c: Config, opts: ResolverOptions = {}): Resolver {
    return new Resolver(resolverParams(c), opts);
  }

  /**
   * Opens every table the parameters name (once; later calls share it).
   *
   * @throws {DictError} for a table that cannot be opened or a bad list.
   */
  open(): Promise<Tables> {
    if (this.#tables === null) {
      this.#tables = this.#openTables();
      // A failed open is retried by the next call, not cached.
      this.#tables.catch(() => this.#tables = null);
    }
    return this.#tables;
  }

  async #openTables(): Promise<Tables> {
    const p = this.params;
    const parent = (name: string) => p.parentMatches.includes(name);
    let own: Uint8Array[];
    try {
      const io = { protocols: p.inetProtocols, ...this.opts.interfaces };
      own = [
        ...interfaceAddresses("inet_interfaces", p.inetInterfaces, io),
        ...interfaceAddresses("proxy_interfaces", p.proxyInterfaces, io),
      ];
    } catch (e) {
      throw new DictError((e as Error).message, "config");
    }
    const open = this.opts.openMaps ?? ((t: string, v: string) => Maps.open(t, v));
    const opened: { close(): Promise<void> }[] = [];
    const keep = <T extends { close(): Promise<void> }>(x: T) => (opened.push(x), x);
    try {
      return {
        own,
        mydestination: keep(await MatchList.open("mydestination", p.mydestination, "string", open)),
        aliasDomains: keep(
          await MatchList.open("virtual_alias_domains", p.virtualAliasDomains, "string", open),
        ),
        mailboxDomains: keep(
          await MatchList.open("virtual_mailbox_domains", p.virtualMailboxDomains, "string", open),
        ),
        relayDomains: keep(
          await MatchList.open(
            "relay_domains",
            p.relayDomains,
            parent("relay_domains") ? "parent" : "domain",
            open,
          ),
        ),
        transport: keep(await open("transport_maps", p.transportMaps)),
        senderRelay: keep(
          await open("sender_dependent_relayhost_maps", p.senderRelayhostMaps),
        ),
        senderTransport: keep(
          await open("sender_dependent_default_transport_maps", p.senderTransportMaps),
        ),
        relocated: keep(await open("relocated_maps", p.relocatedMaps)),
      };
    } catch (e) {
      await Promise.all(opened.map((x) => x.close()));
      throw e;
    }
  }

  /** Closes the tables. */
  async close(): Promise<void> {
    const t = this.#tables;
    this.#tables = null;
    if (t === null) return;
    const tables = await t.catch(() => null);
    if (tables === null) return;
    await Promise.all([
      tables.mydestination.close(),
      tables.aliasDomains.close(),
      tables.mailboxDomains.close(),
      tables.relayDomains.close(),
      tables.transport.close(),
      tables.senderRelay.close(),
      tables.senderTransport.close(),
      tables.relocated.close(),
    ]);
  }

  /**
   * Postfix's resolve_local(): the domain is mydestination or an address
   * literal of inet_interfaces / proxy_interfaces (one trailing dot ignored).
   *
   * @throws {ResolveError} when mydestination's table cannot answer.
   */
  async isLocal(domain: string): Promise<boolean> {
    const t = await this.#open();
    let d = domain;
    if (d.endsWith(".")) d = d.slice(0, -1);
    if (d === "" || d.endsWith(".")) return false;
    if (await this.#try(t.mydestination.title, () => t.mydestination.match(d))) return true;
    return literalMatches(d, t.own);
  }

  /**
   * Looks the recipient up in relocated_maps (Postfix's search order for
   * address tables, extension ignored): the new location, or undefined.
   * smtpd uses it to reject moved users at RCPT.
   *
   * @throws {ResolveError} when the table cannot answer.
   */
  async relocated(recipient: string): Promise<string | undefined> {
    const t = await this.#open();
    if (t.relocated.empty) return undefined;
    return (await this.#addressFind(t.relocated, recipient))?.value;
  }

  /**
   * Resolves one internal-form recipient address.
   *
   * @throws {ResolveError} when a table cannot answer or the configuration
   *   names an empty transport: try again later.
   */
  async resolve(address: string, opts: ResolveOptions = {}): Promise<Resolution> {
    const p = this.params;
    const t = await this.#open();
    const ctx: RewriteContext = {
      myorigin: p.myorigin,
      mydomain: p.mydomain,
      appendDotMydomain: p.appendDotMydomain,
      swapBangpath: p.swapBangpath,
      percentHack: p.percentHack,
    };
    let flags = 0;

    // 1. Strip our domains from the right; what is left may route further.
    const st: { local: string; domain: string | null } = { local: address, domain: null };
    const split = (a: string) => {
      const at = a.lastIndexOf("@");
      st.local = at < 0 ? a : a.slice(0, at);
      st.domain = at < 0 ? null : a.slice(at + 1);
    };
    split(address);
    let saved: string | null = null;
    let remote = false;
    const loopMax = address.length + 100;
    for (let loops = 0;; loops++) {
      if (loops > loopMax) {
        throw new ResolveError(`resolve_addr: <${address}>: giving up after ${loops} iterations`);
      }
      if (st.domain !== null) {
        // One trailing dot, but not ".." or "@.".
        let d = st.domain;
        if (d.length >= 2 && d.endsWith(".") && !d.endsWith("..")) d = d.slice(0, -1);
        st.domain = null;
        if (!(p.resolveNullDomain && d === "")) {
          if (d !== "" && !(await this.isLocal(d))) {
            st.domain = d;
            remote = true;
            break;
          }
          saved = d;
        }
      }
      // What is left is a local part; does it route?
      if (hasSourceRoute(st.local) || routes(st.local, p)) {
        split(rewriteAddress(st.local, { ...ctx, appendAtMyorigin: false }));
        continue;
      }
      const cracked = quotedLocalPart(st.local) ? crackQuoted(st.local, p) : null;
      if (cracked !== null) {
        split(rewriteAddress(cracked, { ...ctx, appendAtMyorigin: false }, { unquoted: true }));
        continue;
      }
      if (st.local === "") {
        split(p.emptyAddressRecipient);
        continue;
      }
      if (saved === null) {
        st.domain = p.myhostname;
        continue;
      }
      break;
    }
    const local = st.local;
    const rcptDomain = remote && st.domain !== null ? st.domain : saved ?? p.myhostname;
    let recipient = `${local}@${rcptDomain}`;
    let nextDomain = rcptDomain;

    // 2. Syntax.
    if (rcptDomain.startsWith("[")) {
      if (!validMailhostLiteral(rcptDomain)) flags |= RESOLVE_FLAG_ERROR;
    } else if (!validHostname(rcptDomain)) {
      if (p.resolveNumericDomain && parseIp(rcptDomain) !== null) {
        nextDomain = `[${rcptDomain}]`;
        recipient = `${local}@${nextDomain}`;
        if (await this.isLocal(nextDomain)) remote = false;
      } else {
        flags |= RESOLVE_FLAG_ERROR;
      }
    }
    if (flags & RESOLVE_FLAG_ERROR) {
      flags |= RESOLVE_CLASS_DEFAULT;
      return { transport: "", nexthop: "", recipient, class: "default", flags };
    }

    // 3. Routing operators left in the local part.
    const op = recipient.search(/[@!%]/);
    if (recipient.slice(op + 1) !== nextDomain) flags |= RESOLVE_FLAG_ROUTED;

    // 4. Address class.
    let channel: string;
    let nexthop = nextDomain;
    let blame: string;
    let hopRule = "";
    let cls: AddressClass;
    if (remote) {
      if (await this.#try(t.aliasDomains.title, () => t.aliasDomains.match(nextDomain))) {
        channel = "error";
        nexthop = `5.1.1 User unknown${p.showUnknownTable ? " in virtual alias table" : ""}`;
        blame = "virtual_alias_domains";
        cls = "alias";
        flags |= RESOLVE_CLASS_ALIAS;
      } else if (
        await this.#try(t.mailboxDomains.title, () => t.mailboxDomains.match(nextDomain))
      ) {
        channel = p.virtualTransport;
        blame = "virtual_transport";
        cls = "virtual";
        flags |= RESOLVE_CLASS_VIRTUAL;
      } else {
        if (await this.#try(t.relayDomains.title, () => t.relayDomains.match(nextDomain))) {
          channel = p.relayTransport;
          blame = "relay_transport";
          cls = "relay";
          flags |= RESOLVE_CLASS_RELAY;
        } else {
          const sender = opts.sender ?? "";
          const key = sender === "" ? p.senderTransportNullKey : sender;
          const xport = t.senderTransport.empty
            ? undefined
            : (await this.#addressFind(t.senderTransport, key))?.value;
          if (xport !== undefined) {
            let v = xport;
            if (v === "") {
              this.#warn(
                `sender_dependent_default_transport_maps: ignoring null lookup result for ${key}`,
              );
              v = "DUNNO";
            }
            channel = v.toUpperCase() === "DUNNO" ? p.defaultTransport : v;
            blame = "sender_dependent_default_transport_maps";
          } else {
            channel = p.defaultTransport;
            blame = "default_transport";
          }
          cls = "default";
          flags |= RESOLVE_CLASS_DEFAULT;
        }
        const sender = opts.sender ?? "";
        const key = sender === "" ? p.senderRelayhostNullKey : sender;
        const relay = t.senderRelay.empty
          ? undefined
          : (await this.#addressFind(t.senderRelay, key))?.value;
        let v = relay;
        if (v === "") {
          this.#warn(`sender_dependent_relayhost_maps: ignoring null lookup result for ${key}`);
          v = "DUNNO";
        }
        // "DUNNO" stops the search without overriding relayhost (Postfix 2.7 and later).
        if (v !== undefined && v.toUpperCase() !== "DUNNO") {
          nexthop = v;
          hopRule = `; ${t.senderRelay.title}: ${key} ${v}`;
        } else if (p.relayhost !== "") {
          nexthop = p.relayhost;
          hopRule = `; relayhost = ${p.relayhost}`;
        }
      }
    } else {
      channel = p.localTransport;
      blame = "local_transport";
      cls = "local";
      flags |= RESOLVE_CLASS_LOCAL;
    }
    if (flags & RESOLVE_CLASS_FINAL) flags |= RESOLVE_FLAG_FINAL;

    let rule = `${blame} = ${channel}${hopRule}`;
    // A "transport:nexthop" parameter value overrides the next hop.
    const colon = channel.indexOf(":");
    if (colon >= 0) {
      if (colon + 1 < channel.length) nexthop = channel.slice(colon + 1);
      channel = channel.slice(0, colon);
    }
    if (channel === "") {
      throw new ResolveError(`parameter ${blame}: null transport is not allowed`);
    }

    // 5. transport_maps.
    if (!t.transport.empty && cls !== "alias") {
      const hit = await this.#try(
        t.transport.title,
        () =>
          transportLookup(t.transport, recipient, nextDomain, {
            current: { transport: channel, nexthop },
            delimiters: p.recipientDelimiter,
            doubleBounceSender: p.doubleBounceSender,
            parentMatches: p.parentMatches.includes("transport_maps"),
          }),
      );
      if (hit) {
        channel = hit.transport;
        nexthop = hit.nexthop;
        rule = `${t.transport.title}: ${hit.key} ${hit.value}`;
      }
    }

    // 6. relocated_maps.
    const moved = await this.relocated(recipient);
    if (moved !== undefined) {
      channel = "error";
      nexthop = `5.1.6 User has moved to ${moved}`;
      rule = `relocated_maps: ${recipient} ${moved}`;
    }

    if (!p.allowMinUser && recipient.startsWith("-")) flags |= RESOLVE_FLAG_ERROR;
    return { transport: channel, nexthop, recipient, class: cls, flags, rule };
  }

  /** mail_addr_find with resolve_local for the address's own domain. */
  async #addressFind(maps: Maps, address: string) {
    const { domain } = splitAddress(address);
    const local = domain !== "" &&
      (domain.toLowerCase() === this.params.myorigin.toLowerCase() ||
        await this.isLocal(domain));
    return await this.#try(maps.title, () =>
      addressFind(maps, address, {
        delimiters: this.params.recipientDelimiter,
        doubleBounceSender: this.params.doubleBounceSender,
        isLocal: (d) => local && d === domain,
      }));
  }

  async #open(): Promise<Tables> {
    try {
      return await this.open();
    } catch (e) {
      if (e instanceof DictError) throw new ResolveError(e.message, "", { cause: e });
      throw e;
    }
  }

  /** Runs a lookup, turning a DictError into a ResolveError that names the parameter. */
  async #try<T>(parameter: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof DictError) throw new ResolveError(e.message, parameter, { cause: e });
      throw e;
    }
  }
}

/**
 * Where qmgr sends a resolved recipient, as Postfix 3.7's qmgr: bad syntax
 * ({@link RESOLVE_FLAG_ERROR}) to the error agent with "5.1.3 bad address
 * syntax"; the next hop case-folded (it names the destination queue),
 * except the error agent's text and an LMTP `unix:` path (a file name;
 * Postfix folds only its queue name and hands the agent the next hop as
 * configured).
 */
export function deliveryRoute(r: Resolution): { transport: string; nexthop: string } {
  if (r.flags & RESOLVE_FLAG_ERROR) {
    return { transport: "error", nexthop: "5.1.3 bad address syntax" };
  }
  if (r.transport === "error") return { transport: r.transport, nexthop: r.nexthop };
  if (/^unix:/i.test(r.nexthop)) return { transport: r.transport, nexthop: r.nexthop };
  return { transport: r.transport, nexthop: r.nexthop.toLowerCase() };
}

/** A source route prefix `@a,@b:` (which rewriting strips). */
function hasSourceRoute(local: string): boolean {
  const colon = local.indexOf(":");
  return local.startsWith("@") && colon >= 0 && colon < local.length - 1;
}

/** An unquoted local part with "!" (swap_bangpath) or "%" (allow_percent_hack) routes. */
function routes(local: string, p: ResolverParams): boolean {
  if (local === "" || quotedLocalPart(local)) return false;
  return (p.swapBangpath && local.includes("!")) || (p.percentHack && local.includes("%"));
}

/**
 * Postfix's resolve_dequoted: a quoted local part with "@" (or "%" with
 * the percent hack, or "!" with swap_bangpath) is opened up: the last "%"
 * becomes "@". Null when there is nothing to open.
 */
function crackQuoted(local: string, p: ResolverParams): string | null {
  if (local.includes("@")) return local;
  const pct = local.lastIndexOf("%");
  if (p.percentHack && pct >= 0) return local.slice(0, pct) + "@" + local.slice(pct + 1);
  if (p.swapBangpath && local.includes("!")) return local;
  return null;
}

/** Postfix's valid_hostname: labels of letters, digits, "-" and "_", not all numeric. */
export function validHostname(name: string): boolean {
  if (name === "" || name.length > 255) return false;
  let numeric = true;
  for (const label of name.split(".")) {
    if (label === "" || label.length > 63) return false;
    if (label.startsWith("-") || label.endsWith("-")) return false;
    for (const ch of label) {
      const c = ch.codePointAt(0)!;
      const alpha = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
      if (alpha || c === 45) numeric = false;
      else if (!(c >= 48 && c <= 57)) return false;
    }
  }
  return !numeric;
}

/** `[1.2.3.4]` or `[IPv6:...]` with a valid address inside. */
function validMailhostLiteral(literal: string): boolean {
  if (!literal.endsWith("]")) return false;
  const inner = literal.slice(1, -1);
  const v6 = /^ipv6:/i.test(inner);
  const b = parseIp(v6 ? inner.slice(5) : inner);
  return b !== null && (b.length === 16) === v6;
}
