/**
 * Tests for pickup against a fake cleanup service: what is submitted, that
 * a maildrop file is removed only after cleanup's "ok" and kept otherwise,
 * corrupt and temporary files, an unreachable cleanup, and wake-ups; and
 * what a hostile local user could plant in maildrop/: forged uids and
 * senders, symlinks, hard links, FIFOs, directories, oversized files, and
 * files swapped between pickup's lstat and open.
 */
import * as fs from "node:fs";
import { type CleanupEnvelope, type CleanupResult } from "../../lib/cleanup/client.ts";
import { ipcListen, ipcRequest } from "../../lib/ipc/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { fakeCleanup } from "../../tests/helpers/fake_cleanup.ts";
import { fakeService, writeQueueFile } from "../../tests/helpers/fake_service.ts";
import { haveRoot } from "../../tests/helpers/peers.ts";
import { newMaildropName } from "./maildrop.ts";
import { lstatEntry, openMaildropFile } from "./maildrop_file.ts";
import { type MaildropAttrs, Pickup, serveWakeup } from "./pickup.ts";

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
        verify: true,
      };
      const f = await writeQueueFile(
        maildrop,
        { sender: "joe@example.com", arrival: 1234, attrs },
        [{ address: "ann@example.com", notify: ["SUCCESS"] }],
        MESSAGE,
      );
      // The arrival time is the file's, not what the file says.
      await Deno.utime(f.path, 1_700_000_000, 1_700_000_000);
      const cleanup = fakeCleanup(svc.ctx.queue.privateSocket("cleanup"), maildrop);
      try {
        const res = await new Pickup(svc.ctx).scan();
        assertEquals(res, {
          submitted: [f.queueId],
          corrupt: [],
          removed: [],
          kept: [],
          unreachable: false,
        });
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
            verify: true,
            fullName: "Joe User",
          } as CleanupEnvelope["attrs"],
          extractRecipients: true,
          arrival: 1_700_000_000_000,
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
      const cleanup = fakeCleanup(svc.ctx.queue.privateSocket("cleanup"), maildrop);
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
      const cleanup = fakeCleanup(svc.ctx.queue.privateSocket("cleanup"), maildrop);
      try {
        const res = await new Pickup(svc.ctx).scan();
        assertEquals(res.corrupt, [f.queueId]);
        assertEquals(cleanup.got.length, 0);
        assertEquals(await names(maildrop), [".0000000000000AA.tmp", `.corrupt.${f.queueId}`]);
        const w = svc.lines.find((l) => l.startsWith("warning:"));
        assert(w);
        assertStringIncludes(w, `maildrop/${f.queueId}: uid=${Deno.uid()}: corrupt maildrop file`);
        assertStringIncludes(w, `renamed to .corrupt.${f.queueId}`);
      } finally {
        cleanup.server.close();
        await cleanup.server.done;
      }
    });

    await t.step("a message on public/pickup wakes it and is answered ok", async () => {
      const svc = await fakeService("pickup", `${root}/e`);
      const maildrop = svc.ctx.queue.dir("maildrop");
      const cleanup = fakeCleanup(svc.ctx.queue.privateSocket("cleanup"), maildrop);
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
      const cleanup = fakeCleanup(svc.ctx.queue.privateSocket("cleanup"), maildrop);
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

/** A uid with no /etc/passwd entry, standing for a local user. */
const USER_UID = 4242;

/** A complete queue file outside maildrop/ that its owner alone may read. */
async function secretFile(dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const f = await writeQueueFile(
    dir,
    { sender: "boss@example.com" },
    [{ address: "x@y" }],
    "SECRET\r\n",
  );
  await Deno.chmod(f.path, 0o600);
  return f.path;
}

Deno.test("pickup and what a local user may plant in maildrop/", async (t) => {
  if (!haveRoot("pickup tests with files of other owners")) return;
  const root = await Deno.makeTempDir();
  const setup = async (sub: string, mainCf = "") => {
    const svc = await fakeService("pickup", `${root}/${sub}`, { mainCf });
    const maildrop = svc.ctx.queue.dir("maildrop");
    await Deno.chmod(maildrop, 0o1733);
    const cleanup = fakeCleanup(svc.ctx.queue.privateSocket("cleanup"), maildrop);
    const pickup = new Pickup(svc.ctx, {
      loginName: (uid) => (uid === USER_UID ? "joe" : uid === 0 ? "root" : null),
    });
    const done = async () => {
      cleanup.server.close();
      await cleanup.server.done;
    };
    return { svc, maildrop, cleanup, pickup, done };
  };
  try {
    await t.step("the uid is the file owner's and the default sender its login name", async () => {
      const { svc, maildrop, cleanup, pickup, done } = await setup("uid");
      try {
        // The user wrote uid 0 and root's name into the file; the kernel says otherwise.
        const forged: MaildropAttrs = { uid: 0, user: "root", defaultSender: true };
        const a = await writeQueueFile(
          maildrop,
          { sender: "root", attrs: forged },
          [{ address: "x@y" }],
          MESSAGE,
        );
        await Deno.chown(a.path, USER_UID, USER_UID);
        // -f given: the sender is the user's choice, the uid still the kernel's.
        const b = await writeQueueFile(
          maildrop,
          { sender: "list@example.com", attrs: { uid: 0 } as MaildropAttrs },
          [{ address: "x@y" }],
          MESSAGE,
        );
        await Deno.chown(b.path, USER_UID, USER_UID);
        // A uid without a login name keeps the name sendmail wrote.
        const c = await writeQueueFile(
          maildrop,
          { sender: "guess", attrs: { defaultSender: true } as MaildropAttrs },
          [{ address: "x@y" }],
          MESSAGE,
        );
        await Deno.chown(c.path, USER_UID + 1, USER_UID + 1);
        assertEquals((await pickup.scan()).submitted, [a.queueId, b.queueId, c.queueId]);
        assertEquals(svc.lines, [
          `CLEANUP1: uid=${USER_UID} from=<joe>`,
          `CLEANUP2: uid=${USER_UID} from=<list@example.com>`,
          `CLEANUP3: uid=${USER_UID + 1} from=<guess>`,
        ]);
        assertEquals(cleanup.got.map((s) => s.envelope.sender), [
          "joe",
          "list@example.com",
          "guess",
        ]);
      } finally {
        await done();
      }
    });

    await t.step(
      "content_filter goes to cleanup with the envelope, as Postfix's pickup",
      async () => {
        const { maildrop, cleanup, pickup, done } = await setup(
          "filter",
          "content_filter = scan:[127.0.0.1]:10024",
        );
        try {
          const a = await writeQueueFile(
            maildrop,
            { sender: "joe" },
            [{ address: "x@y" }],
            MESSAGE,
          );
          await Deno.chown(a.path, USER_UID, USER_UID);
          assertEquals((await pickup.scan()).submitted, [a.queueId]);
          assertEquals(cleanup.got[0].envelope.actions, { filter: "scan:[127.0.0.1]:10024" });
        } finally {
          await done();
        }
      },
    );

    await t.step("a symlink is removed with a warning, its target never read", async () => {
      const { svc, maildrop, cleanup, pickup, done } = await setup("symlink");
      try {
        const secret = await secretFile(`${root}/symlink/private`);
        const name = newMaildropName();
        await Deno.symlink(secret, `${maildrop}/${name}`);
        fs.lchownSync(`${maildrop}/${name}`, USER_UID, USER_UID);
        const res = await pickup.scan();
        assertEquals(res.removed, [name]);
        assertEquals(cleanup.got, [], "nothing reached cleanup");
        assertEquals(await names(maildrop), []);
        assert((await Deno.stat(secret)).isFile, "the target is untouched");
        const w = svc.lines.find((l) => l.startsWith("warning:"));
        assert(w, svc.lines.join("\n"));
        assertStringIncludes(w, `uid=${USER_UID}: symbolic link`);
        assert(!w.includes(name), "the random part of the name is not logged");
      } finally {
        await done();
      }
    });

    await t.step("a hard link is refused and removed; the other name stays", async () => {
      const { svc, maildrop, cleanup, pickup, done } = await setup("hardlink");
      try {
        const secret = await secretFile(`${root}/hardlink/private`);
        const name = newMaildropName();
        await Deno.link(secret, `${maildrop}/${name}`);
        await Deno.chown(secret, USER_UID, USER_UID);
        const res = await pickup.scan();
        assertEquals(res.removed, [name]);
        assertEquals(cleanup.got, []);
        assertEquals(await names(maildrop), []);
        assertEquals((await Deno.stat(secret)).nlink, 1);
        assert(
          svc.lines.some((l) => l.includes(`uid=${USER_UID}: file has 2 links`)),
          svc.lines.join("\n"),
        );
      } finally {
        await done();
      }
    });

    await t.step("FIFOs, sockets and directories are removed without blocking", async () => {
      const { svc, maildrop, cleanup, pickup, done } = await setup("fifo");
      try {
        const fifo = `${maildrop}/${newMaildropName()}`;
        await mkfifo(fifo);
        await Deno.chown(fifo, USER_UID, USER_UID);
        const dir = `${maildrop}/${newMaildropName()}`;
        await Deno.mkdir(dir);
        const sock = Deno.listen({ transport: "unix", path: `${maildrop}/sock` });
        const ok = await writeQueueFile(maildrop, { sender: "a@b" }, [{ address: "x@y" }], MESSAGE);
        const started = Date.now();
        const res = await pickup.scan();
        assert(Date.now() - started < 5000, "the scan did not wait on the FIFO");
        assertEquals(res.removed.length, 3);
        assertEquals(res.submitted, [ok.queueId]);
        assertEquals(cleanup.got.length, 1);
        assertEquals(await names(maildrop), []);
        for (const what of [`uid=${USER_UID}: FIFO`, "directory", "socket"]) {
          assert(svc.lines.some((l) => l.includes(what)), `${what}: ${svc.lines.join("\n")}`);
        }
        sock.close();
      } finally {
        await done();
      }
    });

    await t.step("a file beyond message_size_limit is set aside, not submitted", async () => {
      const { svc, maildrop, cleanup, pickup, done } = await setup(
        "big",
        "message_size_limit = 100\n",
      );
      try {
        const f = await writeQueueFile(
          maildrop,
          { sender: "a@b" },
          [{ address: "x@y" }],
          "x".repeat(200) + "\r\n",
        );
        await Deno.chown(f.path, USER_UID, USER_UID);
        const res = await pickup.scan();
        assertEquals(res.corrupt, [f.queueId]);
        assertEquals(await names(maildrop), [`.corrupt.${f.queueId}`]);
        assertEquals(cleanup.got.length, 0, "the session was aborted, nothing queued");
        assert(
          svc.lines.some((l) =>
            l.includes(`uid=${USER_UID}: corrupt maildrop file (message larger`)
          ),
          svc.lines.join("\n"),
        );
      } finally {
        await done();
      }
    });

    await t.step("a name that would forge log lines is logged sanitized", async () => {
      const { svc, maildrop, pickup, done } = await setup("names");
      try {
        await Deno.writeTextFile(`${maildrop}/x\nDec  1 fake: line`, "junk");
        await pickup.scan();
        assertEquals(svc.lines.length, 1, svc.lines.join("\n"));
        assertStringIncludes(svc.lines[0], "maildrop/x?Dec??1?fake:?line: uid=0: corrupt");
      } finally {
        await done();
      }
    });

    await t.step("a future mtime is clamped to now with a warning", async () => {
      const { svc, maildrop, cleanup, pickup, done } = await setup("future");
      try {
        const f = await writeQueueFile(maildrop, { sender: "a@b" }, [{ address: "x@y" }], MESSAGE);
        const later = Date.now() / 1000 + 86_400;
        await Deno.utime(f.path, later, later);
        const before = Date.now();
        assertEquals((await pickup.scan()).submitted, [f.queueId]);
        const arrival = cleanup.got[0].envelope.arrival!;
        assert(arrival >= before && arrival <= Date.now(), `arrival ${arrival}`);
        assert(svc.lines.some((l) => l.includes("seconds into the future")));
      } finally {
        await done();
      }
    });

    await t.step("{sync: true} on public/pickup fsyncs maildrop and says so", async () => {
      const { svc, done } = await setup("sync");
      const p = new Pickup(svc.ctx);
      const sock = svc.ctx.queue.publicSocket("pickup");
      const wake = ipcListen(sock, (c) => serveWakeup(c, p));
      try {
        assertEquals(
          await ipcRequest(sock, { op: "wakeup", sync: true }, { timeoutMs: 5000 }),
          { ok: true, synced: true },
        );
        await p.wake();
      } finally {
        wake.close();
        await wake.done;
        await done();
      }
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("openMaildropFile: an entry swapped after lstat is not followed or waited on", async (t) => {
  const root = await Deno.makeTempDir();
  try {
    const secret = await secretFile(`${root}/private`);
    const fresh = async () => {
      const f = await writeQueueFile(root, { sender: "a@b" }, [{ address: "x@y" }], MESSAGE);
      return { path: f.path, lst: lstatEntry(f.path)! };
    };

    await t.step("a regular file opens", async () => {
      const { path, lst } = await fresh();
      const r = openMaildropFile(path, lst);
      assertEquals(r.status, "ok");
      if (r.status === "ok") {
        assertEquals(r.file.uid, Deno.uid());
        let text = "";
        for await (const c of r.file.content()) text += new TextDecoder().decode(c);
        assertEquals(text, MESSAGE);
        r.file.close();
      }
    });

    await t.step("a symlink put in its place is not followed", async () => {
      const { path, lst } = await fresh();
      await Deno.remove(path);
      await Deno.symlink(secret, path);
      assertEquals(openMaildropFile(path, lst).status, "changed");
    });

    await t.step("another file put in its place is noticed (dev/ino)", async () => {
      const { path, lst } = await fresh();
      // Renamed aside rather than removed, so that its inode number is not reused.
      await Deno.rename(path, `${path}.old`);
      await Deno.copyFile(secret, path);
      assertEquals(openMaildropFile(path, lst).status, "changed");
    });

    await t.step("a FIFO put in its place does not block the open", async () => {
      const { path, lst } = await fresh();
      await Deno.rename(path, `${path}.old`);
      await mkfifo(path);
      // Should the open block, a writer arrives after 5 s and the timing check fails.
      const rescue = new Deno.Command("sh", {
        args: ["-c", 'sleep 5; exec 3>"$0"', path],
        stdout: "null",
        stderr: "null",
      }).spawn();
      const started = Date.now();
      const r = openMaildropFile(path, lst);
      const took = Date.now() - started;
      rescue.kill("SIGKILL");
      await rescue.status;
      assertEquals(r.status, "changed");
      assert(took < 4000, `open took ${took} ms`);
    });

    await t.step("a hard link made after lstat is refused", async () => {
      const { path, lst } = await fresh();
      await Deno.link(path, `${path}.2`);
      const r = openMaildropFile(path, lst);
      assertEquals(r.status, "unsafe");
      if (r.status === "unsafe") assertEquals(r.why, "file has 2 links");
    });

    await t.step("a file larger than maxBytes is not read", async () => {
      const { path, lst } = await fresh();
      const r = openMaildropFile(path, lst, { maxBytes: 10 });
      assertEquals(r.status, "corrupt");
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

async function mkfifo(path: string): Promise<void> {
  const out = await new Deno.Command("mkfifo", { args: ["-m", "0644", path] }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
}
