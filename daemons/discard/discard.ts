/**
 * The discard delivery function: reports every recipient delivered
 * without delivering anything, like Postfix discard(8). The reason is the
 * next hop (the text after "discard:" in a transport entry) or
 * "discarded"; relay=none.
 *
 * Parameters: none.
 */
import {
  deliveryDelays,
  type DeliveryRequest,
  logStatus,
  type RecipientStatus,
} from "../../lib/deliver/mod.ts";
import type { QueueFile } from "../../lib/queue/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";

/** Marks every recipient sent (dsn 2.0.0). */
export function deliverDiscard(
  req: DeliveryRequest,
  _file: QueueFile | null,
  ctx: ServiceContext,
  opts: { now?: () => number } = {},
): Promise<RecipientStatus[]> {
  const now = opts.now ?? Date.now;
  const start = now();
  const reason = req.nexthop.trim() || "discarded";
  const out: RecipientStatus[] = [];
  for (const r of req.recipients) {
    const st: RecipientStatus = {
      index: r.index,
      status: "sent",
      dsn: "2.0.0",
      reason,
      relay: "none",
    };
    out.push(st);
    logStatus(ctx, req, r, st, deliveryDelays(req, start, start, now()));
  }
  return Promise.resolve(out);
}
