/**
 * cleanup daemon entry: serves `private/cleanup` and wakes qmgr (through
 * its peer link to qmgr's socket) with the ids of newly queued messages.
 * Lookup tables are opened at the first message and closed at stop. See
 * cleanup.ts.
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
  init: (ctx) => void get(ctx),
  onIpc: (conn, ctx) => get(ctx).handle(conn),
  stop: (ctx) => get(ctx).close(),
});
