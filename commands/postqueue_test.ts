/**
 * Tests for postqueue: the mailq and JSON listings of queue files written
 * with lib/queue into a temporary queue (done recipients, defer logs, hold,
 * null sender, corrupt files), the command line and exit statuses, flush
 * against a fake qmgr socket, and the real command run as a subprocess with
 * the permissions of `deno task mailq` and `deno task postqueue`.
 */
import { ipcListen } from "../lib/ipc/mod.ts";
import {
  DirSyncer,
  QueueDir,
  QueueFile,
  type QueueName,
  QueueWriter,
  type Recipient,
} from "../lib/queue/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "../tests/helpers/assert.ts";
import { formatJson, postqueue, type QueueEntry, readQueue, showQueue } from "./postqueue.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const enc = new TextEncoder();

/** 2020-11-30 16:41:28 UTC, a Monday. */
const T0 = Date.UTC(2020, 10, 30, 16, 41, 28, 500);
/** 2020-12-03 09:05:07 UTC, a Thursday (single-digit day). */
const T1 = Date.UTC(2020, 11, 3, 9, 5, 7);

const HEADER = "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------";
const INDENT = " ".repeat(47);

/** Writes a queue file; returns its listed size (content, one record header, trailer). */
async function writeMessage(
  q: QueueDir,
  queue: QueueName,
  id: string,
  env: { sender: string; arrival: number },
  rcpts: (string | Recipient)[],
  body = "Subject: test\r\n\r\nhello\r\n",
): Promise<number> {
  const w = new QueueWriter(q.dir(queue), id, new DirSyncer(q.dir(queue)));
  await w.begin(
    { queueId: id, ...env },
    rcpts.map((r) => typeof r === "string" ? { address: r } : r),
  );
  await w.write(enc.encode(body));
  await w.commit();
  return enc.encode(body).length + 5 + 21;
}

async function markDone(q: QueueDir, queue: QueueName, id: string, idx: number[]): Promise<void> {
  const f = await QueueFile.open(q.path(queue, id), { write: true });
  await f.markDone(idx);
  f.close();
}

async function writeDeferLog(q: QueueDir, id: string, entries: object[]): Promise<void> {
  await Deno.writeTextFile(q.deferLog(id), entries.map((e) => JSON.stringify(e) + "\n").join(""));
}

/** A config dir whose queue_directory is given as relative pieces, as conf/main.cf does. */
async function makeConfigDir(root: string): Promise<{ conf: string; queue: string }> {
  const conf = `${root}/etc`;
  await Deno.mkdir(conf, { recursive: true });
  await Deno.writeTextFile(`${conf}/main.cf`, "queue_directory = $config_directory/../spool\n");
  return { conf, queue: `${root}/spool` };
}

interface Captured {
  code: number;
  out: string;
  err: string[];
}

async function run(args: string[], env: { MAIL_CONFIG?: string } = {}): Promise<Captured> {
  let out = "";
  const err: string[] = [];
  const code = await postqueue(args, {
    out: (t) => void (out += t),
    err: (l) => void err.push(l),
    env,
    timeZone: "UTC",
  });
  return { code, out, err };
}

Deno.test("postqueue listing", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "postqueue_test" });
  const q = new QueueDir(`${root}/queue`);
  await q.create();

  await t.step("empty queue", async () => {
    assertEquals(await showQueue(q.root), "Mail queue is empty\n");
    assertEquals(formatJson(await readQueue(q.root)), "");
  });

  const idA = "05B5C8A1F3C2000"; // active
  const idD = "05B5C8A1F3C2001"; // deferred
  const idH = "05B5C8A1F3C2002"; // hold
  const sizeA = await writeMessage(q, "active", idA, { sender: "bob@example.com", arrival: T0 }, [
    "alice@localhost",
    "done@localhost",
  ]);
  await markDone(q, "active", idA, [1]);
  const sizeD = await writeMessage(
    q,
    "deferred",
    idD,
    { sender: "a@example.com", arrival: T1 },
    ["b@example.net", "c@example.net", "gone@example.net", "d@example.org"],
    "x".repeat(3000) + "\r\n",
  );
  await markDone(q, "deferred", idD, [2]);
  const refused = "connect to 127.0.0.1[127.0.0.1]:2526: Connection refused";
  await writeDeferLog(q, idD, [
    { rcpt: "c@example.net", dsn: "4.4.1", reason: refused, time: T1 },
    { rcpt: "gone@example.net", dsn: "4.4.1", reason: "stale entry", time: T1 },
    { rcpt: "b@example.net", dsn: "4.4.1", reason: refused, time: T1 },
  ]);
  const sizeH = await writeMessage(q, "hold", idH, { sender: "", arrival: T1 }, [
    "john doe@example.com",
  ]);

  await t.step("postfix format: status marks, done and logged recipients, reasons", async () => {
    const pad = (why: string) => " ".repeat(76 - why.length) + `(${why})`;
    const expected = [
      HEADER,
      `${idA}*  ${String(sizeA).padStart(8)} Mon Nov 30 16:41:28 bob@example.com`,
      `${INDENT}alice@localhost`,
      "",
      `${idD}   ${String(sizeD).padStart(8)} Thu Dec  3 09:05:07 a@example.com`,
      pad(refused),
      `${INDENT}c@example.net`,
      `${INDENT}b@example.net`,
      pad("reason unavailable"),
      `${INDENT}d@example.org`,
      "",
      `${idH}!  ${String(sizeH).padStart(8)} Thu Dec  3 09:05:07 MAILER-DAEMON`,
      `${INDENT}"john doe"@example.com`,
      "",
      `-- ${Math.floor((sizeA + sizeD + sizeH) / 1024)} Kbytes in 3 Requests.`,
      "",
    ].join("\n");
    assertEquals(await showQueue(q.root, { timeZone: "UTC" }), expected);
    assertEquals(sizeD > 3000, true);
    assertEquals(Math.floor((sizeA + sizeD + sizeH) / 1024), 3);
  });

  await t.step("json lines like postqueue -j", async () => {
    const lines = formatJson(await readQueue(q.root)).split("\n");
    assertEquals(lines.length, 4);
    assertEquals(lines[3], "");
    assertEquals(
      lines[0],
      `{"queue_name": "active", "queue_id": "${idA}", "arrival_time": ${Math.floor(T0 / 1000)}, ` +
        `"message_size": ${sizeA}, "forced_expire": false, "sender": "bob@example.com", ` +
        `"recipients": [{"address": "alice@localhost"}]}`,
    );
    const d = JSON.parse(lines[1]);
    assertEquals(d.queue_name, "deferred");
    assertEquals(d.recipients, [
      { address: "c@example.net", delay_reason: refused },
      { address: "b@example.net", delay_reason: refused },
      { address: "d@example.org" },
    ]);
    const h = JSON.parse(lines[2]);
    assertEquals([h.queue_name, h.sender, h.recipients], [
      "hold",
      "MAILER-DAEMON",
      [{ address: '"john doe"@example.com' }],
    ]);
  });

  await t.step("corrupt files are skipped with a warning, temp files ignored", async () => {
    const bad = "05B5C8A1F3C2003";
    await Deno.writeFile(q.path("incoming", bad), enc.encode("not a queue file"));
    await Deno.writeFile(`${q.dir("incoming")}/.05B5C8A1F3C2004.tmp`, enc.encode("partial"));
    const warnings: string[] = [];
    const entries = await readQueue(q.root, { warn: (l) => warnings.push(l) });
    assertEquals(entries.map((e: QueueEntry) => e.queueId), [idA, idD, idH]);
    assertEquals(warnings.length, 1);
    assertStringIncludes(warnings[0], `postqueue: warning: incoming ${bad}: `);
    await Deno.remove(q.path("incoming", bad));
  });

  await t.step("one request, sizes rounded down, maildrop first", async () => {
    const q2 = new QueueDir(`${root}/q2`);
    await q2.create();
    const id = "05B5C8A1F3C2010";
    await writeMessage(
      q2,
      "maildrop",
      id,
      { sender: "u@h", arrival: T0 },
      ["v@h"],
      "y".repeat(2000),
    );
    const text = await showQueue(q2.root, { timeZone: "UTC" });
    assert(text.endsWith("\n-- 1 Kbytes in 1 Request.\n"), text);
    assertStringIncludes(text, `${id}       2026 Mon Nov 30`);
  });

  await Deno.remove(root, { recursive: true });
});

Deno.test("postqueue command line", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "postqueue_test" });
  const { conf, queue } = await makeConfigDir(root);
  const q = new QueueDir(queue);

  await t.step("usage errors exit 64", async () => {
    const usage =
      "postqueue: fatal: usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site";
    for (const args of [[], ["-p", "-f"], ["-pj"], ["-x"], ["-p", "extra"], ["-c"]]) {
      const r = await run(["-c", conf, ...args]);
      assertEquals([r.code, r.err], [64, [usage]], args.join(" "));
    }
    const i = await run(["-c", conf, "-i", "../../etc/passwd"]);
    assertEquals([i.code, i.err], [64, [
      'postqueue: fatal: Cannot flush queue ID - invalid name: "../../etc/passwd"',
    ]]);
  });

  await t.step("missing queue directory is fatal, exit 69", async () => {
    const r = await run(["-c", conf, "-p"]);
    assertEquals(r, {
      code: 69,
      out: "",
      err: [`postqueue: fatal: chdir ${queue}: No such file or directory`],
    });
  });

  await t.step("missing main.cf is fatal, exit 69", async () => {
    const r = await run(["-p"], { MAIL_CONFIG: `${root}/nowhere` });
    assertEquals(r.code, 69);
    assertStringIncludes(r.err[0], `postqueue: fatal: open ${root}/nowhere/main.cf`);
  });

  await q.create();

  await t.step("-p and -j through MAIL_CONFIG and relative queue_directory", async () => {
    assertEquals(await run(["-p"], { MAIL_CONFIG: conf }), {
      code: 0,
      out: "Mail queue is empty\n",
      err: [],
    });
    await writeMessage(q, "incoming", "05B5C8A1F3C2020", { sender: "s@x", arrival: T0 }, ["r@y"]);
    const p = await run(["-v", "-c", conf, "-p"]);
    assertEquals(p.code, 0);
    assertStringIncludes(p.out, "05B5C8A1F3C2020        ");
    assertStringIncludes(p.out, "-- 0 Kbytes in 1 Request.");
    const j = await run(["-c", conf, "-j"]);
    assertEquals(JSON.parse(j.out).queue_name, "incoming");
  });

  await t.step("-f without qmgr: mail system is down, exit 69", async () => {
    const r = await run(["-c", conf, "-f"]);
    assertEquals(r, {
      code: 69,
      out: "",
      err: ["postqueue: fatal: Cannot flush mail queue - mail system is down"],
    });
  });

  await t.step("-f asks qmgr to flush", async () => {
    const got: unknown[] = [];
    const server = ipcListen(q.publicSocket("qmgr"), async (conn) => {
      got.push(await conn.recvMsg());
      await conn.send({ ok: true });
    });
    try {
      assertEquals(await run(["-c", conf, "-f"]), { code: 0, out: "", err: [] });
      assertEquals(got, [{ op: "flush" }]);
    } finally {
      server.close();
      await server.done;
    }
  });

  await t.step("-s: Postfix's refusals (live 3.7), then qmgr asked for the site", async () => {
    const refused = async (site: string, text: string) => {
      const r = await run(["-c", conf, "-s", site]);
      assertEquals([r.code, r.err], [69, [`postqueue: fatal: ${text}`]], site);
    };
    // Default fast_flush_domains = $relay_domains, empty at compatibility level 3.6.
    await refused(
      "relay.example",
      'Flush service is not configured for destination "relay.example"',
    );
    await refused("bad site", 'Cannot flush mail queue - invalid destination: "bad site"');
    await refused("[1.2.3.999]", 'Cannot flush mail queue - invalid destination: "[1.2.3.999]"');
    await Deno.writeTextFile(
      `${conf}/main.cf`,
      "queue_directory = $config_directory/../spool\nrelay_domains = relay.example\n",
    );
    await refused(
      "other.example",
      'Flush service is not configured for destination "other.example"',
    );
    await refused("[1.2.3.4]", 'Flush service is not configured for destination "[1.2.3.4]"');
    await refused("relay.example", "Cannot flush mail queue - mail system is down");
    const got: unknown[] = [];
    const server = ipcListen(q.publicSocket("qmgr"), async (conn) => {
      got.push(await conn.recvMsg());
      await conn.send({ ok: true });
    });
    try {
      // A subdomain matches too: fast_flush_domains is in parent_domain_matches_subdomains.
      for (const site of ["RELAY.example", "mx.relay.example"]) {
        assertEquals(await run(["-c", conf, "-s", site]), { code: 0, out: "", err: [] });
      }
      assertEquals(got, [
        { op: "flush", site: "relay.example" },
        { op: "flush", site: "mx.relay.example" },
      ]);
    } finally {
      server.close();
      await server.done;
      await Deno.writeTextFile(`${conf}/main.cf`, "queue_directory = $config_directory/../spool\n");
    }
  });

  await t.step("-i asks qmgr to flush one message", async () => {
    const got: unknown[] = [];
    const server = ipcListen(q.publicSocket("qmgr"), async (conn) => {
      got.push(await conn.recvMsg());
      await conn.send({ ok: true });
    });
    try {
      assertEquals(await run(["-c", conf, "-i", "05B5C8A1F3C2020"]), {
        code: 0,
        out: "",
        err: [],
      });
      assertEquals(got, [{ op: "flush", id: "05B5C8A1F3C2020" }]);
    } finally {
      server.close();
      await server.done;
    }
  });

  await Deno.remove(root, { recursive: true });
});

/** The flags of a deno.json task that runs commands/postqueue.ts, and the arguments after it. */
async function task(name: string): Promise<{ flags: string[]; args: string[] }> {
  const cfg = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const words = (cfg.tasks[name] as string).split(/\s+/);
  assertEquals(words.slice(0, 2), ["deno", "run"]);
  const at = words.indexOf("commands/postqueue.ts");
  assert(at > 0, `task ${name} runs commands/postqueue.ts`);
  return { flags: words.slice(2, at), args: words.slice(at + 1) };
}

async function runTask(name: string, args: string[]): Promise<Captured> {
  const t = await task(name);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...t.flags, "commands/postqueue.ts", ...t.args, ...args],
    cwd: ROOT,
    stdin: "null",
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "", NO_COLOR: "1", TZ: "UTC" },
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    out: dec.decode(out.stdout),
    err: dec.decode(out.stderr).split("\n").filter((l) => l !== ""),
  };
}

Deno.test("postqueue as deno tasks", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "postqueue_test" });
  const { conf, queue } = await makeConfigDir(root);
  const q = new QueueDir(queue);
  await q.create();

  await t.step("mailq -c DIR lists the queue with the task's permissions", async () => {
    const id = "05B5C8A1F3C2030";
    const size = await writeMessage(q, "deferred", id, { sender: "s@x", arrival: T0 }, ["r@y"]);
    await writeDeferLog(q, id, [{ rcpt: "r@y", dsn: "4.4.1", reason: "host down", time: T0 }]);
    const r = await runTask("mailq", ["-c", conf]);
    assertEquals(r.err, []);
    assertEquals(r.code, 0);
    assertEquals(
      r.out,
      [
        HEADER,
        `${id}   ${String(size).padStart(8)} Mon Nov 30 16:41:28 s@x`,
        " ".repeat(76 - 9) + "(host down)",
        `${INDENT}r@y`,
        "",
        "-- 0 Kbytes in 1 Request.",
        "",
      ].join("\n"),
    );
  });

  await t.step("postqueue -f reaches the qmgr socket with the task's permissions", async () => {
    const down = await runTask("postqueue", ["-c", conf, "-f"]);
    assertEquals([down.code, down.err], [69, [
      "postqueue: fatal: Cannot flush mail queue - mail system is down",
    ]]);
    const got: unknown[] = [];
    const server = ipcListen(q.publicSocket("qmgr"), async (conn) => {
      got.push(await conn.recvMsg());
      await conn.send({ ok: true });
    });
    try {
      const r = await runTask("postqueue", ["-c", conf, "-f"]);
      assertEquals([r.code, r.err], [0, []]);
      assertEquals(got, [{ op: "flush" }]);
    } finally {
      server.close();
      await server.done;
    }
  });

  await Deno.remove(root, { recursive: true });
});
