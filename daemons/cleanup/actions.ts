/**
 * smtpd's access-table actions (HOLD, DISCARD, REDIRECT, BCC, FILTER; see
 * daemons/smtpd/actions.ts) as cleanup receives them, checked, and merged
 * with what header_checks and body_checks decided. The order is Postfix's
 * record order: smtpd's actions arrive with the envelope (before the
 * content), the content checks run on the content, and
 * smtpd_end_of_data_restrictions' actions arrive after it. So HOLD and
 * DISCARD from any of them count, every BCC adds a recipient, and the
 * last REDIRECT and the last FILTER win. No I/O.
 */
import type { MessageActions } from "../../lib/cleanup/client.ts";

/** What the merge needs from the content checks (checks.ts MessageChecks). */
export interface ContentActions {
  hold: boolean;
  discard: boolean;
  redirect: string | undefined;
  filter?: string;
  bcc: readonly string[];
}

/** The actions that decide the message's fate. */
export interface MergedActions {
  hold: boolean;
  discard: boolean;
  redirect?: string;
  filter?: string;
  bcc: string[];
}

/** An address or filter from the client: a bounded single-line string, or nothing. */
function line(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" && v.length <= 1000 && !/[\0\r\n]/.test(v)
    ? v
    : undefined;
}

/**
 * The actions in an envelope or "actions" message, keeping only well-formed
 * fields (the client is smtpd, but a queue file never gets a malformed one).
 */
export function messageActions(raw: unknown): MessageActions {
  if (typeof raw !== "object" || raw === null) return {};
  const r = raw as Record<string, unknown>;
  const bcc = Array.isArray(r.bcc)
    ? r.bcc.map(line).filter((b): b is string => b !== undefined).slice(0, 1000)
    : [];
  const redirect = line(r.redirect);
  const filter = line(r.filter);
  return {
    ...(r.hold === true ? { hold: true } : {}),
    ...(r.discard === true ? { discard: true } : {}),
    ...(redirect !== undefined ? { redirect } : {}),
    ...(filter !== undefined ? { filter } : {}),
    ...(bcc.length ? { bcc } : {}),
    ...(r.more === true ? { more: true } : {}),
  };
}

/** smtpd's early actions, the content checks', then smtpd's late ones. */
export function mergeActions(
  early: MessageActions,
  content: ContentActions,
  late: MessageActions | null,
): MergedActions {
  const redirect = late?.redirect ?? content.redirect ?? early.redirect;
  const filter = late?.filter ?? content.filter ?? early.filter;
  return {
    hold: !!(early.hold || content.hold || late?.hold),
    discard: !!(early.discard || content.discard || late?.discard),
    ...(redirect !== undefined ? { redirect } : {}),
    ...(filter !== undefined ? { filter } : {}),
    bcc: [...(early.bcc ?? []), ...content.bcc, ...(late?.bcc ?? [])],
  };
}
