/**
 * Differential test of the SQL tables: for sqlite, pgsql and mysql, the
 * same tables and the same configuration files are queried by a real
 * Postfix (`postmap -c <dir> -q - type:/path.cf < keys`) and by
 * Postwarden, key by key. The keys include the hard cases: case folding,
 * quotes, backslashes, "%", SQL injection attempts, UTF-8, several rows
 * and columns per key, NULL and empty values, the domain filter (with a
 * table in it), %u/%d/%1.. queries, result_format and the legacy query
 * parameters; expansion_limit is compared as an error on both sides.
 *
 * Servers: scripts/start-db-peers.sh (PostgreSQL and MariaDB, database and
 * user postwarden_test). A missing server or Postfix map type skips the
 * backend loudly, and fails it under CI=true.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { openDict } from "../../lib/maps/mod.ts";
import { HOSTILE_KEYS } from "../../lib/maps/testdata/hostile_keys.ts";
import { assertEquals } from "../helpers/assert.ts";
import { havePeer, missingPeer, run } from "../helpers/peers.ts";
import { connectMysql, connectPgsql, TEST_DB } from "../helpers/sql_peers.ts";

const { name: DB, user: USER, password: PASSWORD } = TEST_DB;
const POSTMAP = "/usr/sbin/postmap";

/** A result as both sides report it. */
type Result = string | { error: true };
const NOT_FOUND = "(not found)";

/** Rows of the test tables. */
const ALIASES: [string, string | null][] = [
  ...Array.from({ length: 40 }, (_, i) => [`user${i}@example.com`, `dest${i}@example.net`]) as [
    string,
    string,
  ][],
  ["upper@example.com", "FromLower"],
  ["MiXeD@example.com", "mixed-stored"],
  ["o'brien@example.com", "quote-ok"],
  ["back\\slash@example.com", "backslash-ok"],
  ['dq"uote@example.com', "dq-ok"],
  ["pct%s@example.com", "pct-ok"],
  ["100%@example.com", "percent-ok"],
  ["café@example.com", "utf8 value é"],
  ["ascii@example.com", "ünïcödé"],
  ["multi@example.com", "a@x.example"],
  ["multi@example.com", "b@y.example"],
  ["multi@example.com", "c@z.example"],
  ["nullval@example.com", null],
  ["nullval@example.com", "after-null"],
  ["empty@example.com", ""],
  ["comma@example.com", "x, y"],
  ["postmaster", "root"],
  ["@example.com", "catchall"],
  ["example.com", "parts-ok"],
  ["mail", "third-label"],
  ["under_score@example.com", "underscore-ok"],
  ["semi;colon@example.com", "semicolon-ok"],
];

const USERS: [string, string, string][] = [
  ["alice", "example.com", "alice@mbox.example"],
  ["bob", "example.net", "bob@mbox.example"],
  ["carol", "example.org", "carol@mbox.example"],
  ["dave", "other.test", "dave@mbox.example"],
  ["o'neil", "example.com", "oneil@mbox.example"],
  ["é", "example.com", "eacute@mbox.example"],
  ["bob", "example.com", "bob2@mbox.example"],
];

const MULTI: [string, string | null, string | null][] = [
  ["two@example.com", "one@a.example", "two@b.example"],
  ["two@example.com", null, "three@c.example"],
  ["nodomain@example.com", "plain", "x@d.example"],
  ["atfirst@example.com", "@e.example", "ok@f.example"],
];

const KEYS = [
  ...Array.from({ length: 42 }, (_, i) => `user${i}@example.com`),
  "USER1@EXAMPLE.COM",
  "Upper@Example.com",
  "mixed@example.com",
  "MiXeD@example.com",
  "o'brien@example.com",
  "back\\slash@example.com",
  'dq"uote@example.com',
  "pct%s@example.com",
  "100%@example.com",
  "%s",
  "%%",
  "café@example.com",
  "CAFÉ@example.com",
  "ascii@example.com",
  "multi@example.com",
  "nullval@example.com",
  "empty@example.com",
  "comma@example.com",
  "postmaster",
  "@example.com",
  "x' OR '1'='1",
  "x' OR 1=1 -- ",
  "x\\' OR 1=1 -- ",
  "\\",
  "'",
  '"',
  "';DROP TABLE pw_aliases;--",
  "under%score@example.com",
  "under_score@example.com",
  "semi;colon@example.com",
  "alice@example.com",
  "ALICE@Example.COM",
  "bob@example.net",
  "bob@example.com",
  "carol@example.org",
  "dave@other.test",
  "alice",
  "o'neil@example.com",
  "é@example.com",
  "x@mail.example.com",
  "x@sub.mail.example.com",
  "x@com",
  "x@example..com",
  "@mail.example.com",
  "two@example.com",
  "nodomain@example.com",
  "atfirst@example.com",
  "user@",
];

interface Backend {
  type: "sqlite" | "pgsql" | "mysql";
  /** Connection lines of the .cf files. */
  connection: string;
  /** Other connection lines (UNIX socket, a dead server first), tried with the basic query. */
  otherConnections?: Record<string, string>;
  /** Query lines only this database has (functions, procedures), and the keys to try (default all). */
  extraConfigs?: Record<string, { lines: string; keys?: string[] }>;
  /** SQL string concatenation of two expressions. */
  concat: (a: string, b: string) => string;
  /** Loads the tables. */
  load(): Promise<void>;
  /** Values of pw_hostile rows whose k equals key, by a bound-parameter query (the truth). */
  truth(key: string): Promise<string[]>;
  close(): Promise<void>;
}

/** The configuration files compared, by name: their query-related lines. */
function configs(b: Backend): Record<string, string> {
  return {
    basic: "query = SELECT v FROM pw_aliases WHERE k='%s'",
    userdomain: [
      "query = SELECT dest FROM pw_users WHERE localpart='%u' AND domain='%d'",
      "domain = example.com, !other.test, example.net inline:{example.org=yes}",
    ].join("\n"),
    parts: [
      "query = SELECT v FROM pw_aliases WHERE k='%2.%1' OR k='%3'",
      "result_format = relay:[%s]:%U/%D/%1/%S%%",
    ].join("\n"),
    multi: [
      "query = SELECT v1, v2 FROM pw_multi WHERE k='%s'",
      "result_format = <%u at %d via %U>",
    ].join("\n"),
    multiplain: "query = SELECT v1, v2 FROM pw_multi WHERE k='%s'",
    legacy: [
      "table = pw_aliases",
      "select_field = v",
      "where_field = k",
      "additional_conditions = AND v <> 'root'",
    ].join("\n"),
    like: `query = SELECT v FROM pw_aliases WHERE k LIKE ${b.concat("'%s'", "''")}`,
  };
}

async function postmap(type: string, cf: string, keys: string[]) {
  return await run(POSTMAP, ["-c", "/tmp/pfc-sql", "-q", "-", `${type}:${cf}`], {
    stdin: keys.join("\n") + "\n",
  });
}

/**
 * Postfix's answers: all keys in one `postmap -q -`; when that stops at a
 * lookup error (postmap exits at the first one), key by key.
 */
async function postfixQueries(type: string, cf: string, keys: string[]): Promise<Result[]> {
  const all = await postmap(type, cf, keys);
  if (all.code === 0) {
    const found = new Map<string, string>();
    for (const line of all.stdout.split("\n")) {
      const tab = line.indexOf("\t");
      if (tab > 0) found.set(line.slice(0, tab), line.slice(tab + 1));
    }
    return keys.map((k) => found.get(k) ?? NOT_FOUND);
  }
  const out: Result[] = [];
  for (const k of keys) {
    const one = await postmap(type, cf, [k]);
    if (/fatal:/.test(one.stderr)) out.push({ error: true });
    else {out.push(
        one.stdout === "" ? NOT_FOUND : one.stdout.slice(one.stdout.indexOf("\t") + 1, -1),
      );}
  }
  return out;
}

/** Ours, key by key; becomes `postmap -q -` once commands/postmap.ts lands (one line). */
async function ourBatch(type: string, cf: string, keys: string[]): Promise<Result[]> {
  const dict = await openDict(`${type}:${cf}`, { warn: () => {} });
  try {
    const out: Result[] = [];
    for (const k of keys) {
      try {
        out.push((await dict.lookup(k)) ?? NOT_FOUND);
      } catch {
        out.push({ error: true });
      }
    }
    return out;
  } finally {
    await dict.close();
  }
}

/**
 * Ours as Postfix's were found: one table for all keys; after an error,
 * a fresh table per key, since a failed query leaves the server alone for
 * a minute in both (Postfix's answers then come from one postmap per key).
 */
async function ourQueries(type: string, cf: string, keys: string[]): Promise<Result[]> {
  const all = await ourBatch(type, cf, keys);
  if (!all.some((r) => typeof r !== "string")) return all;
  const out: Result[] = [];
  for (const k of keys) out.push(...await ourBatch(type, cf, [k]));
  return out;
}

/**
 * Keys where Postwarden answers differently on purpose, with the reason.
 * Postfix 3.7's pgsql client sets client_encoding LATIN1: a UTF-8 key is
 * sent as Latin-1 text (finds nothing) and a non-ASCII value comes back as
 * Latin-1 bytes (a lookup error); Postwarden talks UTF8 to the server.
 */
function expectedDifferences(type: string, config: string): Map<string, string> {
  if (type !== "pgsql") return new Map();
  const latin1 = "Postfix's pgsql client uses client_encoding LATIN1";
  const keys = ["café@example.com", "CAFÉ@example.com", "ascii@example.com", "é@example.com"];
  if (config === "like") keys.push("%%");
  return new Map(keys.map((k) => [k, latin1]));
}

/**
 * Writes a .cf file dated a minute back: Postfix rereads a file changed
 * within the last second until it is "cool", a pause per postmap run.
 */
async function writeCf(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text);
  const past = new Date(Date.now() - 60_000);
  await Deno.utime(path, past, past);
}

async function compareBackend(t: Deno.TestContext, b: Backend, dir: string): Promise<void> {
  await b.load();
  try {
    const all: [string, { lines: string; keys?: string[] }][] = Object.entries(configs(b)).map((
      [name, lines],
    ) => [name, { lines }]);
    for (const [name, { lines, keys: only }] of [...all, ...Object.entries(b.extraConfigs ?? {})]) {
      await t.step(`${b.type}: ${name}`, async () => {
        const cf = `${dir}/${b.type}-${name.replace(/\W+/g, "_")}.cf`;
        await writeCf(cf, `# ${name}\n${b.connection}\n${lines}\n`);
        const skip = expectedDifferences(b.type, name);
        // Known differences stay out of the batch (an error would stop postmap).
        const keys = (only ?? KEYS).filter((k) => !skip.has(k));
        const theirs = await postfixQueries(b.type, cf, keys);
        const ours = await ourQueries(b.type, cf, keys);
        const diffs: string[] = [];
        let found = 0;
        keys.forEach((k, i) => {
          if (theirs[i] !== NOT_FOUND) found++;
          if (JSON.stringify(theirs[i]) !== JSON.stringify(ours[i])) {
            diffs.push(
              `${JSON.stringify(k)}: postfix ${JSON.stringify(theirs[i])}, ours ${
                JSON.stringify(ours[i])
              }`,
            );
          }
        });
        assertEquals(diffs, [], `${b.type} ${name}: differences`);
        // The comparison means something only if Postfix found things.
        if (name === "basic") assertEquals(found >= 40, true, `postfix found only ${found}`);
      });
    }
    for (const [name, connection] of Object.entries(b.otherConnections ?? {})) {
      await t.step(`${b.type}: ${name}`, async () => {
        const cf = `${dir}/${b.type}-${name.replace(/\W+/g, "_")}.cf`;
        await writeCf(cf, `${connection}\nquery = SELECT v FROM pw_aliases WHERE k='%s'\n`);
        const keys = KEYS.filter((k) => !expectedDifferences(b.type, "basic").has(k));
        const theirs = await postfixQueries(b.type, cf, keys);
        assertEquals(await ourQueries(b.type, cf, keys), theirs);
        assertEquals(theirs.filter((r) => r !== NOT_FOUND).length >= 40, true);
      });
    }
    await t.step(`${b.type}: hostile keys mean what a bound parameter means`, async () => {
      const cf = `${dir}/${b.type}-hostile.cf`;
      await writeCf(
        cf,
        `${b.connection}\nquery = SELECT v FROM pw_hostile WHERE k='%s'\n`,
      );
      const dict = await openDict(`${b.type}:${cf}`, { fold: false, warn: () => {} });
      try {
        for (const k of [...HOSTILE_KEYS, ...HOSTILE_KEYS.map((k) => `${k}x`)]) {
          const want = (await b.truth(k)).join(",") || undefined;
          assertEquals(await dict.lookup(k), want, JSON.stringify(k));
        }
      } finally {
        await dict.close();
      }
    });
    await t.step(`${b.type}: expansion_limit is an error on both sides`, async () => {
      const cf = `${dir}/${b.type}-limit.cf`;
      await writeCf(
        cf,
        `${b.connection}\nquery = SELECT v FROM pw_aliases WHERE k='%s'\nexpansion_limit = 2\n`,
      );
      for (const key of ["multi@example.com", "user1@example.com"]) {
        const theirs = await postfixQueries(b.type, cf, [key]);
        const ours = await ourQueries(b.type, cf, [key]);
        assertEquals(ours, theirs, key);
      }
    });
  } finally {
    await b.close();
  }
}

function sqliteBackend(dir: string): Backend {
  const path = `${dir}/maps.sqlite`;
  return {
    type: "sqlite",
    connection: `dbpath = ${path}`,
    concat: (a: string, b: string) => `${a} || ${b}`,
    load() {
      const db = new DatabaseSync(path);
      db.exec(`CREATE TABLE pw_aliases (k TEXT, v TEXT);
        CREATE TABLE pw_users (localpart TEXT, domain TEXT, dest TEXT);
        CREATE TABLE pw_multi (k TEXT, v1 TEXT, v2 TEXT);`);
      const a = db.prepare("INSERT INTO pw_aliases VALUES (?, ?)");
      for (const r of ALIASES) a.run(...r);
      const u = db.prepare("INSERT INTO pw_users VALUES (?, ?, ?)");
      for (const r of USERS) u.run(...r);
      const m = db.prepare("INSERT INTO pw_multi VALUES (?, ?, ?)");
      for (const r of MULTI) m.run(...r);
      db.exec("CREATE TABLE pw_hostile (k TEXT, v TEXT)");
      const h = db.prepare("INSERT INTO pw_hostile VALUES (?, ?)");
      HOSTILE_KEYS.forEach((k, i) => h.run(k, `hostile${i}`));
      db.close();
      return Promise.resolve();
    },
    truth(key) {
      const db = new DatabaseSync(path, { readOnly: true });
      const rows = db.prepare("SELECT v FROM pw_hostile WHERE k = ?").all(key) as { v: string }[];
      db.close();
      return Promise.resolve(rows.map((r) => r.v));
    },
    close: () => Promise.resolve(),
  };
}

async function pgsqlBackend(): Promise<Backend | string> {
  const sql = await connectPgsql();
  if (typeof sql === "string") return sql;
  return {
    type: "pgsql",
    connection: `hosts = 127.0.0.1\nuser = ${USER}\npassword = ${PASSWORD}\ndbname = ${DB}`,
    otherConnections: {
      "unix socket": `hosts = unix:/var/run/postgresql\nuser = ${USER}\npassword = ${PASSWORD}\n` +
        `dbname = ${DB}`,
      "a dead server and a live one": `hosts = inet:127.0.0.1:1, 127.0.0.1:5432\nuser = ${USER}\n` +
        `password = ${PASSWORD}\ndbname = ${DB}`,
      "a postgresql:// URI": `hosts = postgresql://${USER}:${PASSWORD}@127.0.0.1:5432/${DB}\n` +
        `dbname = ${DB}`,
    },
    extraConfigs: {
      // One row, NULL when nothing matches: Postfix's "empty lookup result".
      "legacy select_function": { lines: "select_function = pw_fn" },
    },
    concat: (a: string, b: string) => `${a} || ${b}`,
    async load() {
      await sql.unsafe(`DROP TABLE IF EXISTS pw_aliases, pw_users, pw_multi;
        CREATE TABLE pw_aliases (k TEXT, v TEXT);
        CREATE TABLE pw_users (localpart TEXT, domain TEXT, dest TEXT);
        CREATE TABLE pw_multi (k TEXT, v1 TEXT, v2 TEXT);`);
      for (const r of ALIASES) await sql`INSERT INTO pw_aliases VALUES (${r[0]}, ${r[1]})`;
      for (const r of USERS) await sql`INSERT INTO pw_users VALUES (${r[0]}, ${r[1]}, ${r[2]})`;
      for (const r of MULTI) await sql`INSERT INTO pw_multi VALUES (${r[0]}, ${r[1]}, ${r[2]})`;
      await sql.unsafe("DROP TABLE IF EXISTS pw_hostile; CREATE TABLE pw_hostile (k TEXT, v TEXT)");
      await sql.unsafe(`CREATE OR REPLACE FUNCTION pw_fn(text) RETURNS text LANGUAGE sql AS
        'SELECT v FROM pw_aliases WHERE k = $1 ORDER BY v LIMIT 1'`);
      for (const [i, k] of HOSTILE_KEYS.entries()) {
        await sql`INSERT INTO pw_hostile VALUES (${k}, ${`hostile${i}`})`;
      }
    },
    async truth(key) {
      const rows = await sql`SELECT v FROM pw_hostile WHERE k = ${key}`;
      return rows.map((r) => r.v as string);
    },
    close: () => sql.end({ timeout: 1 }),
  };
}

async function mysqlBackend(): Promise<Backend | string> {
  const c = await connectMysql({ charset: "UTF8MB4_GENERAL_CI" });
  if (typeof c === "string") return c;
  return {
    type: "mysql",
    connection: `hosts = 127.0.0.1\nuser = ${USER}\npassword = ${PASSWORD}\ndbname = ${DB}`,
    otherConnections: {
      "localhost is the UNIX socket": `hosts = localhost\nuser = ${USER}\n` +
        `password = ${PASSWORD}\ndbname = ${DB}`,
      "a dead server and a live one": `hosts = inet:127.0.0.1:1, 127.0.0.1:3306\nuser = ${USER}\n` +
        `password = ${PASSWORD}\ndbname = ${DB}`,
    },
    extraConfigs: {
      "stored procedure": { lines: "query = CALL pw_lookup('%s')" },
      // Each lookup is an error: postmap stops at the first, a second each.
      "no result set (an error)": { lines: "query = DO '%s'", keys: KEYS.slice(0, 3) },
      "no result set, require_result_set = no": {
        lines: "query = DO '%s'\nrequire_result_set = no",
      },
    },
    concat: (a: string, b: string) => `CONCAT(${a}, ${b})`,
    async load() {
      await c.query("DROP TABLE IF EXISTS pw_aliases, pw_users, pw_multi");
      await c.query("CREATE TABLE pw_aliases (k VARCHAR(255), v VARCHAR(255))");
      await c.query(
        "CREATE TABLE pw_users (localpart VARCHAR(255), domain VARCHAR(255), " +
          "dest VARCHAR(255))",
      );
      await c.query("CREATE TABLE pw_multi (k VARCHAR(255), v1 VARCHAR(255), v2 VARCHAR(255))");
      for (const r of ALIASES) await c.query("INSERT INTO pw_aliases VALUES (?, ?)", r);
      for (const r of USERS) await c.query("INSERT INTO pw_users VALUES (?, ?, ?)", r);
      for (const r of MULTI) await c.query("INSERT INTO pw_multi VALUES (?, ?, ?)", r);
      await c.query("DROP PROCEDURE IF EXISTS pw_lookup");
      await c.query(
        "CREATE PROCEDURE pw_lookup(IN p VARCHAR(255)) READS SQL DATA SQL SECURITY INVOKER " +
          "SELECT v FROM pw_aliases WHERE k = p",
      );
      await c.query("DROP TABLE IF EXISTS pw_hostile");
      await c.query("CREATE TABLE pw_hostile (k VARCHAR(255), v VARCHAR(255))");
      for (const [i, k] of HOSTILE_KEYS.entries()) {
        await c.query("INSERT INTO pw_hostile VALUES (?, ?)", [k, `hostile${i}`]);
      }
    },
    async truth(key) {
      const [rows] = await c.query("SELECT v FROM pw_hostile WHERE k = ?", [key]);
      return (rows as { v: string }[]).map((r) => r.v);
    },
    close: () => c.end(),
  };
}

/** True when `postconf -m` lists the map type; skips loudly or fails under CI. */
async function postfixHas(type: string): Promise<boolean> {
  const out = await run("/usr/sbin/postconf", ["-c", "/tmp/pfc-sql", "-m"]);
  if (out.stdout.split("\n").includes(type)) return true;
  return missingPeer(`Postfix has no ${type}: map type (install postfix-${type})`);
}

Deno.test("SQL tables answer as Postfix's postmap -q does", async (t) => {
  if (!havePeer(POSTMAP)) return;
  await Deno.mkdir("/tmp/pfc-sql", { recursive: true });
  await Deno.writeTextFile("/tmp/pfc-sql/main.cf", "compatibility_level = 3.6\n");
  const dir = await Deno.makeTempDir({ prefix: "pw-sql-" });
  try {
    for (const make of [() => Promise.resolve(sqliteBackend(dir)), pgsqlBackend, mysqlBackend]) {
      const b = await make();
      if (typeof b === "string") {
        missingPeer(`${b} is not running (run scripts/start-db-peers.sh)`);
        continue;
      }
      if (!(await postfixHas(b.type))) {
        await b.close();
        continue;
      }
      await compareBackend(t, b, dir);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
