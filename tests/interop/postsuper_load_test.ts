/**
 * postsuper on a live queue under load loses no mail: Postfix's
 * smtp-source sends 300 messages into a running instance that relays to a
 * sink refusing a third of them on their first attempt (so there is
 * deferred mail), while postsuper runs -h ALL, -H ALL, -r ALL, -d of
 * single deferred or held messages, -s and -p over and over. Afterwards
 * every message smtpd accepted is either delivered (the sink's 250, found
 * by the queue id in its Received header) or deleted by postsuper
 * ("ID: removed" in the maillog), never both, and the queue is empty.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { freePort, startInstance, waitUntil } from "../helpers/instance.ts";
import { havePeer, run } from "../helpers/peers.ts";
import { TestSink } from "../../lib/testrun/sink.ts";

const MESSAGES = 300;

Deno.test({
  name: "interop: postsuper -h/-H/-r/-d/-s/-p on a live queue under smtp-source load loses nothing",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    if (!havePeer("/usr/sbin/smtp-source")) return;
    const sinkPort = freePort();
    const inst = await startInstance({
      mainCf: [
        `relayhost = [127.0.0.1]:${sinkPort}`,
        "minimal_backoff_time = 1s",
        "maximal_backoff_time = 2s",
        "queue_run_delay = 1s",
      ].join("\n"),
    });
    const tried = new Set<string>();
    const delivered = new Map<string, number>();
    const sink = new TestSink(sinkPort, {
      onMessage: (m) => {
        const id = / id ([0-9A-F]{15})/.exec(m.data)?.[1] ?? "";
        // A third of the messages is refused at its first attempt: deferred mail.
        if (!tried.has(id) && parseInt(id.slice(-1), 16) % 3 === 0) {
          tried.add(id);
          return Promise.resolve("451 4.3.0 try again later");
        }
        tried.add(id);
        delivered.set(id, (delivered.get(id) ?? 0) + 1);
        return Promise.resolve(undefined);
      },
    });
    sink.start();
    let loading = true;
    const ops: string[] = [];
    const postsuperLoop = (async () => {
      const rounds = [
        ["-h", "ALL"],
        ["-H", "ALL"],
        ["-r", "ALL"],
        ["-s"],
        ["-h", "ALL", "deferred"],
        ["-d", "one"],
        ["-p"],
        ["-H", "ALL"],
      ];
      for (let i = 0; loading; i++) {
        let args = rounds[i % rounds.length];
        if (args[1] === "one") {
          // A message that waits (deferred or held), if any: deleted by id.
          const waiting = () =>
            [
              ...Deno.readDirSync(`${inst.queue}/deferred`),
              ...Deno.readDirSync(`${inst.queue}/hold`),
            ].map((e) => e.name).filter((n) => /^[0-9A-F]{15}$/.test(n));
          // None waits at this moment (a loaded machine delivers between the
          // rounds): hold what is queued, so that there is one to delete.
          if (waiting().length === 0) {
            const held = await inst.command("postsuper.ts", ["-h", "ALL"]);
            assertEquals(held.code, 0, `postsuper -h ALL: ${held.stderr}`);
            ops.push("-h ALL");
          }
          const ids = waiting();
          if (ids.length === 0) continue;
          args = ["-d", ids[0]];
        }
        const r = await inst.command("postsuper.ts", args);
        assertEquals(r.code, 0, `postsuper ${args.join(" ")}: ${r.stderr}`);
        ops.push(args.join(" "));
      }
    })();
    try {
      const src = await run("/usr/sbin/smtp-source", [
        "-s",
        "5",
        "-m",
        String(MESSAGES),
        "-f",
        "a@example.com",
        "-t",
        "b@example.net",
        `127.0.0.1:${inst.port}`,
      ]);
      assertEquals(src.code, 0, src.stderr);
      // Let the operations run on the queue while it drains, then stop them.
      await new Promise((r) => setTimeout(r, 3000));
      loading = false;
      await postsuperLoop;
      const release = await inst.command("postsuper.ts", ["-H", "ALL"]);
      assertEquals(release.code, 0, release.stderr);
      await waitUntil(
        async () => {
          // A flush also revives the destination the refusals made look dead.
          assertEquals((await inst.command("postqueue.ts", ["-f"])).code, 0);
          return (await inst.command("postqueue.ts", ["-p"])).stdout === "Mail queue is empty\n";
        },
        90_000,
        "an empty queue",
      );
      const log = await inst.log();
      const accepted = new Set(
        [...log.matchAll(/smtpd\[\d+\]: ([0-9A-F]{15}): client=/g)].map((m) => m[1]),
      );
      const removed = new Set(
        [...log.matchAll(/postsuper\[\d+\]: ([0-9A-F]{15}): removed/g)].map((m) => m[1]),
      );
      assertEquals(accepted.size, MESSAGES, "smtpd accepted every message");
      const lost = [...accepted].filter((id) => !delivered.has(id) && !removed.has(id));
      assertEquals(lost, [], "every accepted message is delivered or deleted");
      const both = [...removed].filter((id) => delivered.has(id));
      assertEquals(both, [], "a deleted message is not delivered");
      assert(ops.some((o) => o.startsWith("-d ")), `some message was deleted by id: ${ops}`);
      assert(removed.size > 0, "postsuper deleted a message");
      assert(
        /postsuper\[\d+\]: [0-9A-F]{15}: (placed on hold|released from hold|requeued)/.test(log),
        "postsuper moved messages while they were being delivered",
      );
    } finally {
      loading = false;
      await postsuperLoop.catch(() => {});
      sink.stop();
      await inst.stop();
    }
  },
});
