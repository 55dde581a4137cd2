/**
 * Canonical address form, as Postfix's trivial-rewrite rewrites an address
 * in its "local" context (rewrite.c): the first thing cleanup does to every
 * envelope and header address, and what smtpd does before it asks the
 * resolver whether a recipient is ours.
 *
 * Works on the internal form (quotes removed, see mod.ts) the way Postfix
 * does: it quotes the local part as quote_822_local() would, so a local
 * part that needs quotes (`"a!b c"`) is one token whose "!" and "%" are
 * not routing operators, while in an unquoted local part (`a!b`, `a%b`)
 * they are. In order:
 *
 * 1. a source route (`@a,@b:user@d`) is removed;
 * 2. only when there is no "@": `host!user` becomes `user@host`
 *    (swap_bangpath, at the first "!"), else `user%host` becomes
 *    `user@host` (allow_percent_hack, at the last "%"), else `@$myorigin`
 *    is appended (append_at_myorigin);
 * 3. `.$mydomain` is appended to a domain without a dot that is not an
 *    address literal (append_dot_mydomain);
 * 4. one trailing dot of the domain is removed (not from "..", "@.").
 *
 * The percent hack inside a domain that is ours (`user%host@ours`) and
 * routing inside quotes are the resolver's business (lib/resolve), as in
 * Postfix. Pure: no tables, no I/O.
 *
 * @module
 */
import { quoteLocal } from "./mod.ts";

/** The parameter values the "local" rewriting context uses. */
export interface RewriteContext {
  /** $myorigin (expanded, file already read); "" appends nothing. */
  myorigin: string;
  /** $mydomain; "" appends nothing. */
  mydomain: string;
  /** append_at_myorigin. @default true */
  appendAtMyorigin?: boolean;
  /** append_dot_mydomain (its default depends on compatibility_level). @default false */
  appendDotMydomain?: boolean;
  /** swap_bangpath. @default true */
  swapBangpath?: boolean;
  /** allow_percent_hack. @default true */
  percentHack?: boolean;
}

/**
 * True when a local part is written as a quoted string (it is not an
 * RFC 822 dot-string): then "!", "%" and "@" inside it are text, not
 * routing operators.
 */
export function quotedLocalPart(local: string): boolean {
  return local !== "" && quoteLocal(local).startsWith('"');
}

/** Removes a leading source route `@a,@b:` (when something follows the colon). */
export function stripSourceRoute(address: string): string {
  if (!address.startsWith("@")) return address;
  const colon = address.indexOf(":");
  return colon < 0 || colon === address.length - 1 ? address : address.slice(colon + 1);
}

/**
 * `host!user` to `user@host` at the first "!", or `user%host` to
 * `user@host` at the last "%", for an address without "@" whose local part
 * is not quoted; null when neither applies. Shared with the resolver,
 * which applies it again after it strips a domain of ours.
 */
export function routeOperator(
  local: string,
  opts: { swapBangpath?: boolean; percentHack?: boolean; unquoted?: boolean },
): string | null {
  if (local === "" || (!opts.unquoted && quotedLocalPart(local))) return null;
  const bang = local.indexOf("!");
  if ((opts.swapBangpath ?? true) && bang >= 0) {
    return local.slice(bang + 1) + "@" + local.slice(0, bang);
  }
  const pct = local.lastIndexOf("%");
  if ((opts.percentHack ?? true) && pct >= 0) {
    return local.slice(0, pct) + "@" + local.slice(pct + 1);
  }
  return null;
}

/**
 * Postfix's rewrite_tree() on an internal-form address, with the "local"
 * context ($myorigin, $mydomain). The null address "" stays "", and so
 * does a lone "@". Never throws. `unquoted` treats a local part that
 * would need quotes as bare text (the resolver, after it opened a quoted
 * local part, scans it that way).
 *
 * @example
 * ```ts
 * const ctx = { myorigin: "example.com", mydomain: "example.com" };
 * rewriteAddress("alice", ctx); // "alice@example.com"
 * rewriteAddress("host!bob", ctx); // "bob@host"
 * rewriteAddress("@relay:carol@example.net.", ctx); // "carol@example.net"
 * ```
 */
export function rewriteAddress(
  address: string,
  ctx: RewriteContext,
  opts: { unquoted?: boolean } = {},
): string {
  if (address === "" || address === "@") return "";
  let a = stripSourceRoute(address);
  if (!a.includes("@")) {
    const routed = routeOperator(a, { ...ctx, unquoted: opts.unquoted });
    if (routed !== null) a = routed;
    else if ((ctx.appendAtMyorigin ?? true) && ctx.myorigin !== "") a = `${a}@${ctx.myorigin}`;
  }
  const at = a.lastIndexOf("@");
  if (at >= 0) {
    const domain = a.slice(at + 1);
    if (
      (ctx.appendDotMydomain ?? false) && ctx.mydomain !== "" && domain !== "" &&
      !domain.includes("[") && !domain.includes(".")
    ) {
      a = `${a}.${ctx.mydomain}`;
    }
    a = stripTrailingDot(a);
  }
  return a;
}

/** `user@example.com.` to `user@example.com`; "..", "@." and addresses without "@" stay. */
export function stripTrailingDot(address: string): string {
  const n = address.length;
  if (n < 2 || address[n - 1] !== "." || address.lastIndexOf("@") < 0) return address;
  const prev = address[n - 2];
  return prev === "." || prev === "@" ? address : address.slice(0, -1);
}
