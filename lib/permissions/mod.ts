/**
 * The Deno permission flags each daemon runs with, computed from the
 * configuration. This is the only place that decides what a daemon may
 * touch; master uses it to spawn, `postwarden audit` to probe and print.
 *
 * Every grant is scoped to paths, sockets or host:port pairs: never `-A`,
 * never a bare `--allow-*`. IPv6 destinations are granted to the smtp
 * client only as listed in postwarden_smtp_ipv6_destinations (Deno's
 * --allow-net takes no IPv6 ranges); an IPv6 literal relayhost is granted
 * exactly.
 */
import type { MasterService } from "../config/mod.ts";
import { endpointText, inetEndpoints } from "../service/endpoints.ts";

/** What the flag computation needs to know besides the service itself. */
export interface PermissionContext {
  /** Absolute config directory. */
  configDir: string;
  /** Absolute queue_directory. */
  queueDir: string;
  /** Absolute maillog_file, or "" when logging to stderr only. */
  maillogFile: string;
  /** Resolver addresses from /etc/resolv.conf, for Deno.resolveDns. */
  nameservers: string[];
  /** All master.cf services (qmgr needs the transports' sockets). */
  services: MasterService[];
  /** Expanded parameter lookup with this service's -o overrides applied. */
  param: (name: string) => string;
}

/** Commands qmgr hands delivery requests to. */
const AGENTS = new Set(["smtp", "lmtp", "local", "virtual", "pipe", "discard", "error"]);

/** A daemon's permissions as structured lists, before formatting as flags. */
export interface Grants {
  read: string[];
  write: string[];
  net: string[];
  run: string[];
  sys: string[];
}

/** Socket path of a unix service. */
export function serviceSocket(queueDir: string, svc: { name: string; private: boolean }): string {
  return `${queueDir}/${svc.private ? "private" : "public"}/${svc.name}`;
}

function unixGrant(g: Grants, path: string): void {
  g.read.push(path);
  g.write.push(path);
  g.net.push(`unix:${path}`);
}

/** The resolvers' port 53, for Deno.resolveDns. */
export function nameserverGrants(nameservers: string[]): string[] {
  return nameservers.map((ns) => (ns.includes(":") ? `[${ns}]:53` : `${ns}:53`));
}

/** Relay destinations of the smtp client as `--allow-net` items. */
export function smtpDestinations(relayhost: string, nameservers: string[]): string[] {
  const dns = nameserverGrants(nameservers);
  const rh = relayhost.trim();
  if (rh === "") return ["0.0.0.0/0:25", ...dns];
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(rh);
  if (m) {
    const port = m[2] ?? "25";
    const host = m[1].replace(/^ipv6:/i, "");
    if (/^[\d.]+$/.test(host)) return [`${host}:${port}`];
    if (host.includes(":")) return [`[${host}]:${port}`];
    // [hostname]: A/AAAA lookup, no MX
    return [`0.0.0.0/0:${port}`, ...dns];
  }
  const port = /:(\d+)$/.exec(rh)?.[1] ?? "25";
  return [`0.0.0.0/0:${port}`, ...dns];
}

/**
 * The admin's IPv6 choice (postwarden_smtp_ipv6_destinations): Deno's
 * --allow-net takes single IPv6 addresses only, so each allowed
 * destination is listed; "addr" means port 25. Malformed items are skipped
 * (postwarden check reports nothing for them yet).
 */
export function ipv6Destinations(value: string): string[] {
  const out: string[] = [];
  for (const item of value.split(/[\s,]+/).filter(Boolean)) {
    const m = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(item) ?? /^([0-9A-Fa-f:.]+)$/.exec(item);
    if (m && m[1].includes(":")) out.push(`[${m[1]}]:${m[2] ?? "25"}`);
  }
  return out;
}

/** Computes the grants for one master.cf service. */
export function daemonGrants(svc: MasterService, ctx: PermissionContext): Grants {
  const g: Grants = { read: [ctx.configDir], write: [], net: [], run: [], sys: [] };
  const q = ctx.queueDir;
  if (ctx.maillogFile) g.write.push(ctx.maillogFile);
  const own = svc.type === "inet" ? null : serviceSocket(q, svc);
  if (own) unixGrant(g, own);
  // A peer's socket is where master.cf puts it (private/ or public/).
  const peer = (name: string) => {
    const s = ctx.services.find((x) => x.name === name && x.type === "unix");
    return s ? serviceSocket(q, s) : `${q}/private/${name}`;
  };

  switch (svc.command) {
    case "smtpd": {
      const ifaces = ctx.param("inet_interfaces").split(/[\s,]+/).filter(Boolean);
      if (svc.type === "inet") {
        for (const e of inetEndpoints(svc.name, ifaces)) g.net.push(endpointText(e));
      }
      unixGrant(g, peer("cleanup"));
      g.read.push("/etc/hosts");
      if (ctx.param("smtpd_peername_lookup").toLowerCase() === "yes") {
        g.net.push(...nameserverGrants(ctx.nameservers));
      }
      break;
    }
    case "cleanup":
      g.read.push(`${q}/incoming`);
      g.write.push(`${q}/incoming`);
      unixGrant(g, peer("qmgr"));
      break;
    case "pickup":
      g.read.push(`${q}/maildrop`);
      g.write.push(`${q}/maildrop`);
      unixGrant(g, peer("cleanup"));
      break;
    case "qmgr":
      for (const d of ["incoming", "active", "deferred", "hold", "corrupt", "defer"]) {
        g.read.push(`${q}/${d}`);
        g.write.push(`${q}/${d}`);
      }
      for (const s of ctx.services) {
        if (s.type === "unix" && (AGENTS.has(s.command) || s.command === "bounce")) {
          unixGrant(g, serviceSocket(q, s));
        }
      }
      break;
    case "smtp":
      g.read.push(`${q}/active`, "/etc/hosts", "/etc/resolv.conf");
      g.net.push(...smtpDestinations(ctx.param("relayhost"), ctx.nameservers));
      g.net.push(...ipv6Destinations(ctx.param("postwarden_smtp_ipv6_destinations")));
      break;
    case "local": {
      g.read.push(`${q}/active`);
      const spool = ctx.param("mail_spool_directory").replace(/\/+$/, "");
      if (spool) {
        g.read.push(spool);
        g.write.push(spool);
      }
      break;
    }
    case "bounce":
      g.read.push(`${q}/active`, `${q}/deferred`, `${q}/defer`);
      unixGrant(g, peer("cleanup"));
      break;
    case "discard":
    case "error":
      break;
    default:
      throw new Error(`master.cf: no permission profile for command "${svc.command}"`);
  }
  return {
    read: unique(g.read),
    write: unique(g.write),
    net: unique(g.net),
    run: unique(g.run),
    sys: unique(g.sys),
  };
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** Formats grants as `deno run` flags. Empty lists give no flag at all. */
export function grantFlags(g: Grants): string[] {
  const flags = ["--no-prompt"];
  if (g.read.length) flags.push(`--allow-read=${g.read.join(",")}`);
  if (g.write.length) flags.push(`--allow-write=${g.write.join(",")}`);
  if (g.net.length) flags.push(`--allow-net=${g.net.join(",")}`);
  if (g.run.length) flags.push(`--allow-run=${g.run.join(",")}`);
  if (g.sys.length) flags.push(`--allow-sys=${g.sys.join(",")}`);
  return flags;
}

/** Nameserver addresses from resolv.conf text. */
export function parseResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) out.push(m[1].replace(/%.*$/, ""));
  }
  return out;
}
