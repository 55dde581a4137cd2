/**
 * The error delivery function: fails every recipient, like Postfix
 * error(8). The next hop (the text after "error:" in a transport entry)
 * is the reason; when it starts with an enhanced status code
 * ("5.1.1 no such user") that code is the DSN, else 5.0.0. The default
 * reason is "mail is undeliverable"; relay=none.
 *
 * Run under the service name "retry" (master.cf `retry unix ... error`),
 * it defers instead, like Postfix's retry(8): dsn 4.0.0 unless the next
 * hop gives one, default reason "delivery temporarily suspended".
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

/** Bounces (or, as "retry", defers) every recipient. */
export function deliverError(
  req: DeliveryRequest,
  _file: QueueFile | null,
  ctx: ServiceContext,
  opts: { now?: () => number } = {},
): Promise<RecipientStatus[]> {
  const now = opts.now ?? Date.now;
  const start = now();
  const retry = ctx.args.service === "retry";
  const { dsn, reason } = errorText(
    req.nexthop,
    retry ? "4.0.0" : "5.0.0",
    retry ? "delivery temporarily suspended" : "mail is undeliverable",
  );
  const out: RecipientStatus[] = [];
  for (const r of req.recipients) {
    const st: RecipientStatus = {
      index: r.index,
      status: retry ? "deferred" : "bounced",
      dsn,
      reason,
      relay: "none",
    };
    out.push(st);
    logStatus(ctx, req, r, st, deliveryDelays(req, start, start, now()));
  }
  return Promise.resolve(out);
}

/**
 * Splits a next hop like "5.1.1 User unknown" (optionally after an SMTP
 * reply code: "550 5.1.1 User unknown") into DSN and text. A code of
 * the wrong class for this agent (4.x.x for error, 5.x.x for retry) gets
 * its class corrected, so status and DSN always agree.
 */
export function errorText(
  nexthop: string,
  defaultDsn: string,
  defaultReason: string,
): { dsn: string; reason: string } {
  const text = nexthop.trim().replace(/^[245]\d\d\s+(?=[245]\.)/, "");
  const m = /^([245])\.(\d{1,3}\.\d{1,3})(?:\s+(.*))?$/s.exec(text);
  if (!m) return { dsn: defaultDsn, reason: text || defaultReason };
  return { dsn: `${defaultDsn[0]}.${m[2]}`, reason: m[3]?.trim() || defaultReason };
}
