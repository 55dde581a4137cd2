/**
 * bounce daemon entry: serves `private/bounce` for qmgr and queues the
 * delivery status notifications through `private/cleanup`. The logic and
 * the parameters it reads are described in bounce.ts.
 */
import { runService } from "../../lib/service/mod.ts";
import { serveBounce } from "./bounce.ts";

await runService({
  program: "bounce",
  onIpc: serveBounce,
});
