/**
 * Local aliases end to end through a whole instance: alias_maps (an
 * inline: table) sends alice's mail to bob's Maildir, expands a list to
 * bob and a remote address (forwarded as a new message through cleanup,
 * relayed to a sink with its Delivered-To header and orig_to= logging),
 * and defers a |command alias that fails temporarily (or, started as root
 * with local left unprivileged, that would run as the mail owner) with a
 * reason that says why.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { freePort, maildirFiles, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { TestSink } from "../../lib/testrun/sink.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const ALIASES = "inline:{ {alice=bob}, {list=bob, carol@remote.example}, " +
  '{pipe="|exit 75"} }';

Deno.test({
  name: "alias_maps: mailbox, forwarding through cleanup and a deferred |command",
  ...opts,
  fn: async (t) => {
    const sinkPort = freePort();
    const sink = new TestSink(sinkPort);
    sink.start();
    const inst = await startInstance({
      mainCf: `alias_maps = ${ALIASES}\nrelayhost = [127.0.0.1]:${sinkPort}`,
    });
    const send = async (to: string, subject: string) => {
      const r = await smtpSend(inst.port, {
        from: "sender@example.com",
        to: [to],
        body: `Subject: ${subject}\r\n\r\nhello ${to}\r\n`,
      });
      assertEquals(r.code, 250, r.replies.join("\n"));
      return /queued as ([0-9A-F]+)/.exec(r.text)![1];
    };
    try {
      await t.step("alice@localhost is delivered to bob's Maildir", async () => {
        const id = await send("alice@localhost", "to alice");
        await waitUntil(
          async () => (await maildirFiles(inst.spool, "bob")).length === 1,
          10_000,
          "delivery to bob",
        );
        const [file] = await maildirFiles(inst.spool, "bob");
        const text = await Deno.readTextFile(file);
        assert(
          text.startsWith(
            "Return-Path: <sender@example.com>\nX-Original-To: alice@localhost\n" +
              "Delivered-To: alice@localhost\n",
          ),
          text,
        );
        assertEquals(await maildirFiles(inst.spool, "alice"), []);
        await waitForLog(inst, `${id}: removed`, 10_000);
        assertMatch(
          await inst.log(),
          new RegExp(
            `local\\[\\d+\\]: ${id}: to=<bob@mx\\.test\\.example>, orig_to=<alice@localhost>, ` +
              `relay=local, .*dsn=2\\.0\\.0, status=sent \\(delivered to maildir\\)`,
          ),
        );
      });

      await t.step(
        "list@localhost: bob's Maildir and a forwarded copy for the remote member",
        async () => {
          const id = await send("list@localhost", "to the list");
          await waitUntil(() => sink.messages.length === 1, 15_000, "forwarded copy at the sink");
          const m = sink.messages[0];
          assertEquals(m.from, "sender@example.com");
          assertEquals(m.to, ["carol@remote.example"]);
          assertStringIncludes(m.data, "Delivered-To: list@localhost\r\n");
          assertMatch(m.data, /Received: by mx\.test\.example \(\w+\)\r\n\tid [0-9A-F]+; /);
          assertStringIncludes(m.data, "hello list@localhost");
          await waitUntil(
            async () => (await maildirFiles(inst.spool, "bob")).length === 2,
            10_000,
            "second delivery to bob",
          );
          await waitForLog(inst, `${id}: removed`, 10_000);
          const log = await inst.log();
          const fwd = new RegExp(
            `local\\[\\d+\\]: ${id}: to=<list@localhost>, relay=local, .*dsn=2\\.0\\.0, ` +
              `status=sent \\(forwarded as ([0-9A-F]+)\\)`,
          ).exec(log);
          assert(fwd, log);
          const newId = fwd[1];
          assert(newId !== id);
          assertMatch(
            log,
            new RegExp(
              `smtp\\[\\d+\\]: ${newId}: to=<carol@remote\\.example>, orig_to=<list@localhost>, ` +
                `relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${sinkPort}, .*status=sent`,
            ),
          );
          assertMatch(
            log,
            new RegExp(
              `local\\[\\d+\\]: ${id}: to=<bob@mx\\.test\\.example>, orig_to=<list@localhost>, ` +
                `relay=local, .*status=sent \\(delivered to maildir\\)`,
            ),
          );
        },
      );

      await t.step("a |command alias is deferred with a clear reason, not dropped", async () => {
        const id = await send("pipe@localhost", "to the pipe");
        const want = new RegExp(
          `local\\[\\d+\\]: ${id}: to=<pipe@localhost>, relay=local, .*dsn=4\\.3\\.0, ` +
            `status=deferred \\((temporary failure|delivery to commands and files as the mail ` +
            `owner is not supported: run local as root \\(master.cf unprivileged = n\\))\\)`,
        );
        await waitForLog(inst, want, 10_000);
        const q = await inst.command("postqueue.ts", ["-p"]);
        assertStringIncludes(q.stdout, id, "still queued");
        assertEquals(sink.messages.length, 1, "nothing else forwarded");
      });
    } finally {
      await inst.stop();
      sink.stop();
    }
  },
});
