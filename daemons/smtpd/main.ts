/**
 * smtpd daemon entry: accepts TCP connections on its master.cf inet
 * endpoint and runs one SMTP session (session.ts) per connection, handing
 * messages to `private/cleanup`. Client names come from /etc/hosts, then a
 * forward-confirmed DNS PTR lookup (peername.ts, smtpd_peername_lookup),
 * else "unknown" as in Postfix.
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
import { type ProtocolPolicy, protocolPolicy } from "./protocol.ts";

/** Per DNS query; Postfix's resolver gives up after a few seconds too. */
const PEERNAME_TIMEOUT_MS = 5000;

let restrictions: RestrictionContext | null = null;
let listed: ListedContext | null = null;
/** Connections to cleanup, kept for the next message. */
let cleanup: CleanupClient | null = null;
let hosts = new Map<string, string>();
let resolver: PeerResolver | null = null;
let protocol: ProtocolPolicy | null = null;

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
  resolver = c.bool("smtpd_peername_lookup") ? denoPeerResolver(PEERNAME_TIMEOUT_MS) : null;
  protocol = protocolPolicy(c, ctx.maps);
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
        protocol: protocol!,
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
