/**
 * Interop: the smtp agent delivers 50 messages to Postfix's smtp-sink and
 * smtp-sink's own counter must say 50. Skipped with a warning when
 * /usr/sbin/smtp-sink is missing, except under CI=true where that fails
 * (install it with scripts/install-peers.sh).
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { freePort } from "../../tests/helpers/instance.ts";
import { havePeer } from "../../tests/helpers/peers.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import { SmtpAgent } from "./deliver.ts";
import { makeContext, queueMessage } from "./_testing.ts";

const SINK = "/usr/sbin/smtp-sink";

async function waitForPort(port: number, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

Deno.test({
  name: "interop: 50 messages to Postfix smtp-sink",

  async fn() {
    if (!havePeer(SINK)) return;
    const port = freePort();
    // smtp-sink refuses to run as root without -u.
    const asRoot = Deno.uid() === 0 ? ["-u", "nobody"] : [];
    const sink = new Deno.Command(SINK, {
      args: [...asRoot, "-c", `127.0.0.1:${port}`, "100"],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const ctx = await makeContext();
    const agent = new SmtpAgent();
    try {
      await waitForPort(port);
      const nh = `[127.0.0.1]:${port}`;
      const reqs = await Promise.all(
        Array.from(
          { length: 50 },
          (_, i) =>
            queueMessage(
              ctx,
              nh,
              [`user${i}@sink.test`],
              `Subject: m${i}\r\n\r\nbody ${i}\r\n.\r\n`,
            ),
        ),
      );
      // Five at a time, like a destination concurrency limit.
      for (let i = 0; i < reqs.length; i += 5) {
        const batch = await Promise.all(
          reqs.slice(i, i + 5).map(async (req) => {
            const f = await QueueFile.open(req.path);
            try {
              return await agent.deliver(req, f, ctx);
            } finally {
              f.close();
            }
          }),
        );
        for (const st of batch) assertEquals(st[0].status, "sent", st[0].reason);
      }
      await agent.close();
    } finally {
      await agent.close();
      sink.kill("SIGTERM");
      const out = await sink.output();
      const text = new TextDecoder().decode(out.stdout);
      const counts = [...text.matchAll(/mesg=(\d+)/g)].map((m) => Number(m[1]));
      await Deno.remove(ctx.queue.root, { recursive: true }).catch(() => {});
      assertEquals(counts.at(-1), 50, `smtp-sink output: ${JSON.stringify(text.slice(-200))}`);
    }
  },
});
