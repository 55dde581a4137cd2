/**
 * The SMTP access restrictions implemented so far, evaluated at RCPT time
 * like Postfix: `smtpd_relay_restrictions` then
 * `smtpd_recipient_restrictions`, each a list of restrictions where the
 * first permit or reject decides. Implemented: permit, reject, defer,
 * permit_mynetworks, reject_unauth_destination, defer_unauth_destination,
 * permit_sasl_authenticated (never matches: no AUTH yet). Any other
 * restriction is a configuration error answered with 451 4.3.5, as Postfix
 * does, and reported by name. So is a configuration where neither list can
 * refuse relaying (Postfix will not start with one): no open relay. Reply
 * texts are Postfix's. Pure: parameters come in the context.
 */
import { splitAddress } from "../../lib/address/mod.ts";
import { inNetworks, type Network } from "./netmatch.ts";

/** Everything restriction evaluation needs. */
export interface RestrictionContext {
  relayRestrictions: string[];
  recipientRestrictions: string[];
  mynetworks: Network[];
  /** mydestination (and later relay_domains): domains we accept mail for. */
  ourDomains: string[];
  warn: (msg: string) => void;
}

/** A rejection. */
export interface Verdict {
  code: number;
  dsn: string;
  /** The full reply text, e.g. "<a@b>: Relay access denied". */
  text: string;
}

/** Restrictions that can refuse relaying; Postfix requires one of them. */
const RELAY_CONTROL = new Set([
  "reject_unauth_destination",
  "defer_unauth_destination",
  "reject",
  "defer",
]);

const CONFIG_ERROR: Verdict = { code: 451, dsn: "4.3.5", text: "Server configuration error" };

const SUPPORTED = new Set([
  "permit",
  "reject",
  "defer",
  "permit_mynetworks",
  "reject_unauth_destination",
  "defer_unauth_destination",
  "permit_sasl_authenticated",
]);

/** Names of restrictions in the lists that are not implemented. */
export function unsupportedRestrictions(lists: string[][]): string[] {
  return [...new Set(lists.flat().filter((r) => !SUPPORTED.has(r.toLowerCase())))];
}

function authorized(ctx: RestrictionContext, recipient: string): boolean {
  const { domain } = splitAddress(recipient);
  if (domain === "") return true;
  const d = domain.toLowerCase().replace(/\.$/, "");
  return ctx.ourDomains.some((o) => o.toLowerCase().replace(/\.$/, "") === d);
}

/** Postfix's reply for a generic reject or defer at RCPT. */
function rejected(code: number, dsn: string, recipient: string, what: string): Verdict {
  return { code, dsn, text: `<${recipient}>: Recipient address rejected: ${what}` };
}

function evaluate(
  list: string[],
  ctx: RestrictionContext,
  req: { clientAddr: string; recipient: string },
): Verdict | "permit" | null {
  for (const raw of list) {
    const r = raw.toLowerCase();
    switch (r) {
      case "permit":
        return "permit";
      case "reject":
        return rejected(554, "5.7.1", req.recipient, "Access denied");
      case "defer":
        return rejected(450, "4.7.1", req.recipient, "Try again later");
      case "permit_mynetworks":
        if (inNetworks(req.clientAddr, ctx.mynetworks)) return "permit";
        break;
      case "reject_unauth_destination":
        if (!authorized(ctx, req.recipient)) {
          return { code: 554, dsn: "5.7.1", text: `<${req.recipient}>: Relay access denied` };
        }
        break;
      case "defer_unauth_destination":
        if (!authorized(ctx, req.recipient)) {
          return { code: 454, dsn: "4.7.1", text: `<${req.recipient}>: Relay access denied` };
        }
        break;
      case "permit_sasl_authenticated":
        break;
      default:
        ctx.warn(`restriction "${raw}" is not supported by Postwarden`);
        return CONFIG_ERROR;
    }
  }
  return null;
}

/** Evaluates relay then recipient restrictions; null means accept. */
export function checkRecipient(
  ctx: RestrictionContext,
  req: { clientAddr: string; recipient: string },
): Verdict | null {
  const lists = [ctx.relayRestrictions, ctx.recipientRestrictions];
  if (!lists.flat().some((r) => RELAY_CONTROL.has(r.toLowerCase()))) {
    ctx.warn(
      "in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify at least " +
        "one working instance of: reject_unauth_destination, defer_unauth_destination, reject, defer",
    );
    return CONFIG_ERROR;
  }
  for (const list of [ctx.relayRestrictions, ctx.recipientRestrictions]) {
    const v = evaluate(list, ctx, req);
    if (v !== null && v !== "permit") return v;
  }
  return null;
}
