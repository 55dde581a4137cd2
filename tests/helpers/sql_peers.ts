/**
 * The test databases scripts/start-db-peers.sh creates (PostgreSQL and
 * MariaDB on 127.0.0.1, database and user `postwarden_test`), and one
 * connection to each for tests and benchmarks that fill tables. A server
 * that does not answer gives a reason string instead of a connection, for
 * the caller's loud skip (or failure under CI=true).
 */

/** Database, user and password, as start-db-peers.sh creates them. */
export const TEST_DB = {
  name: "postwarden_test",
  user: "postwarden_test",
  password: "postwarden-test-pw",
} as const;

/** A PostgreSQL client (postgres.js). */
export type PgsqlClient = ReturnType<typeof import("postgres")>;
/** A MariaDB connection (mysql2). */
export type MysqlClient = Awaited<ReturnType<typeof import("mysql2/promise").createConnection>>;

/** A client of the test database on 127.0.0.1:5432, or why there is none. */
export async function connectPgsql(): Promise<PgsqlClient | string> {
  const postgres = (await import("postgres")).default;
  const sql = postgres({
    host: "127.0.0.1",
    port: 5432,
    database: TEST_DB.name,
    username: TEST_DB.user,
    password: TEST_DB.password,
    onnotice: () => {},
    connect_timeout: 5,
    max: 1,
  });
  try {
    await sql`SELECT 1`;
    return sql;
  } catch (e) {
    await sql.end({ timeout: 0 });
    return `PostgreSQL at 127.0.0.1:5432 (${(e as Error).message})`;
  }
}

/** A connection to the test database on 127.0.0.1:3306, or why there is none. */
export async function connectMysql(opts: { charset?: string } = {}): Promise<MysqlClient | string> {
  const mysql = (await import("mysql2/promise")).default;
  try {
    return await mysql.createConnection({
      host: "127.0.0.1",
      port: 3306,
      user: TEST_DB.user,
      password: TEST_DB.password,
      database: TEST_DB.name,
      connectTimeout: 5000,
      ...(opts.charset ? { charset: opts.charset } : {}),
    });
  } catch (e) {
    return `MariaDB at 127.0.0.1:3306 (${(e as Error).message})`;
  }
}
