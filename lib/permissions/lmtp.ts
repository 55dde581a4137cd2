/**
 * What an lmtp delivery service may reach: exactly the LMTP servers the
 * configuration names for it. A transport setting names the service
 * `svc` when its value is `svc:nexthop` (`lmtp:unix:private/dovecot-lmtp`);
 * the settings read are {@link LMTP_TRANSPORT_PARAMS} (with the service's
 * `-o` overrides applied by the caller), the `static:` tables of
 * transport_maps, and the content filters carried by the service
 * (filter.ts). Each next hop (daemons/lmtp/nexthop.ts syntax) gives:
 *
 * - `unix:path`: that socket (relative paths under queue_directory), which
 *   Deno grants with read and write on the path;
 * - `inet:address:port` or `inet:[address]:port`: that address and port;
 * - `inet:host[:port]`: the port on any IPv4 address, the resolvers'
 *   port 53 and /etc/hosts, /etc/resolv.conf (the host is looked up at
 *   delivery; Deno's --allow-net checks the address connected to).
 *
 * Entries of other tables (hash:, regexp:, ...) are table contents the
 * start does not read: a delivery to a next hop not granted here is
 * deferred with "not permitted by this daemon's sandbox" (lmtp.ts).
 */
import { ipLiteral } from "../dns/mod.ts";
import { parseMapSpec, splitMapList } from "../maps/mod.ts";
import { type LmtpDestination, lmtpTcpPort, parseLmtpNexthop } from "../lmtp/destination.ts";
import type { MasterService } from "../config/mod.ts";
import { contentFilterNexthops } from "./filter.ts";
import { nameserverGrants } from "./nameservers.ts";

/** Transport parameters whose `service:nexthop` value the lmtp sandbox follows. */
export const LMTP_TRANSPORT_PARAMS = [
  "mailbox_transport",
  "virtual_transport",
  "local_transport",
  "relay_transport",
  "default_transport",
  "fallback_transport",
] as const;

/** The grants of one lmtp service, before formatting. */
export interface LmtpGrants {
  /** UNIX-domain sockets (absolute paths). */
  sockets: string[];
  /** --allow-net items (address:port, 0.0.0.0/0:port, resolvers' :53). */
  net: string[];
  /** Files to read (/etc/hosts, /etc/resolv.conf when a host name is named). */
  read: string[];
}

/** The next hops configured for the service named `svc.name`. */
export function lmtpNexthops(
  svc: MasterService,
  services: MasterService[],
  param: (name: string) => string,
): string[] {
  const values: string[] = [];
  for (const name of LMTP_TRANSPORT_PARAMS) values.push(safe(param, name));
  for (const item of splitMapList(safe(param, "transport_maps"))) {
    let spec;
    try {
      spec = parseMapSpec(item);
    } catch {
      continue; // a malformed table name: lib/config reports it
    }
    if (spec.type !== "static") continue;
    values.push(spec.name.replace(/^\{\s*(.*?)\s*\}$/, "$1"));
  }
  const out = new Set<string>();
  for (const v of values) {
    const t = v.trim();
    const colon = t.indexOf(":");
    if (colon < 0 || t.slice(0, colon) !== svc.name) continue;
    const hop = t.slice(colon + 1).trim();
    if (hop) out.add(hop);
  }
  for (const hop of contentFilterNexthops(svc, services, param)) if (hop) out.add(hop);
  return [...out];
}

/** Computes {@link LmtpGrants} for `svc`. */
export function lmtpGrants(
  svc: MasterService,
  ctx: {
    queueDir: string;
    nameservers: string[];
    services: MasterService[];
    param: (name: string) => string;
  },
): LmtpGrants {
  const g: LmtpGrants = { sockets: [], net: [], read: [] };
  const defaultPort = lmtpTcpPort(safe(ctx.param, "lmtp_tcp_port")) ?? 24;
  for (const hop of lmtpNexthops(svc, ctx.services, ctx.param)) {
    let dests: LmtpDestination[];
    try {
      dests = parseLmtpNexthop(hop, { queueDir: ctx.queueDir, defaultPort });
    } catch {
      continue; // a bad next hop: the agent defers with its reason, nothing to grant
    }
    for (const d of dests) {
      if (d.kind === "unix") {
        g.sockets.push(d.socket);
        continue;
      }
      const { host, port } = d;
      const literal = ipLiteral(host);
      if (literal) {
        g.net.push(literal.includes(":") ? `[${literal}]:${port}` : `${literal}:${port}`);
        continue;
      }
      g.net.push(`0.0.0.0/0:${port}`);
      g.net.push(...nameserverGrants(ctx.nameservers));
      g.read.push("/etc/hosts", "/etc/resolv.conf");
    }
  }
  return {
    sockets: [...new Set(g.sockets)],
    net: [...new Set(g.net)],
    read: [...new Set(g.read)],
  };
}

function safe(param: (name: string) => string, name: string): string {
  try {
    return param(name) ?? "";
  } catch {
    return ""; // an undefined $name in the value: lib/config reports it
  }
}
