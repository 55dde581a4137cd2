/**
 * Lookup-table benchmark (`deno task bench --lookups`): Postwarden's
 * postmap and tables against Postfix 3.7's on the same files and keys.
 *
 * - build: wall time of `postmap hash:FILE` for a 100,000-key source, ours
 *   (`deno run commands/postmap.ts`, process start included) and Postfix's
 *   (`postmap -c DIR hash:FILE`); best and median of --rounds runs,
 *   alternating which goes first. Also ours in-process (parse + index +
 *   write, no process start).
 * - lookups: `postmap -q - hash:FILE` with 100,000 random keys (about half
 *   present), both programs. The process start and table open cost is
 *   measured separately (the same command with no keys) and subtracted, so
 *   lookups/s is the steady rate; both figures are printed. Also ours
 *   in-process (openDict + lookup loop).
 * - regexp: the same for a 1,000-rule regexp: table with 10,000 keys, when
 *   the regexp type is registered (supportedTypes()).
 *
 * Usage: deno task bench --lookups [--keys N] [--rounds R] [--json FILE]
 *
 * Needs /usr/sbin/postmap (scripts/install-peers.sh). Fails (exit 1) when
 * ours builds the table slower than Postfix's postmap (best of the rounds),
 * the acceptance bar for the compiled format (lib/maps/map_hash.ts).
 */
import { openDict, supportedTypes } from "../../lib/maps/mod.ts";
import { compiledPath, compileMapSource, writeCompiled } from "../../lib/maps/map_hash.ts";

const OURS = new URL("../../commands/postmap.ts", import.meta.url).pathname;
const POSTMAP = "/usr/sbin/postmap";

interface Options {
  keys: number;
  rounds: number;
  json: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { keys: 100_000, rounds: 5, json: ".bench/lookups.json" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (a === "--keys") o.keys = Number(v);
    else if (a === "--rounds") o.rounds = Number(v);
    else if (a === "--json") o.json = v;
    else {throw new Error(
        `unknown option ${a} (usage: --lookups [--keys N] [--rounds R] [--json FILE])`,
      );}
    if (a !== "--json" && !(Number(v) > 0)) throw new Error(`bad value for ${a}: ${v}`);
  }
  return o;
}

/** Runs a command, feeding stdin; returns wall milliseconds and its output. */
async function timed(
  cmd: string,
  args: string[],
  stdin = "",
): Promise<{ ms: number; code: number; lines: number; stderr: string }> {
  const t0 = performance.now();
  const p = new Deno.Command(cmd, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Write while reading: a large output fills the pipe before stdin ends.
  const writing = (async () => {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  })();
  const out = await p.output();
  await writing;
  const ms = performance.now() - t0;
  const text = new TextDecoder().decode(out.stdout);
  return {
    ms,
    code: out.code,
    lines: text === "" ? 0 : text.split("\n").length - 1,
    stderr: new TextDecoder().decode(out.stderr),
  };
}

const ours = (args: string[]) => [
  "run",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys=hostname,uid",
  OURS,
  ...args,
];

const best = (xs: number[]) => Math.min(...xs);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Both programs' `-q -` over keys: total, start cost, steady lookups/s. */
async function queryBoth(dir: string, spec: string, keys: string[], rounds: number) {
  const input = keys.join("\n") + "\n";
  const res: Record<string, { total: number[]; start: number[]; found: number }> = {
    postwarden: { total: [], start: [], found: 0 },
    postfix: { total: [], start: [], found: 0 },
  };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ["postwarden", "postfix"] : ["postfix", "postwarden"];
    for (const sys of order) {
      const run = (stdin: string) =>
        sys === "postfix"
          ? timed(POSTMAP, ["-c", dir, "-q", "-", spec], stdin)
          : timed(Deno.execPath(), ours(["-c", dir, "-q", "-", spec]), stdin);
      const start = await run(""); // open the table, no keys: start + open cost
      const all = await run(input);
      if (all.code > 1) throw new Error(`${sys} -q - ${spec}: ${all.stderr}`);
      res[sys].start.push(start.ms);
      res[sys].total.push(all.ms);
      res[sys].found = all.lines;
    }
  }
  return Object.fromEntries(
    Object.entries(res).map(([sys, r]) => {
      const total = median(r.total);
      const start = median(r.start);
      return [sys, {
        totalMs: total,
        startMs: start,
        found: r.found,
        lookupsPerSec: keys.length / Math.max(total - start, 0.001) * 1000,
      }];
    }),
  );
}

function row(cells: (string | number)[], widths: number[]): string {
  return cells.map((c, i) => i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))
    .join("  ");
}

/** The lookup benchmark; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  try {
    Deno.statSync(POSTMAP);
  } catch {
    console.log(`bench --lookups: ${POSTMAP} is missing (run scripts/install-peers.sh)`);
    return 1;
  }
  const dir = await Deno.makeTempDir({ prefix: "bench-lookups-" });
  try {
    await Deno.writeTextFile(`${dir}/main.cf`, "compatibility_level = 3.6\n");
    const lines: string[] = [];
    for (let i = 0; i < o.keys; i++) {
      lines.push(`user${i}@example${i % 97}.com relay:[mx${i % 13}.example.net]:25`);
    }
    const file = `${dir}/table`;
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    let seed = 12345;
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
    const keys = Array.from({ length: o.keys }, () => {
      const i = Math.floor(rnd() * o.keys * 2); // about half are missing
      return `user${i}@example${i % 97}.com`;
    });

    console.log(`bench --lookups: ${o.keys} keys, ${o.rounds} rounds, ${Deno.cwd()}`);

    // Build: whole process, both programs, alternating.
    const build: Record<string, number[]> = { postwarden: [], postfix: [] };
    for (let r = 0; r < o.rounds; r++) {
      const order = r % 2 === 0 ? ["postwarden", "postfix"] : ["postfix", "postwarden"];
      for (const sys of order) {
        const t = sys === "postfix"
          ? await timed(POSTMAP, ["-c", dir, `hash:${file}`])
          : await timed(Deno.execPath(), ours(["-c", dir, `hash:${file}`]));
        if (t.code !== 0) throw new Error(`${sys} postmap failed: ${t.stderr}`);
        build[sys].push(t.ms);
      }
    }
    const inProcess: number[] = [];
    const source = await Deno.readFile(file);
    for (let r = 0; r < o.rounds; r++) {
      const t0 = performance.now();
      const bytes = compileMapSource(source.slice(), {
        path: file,
        warn: () => {},
        fold: true,
        policy: "warn",
      });
      await writeCompiled(compiledPath("hash", `${file}.inproc`), bytes, { sync: false });
      inProcess.push(performance.now() - t0);
    }
    const noop = await timed(Deno.execPath(), ["run", "--allow-read", `data:text/javascript,0`]);

    // Lookups.
    const hash = await queryBoth(dir, `hash:${file}`, keys, Math.min(o.rounds, 3));
    const dict = await openDict(`hash:${file}`, { warn: () => {} });
    const t0 = performance.now();
    let found = 0;
    for (const k of keys) if (await dict.lookup(k) !== undefined) found++;
    const inProcLookups = keys.length / (performance.now() - t0) * 1000;
    await dict.close();

    let regexp: Awaited<ReturnType<typeof queryBoth>> | undefined;
    if (supportedTypes().includes("regexp")) {
      const rules: string[] = [];
      for (let i = 0; i < 1000; i++) rules.push(`/^user${i}@example[0-9]+\\.com$/ OK rule ${i}`);
      await Deno.writeTextFile(`${dir}/rules`, rules.join("\n") + "\n");
      regexp = await queryBoth(dir, `regexp:${dir}/rules`, keys.slice(0, 10_000), 3);
    }

    const w = [34, 14, 14];
    console.log("");
    console.log(row(["", "Postwarden", "Postfix 3.7"], w));
    console.log(
      row([
        `build ${o.keys} keys, best (ms)`,
        best(build.postwarden).toFixed(0),
        best(build.postfix).toFixed(0),
      ], w),
    );
    console.log(
      row([
        `build, median (ms)`,
        median(build.postwarden).toFixed(0),
        median(build.postfix).toFixed(0),
      ], w),
    );
    console.log(row([`build in-process, best (ms)`, best(inProcess).toFixed(0), "-"], w));
    console.log(row([`deno start, empty script (ms)`, noop.ms.toFixed(0), "-"], w));
    const q = (name: string, r: typeof hash) => {
      console.log(
        row([
          `${name}: start+open (ms)`,
          r.postwarden.startMs.toFixed(0),
          r.postfix.startMs.toFixed(0),
        ], w),
      );
      console.log(
        row([
          `${name}: -q - total (ms)`,
          r.postwarden.totalMs.toFixed(0),
          r.postfix.totalMs.toFixed(0),
        ], w),
      );
      console.log(
        row([
          `${name}: lookups/s (minus start)`,
          r.postwarden.lookupsPerSec.toFixed(0),
          r.postfix.lookupsPerSec.toFixed(0),
        ], w),
      );
      console.log(row([`${name}: keys found`, r.postwarden.found, r.postfix.found], w));
    };
    q("hash", hash);
    console.log(row([`hash: lookups/s in-process`, inProcLookups.toFixed(0), "-"], w));
    if (regexp) q("regexp 1000 rules", regexp);
    else console.log("regexp: not measured (regexp: is not a registered table type yet)");

    const ratio = best(build.postwarden) / best(build.postfix);
    console.log("");
    console.log(`build time ratio Postwarden/Postfix (best) = ${ratio.toFixed(3)}`);
    const outDir = o.json.includes("/") ? o.json.slice(0, o.json.lastIndexOf("/")) : ".";
    await Deno.mkdir(outDir, { recursive: true });
    await Deno.writeTextFile(
      o.json,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          options: o,
          buildMs: build,
          buildInProcessMs: inProcess,
          denoStartMs: noop.ms,
          hash,
          hashInProcessLookupsPerSec: inProcLookups,
          hashInProcessFound: found,
          regexp,
          buildRatio: ratio,
        },
        null,
        2,
      ) + "\n",
    );
    console.log(`wrote ${o.json}`);
    if (hash.postwarden.found !== hash.postfix.found) {
      console.log(`FAIL: found ${hash.postwarden.found} keys, Postfix ${hash.postfix.found}`);
      return 1;
    }
    if (ratio > 1) {
      console.log("FAIL: Postwarden's postmap builds slower than Postfix's");
      return 1;
    }
    return 0;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
