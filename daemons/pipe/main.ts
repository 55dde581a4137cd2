/**
 * NAME
 *   pipe - delivery to external commands
 *
 * SUMMARY
 *   Serves qmgr's delivery requests on `private/SERVICE` for a master.cf
 *   service such as
 *
 *     maildrop unix - n n - - pipe
 *       flags=DRXhu user=vmail argv=/usr/bin/maildrop -d ${recipient}
 *
 *   and runs the argv= program once per request with the message on its
 *   standard input (pipe.ts says what is checked first, how the exit
 *   status becomes a delivery status, and which macros argv= may use).
 *   Address verification (sendmail -bv) makes the same checks and runs
 *   nothing.
 *
 * PARAMETERS
 *   SERVICE_time_limit ($command_time_limit, 1000s), export_environment
 *   (TZ MAIL_CONFIG LANG), recipient_delimiter, mail_owner,
 *   queue_directory, header_size_limit. qmgr reads
 *   SERVICE_destination_recipient_limit (how many recipients share one
 *   command; 1 for flags D and O).
 *
 * SANDBOX
 *   Read: queue_directory/active (the message), /etc/passwd and /etc/group
 *   (user=). Run: exactly the argv= program. Env: the export_environment
 *   names. Nothing else; the command itself runs outside Deno's sandbox
 *   as user=, as any program Postfix's pipe(8) starts. When master runs as
 *   root this daemon runs as root, to start the command as user=.
 */
import { serveDelivery } from "../../lib/deliver/mod.ts";
import { PasswdFile } from "../../lib/passwd/mod.ts";
import { parsePipeAttributes, type PipeAttributes } from "../../lib/pipe/mod.ts";
import { runService } from "../../lib/service/mod.ts";
import { deliverPipe, pipeIdentity } from "./pipe.ts";

if (import.meta.main) {
  let attrs: PipeAttributes;
  const passwd = new PasswdFile();
  await runService({
    program: "pipe",
    init: (ctx) => {
      const svc = ctx.services.find((s) => s.type === "unix" && s.name === ctx.args.service);
      if (!svc) throw new Error(`no master.cf entry for service ${ctx.args.service}`);
      attrs = parsePipeAttributes(svc.args);
    },
    onIpc: (conn, ctx) =>
      serveDelivery(conn, ctx, (req, file, c) => {
        // Looked up per request, as /etc/passwd may change while we run.
        const identity = pipeIdentity(attrs, c.config, {
          passwd,
          groups: () => Deno.readTextFileSync("/etc/group"),
        }, Deno.uid() ?? -1);
        return deliverPipe(req, file, c, { attrs, identity });
      }, { verifies: true }),
  });
}
