/**
 * NAME
 *   virtual - delivery to virtual mailboxes
 *
 * SUMMARY
 *   Serves qmgr's delivery requests on `private/virtual` (the
 *   virtual_transport of virtual_mailbox_domains): each recipient's
 *   Maildir or mbox file under virtual_mailbox_base, as virtual_mailbox_maps,
 *   virtual_uid_maps and virtual_gid_maps say (virtual.ts says what is
 *   checked, what is deferred and how links are refused). Address
 *   verification (sendmail -bv) makes every check and writes nothing.
 *
 * PARAMETERS
 *   virtual_mailbox_base, virtual_mailbox_maps, virtual_uid_maps,
 *   virtual_gid_maps, virtual_minimum_uid, virtual_mailbox_limit,
 *   virtual_mailbox_lock,
 *   recipient_delimiter, header_size_limit, myhostname. The tables are
 *   opened at the first request and kept.
 *
 * SANDBOX
 *   Read: queue_directory/active and virtual_mailbox_base; write:
 *   virtual_mailbox_base only; the tables' own files (lib/permissions).
 *   When master runs as root this daemon runs as root (unprivileged=n),
 *   to give each file to its mapped owner.
 */
import { serveDelivery } from "../../lib/deliver/mod.ts";
import { runService } from "../../lib/service/mod.ts";
import { deliverVirtual, VirtualTables } from "./virtual.ts";

if (import.meta.main) {
  let tables: VirtualTables | null = null;
  let root = false;
  await runService({
    program: "virtual",
    init: (ctx) => {
      tables = new VirtualTables(ctx.config, ctx.maps);
      root = Deno.uid() === 0;
    },
    onIpc: (conn, ctx) =>
      serveDelivery(
        conn,
        ctx,
        (req, file, c) => deliverVirtual(req, file, c, { tables: tables!, setOwner: root }),
        { verifies: true },
      ),
    stop: () => tables?.close(),
  });
}
