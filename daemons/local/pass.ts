/**
 * mailbox_transport for the local agent, as Postfix's mailbox.c: once
 * aliases and .forward files are expanded, the mailbox delivery of a local
 * user is handed to another delivery agent (lib/deliver/pass.ts), e.g.
 * `mailbox_transport = lmtp:unix:private/dovecot-lmtp` for Dovecot. The
 * address passed is the one being delivered (after alias expansion), with
 * the original recipient as orig_to; no passwd lookup is made (Dovecot's
 * users need no system account). The agent passed to logs the delivery;
 * its status becomes this destination's outcome, carrying that agent's
 * whole status (`passed`: its relay and remote MTA for local's report,
 * and, in address verification, which goes along with the request, what
 * that agent found).
 *
 * Parameters: mailbox_transport (default: empty, local delivers itself).
 * mailbox_transport_maps is not implemented (the start refuses a value).
 */
import type { DeliveryRequest } from "../../lib/deliver/mod.ts";
import { deliverPass, splitTransport } from "../../lib/deliver/pass.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import type { MailboxDelivery, Outcome } from "./alias.ts";

/** mailbox_transport's value, or null when local delivers mailboxes itself. */
export function mailboxTransport(ctx: ServiceContext): string | null {
  const v = ctx.config.str("mailbox_transport").trim();
  return v === "" ? null : v;
}

/** Hands the mailbox delivery `m` of request `req` to the agent `transport` names. */
export async function passMailbox(
  ctx: ServiceContext,
  req: DeliveryRequest,
  transport: string,
  m: MailboxDelivery,
): Promise<Omit<Outcome, "address" | "orcpt">> {
  const top = req.recipients.find((r) => r.address === m.delivered);
  if (!top) throw new Error(`mailbox_transport: no recipient ${m.delivered} in the request`);
  const { status: st, answered } = await deliverPass(
    { socket: ctx.peer(splitTransport(transport).service), transport },
    req,
    {
      index: top.index,
      address: m.address,
      // Postfix's orig_addr: the queue file's original recipient, else the top-level one.
      orcpt: top.orcpt ?? top.address,
      ...(top.notify !== undefined ? { notify: top.notify } : {}),
    },
  );
  // What could not be handed over was logged by nobody: then local logs it.
  return { status: st.status, dsn: st.dsn, reason: st.reason, ...(answered ? { passed: st } : {}) };
}
