/**
 * Which lookup tables each daemon opens, and what its sandbox must allow
 * for them: exactly the files, servers and environment variables the
 * tables named in its parameters need (lib/maps computes each table's
 * needs; this file knows which parameters each daemon reads).
 *
 * A domain list (mydestination, relay_domains, ...) may mix domain names
 * and `type:table` names, as Postfix's match lists do; only the tables need
 * grants.
 *
 * @module
 */
import {
  DictError,
  type DictGrants,
  GRANT_KINDS,
  type GrantsContext,
  NETWORK_TYPES,
  noGrants,
  parseMapSpec,
  splitMapList,
  tableGrants,
} from "../maps/mod.ts";
import type { Config, MasterService } from "../config/mod.ts";
import { blockedAt, classBits } from "../privilege/mod.ts";

export { LIST_PARAMS, TABLE_PARAMS } from "./table_params.ts";
import { LIST_PARAMS, TABLE_PARAMS } from "./table_params.ts";

export { noGrants };

function merge(into: DictGrants, g: DictGrants): void {
  for (const k of GRANT_KINDS) {
    for (const item of g[k]) if (!into[k].includes(item)) into[k].push(item);
  }
}

/**
 * The `type:table` items of a match list: names need no grant, and `/file`
 * items are refused where the list is read (lib/resolve MatchList).
 */
function listTables(value: string): { tables: string[] } {
  const tables: string[] = [];
  let policyServer = false;
  for (const item of splitMapList(value)) {
    // check_policy_service's argument is a server, not a table (lib/permissions/policy.ts).
    if (policyServer) {
      policyServer = false;
      continue;
    }
    policyServer = item.toLowerCase() === "check_policy_service";
    const t = item.replace(/^!+/, "");
    if (/^[a-z][a-z0-9_-]*:/i.test(t) && !t.startsWith("[")) tables.push(t);
  }
  return { tables };
}

/** Options for {@link daemonTableGrants}. */
export interface TableGrantOptions {
  /**
   * proxymap runs: `proxy:` tables and network tables are looked up through
   * it, so the daemon needs nothing for them (and proxymap needs them all).
   * @default false
   */
  proxymap?: boolean;
}

/** True when a table is looked up through proxymap rather than opened by the daemon. */
export function viaProxymap(spec: string): boolean {
  const { type, proxied } = parseMapSpec(spec);
  return proxied || NETWORK_TYPES.has(type);
}

/** Every table the daemons' parameters name, by parameter (all daemons, tables of lists too). */
function namedTables(param: (name: string) => string | undefined): [string, string][] {
  const out: [string, string][] = [];
  const classes = restrictionClasses(param);
  const names = new Set(
    [...Object.values(TABLE_PARAMS), ...Object.values(LIST_PARAMS), classes].flat(),
  );
  for (const name of names) {
    const value = param(name);
    if (!value) continue;
    const tables = LIST_PARAMS_ALL.has(name) || classes.includes(name)
      ? listTables(value).tables
      : splitMapList(value);
    for (const t of tables) out.push([name, t]);
  }
  return out;
}

const LIST_PARAMS_ALL = new Set(Object.values(LIST_PARAMS).flat());

/**
 * The parameters smtpd_restriction_classes names: restriction lists like
 * smtpd_*_restrictions, whose `type:table` items smtpd opens too.
 */
function restrictionClasses(param: (name: string) => string | undefined): string[] {
  return (param("smtpd_restriction_classes") ?? "").split(/[\s,]+/).filter((n) =>
    /^[A-Za-z0-9_]+$/.test(n)
  );
}

/**
 * The tables proxymap may open: those the configuration names with
 * `proxy:` or of a network type, as `type:name` without `proxy:`. A
 * client asking for any other table is refused, so a compromised daemon
 * cannot use proxymap to read what the configuration does not name (the
 * role of Postfix's proxy_read_maps, computed rather than configured).
 */
export function proxiedTables(param: (name: string) => string | undefined): string[] {
  const out = new Set<string>();
  for (const [, spec] of namedTables(param)) {
    if (!viaProxymap(spec)) continue;
    const { type, name } = parseMapSpec(spec);
    out.add(`${type}:${name.trim()}`);
  }
  return [...out];
}

/**
 * The npm modules proxymap must be able to load (the drivers of the
 * proxied tables, DictGrants npm) and the tables that need them, for the
 * start to put the drivers in the daemons' DENO_DIR (lib/runtime
 * cacheNpmModules) and to name the tables when it cannot. A table whose
 * grants cannot be computed is left out: master reports it.
 */
export async function proxymapNpm(
  param: (name: string) => string | undefined,
  ctx: GrantsContext,
): Promise<{ modules: string[]; tables: string[] }> {
  const modules = new Set<string>();
  const tables: string[] = [];
  for (const spec of proxiedTables(param)) {
    let npm: string[];
    try {
      npm = (await tableGrants(spec, ctx)).npm;
    } catch (e) {
      if (!(e instanceof DictError)) throw e;
      continue;
    }
    if (npm.length === 0) continue;
    tables.push(spec);
    for (const m of npm) modules.add(m);
  }
  return { modules: [...modules], tables };
}

/**
 * The grants one daemon needs for its tables, and the problems found
 * (an unknown table type, a table whose config file cannot be read, a
 * network table without proxymap): each names the parameter. `param`
 * gives a parameter's expanded value, or undefined when Postwarden does
 * not know the parameter. For the command "proxymap": what every proxied
 * table needs.
 */
export async function daemonTableGrants(
  command: string,
  param: (name: string) => string | undefined,
  ctx: GrantsContext,
  opts: TableGrantOptions = {},
): Promise<{ grants: DictGrants; problems: string[] }> {
  const grants = noGrants();
  const problems: string[] = [];
  const add = async (name: string, specs: string[]) => {
    for (const spec of specs) {
      try {
        if (command === "proxymap") {
          if (viaProxymap(spec)) merge(grants, await tableGrants(spec, ctx));
        } else if (opts.proxymap && viaProxymap(spec)) {
          await tableGrants(spec, ctx); // checked here, opened by proxymap
        } else if (NETWORK_TYPES.has(parseMapSpec(spec).type)) {
          problems.push(
            `${name}: table ${spec}: network tables are looked up through proxymap; ` +
              `add "proxymap unix - - n - - proxymap" to master.cf`,
          );
        } else merge(grants, await tableGrants(spec, ctx));
      } catch (e) {
        if (!(e instanceof DictError)) throw e;
        problems.push(`${name}: ${e.message}`);
      }
    }
  };
  const classes = command === "smtpd" || command === "proxymap" ? restrictionClasses(param) : [];
  const names = command === "proxymap"
    ? [...new Set([...Object.values(TABLE_PARAMS), ...Object.values(LIST_PARAMS)].flat())]
    : [...(TABLE_PARAMS[command] ?? []), ...(LIST_PARAMS[command] ?? [])];
  for (const name of [...names, ...classes]) {
    const value = param(name);
    if (!value) continue;
    try {
      if (LIST_PARAMS_ALL.has(name) || classes.includes(name)) {
        await add(name, listTables(value).tables);
      } else await add(name, splitMapList(value));
    } catch (e) {
      if (!(e instanceof DictError)) throw e;
      problems.push(`${name}: ${e.message}`);
    }
  }
  return { grants, problems };
}

/**
 * Table grants of every service, by service name, and the problems found,
 * each once, naming the services it concerns. `configOf` gives the configuration
 * a service runs with (main.cf plus its -o overrides).
 */
export async function servicesTableGrants(
  services: readonly MasterService[],
  configOf: (svc: MasterService) => Promise<Config>,
  ctx: GrantsContext = { readTextFile: (p) => Deno.readTextFile(p) },
): Promise<{ grants: Map<string, DictGrants>; problems: string[] }> {
  const grants = new Map<string, DictGrants>();
  // One message per problem, naming every service it concerns.
  const problems = new Map<string, string[]>();
  const proxymap = services.some((s) => s.type === "unix" && s.command === "proxymap");
  for (const svc of services) {
    const uses = TABLE_PARAMS[svc.command] || LIST_PARAMS[svc.command];
    if (!uses && svc.command !== "proxymap") continue;
    const config = await configOf(svc);
    const param = (n: string) => config.raw(n) === undefined ? undefined : config.str(n);
    const r = await daemonTableGrants(svc.command, param, ctx, { proxymap });
    grants.set(svc.name, r.grants);
    for (const p of r.problems) problems.set(p, [...problems.get(p) ?? [], svc.name]);
  }
  return {
    grants,
    problems: [...problems].map(([p, names]) => `${p} (service ${names.join(", ")})`),
  };
}

/**
 * Table files the daemons' user cannot read (a table under /root when the
 * daemons run as mail_owner): each would fail every lookup, so the start
 * stops naming it. Files that do not exist are left to the lookups, which
 * report them (e.g. "run postmap").
 */
export function unreadableTableFiles(
  grants: Map<string, DictGrants>,
  who: { uid: number; gid: number; name: string },
): Promise<string[]> {
  return unreadableFiles(
    [...new Set([...grants.values()].flatMap((g) => g.read))],
    who,
    "table file",
  );
}

/**
 * The files of `paths` that `who` could not read (a folder on the way
 * closed to it, or the file's mode), each as "`what` PATH is not readable
 * by NAME ..."; missing files are not reported here.
 */
export async function unreadableFiles(
  paths: string[],
  who: { uid: number; gid: number; name: string },
  what: string,
): Promise<string[]> {
  const out: string[] = [];
  for (const f of paths) {
    const blocked = await blockedAt(f, who);
    if (blocked) {
      out.push(`${what} ${f} is not readable by ${who.name} (${blocked} is closed to it)`);
      continue;
    }
    try {
      const st = await Deno.stat(f);
      const bits = classBits({ uid: st.uid ?? -1, gid: st.gid ?? -1, mode: st.mode ?? 0 }, who);
      if ((bits & 4) === 0) out.push(`${what} ${f} is not readable by ${who.name}`);
    } catch {
      // missing: the caller's to report
    }
  }
  return out;
}

/**
 * postwarden_mta_sts's trust anchors (postwarden_mta_sts_CAfile), which
 * the smtp client and mtasts read as `owner` (null: as this process):
 * without them every enforced domain's mail would wait, so master and
 * `postwarden check` stop on this.
 */
export async function mtaStsAnchorProblems(
  config: { bool(name: string): boolean; str(name: string): string },
  owner: { uid: number; gid: number; name: string } | null,
): Promise<string[]> {
  if (!config.bool("postwarden_mta_sts")) return [];
  const ca = config.str("postwarden_mta_sts_CAfile").trim();
  if (!(await Deno.stat(ca).catch(() => null))?.isFile) {
    return [
      `postwarden_mta_sts_CAfile ${ca}: no such file (install Debian's ca-certificates, or ` +
      "name the CA certificates to trust)",
    ];
  }
  return owner ? await unreadableFiles([ca], owner, "postwarden_mta_sts_CAfile") : [];
}
