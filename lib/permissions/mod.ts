/**
 * The Deno permission flags each daemon runs with, computed from the
 * configuration. This is the only place that decides what a daemon may
 * touch; master uses {@link daemonCommand} to spawn and `postwarden audit`
 * the same command line to probe and print, so what is printed is what runs.
 *
 * Every grant is scoped to paths, sockets or host:port pairs: never `-A`,
 * never a bare `--allow-*`. IPv6 destinations are granted to the smtp
 * client only as listed in postwarden_smtp_ipv6_destinations (Deno's
 * --allow-net takes no IPv6 ranges); an IPv6 literal relayhost is granted
 * exactly. A content filter's next hop (content_filter, filter.ts) is
 * granted to the delivery service it names.
 *
 * What no daemon gets: the configuration directory (master hands each
 * daemon its configuration on stdin), the log (master writes it from the
 * daemons' stderr), remote or npm code (`--no-remote --no-npm
 * --deny-import`, no config file, so no import map), implicit storage
 * (DENO_DIR/location_data is closed, lib/queue/layout.ts), and another
 * daemon's socket: each
 * daemon listens, besides its master.cf socket, on one socket per client
 * (`peer/<service>.<client>`), and a client may use only the socket made
 * for it. Connecting to a UNIX socket takes write permission on its path in
 * Deno, which also allows removing it and listening in its place; with one
 * path per client, a daemon that does so only cuts itself off.
 *
 * The exceptions to "no npm code": the auth daemon (bcrypt and argon2id
 * verification, AUTH_NPM), and proxymap, when a table it serves
 * has an npm driver (pgsql:, mysql:; DictGrants npm), runs with the code
 * tree's deno.json as import map (where the drivers' versions are pinned)
 * and deno.lock (frozen), and `--cached-only` in place of `--no-npm`: it
 * loads the packages the start put in the daemons' DENO_DIR
 * (lib/runtime cacheNpmModules) and nothing from the network
 * (`--no-remote --deny-import` stay). deno.json's "unstable" list (kv,
 * net) then applies to proxymap too.
 */
import { cacheMapPath, kvFiles } from "../config/postscreen.ts";
import { type MasterService, saslEndpoint } from "../config/mod.ts";
import type { Runtime } from "../runtime/mod.ts";
import type { DictGrants } from "../maps/mod.ts";
import { endpointText, inetEndpoints } from "../service/endpoints.ts";
import { captureGrant, type CaptureSink, captureSink } from "../deliver/capture.ts";
import { milterGrants, policyGrants } from "./policy.ts";
import { contentFilterNexthops } from "./filter.ts";
import { lmtpGrants } from "./lmtp.ts";
import { pipeGrants, virtualGrants } from "./agents.ts";
import { addLocalGrants } from "./local.ts";
import { masterSocket, startsOnDemand } from "../service/wake.ts";
import { hostGrants } from "../service/hosting.ts";
import { bindPath } from "../ipc/mod.ts";
import { asksMtaSts, clientsOf, peerSocket, peersOf } from "./peers.ts";
import { nameserverGrants } from "./nameservers.ts";
export { daemonNameservers, nameserverGrants, parseResolvConf } from "./nameservers.ts";
import { runsAsRoot } from "../service/catalog.ts";

export { AGENTS, clientsOf, peerKey, peerSocket, peersOf, proxymapService } from "./peers.ts";

export {
  daemonTableGrants,
  LIST_PARAMS,
  mtaStsAnchorProblems,
  noGrants,
  proxiedTables,
  proxymapNpm,
  servicesTableGrants,
  TABLE_PARAMS,
  type TableGrantOptions,
  unreadableFiles,
  unreadableTableFiles,
  viaProxymap,
} from "./tables.ts";

/** What the flag computation needs to know besides the service itself. */
export interface PermissionContext {
  /** Absolute queue_directory. */
  queueDir: string;
  /** The name servers daemons ask (nameservers.ts: postwarden_dns_servers, else resolv.conf's). */
  nameservers: string[];
  /** All master.cf services (qmgr needs the transports' sockets). */
  services: MasterService[];
  /** Expanded parameter lookup with this service's -o overrides applied. */
  param: (name: string) => string;
  /** What this service's lookup tables need (tables.ts daemonTableGrants). @default none */
  tables?: DictGrants;
  /** Set when the service runs as root (lib/service/catalog.ts runsAsRoot; only local uses it): the Deno executable it may start. */
  root?: { deno: string };
}

/** What master has loaded that every service's {@link PermissionContext} comes from. */
export interface LoadedForPermissions {
  queueDir: string;
  nameservers: string[];
  services: MasterService[];
  /** A main.cf parameter, expanded (before any service's -o overrides). */
  mainCf: (name: string) => string;
  /** Each service's table grants, by service name. */
  tables: ReadonlyMap<string, DictGrants>;
  /** Master runs as root and gives the daemons to mail_owner. */
  rootMaster: boolean;
  /** The Deno executable a root daemon may start. */
  deno: string;
}

/**
 * One service's {@link PermissionContext}: its -o overrides over main.cf,
 * its tables' grants, and root when a root master keeps it root
 * (lib/service/catalog.ts runsAsRoot). Master starts daemons with it and
 * `postwarden audit` probes the same, so the two cannot drift apart.
 */
export function serviceContext(svc: MasterService, l: LoadedForPermissions): PermissionContext {
  return {
    queueDir: l.queueDir,
    nameservers: l.nameservers,
    services: l.services,
    param: (n) => Object.hasOwn(svc.overrides, n) ? svc.overrides[n] : l.mainCf(n),
    tables: l.tables.get(svc.name),
    root: l.rootMaster && runsAsRoot(svc) ? { deno: l.deno } : undefined,
  };
}

/** A daemon's permissions as structured lists, before formatting as flags. */
export interface Grants {
  read: string[];
  write: string[];
  net: string[];
  run: string[];
  sys: string[];
  /** Environment variables ("*": all of the daemon's environment, which master has already cut to import_environment). */
  env: string[];
  /** npm modules it loads (deno.json "imports" names): proxymap's table drivers only. */
  npm: string[];
}

/** Socket path of a unix service. */
export function serviceSocket(queueDir: string, svc: { name: string; private: boolean }): string {
  return `${queueDir}/${svc.private ? "private" : "public"}/${svc.name}`;
}

/** Flags every daemon runs with: no config file (no import map), no lock file, no remote or npm code. */
export const MODULE_FLAGS = ["--no-config", "--no-lock", "--no-remote", "--no-npm"];

/**
 * How a daemon may load code: {@link MODULE_FLAGS}, or for a daemon whose
 * grants list npm modules (proxymap with a pgsql: or mysql: table) the
 * code tree's deno.json and frozen deno.lock, with npm packages from the
 * DENO_DIR cache only. Imports over the network stay denied either way.
 */
export function moduleFlags(g: Grants, code: string): string[] {
  if (g.npm.length === 0) return [...MODULE_FLAGS, "--deny-import"];
  return [
    `--config=${code}/deno.json`,
    `--lock=${code}/deno.lock`,
    "--frozen",
    "--no-remote",
    "--cached-only",
    "--deny-import",
  ];
}

/**
 * The npm modules the auth daemon loads (deno.json "imports"): bcrypt and
 * argon2id verification for {BLF-CRYPT} and {ARGON2ID} passwd-file lines.
 */
export const AUTH_NPM = ["bcryptjs", "hash-wasm"];

function unixGrant(g: Grants, path: string): void {
  g.read.push(path);
  g.write.push(path);
  g.net.push(`unix:${path}`);
}

/** A socket the daemon listens on: the path, and the name it binds before renaming (lib/ipc bindPath). */
function listenGrant(g: Grants, path: string): void {
  unixGrant(g, path);
  unixGrant(g, bindPath(path));
}

/** postwarden_capture's sink (`postwarden test`): where smtp and lmtp then connect. */
function captureGrants(g: Grants, param: (name: string) => string): void {
  let sink: CaptureSink | null = null;
  try {
    sink = captureSink(param);
  } catch {
    return; // malformed: the configuration check stops the start
  }
  if (sink) g.net.push(captureGrant(sink));
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

/** Restrictions that query DNS: reject_unknown_*_hostname/domain, the DNS lists, SPF and DMARC. */
const DNS_RESTRICTION =
  /^(reject_unknown_(helo_hostname|hostname|sender_domain|address|recipient_domain)|reject_rbl(_client)?|reject_maps_rbl|reject_rhsbl_\w+|permit_dnswl_client|permit_rhswl_client|postwarden_reject_(spf|dmarc)_fail)$/i;

/**
 * True when smtpd's restriction lists (or its restriction classes) name a
 * restriction that queries DNS: smtpd then needs its resolver even with
 * smtpd_peername_lookup = no (a DNS list it cannot query rejects nothing).
 */
function smtpdQueriesDns(ctx: PermissionContext): boolean {
  const value = (n: string) => {
    try {
      return ctx.param(n) ?? "";
    } catch {
      return ""; // an undefined class: smtpd reports it
    }
  };
  const lists = [
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
    "smtpd_data_restrictions",
    "smtpd_end_of_data_restrictions",
    ...value("smtpd_restriction_classes").split(/[\s,]+/).filter(Boolean),
  ];
  // postwarden_authentication_checks (spf, dkim, dmarc) all ask DNS.
  if (value("postwarden_authentication_checks").trim() !== "") return true;
  return lists.some((l) => value(l).split(/[\s,]+/).some((r) => DNS_RESTRICTION.test(r)));
}

/** Computes the grants for one master.cf service. */
export function daemonGrants(svc: MasterService, ctx: PermissionContext): Grants {
  const g: Grants = { read: [], write: [], net: [], run: [], sys: [], env: [], npm: [] };
  const q = ctx.queueDir;
  const own = svc.type === "inet" ? null : serviceSocket(q, svc);
  if (own) listenGrant(g, own);
  const peers = peersOf(svc, ctx.services, ctx.param);
  for (const p of peers) unixGrant(g, peerSocket(q, svc, p));
  // A peer started on demand is woken through master's control socket (wake.ts).
  const onDemand = (name: string) => ctx.services.some((s) => s.name === name && startsOnDemand(s));
  if (peers.some(onDemand)) unixGrant(g, masterSocket(q));
  for (const c of clientsOf(svc, ctx.services, ctx.param)) {
    listenGrant(g, peerSocket(q, c, svc.name));
  }

  switch (svc.command) {
    case "smtpd": {
      const ifaces = ctx.param("inet_interfaces").split(/[\s,]+/).filter(Boolean);
      if (svc.type === "inet") {
        for (const e of inetEndpoints(svc.name, ifaces)) g.net.push(endpointText(e));
      }
      g.read.push("/etc/hosts");
      if (ctx.param("smtpd_peername_lookup").toLowerCase() === "yes" || smtpdQueriesDns(ctx)) {
        g.net.push(...nameserverGrants(ctx.nameservers));
        // lib/dns confirms negative answers over TCP with resolv.conf's name servers.
        g.read.push("/etc/resolv.conf");
      }
      // check_policy_service: exactly the servers the restriction lists name.
      const policy = policyGrants(ctx.param, q);
      g.net.push(...policy.net);
      for (const path of policy.sockets) unixGrant(g, path);
      // smtpd_milters: exactly the milters it names (a bad list gets nothing; check reports it).
      const milters = milterGrants(ctx.param("smtpd_milters") ?? "", q);
      g.net.push(...milters.net);
      for (const path of milters.sockets) unixGrant(g, path);
      // Dovecot's auth socket or port, exactly (a passwd-file is the auth daemon's alone).
      if ((ctx.param("smtpd_sasl_auth_enable") ?? "").toLowerCase() === "yes") {
        const ep = saslEndpoint(ctx.param);
        if (ep.type === "dovecot") {
          if ("unix" in ep) unixGrant(g, ep.unix);
          else {g.net.push(
              ep.host.includes(":") ? `[${ep.host}]:${ep.port}` : `${ep.host}:${ep.port}`,
            );}
        }
      }
      break;
    }
    case "postscreen": {
      const ifaces = ctx.param("inet_interfaces").split(/[\s,]+/).filter(Boolean);
      for (const e of inetEndpoints(svc.name, ifaces)) g.net.push(endpointText(e));
      // The smtpd pass service it hands clients to.
      const smtpd = (ctx.param("smtpd_service_name") ?? "").trim() || "smtpd";
      unixGrant(g, `${q}/private/${smtpd}`);
      if ((ctx.param("postscreen_dnsbl_sites") ?? "").trim() !== "") {
        g.net.push(...nameserverGrants(ctx.nameservers));
        g.read.push("/etc/resolv.conf");
      }
      // The cache's KV database (a bad value gets nothing; check reports it).
      let cache: string | null = null;
      try {
        cache = cacheMapPath(ctx.param("postscreen_cache_map") ?? "");
      } catch {
        cache = null;
      }
      if (cache) {
        g.read.push(...kvFiles(cache));
        g.write.push(...kvFiles(cache));
      }
      break;
    }
    case "auth": {
      // The password file, and npm code to verify bcrypt and argon2id hashes.
      const ep = (ctx.param("smtpd_sasl_type") ?? "").trim() === "passwd-file"
        ? saslEndpoint(ctx.param)
        : null;
      if (ep?.type === "passwd-file") g.read.push(ep.file);
      g.npm.push(...AUTH_NPM);
      break;
    }
    case "cleanup": {
      // hold/: a HOLD action of header/body checks queues the message there.
      g.read.push(`${q}/incoming`, `${q}/hold`);
      g.write.push(`${q}/incoming`, `${q}/hold`);
      // DKIM signing and ARC sealing: the key directory, read-only, when either is set.
      if (
        (ctx.param("postwarden_dkim_signing_table") ?? "").trim() !== "" ||
        (ctx.param("postwarden_arc_seal_domain") ?? "").trim() !== ""
      ) {
        g.read.push((ctx.param("postwarden_dkim_key_directory") ?? "").trim());
      }
      // non_smtpd_milters: exactly the milters it names.
      const milters = milterGrants(ctx.param("non_smtpd_milters") ?? "", q);
      g.net.push(...milters.net);
      for (const path of milters.sockets) unixGrant(g, path);
      break;
    }
    case "pickup":
      // /etc/passwd: the submitter's login name for its uid (the default sender).
      g.read.push(`${q}/maildrop`, "/etc/passwd");
      g.write.push(`${q}/maildrop`);
      break;
    case "qmgr":
      // Not hold/: qmgr never looks there (postsuper -H moves mail out of it).
      for (const d of ["incoming", "active", "deferred", "corrupt", "defer"]) {
        g.read.push(`${q}/${d}`);
        g.write.push(`${q}/${d}`);
      }
      break;
    case "smtp":
      g.read.push(`${q}/active`, "/etc/hosts", "/etc/resolv.conf");
      g.net.push(...smtpDestinations(ctx.param("relayhost"), ctx.nameservers));
      g.net.push(...ipv6Destinations(ctx.param("postwarden_smtp_ipv6_destinations")));
      // The CA certificates that verify servers (smtp_tls_CAfile, smtp_tls_CApath), read-only.
      for (const name of ["smtp_tls_CAfile", "smtp_tls_CApath"]) {
        const path = (ctx.param(name) ?? "").trim();
        if (path) g.read.push(path);
      }
      // MTA-STS: the WebPKI anchors MX certificates are checked against (daemons/smtp/mta_sts.ts).
      if (asksMtaSts(svc, ctx.param)) {
        const ca = (ctx.param("postwarden_mta_sts_CAfile") ?? "").trim();
        if (ca) g.read.push(ca);
      }
      // smtp_fallback_relay's next hops, each as a relayhost would be granted.
      for (const hop of (ctx.param("smtp_fallback_relay") ?? "").split(/[\s,]+/).filter(Boolean)) {
        for (const d of smtpDestinations(hop, ctx.nameservers)) {
          if (!g.net.includes(d)) g.net.push(d);
        }
      }
      // Content filters this service carries mail to (filter.ts), e.g. 127.0.0.1:10024.
      for (const hop of contentFilterNexthops(svc, ctx.services, ctx.param)) {
        for (const d of smtpDestinations(hop, ctx.nameservers)) {
          if (!g.net.includes(d)) g.net.push(d);
        }
      }
      captureGrants(g, ctx.param);
      break;
    case "lmtp": {
      // Exactly the LMTP servers the configuration names for this service (lmtp.ts).
      g.read.push(`${q}/active`);
      const l = lmtpGrants(svc, ctx);
      for (const path of l.sockets) unixGrant(g, path);
      g.net.push(...l.net);
      g.read.push(...l.read);
      captureGrants(g, ctx.param);
      break;
    }
    case "local": {
      g.read.push(`${q}/active`);
      const spool = ctx.param("mail_spool_directory").replace(/\/+$/, "");
      if (spool) {
        g.read.push(spool);
        g.write.push(spool);
      }
      addLocalGrants(g, { param: ctx.param, root: ctx.root });
      break;
    }
    case "bounce":
      g.read.push(`${q}/active`, `${q}/deferred`, `${q}/defer`);
      break;
    case "pipe":
    case "virtual": {
      const a = svc.command === "pipe" ? pipeGrants(svc, ctx) : virtualGrants(ctx);
      g.read.push(...a.read);
      g.write.push(...a.write);
      g.run.push(...a.run);
      g.env.push(...a.env);
      g.sys.push(...a.sys);
      break;
    }
    case "mtasts": {
      // The TXT record and the policy host's addresses; then HTTPS to that
      // address (Deno cannot grant "any host name, port 443": the daemon
      // connects to the address and checks the name in TLS).
      g.net.push(...nameserverGrants(ctx.nameservers), "0.0.0.0/0:443");
      g.read.push("/etc/resolv.conf", "/etc/hosts");
      const ca = (ctx.param("postwarden_mta_sts_CAfile") ?? "").trim();
      if (ca) g.read.push(ca);
      const cache = (ctx.param("postwarden_mta_sts_cache") ?? "").trim();
      if (cache.startsWith("/") && !cache.split("/").includes("..")) {
        g.read.push(...kvFiles(cache));
        g.write.push(...kvFiles(cache));
      }
      break;
    }
    case "discard":
    case "error":
    case "anvil": // its sockets only
      break;
    case "proxymap":
      // Only its tables (ctx.tables): files, database servers, sockets.
      break;
    default:
      throw new Error(`master.cf: no permission profile for command "${svc.command}"`);
  }
  // The resolver (smtpd, qmgr, local) lists this host's addresses for
  // inet_interfaces = all, to know which [address] literals are local; the
  // smtp client, to know an MX host that is this host (mailer loops).
  if (
    (svc.command === "smtpd" || svc.command === "qmgr" || svc.command === "local" ||
      svc.command === "smtp") &&
    /(^|[\s,])all($|[\s,])/i.test(ctx.param("inet_interfaces"))
  ) g.sys.push("networkInterfaces");
  const t = ctx.tables;
  if (t) {
    g.read.push(...t.read);
    g.write.push(...t.write);
    for (const n of t.net) {
      if (n.startsWith("unix:")) unixGrant(g, n.slice("unix:".length));
      else g.net.push(n);
    }
    g.run.push(...t.run);
    g.env.push(...t.env);
    if (t.npm.length && svc.command !== "proxymap" && svc.command !== "auth") {
      // tables.ts never gives a network table to another daemon; say so if it did.
      throw new Error(
        `master.cf: service ${svc.name}: only proxymap may load npm code (${t.npm.join(", ")})`,
      );
    }
    g.npm.push(...t.npm);
  }
  return {
    read: unique(g.read),
    write: unique(g.write),
    net: unique(g.net),
    run: unique(g.run),
    sys: unique(g.sys),
    env: g.env.includes("*") ? ["*"] : unique(g.env),
    npm: unique(g.npm),
  };
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/**
 * Formats grants as `deno run` flags, after `--no-prompt` and the
 * {@link moduleFlags} for the code tree `code` (no config file or lock
 * file, no remote or npm imports, but for proxymap's drivers). Empty
 * lists give no flag at all.
 */
export function grantFlags(g: Grants, code: string): string[] {
  const flags = ["--no-prompt", ...moduleFlags(g, code)];
  if (g.read.length) flags.push(`--allow-read=${g.read.join(",")}`);
  if (g.write.length) flags.push(`--allow-write=${g.write.join(",")}`);
  if (g.net.length) flags.push(`--allow-net=${g.net.join(",")}`);
  if (g.run.length) flags.push(`--allow-run=${g.run.join(",")}`);
  if (g.sys.length) flags.push(`--allow-sys=${g.sys.join(",")}`);
  if (g.env.includes("*")) flags.push("--allow-env");
  else if (g.env.length) flags.push(`--allow-env=${g.env.join(",")}`);
  return flags;
}

/** Deno features a command needs beyond the stable API (smtpd: SO_REUSEPORT for reloads). */
function unstableFlags(command: string): string[] {
  // postscreen listens as smtpd does, and its cache is a Deno KV database.
  if (command === "postscreen") return ["--unstable-net", "--unstable-kv"];
  if (command === "mtasts") return ["--unstable-kv"]; // its policy cache
  return command === "smtpd" ? ["--unstable-net"] : [];
}

/**
 * V8 settings per command. smtpd holds thousands of idle sessions: an 8 MB
 * young generation (V8's default grows to 16 MB) keeps its resident memory
 * near what the sessions use (scripts/bench/connections.ts, measured with two
 * smtpd processes: 10,000 idle connections in 281 MiB RSS, against 312 MiB
 * without the flag and 220 MiB with 4 MB, which cost relay throughput: more
 * scavenges under load; one process, the default since, holds them in
 * 176 MiB).
 */
function v8Flags(command: string): string[] {
  return command === "smtpd" ? ["--v8-flags=--max-semi-space-size=8"] : [];
}

/** Everything else {@link daemonCommand} needs. */
export interface CommandContext extends PermissionContext {
  runtime: Runtime;
  /** Daemon arguments after the script (lib/service/args.ts). */
  daemonArgs: string[];
  /** Extra `deno run` flags (profiling). @default [] */
  extraFlags?: string[];
  /** Run this script of the code tree instead of the daemon (the audit probe). */
  script?: string;
}

/** The environment of a daemon: nothing of master's but what Deno itself needs. */
export function daemonEnv(runtime: Runtime, imported: Record<string, string> = {}) {
  return {
    ...imported,
    DENO_DIR: runtime.denoDir,
    DENO_NO_UPDATE_CHECK: "1",
    DENO_NO_PROMPT: "1",
    NO_COLOR: "1",
  };
}

/** The executable, arguments and grants of one daemon, exactly as master spawns it. */
export function daemonCommand(svc: MasterService, ctx: CommandContext) {
  const grants = daemonGrants(svc, ctx);
  const script = ctx.script ?? `daemons/${svc.command}/main.ts`;
  return {
    grants,
    program: ctx.runtime.deno,
    args: [
      "run",
      ...grantFlags(grants, ctx.runtime.code),
      ...unstableFlags(svc.command),
      ...v8Flags(svc.command),
      ...(ctx.extraFlags ?? []),
      `${ctx.runtime.code}/${script}`,
      ...ctx.daemonArgs,
    ],
  };
}

/**
 * The worker host's executable and arguments (lib/service/hosting.ts): the
 * union of the grants of the daemons it hosts, as its Workers' permissions
 * must be a subset of its own, plus read access to the code tree; the
 * Worker option flag, and the unstable features and V8 settings of the
 * daemons it hosts (V8's apply to all of its isolates).
 */
export function hostCommand(
  hosted: { command: string; grants: Grants }[],
  ctx: {
    runtime: Runtime;
    extraFlags?: string[];
    /** After the script: `-c CONFIG_DIR`, so that `ps` shows whose host it is. */
    hostArgs?: string[];
  },
) {
  const code = ctx.runtime.code;
  const grants = hostGrants(hosted.map((h) => h.grants), code);
  const commands = unique(hosted.map((h) => h.command));
  return {
    grants,
    program: ctx.runtime.deno,
    args: [
      "run",
      ...grantFlags(grants, code),
      "--unstable-worker-options",
      ...unique(commands.flatMap(unstableFlags)),
      ...unique(commands.flatMap(v8Flags)),
      ...(ctx.extraFlags ?? []),
      `${code}/daemons/master/host.ts`,
      ...(ctx.hostArgs ?? []),
    ],
  };
}
