import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import {
  DirSyncer,
  newQueueId,
  QueueDir,
  QueueFile,
  QueueFormatError,
  QueueWriter,
  syncDir,
} from "./mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("queue store", async (t) => {
  const root = await Deno.makeTempDir();
  const q = new QueueDir(root);
  await q.create();
  const syncer = new DirSyncer(q.dir("incoming"));

  async function write(body: string, rcpts = ["a@x", "b@y"], dirSyncer = syncer): Promise<string> {
    const id = newQueueId();
    const w = new QueueWriter(q.dir("incoming"), id, dirSyncer);
    await w.begin(
      { queueId: id, arrival: 1, sender: "s@z" },
      rcpts.map((address) => ({ address })),
    );
    await w.write(enc.encode(body));
    await w.commit();
    return id;
  }

  await t.step("round trip of envelope, recipients and content", async () => {
    const big = "x".repeat(200_000) + "\r\n";
    const id = await write(big);
    const f = await QueueFile.open(q.path("incoming", id));
    assertEquals(f.envelope.sender, "s@z");
    assertEquals(f.head.recipients.map((r) => r.address), ["a@x", "b@y"]);
    assertEquals(dec.decode(await f.readContent()), big);
    f.close();
  });

  await t.step("contentSize: the content's size from the file's size alone", async () => {
    for (const body of ["", "hi\r\n", "x".repeat(200_000) + "\r\n"]) {
      const f = await QueueFile.open(q.path("incoming", await write(body)));
      assertEquals(f.contentSize, body.length);
      f.close();
    }
  });

  await t.step("mark done persists", async () => {
    const id = await write("hi\r\n");
    const f = await QueueFile.open(q.path("incoming", id), { write: true });
    await f.markDone([1]);
    f.close();
    const g = await QueueFile.open(q.path("incoming", id));
    assertEquals(g.head.recipients.map((r) => r.done), [false, true]);
    g.close();
  });

  await t.step("concurrent commits share directory syncs, each after its own rename", async () => {
    // Directory syncs are held open by the test, so that all 20 commits
    // arrive while the first one is in flight, whatever the disk's speed.
    const events: string[] = [];
    const gates: (() => void)[] = [];
    let started = 0;
    let requests = 0;
    class Recording extends DirSyncer {
      override sync(): Promise<void> {
        const j = ++requests;
        events.push(`request ${j}`);
        return super.sync().then(() => void events.push(`resolved ${j}`));
      }
    }
    const held = new Recording(q.dir("incoming"), async (path) => {
      const k = ++started;
      events.push(`start ${k}`);
      await new Promise<void>((open) => gates.push(open));
      await syncDir(path);
      events.push(`end ${k}`);
    });
    const until = async (cond: () => boolean, what: string) => {
      for (const end = Date.now() + 10_000; !cond();) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${events}`);
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    const writes = Array.from({ length: 20 }, (_, i) => write(`m${i}\r\n`, undefined, held));
    await until(() => requests === 20 && gates.length === 1, "20 commits behind sync 1");
    gates[0]();
    const resolved = () => events.filter((e) => e.startsWith("resolved")).length;
    await until(() => gates.length === 2 || resolved() === 20, "sync 2");
    gates[1]?.();
    const ids = await Promise.all(writes);

    assertEquals([requests, started], [20, 2], "20 commits, 2 directory syncs");
    // Durability: each commit resolved only after a sync that started after its request.
    for (let j = 1; j <= 20; j++) {
      const req = events.indexOf(`request ${j}`);
      const res = events.indexOf(`resolved ${j}`);
      const covered = [1, 2].some((k) =>
        events.indexOf(`start ${k}`) > req && events.indexOf(`end ${k}`) < res
      );
      assert(covered, `commit ${j} resolved without a sync after it: ${events.join(", ")}`);
    }
    assertEquals(new Set(ids).size, 20);
    for (const id of ids) (await QueueFile.open(q.path("incoming", id))).close();
  });

  await t.step("a failed directory sync: the commit rejects and nothing stays queued", async () => {
    const names = () => [...Deno.readDirSync(q.dir("incoming"))].map((e) => e.name).sort();
    const before = names();
    let atSync: string[] = [];
    const failing = new DirSyncer(q.dir("incoming"), () => {
      atSync = names();
      return Promise.reject(new Error("EIO"));
    });
    await assertRejects(() => write("Subject: x\r\n\r\nx\r\n", undefined, failing), Error, "EIO");
    // The file was under its queue id when the directory was synced.
    const added = atSync.filter((n) => !before.includes(n));
    assert(added.length === 1 && /^[0-9A-F]+$/.test(added[0]), `${added}`);
    const after = [...Deno.readDirSync(q.dir("incoming"))].map((e) => e.name).sort();
    assertEquals(after, before, "neither the queue file nor a temporary one is left");
  });

  await t.step("truncation at every offset is detected", async () => {
    const id = await write("Subject: t\r\n\r\nbody\r\n");
    const full = await Deno.readFile(q.path("incoming", id));
    for (let n = 0; n < full.length; n++) {
      const p = `${root}/corrupt/t`;
      await Deno.writeFile(p, full.subarray(0, n));
      await assertRejects(() => QueueFile.open(p), QueueFormatError);
    }
    // a flipped trailer byte too
    const bad = full.slice();
    bad[bad.length - 1] ^= 1;
    await Deno.writeFile(`${root}/corrupt/t`, bad);
    await assertRejects(() => QueueFile.open(`${root}/corrupt/t`), QueueFormatError);
  });

  await t.step("move renames between queues and fsyncs the destination folder", async () => {
    const synced: string[] = [];
    const mq = new QueueDir(root, (path) => {
      synced.push(path);
      return syncDir(path);
    });
    const id = await write("moved\r\n");
    await mq.move(id, "incoming", "active");
    assertEquals(synced, [mq.dir("active")]);
    assert(await Deno.stat(mq.path("active", id)).then(() => true));
    await assertRejects(() => Deno.stat(mq.path("incoming", id)), Deno.errors.NotFound);
    // Gone from the source (taken by another process): NotFound, no sync.
    await assertRejects(() => mq.move(id, "incoming", "deferred"), Deno.errors.NotFound);
    assertEquals(synced.length, 1);
    await mq.move(id, "active", "deferred");
    assertEquals(synced, [mq.dir("active"), mq.dir("deferred")]);
  });

  await t.step("queue ids are unique and sortable", () => {
    const ids = Array.from({ length: 1000 }, () => newQueueId());
    assertEquals(new Set(ids).size, 1000);
    assert(ids.every((v, i) => i === 0 || ids[i - 1] < v));
  });

  await Deno.remove(root, { recursive: true });
});
