/**
 * The request qmgr sends to the bounce service: turn these recipients'
 * outcomes into one delivery status notification for the message, queue
 * it through cleanup, and say "ok" only once it is durably queued.
 */
import { ipcRequest } from "../ipc/mod.ts";

/** One recipient's outcome for the notification. */
export interface BounceRecipient {
  address: string;
  orcpt?: string;
  /** RFC 3464 Action; a verification report's are Postfix's deliverable and undeliverable. */
  action: "failed" | "delayed" | "delivered" | "relayed" | "deliverable" | "undeliverable";
  /** Enhanced status code. */
  status: string;
  reason: string;
  diagnostic?: string;
  remoteMta?: string;
}

/** What qmgr asks of bounce. */
export interface BounceRequest {
  /** "verify": the report sendmail -bv asked for, to the sender, whatever NOTIFY says. */
  op: "bounce" | "delay" | "success" | "verify";
  queueId: string;
  /** The original message's queue file. */
  path: string;
  sender: string;
  /** Arrival time of the original, ms. */
  arrival: number;
  envid?: string;
  ret?: string;
  /** The message was sent with REQUIRETLS (RFC 8689): headers only, and the notice is tagged too. */
  requiretls?: true;
  recipients: BounceRecipient[];
}

/** bounce's answer. `queueId` is the notification's, "" when none was needed. */
export type BounceReply = { status: "ok"; queueId: string } | { status: "error"; text: string };

/** Sends a request and waits for the answer. Throws IpcError if bounce is unreachable. */
export function requestBounce(socket: string, req: BounceRequest): Promise<BounceReply> {
  return ipcRequest<BounceReply>(socket, req, { timeoutMs: 120_000 });
}
