/**
 * Worker hosting keeps each daemon's sandbox (lib/service/hosting.ts):
 * `postwarden audit` on the same configuration, once with the daemons as
 * processes and once as Workers in a worker host, measures the same
 * can/cannot for every daemon. The audit probes a hosted daemon inside a
 * Worker of a host started as master starts one, so this compares what
 * runs.
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { makeConf, postwarden } from "../helpers/instance.ts";

/** Each service's probe results ("can   read maildrop/"), by service. */
function results(stdout: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let cur: string[] = [];
  for (const line of stdout.split("\n")) {
    const m = /^(\S+\/(?:inet|unix)) /.exec(line);
    if (m) out.set(m[1].replace(/^127\.0\.0\.1:\d+/, "SMTPD"), cur = []);
    // The result without the detail in brackets (which names the Deno API that refused).
    else if (/^ {2}(can |cannot)/.test(line)) cur.push(line.replace(/\s+\[.*\]$/, ""));
  }
  return out;
}

Deno.test({
  name: "postwarden audit: the same denials for every daemon as a process and as a Worker",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { dir, conf } = await makeConf({ prefix: "postwarden-audit-hosting-" });
    try {
      const main = await Deno.readTextFile(`${conf}/main.cf`);
      const audit = async (hosting: string) => {
        await Deno.writeTextFile(
          `${conf}/main.cf`,
          `${main}queue_directory = ${dir}/var\npostwarden_daemon_hosting = ${hosting}\n`,
        );
        const r = await postwarden(conf, "audit");
        assertEquals(r.code, 0, r.stdout + r.stderr);
        return r.stdout;
      };
      const asProcesses = await audit("process");
      const asWorkers = await audit("worker");
      const p = results(asProcesses);
      const w = results(asWorkers);
      assertEquals([...w.keys()].sort(), [...p.keys()].sort());
      let hosted = 0;
      for (const [svc, lines] of p) {
        assert(lines.length > 20, `${svc}: ${lines.length} probes`);
        assertEquals(w.get(svc), lines, `${svc}: the same results in both modes`);
      }
      // Most of them were Workers (the rest stay processes, hostingOf says why).
      for (const line of asWorkers.split("\n")) {
        if (/, a Worker in the worker host$/.test(line)) hosted++;
      }
      assert(hosted >= 8, `${hosted} daemons audited as Workers`);
      assertMatch(asWorkers, /^ {2}permissions: \{"read":/m);
      assertMatch(asWorkers, /^ {2}host flags: .*--allow-read=/m);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
