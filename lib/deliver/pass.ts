/**
 * deliver_pass, as Postfix's global/deliver_pass.c: one delivery agent
 * hands a recipient it is delivering to another agent, over the same
 * delivery request protocol qmgr speaks (mod.ts), and reports that agent's
 * status as its own. The local agent uses it for mailbox_transport
 * (`mailbox_transport = lmtp:unix:private/dovecot-lmtp`): aliases and
 * .forward files are expanded by local, the mailbox delivery itself is the
 * lmtp agent's. The agent passed to logs the delivery (its relay=, its
 * reply); the passing agent does not log it again.
 *
 * A transport value is `service` or `service:nexthop`; without a next hop
 * the request's own is kept, as Postfix does. The service must be a unix
 * service of master.cf that the passing daemon is a client of
 * (lib/permissions peersOf); an agent that cannot be reached, or answers
 * badly, defers the recipient (4.3.0) with the reason, never loses it.
 */
import { IpcError, ipcRequest } from "../ipc/mod.ts";
import type { DeliveryRecipient, DeliveryRequest, DeliveryResult, RecipientStatus } from "./mod.ts";

/** A transport setting split into its master.cf service and next hop ("" when none). */
export function splitTransport(value: string): { service: string; nexthop: string } {
  const v = value.trim();
  const colon = v.indexOf(":");
  return colon < 0
    ? { service: v, nexthop: "" }
    : { service: v.slice(0, colon), nexthop: v.slice(colon + 1) };
}

/** Where to pass to: the agent's socket, and the transport value naming it. */
export interface PassTarget {
  /** The agent's socket for this client (ServiceContext.peer). */
  socket: string;
  /** `service[:nexthop]`, e.g. mailbox_transport's value. */
  transport: string;
}

/** What {@link deliverPass} found. */
export interface PassResult {
  /** The recipient's status. */
  status: RecipientStatus;
  /** The agent answered: it has logged the status (false: the caller logs it). */
  answered: boolean;
}

/**
 * Passes `rcpt` of `req` to the agent behind `target`; the status it
 * reports for that recipient. Never throws for delivery failures.
 */
export async function deliverPass(
  target: PassTarget,
  req: DeliveryRequest,
  rcpt: DeliveryRecipient,
  opts: { timeoutMs?: number } = {},
): Promise<PassResult> {
  const { service, nexthop } = splitTransport(target.transport);
  const pass: DeliveryRequest = {
    ...req,
    transport: service,
    nexthop: nexthop || req.nexthop,
    recipients: [rcpt],
  };
  const defer = (reason: string): PassResult => ({
    status: { index: rcpt.index, status: "deferred", dsn: "4.3.0", reason, relay: "none" },
    answered: false,
  });
  let res: DeliveryResult & { error?: string };
  try {
    res = await ipcRequest<DeliveryResult & { error?: string }>(target.socket, pass, {
      timeoutMs: opts.timeoutMs ?? 3_600_000,
      retryMs: 2_000,
    });
  } catch (e) {
    if (!(e instanceof IpcError)) throw e;
    return defer(`mail transport unavailable: ${service}: ${e.message}`);
  }
  const st = Array.isArray(res?.recipients)
    ? res.recipients.find((s) => s.index === rcpt.index)
    : undefined;
  if (!st || !["sent", "deferred", "bounced"].includes(st.status)) {
    return defer(`mail transport unavailable: ${service}: bad reply from delivery agent`);
  }
  return { status: { ...st, index: rcpt.index }, answered: true };
}
