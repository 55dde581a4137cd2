import { assertEquals, assertRejects, assertThrows } from "../../tests/helpers/assert.ts";
import { DictError } from "./dict.ts";
import {
  cfQuery,
  DomainList,
  driverError,
  expandQuery,
  expandResult,
  hostOrder,
  HostPool,
  parseCf,
  parseHosts,
  parseTemplates,
  quoteMysql,
  quotePgsql,
  quoteSqlite,
  type SqlConnection,
  type SqlHost,
  sqlLookup,
  sqlTableSpec,
} from "./sql_config.ts";
import { openDict, tableGrants } from "./registry.ts";

const cf = (text: string) => parseCf("pgsql", "/etc/postfix/t.cf", text);
const id = (s: string) => s;

Deno.test("SQL table configuration", async (t) => {
  await t.step("name = value lines, comments, continuations, last wins with a warning", () => {
    const warnings: string[] = [];
    const c = parseCf(
      "mysql",
      "/x.cf",
      "# c\nuser = a\nquery = SELECT v\n  FROM t WHERE k='%s'\nuser = b\n",
      (w) => warnings.push(w),
    );
    assertEquals(c.params.get("query"), "SELECT v FROM t WHERE k='%s'");
    assertEquals(c.params.get("user"), "b");
    assertEquals(warnings, ["/x.cf, line 5: overriding earlier entry: user=a"]);
  });

  await t.step("a bad line is a config error naming the file and line", () => {
    const e = assertThrows(() => cf("user = a\nthis is wrong\n"), DictError);
    assertEquals(e.kind, "config");
    assertEquals(
      e.message,
      `pgsql:/etc/postfix/t.cf: /etc/postfix/t.cf, line 2: missing '=' after attribute name: "this is wrong"`,
    );
  });

  await t.step("main.cf-style names are refused clearly", async () => {
    const e = await assertRejects(() => openDict("pgsql:mypg"), DictError, "not supported");
    assertEquals(e.kind, "config");
  });

  await t.step("a missing file is a config error", async () => {
    const e = await assertRejects(() => openDict("sqlite:/nonexistent/x.cf"), DictError, "x.cf");
    assertEquals(e.kind, "config");
  });

  await t.step("legacy query parameters build Postfix's query", () => {
    const c = cf("table = t\nselect_field = v\nwhere_field = k\nadditional_conditions = AND x=1");
    assertEquals(cfQuery(c, "pgsql"), "SELECT v FROM t WHERE k='%s' AND x=1");
    assertEquals(
      cfQuery(cf("select_function = fn\ntable = t"), "pgsql", { selectFunction: true }),
      "SELECT fn('%s')",
    );
    assertThrows(() => cfQuery(cf("table = t"), "pgsql"), DictError, "select_field");
  });

  await t.step("templates: unknown % sequences are config errors", () => {
    assertThrows(() => parseTemplates("pgsql", "/x", "SELECT '%x'", "%s"), DictError, "%x");
    assertThrows(() => parseTemplates("pgsql", "/x", "SELECT '%s'", "a%"), DictError, "end");
  });

  await t.step("query expansion: %s %u %d %1.. %% and suppressed queries", () => {
    const q = "k='%s' u='%u' d='%d' 1='%1' 2='%2' %%";
    const n = parseTemplates("pgsql", "/x", q, "%s");
    assertEquals(
      expandQuery(n, q, "a@mail.example.com", id),
      "k='a@mail.example.com' u='a' d='mail.example.com' 1='com' 2='example' %",
    );
    assertEquals(expandQuery(n, q, "a", id), undefined); // no domain
    assertEquals(expandQuery(n, q, "@example.com", id), undefined); // empty local part
    assertEquals(expandQuery(n, q, "a@com", id), undefined); // too few labels
    const u = parseTemplates("pgsql", "/x", "u='%u'", "%s");
    assertEquals(expandQuery(u, "u='%u'", "bare", id), "u='bare'");
    assertEquals(expandQuery(u, "u='%u'", "x@y@z", id), "u='x@y'");
  });

  await t.step("result expansion: %s %u %d of the value, %S %U %D %1 of the key", () => {
    const f = "%u at %d for %S %U %D %1";
    const n = parseTemplates("pgsql", "/x", "k='%s'", f);
    const w: string[] = [];
    const warn = (m: string) => w.push(m);
    assertEquals(
      expandResult(n, f, "v@x.example", "k@a.example", "t", warn),
      "v at x.example for k@a.example k a.example example",
    );
    assertEquals(expandResult(n, f, "plain", "k@a.example", "t", warn), undefined);
    assertEquals(expandResult(n, f, null, "k@a.example", "t", warn), undefined);
    assertEquals(expandResult(n, f, "", "k@a.example", "t", warn), undefined);
    assertEquals(w, [`table "t": empty lookup result for: "k@a.example" -- ignored`]);
  });

  await t.step("quoting keeps hostile text inside the literal", () => {
    assertEquals(quoteSqlite("a'b\\c"), "a''b\\c");
    assertEquals(quotePgsql("a'b\\c"), "a''b\\c");
    assertEquals(quotePgsql("a'b\\c", false), "a''b\\\\c");
    assertEquals(quoteMysql("a'b\\c\"\0\n\r\x1a"), "a\\'b\\\\c\\\"\\0\\n\\r\\Z");
    assertEquals(quoteMysql("a'b\\c", true), "a''b\\c");
  });

  await t.step("hosts: unix:, inet:, host:port, plain names, URIs; default localhost", () => {
    const h = parseHosts(
      cf("hosts = unix:/run/pg inet:db1:6543, db2 [::1]:7 postgresql://u@db3:5433/x"),
      "pgsql",
      5432,
      { urls: true },
    );
    assertEquals(h.map((x) => [x.kind, "host" in x ? x.host : x.path, x.port]), [
      ["unix", "/run/pg", 5432],
      ["inet", "db1", 6543],
      ["inet", "db2", 5432],
      ["inet", "::1", 7],
      ["url", "db3", 5433],
    ]);
    assertEquals(parseHosts(cf(""), "pgsql", 5432)[0].text, "localhost");
    assertThrows(() => parseHosts(cf("hosts = db:postgres"), "pgsql", 5432), DictError, "port");
  });

  await t.step("host order: UNIX sockets first, random within each kind", () => {
    const hosts = parseHosts(cf("hosts = a b unix:/s c"), "pgsql", 1);
    assertEquals(hostOrder(hosts, () => 0).map((h) => h.text), ["unix:/s", "b", "c", "a"]);
    assertEquals(hostOrder(hosts, () => 0.99).map((h) => h.text), ["unix:/s", "a", "b", "c"]);
  });

  await t.step(
    "HostPool: fails over, leaves a failed host alone for a minute, then retry",
    async () => {
      const hosts = parseHosts(cf("hosts = good bad"), "pgsql", 1);
      let now = 0;
      const up = new Set(["good", "bad"]);
      const calls: string[] = [];
      const conn = (h: SqlHost): Promise<SqlConnection> => {
        calls.push(`connect ${h.text}`);
        if (!up.has(h.text)) return Promise.reject(new Error("refused"));
        return Promise.resolve({
          quote: (s) => s.replaceAll("'", "''"),
          run: (q) => {
            calls.push(`${h.text}: ${q}`);
            return up.has(h.text) ? Promise.resolve([["v"]]) : Promise.reject(new Error("gone"));
          },
          close: () => Promise.resolve(),
        });
      };
      // random 0.99 keeps the written order: "good" first.
      const pool = new HostPool("pgsql:/t.cf", hosts, conn, { now: () => now, random: () => 0.99 });
      assertEquals(await pool.run((q) => `k='${q("o'k")}'`), [["v"]]);
      up.delete("good");
      assertEquals(await pool.run(() => "q2"), [["v"]]); // good fails, bad answers
      assertEquals(calls, ["connect good", "good: k='o''k'", "good: q2", "connect bad", "bad: q2"]);
      up.delete("bad");
      const e = await assertRejects(() => pool.run(() => "q3"), DictError, "no database server");
      assertEquals(e.kind, "retry");
      now += 61_000;
      up.add("good");
      assertEquals(await pool.run(() => "q4"), [["v"]]);
      await pool.close();
    },
  );

  await t.step(
    "lookups: folding, domain filter, NUL keys, joined rows, expansion_limit",
    async () => {
      const c = cf(
        "query = SELECT v FROM t WHERE k='%s'\ndomain = example.com, !bad.example.com inline:{x.test=1}\n" +
          "expansion_limit = 2",
      );
      const warns: string[] = [];
      const spec = await sqlTableSpec(c, "pgsql", {
        fold: true,
        warn: (m) => warns.push(m),
        quote: quotePgsql,
      });
      const queries: string[] = [];
      const rows: Record<string, (string | null)[][]> = {
        "a@example.com": [["one", null], ["two"]],
        "b@x.test": [["1"], ["2"], ["3"]],
      };
      const run = (q: (quote: (s: string) => string) => string) => {
        const text = q(quotePgsql);
        queries.push(text);
        const key = text.slice(text.indexOf("'") + 1, -1).replaceAll("''", "'");
        return Promise.resolve(rows[key] ?? []);
      };
      assertEquals(await sqlLookup(spec, "A@Example.COM", run), "one,two");
      assertEquals(await sqlLookup(spec, "a@other.example", run), undefined);
      assertEquals(await sqlLookup(spec, "a@bad.example.com", run), undefined);
      assertEquals(await sqlLookup(spec, "@example.com", run), undefined);
      assertEquals(await sqlLookup(spec, "a\0b@example.com", run), undefined);
      assertEquals(await sqlLookup(spec, "o'x@example.com", run), undefined);
      await assertRejects(() => sqlLookup(spec, "b@x.test", run), DictError, "expansion limit");
      assertEquals(queries, [
        "SELECT v FROM t WHERE k='a@example.com'",
        "SELECT v FROM t WHERE k='o''x@example.com'",
        "SELECT v FROM t WHERE k='b@x.test'",
      ]);
      await spec.domain?.close();
    },
  );

  await t.step("domain list: files and negation", async () => {
    const dir = await Deno.makeTempDir();
    await Deno.writeTextFile(`${dir}/doms`, "# listed\na.example\n!b.example\n");
    const list = await DomainList.open("t", `${dir}/doms, b.example, c.example`);
    assertEquals(await list.match("A.example"), true);
    assertEquals(await list.match("b.example"), false);
    assertEquals(await list.match("c.example"), true);
    assertEquals(await list.match("d.example"), false);
    await list.close();
    await Deno.remove(dir, { recursive: true });
  });

  await t.step(
    "grants: the .cf file, servers with default ports, sockets, the database file",
    async () => {
      const files: Record<string, string> = {
        "/etc/postfix/pg.cf": "hosts = db1 inet:db2:6543 unix:/run/postgresql\ndbname = x\n" +
          "domain = /etc/postfix/doms\nquery = SELECT 1",
        "/etc/postfix/my.cf": "hosts = localhost 10.0.0.1 unix:/tmp/my.sock\ndbname = x\nquery = q",
        "/etc/postfix/lite.cf": "dbpath = /var/db/aliases.sqlite\nquery = q",
        "/etc/postfix/doms": "example.com",
      };
      const ctx = {
        readTextFile: (p: string) =>
          p in files ? Promise.resolve(files[p]) : Promise.reject(new Error(`no ${p}`)),
      };
      assertEquals(await tableGrants("pgsql:/etc/postfix/pg.cf", ctx), {
        read: ["/etc/postfix/pg.cf", "/etc/postfix/doms", "/run/postgresql/.s.PGSQL.5432"],
        write: ["/run/postgresql/.s.PGSQL.5432"],
        net: ["db1:5432", "db2:6543", "unix:/run/postgresql/.s.PGSQL.5432"],
        run: [],
        env: ["PGAPPNAME", "PGTARGETSESSIONATTRS"],
        npm: ["postgres"],
      });
      assertEquals(await tableGrants("proxy:mysql:/etc/postfix/my.cf", ctx), {
        read: ["/etc/postfix/my.cf", "/run/mysqld/mysqld.sock", "/tmp/my.sock"],
        write: ["/run/mysqld/mysqld.sock", "/tmp/my.sock"],
        net: ["unix:/run/mysqld/mysqld.sock", "10.0.0.1:3306", "unix:/tmp/my.sock"],
        run: [],
        env: [],
        npm: ["mysql2/promise"],
      });
      assertEquals(await tableGrants("sqlite:/etc/postfix/lite.cf", ctx), {
        read: ["/etc/postfix/lite.cf", "/var/db/aliases.sqlite"],
        write: [],
        net: [],
        run: [],
        env: [],
        npm: [],
      });
    },
  );
});

Deno.test("a driver that cannot be loaded is a config error, saying what to do", () => {
  const cached = driverError(
    "pgsql:/etc/postfix/pg.cf",
    "PostgreSQL",
    "postgres",
    new Error('npm package not found in cache: "postgres", --cached-only is specified.\nmore'),
  );
  assertEquals(cached.kind, "config");
  assertEquals(
    cached.message,
    "pgsql:/etc/postfix/pg.cf: the PostgreSQL driver (npm:postgres) cannot be loaded: npm package " +
      'not found in cache: "postgres", --cached-only is specified. (postwarden start or reload ' +
      "puts the table drivers in the daemons' DENO_DIR)",
  );
  const other = driverError("mysql:/x.cf", "MySQL", "mysql2/promise", new Error("--no-npm"));
  assertEquals(
    other.message,
    "mysql:/x.cf: the MySQL driver (npm:mysql2/promise) cannot be loaded: --no-npm",
  );
});
