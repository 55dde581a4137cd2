/**
 * `pgsql:/etc/postfix/file.cf`: lookups in PostgreSQL, as Postfix's
 * dict_pgsql (pgsql_table(5)). The file names `hosts` (`unix:/socket/dir`,
 * `inet:host:port`, `host:port`, `host`, `postgresql://` URIs; default
 * "localhost", port 5432), `user`, `password`, `dbname`, `query` (or the
 * legacy `select_function`, or select_field/table/where_field/
 * additional_conditions), `result_format`, `domain` and `expansion_limit`
 * (sql_config.ts). Every column of every row counts; values are joined
 * with ","; a NULL column is skipped with Postfix's "empty lookup result"
 * warning.
 *
 * The driver is the npm package `postgres` (postgres.js), imported only
 * when a table of this type is opened; the grants name it (npm), so that
 * proxymap, the only daemon that opens such tables, runs with the import
 * map and the npm cache (lib/permissions) and every other daemon with
 * `--no-npm`. One connection at a time per table (HostPool);
 * any connect or query failure is DictError "retry". In a sandbox the
 * driver needs env access to PGAPPNAME and PGTARGETSESSIONATTRS (it reads
 * them whatever it is given) and, for a UNIX socket, net "unix:path"
 * besides read and write; the grants say so.
 *
 * Difference from Postfix 3.7: the connection's client encoding is UTF8
 * (Postfix sets LATIN1, so its UTF-8 keys do not match UTF-8 text and
 * non-Latin-1 results fail); keys are quoted as PQescapeStringConn does
 * for the server's standard_conforming_strings.
 *
 * @module
 */
import type { DictBackend, DictOpener } from "./dict.ts";
import {
  cfStr,
  driverError,
  HostPool,
  loadCf,
  loadDriver,
  parseHosts,
  quotePgsql,
  serverDict,
  serverGrants,
  type SqlConnection,
  type SqlHost,
  sqlTableSpec,
} from "./sql_config.ts";

/** The driver, by its name in deno.json "imports" (which pins its version). */
export const PGSQL_DRIVER = "postgres";

/** PostgreSQL's default port. */
export const PGSQL_PORT = 5432;

/** The UNIX socket of a `unix:` host: libpq takes a directory. */
function socketPath(h: SqlHost & { kind: "unix" }): string {
  return h.path.endsWith(".s.PGSQL." + h.port) ? h.path : `${h.path}/.s.PGSQL.${h.port}`;
}

/** Opens `pgsql:/path/to/file.cf`. */
export const openPgsql: DictOpener = async (name, opts) => {
  const cf = await loadCf("pgsql", name, Deno.readTextFile, opts.warn);
  const user = cfStr(cf, "pgsql", "user", "");
  const password = cfStr(cf, "pgsql", "password", "");
  const dbname = cfStr(cf, "pgsql", "dbname", "", 1);
  const hosts = parseHosts(cf, "pgsql", PGSQL_PORT, { urls: true });
  const spec = await sqlTableSpec(cf, "pgsql", {
    fold: opts.fold,
    warn: opts.warn,
    quote: quotePgsql,
    selectFunction: true,
  });
  const where = `pgsql:${cf.path}`;
  const connect = async (h: SqlHost): Promise<SqlConnection> => {
    let postgres: typeof import("postgres");
    try {
      // Through a variable: a literal import() would put the npm driver in
      // the module graph of everything that imports lib/maps, and Deno
      // would then fetch every npm package of deno.lock for each command.
      postgres = (await loadDriver(PGSQL_DRIVER)).default;
    } catch (e) {
      throw driverError(where, "PostgreSQL", PGSQL_DRIVER, e);
    }
    // Every option given, so that postgres.js reads no PG* environment
    // variable (a daemon's sandbox has no env access); ssl "prefer" is
    // libpq's default, as Postfix gets it.
    const common = {
      max: 1,
      ssl: "prefer",
      sslnegotiation: null,
      idle_timeout: 0,
      connect_timeout: 30,
      max_lifetime: null,
      max_pipeline: 100,
      keep_alive: 60,
      prepare: false,
      debug: false,
      fetch_types: false,
      publications: "alltables",
      target_session_attrs: undefined,
      backoff: () => 0,
      onnotice: () => {},
    };
    type Options = NonNullable<Parameters<typeof postgres>[1]>;
    const sql = h.kind === "url" ? postgres(h.url, common as Options) : postgres({
      ...common,
      // host and port with path too, or postgres.js reads PGHOST and PGPORT.
      ...(h.kind === "unix"
        ? { path: socketPath(h), host: "localhost", port: h.port }
        : { host: h.host, port: h.port }),
      database: dbname,
      username: user,
      password,
    } as Options);
    try {
      await sql.unsafe("SELECT 1");
    } catch (e) {
      await sql.end({ timeout: 0 }).catch(() => {});
      throw e;
    }
    return {
      quote: (s) => quotePgsql(s, sql.parameters.standard_conforming_strings !== "off"),
      run: async (query) => {
        const rows = await sql.unsafe(query, [], { prepare: false }).raw();
        const dec = new TextDecoder();
        return (rows as unknown as (Uint8Array | null)[][]).map((r) =>
          Array.from(r, (v) => (v === null ? "" : dec.decode(v)))
        );
      },
      close: () => sql.end({ timeout: 0 }),
    };
  };
  return serverDict("pgsql", name, spec, new HostPool(where, hosts, connect));
};

/**
 * `pgsql:` backend: the .cf file, each server's host:port or socket, the
 * domain list's files, and the npm driver.
 */
export const pgsqlBackend: DictBackend = {
  open: openPgsql,
  grants: (name, ctx) =>
    serverGrants(
      "pgsql",
      name,
      ctx,
      (cf) =>
        parseHosts(cf, "pgsql", PGSQL_PORT, { urls: true }).map((h) =>
          h.kind === "unix" ? { socket: socketPath(h) } : h
        ),
      // postgres.js reads these two whatever options it is given.
      { npm: PGSQL_DRIVER, env: ["PGAPPNAME", "PGTARGETSESSIONATTRS"] },
    ),
};
