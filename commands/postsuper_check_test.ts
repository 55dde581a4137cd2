/**
 * Tests for postsuper -p and -s (postsuper_check.ts) through postsuper():
 * old temporary files purged and young ones kept, links and alien objects
 * removed, hash levels flattened, bogus names reported, damaged files to
 * corrupt/, names fixed to their content's queue id (never over another
 * file), modes tightened; and the default action with no options.
 */
import { Logger } from "../lib/log/mod.ts";
import { newQueueId, QueueDir } from "../lib/queue/mod.ts";
import { assert, assertEquals } from "../tests/helpers/assert.ts";
import { writeQueueFile } from "../tests/helpers/fake_service.ts";
import { postsuper } from "./postsuper.ts";

async function setup(): Promise<{ root: string; q: QueueDir }> {
  const root = await Deno.makeTempDir({ prefix: "postsuper_check_test" });
  const q = new QueueDir(`${root}/queue`);
  await q.create();
  await Deno.writeTextFile(`${root}/main.cf`, `queue_directory = ${q.root}\n`);
  return { root, q };
}

async function run(root: string, args: string[]) {
  const err: string[] = [];
  const log: string[] = [];
  const logger = new Logger({
    program: "postwarden/postsuper",
    hostname: "mx",
    sinks: [(l) => log.push(l.replace(/^.*?\]: /, "").replace(/\n$/, ""))],
  });
  const code = await postsuper(["-c", root, ...args], {
    err: (l) => void err.push(l),
    log: logger,
  });
  return { code, err, log };
}

const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);
const DAY = 24 * 3600 * 1000;

async function message(dir: string, queueId?: string): Promise<string> {
  return (await writeQueueFile(
    dir,
    { sender: "a@example.com", ...(queueId ? { queueId } : {}) },
    [{ address: "b@example.net" }],
    "Subject: x\r\n\r\nbody\r\n",
  )).queueId;
}

async function aged(path: string, ms: number): Promise<void> {
  await Deno.writeTextFile(path, "partial");
  const t = new Date(Date.now() - ms);
  await Deno.utime(path, t, t);
}

Deno.test("postsuper -p and -s", async (t) => {
  const { root, q } = await setup();
  try {
    await t.step("-p removes temporary files older than a day, keeps younger ones", async () => {
      const oldIncoming = `${q.dir("incoming")}/.${newQueueId()}.tmp`;
      const oldMaildrop = `${q.dir("maildrop")}/.${newQueueId()}.0123.tmp`;
      const oldDefer = `${q.dir("defer")}/${newQueueId()}.tmp`;
      const young = `${q.dir("incoming")}/.${newQueueId()}.tmp`;
      await aged(oldIncoming, DAY + 60_000);
      await aged(oldMaildrop, 2 * DAY);
      await aged(oldDefer, 2 * DAY);
      await aged(young, DAY - 60_000);
      const id = await message(q.dir("deferred"));
      await Deno.utime(q.path("deferred", id), new Date(0), new Date(0));
      const r = await run(root, ["-p"]);
      assertEquals([r.code, r.err, r.log], [0, [], []]);
      for (const p of [oldIncoming, oldMaildrop, oldDefer]) assertEquals(await exists(p), false, p);
      assert(await exists(young), "a young temporary file may still be written");
      assert(await exists(q.path("deferred", id)), "an old message is no temporary file");
    });

    await t.step("-p removes links and other non-files, never what a link names", async () => {
      const target = `${root}/precious`;
      await Deno.writeTextFile(target, "keep");
      await Deno.symlink(target, `${q.dir("incoming")}/${newQueueId()}`);
      await Deno.symlink(target, `${q.dir("maildrop")}/evil`);
      await Deno.mkdir(`${q.dir("hold")}/junk`);
      const r = await run(root, ["-p"]);
      assertEquals(r.err, []);
      assertEquals([...Deno.readDirSync(q.dir("incoming"))].length, 1); // the young .tmp
      assertEquals(await exists(`${q.dir("maildrop")}/evil`), false);
      assertEquals(await exists(`${q.dir("hold")}/junk`), false);
      assertEquals(await Deno.readTextFile(target), "keep");
    });

    await t.step("-s reports bogus names as Postfix does and leaves them", async () => {
      await Deno.writeTextFile(`${q.dir("deferred")}/notes.txt`, "x", { mode: 0o600 });
      await Deno.writeTextFile(`${q.dir("maildrop")}/ABC`, "x");
      const r = await run(root, ["-s"]);
      assertEquals(r.err, [
        "postsuper: warning: bogus file name: maildrop/ABC",
        "postsuper: warning: bogus file name: deferred/notes.txt",
      ]);
      assertEquals(r.log, [
        "warning: bogus file name: maildrop/ABC",
        "warning: bogus file name: deferred/notes.txt",
      ]);
      assert(await exists(`${q.dir("deferred")}/notes.txt`));
      await Deno.remove(`${q.dir("deferred")}/notes.txt`);
      await Deno.remove(`${q.dir("maildrop")}/ABC`);
    });

    await t.step("-s moves a damaged queue file to corrupt/", async () => {
      const id = await message(q.dir("hold"));
      const bytes = await Deno.readFile(q.path("hold", id));
      await Deno.writeFile(q.path("hold", id), bytes.subarray(0, bytes.length - 5));
      const r = await run(root, ["-s", "hold"]);
      assertEquals(r.err.length, 1);
      assert(
        r.err[0].startsWith(`postsuper: warning: hold/${id}: damaged queue file moved to corrupt/`),
      );
      assert(await exists(q.path("corrupt", id)));
      assertEquals(await exists(q.path("hold", id)), false);
    });

    await t.step("-s renames a file to the queue id its content carries", async () => {
      const id = newQueueId();
      await message(q.dir("deferred"), id);
      const wrong = newQueueId();
      await Deno.rename(q.path("deferred", id), q.path("deferred", wrong));
      await Deno.writeTextFile(q.deferLog(wrong), '{"rcpt":"b@example.net","reason":"x"}\n');
      const r = await run(root, ["-s", "-d", "ALL"]).catch((e) => e);
      // With an operation on ids, a rename stops the run as in Postfix.
      assertEquals(r.code, 1);
      assertEquals(r.err, [
        "postsuper: Renamed to match queue id: 1 message",
        "postsuper: warning: QUEUE FILE NAMES WERE CHANGED TO MATCH THEIR QUEUE IDS",
        "postsuper: error: QUEUE FILE NAMES WERE CHANGED TO MATCH THEIR QUEUE IDS",
        "postsuper: fatal: CHECK YOUR QUEUE IDS AND RE-ISSUE THE COMMAND",
      ]);
      assert(await exists(q.path("deferred", id)), "renamed, not deleted");
      assertEquals(await exists(q.path("deferred", wrong)), false);
      assert(await exists(q.deferLog(id)), "the deferral log follows");
      assertEquals(await exists(q.deferLog(wrong)), false);
      const again = await run(root, ["-s"]);
      assertEquals([again.code, again.err], [0, []]);
    });

    await t.step("-s never renames a copy over the message it copies", async () => {
      const id = (await Array.fromAsync(Deno.readDir(q.dir("deferred"))))[0].name;
      const copy = newQueueId();
      await Deno.copyFile(q.path("deferred", id), q.path("hold", copy));
      const r = await run(root, ["-s"]);
      assertEquals(r.err, [
        `postsuper: warning: queue id mismatch: hold/${copy} holds message ${id}, which ` +
        `deferred/${id} already is; left alone (a copy: delete one with postsuper -d)`,
      ]);
      assert(await exists(q.path("hold", copy)));
      await Deno.remove(q.path("hold", copy));
    });

    await t.step("-s flattens a hash level and tightens a readable file's mode", async () => {
      const id = await message(q.dir("incoming"));
      await Deno.mkdir(`${q.dir("deferred")}/A`);
      await Deno.rename(q.path("incoming", id), `${q.dir("deferred")}/A/${id}`);
      await Deno.chmod(`${q.dir("deferred")}/A/${id}`, 0o744);
      const r = await run(root, ["-s"]);
      assertEquals(r.err, [
        `postsuper: warning: deferred/${id}: mode 0744 gave group or other access; changed to 0700`,
      ]);
      assertEquals(((await Deno.stat(q.path("deferred", id))).mode ?? 0) & 0o777, 0o700);
      assertEquals(await exists(`${q.dir("deferred")}/A`), false);
    });

    await t.step("no operation means -s -p; a QUEUE of defer is accepted", async () => {
      const old = `${q.dir("incoming")}/.${newQueueId()}.tmp`;
      await aged(old, 2 * DAY);
      await Deno.writeTextFile(`${q.dir("defer")}/bogus`, "x");
      const r = await run(root, []);
      assertEquals(r.err, ["postsuper: warning: bogus file name: defer/bogus"]);
      assertEquals(await exists(old), false);
      assertEquals((await run(root, ["-s", "defer"])).err.length, 1);
      assertEquals((await run(root, ["-s", "incoming"])).err, []);
      await Deno.remove(`${q.dir("defer")}/bogus`);
      const bad = await run(root, ["-p", "nosuch"]);
      assertEquals([bad.code, bad.err], [1, ["postsuper: fatal: invalid directory name: nosuch"]]);
    });
    await t.step("-s -p with the permissions of deno task postsuper", async () => {
      const old = `${q.dir("maildrop")}/.${newQueueId()}.0123.tmp`;
      await aged(old, 2 * DAY);
      const id = await message(q.dir("deferred"));
      await Deno.chmod(q.path("deferred", id), 0o640);
      const task = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)))
        .tasks.postsuper as string;
      const flags = task.split(" ").filter((w) => w.startsWith("--"));
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", ...flags, new URL("./postsuper.ts", import.meta.url).pathname, "-s", "-p"],
        env: { MAIL_CONFIG: root },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(out.stderr);
      assertEquals([out.code, err], [
        0,
        `postsuper: warning: deferred/${id}: mode 0640 gave group or other access; changed to 0600\n`,
      ]);
      assertEquals(await exists(old), false);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
