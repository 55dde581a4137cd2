/**
 * Unknown addresses refused at RCPT (and, with smtpd_reject_unlisted_sender,
 * at MAIL), as Postfix's check_rcpt_maps: the address is rewritten in the
 * "local" context and resolved as qmgr would resolve it; then
 *
 * 1. an address listed in recipient_canonical_maps, canonical_maps or
 *    virtual_alias_maps is known (cleanup will rewrite it);
 * 2. an address that resolves to the error transport is refused with the
 *    resolver's text ("User unknown in virtual alias table" for a virtual
 *    alias domain: unknown_virtual_alias_reject_code);
 * 3. local class: refused unless found in local_recipient_maps
 *    (unknown_local_recipient_reject_code), when that is not empty;
 *    postmaster, mailer-daemon and the double-bounce sender always pass;
 * 4. virtual mailbox class: refused unless found in virtual_mailbox_maps
 *    (unknown_virtual_mailbox_reject_code), when not empty;
 * 5. relay class: refused unless found in relay_recipient_maps
 *    (unknown_relay_recipient_reject_code), when not empty.
 *
 * "in local recipient table" and friends are shown when
 * show_user_unknown_table_name = yes. A table or resolver that cannot
 * answer gives 451 4.3.0 (never "unknown"), so a database outage defers
 * mail instead of bouncing it. This is what keeps Postwarden from
 * accepting mail for nobody and bouncing it later (backscatter).
 *
 * Parameters: local_recipient_maps, virtual_alias_maps,
 * virtual_mailbox_maps, relay_recipient_maps, canonical_maps,
 * recipient_canonical_maps, recipient_delimiter, double_bounce_sender,
 * show_user_unknown_table_name, unknown_local_recipient_reject_code,
 * unknown_virtual_alias_reject_code, unknown_virtual_mailbox_reject_code,
 * unknown_relay_recipient_reject_code, smtpd_reject_unlisted_recipient,
 * smtpd_reject_unlisted_sender.
 */
import type { Rejection } from "../../lib/outcome/mod.ts";
import { splitAddress, splitExtension } from "../../lib/address/mod.ts";
import type { Config } from "../../lib/config/mod.ts";
import { addressFind, DictError, type Maps } from "../../lib/maps/mod.ts";
import {
  type Resolution,
  RESOLVE_CLASS_ALIAS,
  RESOLVE_CLASS_LOCAL,
  RESOLVE_CLASS_RELAY,
  RESOLVE_CLASS_VIRTUAL,
  ResolveError,
  type Resolver,
  rewriteAddress,
  type RewriteContext,
} from "../../lib/resolve/mod.ts";
import type { MapsOpener } from "../../lib/service/mod.ts";

/** What the check needs, from the configuration and the daemon. */
export interface ListedContext {
  resolver: Resolver;
  /** The "local" rewriting context; null when myorigin could not be read. */
  rewrite: RewriteContext | null;
  /**
   * The address rewritten in the local context and resolved with the
   * sender; smtpd passes the restrictions' cached resolution, so an RCPT is
   * resolved once for the relay decision and this check.
   */
  resolve: (address: string, sender: string) => Promise<Resolution>;
  /** The tables of a parameter, opened once per process. */
  maps: (param: string) => Promise<Maps>;
  delimiters: string;
  doubleBounceSender: string;
  showTable: boolean;
  /** Which tables are set (an empty parameter means "do not check"). */
  set: {
    localRecipientMaps: boolean;
    virtualMailboxMaps: boolean;
    relayRecipientMaps: boolean;
  };
  codes: { local: number; alias: number; virtual: number; relay: number };
  /** smtpd_reject_unlisted_recipient and smtpd_reject_unlisted_sender. */
  rejectUnlisted: { recipient: boolean; sender: boolean };
  /** A parameter's value (the tables an explain line names). */
  spec: (param: string) => string;
  /** postwarden_explain: says which table had no entry for a refused address. */
  explain?: (msg: string) => void;
}

/**
 * The context of a configuration. Tables are opened with `openMaps` at
 * their first use and kept; one that fails to open is tried again at the
 * next use (the lookup answers 451 meanwhile).
 */
export function listedContext(
  c: Config,
  resolver: Resolver,
  rewrite: RewriteContext | null,
  openMaps: MapsOpener,
  resolve: (address: string, sender: string) => Promise<Resolution> = (address, sender) =>
    resolver.resolve(rewrite ? rewriteAddress(address, rewrite) : address, { sender }),
): ListedContext {
  const open = new Map<string, Promise<Maps>>();
  const maps = (param: string) => {
    let m = open.get(param);
    if (!m) {
      m = openMaps(param, c.str(param));
      m.catch(() => open.delete(param));
      open.set(param, m);
    }
    return m;
  };
  return {
    resolver,
    rewrite,
    resolve,
    maps,
    delimiters: c.str("recipient_delimiter"),
    doubleBounceSender: c.str("double_bounce_sender"),
    showTable: c.bool("show_user_unknown_table_name"),
    set: {
      localRecipientMaps: c.str("local_recipient_maps").trim() !== "",
      virtualMailboxMaps: c.str("virtual_mailbox_maps").trim() !== "",
      relayRecipientMaps: c.str("relay_recipient_maps").trim() !== "",
    },
    codes: {
      local: c.int("unknown_local_recipient_reject_code"),
      alias: c.int("unknown_virtual_alias_reject_code"),
      virtual: c.int("unknown_virtual_mailbox_reject_code"),
      relay: c.int("unknown_relay_recipient_reject_code"),
    },
    rejectUnlisted: {
      recipient: c.bool("smtpd_reject_unlisted_recipient"),
      sender: c.bool("smtpd_reject_unlisted_sender"),
    },
    spec: (param) => c.str(param),
  };
}

/** Postfix's reply for a table that could not answer. */
function tempFail(address: string): Rejection {
  return { code: 451, dsn: "4.3.0", text: `<${address}>: Temporary lookup failure` };
}

/**
 * The reply refusing an unknown address, or null when it is known (or
 * not checked). `role` names the stage for the reply ("Recipient address
 * rejected" with 5.1.1, "Sender address rejected" with 5.1.0).
 */
export async function checkListed(
  ctx: ListedContext,
  address: string,
  role: "recipient" | "sender",
  sender = "",
): Promise<Rejection | null> {
  if (address === "" || ctx.rewrite === null) return null;
  const what = role === "recipient" ? "Recipient address" : "Sender address";
  const dsnDetail = role === "recipient" ? "1.1" : "1.0";
  const refuse = (code: number, text: string): Rejection => ({
    code,
    dsn: `${String(code)[0]}.${dsnDetail}`,
    // Postfix names the address in its internal (unquoted) form.
    text: `<${address}>: ${what} rejected: ${text}`,
  });
  /** The refusal, told to postwarden_explain with why (`which`: the table without an entry). */
  const explained = (r: Rejection, why: string): Rejection => {
    ctx.explain?.(
      `${role} <${address}>: smtpd_reject_unlisted_${role}: ${why}: ${r.code} ${r.dsn} ${r.text}`,
    );
    return r;
  };
  const noEntry = (param: string) => `no entry in ${param} (${ctx.spec(param).trim()})`;
  const unknown = (code: number, table: string, param: string) =>
    explained(refuse(code, `User unknown${ctx.showTable ? ` in ${table}` : ""}`), noEntry(param));
  try {
    const reply = await ctx.resolve(address, sender);
    const rcpt = reply.recipient;
    const origin = ctx.rewrite.myorigin.toLowerCase();
    const isLocal = async (domain: string) =>
      domain.toLowerCase() === origin || await ctx.resolver.isLocal(domain);
    const match = async (param: string) => {
      const maps = await ctx.maps(param);
      if (maps.empty) return false;
      const local = await isLocal(splitAddress(rcpt).domain);
      return (await addressFind(maps, rcpt, {
        delimiters: ctx.delimiters,
        doubleBounceSender: ctx.doubleBounceSender,
        isLocal: () => local,
      })) !== undefined;
    };
    if (
      await match("recipient_canonical_maps") || await match("canonical_maps") ||
      await match("virtual_alias_maps")
    ) return null;
    if (reply.transport === "error") {
      // The resolver's text, e.g. "5.1.6 User has moved to ..." (relocated_maps)
      // or "5.1.1 User unknown in virtual alias table": its status detail is kept.
      const code = reply.flags & RESOLVE_CLASS_ALIAS ? ctx.codes.alias : 550;
      const m = /^[245](\.\d{1,3}\.\d{1,3})\s+/.exec(reply.nexthop);
      const v = refuse(code, m ? reply.nexthop.slice(m[0].length) : reply.nexthop);
      return explained(
        m ? { ...v, dsn: `${String(code)[0]}${m[1]}` } : v,
        reply.flags & RESOLVE_CLASS_ALIAS
          ? `a virtual alias domain's address with ${noEntry("virtual_alias_maps")}`
          : `resolves to error:${reply.nexthop}`,
      );
    }
    if (reply.flags & RESOLVE_CLASS_LOCAL && ctx.set.localRecipientMaps) {
      const local = splitAddress(rcpt).local.toLowerCase();
      const always = ["postmaster", "mailer-daemon", ctx.doubleBounceSender.toLowerCase()];
      if (!always.includes(local) && !(await match("local_recipient_maps"))) {
        return unknown(ctx.codes.local, "local recipient table", "local_recipient_maps");
      }
    }
    if (reply.flags & RESOLVE_CLASS_VIRTUAL && ctx.set.virtualMailboxMaps) {
      if (!(await virtualMailboxFind(await ctx.maps("virtual_mailbox_maps"), rcpt, ctx))) {
        return unknown(ctx.codes.virtual, "virtual mailbox table", "virtual_mailbox_maps");
      }
    }
    if (reply.flags & RESOLVE_CLASS_RELAY && ctx.set.relayRecipientMaps) {
      if (!(await match("relay_recipient_maps"))) {
        return unknown(ctx.codes.relay, "relay recipient table", "relay_recipient_maps");
      }
    }
    return null;
  } catch (e) {
    if (e instanceof DictError || e instanceof ResolveError) return tempFail(address);
    throw e;
  }
}

/**
 * Postfix's virtual8_maps_find: the address without its extension first,
 * then as is, then `@domain` (virtual mailbox users are always
 * user@domain).
 */
async function virtualMailboxFind(maps: Maps, rcpt: string, ctx: ListedContext) {
  const { local, domain } = splitAddress(rcpt);
  const { user, extension } = splitExtension(local, ctx.delimiters, {
    doubleBounceSender: ctx.doubleBounceSender,
  });
  if (extension !== "" && await maps.find(`${user}@${domain}`, { partial: true }) !== undefined) {
    return true;
  }
  if (await maps.find(rcpt) !== undefined) return true;
  return domain !== "" && await maps.find(`@${domain}`, { partial: true }) !== undefined;
}
