/**
 * Which services talk to which (master.cf names), and the socket each
 * client uses: a daemon listens on one socket per client
 * (`peer/<service>.<client>`, lib/permissions/mod.ts says why). Daemons
 * need this to listen and connect; it loads no grant or table code.
 *
 * @module
 */
import type { MasterService } from "../config/mod.ts";
import { LIST_PARAMS, TABLE_PARAMS } from "./table_params.ts";

/** Commands qmgr hands delivery requests to. */
export const AGENTS: ReadonlySet<string> = new Set([
  "smtp",
  "lmtp",
  "local",
  "virtual",
  "pipe",
  "discard",
  "error",
]);

/** How a client service is named in its peer socket names. */
export function peerKey(svc: { type: string; name: string }): string {
  return `${svc.type}.${svc.name}`.replace(/[^A-Za-z0-9._-]/g, "_");
}

/** The socket the service `target` listens on for `client` alone. */
export function peerSocket(
  queueDir: string,
  client: { type: string; name: string },
  target: string,
): string {
  return `${queueDir}/peer/${target}.${peerKey(client)}`;
}

/**
 * The services that talk to `svc` (each gets a socket of its own).
 * `param`: main.cf's values, for peers that configuration names (a local
 * service's mailbox_transport, with its -o override). @default none
 */
export function clientsOf(
  svc: MasterService,
  services: MasterService[],
  param?: (name: string) => string | undefined,
): MasterService[] {
  if (svc.type !== "unix") return [];
  return services.filter((c) => peersOf(c, services, param).includes(svc.name));
}

/**
 * The services a daemon talks to, by master.cf name. `param` as for
 * {@link clientsOf}.
 */
export function peersOf(
  svc: MasterService,
  services: MasterService[],
  param?: (name: string) => string | undefined,
): string[] {
  const proxymap = proxymapService(services);
  const tables = proxymap && (TABLE_PARAMS[svc.command] || LIST_PARAMS[svc.command])
    ? [proxymap.name]
    : [];
  return [
    ...ownPeers(svc, services),
    ...passPeers(svc, services, param),
    ...stsPeers(svc, services, param),
    ...tables,
  ];
}

/** An smtp service's boolean setting: its -o value, else main.cf's (`param`). */
function smtpFlag(
  svc: MasterService,
  name: string,
  param: (name: string) => string | undefined,
): boolean {
  if (svc.command !== "smtp") return false;
  const value = Object.hasOwn(svc.overrides, name) ? svc.overrides[name] : param(name);
  return /^(yes|true|1)$/i.test((value ?? "").trim());
}

/**
 * Whether an smtp service asks MTA-STS policies: postwarden_mta_sts = yes in
 * its -o settings, else in main.cf (daemons/smtp/mta_sts.ts). `param` is the
 * main.cf lookup.
 */
export function asksMtaSts(
  svc: MasterService,
  param: (name: string) => string | undefined,
): boolean {
  return smtpFlag(svc, "postwarden_mta_sts", param);
}

/** Whether an smtp service sends TLS-RPT events to mtasts (smtp_tlsrpt_enable, daemons/smtp/tlsrpt.ts). */
export function reportsTls(
  svc: MasterService,
  param: (name: string) => string | undefined,
): boolean {
  return smtpFlag(svc, "smtp_tlsrpt_enable", param);
}

/** Whether master.cf runs the mtasts policy daemon. */
export function runsMtaSts(services: MasterService[]): boolean {
  return services.some((s) => s.type === "unix" && s.name === "mtasts" && s.command === "mtasts");
}

/**
 * The mtasts service, for an smtp service that asks MTA-STS policies or
 * reports TLS sessions; cleanup, for mtasts when an smtp service reports
 * (it mails the reports, daemons/mtasts/reports.ts).
 */
function stsPeers(
  svc: MasterService,
  services: MasterService[],
  param?: (name: string) => string | undefined,
): string[] {
  if (!param) return [];
  if (svc.command === "mtasts") {
    return services.some((s) => reportsTls(s, param)) ? ["cleanup"] : [];
  }
  return (asksMtaSts(svc, param) || reportsTls(svc, param)) && runsMtaSts(services)
    ? ["mtasts"]
    : [];
}

/**
 * The agent a local service hands mailboxes to (mailbox_transport, its -o
 * setting first; lib/deliver/pass.ts), when master.cf runs it as a unix
 * service.
 */
function passPeers(
  svc: MasterService,
  services: MasterService[],
  param?: (name: string) => string | undefined,
): string[] {
  if (svc.command !== "local" || !param) return [];
  const value = Object.hasOwn(svc.overrides, "mailbox_transport")
    ? svc.overrides.mailbox_transport
    : param("mailbox_transport");
  const name = (value ?? "").trim().split(":")[0];
  if (name === "" || name === svc.name) return [];
  return services.some((s) => s.type === "unix" && s.name === name) ? [name] : [];
}

/** The proxymap service daemons use: the one named "proxymap", else the first. */
export function proxymapService(services: MasterService[]): MasterService | undefined {
  const all = services.filter((s) => s.type === "unix" && s.command === "proxymap");
  return all.find((s) => s.name === "proxymap") ?? all[0];
}

function ownPeers(svc: MasterService, services: MasterService[]): string[] {
  switch (svc.command) {
    case "smtpd":
      // anvil: the client limits (daemons/smtpd/anvil.ts), when master.cf runs it; the
      // auth daemon runs only when an smtpd uses smtpd_sasl_type = passwd-file.
      return [
        "cleanup",
        ...services.filter((s) => s.type === "unix" && s.name === "anvil").map(() => "anvil"),
        ...services.filter((s) => s.type === "unix" && s.command === "auth").map((s) => s.name),
      ];
    case "pickup":
    case "bounce":
    case "local": // forwards alias expansions as new mail
      return ["cleanup"];
    case "cleanup":
      return ["qmgr"];
    case "qmgr":
      return services.filter((s) =>
        s.type === "unix" && (AGENTS.has(s.command) || s.command === "bounce")
      ).map((s) => s.name);
    default:
      return [];
  }
}
