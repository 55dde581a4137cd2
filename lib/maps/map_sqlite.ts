/**
 * `sqlite:/etc/postfix/file.cf`: lookups in an SQLite database, as
 * Postfix's dict_sqlite (sqlite_table(5)). The file names `dbpath`, `query`
 * (or the legacy select_field/table/where_field/additional_conditions),
 * `result_format`, `domain` and `expansion_limit`; see sql_config.ts for
 * what they mean. The database is opened read-only through Deno's built-in
 * `node:sqlite` (no npm package), loaded only when a table is opened.
 *
 * As Postfix, only the first column of each result row is used; rows are
 * joined with ",". A query the database cannot prepare (bad SQL, missing
 * table) is a configuration error; a failure while stepping is "retry".
 * Differences: a missing database file is an error at open (Postfix's
 * sqlite3_open would create an empty one and then fail each query), and a
 * REAL column is shown as JavaScript prints the number (1.0 reads "1").
 *
 * @module
 */
import { type DictBackend, DictError, type DictOpener } from "./dict.ts";
import { cfStr, loadCf, quoteSqlite, sqlLookup, sqlTableSpec } from "./sql_config.ts";

function text(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  return String(v);
}

/** Opens `sqlite:/path/to/file.cf`. */
export const openSqlite: DictOpener = async (name, opts) => {
  const cf = await loadCf("sqlite", name, Deno.readTextFile, opts.warn);
  const dbpath = cfStr(cf, "sqlite", "dbpath", "", 1);
  const spec = await sqlTableSpec(cf, "sqlite", {
    fold: opts.fold,
    warn: opts.warn,
    quote: quoteSqlite,
  });
  const where = `sqlite:${cf.path}`;
  const { DatabaseSync } = await import("node:sqlite");
  let db: InstanceType<typeof DatabaseSync>;
  try {
    // Postfix opens the file even when it is missing; read-only here, so
    // a missing file is said at once.
    Deno.statSync(dbpath);
    db = new DatabaseSync(dbpath, { readOnly: true });
  } catch (e) {
    await spec.domain?.close();
    throw new DictError(
      `${where}: Can't open database ${dbpath}: ${(e as Error).message}`,
      "config",
    );
  }
  return {
    type: "sqlite",
    name,
    pattern: false,
    lookup: (key) =>
      sqlLookup(spec, key, (query) => {
        const q = query(quoteSqlite);
        let stmt;
        try {
          stmt = db.prepare(q);
        } catch (e) {
          return Promise.reject(
            new DictError(`${where}: SQL prepare failed: ${(e as Error).message}`, "config"),
          );
        }
        try {
          // At run time in Deno 2.9 (Node 22.13+), missing from the bundled types.
          (stmt as unknown as { setReturnArrays(on: boolean): void }).setReturnArrays(true);
          const rows = stmt.all() as unknown as unknown[][];
          return Promise.resolve(rows.map((r) => [text(r[0])]));
        } catch (e) {
          return Promise.reject(
            new DictError(
              `${where}: SQL step failed for query '${q}': ${(e as Error).message}`,
              "retry",
            ),
          );
        }
      }),
    close: async () => {
      db.close();
      await spec.domain?.close();
    },
  };
};

/** `sqlite:` backend: reads the .cf file, the database file and the domain list's files. */
export const sqliteBackend: DictBackend = {
  open: openSqlite,
  grants: async (name, ctx) => {
    const cf = await loadCf("sqlite", name, (p) => ctx.readTextFile(p));
    const read = [cf.path];
    const dbpath = cf.params.get("dbpath");
    if (dbpath) read.push(dbpath);
    const { DomainList } = await import("./sql_config.ts");
    const domain = cf.params.get("domain");
    const g = domain ? await DomainList.grants(domain, ctx) : {};
    return { ...g, read: [...read, ...(g.read ?? [])] };
  },
};
