/**
 * smtpd daemon entry: accepts TCP connections on its master.cf inet
 * endpoint and runs one SMTP session (session.ts) per connection, handing
 * messages to `private/cleanup`. Client connection and rate limits are
 * asked of anvil (anvil.ts) over one connection shared by the process's
 * sessions (anvil_channel.ts), check_policy_service of its servers
 * (policy.ts). Client names come from /etc/hosts, then a
 * forward-confirmed DNS PTR lookup (peername.ts, smtpd_peername_lookup),
 * else "unknown" as in Postfix. With smtpd_sasl_auth_enable, the SASL
 * backend (auth.ts) is made once per process: Dovecot's auth socket
 * (smtpd_sasl_type = dovecot) or the auth daemon's peer socket
 * (passwd-file); smtpd_sender_login_maps is opened on first use.
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
 *
 * With `smtpd_upstream_proxy_protocol = haproxy` each connection starts
 * with a PROXY header (haproxy.ts), read within
 * smtpd_upstream_proxy_timeout before the session starts; the client's
 * address and port from it become the session's. A bad, missing or late
 * header is logged as Postfix logs it and the client gets 421 and is
 * disconnected: nothing runs under the proxy's own address.
 *
 * smtpd_milters (milters.ts) are resolved once per process; each session
 * connects to them itself. The sandbox allows exactly their sockets
 * (lib/permissions).
 *
 * Reads use a small buffer while the client is idle or sends commands and
 * a large one while it streams (DATA): an idle connection pins 1 KiB.
 *
 * Parameters (besides the session's): smtpd_peername_lookup,
 * smtpd_upstream_proxy_protocol (empty), smtpd_upstream_proxy_timeout
 * (5s), inet_protocols, smtpd_authorized_xclient_hosts,
 * smtpd_authorized_xforward_hosts.
 */
import { type AuthenticationSettings, authenticationSettings } from "./authentication.ts";
import { CleanupClient } from "../../lib/cleanup/client.ts";
import { runService, type ServiceContext } from "../../lib/service/mod.ts";
import { peerIdentity, type PeerResolver } from "./peername.ts";
import { type FullResolver, timedResolver } from "../../lib/dns/mod.ts";
import { cachingResolver } from "../../lib/dns/cache.ts";
import { Resolver } from "../../lib/resolve/mod.ts";
import { type ListedContext, listedContext } from "./recipients.ts";
import { resolveFor, type RestrictionContext, restrictionContext } from "./restrictions.ts";
import { parseHostsByName } from "./server_access.ts";
import { runSession } from "./session.ts";
import { type ProxyFamilies, readProxyHeader } from "./haproxy.ts";
import { authorized, type XclientAuth, xclientAuth } from "./xclient.ts";
import { familiesFrom } from "../../lib/dns/mod.ts";
import {
  ANVIL_TIMEOUT_MS,
  anyLimit,
  clientLimits,
  type LimitSettings,
  limitSettings,
} from "./anvil.ts";
import { AnvilChannel } from "./anvil_channel.ts";
import { ipcConnect } from "../../lib/ipc/mod.ts";
import { type ProtocolPolicy, protocolPolicy } from "./protocol.ts";
import { connectionIo, TlsServer } from "./tls.ts";
import {
  type SmtpdTlsPolicy,
  smtpdTlsPolicy,
  tlsMandatory,
  tlsWanted,
} from "../../lib/tls/policy.ts";
import { type AuthContext, authContext } from "./auth.ts";
import { saslEndpoint } from "../../lib/config/mod.ts";
import type { SaslBackend } from "../../lib/sasl/mod.ts";
import { DovecotAuthClient } from "../../lib/sasl/dovecot.ts";
import { authDaemonCheck, PasswordBackend } from "../../lib/sasl/passwd_client.ts";
import type { Maps } from "../../lib/maps/mod.ts";
import {
  type MilterSettings,
  parseMilterList,
  resolveMilterSettings,
} from "../../lib/milter/mod.ts";

/** Per DNS query; Postfix's resolver gives up after a few seconds too. */
const PEERNAME_TIMEOUT_MS = 5000;

let restrictions: RestrictionContext | null = null;
let listed: ListedContext | null = null;
/** Connections to cleanup, kept for the next message. */
let cleanup: CleanupClient | null = null;
let hosts = new Map<string, string>();
/** /etc/hosts by name, for check_*_{mx,ns,a}_access. */
let hostsByName = new Map<string, string[]>();
let resolver: PeerResolver | null = null;
let xclient: XclientAuth | null = null;
/** smtpd_upstream_proxy_protocol = haproxy: the header's deadline and the families allowed. */
let upstreamProxy: { timeoutMs: number; families: ProxyFamilies } | null = null;
/** The client limits, when master.cf runs anvil (lib/service/catalog.ts refuses limits without it). */
let limits: LimitSettings | null = null;
/** The process's one anvil connection, shared by its sessions (when some limit is set). */
let anvilChannel: AnvilChannel | null = null;
/** DNS for peer names and the restrictions (unknown_*, DNS lists). */
let dns: FullResolver | null = null;
let protocol: ProtocolPolicy | null = null;
let tlsPolicy: SmtpdTlsPolicy | null = null;
/** Null when TLS is not wanted or no certificate is usable. */
let tlsServer: TlsServer | null = null;
let auth: AuthContext | null = null;
/** smtpd_milters, resolved once (milters.ts). */
let milters: MilterSettings[] = [];
/** postwarden_authentication_checks and DKIM signing trust (authentication.ts). */
let authentication: AuthenticationSettings | null = null;

/**
 * The SASL backend smtpd_sasl_type names (lib/sasl), or null with AUTH
 * off. passwd-file: the master.cf service running the auth daemon.
 */
function saslBackend(ctx: ServiceContext): SaslBackend | null {
  const c = ctx.config;
  if (!c.bool("smtpd_sasl_auth_enable")) return null;
  const ep = saslEndpoint((n) => c.str(n)); // checked at start; throws for what is not supported
  if (ep.type === "passwd-file") {
    const svc = ctx.services.find((s) => s.type === "unix" && s.command === "auth");
    if (!svc) {
      throw new Error(
        "smtpd_sasl_type = passwd-file needs the auth service in master.cf " +
          '("auth unix - - n - - auth")',
      );
    }
    return new PasswordBackend(authDaemonCheck(ctx.peer(svc.name)));
  }
  return new DovecotAuthClient({
    connect: () =>
      "unix" in ep
        ? Deno.connect({ transport: "unix", path: ep.unix })
        : Deno.connect({ hostname: ep.host, port: ep.port }),
    name: c.str("smtpd_sasl_path").trim(),
    warn: (m) => ctx.log.warn(m),
  });
}

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
  dns = timedResolver(PEERNAME_TIMEOUT_MS, { warn });
  restrictions = restrictionContext(c, warn, addressResolver, {
    openMaps: ctx.maps,
    info: (m) => ctx.log.info(m),
    dns,
    // SPF, DKIM, DMARC and ARC records: kept for their TTLs across sessions.
    authDns: cachingResolver({ timeoutMs: PEERNAME_TIMEOUT_MS, warn }),
    hostAddresses: (name) => hostsByName.get(name.toLowerCase()),
  });
  const r = restrictions;
  listed = listedContext(
    c,
    addressResolver,
    r.rewrite,
    ctx.maps,
    (address, sender) => resolveFor(r, sender, address),
  );
  listed.explain = restrictions.explain;
  restrictions.listed = listed; // reject_unlisted_recipient and reject_unlisted_sender
  resolver = c.bool("smtpd_peername_lookup") ? dns : null;
  xclient = xclientAuth(c);
  const proxy = c.str("smtpd_upstream_proxy_protocol").trim();
  if (proxy !== "" && proxy !== "haproxy") {
    throw new Error(`unsupported smtpd_upstream_proxy_protocol value: ${proxy}`);
  }
  upstreamProxy = proxy === "haproxy"
    ? {
      timeoutMs: c.time("smtpd_upstream_proxy_timeout") * 1000,
      families: familiesFrom(c.list("inet_protocols")),
    }
    : null;
  const anvil = ctx.services.some((s) => s.type === "unix" && s.name === "anvil");
  limits = anvil ? limitSettings(c) : null;
  anvilChannel = limits && anyLimit(limits)
    ? new AnvilChannel(
      // anvil may be (re)starting: a request gives up at its own deadline.
      () => ipcConnect(ctx.peer("anvil"), { retryMs: ANVIL_TIMEOUT_MS }),
      ANVIL_TIMEOUT_MS,
    )
    : null;
  protocol = protocolPolicy(c, ctx.maps);
  const loginMaps = c.str("smtpd_sender_login_maps").trim();
  let loginTables: Promise<Maps> | null = null;
  restrictions.senderLogin = {
    maps: loginMaps ? () => (loginTables ??= ctx.maps("smtpd_sender_login_maps", loginMaps)) : null,
    canonical: async (sender) => {
      const res = await resolveFor(r, sender, sender);
      return { address: res.recipient, local: res.class === "local" };
    },
    delimiters: c.str("recipient_delimiter"),
    doubleBounceSender: c.str("double_bounce_sender"),
  };
  auth = authContext(c, saslBackend(ctx));
  // smtpd_milters, checked at start (postwarden check reports a bad one first).
  milters = parseMilterList(c.str("smtpd_milters")).map((e) =>
    resolveMilterSettings(e, (name) => c.str(name))
  );
  authentication = await authenticationSettings(c);
  try {
    const text = Deno.readTextFileSync("/etc/hosts");
    hosts = parseHosts(text);
    hostsByName = parseHostsByName(text);
  } catch {
    hosts = new Map();
  }
}

/**
 * One client: over TCP (`remote` and `local` its addresses), or passed by
 * postscreen (a "pass" service: the PROXY header postscreen writes first
 * says who the client is, whatever smtpd_upstream_proxy_protocol says).
 */
async function serve(
  conn: Deno.Conn,
  ctx: ServiceContext,
  remote: { hostname: string; port: number },
  local: { hostname: string; port: number },
  passed: boolean,
): Promise<void> {
  const { io, close, unread } = connectionIo(conn, tlsPolicy, tlsServer);
  try {
    let addr = remote.hostname;
    let port = remote.port;
    let server = { addr: local.hostname, port: local.port };
    let initial: Uint8Array | undefined;
    let hangup = false;
    const proxy = passed
      ? {
        timeoutMs: ctx.config.time("smtpd_upstream_proxy_timeout") * 1000,
        families: { ipv4: true, ipv6: true },
      }
      : upstreamProxy;
    if (proxy) {
      const r = await readProxyHeader(io.read, proxy);
      if (!r.ok) {
        ctx.log.warn(r.warning);
        hangup = true;
      } else {
        if (r.header.kind === "proxy") {
          addr = r.header.endpoints.clientAddr;
          port = r.header.endpoints.clientPort;
          server = { addr: r.header.endpoints.serverAddr, port: r.header.endpoints.serverPort };
        }
        // In wrapper mode the bytes after the header are the TLS handshake's.
        if (tlsPolicy?.wrapper) unread(r.rest);
        else initial = r.rest;
      }
    }
    const peer = await peerIdentity(addr, { hosts, resolver, warn: (m) => ctx.log.warn(m) });
    const name = peer.name;
    await runSession({
      config: ctx.config,
      log: ctx.log,
      client: { ...peer, addr, port, server },
      ...io,
      initial,
      hangup,
      xclient: xclient!,
      serverAddr: server.addr,
      auth,
      openCleanup: () => (cleanup ??= new CleanupClient(ctx.peer("cleanup"))).open(),
      restrictions: restrictions!,
      listed: listed!,
      // Postfix leaves XCLIENT-authorized hosts (proxies) out of the client limits.
      limits: limits && !authorized(xclient!.xclient, { name, addr })
        ? clientLimits(limits, {
          service: ctx.args.service,
          client: { name, addr },
          open: () =>
            ipcConnect(ctx.peer("anvil"), {
              timeoutMs: ANVIL_TIMEOUT_MS,
              retryMs: ANVIL_TIMEOUT_MS,
            }),
          channel: anvilChannel ?? undefined,
          warn: (m) => ctx.log.warn(m),
        })
        : undefined,
      protocol: protocol!,
      milters,
      authentication: authentication!,
    });
  } finally {
    close(); // frees what a client that never reads would otherwise pin
  }
}

await runService({
  program: "smtpd",
  init: setup,
  onInet: (conn, ctx) => {
    conn.setNoDelay(true);
    return serve(conn, ctx, conn.remoteAddr, conn.localAddr, false);
  },
  // Behind postscreen: the PROXY header names the client.
  onPass: (conn, ctx) => {
    const none = { hostname: "unknown", port: 0 };
    return serve(conn, ctx, none, none, true);
  },
});
