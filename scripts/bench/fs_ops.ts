/**
 * CPU per file-system call, Deno's async form against its sync form
 * (`deno task bench --fs-ops`): renames between two folders and stats,
 * N of each, one after another, with the process's user+system CPU time
 * (node:process cpuUsage) and the wall time per call.
 *
 * An async call runs on Deno's blocking thread pool: the main thread hands
 * it over and is woken when it is done, two thread switches that on this
 * 2-core VM cost more CPU than the call itself (measured 2026-12-03: a
 * rename ~50 us async against ~18 us sync, a stat ~40 us against ~4 us).
 * A daemon whose call is short and whose event loop may wait that long
 * (qmgr's moves and unlinks) is cheaper with the sync form; a call that can
 * take milliseconds (fsync, fdatasync) stays async so the loop keeps serving.
 *
 * Usage: deno task bench --fs-ops [--calls N] [--dir DIR]
 *        (DIR: where the temporary folder goes, default /var/tmp)
 */
import process from "node:process";

export async function main(argv: string[]): Promise<number> {
  let calls = 10_000;
  let dir = "/var/tmp";
  for (let i = 0; i < argv.length; i += 2) {
    const v = argv[i + 1];
    if (argv[i] === "--calls" && /^\d+$/.test(v ?? "")) calls = Number(v);
    else if (argv[i] === "--dir" && v) dir = v;
    else throw new Error(`unknown option or bad value: ${argv[i]} ${v ?? ""}`);
  }
  const root = await Deno.makeTempDir({ dir, prefix: "fs-ops-" });
  try {
    await Deno.mkdir(`${root}/a`);
    await Deno.mkdir(`${root}/b`);
    const data = new Uint8Array(1000);
    for (let i = 0; i < calls; i++) Deno.writeFileSync(`${root}/a/f${i}`, data);
    const run = async (name: string, call: (i: number) => Promise<unknown> | unknown) => {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) await call(i);
      const cpu = process.cpuUsage(cpu0);
      const wall = (performance.now() - t0) * 1000 / calls;
      console.log(
        `  ${name.padEnd(13)} ${wall.toFixed(1).padStart(6)} us wall, ` +
          `${((cpu.user + cpu.system) / calls).toFixed(1).padStart(6)} us CPU per call`,
      );
    };
    console.log(`bench: ${calls} calls each, in ${root}`);
    await run("rename async", (i) => Deno.rename(`${root}/a/f${i}`, `${root}/b/f${i}`));
    await run("rename sync", (i) => Deno.renameSync(`${root}/b/f${i}`, `${root}/a/f${i}`));
    await run("stat async", (i) => Deno.stat(`${root}/a/f${i}`));
    await run("stat sync", (i) => Deno.statSync(`${root}/a/f${i}`));
    return 0;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}
