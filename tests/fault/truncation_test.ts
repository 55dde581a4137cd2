/**
 * Fault test: a queue file cut short at every byte offset (what a crash
 * mid-write or a damaged disk leaves) and dropped into incoming/ goes to
 * corrupt/ with a log line, and nothing of it is delivered (DESIGN.md
 * invariant 4).
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { maildirFiles, startInstance } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { DirSyncer, QueueWriter } from "../../lib/queue/mod.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "fault: truncated queue files at every offset go to corrupt/, never delivered",
  ...opts,
  fn: async () => {
    const inst = await startInstance();
    const tmp = await Deno.makeTempDir();
    try {
      const w = new QueueWriter(tmp, "000000000000000", new DirSyncer(tmp));
      await w.begin({ queueId: "000000000000000", arrival: Date.now(), sender: "x@example.com" }, [
        { address: "victim@localhost" },
      ]);
      await w.write(new TextEncoder().encode("Subject: cut\r\n\r\nnever deliver any of me\r\n"));
      await w.commit();
      const full = await Deno.readFile(`${tmp}/000000000000000`);
      const ids: string[] = [];
      for (let n = 0; n < full.length; n++) {
        // Valid queue ids, sortable, unique per offset.
        const id = `00000000001${n.toString(16).toUpperCase().padStart(4, "0")}`;
        ids.push(id);
        await Deno.writeFile(`${inst.queue}/incoming/${id}`, full.subarray(0, n));
      }
      // Each move to corrupt/ is followed by its log line: wait for the lines.
      const log = await waitForLog(
        inst,
        (l) => ids.every((id) => l.includes(`${id}: corrupt queue file moved to corrupt/`)),
        30_000,
      );
      assertEquals([...Deno.readDirSync(`${inst.queue}/corrupt`)].length, ids.length);
      for (const id of ids) assert(log.includes(`${id}: corrupt queue file moved to corrupt/`), id);
      assertEquals([...Deno.readDirSync(`${inst.queue}/incoming`)].length, 0);
      assertEquals([...Deno.readDirSync(`${inst.queue}/active`)].length, 0);
      assertEquals(await maildirFiles(inst.spool, "victim"), []);
      console.log(
        `fault: ${ids.length} truncations (every offset of a ${full.length}-byte file) all in corrupt/`,
      );
    } finally {
      await Deno.remove(tmp, { recursive: true });
      await inst.stop();
    }
  },
});
