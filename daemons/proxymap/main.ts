/**
 * NAME
 *   proxymap - lookup tables for the other daemons
 * SUMMARY
 *   Answers lookups in `proxy:` and network tables (pgsql, mysql,
 *   socketmap, tcp) over `private/proxymap` and its per-client sockets.
 * PARAMETERS
 *   The table parameters of every daemon; see proxymap.ts.
 * SANDBOX
 *   Reads exactly the files of the tables it serves, connects to exactly
 *   their servers (`postwarden audit` shows it); no queue folder.
 */
import { runService } from "../../lib/service/mod.ts";
import { ProxyTables } from "./proxymap.ts";

if (import.meta.main) {
  let tables: ProxyTables;
  await runService({
    program: "proxymap",
    init: (ctx) => {
      tables = new ProxyTables(ctx);
    },
    onIpc: (conn) => tables.serve(conn),
    stop: () => tables?.close(),
  });
}
