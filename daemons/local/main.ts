/**
 * local: the local delivery agent. Serves delivery requests from qmgr on
 * `private/local`: expands aliases (alias_maps), delivers each local
 * recipient to a Maildir under `mail_spool_directory`, and forwards other
 * addresses of an expansion as new mail through cleanup (see local.ts for
 * what is and is not supported).
 *
 * Run as root (master.cf unprivileged = n, master started as root), it
 * writes every mailbox with the recipient's uid and gid through a writer
 * process (privilege.ts); otherwise as the user it runs as.
 *
 * Address verification (sendmail -bv): aliases and .forward files are
 * expanded and each destination reported, nothing delivered (local.ts).
 *
 * Parameters: see local.ts and mailbox.ts. alias_maps and local_recipient_maps are
 * opened once, when the first request arrives, and kept for the life of
 * the process.
 */
import { serveDelivery } from "../../lib/deliver/mod.ts";
import { runService } from "../../lib/service/mod.ts";
import { PasswdFile } from "../../lib/passwd/mod.ts";
import { deliverLocal, LocalTables } from "./local.ts";
import { ownRuntime, recipientWriter } from "./privilege.ts";

if (import.meta.main) {
  let tables: LocalTables | null = null;
  // As root (master.cf unprivileged = n under a root master), every write is the recipient's.
  const root = Deno.uid() === 0;
  const rights = {
    root,
    passwd: new PasswdFile(),
    writer: root ? recipientWriter(ownRuntime()) : undefined,
  };
  await runService({
    program: "local",
    init: (ctx) => {
      tables = new LocalTables(ctx.config, ctx.maps);
    },
    onIpc: (conn, ctx) =>
      serveDelivery(
        conn,
        ctx,
        (req, file, c) => deliverLocal(req, file, c, { tables: tables!, ...rights }),
        { verifies: true },
      ),
    stop: () => tables?.close(),
  });
}
