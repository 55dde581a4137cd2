/**
 * The order in which cleanup rewrites each kind of address, as Postfix's
 * cleanup_addr.c and cleanup_rewrite_sender/_recip:
 *
 *   rewrite local (lib/address rewriteAddress) -> sender_ or recipient_canonical_maps ->
 *   canonical_maps -> masquerade_domains
 *
 * each step only for the classes its *_classes parameter names
 * (envelope_sender, envelope_recipient, header_sender, header_recipient).
 * Envelope recipients are then expanded through virtual_alias_maps
 * (virtual.ts), header addresses never are. "MAILER-DAEMON@$myorigin" as
 * envelope sender becomes the null sender, as in Postfix.
 *
 * @module
 */
import { mapOne, type MapOneOptions, masquerade } from "./rewrite.ts";
import type { CleanupTables } from "./tables.ts";
import { expandVirtual } from "./virtual.ts";

/** Which address is being rewritten. */
export type AddressRole =
  | "envelopeSender"
  | "envelopeRecipient"
  | "headerSender"
  | "headerRecipient";

/** Rewrites the addresses of one message with the process's tables. */
export class AddressRewriter {
  constructor(
    readonly tables: CleanupTables,
    /** trivial-rewrite's "rewrite local" (lib/address rewriteAddress with the configuration). */
    readonly rewriteLocal: (address: string) => string,
    /** Warnings (the queue id is prefixed by the caller). */
    readonly warn: (message: string) => void,
  ) {}

  #opts(propagate: boolean): MapOneOptions {
    // Table results are canonicalized with trivial-rewrite's "rewrite local" too.
    return { ...this.tables.search, propagate, warn: this.warn, canonicalize: this.rewriteLocal };
  }

  /**
   * One address of a role, through canonical mapping and masquerading.
   * The null sender stays null.
   *
   * @throws {DictError} when a table cannot answer.
   */
  async rewrite(address: string, role: AddressRole): Promise<string> {
    const t = this.tables;
    // Postfix calls trivial-rewrite "rewrite local" here.
    let a = this.rewriteLocal(address);
    if (role === "envelopeSender" && /^mailer-daemon@/i.test(a)) {
      if (a.toLowerCase() === this.rewriteLocal("MAILER-DAEMON").toLowerCase()) a = "";
    }
    if (a === "") return a;
    const opts = this.#opts(t.propagate.canonical);
    const sender = role === "envelopeSender" || role === "headerSender";
    if (sender && t.classes.sender[role]) a = await mapOne(t.senderCanonical, a, opts);
    if (!sender && t.classes.recipient[role]) a = await mapOne(t.recipientCanonical, a, opts);
    if (t.classes.canonical[role]) a = await mapOne(t.canonical, a, opts);
    if (t.classes.masquerade[role] && t.masq.domains.length > 0 && !(await this.#excepted(a))) {
      a = masquerade(a, t.masq);
    }
    return a;
  }

  /**
   * The user name is in a masquerade_exceptions table (Postfix's
   * string_list_match on the lower-case local part; any value counts).
   *
   * @throws {DictError} when a table cannot answer.
   */
  async #excepted(address: string): Promise<boolean> {
    const maps = this.tables.masqExceptionMaps;
    const at = address.lastIndexOf("@");
    if (maps.empty || at < 0) return false;
    return (await maps.find(address.slice(0, at).toLowerCase())) !== undefined;
  }

  /**
   * The recipients an envelope recipient (already rewritten) expands to
   * through virtual_alias_maps.
   *
   * @throws {ExpansionError} over a virtual_alias_*_limit.
   * @throws {DictError} when a table cannot answer.
   */
  expand(recipient: string): Promise<string[]> {
    return expandVirtual(
      this.tables.virtual,
      recipient,
      this.tables.limits,
      this.#opts(this.tables.propagate.virtual),
    );
  }
}
