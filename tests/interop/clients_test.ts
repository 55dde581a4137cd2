/**
 * Real clients into Postwarden: swaks (plain, pipelining, many recipients,
 * 8-bit body, oversize, relay denied), Python's smtplib, and Postfix's
 * smtp-source relaying through Postwarden into Postfix's smtp-sink.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { freePort, maildirFiles, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { havePeer, run } from "../helpers/peers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const SWAKS = "/usr/bin/swaks";

Deno.test({
  name: "interop: swaks into Postwarden",
  ...opts,
  fn: async (t) => {
    if (!havePeer(SWAKS)) return;
    const inst = await startInstance({ mainCf: "message_size_limit = 20000" });
    const swaks = (args: string[]) =>
      run(SWAKS, ["--server", `127.0.0.1:${inst.port}`, "--from", "bob@example.com", ...args]);
    try {
      await t.step("swaks plain", async () => {
        const r = await swaks(["--to", "alice@localhost"]);
        assertEquals(r.code, 0, r.stdout + r.stderr);
        assertMatch(r.stdout, /<- {2}250 2\.0\.0 Ok: queued as/);
        await waitUntil(
          async () => (await maildirFiles(inst.spool, "alice")).length === 1,
          5000,
          "alice",
        );
      });
      await t.step("swaks pipelining, many recipients", async () => {
        const rcpts = Array.from({ length: 30 }, (_, i) => `u${i}@localhost`).join(",");
        const r = await swaks(["--pipeline", "--to", rcpts]);
        assertEquals(r.code, 0, r.stdout + r.stderr);
        await waitUntil(
          async () => (await maildirFiles(inst.spool, "u29")).length === 1,
          10_000,
          "u29",
        );
      });
      await t.step("swaks 8-bit body", async () => {
        const r = await swaks([
          "--to",
          "carol@localhost",
          "--body",
          "gr\u00fc\u00dfe 8bit",
          "--header",
          "Subject: 8bit",
        ]);
        assertEquals(r.code, 0, r.stdout + r.stderr);
        await waitUntil(
          async () => (await maildirFiles(inst.spool, "carol")).length === 1,
          5000,
          "carol",
        );
        const text = await Deno.readTextFile((await maildirFiles(inst.spool, "carol"))[0]);
        assertStringIncludes(text, "gr\u00fc\u00dfe 8bit");
      });
      await t.step("swaks oversize message is refused with 552", async () => {
        const r = await swaks(["--to", "dave@localhost", "--body", "x".repeat(30_000)]);
        assert(r.code !== 0);
        assertMatch(r.stdout, /<\*\* 552 5\.3\.4/);
      });
      await t.step(
        "swaks to an invalid local user: accepted, then bounced to the sender",
        async () => {
          const r = await run(SWAKS, [
            "--server",
            `127.0.0.1:${inst.port}`,
            "--from",
            "bob@localhost",
            "--to",
            ".hidden@localhost",
          ]);
          assertEquals(r.code, 0, r.stdout + r.stderr);
          await waitUntil(
            async () => (await maildirFiles(inst.spool, "bob")).length === 1,
            10_000,
            "bounce",
          );
          const text = await Deno.readTextFile((await maildirFiles(inst.spool, "bob"))[0]);
          assertStringIncludes(text, "Undelivered Mail Returned to Sender");
          assertStringIncludes(text, "Status: 5.1.1");
        },
      );
      await t.step(
        "swaks relay to a foreign domain from outside mynetworks is denied",
        async () => {
          const inst2 = await startInstance({ mainCf: "mynetworks = 10.0.0.0/8" });
          try {
            const r = await run(SWAKS, [
              "--server",
              `127.0.0.1:${inst2.port}`,
              "--from",
              "a@b.example",
              "--to",
              "x@elsewhere.example",
            ]);
            assert(r.code !== 0);
            assertMatch(r.stdout, /554 5\.7\.1 <x@elsewhere\.example>: Relay access denied/);
            // master writes the log: the line may follow the reply by a moment.
            await waitForLog(
              inst2,
              /NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 554 5\.7\.1/,
              5000,
            );
          } finally {
            await inst2.stop();
          }
        },
      );
    } finally {
      await inst.stop();
    }
  },
});

Deno.test({
  name: "interop: Python smtplib into Postwarden",
  ...opts,
  fn: async () => {
    if (!havePeer("/usr/bin/python3")) return;
    const inst = await startInstance();
    try {
      const script = `
import smtplib
s = smtplib.SMTP("127.0.0.1", ${inst.port})
s.ehlo("py.test")
s.sendmail("py@example.com", ["erin@localhost"], "Subject: py\\r\\n\\r\\nfrom python\\r\\n")
s.quit()
`;
      const r = await run("/usr/bin/python3", ["-c", script]);
      assertEquals(r.code, 0, r.stderr);
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "erin")).length === 1,
        5000,
        "erin",
      );
    } finally {
      await inst.stop();
    }
  },
});

Deno.test({
  name: "interop: smtp-source -> Postwarden -> smtp-sink, 1000 messages",
  ...opts,
  fn: async () => {
    if (!havePeer("/usr/sbin/smtp-source") || !havePeer("/usr/sbin/smtp-sink")) return;
    const sinkPort = freePort();
    const inst = await startInstance({ mainCf: `relayhost = [127.0.0.1]:${sinkPort}` });
    const sinkArgs = ["-c", `127.0.0.1:${sinkPort}`, "1000"];
    if (Deno.uid() === 0) sinkArgs.unshift("-u", "nobody");
    const sink = new Deno.Command("/usr/sbin/smtp-sink", {
      args: sinkArgs,
      stdout: "piped",
      stderr: "null",
    }).spawn();
    let sinkOut = "";
    const reader = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of sink.stdout) sinkOut += dec.decode(chunk);
    })();
    try {
      const r = await run("/usr/sbin/smtp-source", [
        "-s",
        "10",
        "-m",
        "1000",
        "-f",
        "a@example.com",
        "-t",
        "b@example.net",
        `127.0.0.1:${inst.port}`,
      ]);
      assertEquals(r.code, 0, r.stderr);
      // smtp-sink -c prints running counters "mesg=N"; wait for the 1000th.
      await waitUntil(() => /mesg=1000\b/.test(sinkOut), 60_000, "1000 messages at smtp-sink");
      // master writes the log: the last lines may follow the sink's count by a moment.
      const sent = (log: string) => (log.match(/status=sent/g) ?? []).length;
      assertEquals(sent(await waitForLog(inst, (l) => sent(l) >= 1000, 10_000)), 1000);
      await waitUntil(
        async () =>
          (await inst.command("postqueue.ts", ["-p"])).stdout.includes("Mail queue is empty"),
        10_000,
        "empty queue",
      );
      console.log(
        "interop: smtp-source sent 1000 messages through Postwarden; smtp-sink received 1000",
      );
    } finally {
      sink.kill("SIGTERM");
      await sink.status;
      await reader.catch(() => {});
      await inst.stop();
    }
  },
});
