/**
 * What Postwarden does with each master.cf service, so that a stock
 * Postfix master.cf carries over without anything being dropped silently.
 *
 * - A command Postwarden has a daemon for runs.
 * - A Postfix service whose job Postwarden does elsewhere, or that mail does
 *   not need to flow correctly, is skipped and named (tlsmgr, proxymap,
 *   scache, postlogd, ...). Where a parameter would make mail depend on one,
 *   the parameter itself fails closed in lib/config; a client limit set
 *   while master.cf runs no anvil stops the start here.
 * - A listener Postwarden cannot provide (qmqpd) is an error:
 *   mail the admin expects to receive would be refused.
 * - The chroot column is not used (each daemon has its own Deno sandbox
 *   instead) and unprivileged=n runs only local, pipe and virtual as root
 *   (runsAsRoot): the others are named, not dropped silently.
 * - A transport setting (default_transport, relay_transport, ...) that
 *   names no running unix service is an error, since that mail could not
 *   be delivered.
 *
 * Pure but for serviceOverrideProblems, which loads through the caller.
 *
 * @module
 */
import { type Config, type MasterService, overrideProblems } from "../config/mod.ts";
import { asksMtaSts, reportsTls, runsMtaSts } from "../permissions/peers.ts";
import { proxiedTables } from "../permissions/tables.ts";
import { parsePipeAttributes } from "../pipe/mod.ts";

/** master.cf commands with a daemon in daemons/. */
export const DAEMONS: ReadonlySet<string> = new Set([
  "smtpd",
  "cleanup",
  "pickup",
  "qmgr",
  "smtp",
  "lmtp",
  "local",
  "bounce",
  "discard",
  "error",
  "proxymap",
  "anvil",
  "auth",
  "pipe",
  "virtual",
  "postscreen",
  "mtasts",
]);

/** Postfix services skipped, with the reason shown to the admin. */
const SKIPPED: Record<string, string> = {
  tlsmgr: "TLS is not supported yet, so there is no TLS session cache to manage",
  "trivial-rewrite": "address rewriting and resolution are built into cleanup and qmgr",
  scache: "the smtp client keeps its own connection cache",
  postlogd: "master writes the log for every daemon",
  showq: "postqueue reads the queue directly",
  flush: "fast flush (ETRN) is not supported; postqueue -f flushes through qmgr",
  verify: "address verification is not supported (reject_unverified_* stops the start)",
  tlsproxy: "TLS is not supported yet",
  dnsblog: "postscreen asks the DNS lists itself",
  spawn: "policy services are not supported (check_policy_service stops the start)",
};

/**
 * Delivery agents that, like Postfix's, start as root when master does and
 * master.cf says unprivileged=n: local writes and runs commands as each
 * recipient (through processes started with the recipient's uid,
 * lib/permissions/local.ts), pipe sets user= on its command, virtual gives
 * each mailbox file to its mapped owner. Their sandboxes still hold them to
 * their own files and programs. Every other daemon runs as mail_owner
 * whatever master.cf says.
 */
const ROOT_AGENTS = new Set(["local", "pipe", "virtual"]);

/** True when master, running as root, starts this service as root. */
export function runsAsRoot(svc: MasterService): boolean {
  return ROOT_AGENTS.has(svc.command) && !svc.unprivileged;
}

/** Listeners whose mail would be refused if skipped. */
const MISSING_LISTENERS: Record<string, string> = {
  qmqpd: "QMQP is not supported",
};

/** Transport parameters whose service must run for mail to be delivered. */
const TRANSPORT_PARAMS = [
  "default_transport",
  "local_transport",
  "relay_transport",
  "mailbox_transport",
  "error_service_name",
  "bounce_service_name",
  "defer_service_name",
  // A filter whose transport does not run would defer every message (issue 8 actions).
  "content_filter",
];

/** The services to run, what was skipped and why, and what stops the start. */
export interface ServicePlan {
  run: MasterService[];
  /** "service NAME (COMMAND): skipped: reason" lines. */
  skipped: string[];
  errors: string[];
}

/** The master.cf service name a transport setting names ("smtp:[host]" -> "smtp"). */
export function transportService(value: string): string {
  const v = value.trim();
  const colon = v.indexOf(":");
  return colon < 0 ? v : v.slice(0, colon);
}

/** The parameter lookup planServices wants: expanded, undefined for a name nobody knows. */
export function paramLookup(config: Config): (name: string) => string | undefined {
  return (n) => config.raw(n) === undefined ? undefined : config.str(n);
}

/**
 * What the services' master.cf `-o` settings bring, checked like main.cf
 * (`-o smtpd_tls_security_level=encrypt` stops the start), each message
 * naming its service. `load` gives the configuration with those settings.
 */
export async function serviceOverrideProblems(
  services: MasterService[],
  load: (overrides: Record<string, string>) => Promise<Config>,
): Promise<{ fatal: string[]; warnings: string[] }> {
  const out = { fatal: [] as string[], warnings: [] as string[] };
  for (const svc of services) {
    if (Object.keys(svc.overrides).length === 0) continue;
    const p = overrideProblems(await load(svc.overrides), svc.overrides);
    out.fatal.push(...p.fatal.map((m) => `master.cf: service ${svc.name}: ${m}`));
    out.warnings.push(...p.warnings.map((m) => `master.cf: service ${svc.name}: ${m}`));
  }
  return out;
}

/** The smtpd client limits, which need the anvil service. */
const LIMIT_PARAMS: [name: string, postfixDefault: string][] = [
  ["smtpd_client_connection_count_limit", "50"],
  ["smtpd_client_connection_rate_limit", "0"],
  ["smtpd_client_message_rate_limit", "0"],
  ["smtpd_client_recipient_rate_limit", "0"],
  ["smtpd_client_auth_rate_limit", "0"],
  ["smtpd_client_new_tls_session_rate_limit", "0"],
];

/**
 * A client limit set (to other than Postfix's default, in main.cf or an
 * smtpd's -o) while master.cf runs no `anvil` unix service: ignoring it
 * would let clients through that the admin meant to stop, so it stops
 * the start. The default count limit (50) without anvil is not enforced,
 * as before anvil existed.
 */
function limitsWithoutAnvil(
  run: MasterService[],
  param: (name: string) => string | undefined,
): string[] {
  if (run.some((s) => s.type === "unix" && s.name === "anvil" && s.command === "anvil")) return [];
  const out = new Set<string>();
  for (const svc of run.filter((s) => s.command === "smtpd")) {
    for (const [name, def] of LIMIT_PARAMS) {
      const v = (Object.hasOwn(svc.overrides, name) ? svc.overrides[name] : param(name))?.trim();
      if (v === undefined || v === def || v === "0") continue;
      out.add(
        `${name} = ${v}: client limits need the anvil service; add ` +
          `"anvil unix - - n - 1 anvil" to master.cf`,
      );
    }
  }
  return [...out];
}

/**
 * postwarden_mta_sts = yes or smtp_tlsrpt_enable = yes (main.cf, or an
 * smtp service's -o) while master.cf runs no `mtasts` unix service: the
 * policies could not be asked, and every such delivery would be
 * deferred; the TLS reports would silently not be sent. It stops the start.
 */
function mtaStsWithoutService(
  run: MasterService[],
  param: (name: string) => string | undefined,
): string[] {
  if (runsMtaSts(run)) return [];
  const out: string[] = [];
  for (
    const [name, asks] of [["postwarden_mta_sts", asksMtaSts], [
      "smtp_tlsrpt_enable",
      reportsTls,
    ]] as const
  ) {
    if (run.some((s) => asks(s, param))) {
      out.push(
        `${name} = yes needs the mtasts service; add "mtasts unix - - n 3600 1 mtasts" to master.cf`,
      );
    }
  }
  return out;
}

/** Decides, for each master.cf service, whether it runs. */
export function planServices(
  services: MasterService[],
  param: (name: string) => string | undefined,
): ServicePlan {
  const plan: ServicePlan = { run: [], skipped: [], errors: [] };
  const what = (s: MasterService) => `master.cf: service ${s.name} (${s.command})`;
  for (const s of services) {
    // smtpd's "pass" service: the clients postscreen hands over (daemons/postscreen).
    if (s.type === "pass" && s.command === "smtpd") {
      plan.run.push(s);
      continue;
    }
    if (s.type === "unix-dgram" || s.type === "fifo" || s.type === "pass") {
      if (s.command in SKIPPED || s.command === "smtpd") {
        plan.skipped.push(
          `${what(s)}: skipped: type ${s.type} is not supported; ${
            (Object.hasOwn(SKIPPED, s.command) ? SKIPPED[s.command] : undefined) ??
              "its listener is not supported"
          }`,
        );
        continue;
      }
      plan.errors.push(`${what(s)}: type ${s.type} is not supported`);
      continue;
    }
    if (s.command === "proxymap" && s.name === "proxywrite") {
      plan.skipped.push(
        `${what(s)}: skipped: it serves proxy_write_maps (address verification and postscreen ` +
          "caches), which Postwarden does not have",
      );
    } else if (s.command === "proxymap" && proxiedTables(param).length === 0) {
      plan.skipped.push(
        `${
          what(s)
        }: skipped: no table is written proxy: or needs the network, so no daemon asks it`,
      );
    } else if (s.command === "auth" && passwdFileUsers(services, param).length === 0) {
      plan.skipped.push(
        `${what(s)}: skipped: no smtpd uses smtpd_sasl_type = passwd-file, so no daemon asks it`,
      );
    } else if (DAEMONS.has(s.command)) {
      plan.run.push(s);
    } else if (Object.hasOwn(SKIPPED, s.command)) {
      plan.skipped.push(`${what(s)}: skipped: ${SKIPPED[s.command]}`);
    } else if (Object.hasOwn(MISSING_LISTENERS, s.command)) {
      plan.errors.push(`${what(s)}: ${MISSING_LISTENERS[s.command]}`);
    } else {
      plan.errors.push(`${what(s)}: no such command "${s.command}"`);
    }
  }
  const chrooted = plan.run.filter((s) => s.chroot).map((s) => s.name);
  if (chrooted.length) {
    plan.skipped.push(
      `master.cf: chroot=y (${chrooted.join(", ")}): not used; ` +
        "each daemon runs in its own Deno sandbox instead (postwarden audit shows it)",
    );
  }
  for (const s of plan.run.filter((s) => s.command === "pipe")) {
    try {
      parsePipeAttributes(s.args);
    } catch (e) {
      plan.errors.push(`${what(s)}: ${(e as Error).message}`);
    }
  }
  for (const s of plan.run.filter((s) => !s.unprivileged)) {
    if (s.command === "local") {
      plan.skipped.push(
        `master.cf: service ${s.name} (local): unprivileged=n: started as root, it runs as ` +
          "root and writes and runs commands as each recipient (docs/security.md)",
      );
    } else if (!runsAsRoot(s)) {
      plan.skipped.push(
        `master.cf: service ${s.name} (${s.command}): unprivileged=n: runs as mail_owner ` +
          "like every daemon but local, pipe and virtual",
      );
    }
  }
  plan.errors.push(...limitsWithoutAnvil(plan.run, param));
  plan.errors.push(...mtaStsWithoutService(plan.run, param));
  plan.errors.push(...authServiceProblems(services, plan.run, param));
  const running = new Set(plan.run.filter((s) => s.type === "unix").map((s) => s.name));
  const settings: [string, string | undefined][] = TRANSPORT_PARAMS.map((p) => [p, param(p)]);
  for (const s of plan.run) {
    if ((s.command === "smtpd" || s.command === "pickup") && s.overrides.content_filter) {
      settings.push([`master.cf: service ${s.name}: content_filter`, s.overrides.content_filter]);
    }
  }
  for (const [p, v] of settings) {
    if (v === undefined || v.trim() === "") continue;
    const name = transportService(v);
    if (running.has(name)) continue;
    plan.errors.push(`${p} = ${v}: master.cf has no unix service "${name}" that Postwarden runs`);
  }
  return plan;
}

/** A service's expanded-enough value of a parameter: its -o setting, else main.cf's. */
function serviceParam(
  svc: MasterService,
  param: (name: string) => string | undefined,
  name: string,
): string {
  return (Object.hasOwn(svc.overrides, name) ? svc.overrides[name] : param(name) ?? "").trim();
}

/** The smtpd services that verify passwords through the auth daemon (AUTH with passwd-file). */
export function passwdFileUsers(
  services: MasterService[],
  param: (name: string) => string | undefined,
): MasterService[] {
  return services.filter((s) =>
    s.command === "smtpd" &&
    serviceParam(s, param, "smtpd_sasl_auth_enable").toLowerCase() === "yes" &&
    serviceParam(s, param, "smtpd_sasl_type") === "passwd-file"
  );
}

/**
 * What stops the start around the auth daemon: an smtpd with
 * smtpd_sasl_type = passwd-file and no auth service, more than one auth
 * service, or an smtpd naming another password file than the auth
 * daemon reads (it reads smtpd_sasl_path of main.cf or its own -o).
 */
function authServiceProblems(
  services: MasterService[],
  run: MasterService[],
  param: (name: string) => string | undefined,
): string[] {
  const users = passwdFileUsers(services, param);
  if (users.length === 0) return [];
  const auth = run.filter((s) => s.type === "unix" && s.command === "auth");
  if (auth.length === 0) {
    return [
      `master.cf: service ${users[0].name} (smtpd): smtpd_sasl_type = passwd-file needs the ` +
      'auth daemon: add "auth unix - - n - - auth" to master.cf',
    ];
  }
  if (auth.length > 1) return ["master.cf: more than one auth service"];
  const file = serviceParam(auth[0], param, "smtpd_sasl_path");
  return users.filter((u) => serviceParam(u, param, "smtpd_sasl_path") !== file).map((u) =>
    `master.cf: service ${u.name} (smtpd): smtpd_sasl_path = ` +
    `${serviceParam(u, param, "smtpd_sasl_path")}, but the auth service reads ${file}; ` +
    "set the password file in main.cf or give the auth service the same -o"
  );
}
