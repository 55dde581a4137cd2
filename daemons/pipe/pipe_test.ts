/**
 * Tests for pipe delivery with real commands: hostile addresses reach the
 * program as exact argv elements (no shell), the message and the flags'
 * lines on stdin, exit statuses, signals and the time limit as Postfix
 * reports them, output capture, size=, D's checks, the user the command
 * runs as, and its environment, and address verification (the checks,
 * nothing run). As root the commands run as nobody.
 */
import type { DeliveryRecipient, DeliveryRequest } from "../../lib/deliver/mod.ts";
import { PasswdFile } from "../../lib/passwd/mod.ts";
import { parsePipeAttributes } from "../../lib/pipe/mod.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { fakeService, writeQueueFile } from "../../tests/helpers/fake_service.ts";
import { deliverPipe, groupId, type PipeIdentity, pipeIdentity } from "./pipe.ts";

const MESSAGE = "Subject: hi\r\nFrom: a@example.org\r\n\r\n.line one\r\nFrom here\r\n";
const ROOT = Deno.uid() === 0;
const NOBODY = 65534;

/** The identity commands run as here: nobody when root, else this user. */
function identity(): PipeIdentity {
  return ROOT
    ? { uid: NOBODY, gid: NOBODY, setIds: true }
    : { uid: Deno.uid()!, gid: Deno.gid()!, setIds: false };
}

async function run(
  args: string[],
  opts: {
    rcpts?: string[];
    sender?: string;
    mainCf?: string;
    content?: string;
    identity?: PipeIdentity;
    verify?: true;
  } = {},
) {
  const root = await Deno.makeTempDir({ prefix: "pipe-test-" });
  await Deno.chmod(root, 0o777);
  const svc = await fakeService("pipe", root, { mainCf: opts.mainCf, service: "mypipe" });
  const rcpts = opts.rcpts ?? ["joe@example.com"];
  const sender = opts.sender ?? "a@example.org";
  const q = await writeQueueFile(
    svc.ctx.queue.dir("active"),
    { sender, attrs: { clientAddr: "192.0.2.7" } },
    rcpts.map((address) => ({ address })),
    opts.content ?? MESSAGE,
  );
  const req: DeliveryRequest = {
    op: "deliver",
    queueId: q.queueId,
    path: q.path,
    sender,
    transport: "mypipe",
    nexthop: "Dom.Example",
    recipients: rcpts.map((address, index): DeliveryRecipient => ({ index, address })),
    arrival: Date.now(),
    activeAt: Date.now(),
    ...(opts.verify ? { verify: opts.verify } : {}),
  };
  const out = `${root}/out`;
  const attrs = parsePipeAttributes(args.map((a) => a.replaceAll("OUT", out)));
  const file = await QueueFile.open(q.path);
  try {
    const statuses = await deliverPipe(req, file, svc.ctx, {
      attrs,
      identity: opts.identity ?? identity(),
    });
    const read = () => Deno.readTextFile(out).catch(() => "");
    return { statuses, lines: svc.lines, out: await read(), root };
  } finally {
    file.close();
  }
}

/** A shell script as the command (its own "$" written "$$", as argv= expands macros). */
const SH = (script: string, ...rest: string[]) => ["argv=/bin/sh", "-c", script, "sh", ...rest];

Deno.test("pipe delivery", async (t) => {
  await t.step("verification: macros expanded and user= checked, nothing run", async () => {
    const args = ["user=nobody", ...SH("touch OUT", "${recipient}")];
    const r = await run(args, { rcpts: ["joe@example.com", "ann@example.com"], verify: true });
    assertEquals(r.statuses.map((s) => [s.status, s.dsn, s.reason, s.relay]), [
      ["sent", "2.0.0", "delivers to command: /bin/sh", "mypipe"],
      ["sent", "2.0.0", "delivers to command: /bin/sh", "mypipe"],
    ]);
    assertMatch(
      r.lines.join("\n"),
      /to=<ann@example.com>, relay=mypipe, delay=[\d.]+, delays=[\d./]+, dsn=2.0.0, status=deliverable \(delivers to command: \/bin\/sh\)/,
    );
    let ran = true;
    await Deno.stat(`${r.root}/out`).catch(() => ran = false);
    assert(!ran, "the command did not run");
    const bad = await run(args, {
      verify: true,
      identity: { problem: "unknown username: nobody" },
    });
    assertEquals([bad.statuses[0].status, bad.statuses[0].dsn], ["deferred", "4.3.5"]);
    assertMatch(bad.lines.join("\n"), /status=undeliverable \(mail system configuration error\)/);
  });
  await t.step("hostile addresses reach the program as exact argv elements", async () => {
    const nasty = [
      "-oQ/tmp/x@a.example",
      "a;touch /tmp/pwned-pipe@b.example",
      "$(id)`id`|x&y@c.example",
      "sp ace'\"\\@d.example",
    ];
    const r = await run(
      [
        "user=nobody",
        ...SH('for a; do printf "%s\\0" "$$a"; done > OUT', "${sender}", "${recipient}"),
      ],
      { rcpts: nasty, sender: "-f evil;id@e.example" },
    );
    assertEquals(r.out.split("\0").slice(0, -1), ["-f evil;id@e.example", ...nasty]);
    assertEquals(r.statuses.map((s) => s.status), ["sent", "sent", "sent", "sent"]);
    assertEquals(r.statuses[0].reason, "delivered via mypipe service");
    assertEquals(r.statuses[0].relay, "mypipe");
    assertEquals(r.statuses[0].action, "relayed");
    let pwned = true;
    await Deno.stat("/tmp/pwned-pipe").catch(() => pwned = false);
    assert(!pwned, "no shell ran the address");
    assertMatch(
      r.lines.join("\n"),
      /to=<-oQ\/tmp\/x@a.example>, relay=mypipe, delay=[\d.]+, delays=[\d./]+, dsn=2.0.0, status=sent \(delivered via mypipe service\)/,
    );
  });
  await t.step("the message and the flags' lines on stdin; X: delivered", async () => {
    const r = await run(["flags=FRODX.>B", "user=nobody", "eol=\\r\\n", ...SH("cat > OUT")]);
    const lines = r.out.split("\r\n");
    assertMatch(lines[0], /^From a@example.org {2}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/);
    assertEquals(lines.slice(1), [
      "Return-Path: <a@example.org>",
      "X-Original-To: joe@example.com",
      "Delivered-To: joe@example.com",
      "Subject: hi",
      "From: a@example.org",
      "",
      "..line one",
      ">From here",
      "",
      "",
    ]);
    assertEquals(r.statuses[0].action, "delivered");
  });
  await t.step("the null sender: MAILER-DAEMON, or null_sender=", async () => {
    const argv = SH('printf "[%s]" "$$1" > OUT', "${sender}");
    let r = await run(["user=nobody", ...argv], { sender: "" });
    assertEquals(r.out, "[MAILER-DAEMON]");
    r = await run(["user=nobody", "null_sender=", ...argv], { sender: "" });
    assertEquals(r.out, "[]");
    r = await run(["flags=q", "user=nobody", "null_sender=mailer daemon", ...argv], { sender: "" });
    assertEquals(r.out, '["mailer daemon"]', "a non-empty replacement is quoted by q");
  });
  await t.step("output after success is logged", async () => {
    const r = await run(["user=nobody", ...SH("cat >/dev/null; echo 'saved\tto box'")]);
    assertEquals(r.statuses[0].reason, "delivered via mypipe service (saved to box)");
  });
  await t.step("exit statuses as Postfix's sys_exits", async () => {
    const exit = async (code: number, output = "") =>
      (await run(["user=nobody", ...SH(`cat >/dev/null; printf '${output}'; exit ${code}`)]))
        .statuses[0];
    let st = await exit(75, "try later");
    assertEquals([st.status, st.dsn, st.reason], [
      "deferred",
      "4.3.0",
      "temporary failure. Command output: try later",
    ]);
    st = await exit(67);
    assertEquals([st.status, st.dsn, st.reason], ["bounced", "5.1.1", "user unknown"]);
    st = await exit(1, "no\\nway\\r");
    assertEquals([st.status, st.dsn, st.reason], [
      "bounced",
      "5.3.0",
      'Command died with status 1: "/bin/sh". Command output: no way_',
    ]);
    st = await exit(1, "4.2.2 mailbox full\\n");
    assertEquals(
      [st.status, st.dsn, st.reason],
      ["deferred", "4.2.2", "mailbox full "],
      "an enhanced code in the output wins, and the rest of the output is the reason",
    );
    st = await exit(75, "5.7.1 go away\\n");
    assertEquals([st.status, st.dsn, st.reason], ["bounced", "5.7.1", "go away "]);
  });
  await t.step("a signal defers; the time limit bounces; endless output is cut", async () => {
    let st = (await run(["user=nobody", ...SH("kill -9 $$$$")])).statuses[0];
    assertEquals([st.status, st.dsn, st.reason], [
      "deferred",
      "4.3.0",
      'Command died with signal 9: "/bin/sh"',
    ]);
    const t0 = Date.now();
    const r = await run(["user=nobody", ...SH("echo started; exec sleep 30")], {
      mainCf: "mypipe_time_limit = 1s\n",
    });
    st = r.statuses[0];
    assert(Date.now() - t0 < 10_000, "killed at the limit");
    assertEquals([st.status, st.dsn, st.reason], [
      "bounced",
      "5.3.0",
      'Command time limit exceeded: "/bin/sh". Command output: started ',
    ]);
    assertMatch(r.lines.join("\n"), /warning: pipe_command_read: read time limit exceeded/);
    st = (await run(["user=nobody", ...SH("head -c 3000000 /dev/zero | tr '\\0' x; exit 1")]))
      .statuses[0];
    assertEquals(
      st.reason.length,
      'Command died with status 1: "/bin/sh". Command output: '.length + 4096,
    );
  });
  await t.step("a command that stops reading early is not a failure", async () => {
    const big = "Subject: x\r\n\r\n" + "y".repeat(1_000_000) + "\r\n";
    const st = (await run(["user=nobody", ...SH("head -c 10 >/dev/null")], { content: big }))
      .statuses[0];
    assertEquals(st.status, "sent");
  });
  await t.step("size=, D with two recipients, D's loop check, a NUL byte", async () => {
    let st = (await run(["size=10", "user=nobody", "argv=/bin/true"])).statuses[0];
    assertEquals([st.status, st.dsn, st.reason], ["bounced", "5.2.3", "message too large"]);
    const r = await run(["flags=D", "user=nobody", "argv=/bin/true"], { rcpts: ["a@x", "b@x"] });
    assertEquals(r.statuses.map((s) => [s.status, s.dsn, s.reason]), [
      ["deferred", "4.3.5", "mail system configuration error"],
      ["deferred", "4.3.5", "mail system configuration error"],
    ]);
    assertMatch(
      r.lines.join("\n"),
      /pipe flag `D' requires mypipe_destination_recipient_limit = 1/,
    );
    st = (await run(["flags=D", "user=nobody", "argv=/bin/true"], {
      content: "Delivered-To: JOE@example.com\r\nSubject: x\r\n\r\nbody\r\n",
    })).statuses[0];
    assertEquals([st.status, st.dsn, st.reason], [
      "bounced",
      "5.4.6",
      "mail forwarding loop for joe@example.com",
    ]);
    st = (await run(["user=nobody", "argv=/bin/true", "${recipient}"], { rcpts: ["a\0b@x"] }))
      .statuses[0];
    assertEquals([st.status, st.dsn], ["bounced", "5.3.0"]);
  });
  await t.step(
    "runs as user=, in queue_directory, with PATH and export_environment only",
    async () => {
      const r = await run(["user=nobody", ...SH("id -u > OUT; pwd >> OUT; env | sort >> OUT")], {
        mainCf: "export_environment = TZ LANG FOO=bar\n",
      });
      const [uid, cwd, ...env] = r.out.trim().split("\n");
      assertEquals(uid, String(ROOT ? NOBODY : Deno.uid()));
      assertEquals(cwd, `${r.root}/queue`);
      const names = env.map((l) => l.split("=")[0]).filter((n) =>
        !["PWD", "SHLVL", "_"].includes(n)
      );
      assert(names.includes("PATH") && names.includes("FOO"), env.join(","));
      for (const n of names) assert(["PATH", "FOO", "TZ", "LANG"].includes(n), `unexpected ${n}`);
      assert(env.includes("PATH=/usr/bin:/bin"));
    },
  );
  await t.step(
    "a plain program name runs from /usr/bin or /bin; a missing one defers",
    async () => {
      let st = (await run(["user=nobody", "argv=true"])).statuses[0];
      assertEquals(st.status, "sent");
      st = (await run(["user=nobody", "argv=no-such-program-here"])).statuses[0];
      assertEquals([st.status, st.dsn], ["deferred", "4.3.0"]);
      assertMatch(st.reason, /^Delivery failed: /);
    },
  );
  await t.step("an identity problem defers everything with a warning", async () => {
    const r = await run(["user=nobody", "argv=/bin/true"], {
      identity: { problem: "unknown username: nosuch" },
    });
    assertEquals([r.statuses[0].status, r.statuses[0].dsn], ["deferred", "4.3.5"]);
    assertMatch(r.lines.join("\n"), /warning: mypipe: unknown username: nosuch/);
  });
});

Deno.test("pipe identity", async (t) => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/passwd`,
    "root:x:0:0::/root:/bin/sh\npostfix:x:101:101::/:/bin/false\nvmail:x:5000:5000::/:/bin/false\n" +
      "zero:x:6000:0::/:/bin/false\nmine:x:7000:7000::/:/bin/false\n",
  );
  const groups = "root:x:0:\npostfix:x:101:\nvmail:x:5000:\nlist:x:38:\n";
  const files = { passwd: new PasswdFile(`${dir}/passwd`), groups: () => groups };
  const { makeConfig } = await import("../../lib/config/mod.ts");
  const config = makeConfig(dir, "mail_owner = postfix\n");
  const id = (user: string, self: number) =>
    pipeIdentity(parsePipeAttributes([`user=${user}`, "argv=/bin/true"]), config, files, self);
  await t.step("as root: the user's ids, or the group named", () => {
    assertEquals(id("vmail", 0), { uid: 5000, gid: 5000, setIds: true });
    assertEquals(id("vmail:list", 0), { uid: 5000, gid: 38, setIds: true });
  });
  await t.step("refused as pipe(8) refuses", () => {
    assertEquals(id("root", 0), {
      problem: "user= command-line attribute specifies root privileges",
    });
    assertEquals(id("zero", 0), {
      problem: "user= command-line attribute specifies privileged group id 0",
    });
    assertEquals(id("vmail:root", 0), {
      problem: "user= command-line attribute specifies privileged group id 0",
    });
    assertEquals(id("postfix", 0), {
      problem: "user= command-line attribute specifies mail system owner postfix",
    });
    assertEquals(id("vmail:postfix", 0), {
      problem: "user= command-line attribute specifies mail system owner postfix group id 101",
    });
    assertEquals(id("nosuch", 0), { problem: "unknown username: nosuch" });
    assertEquals(id("vmail:nosuch", 0), { problem: "unknown group: nosuch" });
  });
  await t.step("not root: only this process's own user", () => {
    assertEquals(id("mine", 7000), { uid: 7000, gid: 7000, setIds: false });
    assertEquals(id("vmail", 7000), {
      problem: "user=vmail: commands can run as another user only when master runs as root " +
        "(Postwarden runs as uid 7000)",
    });
  });
  await t.step("/etc/group lookups", () => {
    assertEquals(groupId(groups, "list"), 38);
    assertEquals(groupId(groups, "nope"), null);
  });
});
