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

/** Actions that are not what smtpd sends: the message is refused, never routed otherwise. */
export class MalformedActions extends Error {
  override readonly name = "MalformedActions";
}

/** An address or filter from the client: a bounded single-line string. */
function line(what: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "string" && v !== "" && v.length <= 2000 && !/[\0\r\n]/.test(v)) return v;
  throw new MalformedActions(`malformed ${what} action from client`);
}

/**
 * The actions in an envelope or "actions" message. A field that is present
 * but malformed refuses the message (MalformedActions): dropping a REDIRECT
 * or FILTER would deliver the mail where the policy said it must not go.
 */
export function messageActions(raw: unknown): MessageActions {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== "object") throw new MalformedActions("malformed actions from client");
  const r = raw as Record<string, unknown>;
  if (r.bcc !== undefined && (!Array.isArray(r.bcc) || r.bcc.length > 10_000)) {
    throw new MalformedActions("malformed bcc action from client");
  }
  const bcc = ((r.bcc ?? []) as unknown[]).map((b) => line("bcc", b)!);
  const redirect = line("redirect", r.redirect);
  const filter = line("filter", r.filter);
  for (const k of ["hold", "discard", "more"]) {
    if (r[k] !== undefined && typeof r[k] !== "boolean") {
      throw new MalformedActions(`malformed ${k} action from client`);
    }
  }
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
