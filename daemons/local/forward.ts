/**
 * Forwarding for the local agent, as Postfix's src/local/forward.c: the
 * addresses an alias expands to that are not delivered here are sent on
 * as new mail through cleanup, one message per (Delivered-To address,
 * envelope sender) pair, holding all of that pair's recipients.
 *
 * The new message is the original content with two header blocks put in
 * front, as Postfix writes them:
 *
 *   Received: by MYHOSTNAME (MAIL_NAME)
 *           id NEWQUEUEID; DATE
 *   Delivered-To: RECIPIENT-BEING-DELIVERED (lowercased)
 *
 * The Delivered-To line is what stops a forwarding loop: local(8) bounces
 * a recipient named in one (local.ts). Each recipient keeps its original
 * recipient (so the next agent logs `orig_to=`) and its NOTIFY; the
 * message keeps DSN ENVID and RET unless an owner- alias replaced the
 * sender. {@link forwardGroup} resolves to the new queue id only after
 * cleanup reports the queue file durable; the caller reports the original
 * recipient delivered only then.
 *
 * Does not do: cleanup's "bounce bad messages" flag (Postwarden's cleanup
 * rejects instead, which defers the recipient here), client attributes
 * for the new message's log lines.
 *
 * @module
 */
import { headerAddress } from "../../lib/address/mod.ts";
import { type CleanupEnvelope, submitMessage } from "../../lib/cleanup/client.ts";
import { rfc2822Date } from "../../lib/mime/mod.ts";
import type { Recipient } from "../../lib/queue/mod.ts";
import type { Forward } from "./alias.ts";

/** The recipients of one forwarded message. */
export interface ForwardGroup {
  delivered: string;
  sender: string;
  /** The sender is an owner- address: ENVID and RET are not passed on. */
  ownerSender: boolean;
  recipients: Recipient[];
}

/** Groups forwards by (Delivered-To, sender), in first-seen order. */
export function groupForwards(forwards: Forward[]): ForwardGroup[] {
  const groups = new Map<string, ForwardGroup>();
  for (const f of forwards) {
    const key = `${f.delivered.toLowerCase()}\0${f.sender}`;
    let g = groups.get(key);
    if (!g) {
      g = { delivered: f.delivered, sender: f.sender, ownerSender: f.ownerSender, recipients: [] };
      groups.set(key, g);
    }
    const r: Recipient = { address: f.address };
    if (f.orcpt !== undefined) r.orcpt = f.orcpt;
    if (f.notify !== undefined) r.notify = f.notify;
    g.recipients.push(r);
  }
  return [...groups.values()];
}

/** What the forwarded message is built from. */
export interface ForwardSource {
  /** The original message, canonical CRLF form. */
  content: () => AsyncIterable<Uint8Array>;
  /** DSN ENVID and RET of the original message. */
  envid?: string;
  ret?: string;
}

/** Options for {@link forwardGroup}. */
export interface ForwardOptions {
  /** The cleanup socket (ctx.peer("cleanup")). */
  socket: string;
  /** myhostname, for Received:. */
  hostname: string;
  /** mail_name, for Received:. */
  mailName: string;
  /** Clock. @default () => new Date() */
  now?: () => Date;
  /** Minutes east of UTC for the Received: date. @default the local zone */
  tzOffsetMinutes?: number;
  /** Time allowed for cleanup. @default 60000 */
  timeoutMs?: number;
}

/** The header lines put in front of a forwarded message. */
export function forwardHeaders(
  queueId: string,
  delivered: string,
  opts: Pick<ForwardOptions, "hostname" | "mailName"> & { date: string },
): string {
  return `Received: by ${opts.hostname} (${opts.mailName})\r\n` +
    `\tid ${queueId}; ${opts.date}\r\n` +
    `Delivered-To: ${headerAddress(delivered).toLowerCase()}\r\n`;
}

const encoder = new TextEncoder();

/**
 * Submits one forwarded message; resolves to its queue id once cleanup
 * has made it durable.
 *
 * @throws Error when cleanup cannot be reached or does not queue the message.
 */
export async function forwardGroup(
  group: ForwardGroup,
  source: ForwardSource,
  opts: ForwardOptions,
): Promise<string> {
  return await submitMessage(opts.socket, async (session) => {
    const date = opts.now?.() ?? new Date();
    const attrs: CleanupEnvelope["attrs"] = { origin: "local" };
    if (!group.ownerSender) {
      if (source.envid) attrs.envid = source.envid;
      if (source.ret) attrs.ret = source.ret;
    }
    session.envelope({ sender: group.sender, recipients: group.recipients, attrs });
    await session.write(encoder.encode(forwardHeaders(session.queueId, group.delivered, {
      hostname: opts.hostname,
      mailName: opts.mailName,
      date: rfc2822Date(date, opts.tzOffsetMinutes ?? -date.getTimezoneOffset()),
    })));
    for await (const chunk of source.content()) await session.write(chunk);
  }, { timeoutMs: opts.timeoutMs ?? 60_000 });
}
