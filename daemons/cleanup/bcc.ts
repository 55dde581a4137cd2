/**
 * Automatic blind copies, as Postfix's cleanup_addr.c: sender_bcc_maps is
 * looked up with the envelope sender, recipient_bcc_maps with each envelope
 * recipient (both after canonical mapping and masquerading, before virtual
 * alias expansion; the search order of mail_addr_find, the unmatched
 * extension not propagated), and always_bcc is added once. The null
 * sender gets no sender BCC.
 *
 * The addresses found are returned as written in the table; cleanup.ts
 * rewrites them as recipients (rewrite local, recipient canonical
 * mapping, masquerading, virtual alias expansion) and records them with
 * NOTIFY=NEVER, so the sender never hears about a blind copy.
 *
 * Not applied to mail that cleanup's own daemons generate (bounces).
 *
 * @module
 */
import { parseHeaderAddresses } from "../../lib/address/mod.ts";
import { addressFind } from "../../lib/maps/mod.ts";
import type { CleanupTables } from "./tables.ts";

/**
 * The BCC addresses for a message, in Postfix's order: the sender's, each
 * recipient's, then always_bcc.
 *
 * @throws {DictError} when a table cannot answer.
 */
export async function autoBcc(
  tables: CleanupTables,
  sender: string,
  recipients: readonly string[],
): Promise<string[]> {
  const out: string[] = [];
  if (sender !== "" && !tables.senderBcc.empty) {
    const hit = await addressFind(tables.senderBcc, sender, tables.search);
    if (hit) out.push(internalForm(hit.value));
  }
  if (!tables.recipientBcc.empty) {
    for (const r of recipients) {
      if (r === "") continue;
      const hit = await addressFind(tables.recipientBcc, r, tables.search);
      if (hit) out.push(internalForm(hit.value));
    }
  }
  if (tables.alwaysBcc !== "" && recipients.length > 0) out.push(internalForm(tables.alwaysBcc));
  return out.filter((a) => a !== "");
}

/**
 * An address as tables and actions write it (external form, `"a b"@x`) in
 * internal form.
 */
export function internalForm(value: string): string {
  return parseHeaderAddresses(value)[0] ?? value.trim();
}
