/**
 * Tests for postsuper: delete, hold, release and requeue on a temporary
 * queue written with lib/queue (ids, ALL, `-` from stdin, named queues,
 * defer logs, active messages refused, release mtime, summary and log
 * lines, qmgr wake-up on a fake socket), the command line, and the real
 * command run as a subprocess with the permissions of `deno task postsuper`.
 */
import { ipcListen } from "../lib/ipc/mod.ts";
import { Logger } from "../lib/log/mod.ts";
import { QueueDir, type QueueName } from "../lib/queue/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "../tests/helpers/assert.ts";
import { writeQueueFile } from "../tests/helpers/fake_service.ts";
import { postsuper } from "./postsuper.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const dec = new TextDecoder();

interface Captured {
  code: number;
  err: string[];
  log: string[];
}

async function run(root: string, args: string[], stdin?: string): Promise<Captured> {
  const err: string[] = [];
  const log: string[] = [];
  const logger = new Logger({
    program: "postwarden/postsuper",
    hostname: "mx",
    sinks: [(l) => log.push(l.replace(/^.*?\]: /, "").replace(/\n$/, ""))],
  });
  const code = await postsuper(["-c", root, ...args], {
    err: (l) => void err.push(l),
    stdin: stdin === undefined ? undefined : () => Promise.resolve(stdin),
    log: logger,
  });
  return { code, err, log };
}

async function setup(): Promise<{ root: string; q: QueueDir }> {
  const root = await Deno.makeTempDir({ prefix: "postsuper_test" });
  const q = new QueueDir(`${root}/queue`);
  await q.create();
  await Deno.writeTextFile(`${root}/main.cf`, `queue_directory = ${q.root}\n`);
  return { root, q };
}

async function put(q: QueueDir, queue: QueueName): Promise<string> {
  const { queueId } = await writeQueueFile(
    q.dir(queue),
    { sender: "a@example.com" },
    [{ address: "b@example.net" }],
    "Subject: x\r\n\r\nbody\r\n",
  );
  return queueId;
}

function where(q: QueueDir, id: string): string | null {
  for (const queue of ["maildrop", "incoming", "active", "deferred", "hold", "corrupt"] as const) {
    try {
      Deno.lstatSync(q.path(queue, id));
      return queue;
    } catch {
      // not here
    }
  }
  return null;
}

const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);

Deno.test("postsuper", async (t) => {
  const { root, q } = await setup();

  await t.step("-d ID removes the file and its defer log", async () => {
    const id = await put(q, "deferred");
    const other = await put(q, "deferred");
    await Deno.writeTextFile(q.deferLog(id), '{"rcpt":"b@example.net","reason":"x"}\n');
    const r = await run(root, ["-d", id]);
    assertEquals(r.code, 0);
    assertEquals(r.err, ["postsuper: Deleted: 1 message"]);
    assertEquals(r.log, [`${id}: removed`]);
    assertEquals(where(q, id), null);
    assertEquals(await exists(q.deferLog(id)), false);
    assertEquals(where(q, other), "deferred");
    await run(root, ["-d", other]);
  });

  await t.step("-h ALL holds incoming and deferred; active is refused", async () => {
    const a = await put(q, "incoming");
    const b = await put(q, "deferred");
    const c = await put(q, "active");
    const r = await run(root, ["-h", "ALL"]);
    assertEquals(r.code, 0);
    assertEquals(r.err, [
      `postsuper: warning: ${c}: message is being delivered (active queue); try again later`,
      "postsuper: Placed on hold: 2 messages",
    ]);
    assertEquals(r.log, [`${a}: placed on hold`, `${b}: placed on hold`]);
    assertEquals([where(q, a), where(q, b), where(q, c)], ["hold", "hold", "active"]);
    const d = await run(root, ["-d", c]);
    assertEquals(d.err[1], "postsuper: Deleted: 0 messages");
    assertEquals(where(q, c), "active");
    await Deno.remove(q.path("active", c));
  });

  await t.step("-H ALL releases to deferred with mtime now", async () => {
    const ids = [...Deno.readDirSync(q.dir("hold"))].map((e) => e.name).sort();
    assertEquals(ids.length, 2);
    await Deno.utime(q.path("hold", ids[0]), 1000, 1000);
    const before = Date.now() - 1000;
    const r = await run(root, ["-H", "ALL"]);
    assertEquals(r.err, ["postsuper: Released from hold: 2 messages"]);
    assertEquals(r.log, ids.map((id) => `${id}: released from hold`));
    for (const id of ids) {
      assertEquals(where(q, id), "deferred");
      const st = await Deno.stat(q.path("deferred", id));
      assert(st.mtime!.getTime() >= before, "mtime is the release time");
    }
  });

  await t.step("-r moves to incoming, drops the defer log and wakes qmgr", async () => {
    const ids = [...Deno.readDirSync(q.dir("deferred"))].map((e) => e.name).sort();
    await Deno.writeTextFile(q.deferLog(ids[0]), '{"rcpt":"b@example.net","reason":"x"}\n');
    const asked: unknown[] = [];
    const server = await ipcListen(q.publicSocket("qmgr"), async (conn) => {
      asked.push(await conn.recvMsg());
      await conn.send({ ok: true });
      conn.close();
    });
    try {
      const r = await run(root, ["-r", ids[0], "-r", ids[1]]);
      assertEquals(r.err, ["postsuper: Requeued: 2 messages"]);
      assertEquals(r.log, ids.map((id) => `${id}: requeued`));
      assertEquals(ids.map((id) => where(q, id)), ["incoming", "incoming"]);
      assertEquals(await exists(q.deferLog(ids[0])), false);
      assertEquals(asked, [{ op: "wakeup" }]);
    } finally {
      await server.close();
    }
  });

  await t.step("-d - reads ids from stdin; named queues limit the search", async () => {
    const ids = [...Deno.readDirSync(q.dir("incoming"))].map((e) => e.name).sort();
    const h = await put(q, "hold");
    const none = await run(root, ["-d", "ALL", "deferred"]);
    assertEquals(none.err, ["postsuper: Deleted: 0 messages"]);
    const r = await run(root, ["-d", "-"], `${ids[0]}\n${ids[1]} trailing words\n\nbad!id\n`);
    assertEquals(r.err, [
      "postsuper: warning: invalid mail queue id: bad!id",
      "postsuper: Deleted: 2 messages",
    ]);
    assertEquals(where(q, h), "hold");
    const all = await run(root, ["-d", "ALL", "hold"]);
    assertEquals(all.err, ["postsuper: Deleted: 1 message"]);
    assertEquals(where(q, h), null);
  });

  await t.step("several operations report in Postfix's order, 0 included", async () => {
    const id = await put(q, "hold");
    const r = await run(root, ["-H", "ALL", "-d", "ALL", "-h", "ALL", "-r", id]);
    assertEquals(r.err, [
      "postsuper: Requeued: 1 message",
      "postsuper: Deleted: 1 message",
      "postsuper: Placed on hold: 0 messages",
      "postsuper: Released from hold: 0 messages",
    ]);
    assertEquals(r.log, [`${id}: requeued`, `${id}: removed`]);
  });

  await t.step("-e marks once (also in active/), -f also releases from hold", async () => {
    for (const queue of ["hold", "incoming", "active", "deferred"] as const) {
      for (const e of Deno.readDirSync(q.dir(queue))) await Deno.remove(q.path(queue, e.name));
    }
    const held = await put(q, "hold");
    const active = await put(q, "active");
    const deferred = await put(q, "deferred");
    const mode = async (queue: QueueName, id: string) =>
      (await Deno.stat(q.path(queue, id))).mode! & 0o777;
    const e = await run(root, ["-e", deferred, "-e", active]);
    assertEquals(e.err, ["postsuper: Force-expired: 2 messages"]);
    assertEquals(e.log, [`${deferred}: expired`, `${active}: expired`]);
    assertEquals(await mode("deferred", deferred), 0o700);
    assertEquals(await mode("active", active), 0o700);
    // Marked before: not counted again (Postfix counts only new marks).
    const again = await run(root, ["-e", "ALL"]);
    assertEquals(again.err, ["postsuper: Force-expired: 1 message"]);
    assertEquals(again.log, [`${held}: expired`]);
    assertEquals(where(q, held), "hold", "-e leaves a held message held");
    const f = await run(root, ["-f", held]);
    assertEquals(f.err, [
      "postsuper: Force-expired: 0 messages",
      "postsuper: Released from hold: 1 message",
    ]);
    assertEquals(f.log, [`${held}: released from hold`]);
    assertEquals(where(q, held), "deferred");
    assertEquals(await mode("deferred", held), 0o700);
    const fresh = await put(q, "hold");
    const f2 = await run(root, ["-f", fresh]);
    assertEquals(f2.log, [`${fresh}: expired`, `${fresh}: released from hold`]);
    for (
      const [queue, id] of [["deferred", held], ["deferred", fresh], ["active", active], [
        "deferred",
        deferred,
      ]] as const
    ) await Deno.remove(q.path(queue, id));
  });

  await t.step("ALL with other ids: the others are ignored, silently as Postfix 3.7", async () => {
    const r = await run(root, ["-h", "BOGUS", "-h", "ALL"]);
    assertEquals([r.code, r.err], [0, ["postsuper: Placed on hold: 0 messages"]]);
  });

  await t.step("bad command lines and configs: fatal, exit 1", async () => {
    const u = await run(root, ["-Z"]);
    assertEquals(u.code, 1);
    assertStringIncludes(u.err[0], "postsuper: fatal: usage: postsuper");
    const d = await run(root, ["-d", "ALL", "nosuch"]);
    assertEquals(d.code, 1);
    assertEquals(d.err, ["postsuper: fatal: invalid directory name: nosuch"]);
    assertEquals((await run(root, ["-x"])).code, 1);
    const nc = await run(`${root}/none`, ["-d", "ALL"]);
    assertEquals(nc.code, 1);
    assertStringIncludes(nc.err[0], "postsuper: fatal: open ");
    const missing = `${root}/gone`;
    await Deno.mkdir(missing);
    await Deno.writeTextFile(`${missing}/main.cf`, `queue_directory = ${root}/no-queue\n`);
    const nq = await run(missing, ["-d", "ALL"]);
    assertEquals(nq.code, 1);
    assertEquals(nq.err, [`postsuper: fatal: chdir ${root}/no-queue: No such file or directory`]);
  });

  await t.step("subprocess with the permissions of deno task postsuper", async () => {
    const id = await put(q, "deferred");
    await Deno.writeTextFile(
      `${root}/main.cf`,
      `queue_directory = ${q.root}\nmaillog_file = ${root}/maillog\n`,
    );
    const task = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).tasks.postsuper as string;
    const flags = task.split(" ").filter((w) => w.startsWith("--"));
    const p = new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, `${ROOT}/commands/postsuper.ts`, "-d", "-", "-h", "ALL"],
      env: { MAIL_CONFIG: root },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(`${id}\n`));
    await w.close();
    const out = await p.output();
    assertEquals(out.code, 0, dec.decode(out.stderr));
    assertEquals(
      dec.decode(out.stderr),
      "postsuper: Deleted: 1 message\npostsuper: Placed on hold: 0 messages\n",
    );
    assertEquals(where(q, id), null);
    assertStringIncludes(await Deno.readTextFile(`${root}/maillog`), `/postsuper[`);
    assertStringIncludes(await Deno.readTextFile(`${root}/maillog`), `]: ${id}: removed\n`);
  });

  await Deno.remove(root, { recursive: true });
});
