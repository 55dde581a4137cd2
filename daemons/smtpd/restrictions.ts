/**
 * SMTP access restrictions, evaluated like Postfix's smtpd_check.c at each
 * stage: `smtpd_client_restrictions` at connect, `smtpd_helo_restrictions`
 * at HELO/EHLO, `smtpd_sender_restrictions` at MAIL, or all three at each
 * RCPT TO when `smtpd_delay_reject = yes` (the default); then
 * `smtpd_relay_restrictions` and `smtpd_recipient_restrictions` at RCPT (in
 * the order smtpd_relay_before_recipient_restrictions says), and
 * `smtpd_data_restrictions` at DATA. In each list the first restriction
 * that permits or rejects decides that list; a list that permits does not
 * skip the next list. A bare `RCPT TO:<postmaster>` passes every list, as
 * RFC 5321 requires and Postfix does.
 *
 * Implemented (lib/config/restrictions.ts names them): permit, reject,
 * defer, permit_mynetworks, permit_sasl_authenticated (never matches: no
 * AUTH yet), permit_auth_destination, reject_unauth_destination,
 * defer_unauth_destination, reject_invalid_helo_hostname,
 * reject_non_fqdn_helo_hostname, reject_non_fqdn_sender,
 * reject_non_fqdn_recipient. A restriction that needs what the stage does
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
 * Pure apart from the resolver's table lookups: parameters come in the context.
 */
import { quoteAddress, splitAddress } from "../../lib/address/mod.ts";
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
  type Config,
  ConfigError,
  IMPLEMENTED_RESTRICTIONS,
  matchNetworkList,
  type NetworkList,
  OPEN_RELAY_MESSAGE,
  parseIp,
  parseNetworkList,
} from "../../lib/config/mod.ts";

/** Everything restriction evaluation needs. */
export interface RestrictionContext {
  client: string[];
  helo: string[];
  sender: string[];
  relay: string[];
  recipient: string[];
  data: string[];
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
  };
  warn: (msg: string) => void;
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
): RestrictionContext {
  const origin = originOrNull(c, warn);
  return {
    client: c.list("smtpd_client_restrictions"),
    helo: c.list("smtpd_helo_restrictions"),
    sender: c.list("smtpd_sender_restrictions"),
    relay: c.list("smtpd_relay_restrictions"),
    recipient: c.list("smtpd_recipient_restrictions"),
    data: c.list("smtpd_data_restrictions"),
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
    },
    warn,
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

/** A rejection. */
export interface Verdict {
  code: number;
  dsn: string;
  /** The full reply text, e.g. "<a@b>: Relay access denied". */
  text: string;
}

/** What is known about the session when a list is evaluated. */
export interface CheckRequest {
  client: { name: string; addr: string };
  /** HELO/EHLO name, "" before HELO. */
  helo: string;
  /** MAIL FROM address ("" is the null sender), null before MAIL. */
  sender: string | null;
  /** The recipient being checked (at DATA: the only recipient, if just one). */
  recipient?: string;
}

type Stage = "client" | "helo" | "sender" | "recipient" | "data";

const CONFIG_ERROR: Verdict = { code: 451, dsn: "4.3.5", text: "Server configuration error" };

/** Who the reply is about, and Postfix's name for the stage. */
function subject(stage: Stage, req: CheckRequest): { name: string; what: string } {
  switch (stage) {
    case "client":
      return { name: `${req.client.name}[${req.client.addr}]`, what: "Client host" };
    case "helo":
      return { name: req.helo, what: "Helo command" };
    case "sender":
      return { name: quoteAddress(req.sender ?? ""), what: "Sender address" };
    case "recipient":
      // Postfix names the recipient in its internal (unquoted) form, as parsed.
      return { name: req.recipient ?? "", what: "Recipient address" };
    case "data":
      return { name: "DATA", what: "Data command" };
  }
}

/** A reply with Postfix's enhanced code, its class digit following the reply code. */
function verdict(code: number, dsn: string, text: string): Verdict {
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
function resolveFor(ctx: RestrictionContext, sender: string, address: string): Promise<Resolution> {
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
): Promise<"ok" | "dunno" | Verdict> {
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

/** The relay decisions, which need the resolver (and so are made before a list is run). */
const AUTH_DESTINATION = new Set([
  "permit_auth_destination",
  "reject_unauth_destination",
  "defer_unauth_destination",
]);

/**
 * Evaluates one list; "permit", a Verdict, or null when nothing decided.
 * `auth` is permit_auth_destination's answer for the request's recipient.
 */
function evaluate(
  list: string[],
  stage: Stage,
  ctx: RestrictionContext,
  req: CheckRequest,
  auth?: "ok" | "dunno" | Verdict,
): Verdict | "permit" | null {
  const { name, what } = subject(stage, req);
  for (const raw of list) {
    const r = raw.toLowerCase();
    switch (r) {
      case "permit":
        return "permit";
      case "reject":
        return verdict(ctx.codes.reject, "5.7.1", `<${name}>: ${what} rejected: Access denied`);
      case "defer":
        return verdict(ctx.codes.defer, "4.3.2", `<${name}>: ${what} rejected: Try again later`);
      case "permit_mynetworks": {
        const m = matchNetworkList(ctx.mynetworks, req.client);
        if (m === "error") return verdict(451, "4.3.0", `<${name}>: Temporary lookup failure`);
        if (m) return "permit";
        break;
      }
      case "permit_sasl_authenticated":
        break;
      case "permit_auth_destination":
      case "reject_unauth_destination":
      case "defer_unauth_destination": {
        if (req.recipient === undefined || auth === undefined) break;
        if (typeof auth === "object") return auth;
        const ok = auth === "ok";
        if (ok && r === "permit_auth_destination") return "permit";
        if (ok || r === "permit_auth_destination") break;
        const code = r === "reject_unauth_destination" ? ctx.codes.relay : 454;
        return verdict(code, "4.7.1", `<${req.recipient}>: Relay access denied`);
      }
      case "reject_invalid_helo_hostname":
      case "reject_non_fqdn_helo_hostname": {
        if (req.helo === "") break;
        if (req.helo.startsWith("[")) {
          if (validAddressLiteral(req.helo)) break;
          return verdict(
            ctx.codes.invalidHostname,
            "5.5.2",
            `<${req.helo}>: Helo command rejected: Invalid ip address`,
          );
        }
        const host = truncateDot(req.helo);
        if (r === "reject_invalid_helo_hostname") {
          if (validHostname(host) || parseIp(host)?.length === 4) break;
          return verdict(
            ctx.codes.invalidHostname,
            "5.5.2",
            `<${req.helo}>: Helo command rejected: Invalid name`,
          );
        }
        if (validHostname(host) && host.includes(".")) break;
        return verdict(
          ctx.codes.nonFqdn,
          "5.5.2",
          `<${req.helo}>: Helo command rejected: need fully-qualified hostname`,
        );
      }
      case "reject_non_fqdn_sender":
      case "reject_non_fqdn_recipient": {
        const sender = r === "reject_non_fqdn_sender";
        const address = sender ? req.sender : req.recipient;
        if (address === undefined || address === null || address === "" || fqdnAddress(address)) {
          break;
        }
        return verdict(
          ctx.codes.nonFqdn,
          "5.5.2",
          `<${quoteAddress(address)}>: ${
            sender ? "Sender" : "Recipient"
          } address rejected: need fully-qualified address`,
        );
      }
      default:
        if (IMPLEMENTED_RESTRICTIONS.has(r)) throw new Error(`restriction ${r} not wired`);
        ctx.warn(`restriction "${raw}" is not supported by Postwarden`);
        return CONFIG_ERROR;
    }
  }
  return null;
}

/** Runs lists in order; the first rejection wins, a permit ends only its own list. */
function run(
  ctx: RestrictionContext,
  req: CheckRequest,
  lists: [string[], Stage][],
  auth?: "ok" | "dunno" | Verdict,
): Verdict | null {
  for (const [list, stage] of lists) {
    const v = evaluate(list, stage, ctx, req, auth);
    if (v !== null && v !== "permit") return v;
  }
  return null;
}

/** Runs lists that may hold a relay decision: the recipient is resolved first, once. */
async function runWithRecipient(
  ctx: RestrictionContext,
  req: CheckRequest,
  lists: [string[], Stage][],
): Promise<Verdict | null> {
  const needed = req.recipient !== undefined &&
    lists.some(([list]) => list.some((r) => AUTH_DESTINATION.has(r.toLowerCase())));
  const auth = needed ? await authDestination(ctx, req, req.recipient!) : undefined;
  return run(ctx, req, lists, auth);
}

/** smtpd_client_restrictions at connect (only with smtpd_delay_reject = no). */
export function checkConnect(ctx: RestrictionContext, req: CheckRequest): Verdict | null {
  return run(ctx, req, [[ctx.client, "client"]]);
}

/** smtpd_helo_restrictions at HELO/EHLO (only with smtpd_delay_reject = no). */
export function checkHelo(ctx: RestrictionContext, req: CheckRequest): Verdict | null {
  return run(ctx, req, [[ctx.helo, "helo"]]);
}

/** smtpd_sender_restrictions at MAIL (only with smtpd_delay_reject = no). */
export function checkSender(ctx: RestrictionContext, req: CheckRequest): Verdict | null {
  return run(ctx, req, [[ctx.sender, "sender"]]);
}

/**
 * At RCPT: with smtpd_delay_reject, the client, helo (when HELO was given)
 * and sender lists first; then the relay and recipient lists. Null means
 * accept.
 */
export async function checkRecipient(
  ctx: RestrictionContext,
  req: CheckRequest,
): Promise<Verdict | null> {
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
  return await runWithRecipient(ctx, req, lists);
}

/** smtpd_data_restrictions at DATA (the recipient is set when there is only one). */
export async function checkData(
  ctx: RestrictionContext,
  req: CheckRequest,
): Promise<Verdict | null> {
  return await runWithRecipient(ctx, req, [[ctx.data, "data"]]);
}
