/**
 * pickup: submits locally posted mail from `maildrop/` to cleanup (see
 * pickup.ts). Polls every second; a connection on its socket
 * (`public/pickup`, master.cf private=n) with any message wakes it at once
 * and is answered {ok: true}.
 *
 * Parameters: queue_directory.
 */
import { runService } from "../../lib/service/mod.ts";
import { Pickup, serveWakeup } from "./pickup.ts";

if (import.meta.main) {
  let pickup: Pickup | null = null;
  await runService({
    program: "pickup",
    init: (ctx) => {
      pickup = new Pickup(ctx);
      pickup.start();
    },
    onIpc: (conn) => serveWakeup(conn, pickup!),
  });
}
