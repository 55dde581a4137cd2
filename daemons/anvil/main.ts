/**
 * NAME
 *   anvil - session count and request rate control
 * SUMMARY
 *   Keeps, per (service, client address), the number of simultaneous
 *   connections and the rates of connections, messages, recipients, new
 *   TLS sessions and AUTH commands over anvil_rate_time_unit, for smtpd's
 *   smtpd_client_*_limit parameters, as Postfix's anvil(8). Serves
 *   `private/anvil` and one socket per client service (lib/service).
 *   State is in memory only (as Postfix's): a restart forgets it.
 * PARAMETERS
 *   anvil_rate_time_unit (60s): the time unit of every rate.
 *   anvil_status_update_time (600s): how often the peak count and rates
 *   are logged ("statistics: ..." lines, also at stop).
 * SANDBOX
 *   Its own sockets only: no queue folder, no network, no file.
 */
import { runService } from "../../lib/service/mod.ts";
import { serve } from "./server.ts";
import { AnvilState, ctimeShort } from "./state.ts";

if (import.meta.main) {
  let state: AnvilState;
  const now = () => Math.floor(Date.now() / 1000);
  await runService({
    program: "anvil",
    init: (ctx) => {
      state = new AnvilState(ctx.config.time("anvil_rate_time_unit"));
      const report = () => {
        for (const line of state.report(ctimeShort)) ctx.log.info(line);
      };
      const status = setInterval(() => {
        state.expire(now());
        report();
      }, ctx.config.time("anvil_status_update_time") * 1000);
      // Idle entries go even when no request comes.
      const sweep = setInterval(() => state.expire(now()), 10_000);
      ctx.signal.addEventListener("abort", () => {
        clearInterval(status);
        clearInterval(sweep);
        report();
      });
    },
    onIpc: (conn, ctx) => serve(state, conn, { now, warn: (m) => ctx.log.warn(m) }),
  });
}
