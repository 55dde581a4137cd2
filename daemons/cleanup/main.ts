/**
 * cleanup daemon entry: serves `private/cleanup` and wakes qmgr (through
 * its peer link to qmgr's socket) with the ids of newly queued messages.
 * Lookup tables are opened at start (again at the next message when that
 * failed) and closed at stop. See cleanup.ts.
 */
import { ipcRequest } from "../../lib/ipc/mod.ts";
import { runService, type ServiceContext } from "../../lib/service/mod.ts";
import { CleanupService } from "./cleanup.ts";

let service: CleanupService | null = null;

function get(ctx: ServiceContext): CleanupService {
  service ??= new CleanupService(ctx, async (ids) => {
    await ipcRequest(ctx.peer("qmgr"), { op: "new", ids }, { timeoutMs: 60_000 });
  });
  return service;
}

await runService({
  program: "cleanup",
  // Tables start opening now (without holding up the listener: a database
  // may be slow), so a bad one is reported at start rather than at the
  // first message; until it opens, every message gets 451 4.3.0.
  init: (ctx) => {
    get(ctx).tables().catch((e) => {
      ctx.log.warn(`${(e as Error).message}; mail is refused with 451 4.3.0 until this is fixed`);
    });
  },
  onIpc: (conn, ctx) => get(ctx).handle(conn),
  stop: (ctx) => get(ctx).close(),
});
