/**
 * SQL lookup tables through a whole instance: virtual_alias_maps =
 * pgsql:<cf> (then mysql:<cf>) maps alias@localhost to real@localhost,
 * mail sent over SMTP lands in real's Maildir. Only proxymap opens the
 * table: it alone runs with the npm drivers (from the daemons' DENO_DIR,
 * `--cached-only`) and may connect to the database, which `postwarden
 * audit` measures (smtpd and cleanup cannot connect or load the driver).
 * A database that does not answer gives a 4xx reply, never a bounce (its
 * .cf outside the config directory, which master must be able to read).
 *
 * Servers: scripts/start-db-peers.sh (PostgreSQL and MariaDB, database and
 * user postwarden_test). Without them the test skips loudly, and fails
 * under CI=true.
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { missingPeer } from "../helpers/peers.ts";
import { connectMysql, connectPgsql, TEST_DB } from "../helpers/sql_peers.ts";
import {
  auditSections,
  type Instance,
  maildirFiles,
  smtpSend,
  startInstance,
  waitUntil,
} from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";

const { name: DB, user: USER, password: PASSWORD } = TEST_DB;
const TABLE = "pw_it_virtual";
const opts = { sanitizeOps: false, sanitizeResources: false };

/** One database: how to reach it, fill the test table, and close. */
interface Db {
  type: "pgsql" | "mysql";
  port: number;
  /** `hosts` for the server's UNIX socket. */
  socket: string;
  fill(rows: [string, string][]): Promise<void>;
  close(): Promise<void>;
}

async function pgsql(): Promise<Db | string> {
  const sql = await connectPgsql();
  if (typeof sql === "string") return sql;
  return {
    type: "pgsql",
    port: 5432,
    socket: "unix:/var/run/postgresql",
    async fill(rows) {
      await sql.unsafe(`DROP TABLE IF EXISTS ${TABLE}; CREATE TABLE ${TABLE} (k TEXT, v TEXT)`);
      for (const [k, v] of rows) await sql`INSERT INTO ${sql(TABLE)} VALUES (${k}, ${v})`;
    },
    close: () => sql.end({ timeout: 1 }),
  };
}

async function mysql(): Promise<Db | string> {
  const c = await connectMysql();
  if (typeof c === "string") return c;
  return {
    type: "mysql",
    port: 3306,
    socket: "localhost", // /run/mysqld/mysqld.sock, as libmysqlclient
    async fill(rows) {
      await c.query(`DROP TABLE IF EXISTS ${TABLE}`);
      await c.query(`CREATE TABLE ${TABLE} (k VARCHAR(255), v VARCHAR(255))`);
      for (const r of rows) await c.query(`INSERT INTO ${TABLE} VALUES (?, ?)`, r);
    },
    close: () => c.end(),
  };
}

/** The database, or undefined after a loud skip (a failure under CI=true). */
async function database(make: () => Promise<Db | string>): Promise<Db | undefined> {
  const db = await make();
  if (typeof db !== "string") return db;
  missingPeer(`${db} is not running (run scripts/start-db-peers.sh)`);
  return undefined;
}

/** A table .cf (kept in the config directory, as /etc/postfix/*.cf). */
function tableCf(hosts: string): string {
  return `hosts = ${hosts}\nuser = ${USER}\npassword = ${PASSWORD}\ndbname = ${DB}\n` +
    `query = SELECT v FROM ${TABLE} WHERE k = '%s'\n`;
}

async function send(inst: Instance, to: string) {
  return await smtpSend(inst.port, {
    from: "sender@example.com",
    to: [to],
    body: `Subject: to ${to}\r\n\r\nhello\r\n`,
  });
}

/** `postwarden audit` output, by service: the lines under each service's heading. */
async function audit(inst: Instance): Promise<Map<string, string[]>> {
  const { sections, output } = await auditSections(inst);
  assert(sections.has("proxymap"), `audit lists proxymap:\n${output}`);
  return sections;
}

for (const make of [pgsql, mysql]) {
  Deno.test({
    name: `${make.name}: virtual_alias_maps through proxymap, end to end`,
    ...opts,
    fn: async (t) => {
      const db = await database(make);
      if (!db) return;
      const start = (hosts: string) =>
        startInstance({
          mainCf: `virtual_alias_maps = ${db.type}:$config_directory/virtual.cf`,
          confFiles: { "virtual.cf": tableCf(hosts) },
        });
      const delivered = async (i: Instance) => {
        const r = await send(i, "alias@localhost");
        assertEquals(r.code, 250, r.replies.join("\n"));
        await waitUntil(
          async () => (await maildirFiles(i.spool, "real")).length === 1,
          20_000,
          "delivery to real",
        );
        assertEquals(await maildirFiles(i.spool, "alias"), []);
        const text = await Deno.readTextFile((await maildirFiles(i.spool, "real"))[0]);
        assertStringIncludes(text, "Subject: to alias@localhost");
        // local(8) logs the delivery after the Maildir file exists.
        const delivery = /to=<real@localhost>, orig_to=<alias@localhost>/;
        assertMatch(await waitForLog(i, delivery, 10_000), delivery);
      };
      let inst: Instance | undefined;
      try {
        await db.fill([["alias@localhost", "real@localhost"]]);
        inst = await start(`127.0.0.1:${db.port}`);
        const i = inst;

        await t.step("alias@localhost is delivered to real's Maildir", () => delivered(i));

        await t.step("only proxymap loads the driver and reaches the database", async () => {
          const a = await audit(i);
          const server = `connect to table server 127.0.0.1:${db.port}`;
          const driver = `load the table driver ${db.type === "pgsql" ? "postgres" : "mysql2"}`;
          const line = (svc: string, what: string) =>
            (a.get(svc) ?? []).find((l) => l.includes(what)) ?? `(${svc}: no "${what}" line)`;
          assertMatch(line("proxymap", server), /^\s+can /);
          assertMatch(line("proxymap", driver), /^\s+can /);
          assertMatch(line("proxymap", "flags:"), / --cached-only /);
          for (const svc of ["smtpd", "cleanup", "qmgr", "local"]) {
            assertMatch(line(svc, server), /^\s+cannot /, svc);
            assertMatch(line(svc, driver), /^\s+cannot /, svc);
            assertMatch(line(svc, "flags:"), / --no-config --no-lock --no-remote --no-npm /);
          }
          assertMatch(line("proxymap", "import code from npm"), /^\s+cannot /);
        });
      } finally {
        await inst?.stop();
      }

      let sock: Instance | undefined;
      try {
        await t.step(`the same over the UNIX socket (hosts = ${db.socket})`, async () => {
          sock = await start(db.socket);
          await delivered(sock);
        });
      } finally {
        await sock?.stop();
      }

      let dead: Instance | undefined;
      let deadCfDir: string | undefined;
      try {
        await t.step("a database that does not answer is a 4xx, not a bounce", async () => {
          // Port 1: nothing listens, as when the database is stopped. The
          // .cf is outside the config directory this time: master reads it too.
          deadCfDir = await Deno.makeTempDir({ prefix: "pw-sql-cf-" });
          await Deno.chmod(deadCfDir, 0o755);
          await Deno.writeTextFile(`${deadCfDir}/virtual.cf`, tableCf("127.0.0.1:1"), {
            mode: 0o644,
          });
          dead = await startInstance({
            mainCf: `virtual_alias_maps = ${db.type}:${deadCfDir}/virtual.cf`,
          });
          const r = await send(dead, "alias@localhost");
          // Postfix: "451 4.3.0 Error: queue file write error" (cleanup's lookup failed).
          assertMatch(`${r.code} ${r.text}`, /^4\d\d /, r.replies.join("\n"));
          console.log(`  answer: ${r.code} ${r.text}`);
          const d = dead;
          // The log is written by master from the daemons' stderr: wait for the line.
          await waitForLog(d, /proxymap\[\d+\]: warning: .*127\.0\.0\.1:1/, 10_000);
          const log = await dead.log();
          assertEquals(/status=bounced/.test(log), false, log);
          assertEquals(await maildirFiles(dead.spool, "real"), []);
          assertEquals(await maildirFiles(dead.spool, "alias"), []);
        });
      } finally {
        await dead?.stop();
        if (deadCfDir) await Deno.remove(deadCfDir, { recursive: true });
        await db.close();
      }
    },
  });
}
