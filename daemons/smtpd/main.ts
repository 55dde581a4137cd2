/**
 * smtpd daemon entry: accepts TCP connections on its master.cf inet
 * endpoint and runs one SMTP session (session.ts) per connection, handing
 * messages to `private/cleanup`. Client names come from /etc/hosts, then a
 * forward-confirmed DNS PTR lookup (peername.ts, smtpd_peername_lookup),
 * else "unknown" as in Postfix.
 *
 * TLS (tls.ts): with smtpd_tls_security_level may/encrypt or
 * smtpd_tls_wrappermode, the certificate and key come from master over
 * the start-up channel (ServiceContext.tls; this daemon has no read grant
 * on the key file). Mandatory TLS without a usable certificate stops this
 * smtpd; with "may" STARTTLS is then not offered (a warning, as Postfix's
 * "No server certs available. TLS won't be enabled"). A STARTTLS swaps the
 * connection's read/write for the TLS socket's.
 *
 * master validates main.cf; the settings this service's master.cf `-o`
 * overrides add are checked here, at start: one Postwarden cannot honour
 * (`-o smtpd_tls_security_level=encrypt`) stops this smtpd with a fatal
 * error instead of being ignored, as Postfix's smtpd dies on a bad value.
 */
import { CleanupClient } from "../../lib/cleanup/client.ts";
import { runService, type ServiceContext } from "../../lib/service/mod.ts";
import { denoPeerResolver, peerName, type PeerResolver } from "./peername.ts";
import { Resolver } from "../../lib/resolve/mod.ts";
import { type ListedContext, listedContext } from "./recipients.ts";
import { resolveFor, type RestrictionContext, restrictionContext } from "./restrictions.ts";
import { runSession } from "./session.ts";
import { connectionIo, TlsServer } from "./tls.ts";
import {
  type SmtpdTlsPolicy,
  smtpdTlsPolicy,
  tlsMandatory,
  tlsWanted,
} from "../../lib/tls/policy.ts";

/** Per DNS query; Postfix's resolver gives up after a few seconds too. */
const PEERNAME_TIMEOUT_MS = 5000;

let restrictions: RestrictionContext | null = null;
let listed: ListedContext | null = null;
/** Connections to cleanup, kept for the next message. */
let cleanup: CleanupClient | null = null;
let hosts = new Map<string, string>();
let resolver: PeerResolver | null = null;
let tlsPolicy: SmtpdTlsPolicy | null = null;
/** Null when TLS is not wanted or no certificate is usable. */
let tlsServer: TlsServer | null = null;

/** Address -> first name from /etc/hosts text. */
export function parseHosts(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\n")) {
    const f = line.replace(/#.*/, "").trim().split(/\s+/);
    if (f.length >= 2 && !m.has(f[0])) m.set(f[0], f[1]);
  }
  return m;
}

async function setupTls(ctx: ServiceContext): Promise<void> {
  const { policy, problems } = smtpdTlsPolicy(ctx.config);
  const fatal = problems.filter((p) => p.fatal);
  if (fatal.length) throw new Error(fatal.map((p) => p.message).join("; "));
  if (!tlsWanted(policy)) return;
  tlsPolicy = policy;
  if (ctx.tls) tlsServer = await TlsServer.create(policy, ctx.tls);
  else if (tlsMandatory(policy)) {
    throw new Error("mandatory TLS (encrypt level or wrapper mode) and no usable certificate");
  } else ctx.log.warn("No server certs available. TLS won't be enabled");
}

async function setup(ctx: ServiceContext): Promise<void> {
  await setupTls(ctx);
  const c = ctx.config;
  const warn = (m: string) => ctx.log.warn(m);
  // One resolver (and its tables) for the relay decision and the recipient tables.
  const addressResolver = Resolver.fromConfig(c, { warn, openMaps: ctx.maps });
  restrictions = restrictionContext(c, warn, addressResolver, {
    openMaps: ctx.maps,
    info: (m) => ctx.log.info(m),
  });
  const r = restrictions;
  listed = listedContext(
    c,
    addressResolver,
    r.rewrite,
    ctx.maps,
    (address, sender) => resolveFor(r, sender, address),
  );
  restrictions.listed = listed; // reject_unlisted_recipient and reject_unlisted_sender
  resolver = c.bool("smtpd_peername_lookup") ? denoPeerResolver(PEERNAME_TIMEOUT_MS) : null;
  try {
    hosts = parseHosts(Deno.readTextFileSync("/etc/hosts"));
  } catch {
    hosts = new Map();
  }
}

await runService({
  program: "smtpd",
  init: setup,
  onInet: async (conn, ctx) => {
    const remote = conn.remoteAddr;
    const addr = remote.hostname;
    const name = await peerName(addr, { hosts, resolver });
    conn.setNoDelay(true);
    const { io, close } = connectionIo(conn, tlsPolicy, tlsServer);
    try {
      await runSession({
        config: ctx.config,
        log: ctx.log,
        client: { name, addr, port: remote.port },
        ...io,
        openCleanup: () => (cleanup ??= new CleanupClient(ctx.peer("cleanup"))).open(),
        restrictions: restrictions!,
        listed: listed!,
      });
    } finally {
      close(); // frees what a client that never reads would otherwise pin
    }
  },
});
