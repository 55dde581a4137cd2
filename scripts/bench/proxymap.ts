/**
 * What a lookup through proxymap costs against opening the table in the
 * daemon itself (`deno task bench --proxymap`): an inline: table and, when
 * PostgreSQL runs (scripts/start-db-peers.sh), a pgsql: table, each looked
 * up directly (Maps over openDict) and through proxymap's code
 * (ProxyTables) over a real UNIX socket with a ProxyClient, one lookup at
 * a time and with --parallel lookups in flight. Prints µs per lookup and
 * lookups/s; asserts nothing (speed goals live in benchmarks, not tests).
 *
 * proxymap runs in this process here, not in its sandbox: Deno checks
 * permissions when a socket or file is opened, not on each read or write,
 * so the sandbox adds nothing per lookup; what is measured is the hop
 * (framing, JSON, socket round trip) and, for pgsql, the server.
 *
 * Usage: deno task bench --proxymap [--lookups N] [--parallel P]
 */
import { Maps, ProxyClient } from "../../lib/maps/mod.ts";
import { ipcListen } from "../../lib/ipc/mod.ts";
import { ProxyTables } from "../../daemons/proxymap/proxymap.ts";
import { fakeService } from "../../tests/helpers/fake_service.ts";
import { connectPgsql, TEST_DB } from "../../tests/helpers/sql_peers.ts";

const { name: DB, user: USER, password: PASSWORD } = TEST_DB;
const TABLE = "pw_bench_virtual";
const ROWS = 1000;
/** Entries of the inline table (its text travels with each proxied request, as in Postfix). */
const INLINE_ROWS = Number(Deno.env.get("PW_BENCH_INLINE_ROWS") ?? 50);

interface Options {
  lookups: number;
  parallel: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { lookups: 5000, parallel: 32 };
  for (let i = 0; i < argv.length; i++) {
    const v = Number(argv[i + 1]);
    if (argv[i] === "--lookups") o.lookups = v;
    else if (argv[i] === "--parallel") o.parallel = v;
    else throw new Error(`unknown option ${argv[i]}`);
    i++;
  }
  return o;
}

/** Fills the pgsql table; a reason when PostgreSQL does not answer. */
async function fillPgsql(): Promise<string | undefined> {
  const sql = await connectPgsql();
  if (typeof sql === "string") return sql;
  try {
    await sql.unsafe(
      `DROP TABLE IF EXISTS ${TABLE}; CREATE TABLE ${TABLE} (k TEXT PRIMARY KEY, v TEXT)`,
    );
    await sql.unsafe(
      `INSERT INTO ${TABLE} SELECT 'user' || i || '@example.com', 'dest' || i || '@example.net' ` +
        `FROM generate_series(0, ${ROWS - 1}) AS i`,
    );
    return undefined;
  } catch (e) {
    return `PostgreSQL at 127.0.0.1:5432: ${(e as Error).message}`;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Keys: about half present. */
function keys(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `user${(i * 7919) % (2 * ROWS)}@example.com`);
}

/** µs per lookup, one at a time, and lookups/s with `parallel` in flight. */
async function measure(m: Maps, o: Options): Promise<{ seq: number; rate: number }> {
  const ks = keys(o.lookups);
  for (const k of ks.slice(0, 200)) await m.find(k); // warm up: connections, JIT
  let t0 = performance.now();
  for (const k of ks) await m.find(k);
  const seq = (performance.now() - t0) * 1000 / ks.length;
  t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: o.parallel }, async () => {
    while (next < ks.length) await m.find(ks[next++]);
  }));
  const rate = ks.length / ((performance.now() - t0) / 1000);
  return { seq, rate };
}

/** Runs the benchmark; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  const root = await Deno.makeTempDir({ prefix: "pw-bench-proxymap-" });
  const inline = `inline:{${
    Array.from({ length: INLINE_ROWS }, (_, i) => `user${i * 40}@example.com=dest${i}@example.net`)
      .join(", ")
  }}`;
  const cf = `${root}/pg.cf`;
  await Deno.writeTextFile(
    cf,
    `hosts = 127.0.0.1:5432\nuser = ${USER}\npassword = ${PASSWORD}\ndbname = ${DB}\n` +
      `query = SELECT v FROM ${TABLE} WHERE k = '%s'\n`,
  );
  const pgDown = await fillPgsql();
  const tables: [string, string][] = [["inline", inline]];
  if (pgDown) console.log(`pgsql: skipped (${pgDown}; run scripts/start-db-peers.sh)`);
  else tables.push(["pgsql", `pgsql:${cf}`]);

  const { ctx } = await fakeService("proxymap", root, {
    mainCf: `virtual_alias_maps = ${tables.map(([, t]) => `proxy:${t}`).join(", ")}\n`,
  });
  const proxymap = new ProxyTables(ctx);
  const sock = `${root}/proxymap.sock`;
  const server = ipcListen(sock, (conn) => proxymap.serve(conn));
  const client = new ProxyClient(sock);
  try {
    console.log(
      `${o.lookups} lookups, about half found; parallel: ${o.parallel} in flight\n` +
        "table    path       µs/lookup (one at a time)   lookups/s (parallel)",
    );
    for (const [name, spec] of tables) {
      const direct = await Maps.open("bench", spec);
      const via = await Maps.open("bench", `proxy:${spec}`, {
        proxy: (s, fold) => client.dict(s, fold),
      });
      for (const [path, m] of [["direct", direct], ["proxymap", via]] as const) {
        const r = await measure(m, o).catch((e) => {
          throw new Error(
            `${name} ${path}: ${(e as Error).message.replace(/inline:\{.*\}/, "inline:{...}")}`,
          );
        });
        console.log(
          `${name.padEnd(8)} ${path.padEnd(10)} ${r.seq.toFixed(1).padStart(10)}` +
            `${Math.round(r.rate).toString().padStart(30)}`,
        );
      }
      await direct.close();
    }
  } finally {
    client.close();
    server.close();
    await proxymap.close();
    await Deno.remove(root, { recursive: true });
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
