/**
 * `mysql:/etc/postfix/file.cf`: lookups in MySQL or MariaDB, as Postfix's
 * dict_mysql (mysql_table(5)). The file names `hosts` (`unix:/socket`,
 * `inet:host:port`, `host:port`, `host`; default "localhost", which as in
 * libmysqlclient means the UNIX socket /run/mysqld/mysqld.sock; port
 * 3306), `user`, `password`, `dbname`, `query` (or the legacy
 * select_field/table/where_field/additional_conditions), `result_format`,
 * `domain`, `expansion_limit` and `require_result_set` (sql_config.ts).
 * Every column of every row counts, NULL columns are skipped, values are
 * joined with ",". A stored procedure (`CALL`) may return one result set.
 *
 * The driver is the npm package `mysql2`, imported only when a table of
 * this type is opened; the grants name it (npm), so that only proxymap
 * runs with npm allowed (lib/permissions), and only then. Keys are
 * quoted as mysql_real_escape_string, following the session's
 * NO_BACKSLASH_ESCAPES mode.
 *
 * Not supported (a clear error when set): `option_file`, a non-default
 * `option_group` and the `tls_*` settings; Postwarden does not read
 * my.cnf (Postfix reads its [client] group), and talks utf8mb4.
 *
 * @module
 */
import { type DictBackend, DictError, type DictOpener } from "./dict.ts";
import {
  cfBool,
  cfStr,
  driverError,
  HostPool,
  loadCf,
  loadDriver,
  parseHosts,
  quoteMysql,
  refuseParams,
  serverDict,
  serverGrants,
  type SqlConnection,
  type SqlHost,
  sqlTableSpec,
} from "./sql_config.ts";

/** The driver, by its name in deno.json "imports" (which pins its version). */
export const MYSQL_DRIVER = "mysql2/promise";

/** MySQL's default port. */
export const MYSQL_PORT = 3306;
/** Where "localhost" connects: Debian's MariaDB/MySQL socket. */
export const MYSQL_DEFAULT_SOCKET = "/run/mysqld/mysqld.sock";

const UNSUPPORTED = [
  "option_file",
  "tls_cert_file",
  "tls_key_file",
  "tls_CAfile",
  "tls_CApath",
  "tls_ciphers",
  "tls_verify_cert",
];

/** Hosts with "localhost" turned into the default socket, as libmysqlclient. */
function mysqlHosts(cf: Parameters<typeof parseHosts>[0]): SqlHost[] {
  return parseHosts(cf, "mysql", MYSQL_PORT).map((h) =>
    h.kind === "inet" && h.host.toLowerCase() === "localhost"
      ? { kind: "unix", path: MYSQL_DEFAULT_SOCKET, port: h.port, text: h.text }
      : h
  );
}

/** Opens `mysql:/path/to/file.cf`. */
export const openMysql: DictOpener = async (name, opts) => {
  const cf = await loadCf("mysql", name, Deno.readTextFile, opts.warn);
  refuseParams(cf, "mysql", UNSUPPORTED);
  const group = cf.params.get("option_group");
  if (group !== undefined && group !== "" && group !== "client") {
    refuseParams(cf, "mysql", ["option_group"]);
  }
  const user = cfStr(cf, "mysql", "user", "");
  const password = cfStr(cf, "mysql", "password", "");
  const dbname = cfStr(cf, "mysql", "dbname", "", 1);
  const requireResultSet = cfBool(cf, "mysql", "require_result_set", true);
  const hosts = mysqlHosts(cf);
  const spec = await sqlTableSpec(cf, "mysql", {
    fold: opts.fold,
    warn: opts.warn,
    quote: quoteMysql,
  });
  const where = `mysql:${cf.path}`;
  const connect = async (h: SqlHost): Promise<SqlConnection> => {
    let mysql: typeof import("mysql2/promise");
    try {
      // Through a variable, as map_pgsql.ts explains.
      mysql = (await loadDriver(MYSQL_DRIVER)).default;
    } catch (e) {
      throw driverError(where, "MySQL", MYSQL_DRIVER, e);
    }
    const conn = await mysql.createConnection({
      ...(h.kind === "unix" ? { socketPath: h.path } : {
        host: h.kind === "url" ? h.host : h.host,
        port: h.port,
      }),
      user,
      password,
      database: dbname,
      charset: "UTF8MB4_GENERAL_CI",
      connectTimeout: 30_000,
      multipleStatements: false,
      rowsAsArray: true,
      // Values as the server sends them in text form, as libmysqlclient's.
      typeCast: (field) => field.string("utf8"),
    });
    conn.on("error", () => {});
    let noBackslash = false;
    try {
      const [modes] = await conn.query("SELECT @@SESSION.sql_mode");
      noBackslash = /NO_BACKSLASH_ESCAPES/.test(String((modes as unknown[][])[0]?.[0] ?? ""));
    } catch (e) {
      conn.destroy();
      throw e;
    }
    return {
      quote: (s) => quoteMysql(s, noBackslash),
      run: async (query) => {
        const [rows, fields] = await conn.query(query);
        let sets: unknown[][] = [];
        if (fields === undefined || !Array.isArray(rows)) sets = [];
        else if (Array.isArray(fields[0]) || (fields.length > 0 && fields[0] === undefined)) {
          // CALL: one entry per statement, result sets are the arrays.
          sets = (rows as unknown[]).filter((r) => Array.isArray(r)) as unknown[][];
        } else sets = [rows as unknown[]];
        if (sets.length > 1) {
          throw new DictError(`${where}: query returned multiple result sets`, "retry");
        }
        if (sets.length === 0) {
          if (requireResultSet) {
            throw new DictError(`${where}: query returned no result set`, "retry");
          }
          return [];
        }
        return (sets[0] as (string | null)[][]).map((r) => r.map((v) => v ?? null));
      },
      close: async () => {
        await conn.end().catch(() => conn.destroy());
      },
    };
  };
  return serverDict("mysql", name, spec, new HostPool(where, hosts, connect));
};

/**
 * `mysql:` backend: the .cf file, each server's host:port or socket, the
 * domain list's files, and the npm driver.
 */
export const mysqlBackend: DictBackend = {
  open: openMysql,
  grants: (name, ctx) =>
    serverGrants(
      "mysql",
      name,
      ctx,
      (cf) => mysqlHosts(cf).map((h) => h.kind === "unix" ? { socket: h.path } : h),
      { npm: MYSQL_DRIVER },
    ),
};
