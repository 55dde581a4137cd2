/**
 * local: the local delivery agent. Serves delivery requests from qmgr on
 * `private/local` and delivers each recipient to a Maildir under
 * `mail_spool_directory` (see local.ts for what is and is not supported).
 *
 * Parameters (with defaults): mail_spool_directory (/var/mail),
 * home_mailbox (empty), recipient_delimiter (empty), alias_maps
 * (hash:/etc/aliases, nis:mail.aliases; must be empty), header_size_limit
 * (102400), myhostname (the host name).
 */
import { serveDelivery } from "../../lib/deliver/mod.ts";
import { runService } from "../../lib/service/mod.ts";
import { deliverLocal } from "./local.ts";

if (import.meta.main) {
  await runService({
    program: "local",
    onIpc: (conn, ctx) => serveDelivery(conn, ctx, (req, file, c) => deliverLocal(req, file, c)),
  });
}
