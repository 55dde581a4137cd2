/**
 * Fault test: SIGKILL of smtpd, cleanup, qmgr and smtp at random moments
 * while clients send mail, then a whole-tree kill and restart. Every
 * message that got 250 must reach the sink (duplicates are allowed and
 * reported; DESIGN.md invariants 1 and 2).
 *
 * So that it cannot pass vacuously: a kill counts only once the process is
 * seen dead, every victim daemon must have been killed, mail must have
 * been acknowledged while the kills went on (not only before the first),
 * and at least {@link MIN_ACKED} messages in all.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import {
  daemonPid,
  freePort,
  isDead,
  postwardenArgs,
  processesOf,
  smtpSend,
  startInstance,
  testHosting,
  waitUntil,
} from "../helpers/instance.ts";
import { TestSink } from "../../lib/testrun/sink.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Acknowledged messages needed for the run to mean anything. */
const MIN_ACKED = 100;
/** Of those, acknowledged after the first kill (the pipeline kept working through kills). */
const MIN_ACKED_UNDER_FIRE = 50;

/**
 * SIGKILLs that must land: 20 of single daemons; with worker hosting each
 * one kills the worker host, every daemon at once, and master throttles the
 * restarts of daemons that keep dying within seconds of their start (1 s,
 * 2 s, 4 s, ... as for any crash loop), so 6 fit in the test's minute.
 */
const minKills = testHosting() === "worker" ? 6 : 20;

/** True once `pid` has exited (gone, or a zombie its parent has not reaped yet). */
Deno.test({
  name: "fault: acknowledged mail survives SIGKILLs of daemons and of the whole tree",
  ...opts,
  fn: async () => {
    const sinkPort = freePort();
    const sink = new TestSink(sinkPort);
    sink.start();
    let inst = await startInstance({ mainCf: `relayhost = [127.0.0.1]:${sinkPort}` });
    const acked = new Set<string>();
    let refused = 0;
    let ackedUnderFire = 0;
    let kills = 0;
    let stopLoad = false;
    let seq = 0;
    const client = async () => {
      while (!stopLoad) {
        const id = `m${++seq}`;
        try {
          const r = await smtpSend(inst.port, {
            from: "load@example.com",
            to: ["sink@example.net"],
            body: `Subject: ${id}\r\n\r\nbody of ${id}\r\n`,
          });
          if (r.code === 250) {
            acked.add(id);
            if (kills > 0) ackedUnderFire++;
          } else refused++;
        } catch {
          refused++; // connection refused or dropped while smtpd restarts: not acknowledged
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    const load = Array.from({ length: 6 }, client);
    const victims = ["smtpd", "cleanup", "qmgr", "smtp"];
    const killedBy = new Map(victims.map((v) => [v, 0]));
    let treeKilled = 0;
    try {
      // Let mail flow before the first kill, so that there is work in flight.
      await waitUntil(() => acked.size >= 5, 30_000, "first acknowledged messages");
      // At least 20 real SIGKILLs at random moments; the victim is a random
      // one of the daemons killed least so far, so that each one gets killed.
      for (let attempt = 0; kills < minKills && attempt < 200; attempt++) {
        await new Promise((r) => setTimeout(r, 150 + Math.random() * 350));
        const fewest = Math.min(...killedBy.values());
        const due = victims.filter((v) => killedBy.get(v) === fewest);
        const prog = due[Math.floor(Math.random() * due.length)];
        const pid = await daemonPid(inst, prog);
        if (!pid) continue;
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          continue; // already gone: not our kill
        }
        // Count it only once the process is seen dead.
        if (await waitUntil(() => isDead(pid), 5_000).then(() => true, () => false)) {
          kills++;
          killedBy.set(prog, killedBy.get(prog)! + 1);
          // The pipeline must recover before the next kill: with worker hosting each
          // kill takes every daemon down, and master's crash-loop throttle (1 s, 2 s,
          // 4 s, ...) would otherwise let the kills outrun the restarts and leave
          // nothing to prove but the first kill.
          const before = acked.size;
          await waitUntil(
            () => acked.size >= before + 10,
            60_000,
            `mail acknowledged again after kill ${kills} (${prog})`,
          );
        }
      }
      // Whole tree: every process of the instance, at once.
      for (const pid of await processesOf(inst.conf)) {
        try {
          Deno.kill(pid, "SIGKILL");
          treeKilled++;
        } catch {
          // gone
        }
      }
      stopLoad = true;
      await Promise.all(load);
      await waitUntil(async () => (await processesOf(inst.conf)).length === 0, 10_000, "tree dead");
      // Restart on the same queue (startInstance would make a new one): reuse dir.
      const proc = new Deno.Command(Deno.execPath(), {
        args: postwardenArgs(inst.conf, "start-fg"),
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      inst = { ...inst, proc };
      const received = () =>
        new Set(sink.messages.map((m) => /^Subject: (m\d+)/m.exec(m.data)?.[1]));
      try {
        await waitUntil(
          () => {
            // Once per poll: this process also runs the sink, so keep it cheap.
            const got = received();
            return [...acked].every((id) => got.has(id));
          },
          60_000,
          "all acknowledged mail at the sink",
        );
      } catch (e) {
        // Say where the missing mail is, for whoever debugs this.
        const got = received();
        const missing = [...acked].filter((id) => !got.has(id));
        const q = await inst.command("postqueue.ts", ["-p"]);
        const listing: string[] = [];
        for (const d of ["incoming", "active", "deferred", "hold", "corrupt", "maildrop"]) {
          listing.push(
            `${d}: ${[...Deno.readDirSync(`${inst.queue}/${d}`)].map((e) => e.name).join(" ")}`,
          );
        }
        console.log(`missing ${missing.length}: ${missing.slice(0, 20).join(" ")}`);
        console.log(listing.join("\n"));
        console.log(q.stdout.slice(0, 3000));
        const log = await inst.log();
        console.log(
          log.split("\n").filter((l) => /warning|error|fatal|deferred|expired/.test(l)).slice(-40)
            .join("\n"),
        );
        throw e;
      }
      const got = received();
      const missing = [...acked].filter((id) => !got.has(id));
      const dups = sink.messages.length - got.size;
      console.log(
        `fault: ${kills} SIGKILLs (${
          [...killedBy].map(([v, n]) => `${v} ${n}`).join(", ")
        }) + a whole-tree kill of ${treeKilled} processes; ${acked.size} acknowledged ` +
          `(${ackedUnderFire} after the first kill), ${refused} refused/failed, ` +
          `${missing.length} lost, ${dups} duplicate deliveries`,
      );
      assertEquals(missing, []);
      assert(kills >= minKills, `only ${kills} SIGKILLs landed`);
      for (const [v, n] of killedBy) assert(n > 0, `${v} was never killed`);
      // master, smtpd, cleanup, qmgr, local, smtp, bounce, pickup... at least master and smtpd.
      assert(treeKilled >= 2, `the whole-tree kill found only ${treeKilled} processes`);
      assert(acked.size >= MIN_ACKED, `only ${acked.size} messages acknowledged`);
      assert(
        ackedUnderFire >= MIN_ACKED_UNDER_FIRE,
        `only ${ackedUnderFire} messages acknowledged after the first kill`,
      );
    } finally {
      stopLoad = true;
      sink.stop();
      await inst.stop();
    }
  },
});
