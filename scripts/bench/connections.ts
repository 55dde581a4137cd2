/**
 * Memory per idle SMTP connection (`deno task bench --connections`):
 * opens N connections to a fresh Postwarden, reads each greeting, and
 * compares the smtpd processes' memory before and after; then the same
 * against a real Postfix 3.7, which forks one smtpd per connection, with a
 * smaller N. Prints KiB per connection (RSS and PSS) and "idle connections
 * per GiB" for both.
 *
 * RSS counts shared pages once per process, which overstates Postfix (each
 * smtpd maps the same libraries); PSS splits shared pages between their
 * users and is the fairer figure for a forking server. For Postwarden the
 * two hardly differ: its connections live in a few processes.
 *
 * RLIMIT_NOFILE is raised for this process (and so for the instances it
 * starts) with prlimit; that needs root or a high enough hard limit.
 *
 * `--hosting worker` hosts the daemons as Workers (smtpd's memory is then
 * the worker host's, which holds every hosted daemon).
 *
 * Usage: deno task bench --connections [COUNT] [--counts 2000,10000]
 *        [--postfix N] [--hosting process|worker]
 *        (a bare COUNT is --counts COUNT; N = 0 skips Postfix; default 300)
 */
import { processesOf, startInstance } from "../../tests/helpers/instance.ts";
import { run } from "../../tests/helpers/peers.ts";
import { rssKiB, startPostfix } from "../../tests/helpers/postfix.ts";

interface Options {
  counts: number[];
  postfix: number;
  hosting: "process" | "worker";
}

export function parseArgs(argv: string[]): Options {
  const o: Options = { counts: [2000, 10000], postfix: 300, hosting: "process" };
  let i = 0;
  // `--connections 10000`, as the issue and the README write it.
  if (argv.length && /^\d+$/.test(argv[0])) o.counts = [Number(argv[i++])];
  for (; i < argv.length; i++) {
    const v = argv[i + 1];
    if (!["--counts", "--postfix", "--hosting"].includes(argv[i])) {
      throw new Error(`unknown option ${argv[i]}`);
    }
    if (v === undefined) throw new Error(`${argv[i]} needs a value`);
    if (argv[i] === "--counts") o.counts = v.split(",").map(Number);
    else if (argv[i] === "--postfix") o.postfix = Number(v);
    else if (argv[i] === "--hosting") {
      if (v !== "process" && v !== "worker") throw new Error("--hosting is process or worker");
      o.hosting = v;
    }
    i++;
  }
  if (o.counts.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error("bad --counts");
  if (!Number.isInteger(o.postfix) || o.postfix < 0) throw new Error("bad --postfix");
  return o;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pssKiB(pid: number): Promise<number> {
  try {
    const s = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`);
    const m = s.match(/^Pss:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Summed RSS and PSS of the processes, in KiB. */
async function memory(pids: number[]): Promise<{ rss: number; pss: number; processes: number }> {
  let rss = 0;
  let pss = 0;
  for (const p of pids) {
    rss += await rssKiB(p);
    pss += await pssKiB(p);
  }
  return { rss, pss, processes: pids.length };
}

/** Opens `n` connections and reads each greeting; 200 at a time. */
async function openIdle(port: number, n: number): Promise<Deno.TcpConn[]> {
  const conns: Deno.TcpConn[] = [];
  const buf = new Uint8Array(512);
  for (let i = 0; i < n; i += 200) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(200, n - i) }, async () => {
        const c = await Deno.connect({ hostname: "127.0.0.1", port });
        let text = "";
        while (!/\r\n$/.test(text)) {
          const k = await c.read(buf);
          if (k === null) throw new Error(`connection ${conns.length} closed: ${text}`);
          text += new TextDecoder().decode(buf.subarray(0, k));
        }
        if (!text.startsWith("220")) throw new Error(`greeting: ${text}`);
        return c;
      }),
    );
    conns.push(...batch);
  }
  return conns;
}

interface Row {
  system: string;
  connections: number;
  processes: number;
  rssKiBPerConn: number;
  pssKiBPerConn: number;
  perGiB: number;
  rssTotalMiB: number;
  /** The whole instance with the connections open (Postwarden: every daemon and master). */
  instance?: { pssMiB: number; processes: number };
}

async function measure(
  system: string,
  port: number,
  pids: () => Promise<number[]>,
  n: number,
  instancePids?: () => Promise<number[]>,
): Promise<Row> {
  await sleep(1000);
  const before = await memory(await pids());
  const conns = await openIdle(port, n);
  await sleep(3000); // let the sessions settle (name lookups, first GC)
  const after = await memory(await pids());
  const whole = instancePids ? await memory(await instancePids()) : null;
  for (const c of conns) c.close();
  const rss = (after.rss - before.rss) / n;
  const pss = (after.pss - before.pss) / n;
  return {
    system,
    connections: n,
    processes: after.processes,
    rssKiBPerConn: rss,
    pssKiBPerConn: pss,
    perGiB: Math.floor((1024 * 1024) / Math.max(pss, 0.001)),
    rssTotalMiB: after.rss / 1024,
    ...(whole ? { instance: { pssMiB: whole.pss / 1024, processes: whole.processes } } : {}),
  };
}

function print(r: Row): void {
  console.log(
    `  ${r.system.padEnd(10)} ${String(r.connections).padStart(6)} idle connections, ` +
      `${r.processes} processes, total RSS ${r.rssTotalMiB.toFixed(1)} MiB: ` +
      `${r.rssKiBPerConn.toFixed(1)} KiB RSS, ${
        r.pssKiBPerConn.toFixed(1)
      } KiB PSS per connection; ` +
      `idle connections per GiB (PSS) ${r.perGiB}` +
      (r.instance
        ? `; whole instance PSS ${r.instance.pssMiB.toFixed(1)} MiB ` +
          `(${r.instance.processes} processes)`
        : ""),
  );
}

export async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  // This process holds the client ends; each smtpd inherits the limit.
  const need = Math.max(...o.counts, o.postfix) + 1000;
  const cur = await run("prlimit", [
    `--pid=${Deno.pid}`,
    "--nofile",
    "--output=HARD",
    "--noheadings",
  ]);
  const hard = Number(cur.stdout.trim());
  let limit = need;
  if (cur.code !== 0 || !Number.isFinite(hard)) {
    console.error(`prlimit: ${cur.stderr.trim()}`);
    return 1;
  }
  if (hard < need) {
    // Raising the hard limit needs CAP_SYS_RESOURCE; without it, use what there is.
    const up = await run("prlimit", [`--pid=${Deno.pid}`, `--nofile=${need}:${need}`]);
    if (up.code !== 0) limit = hard;
  }
  if (limit < need) {
    console.error(
      `RLIMIT_NOFILE hard limit ${hard} is below ${need}; lower --counts or run as root`,
    );
    return 1;
  }
  await run("prlimit", [`--pid=${Deno.pid}`, `--nofile=${limit}:${Math.max(limit, hard)}`]);
  console.log(
    `bench: memory per idle connection (greeting read, then idle), daemons hosted as ${
      o.hosting === "worker" ? "Workers" : "processes"
    }`,
  );
  const rows: Row[] = [];
  for (const n of o.counts) {
    const inst = await startInstance({
      mainCf: `smtpd_peername_lookup = no\npostwarden_daemon_hosting = ${o.hosting}\n`,
    });
    try {
      const smtpd = async () => {
        const out: number[] = [];
        for (const pid of await processesOf(inst.conf)) {
          const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
          if (cmd.includes("/daemons/smtpd/main.ts")) out.push(pid);
          // Worker hosting: smtpd is a Worker in the host process.
          if (o.hosting === "worker" && cmd.includes("/daemons/master/host.ts")) out.push(pid);
        }
        return out;
      };
      // Every process of the instance but the test's start-fg launcher (postwarden start
      // leaves none): master and the daemons running, the on-demand ones being idle.
      const all = async () => {
        const out: number[] = [];
        for (const pid of await processesOf(inst.conf)) {
          const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
          if (cmd.includes("/daemons/")) out.push(pid);
        }
        return out;
      };
      const r = await measure("postwarden", inst.port, smtpd, n, all);
      rows.push(r);
      print(r);
    } finally {
      await inst.stop();
    }
  }
  if (o.postfix > 0) {
    try {
      const pf = await startPostfix({
        mainCf: `default_process_limit = ${o.postfix + 50}\nsmtpd_peername_lookup = no\n`,
      });
      try {
        const r = await measure("postfix", pf.port, () => pf.processes(), o.postfix);
        rows.push(r);
        print(r);
      } finally {
        await pf.stop();
      }
    } catch (e) {
      console.log(`  postfix    not available: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  const pw = rows.filter((r) => r.system === "postwarden").at(-1);
  const pf = rows.find((r) => r.system === "postfix");
  if (pw && pf) {
    console.log(
      `  ratio: Postwarden holds ${
        (pw.perGiB / pf.perGiB).toFixed(1)
      }x the idle connections per GiB`,
    );
  }
  return 0;
}
