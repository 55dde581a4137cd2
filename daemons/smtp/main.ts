/**
 * NAME
 *   smtp - Postwarden SMTP client delivery agent
 *
 * SUMMARY
 *   Serves delivery requests from qmgr on private/smtp (or the master.cf
 *   service name): delivers each message to the request's next hop over
 *   SMTP and reports a status per recipient. See deliver.ts for the
 *   protocol behaviour, nexthop.ts for next hop and MX handling, cache.ts
 *   for connection reuse. An address verification request (sendmail -bv)
 *   ends after RCPT TO: no DATA, each RCPT reply is the answer.
 *
 * CONFIGURATION PARAMETERS
 *   smtp_helo_name (default: $myhostname)
 *     Host name sent in EHLO/HELO.
 *   inet_interfaces, proxy_interfaces (default: all; empty)
 *     This host's addresses: an MX list that reaches one of them ends
 *     there, and "mail for DOMAIN loops back to myself" (5.4.6) when that
 *     leaves nothing (nexthop.ts). With "all" the sandbox may list the
 *     host's interfaces (--allow-sys=networkInterfaces).
 *   inet_protocols (default: all)
 *     Address families to look up and use: ipv4, ipv6, all. IPv4
 *     addresses are tried before IPv6 ones; an IPv6 address the sandbox
 *     does not permit is a connect failure ("not permitted by this
 *     daemon's sandbox"), and the next address is tried.
 *   smtp_connect_timeout (default: 30s)
 *   smtp_helo_timeout (default: 300s)  greeting and EHLO/HELO
 *   smtp_mail_timeout (default: 300s)
 *   smtp_rcpt_timeout (default: 300s)
 *   smtp_data_init_timeout (default: 120s)
 *   smtp_data_xfer_timeout (default: 180s)  each write of content
 *   smtp_data_done_timeout (default: 600s)
 *   smtp_quit_timeout (default: 300s)
 *   smtp_rset_timeout (default: 20s)
 *   smtp_xforward_timeout (default: 300s)
 *   smtp_starttls_timeout (default: 300s)  STARTTLS reply and TLS handshake
 *   smtp_connection_cache_time_limit (default: 2s)
 *     How long an idle connection is kept for the next request to the
 *     same next hop.
 *   smtp_connection_reuse_time_limit (default: 300s)
 *     A connection older than this is not cached again.
 *   smtp_connection_reuse_count_limit (default: 0)
 *     A cached connection serves at most this many deliveries more (0: no limit).
 *   smtp_mx_address_limit (default: 5)
 *     At most this many addresses of an MX lookup are tried (0: no limit).
 *   smtp_mx_session_limit (default: 2)
 *     At most this many sessions that got past EHLO and TLS per next hop.
 *   smtp_fallback_relay (default: $fallback_relay)
 *     Next hops tried in order when the destination cannot be found or
 *     reached (not for a null MX); each has its own TLS policy and
 *     credentials, and is granted like a relayhost (lib/permissions).
 *   smtp_bind_address, smtp_bind_address6: refused at start (Deno cannot
 *     choose a connection's local address).
 *   smtp_send_xforward_command (default: no)
 *     Send XFORWARD with the original client's attributes when the
 *     server offers it (a content filter's re-injection port).
 *
 * TLS AND SASL (security.ts, starttls.ts; lib/tls/client_policy.ts and
 * lib/sasl/client.ts say what each value means)
 *   smtp_tls_security_level (default: empty: from smtp_use_tls,
 *     smtp_enforce_tls, smtp_tls_enforce_peername)
 *     none, may, encrypt, verify, secure, dane, dane-only (dane.ts; they need
 *     smtp_dns_support_level = dnssec); fingerprint stops the start.
 *   smtp_dns_support_level (default: empty: enabled)
 *     dnssec: the lookups of next hops at a DANE level go to the first name
 *     server of resolv.conf with the DO bit; its AD bit counts when it is on
 *     loopback (lib/dane resolver.ts).
 *   smtp_tls_dane_insecure_mx_policy (default: dane at level dane, else may)
 *   smtp_tls_policy_maps (default: empty)
 *     Per next hop level and attributes (match=, protocols=, ciphers=, exclude=).
 *   smtp_tls_CAfile, smtp_tls_CApath (default: empty: nothing is trusted)
 *   smtp_tls_verify_cert_match (default: hostname)
 *   smtp_tls_secure_cert_match (default: nexthop, dot-nexthop)
 *   smtp_tls_protocols, smtp_tls_mandatory_protocols (default: >=TLSv1)
 *   smtp_tls_ciphers, smtp_tls_mandatory_ciphers (default: medium)
 *   smtp_tls_exclude_ciphers, smtp_tls_mandatory_exclude_ciphers
 *   smtp_tls_loglevel (default: 0)
 *   smtp_tls_note_starttls_offer (default: no)
 *   smtp_tls_connection_reuse (default: no)
 *   smtp_sasl_auth_enable (default: no)
 *   smtp_sasl_password_maps (default: empty)
 *   smtp_sasl_security_options (default: noplaintext, noanonymous)
 *   smtp_sasl_tls_security_options (default: $smtp_sasl_security_options)
 *   smtp_sasl_tls_verified_security_options (default: $smtp_sasl_tls_security_options)
 *   smtp_sasl_mechanism_filter (default: empty)
 *   smtp_sasl_type (default: cyrus)
 *   smtp_sasl_auth_soft_bounce (default: yes)
 *   smtp_sender_dependent_authentication (default: no)
 *
 * SANDBOX
 *   Needs --allow-net to the destinations (lib/permissions
 *   smtpDestinations) and to the name servers' port 53 (UDP for
 *   Deno.resolveDns, TCP to confirm its negative answers: lib/dns), read
 *   access to the active queue, /etc/resolv.conf, and the private socket;
 *   read access to smtp_tls_CAfile and smtp_tls_CApath when set, and to
 *   the files of its tables (smtp_tls_policy_maps, smtp_sasl_password_maps).
 *   The daemon runs as mail_owner, so the password table must be readable
 *   by it (chmod 640, group of mail_owner); one it cannot read stops the
 *   start. Avoid proxy: for it: proxymap would serve it to every client.
 */
import { captureConnects, type CaptureSink, captureSink } from "../../lib/deliver/capture.ts";
import { serveDelivery } from "../../lib/deliver/mod.ts";
import { systemResolver } from "../../lib/dns/mod.ts";
import { runService } from "../../lib/service/mod.ts";
import { SmtpAgent } from "./deliver.ts";

/** Where the resolver says why it cannot confirm negative answers (the log, once it is open). */
let warn = (_: string) => {};
/** postwarden_capture (`postwarden test`): every session goes to this sink. */
let sink: CaptureSink | null = null;
const agent = new SmtpAgent({
  resolver: systemResolver({ warn: (m) => warn(m) }),
  connect: captureConnects(() => sink).connect,
});

await runService({
  program: "smtp",
  init: (ctx) => {
    warn = (m) => ctx.log.warn(m);
    sink = captureSink((n) => ctx.config.str(n));
  },
  onIpc: (conn, ctx) => serveDelivery(conn, ctx, agent.deliver, { verifies: true }),
  stop: () => agent.close(),
});
