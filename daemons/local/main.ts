/**
 * local: the local delivery agent. Serves delivery requests from qmgr on
 * `private/local`: expands aliases (alias_maps), delivers each local
 * recipient to a Maildir under `mail_spool_directory`, and forwards other
 * addresses of an expansion as new mail through cleanup (see local.ts for
 * what is and is not supported).
 *
 * Parameters: see local.ts. alias_maps and local_recipient_maps are
 * opened once, when the first request arrives, and kept for the life of
 * the process.
 */
import { serveDelivery } from "../../lib/deliver/mod.ts";
import { runService } from "../../lib/service/mod.ts";
import { deliverLocal, LocalTables } from "./local.ts";

if (import.meta.main) {
  let tables: LocalTables | null = null;
  await runService({
    program: "local",
    init: (ctx) => {
      tables = new LocalTables(ctx.config, ctx.maps);
    },
    onIpc: (conn, ctx) =>
      serveDelivery(conn, ctx, (req, file, c) => deliverLocal(req, file, c, { tables: tables! })),
    stop: () => tables?.close(),
  });
}
