/**
 * discard: the delivery agent that accepts and throws away mail
 * (transport "discard:reason"). Serves qmgr's delivery requests on
 * `private/discard`; see discard.ts.
 *
 * Parameters: none.
 */
import { serveDelivery } from "../../lib/deliver/mod.ts";
import { runService } from "../../lib/service/mod.ts";
import { deliverDiscard } from "./discard.ts";

if (import.meta.main) {
  await runService({
    program: "discard",
    onIpc: (conn, ctx) =>
      serveDelivery(conn, ctx, (req, file, c) => deliverDiscard(req, file, c), {
        verifies: true,
        readsContent: false,
      }),
  });
}
