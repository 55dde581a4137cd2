/**
 * smtpd_sender_login_maps and the restrictions that use it, as Postfix's
 * smtpd_check.c: a table maps a sender address (searched as Postfix's
 * mail_addr_find: user+ext@domain, user@domain, user+ext and user for a
 * local domain, @domain) to the SASL logins that own it, separated by
 * commas or spaces.
 *
 * - reject_authenticated_sender_login_mismatch: an authenticated client
 *   whose login does not own the sender (or the sender has no owner):
 *   "553 5.7.1 <sender>: Sender address rejected: not owned by user LOGIN".
 * - reject_known_sender_login_mismatch: the same, only for senders the
 *   table knows; and for a client that did not authenticate, as the next.
 * - reject_unauthenticated_sender_login_mismatch: a client that did not
 *   authenticate using a sender the table knows: "553 5.7.1 <sender>:
 *   Sender address rejected: not logged in".
 * - reject_sender_login_mismatch: the first and the third.
 *
 * The null sender is never checked. Without smtpd_sender_login_maps the
 * restrictions do nothing, as in Postfix. A table that cannot answer gives
 * "451 4.3.0 <sender>: Temporary lookup failure".
 *
 * @module
 */
import type { Rejection } from "../../lib/outcome/mod.ts";
import { quoteAddress } from "../../lib/address/mod.ts";
import type { Maps } from "../../lib/maps/mod.ts";
import { addressFind } from "../../lib/maps/search.ts";

/** The restriction names (lower case). */
export const SENDER_LOGIN_RESTRICTIONS: ReadonlySet<string> = new Set([
  "reject_sender_login_mismatch",
  "reject_authenticated_sender_login_mismatch",
  "reject_known_sender_login_mismatch",
  "reject_unauthenticated_sender_login_mismatch",
]);

/** What the check needs. */
export interface SenderLoginContext {
  /** Opens smtpd_sender_login_maps (once per process); null when it is not set. */
  maps: (() => Promise<Maps>) | null;
  /** Resolves the sender to the address the table is asked about, and whether its domain is local. */
  canonical: (sender: string) => Promise<{ address: string; local: boolean }>;
  delimiters: string;
  doubleBounceSender: string;
}

async function owners(ctx: SenderLoginContext, sender: string): Promise<string[] | null> {
  const maps = await ctx.maps!();
  const { address, local } = await ctx.canonical(sender);
  const hit = await addressFind(maps, address, {
    delimiters: ctx.delimiters,
    doubleBounceSender: ctx.doubleBounceSender,
    isLocal: () => local,
  });
  return hit === undefined ? null : hit.value.split(/[\s,]+/).filter((n) => n !== "");
}

/**
 * Evaluates one of {@link SENDER_LOGIN_RESTRICTIONS}; null when it does
 * not reject. Table failures throw (the caller answers 451).
 */
export async function senderLoginMismatch(
  ctx: SenderLoginContext | undefined,
  restriction: string,
  sender: string | null,
  login: string | null,
): Promise<Rejection | null> {
  if (!ctx?.maps || sender === null || sender === "") return null;
  const authenticated = restriction === "reject_sender_login_mismatch" ||
    restriction === "reject_authenticated_sender_login_mismatch" ||
    restriction === "reject_known_sender_login_mismatch";
  const unauthenticated = restriction !== "reject_authenticated_sender_login_mismatch";
  const q = quoteAddress(sender);
  if (login !== null) {
    if (!authenticated) return null;
    const names = await owners(ctx, sender);
    if (names === null && restriction === "reject_known_sender_login_mismatch") return null;
    const l = login.toLowerCase();
    if (names?.some((n) => n.toLowerCase() === l)) return null;
    return {
      code: 553,
      dsn: "5.7.1",
      text: `<${q}>: Sender address rejected: not owned by user ${login}`,
    };
  }
  if (!unauthenticated) return null;
  if ((await owners(ctx, sender)) === null) return null;
  return { code: 553, dsn: "5.7.1", text: `<${q}>: Sender address rejected: not logged in` };
}
