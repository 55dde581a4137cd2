/**
 * Tests for pickup against a fake cleanup service: what is submitted, that
 * a maildrop file is removed only after cleanup's "ok" and kept otherwise,
 * corrupt and temporary files, an unreachable cleanup, and wake-ups.
 */
import { type CleanupEnvelope, type CleanupResult } from "../../lib/cleanup/client.ts";
import { ipcListen, ipcRequest, type IpcServer } from "../../lib/ipc/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { fakeService, writeQueueFile } from "../../tests/helpers/fake_service.ts";
import { type MaildropAttrs, Pickup, serveWakeup } from "./pickup.ts";

interface Submission {
  envelope: CleanupEnvelope;
  content: string;
  /** Whether the maildrop file still existed when cleanup was about to answer. */
  fileStillThere: boolean;
}

/** A cleanup that records submissions and answers with `answer()`. */
function fakeCleanup(
  path: string,
  maildrop: string,
  answer: () => CleanupResult,
): { server: IpcServer; got: Submission[] } {
  const got: Submission[] = [];
  let n = 0;
  const server = ipcListen(path, async (conn) => {
    const open = await conn.recvMsg<{ op: string }>();
    assertEquals(open.op, "open");
    const queueId = `CLEANUP${++n}`;
    await conn.send({ queueId });
    const { op: _op, ...envelope } = await conn.recvMsg<CleanupEnvelope & { op: string }>();
    let content = "";
    const dec = new TextDecoder();
    for (;;) {
      const f = await conn.recv();
      if (f === null) return;
      if (f.kind === "end") break;
      if (f.kind === "data") content += dec.decode(f.data, { stream: true });
    }
    let names = 0;
    for await (const e of Deno.readDir(maildrop)) if (!e.name.startsWith(".")) names++;
    got.push({ envelope, content, fileStillThere: names > 0 });
    const a = answer();
    await conn.send(a.status === "ok" ? { ...a, queueId } : a);
  });
  return { server, got };
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

const MESSAGE = "Subject: hello\r\n\r\nbody\r\n";

Deno.test("pickup", async (t) => {
  const root = await Deno.makeTempDir();
  try {
    await t.step("submits a maildrop file and removes it only after ok", async () => {
      const svc = await fakeService("pickup", `${root}/a`);
      const maildrop = svc.ctx.queue.dir("maildrop");
      const attrs: MaildropAttrs = {
        uid: 1000,
        user: "joe",
        extract: true,
        envid: "ENV1",
        ret: "HDRS",
        fullName: "Joe User",
      };
      const f = await writeQueueFile(
        maildrop,
        { sender: "joe@example.com", arrival: 1234, attrs },
        [{ address: "ann@example.com", notify: ["SUCCESS"] }],
        MESSAGE,
      );
      const cleanup = fakeCleanup(
        svc.ctx.queue.privateSocket("cleanup"),
        maildrop,
        () => ({ status: "ok", queueId: "" }),
      );
      try {
        const res = await new Pickup(svc.ctx).scan();
        assertEquals(res, { submitted: [f.queueId], corrupt: [], kept: [], unreachable: false });
        assertEquals(cleanup.got.length, 1);
        const s = cleanup.got[0];
        assert(s.fileStillThere, "the maildrop file exists until cleanup answers");
        assertEquals(s.content, MESSAGE);
        assertEquals(s.envelope, {
          sender: "joe@example.com",
          recipients: [{ address: "ann@example.com", notify: ["SUCCESS"] }],
          attrs: {
            origin: "pickup",
            protocol: "local",
            envid: "ENV1",
            ret: "HDRS",
            fullName: "Joe User",
          } as CleanupEnvelope["attrs"],
          extractRecipients: true,
          arrival: 1234,
        });
        assertEquals(await names(maildrop), []);
        const uid = Deno.uid();
        assertEquals(svc.lines, [`CLEANUP1: uid=${uid} from=<joe@example.com>`]);
      } finally {
        cleanup.server.close();
        await cleanup.server.done;
      }
    });

    await t.step("keeps the file when cleanup rejects it, and retries later", async () => {
      let clock = 1_000_000;
      const svc = await fakeService("pickup", `${root}/b`);
      const maildrop = svc.ctx.queue.dir("maildrop");
      const f = await writeQueueFile(maildrop, { sender: "" }, [{ address: "x@y" }], MESSAGE);
      let verdict: CleanupResult = { status: "error", code: 451, dsn: "4.3.0", text: "try later" };
      const cleanup = fakeCleanup(svc.ctx.queue.privateSocket("cleanup"), maildrop, () => verdict);
      try {
        const p = new Pickup(svc.ctx, { now: () => clock });
        assertEquals((await p.scan()).kept, [f.queueId]);
        assertEquals(await names(maildrop), [f.queueId]);
        assert(
          svc.lines.some((l) => l.startsWith("warning:") && l.includes("451 4.3.0 try later")),
        );
        clock += 5_000;
        assertEquals((await p.scan()).kept, [], "not retried before the delay");
        assertEquals(cleanup.got.length, 1);
        clock += 6_000;
        verdict = { status: "ok", queueId: "" };
        assertEquals((await p.scan()).submitted, [f.queueId]);
        assertEquals(await names(maildrop), []);
      } finally {
        cleanup.server.close();
        await cleanup.server.done;
      }
    });

    await t.step("keeps files and stops the scan while cleanup is unreachable", async () => {
      const svc = await fakeService("pickup", `${root}/c`);
      const maildrop = svc.ctx.queue.dir("maildrop");
      await writeQueueFile(maildrop, { sender: "a@b" }, [{ address: "x@y" }], MESSAGE);
      await writeQueueFile(maildrop, { sender: "a@b" }, [{ address: "x@y" }], MESSAGE);
      const p = new Pickup(svc.ctx);
      const res = await p.scan();
      assertEquals(res.unreachable, true);
      assertEquals(res.submitted, []);
      assertEquals((await names(maildrop)).length, 2);
      await p.scan();
      assertEquals(
        svc.lines.filter((l) => l.includes("cleanup service unavailable")).length,
        1,
        "one warning per outage, not one per poll",
      );
      const cleanup = fakeCleanup(
        svc.ctx.queue.privateSocket("cleanup"),
        maildrop,
        () => ({ status: "ok", queueId: "" }),
      );
      try {
        assertEquals((await p.scan()).submitted.length, 2, "the next poll submits them");
        assertEquals(await names(maildrop), []);
      } finally {
        cleanup.server.close();
        await cleanup.server.done;
      }
    });

    await t.step("renames corrupt files, never deletes them, skips temp files", async () => {
      const svc = await fakeService("pickup", `${root}/d`);
      const maildrop = svc.ctx.queue.dir("maildrop");
      const f = await writeQueueFile(maildrop, { sender: "a@b" }, [{ address: "x@y" }], MESSAGE);
      const whole = await Deno.readFile(f.path);
      await Deno.writeFile(f.path, whole.subarray(0, whole.length - 3));
      await Deno.writeTextFile(`${maildrop}/.0000000000000AA.tmp`, "being written");
      const cleanup = fakeCleanup(
        svc.ctx.queue.privateSocket("cleanup"),
        maildrop,
        () => ({ status: "ok", queueId: "" }),
      );
      try {
        const res = await new Pickup(svc.ctx).scan();
        assertEquals(res.corrupt, [f.queueId]);
        assertEquals(cleanup.got.length, 0);
        assertEquals(await names(maildrop), [".0000000000000AA.tmp", `.corrupt.${f.queueId}`]);
        const w = svc.lines.find((l) => l.startsWith("warning:"));
        assert(w);
        assertStringIncludes(w, `maildrop/${f.queueId}: corrupt maildrop file`);
        assertStringIncludes(w, `renamed to .corrupt.${f.queueId}`);
      } finally {
        cleanup.server.close();
        await cleanup.server.done;
      }
    });

    await t.step("a message on public/pickup wakes it and is answered ok", async () => {
      const svc = await fakeService("pickup", `${root}/e`);
      const maildrop = svc.ctx.queue.dir("maildrop");
      const cleanup = fakeCleanup(
        svc.ctx.queue.privateSocket("cleanup"),
        maildrop,
        () => ({ status: "ok", queueId: "" }),
      );
      const p = new Pickup(svc.ctx);
      const sock = svc.ctx.queue.publicSocket("pickup");
      const wake = ipcListen(sock, (c) => serveWakeup(c, p));
      try {
        await writeQueueFile(maildrop, { sender: "a@b" }, [{ address: "x@y" }], MESSAGE);
        assertEquals(await ipcRequest(sock, { op: "wakeup" }, { timeoutMs: 5000 }), { ok: true });
        await p.wake(); // joins the scan the request started
        assertEquals(cleanup.got.length, 1);
        assertEquals(await names(maildrop), []);
      } finally {
        wake.close();
        await wake.done;
        cleanup.server.close();
        await cleanup.server.done;
      }
    });

    await t.step("start() polls until the signal aborts", async () => {
      const svc = await fakeService("pickup", `${root}/f`);
      const maildrop = svc.ctx.queue.dir("maildrop");
      const cleanup = fakeCleanup(
        svc.ctx.queue.privateSocket("cleanup"),
        maildrop,
        () => ({ status: "ok", queueId: "" }),
      );
      try {
        new Pickup(svc.ctx, { pollMs: 10 }).start();
        await writeQueueFile(maildrop, { sender: "a@b" }, [{ address: "x@y" }], MESSAGE);
        for (let i = 0; i < 500 && (await names(maildrop)).length > 0; i++) {
          await new Promise((r) => setTimeout(r, 10));
        }
        assertEquals(cleanup.got.length, 1, "picked up by polling");
        assertEquals(await names(maildrop), []);
      } finally {
        svc.abort.abort();
        cleanup.server.close();
        await cleanup.server.done;
      }
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
