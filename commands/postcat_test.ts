/**
 * Tests for postcat: the Postfix-style listing of queue files written with
 * lib/queue (envelope, named attributes, done and original recipients, CRLF
 * shown as LF), -e/-h/-b, -q over every queue, a corrupt file and a missing
 * id, and the real command run as a subprocess with the permissions of
 * `deno task postcat`.
 */
import { QueueDir, QueueFile } from "../lib/queue/mod.ts";
import { assertEquals, assertStringIncludes } from "../tests/helpers/assert.ts";
import { writeQueueFile } from "../tests/helpers/fake_service.ts";
import { postcat } from "./postcat.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const dec = new TextDecoder();

/** 2020-11-30 16:41:28 UTC, a Monday. */
const T0 = Date.UTC(2020, 10, 30, 16, 41, 28, 500);

interface Captured {
  code: number;
  out: string;
  err: string[];
}

async function run(args: string[], env: { MAIL_CONFIG?: string } = {}): Promise<Captured> {
  const parts: Uint8Array[] = [];
  const err: string[] = [];
  const code = await postcat(args, {
    out: (b) => void parts.push(b.slice()),
    err: (l) => void err.push(l),
    env,
    timeZone: "UTC",
  });
  return { code, out: parts.map((p) => dec.decode(p)).join(""), err };
}

const BODY = "Subject: test\r\nFrom: a@example.com\r\n\r\nhello\r\n\r\nbye\r\n";

Deno.test("postcat", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "postcat_test" });
  const q = new QueueDir(`${root}/queue`);
  await q.create();
  await Deno.writeTextFile(`${root}/main.cf`, `queue_directory = ${q.root}\n`);
  const { queueId: id, path } = await writeQueueFile(
    q.dir("deferred"),
    {
      sender: "a@example.com",
      arrival: T0,
      attrs: {
        clientName: "client.test",
        clientAddr: "192.0.2.1",
        helo: "c",
        protocol: "ESMTP",
        envid: "a+b",
        ret: "HDRS",
      },
      filter: "smtp:[127.0.0.1]:10024",
    },
    [
      { address: "b@example.net", orcpt: "rfc822;B@example.net", notify: ["SUCCESS", "DELAY"] },
      { address: "c@example.net" },
    ],
    BODY,
  );
  const f = await QueueFile.open(path, { write: true });
  await f.markDone([1]);
  const contentOffset = f.head.contentOffset;
  const contentSize = f.size - contentOffset;
  f.close();

  await t.step("whole file, as Postfix lays it out", async () => {
    const r = await run([path]);
    assertEquals(r.err, []);
    assertEquals(r.code, 0);
    const n = (x: number) => String(x).padStart(15);
    assertEquals(
      r.out,
      [
        `*** ENVELOPE RECORDS ${path} ***`,
        `message_size: ${n(contentSize)} ${n(contentOffset)} ${n(2)}`,
        "message_arrival_time: Mon Nov 30 16:41:28 2020",
        "create_time: Mon Nov 30 16:41:28 2020",
        "sender: a@example.com",
        "named_attribute: client_name=client.test",
        "named_attribute: client_address=192.0.2.1",
        "named_attribute: helo_name=c",
        "named_attribute: protocol_name=ESMTP",
        "named_attribute: envelope_id=a+b",
        "named_attribute: ret_flags=2",
        "content_filter: smtp:[127.0.0.1]:10024",
        "named_attribute: notify_flags=10",
        "named_attribute: dsn_orig_rcpt=rfc822;B@example.net",
        "recipient: b@example.net",
        "done_recipient: c@example.net",
        `*** MESSAGE CONTENTS ${path} ***`,
        "Subject: test",
        "From: a@example.com",
        "",
        "hello",
        "",
        "bye",
        `*** HEADER EXTRACTED ${path} ***`,
        `*** MESSAGE FILE END ${path} ***`,
        "",
      ].join("\n"),
    );
  });

  await t.step("-q finds the id and names it QUEUE/ID; -c and MAIL_CONFIG", async () => {
    const r = await run(["-c", root, "-q", id]);
    assertEquals(r.code, 0, r.err.join("\n"));
    assertStringIncludes(r.out, `*** ENVELOPE RECORDS deferred/${id} ***\n`);
    assertStringIncludes(r.out, `*** MESSAGE FILE END deferred/${id} ***\n`);
    const viaEnv = await run(["-q", id], { MAIL_CONFIG: root });
    assertEquals(viaEnv.out, r.out);
  });

  await t.step("-e, -h, -b and -bh", async () => {
    const e = await run(["-e", path]);
    assertStringIncludes(e.out, "recipient: b@example.net\n");
    assertEquals(e.out.includes("hello"), false);
    assertStringIncludes(e.out, `*** MESSAGE FILE END ${path} ***\n`);
    assertEquals((await run(["-h", path])).out, "Subject: test\nFrom: a@example.com\n");
    assertEquals((await run(["-b", path])).out, "\nhello\n\nbye\n");
    assertEquals(
      (await run(["-bh", path])).out,
      "Subject: test\nFrom: a@example.com\n\nhello\n\nbye\n",
    );
    const eh = await run(["-e", "-h", path]);
    assertStringIncludes(eh.out, `*** MESSAGE CONTENTS ${path} ***\nSubject: test\n`);
    assertEquals(eh.out.includes("bye"), false);
  });

  await t.step("null sender, last line without CRLF, every queue searched", async () => {
    const { queueId } = await writeQueueFile(
      q.dir("hold"),
      { sender: "", arrival: T0 },
      [{ address: "x@example.com" }],
      "Subject: s\r\n\r\nno newline",
    );
    const r = await run(["-c", root, "-q", queueId]);
    assertEquals(r.code, 0);
    assertStringIncludes(r.out, "sender: \n");
    assertStringIncludes(r.out, `no newline*** HEADER EXTRACTED hold/${queueId} ***`);
  });

  await t.step("corrupt file: fatal with the format error, exit 1", async () => {
    const bad = q.path("corrupt", "05B5C8A1F3C2000");
    const good = await Deno.readFile(path);
    await Deno.writeFile(bad, good.subarray(0, good.length - 3));
    const r = await run(["-c", root, "-q", "05B5C8A1F3C2000"]);
    assertEquals(r.code, 1);
    assertEquals(r.out, "");
    assertEquals(r.err, [`postcat: fatal: ${bad}: no valid trailer (truncated or damaged)`]);
  });

  await t.step("missing id or file, bad usage, missing main.cf: exit 1", async () => {
    const r = await run(["-c", root, "-q", "05B5C8A1F3C2FFF"]);
    assertEquals(r.code, 1);
    assertEquals(r.err, [
      "postcat: fatal: open queue file 05B5C8A1F3C2FFF: No such file or directory",
    ]);
    const nf = await run([`${root}/nope`]);
    assertEquals(nf.err, [`postcat: fatal: open ${root}/nope: No such file or directory`]);
    const u = await run([]);
    assertEquals(u.code, 1);
    assertStringIncludes(u.err[0], "postcat: fatal: usage: postcat");
    assertEquals((await run(["-x", path])).code, 1);
    const nc = await run(["-c", `${root}/none`, "-q", id]);
    assertEquals(nc.code, 1);
    assertStringIncludes(nc.err[0], "postcat: fatal: open ");
  });

  await t.step("subprocess with the permissions of deno task postcat", async () => {
    const task = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).tasks.postcat as string;
    const flags = task.split(" ").filter((w) => w.startsWith("--"));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, `${ROOT}/commands/postcat.ts`, "-c", root, "-q", id],
      env: { TZ: "UTC" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, dec.decode(out.stderr));
    assertStringIncludes(
      dec.decode(out.stdout),
      "message_arrival_time: Mon Nov 30 16:41:28 2020\n",
    );
    assertStringIncludes(dec.decode(out.stdout), "\nhello\n\nbye\n*** HEADER EXTRACTED");
  });

  await Deno.remove(root, { recursive: true });
});
