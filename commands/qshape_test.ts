/**
 * Tests for qshape: the headings and rows of Debian's /usr/sbin/qshape
 * (Postfix 3.7) for an empty queue and for bucket options (outputs taken
 * from runs of the real script), age buckets, domains, parent domains,
 * truncation, options and the command on a queue written with lib/queue.
 * tests/interop/qshape_test.ts compares with the real script on real mail.
 */
import { QueueDir } from "../lib/queue/mod.ts";
import { assertEquals } from "../tests/helpers/assert.ts";
import { writeQueueFile } from "../tests/helpers/fake_service.ts";
import { DEFAULT_SHAPE, domainOf, parentOf, qshape, Shape } from "./qshape.ts";

const MIN = 60_000;

async function run(args: string[], env: { MAIL_CONFIG?: string } = {}, now?: number) {
  let out = "";
  const err: string[] = [];
  const code = await qshape(args, {
    out: (t) => void (out += t),
    err: (l) => void err.push(l),
    env,
    now: now === undefined ? undefined : () => now,
  });
  return { code, out, err };
}

Deno.test("qshape", async (t) => {
  await t.step("empty queues: the real script's output, byte for byte", async () => {
    const dir = await Deno.makeTempDir();
    try {
      assertEquals(
        (await run([dir])).out,
        "                                         T  5 10 20 40 80 160 320 640 1280 1280+\n" +
          "                                  TOTAL  0  0  0  0  0  0   0   0   0    0     0\n",
      );
      assertEquals(
        (await run(["-b", "3", "-t", "1", "-w", "30", dir])).out,
        "                                                                      T  1  2 2+\n" +
          "                                                               TOTAL  0  0  0  0\n",
      );
      assertEquals(
        (await run(["-l", "-b", "4", dir])).out,
        "                                                                  T  5 10 15 15+\n" +
          "                                                           TOTAL  0  0  0  0   0\n",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("age buckets, geometric and linear", () => {
    const s = new Shape();
    assertEquals(
      [0, 4.9, 5, 9.9, 10, 19.9, 20, 1279, 1280, 99999].map((m) => s.bucket(m * MIN)),
      [1, 1, 2, 2, 3, 3, 4, 9, 10, 10],
    );
    const l = new Shape({ ...DEFAULT_SHAPE, linear: true, buckets: 4 });
    assertEquals([0, 5, 10, 15, 60].map((m) => l.bucket(m * MIN)), [1, 2, 3, 4, 4]);
  });

  await t.step("domains as the script cuts them", () => {
    assertEquals(domainOf(""), "MAILER-DAEMON");
    assertEquals(domainOf('"a@b"@x.example'), "x.example");
    assertEquals(domainOf("u@.x..example."), "x.example");
    assertEquals(domainOf("noat"), "noat");
    assertEquals(parentOf("a.b.example.com"), ".b.example.com");
    assertEquals(parentOf(".b.example.com"), ".example.com");
    assertEquals(parentOf(".example.com"), null);
    assertEquals(parentOf("example.com"), null);
  });

  await t.step("counts, order, parents and truncation", () => {
    const s = new Shape({ ...DEFAULT_SHAPE, parents: true, minSubdomains: 2 });
    s.add(0, "s@x", ["a@one.example.com", "b@two.example.com", "c@two.example.com"]);
    s.add(30 * MIN, "s@x", ["d@a-very-long-subdomain-name-for-truncation.example.org"]);
    s.add(0, "s@x", []); // no pending recipient: not counted
    const lines = s.format().split("\n");
    assertEquals(lines[1].trim().split(/\s+/), [
      "TOTAL",
      "4",
      "3",
      "0",
      "0",
      "1",
      ...Array(6).fill("0"),
    ]);
    assertEquals(lines[2].trim().split(/\s+/)[0], ".example.com");
    assertEquals(lines[2].trim().split(/\s+/)[1], "3");
    assertEquals(lines[3].trim().split(/\s+/).slice(0, 2), ["two.example.com", "2"]);
    // The long name: "+" and its last characters, so that the counts still end at column 80.
    const long = lines.find((l) => l.startsWith("+"))!;
    assertEquals(long.length, 80);
    // Counts take 41 columns (3+3+3+3+3+3+4+4+4+5+6): 39 for the name, "+" and its last 38.
    const name = "a-very-long-subdomain-name-for-truncation.example.org";
    assertEquals(long.slice(0, 39), "+" + name.slice(-38));
    // .example.org has one subdomain: hidden under -m 2.
    assertEquals(lines.some((l) => l.trim().startsWith(".example.org ")), false);
  });

  await t.step("-s counts senders, the null sender as MAILER-DAEMON", () => {
    const s = new Shape({ ...DEFAULT_SHAPE, senders: true });
    s.add(0, "", ["a@x.example", "b@y.example"]);
    s.add(0, "u@Sender.Example", ["a@x.example"]);
    s.add(0, "v@sender.example", ["a@x.example"]);
    const rows = s.format().split("\n").slice(1, -1).map((l) => l.trim().split(/\s+/).slice(0, 2));
    assertEquals(rows, [["TOTAL", "3"], ["sender.example", "2"], ["MAILER-DAEMON", "1"]]);
  });

  await t.step("the command on a queue: defaults, named and absolute queues", async () => {
    const root = await Deno.makeTempDir({ prefix: "qshape_test" });
    const q = new QueueDir(`${root}/queue`);
    await q.create();
    await Deno.writeTextFile(`${root}/main.cf`, `queue_directory = ${q.root}\n`);
    const now = Date.now();
    const put = (queue: "incoming" | "active" | "deferred", rcpts: string[], ageMin: number) =>
      writeQueueFile(
        q.dir(queue),
        { sender: "s@example.com", arrival: now - ageMin * MIN },
        rcpts.map((address) => ({ address })),
        "Subject: x\r\n\r\n",
      );
    try {
      await put("incoming", ["a@in.example"], 1);
      await put("active", ["b@act.example", "c@act.example"], 7);
      await put("deferred", ["d@def.example"], 100);
      await Deno.writeTextFile(`${q.dir("incoming")}/.0000000000000AA.tmp`, "partial");
      await Deno.writeTextFile(`${q.dir("incoming")}/0000000000000BB`, "damaged");
      const r = await run(["-c", root], {}, now);
      assertEquals([r.code, r.err], [0, []]);
      const rows = r.out.split("\n").slice(1, -1).map((l) => l.trim().split(/\s+/));
      assertEquals(rows, [
        ["TOTAL", "3", "1", "2", ...Array(8).fill("0")],
        ["act.example", "2", "0", "2", ...Array(8).fill("0")],
        ["in.example", "1", "1", "0", ...Array(8).fill("0")],
      ]);
      const d = await run(["deferred", `${q.dir("hold")}`, "nosuch"], { MAIL_CONFIG: root }, now);
      assertEquals(d.err, [`Can't stat ${q.root}/nosuch: No such file or directory`]);
      // 100 minutes old: the [80, 160) bucket.
      assertEquals(
        d.out.split("\n")[2].trim().split(/\s+/),
        ["def.example", "1", "0", "0", "0", "0", "0", "1", "0", "0", "0", "0"],
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });

  await t.step("with the permissions of deno task qshape (read-only)", async () => {
    const root = await Deno.makeTempDir({ prefix: "qshape_task_test" });
    const q = new QueueDir(`${root}/queue`);
    await q.create();
    await Deno.writeTextFile(`${root}/main.cf`, `queue_directory = ${q.root}\n`);
    try {
      await writeQueueFile(
        q.dir("incoming"),
        { sender: "s@example.com" },
        [{ address: "a@task.example" }],
        "Subject: x\r\n\r\n",
      );
      const task = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)))
        .tasks.qshape as string;
      const flags = task.split(" ").filter((w) => w.startsWith("--"));
      assertEquals(flags, ["--allow-read", "--allow-env"]);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", ...flags, new URL("./qshape.ts", import.meta.url).pathname, "-c", root],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      assertEquals([out.code, dec.decode(out.stderr)], [0, ""]);
      assertEquals(dec.decode(out.stdout).split("\n")[2].trim().split(/\s+/).slice(0, 3), [
        "task.example",
        "1",
        "1",
      ]);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });

  await t.step("bad options: Getopt::Std's words and the usage, exit 255", async () => {
    const r = await run(["-x"]);
    assertEquals(r.code, 255);
    assertEquals(r.err[0], "qshape: Unknown option: x");
    assertEquals(r.err[1], "Usage: qshape [ -s ] [ -p ] [ -m <min_subdomains> ] [ -l ]");
    assertEquals((await run(["-b"])).err[0], "qshape: Option b requires an argument");
  });
});
