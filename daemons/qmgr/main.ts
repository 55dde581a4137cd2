/**
 * NAME
 *   qmgr - Postwarden queue manager
 *
 * SUMMARY
 *   Serves `public/qmgr` (new mail and wake-ups from cleanup, flush from
 *   postqueue -f/-i) and runs the queue manager: qmgr.ts (activation,
 *   resolution, dispatch), scan.ts (recovery, incoming and deferred scans),
 *   scheduler.ts (destination queues, concurrency feedback, dead
 *   destinations, fairness), settle.ts (removal, deferral with backoff,
 *   bounces, delay warnings), agent_pool.ts (connections to the agents).
 *
 * CONFIGURATION PARAMETERS
 *   Listed in qmgr.ts and settle.ts.
 *
 * SANDBOX
 *   Read and write on incoming/, active/, deferred/, corrupt/ and defer/
 *   (lib/permissions; not hold/, which is postsuper's), the sockets of the
 *   delivery agents and of bounce, no TCP: the agents reach the network.
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
