/**
 * error: the delivery agent that fails mail on purpose (transport
 * "error:reason", and "retry" for deferral). Serves qmgr's delivery
 * requests on `private/error`; see error.ts.
 *
 * Parameters: none.
 */
import { serveDelivery } from "../../lib/deliver/mod.ts";
import { runService } from "../../lib/service/mod.ts";
import { deliverError } from "./error.ts";

if (import.meta.main) {
  await runService({
    program: "error",
    onIpc: (conn, ctx) =>
      serveDelivery(conn, ctx, (req, file, c) => deliverError(req, file, c), {
        verifies: true,
        readsContent: false,
      }),
  });
}
