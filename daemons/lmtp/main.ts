/**
 * NAME
 *   lmtp - Postwarden LMTP client delivery agent
 *
 * SUMMARY
 *   Serves delivery requests from qmgr on private/lmtp (or the master.cf
 *   service name): delivers each message over LMTP (RFC 2033) to the
 *   request's next hop, `unix:pathname` or `inet:host:port`, and reports a
 *   status per recipient from the server's per-recipient replies. Mail
 *   reaches it through a transport setting that names it, e.g.
 *   `virtual_transport = lmtp:unix:private/dovecot-lmtp` or a
 *   transport_maps entry. See lmtp.ts for the protocol behaviour,
 *   nexthop.ts for the destination syntax. An address verification
 *   request (sendmail -bv) ends after RCPT TO: no DATA, each RCPT reply is
 *   the answer.
 *
 * CONFIGURATION PARAMETERS
 *   lmtp_lhlo_name (default: $myhostname)
 *     Host name sent in LHLO.
 *   lmtp_tcp_port (default: 24)
 *     Port of an inet: destination that names none.
 *   myhostname
 *     Names a UNIX-domain server in logs: relay=myhostname[path].
 *   queue_directory
 *     Base of a relative unix: pathname (unix:private/dovecot-lmtp).
 *   inet_protocols (default: all)
 *     Address families used for inet: destinations given by name.
 *   lmtp_connect_timeout (default: 0s)  0: no limit but the system's
 *   lmtp_lhlo_timeout (default: 300s)  greeting and LHLO
 *   lmtp_mail_timeout (default: 300s)
 *   lmtp_rcpt_timeout (default: 300s)
 *   lmtp_data_init_timeout (default: 120s)
 *   lmtp_data_xfer_timeout (default: 180s)  each write of content
 *   lmtp_data_done_timeout (default: 600s)  each end-of-data reply
 *   lmtp_rset_timeout (default: 20s)
 *   lmtp_quit_timeout (default: 300s)
 *   lmtp_connection_cache_on_demand (default: yes)
 *     Keep a connection after a transaction for the next request to the
 *     same next hop.
 *   lmtp_connection_cache_time_limit (default: 2s)
 *   lmtp_connection_reuse_time_limit (default: 300s)
 *   lmtp_send_xforward_command (default: no)
 *   lmtp_skip_5xx_greeting (default: yes)
 *     A 5XX greeting defers (yes) or bounces (no).
 *
 * SANDBOX
 *   --allow-read of the active queue, and exactly the LMTP servers the
 *   configuration names for this service (lib/permissions lmtpGrants):
 *   read+write on each unix: socket path, --allow-net to each inet:
 *   address:port (a host name adds the resolvers' port 53 and
 *   /etc/hosts, /etc/resolv.conf). A next hop outside these (a dynamic
 *   transport_maps entry) is a deferral saying the sandbox refused it.
 */
import { captureConnects, type CaptureSink, captureSink } from "../../lib/deliver/capture.ts";
import { serveDelivery } from "../../lib/deliver/mod.ts";
import { systemResolver } from "../../lib/dns/mod.ts";
import { runService } from "../../lib/service/mod.ts";
import { LmtpAgent } from "./lmtp.ts";

/** Where the resolver says why it cannot confirm negative answers (the log, once it is open). */
let warn = (_: string) => {};
/** postwarden_capture (`postwarden test`): every session goes to this sink. */
let sink: CaptureSink | null = null;
const agent = new LmtpAgent({
  resolver: systemResolver({ warn: (m) => warn(m) }),
  ...captureConnects(() => sink),
});

await runService({
  program: "lmtp",
  init: (ctx) => {
    warn = (m) => ctx.log.warn(m);
    sink = captureSink((n) => ctx.config.str(n));
  },
  onIpc: (conn, ctx) => serveDelivery(conn, ctx, agent.deliver, { verifies: true }),
  stop: () => agent.close(),
});
