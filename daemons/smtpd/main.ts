/**
 * smtpd daemon entry: accepts TCP connections on its master.cf inet
 * endpoint and runs one SMTP session (session.ts) per connection, handing
 * messages to `private/cleanup`. Client names come from /etc/hosts, then a
 * forward-confirmed DNS PTR lookup (peername.ts, smtpd_peername_lookup),
 * else "unknown" as in Postfix. With smtpd_sasl_auth_enable, the SASL
 * backend (auth.ts) is made once per process: Dovecot's auth socket
 * (smtpd_sasl_type = dovecot) or the auth daemon's peer socket
 * (passwd-file); smtpd_sender_login_maps is opened on first use.
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
import { type AuthContext, authContext } from "./auth.ts";
import { saslEndpoint } from "../../lib/config/mod.ts";
import type { SaslBackend } from "../../lib/sasl/mod.ts";
import { DovecotAuthClient } from "../../lib/sasl/dovecot.ts";
import { authDaemonCheck, PasswordBackend } from "../../lib/sasl/passwd_client.ts";
import type { Maps } from "../../lib/maps/mod.ts";

/** Per DNS query; Postfix's resolver gives up after a few seconds too. */
const PEERNAME_TIMEOUT_MS = 5000;

let restrictions: RestrictionContext | null = null;
let listed: ListedContext | null = null;
/** Connections to cleanup, kept for the next message. */
let cleanup: CleanupClient | null = null;
let hosts = new Map<string, string>();
let resolver: PeerResolver | null = null;
let auth: AuthContext | null = null;

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

function setup(ctx: ServiceContext): void {
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
    try {
      await runSession({
        config: ctx.config,
        log: ctx.log,
        client: { name, addr, port: remote.port },
        serverAddr: (conn.localAddr as Deno.NetAddr).hostname,
        auth,
        read: async () => {
          // A fresh buffer per read: decoded DATA may be views into it.
          const buf = new Uint8Array(16 * 1024);
          const n = await conn.read(buf);
          return n === null ? null : buf.subarray(0, n);
        },
        // No deadline of its own: the session gives up after smtpd_timeout,
        // and closing the connection below settles a write that is stuck.
        write: async (b) => {
          let off = 0;
          while (off < b.length) off += await conn.write(b.subarray(off));
        },
        openCleanup: () => (cleanup ??= new CleanupClient(ctx.peer("cleanup"))).open(),
        restrictions: restrictions!,
        listed: listed!,
      });
    } finally {
      try {
        conn.close(); // frees what a client that never reads would otherwise pin
      } catch {
        // already closed
      }
    }
  },
});
