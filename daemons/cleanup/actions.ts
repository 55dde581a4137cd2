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
import type { ArcSealInput, ContentEdit, MessageActions } from "../../lib/cleanup/client.ts";

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
  for (const k of ["hold", "discard", "more", "replaceBody"]) {
    if (r[k] !== undefined && typeof r[k] !== "boolean") {
      throw new MalformedActions(`malformed ${k} action from client`);
    }
  }
  const quarantine = r.quarantine === undefined
    ? undefined
    : typeof r.quarantine === "string" && r.quarantine.length <= 2000 &&
        !/[\0\r\n]/.test(r.quarantine)
    ? r.quarantine
    : malformed("quarantine");
  const edits = r.edits === undefined ? [] : contentEdits(r.edits);
  const arcSeal = r.arcSeal === undefined ? undefined : arcSealInput(r.arcSeal);
  return {
    ...(r.hold === true ? { hold: true } : {}),
    ...(r.discard === true ? { discard: true } : {}),
    ...(redirect !== undefined ? { redirect } : {}),
    ...(filter !== undefined ? { filter } : {}),
    ...(bcc.length ? { bcc } : {}),
    ...(r.more === true ? { more: true } : {}),
    ...(edits.length ? { edits } : {}),
    ...(r.replaceBody === true ? { replaceBody: true } : {}),
    ...(quarantine !== undefined ? { quarantine } : {}),
    ...(arcSeal !== undefined ? { arcSeal } : {}),
  };
}

/** The ARC seal input, checked: a hostile client cannot make it end the header field. */
function arcSealInput(raw: unknown): ArcSealInput {
  const r = raw as Record<string, unknown> | null;
  if (
    typeof r !== "object" || r === null || !["none", "pass", "fail"].includes(r.cv as string) ||
    !Number.isInteger(r.instance) || (r.instance as number) < 0 || (r.instance as number) > 50 ||
    typeof r.authResults !== "string" || r.authResults.length > 16_384 ||
    /[\0\r\n]/.test(r.authResults.replace(/\r\n[ \t]/g, " "))
  ) {
    return malformed("arcSeal");
  }
  return {
    cv: r.cv as ArcSealInput["cv"],
    instance: r.instance as number,
    authResults: r.authResults as string,
  };
}

function malformed(what: string): never {
  throw new MalformedActions(`malformed ${what} action from client`);
}

/** RFC 5322 field name: printable ASCII but the colon. */
const FIELD_NAME = /^[!-9;-~]{1,998}$/;

/** Largest header value a milter edit may carry (Postfix's default header_size_limit). */
const MAX_EDIT_VALUE = 102_400;

/**
 * The milter edits in a late "actions" message, checked: a header name
 * that could not be a field name, a value or address with a NUL, an index
 * that is not a small whole number, or an unknown op refuses the message
 * (MalformedActions). A header value's line breaks are made folds here,
 * so that no edit can end the header section or start a field of its own.
 */
export function contentEdits(raw: unknown): ContentEdit[] {
  if (!Array.isArray(raw) || raw.length > 10_000) malformed("edits");
  const index = (v: unknown) =>
    Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= 1_000_000
      ? v as number
      : malformed("edit index");
  const name = (v: unknown) =>
    typeof v === "string" && FIELD_NAME.test(v) ? v : malformed("header name");
  const value = (v: unknown) =>
    typeof v === "string" && v.length <= MAX_EDIT_VALUE && !v.includes("\0")
      ? foldValue(v)
      : malformed("header value");
  const address = (v: unknown) => line("recipient", v) ?? malformed("address");
  const args = (v: unknown) => v === undefined || v === "" ? undefined : line("ESMTP argument", v);
  return raw.map((e): ContentEdit => {
    if (typeof e !== "object" || e === null) malformed("edit");
    const x = e as Record<string, unknown>;
    switch (x.op) {
      case "addHeader":
        return { op: "addHeader", name: name(x.name), value: value(x.value) };
      case "insertHeader":
        return {
          op: "insertHeader",
          index: index(x.index),
          name: name(x.name),
          value: value(x.value),
        };
      case "changeHeader":
        return {
          op: "changeHeader",
          index: index(x.index),
          name: name(x.name),
          value: value(x.value),
        };
      case "addRcpt": {
        const a = args(x.args);
        return { op: "addRcpt", address: address(x.address), ...(a ? { args: a } : {}) };
      }
      case "deleteRcpt":
        return { op: "deleteRcpt", address: address(x.address) };
      case "changeFrom": {
        const a = args(x.args);
        // The null sender is a valid new sender.
        const from = x.address === "" || x.address === "<>" ? "" : address(x.address);
        return { op: "changeFrom", address: from, ...(a ? { args: a } : {}) };
      }
      case "deleteAuthResults":
        return {
          op: "deleteAuthResults",
          authservId: line("authserv-id", x.authservId) ?? malformed("authserv-id"),
        };
      default:
        return malformed("edit");
    }
  });
}

/**
 * A milter's header value with its line breaks as folds: every line after
 * the first starts with white space (a tab is added where it does not),
 * empty lines are dropped, and lines end in CRLF.
 */
export function foldValue(v: string): string {
  const lines = v.split(/\r?\n|\r/);
  return lines.filter((l, i) => i === 0 || l.trim() !== "")
    .map((l, i) => i === 0 || /^[ \t]/.test(l) ? l : `\t${l}`)
    .join("\r\n");
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
