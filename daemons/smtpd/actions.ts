/**
 * The access-table actions smtpd delegates to cleanup: HOLD, DISCARD,
 * REDIRECT user@domain, BCC user@domain and FILTER transport:destination,
 * from any check_*_access table or a policy server's reply, as Postfix's
 * check_table_result. Each is remembered for the mail transaction (and
 * forgotten with it: RSET, a new MAIL after the end of DATA) and handed to
 * cleanup with the envelope; it applies to the whole message, whichever
 * recipient triggered it, even one that a later restriction rejected (as
 * in Postfix: "we may still change our mind" goes for the message only).
 *
 * Postfix's rules, kept here:
 * - outside a mail transaction (smtpd_delay_reject = no, client and HELO
 *   restrictions) the action is skipped with a warning;
 * - HOLD is logged once per transaction; DISCARD also permits, ending its
 *   restriction list like OK, and the implicit reject_unlisted_* checks are
 *   skipped for the rest of the transaction;
 * - REDIRECT and BCC need an "@" in the target, FILTER a ":"; a bad target
 *   is logged and the entry ignored (DUNNO);
 * - the last REDIRECT and the last FILTER win; every BCC adds a recipient.
 *
 * The log line is Postfix's log_whatsup: `QUEUEID: hold: RCPT from
 * client: <who>: Recipient address triggers HOLD action; from=<> ...`
 * (NOQUEUE before the first accepted recipient). This file does no I/O.
 */
import type { MessageActions } from "../../lib/cleanup/client.ts";

/** The actions one mail transaction collected. */
export class TransactionActions {
  hold = false;
  discard = false;
  redirect?: string;
  filter?: string;
  bcc: string[] = [];

  /** Whether any action fired. */
  any(): boolean {
    return this.hold || this.discard || this.redirect !== undefined ||
      this.filter !== undefined || this.bcc.length > 0;
  }

  /**
   * The actions as cleanup's envelope carries them (undefined when none and
   * none may follow). `contentFilter` (content_filter) is the filter unless
   * a FILTER action replaced it: Postfix's smtpd sends it first.
   */
  envelope(more: boolean, contentFilter = ""): MessageActions | undefined {
    const filter = this.filter ?? (contentFilter || undefined);
    if (!more && !this.any() && filter === undefined) return undefined;
    return {
      ...(this.hold ? { hold: true } : {}),
      ...(this.discard ? { discard: true } : {}),
      ...(this.redirect !== undefined ? { redirect: this.redirect } : {}),
      ...(filter !== undefined ? { filter } : {}),
      ...(this.bcc.length ? { bcc: [...this.bcc] } : {}),
      ...(more ? { more: true } : {}),
    };
  }

  /**
   * A fresh set for smtpd_end_of_data_restrictions, whose actions reach
   * cleanup after the content: HOLD and DISCARD carry over (HOLD is not
   * logged twice; after DISCARD nothing is checked), the rest starts empty
   * so that only what the end of data decides is sent (a REDIRECT or
   * FILTER from before DATA must not override header_checks').
   */
  lateStage(): TransactionActions {
    const late = new TransactionActions();
    late.hold = this.hold;
    late.discard = this.discard;
    return late;
  }

  /** What this late set decided beyond `early`, for cleanup's "actions" message. */
  since(early: TransactionActions): MessageActions {
    return {
      ...(this.hold && !early.hold ? { hold: true } : {}),
      ...(this.discard && !early.discard ? { discard: true } : {}),
      ...(this.redirect !== undefined ? { redirect: this.redirect } : {}),
      ...(this.filter !== undefined ? { filter: this.filter } : {}),
      ...(this.bcc.length ? { bcc: [...this.bcc] } : {}),
    };
  }
}

/** The actions that need cleanup, by their access table name. */
export const DELEGATED_ACTIONS = new Set(["HOLD", "DISCARD", "REDIRECT", "BCC", "FILTER"]);

/** What applying an action needs from the restriction engine. */
export interface ActionContext {
  /** The transaction's actions. */
  actions: TransactionActions;
  /** Whether a MAIL FROM was given (Postfix's state->sender). */
  inTransaction: boolean;
  /** Who the result is about and Postfix's name for it ("Recipient address"). */
  name: string;
  what: string;
  /** The table (or policy server) that answered, and its value, for warnings. */
  table: string;
  value: string;
  warn: (msg: string) => void;
  /** Postfix's log_whatsup: `action` ("hold") and the text. */
  log: (action: string, text: string) => void;
}

/**
 * Applies one delegated action (`cmd` upper case, `text` what follows it).
 * Returns "permit" for DISCARD (Postfix's smtpd_acl_permit) and null for
 * the others, which never decide a restriction list.
 */
export function applyAction(c: ActionContext, cmd: string, text: string): "permit" | null {
  if (!c.inTransaction) {
    c.warn(
      `access table ${c.table}: with smtpd_delay_reject=no, action ${cmd} ` +
        `is always skipped in client or helo restrictions`,
    );
    return null;
  }
  const who = `<${c.name}>: ${c.what}`;
  switch (cmd) {
    case "HOLD":
      if (c.actions.hold) return null;
      c.log("hold", `${who} ${text || "triggers HOLD action"}`);
      c.actions.hold = true;
      return null;
    case "DISCARD":
      c.log("discard", `${who} ${text || "triggers DISCARD action"}`);
      c.actions.discard = true;
      return "permit";
    case "REDIRECT":
    case "BCC":
      if (!text.includes("@")) {
        c.warn(`access table ${c.table} entry "${c.value}" requires user@domain target`);
        return null;
      }
      c.log(cmd.toLowerCase(), `${who} triggers ${cmd} ${text}`);
      if (cmd === "REDIRECT") c.actions.redirect = text;
      else c.actions.bcc.push(text);
      return null;
    case "FILTER":
      if (text === "") {
        c.warn(`access table ${c.table} entry "${c.value}" has FILTER entry without value`);
        return null;
      }
      if (!text.includes(":")) {
        c.warn(`access table ${c.table} entry "${c.value}" requires transport:destination`);
        return null;
      }
      c.log("filter", `${who} triggers FILTER ${text}`);
      c.actions.filter = text;
      return null;
  }
  throw new Error(`not a delegated action: ${cmd}`);
}
