/**
 * qmgr daemon entry: serves `public/qmgr` (wake-ups from cleanup, flush
 * from postqueue) and runs the queue manager in qmgr.ts.
 */
import { runService } from "../../lib/service/mod.ts";
import { Qmgr } from "./qmgr.ts";

let qmgr: Qmgr | null = null;

await runService({
  program: "qmgr",
  init: async (ctx) => {
    qmgr = new Qmgr(ctx, ctx.services);
    // Recovery before listening, so wake-ups never race the move back.
    await qmgr.start();
  },
  onIpc: async (conn) => {
    const msg = await conn.recvMsg();
    await conn.send(await qmgr!.command(msg));
  },
  stop: () => qmgr?.stop(),
});
