/**
 * What the SQL tables (`sqlite:`, `pgsql:`, `mysql:`) share, as Postfix's
 * cfg_parser and db_common: the `name = value` configuration file
 * (sqlite_table(5), pgsql_table(5), mysql_table(5)), the query and
 * result_format templates with their `%` expansions, the `domain` filter,
 * the legacy query parameters, the `hosts` list with Postfix's failover
 * between servers (HostPool), and the per-database quoting of the key.
 *
 * Keys reach the database as literal text inside the admin's query, quoted
 * by the function of that database (the template is free text, `'%s'`,
 * `'%u@%d'` or `LIKE '%%%s'`, so bound parameters cannot express it); the
 * quoting functions here are exact for string literals of each dialect.
 *
 * Not here: the obsolete form where a table name without "/" or "." names
 * `name_parameter` settings in main.cf (refused with a clear error), and
 * the drivers (map_sqlite.ts, map_pgsql.ts, map_mysql.ts).
 *
 * @module
 */
import { ConfigError } from "../config/errors.ts";
import { parseMainCf } from "../config/main_cf.ts";
import {
  type Dict,
  DictError,
  type DictGrants,
  GRANT_KINDS,
  type GrantsContext,
  noGrants,
  splitMapList,
} from "./dict.ts";

/** A parsed table configuration file. */
export interface SqlCf {
  /** The file as named in `type:/path`. */
  path: string;
  /** `name = value` settings, last one wins (with a warning, as Postfix). */
  params: Map<string, string>;
  /** Line of each setting, for messages. */
  lines: Map<string, number>;
}

function cfError(type: string, path: string, message: string): DictError {
  return new DictError(`${type}:${path}: ${message}`, "config");
}

/**
 * The file path a SQL table names, or a clear error for the main.cf form
 * (`pgsql:name` reading `name_hosts` and friends from main.cf).
 */
export function cfPath(type: string, name: string): string {
  const path = name.trim();
  if (!path.startsWith("/") && !path.startsWith(".")) {
    throw cfError(
      type,
      path,
      `table parameters in main.cf ("${path}_query" and friends) are not supported; ` +
        `name a configuration file ("${type}:/etc/postfix/${path}.cf")`,
    );
  }
  return path;
}

/**
 * Parses the text of a table configuration file: main.cf syntax without
 * `$name` expansion, as Postfix's dict_load_file.
 *
 * @throws {DictError} kind "config" naming the file and line.
 */
export function parseCf(
  type: string,
  path: string,
  text: string,
  warn: (m: string) => void = () => {},
): SqlCf {
  try {
    const { entries, lines, warnings } = parseMainCf(text);
    for (const w of warnings) warn(w.replace(/^main\.cf/, path));
    return { path, params: entries, lines };
  } catch (e) {
    if (e instanceof ConfigError) {
      throw new DictError(`${type}:${path}: ${e.message.replace(/^main\.cf/, path)}`, "config");
    }
    throw e;
  }
}

/**
 * Reads and parses the configuration file of `type:name`.
 *
 * @throws {DictError} kind "config" when it cannot be read or parsed.
 */
export async function loadCf(
  type: string,
  name: string,
  read: (path: string) => Promise<string>,
  warn?: (m: string) => void,
): Promise<SqlCf> {
  const path = cfPath(type, name);
  let text: string;
  try {
    text = await read(path);
  } catch (e) {
    throw cfError(type, path, `cannot read the configuration file: ${(e as Error).message}`);
  }
  return parseCf(type, path, text, warn);
}

/** A string setting; `min` is a minimum length as cfg_get_str's. */
export function cfStr(cf: SqlCf, type: string, name: string, def: string, min = 0): string {
  const v = cf.params.get(name) ?? def;
  if (min > 0 && v.length < min) {
    throw cfError(type, cf.path, `bad string length ${v.length} < ${min}: ${name} = ${v}`);
  }
  return v;
}

/** An integer setting (cfg_get_int: decimal, whole value). */
export function cfInt(cf: SqlCf, type: string, name: string, def: number): number {
  const v = cf.params.get(name);
  if (v === undefined) return def;
  if (!/^[-+]?\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Math.abs(Number(v)) > 2 ** 31) {
    const line = cf.lines.get(name);
    throw cfError(
      type,
      cf.path,
      `${line ? `line ${line}: ` : ""}bad numerical configuration: ${name} = ${v}`,
    );
  }
  return Number(v);
}

/** A yes/no setting (cfg_get_bool). */
export function cfBool(cf: SqlCf, type: string, name: string, def: boolean): boolean {
  const v = cf.params.get(name);
  if (v === undefined) return def;
  if (v.toLowerCase() === "yes") return true;
  if (v.toLowerCase() === "no") return false;
  throw cfError(type, cf.path, `bad boolean configuration: ${name} = ${v}`);
}

/**
 * The error for a driver whose import failed: "config" (no retry helps),
 * saying what to do when it is missing from the DENO_DIR cache proxymap
 * loads it from (`--cached-only`, lib/permissions).
 */
export function driverError(where: string, driver: string, module: string, e: unknown): DictError {
  const m = (e as Error).message.split("\n")[0];
  const hint = /--cached-only|not found in cache/.test(m)
    ? " (postwarden start or reload puts the table drivers in the daemons' DENO_DIR)"
    : "";
  return new DictError(
    `${where}: the ${driver} driver (npm:${module}) cannot be loaded: ${m}${hint}`,
    "config",
  );
}

/**
 * Settings Postfix accepts that Postwarden does not implement: a clear
 * error naming them when set.
 */
export function refuseParams(cf: SqlCf, type: string, names: readonly string[]): void {
  for (const n of names) {
    if (cf.params.has(n) && cf.params.get(n) !== "") {
      const line = cf.lines.get(n);
      throw cfError(
        type,
        cf.path,
        `${line ? `line ${line}: ` : ""}parameter "${n}" is not supported by Postwarden`,
      );
    }
  }
}

/**
 * The query: `query`, else the legacy `SELECT select_field FROM table WHERE
 * where_field='%s' additional_conditions` (pgsql first tries
 * `select_function`, as `SELECT fn('%s')`).
 */
export function cfQuery(cf: SqlCf, type: string, opts: { selectFunction?: boolean } = {}): string {
  const q = cf.params.get("query");
  if (q !== undefined && q !== "") return q;
  if (opts.selectFunction) {
    const fn = cf.params.get("select_function");
    if (fn) return `SELECT ${fn}('%s')`;
  }
  const need = (n: string) => {
    const v = cf.params.get(n);
    if (!v) {
      throw cfError(type, cf.path, `no "query" and legacy parameter '${n}' is not defined`);
    }
    return v;
  };
  const table = need("table");
  const select = need("select_field");
  const where = need("where_field");
  return `SELECT ${select} FROM ${table} WHERE ${where}='%s' ${
    cf.params.get("additional_conditions") ?? ""
  }`;
}

// ---------------------------------------------------------------------------
// Templates (db_common_parse / db_common_expand)

/** What the query and result templates need from keys and results. */
export interface TemplateNeeds {
  keyDomain: boolean;
  keyUser: boolean;
  valueDomain: boolean;
  valueUser: boolean;
  /** Highest %1..%9 used: keys need that many domain labels. */
  nparts: number;
}

/**
 * Checks the query and result_format templates and notes what they need,
 * as db_common_parse.
 *
 * @throws {DictError} kind "config" for an unknown `%` sequence.
 */
export function parseTemplates(
  type: string,
  path: string,
  query: string,
  resultFormat: string,
): TemplateNeeds {
  const needs: TemplateNeeds = {
    keyDomain: false,
    keyUser: false,
    valueDomain: false,
    valueUser: false,
    nparts: 0,
  };
  for (const [format, isQuery] of [[query, true], [resultFormat, false]] as const) {
    for (let i = 0; i < format.length; i++) {
      if (format[i] !== "%") continue;
      const c = format[++i];
      if (c === "%" || c === "s" || c === "S") continue;
      if (c === "u") {
        if (isQuery) needs.keyUser = true;
        else needs.valueUser = true;
      } else if (c === "d") {
        if (isQuery) needs.keyDomain = true;
        else needs.valueDomain = true;
      } else if (c === "U") needs.keyUser = true;
      else if (c === "D") needs.keyDomain = true;
      else if (c !== undefined && c >= "1" && c <= "9") {
        needs.keyDomain = true;
        needs.nparts = Math.max(needs.nparts, Number(c));
      } else {
        throw cfError(
          type,
          path,
          `invalid ${isQuery ? "query" : "result"} template: ${format}` +
            (c === undefined ? ` ("%" at the end)` : ` (unknown "%${c}")`),
        );
      }
    }
  }
  return needs;
}

function domainOf(s: string): string | undefined {
  const at = s.lastIndexOf("@");
  return at < 0 ? undefined : s.slice(at + 1);
}

/** Domain labels for %1..%9, most significant first ("com", "example", ...); empty labels dropped. */
function labels(domain: string): string[] {
  return domain.split(".").filter((l) => l !== "").reverse();
}

/**
 * Expands the query template for a key, quoting each piece with `quote`;
 * undefined when the key lacks what the templates need (no domain for %d,
 * %D or %1..%9, an empty local part for %u, too few labels): the query is
 * then not sent and the lookup finds nothing.
 */
export function expandQuery(
  needs: TemplateNeeds,
  format: string,
  key: string,
  quote: (s: string) => string,
): string | undefined {
  if (key === "") return undefined;
  const at = key.lastIndexOf("@");
  const domain = needs.keyDomain || needs.keyUser ? domainOf(key) : undefined;
  if (needs.keyDomain && !domain) return undefined;
  if (needs.keyUser && domain !== undefined && at === 0) return undefined;
  return expand(needs, format, key, domain, undefined, undefined, quote);
}

/**
 * Expands result_format for one result value of a key, as
 * db_common_expand: undefined (skipped) for a NULL or empty value, or a
 * value without what %u/%d need. `warn` gets Postfix's warnings.
 */
export function expandResult(
  needs: TemplateNeeds,
  format: string,
  value: string | null | undefined,
  key: string,
  where: string,
  warn: (m: string) => void,
): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (value === "") {
    warn(`table "${where}": empty lookup result for: "${key}" -- ignored`);
    return undefined;
  }
  const vdomain = needs.valueDomain || needs.valueUser ? domainOf(value) : undefined;
  if ((needs.valueDomain && !vdomain) || (needs.valueUser && value.lastIndexOf("@") === 0)) {
    return undefined;
  }
  const kdomain = needs.keyDomain || needs.keyUser ? domainOf(key) : undefined;
  if ((needs.keyDomain && !kdomain) || (needs.keyUser && key.lastIndexOf("@") === 0)) {
    warn(`db_common_expand: ${where}: lookup key '${value}' skipped after query`);
    return undefined;
  }
  return expand(needs, format, value, vdomain, key, kdomain, (s) => s);
}

function expand(
  needs: TemplateNeeds,
  format: string,
  value: string,
  vdomain: string | undefined,
  key: string | undefined,
  kdomain: string | undefined,
  quote: (s: string) => string,
): string | undefined {
  let parts: string[] = [];
  if (needs.nparts > 0) {
    parts = labels((key !== undefined ? kdomain : vdomain) ?? "");
    if (parts.length < needs.nparts) return undefined;
  }
  const userOf = (s: string, d: string | undefined) =>
    d === undefined ? s : s.slice(0, s.length - d.length - 1);
  let out = "";
  for (let i = 0; i < format.length; i++) {
    const ch = format[i];
    if (ch !== "%") {
      out += ch;
      continue;
    }
    const c = format[++i];
    switch (c) {
      case "%":
        out += "%";
        break;
      case "s":
        out += quote(value);
        break;
      case "u":
        out += quote(userOf(value, vdomain));
        break;
      case "d":
        out += quote(vdomain ?? "");
        break;
      case "S":
        out += quote(key ?? value);
        break;
      case "U":
        out += quote(key !== undefined ? userOf(key, kdomain) : userOf(value, vdomain));
        break;
      case "D":
        out += quote((key !== undefined ? kdomain : vdomain) ?? "");
        break;
      default:
        // %1..%9: checked by parseTemplates, and parts has enough labels.
        out += quote(parts[Number(c) - 1]);
    }
  }
  return out;
}

/**
 * The lookups a SQL table does for a key, whatever the driver: folding,
 * the domain filter, the query expansion, and the result expansion with
 * expansion_limit. `run` sends one query and returns its rows, each an
 * array of column values (null for SQL NULL), or throws DictError.
 */
export interface SqlTableSpec {
  type: string;
  /** The configuration file as named. */
  path: string;
  query: string;
  resultFormat: string;
  expansionLimit: number;
  needs: TemplateNeeds;
  domain: DomainList | undefined;
  fold: boolean;
  quote: (s: string) => string;
  warn: (m: string) => void;
}

/** Reads query, result_format, expansion_limit and domain (shared by the three types). */
export async function sqlTableSpec(
  cf: SqlCf,
  type: string,
  opts: {
    fold: boolean;
    warn: (m: string) => void;
    quote: (s: string) => string;
    selectFunction?: boolean;
  },
): Promise<SqlTableSpec> {
  const query = cfQuery(cf, type, opts);
  const resultFormat = cfStr(cf, type, "result_format", "%s", 1);
  const expansionLimit = cfInt(cf, type, "expansion_limit", 0);
  const needs = parseTemplates(type, cf.path, query, resultFormat);
  const domainText = cf.params.get("domain") ?? "";
  const domain = domainText.trim() === ""
    ? undefined
    : await DomainList.open(`${type}:${cf.path}: domain`, domainText);
  return {
    type,
    path: cf.path,
    query,
    resultFormat,
    expansionLimit,
    needs,
    domain,
    fold: opts.fold,
    quote: opts.quote,
    warn: opts.warn,
  };
}

/**
 * One lookup through a SQL table: undefined when the key is filtered out
 * or nothing is found. `run` gets the query, expanded with the quoting of
 * the connection it will be sent on, and returns its rows, each an array
 * of column values (null for SQL NULL).
 *
 * @throws {DictError} from `run`, or kind "retry" when expansion_limit is exceeded.
 */
export async function sqlLookup(
  spec: SqlTableSpec,
  key: string,
  run: (query: (quote: (s: string) => string) => string) => Promise<(string | null)[][]>,
): Promise<string | undefined> {
  if (key.includes("\0")) {
    spec.warn(`${spec.type}:${spec.path}: key contains a NUL byte: skipped`);
    return undefined;
  }
  if (spec.fold) key = key.toLowerCase();
  if (spec.domain) {
    const at = key.lastIndexOf("@");
    if (at <= 0) return undefined;
    if (!(await spec.domain.match(key.slice(at + 1)))) return undefined;
  }
  if (expandQuery(spec.needs, spec.query, key, (s) => s) === undefined) return undefined;
  const rows = await run((quote) => expandQuery(spec.needs, spec.query, key, quote)!);
  const where = `${spec.type}:${spec.path}`;
  const out: string[] = [];
  for (const row of rows) {
    for (const value of row) {
      const r = expandResult(spec.needs, spec.resultFormat, value, key, where, spec.warn);
      if (r === undefined) continue;
      out.push(r);
      if (spec.expansionLimit > 0 && out.length > spec.expansionLimit) {
        spec.warn(`${where}: Expansion limit exceeded for key: '${key}'`);
        throw new DictError(`${where}: expansion limit exceeded for key "${key}"`, "retry");
      }
    }
  }
  const joined = out.join(",");
  return joined === "" ? undefined : joined;
}

// ---------------------------------------------------------------------------
// Connections to several servers (pgsql, mysql)

/**
 * Imports an npm driver by its deno.json name (only proxymap may: the
 * other daemons run with --no-npm). The specifier is not a literal, so the
 * driver stays out of the module graph of code that never opens an SQL
 * table.
 */
// deno-lint-ignore no-explicit-any
export function loadDriver(name: string): Promise<{ default: any }> {
  return import(name);
}

/** The Dict of a server-backed SQL table (pgsql, mysql): lookups through its pool. */
export function serverDict<H extends SqlHost>(
  type: string,
  name: string,
  spec: SqlTableSpec,
  pool: HostPool<H>,
): Dict {
  return {
    type,
    name,
    pattern: false,
    lookup: (key) => sqlLookup(spec, key, (query) => pool.run(query)),
    close: async () => {
      await pool.close();
      await spec.domain?.close();
    },
  };
}

/**
 * What a daemon needs for a server-backed SQL table: the .cf file, the
 * domain list's tables, each server (a UNIX socket as read, write and net
 * `unix:path`, which node:net checks too; else `host:port`), the npm
 * driver and the environment variables it reads.
 */
export async function serverGrants(
  type: string,
  name: string,
  ctx: GrantsContext,
  servers: (cf: SqlCf) => SqlServer[],
  driver: { npm: string; env?: string[] },
): Promise<Partial<DictGrants>> {
  const cf = await loadCf(type, name, (p) => ctx.readTextFile(p));
  const domain = cf.params.get("domain");
  const g = domain ? await DomainList.grants(domain, ctx) : {};
  const read = [cf.path, ...(g.read ?? [])];
  const write = [...(g.write ?? [])];
  const net = [...(g.net ?? [])];
  for (const h of servers(cf)) {
    if ("socket" in h) {
      read.push(h.socket);
      write.push(h.socket);
      net.push(`unix:${h.socket}`);
    } else net.push(netGrant(h.host, h.port));
  }
  const env = [...(g.env ?? []), ...(driver.env ?? [])];
  return { ...g, read, write, net, env, npm: [...(g.npm ?? []), driver.npm] };
}

/** One server as the grants see it: a UNIX socket file, or host and port. */
export type SqlServer = { socket: string } | { host: string; port: number };

/** One open connection to a database server. */
export interface SqlConnection {
  /** Quotes a key piece for a string literal of this connection. */
  quote(s: string): string;
  /** Sends one query; rows of column values as text (null for NULL). */
  run(query: string): Promise<(string | null)[][]>;
  close(): Promise<void>;
}

/** Options for {@link HostPool}. */
export interface HostPoolOptions {
  /** How long a failed host is left alone. @default 60000 */
  retryMs?: number;
  /** An idle connection is closed after this long. @default 60000 */
  idleMs?: number;
  /** @default Date.now */
  now?: () => number;
  /** @default Math.random */
  random?: () => number;
}

/**
 * The servers of one table, as Postfix's plpgsql/plmysql: one connection
 * at a time; UNIX sockets preferred, then TCP, random within each; a
 * server that fails (connect or query) is closed and skipped for a
 * minute, and the next one is tried; when none answers the lookup fails
 * with DictError "retry" (never "not found").
 */
export class HostPool<H extends SqlHost> {
  private active: { host: H; conn: SqlConnection } | undefined;
  private readonly downUntil = new Map<H, number>();
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly opts: Required<HostPoolOptions>;

  constructor(
    private readonly where: string,
    private readonly hosts: readonly H[],
    private readonly connect: (host: H) => Promise<SqlConnection>,
    opts: HostPoolOptions = {},
  ) {
    this.opts = {
      retryMs: opts.retryMs ?? 60_000,
      idleMs: opts.idleMs ?? 60_000,
      now: opts.now ?? Date.now,
      random: opts.random ?? Math.random,
    };
  }

  /** Runs a query on the first server that answers. */
  async run(
    query: (quote: (s: string) => string) => string,
  ): Promise<(string | null)[][]> {
    const errors: string[] = [];
    const tried = new Set<H>();
    for (;;) {
      if (this.active === undefined) {
        const now = this.opts.now();
        const next = hostOrder(this.hosts, this.opts.random).find((h) =>
          !tried.has(h) && (this.downUntil.get(h) ?? 0) <= now
        );
        if (next === undefined) break;
        tried.add(next);
        try {
          this.active = { host: next, conn: await this.connect(next) };
        } catch (e) {
          // A driver that cannot be loaded fails every host alike.
          if (e instanceof DictError && e.kind === "config") throw e;
          errors.push(`connect to ${this.where.split(":")[0]} server ${next.text}: ${message(e)}`);
          this.downUntil.set(next, now + this.opts.retryMs);
          continue;
        }
      }
      const { host, conn } = this.active;
      tried.add(host);
      try {
        const rows = await conn.run(query((s) => conn.quote(s)));
        this.armIdle();
        return rows;
      } catch (e) {
        errors.push(`query on ${host.text} failed: ${message(e)}`);
        this.active = undefined;
        this.downUntil.set(host, this.opts.now() + this.opts.retryMs);
        await conn.close().catch(() => {});
      }
    }
    throw new DictError(
      `${this.where}: no database server answered` +
        (errors.length ? `: ${errors.join("; ")}` : " (all are marked down for a minute)"),
      "retry",
    );
  }

  private armIdle(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    const timer = setTimeout(() => {
      this.idleTimer = undefined;
      const a = this.active;
      this.active = undefined;
      a?.conn.close().catch(() => {});
    }, this.opts.idleMs);
    Deno.unrefTimer(timer as unknown as number);
    this.idleTimer = timer;
  }

  /** Closes the open connection. */
  async close(): Promise<void> {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const a = this.active;
    this.active = undefined;
    await a?.conn.close().catch(() => {});
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------------------
// The domain filter: a Postfix string list (match_list with match_string)

interface DomainItem {
  negate: boolean;
  literal?: string;
  dict?: Dict;
}

/**
 * The `domain` parameter: domain names, `/file` names (their contents are
 * more items), `type:table` lookup tables, each optionally negated with
 * "!"; the first item that matches decides. Matching is exact and
 * case-insensitive (no parent domains), as Postfix's string_list.
 */
export class DomainList {
  private constructor(private readonly items: DomainItem[]) {}

  /** Parses (and opens the tables of) a domain list. */
  static async open(
    where: string,
    text: string,
    read: (path: string) => Promise<string> = Deno.readTextFile,
  ): Promise<DomainList> {
    const items: DomainItem[] = [];
    const { openDict } = await import("./registry.ts");
    const add = async (list: string, depth: number): Promise<void> => {
      for (let item of splitMapList(list)) {
        let negate = false;
        while (item.startsWith("!")) {
          negate = !negate;
          item = item.slice(1);
        }
        if (item === "") continue;
        if (item.startsWith("/")) {
          if (depth > 10) throw new DictError(`${where}: files nested too deep`, "config");
          let body: string;
          try {
            body = await read(item);
          } catch (e) {
            throw new DictError(`${where}: open ${item}: ${(e as Error).message}`, "config");
          }
          const inner = body.split("\n").filter((l) => !/^\s*#/.test(l)).join(" ");
          await add(inner, depth + 1);
        } else if (!item.startsWith("[") && item.includes(":")) {
          items.push({ negate, dict: await openDict(item, { context: where }) });
        } else {
          items.push({ negate, literal: item.toLowerCase() });
        }
      }
    };
    await add(text, 0);
    return new DomainList(items);
  }

  /**
   * True when the domain is listed.
   * @throws {DictError} when a table of the list cannot answer.
   */
  async match(domain: string): Promise<boolean> {
    const d = domain.toLowerCase();
    for (const item of this.items) {
      const hit = item.dict ? (await item.dict.lookup(d)) !== undefined : item.literal === d;
      if (hit) return !item.negate;
    }
    return false;
  }

  /** Closes the list's tables. */
  async close(): Promise<void> {
    await Promise.all(this.items.map((i) => i.dict?.close()));
  }

  /** What a daemon needs to read the list: its files and tables. */
  static async grants(text: string, ctx: GrantsContext): Promise<Partial<DictGrants>> {
    const { tableGrants } = await import("./registry.ts");
    const out: DictGrants = noGrants();
    const add = async (list: string, depth: number): Promise<void> => {
      for (const raw of splitMapList(list)) {
        const item = raw.replace(/^!+/, "");
        if (item.startsWith("/")) {
          out.read.push(item);
          if (depth > 10) continue;
          const body = await ctx.readTextFile(item).catch(() => "");
          await add(body.split("\n").filter((l) => !/^\s*#/.test(l)).join(" "), depth + 1);
        } else if (!item.startsWith("[") && item.includes(":")) {
          const g = await tableGrants(item, ctx);
          for (const k of GRANT_KINDS) out[k].push(...g[k]);
        }
      }
    };
    await add(text, 0);
    return out;
  }
}

// ---------------------------------------------------------------------------
// Hosts

/** One entry of `hosts`. */
export type SqlHost =
  | { kind: "inet"; host: string; port: number; text: string }
  | { kind: "unix"; path: string; port: number; text: string }
  | { kind: "url"; url: string; host: string; port: number; text: string };

/**
 * Parses `hosts` as Postfix's host_init: `unix:/path`, `inet:host:port`,
 * `host:port`, `host` (and for pgsql `postgresql://` URIs); empty means
 * "localhost". Ports are numbers (service names are refused).
 *
 * @throws {DictError} kind "config" for a bad port.
 */
export function parseHosts(
  cf: SqlCf,
  type: string,
  defaultPort: number,
  opts: { urls?: boolean } = {},
): SqlHost[] {
  const text = cf.params.get("hosts") ?? "";
  const items = text.split(/[ ,\t\r\n]+/).filter((s) => s !== "");
  if (items.length === 0) items.push("localhost");
  return items.map((item): SqlHost => {
    const bad = (why: string) => cfError(type, cf.path, `hosts: "${item}": ${why}`);
    if (opts.urls && /^postgres(ql)?:\/\//i.test(item)) {
      let u: URL;
      try {
        u = new URL(item);
      } catch {
        throw bad("malformed URI");
      }
      return {
        kind: "url",
        url: item,
        host: u.hostname || "localhost",
        port: u.port ? Number(u.port) : defaultPort,
        text: item,
      };
    }
    let rest = item;
    let kind: "inet" | "unix" = "inet";
    if (rest.startsWith("unix:")) {
      kind = "unix";
      rest = rest.slice(5);
    } else if (rest.startsWith("inet:")) rest = rest.slice(5);
    let port = defaultPort;
    const colon = rest.lastIndexOf(":");
    if (colon >= 0 && !(rest.startsWith("[") && rest.endsWith("]"))) {
      const p = rest.slice(colon + 1);
      if (!/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535) {
        throw bad(`bad port "${p}" (service names are not supported)`);
      }
      port = Number(p);
      rest = rest.slice(0, colon);
    }
    if (rest.startsWith("[") && rest.endsWith("]")) rest = rest.slice(1, -1);
    if (rest === "") throw bad("empty host name");
    return kind === "unix" ? { kind, path: rest, port, text: item } : {
      kind,
      host: rest,
      port,
      text: item,
    };
  });
}

/** `host:port` as Deno's --allow-net wants it (IPv6 in brackets). */
export function netGrant(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The order to try hosts in, as Postfix: UNIX sockets before TCP, random
 * within each kind; `random` is injectable for tests.
 */
export function hostOrder<T extends { kind: string }>(
  hosts: readonly T[],
  random = Math.random,
): T[] {
  const shuffle = (a: T[]) => {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  };
  return [
    ...shuffle(hosts.filter((h) => h.kind === "unix")),
    ...shuffle(hosts.filter((h) => h.kind !== "unix")),
  ];
}

// ---------------------------------------------------------------------------
// Quoting of key pieces inside the admin's string literals

/** SQLite (sqlite3_mprintf "%q"): a single quote is doubled. */
export function quoteSqlite(s: string): string {
  return s.replaceAll("'", "''");
}

/**
 * PostgreSQL (PQescapeStringConn): a single quote is doubled; a backslash
 * too when the server's standard_conforming_strings is off.
 */
export function quotePgsql(s: string, standardConformingStrings = true): string {
  const q = s.replaceAll("'", "''");
  return standardConformingStrings ? q : q.replaceAll("\\", "\\\\");
}

/**
 * MySQL/MariaDB (mysql_real_escape_string): backslash escapes for NUL,
 * newline, return, backslash, both quotes and Ctrl-Z; in
 * NO_BACKSLASH_ESCAPES mode only the single quote is doubled.
 */
export function quoteMysql(s: string, noBackslashEscapes = false): string {
  if (noBackslashEscapes) return s.replaceAll("'", "''");
  return s.replace(
    // deno-lint-ignore no-control-regex -- NUL and Ctrl-Z are what MySQL escapes
    /[\0\n\r\\'"\x1a]/g,
    (c) =>
      ({
        "\0": "\\0",
        "\n": "\\n",
        "\r": "\\r",
        "\\": "\\\\",
        "'": "\\'",
        '"': '\\"',
        "\x1a": "\\Z",
      })[
        c
      ]!,
  );
}
