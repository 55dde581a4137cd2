/**
 * Tests for delivery to commands and files (command.ts, special.ts):
 * what a command reads, Postfix's exit status mapping, the time limit,
 * signals, output in the reason, the environment (hostile addresses
 * reach it filtered and never the command line), mailbox_command and
 * alias commands and files through the local service, and the refusal to
 * run them with the mail owner's rights.
 */
import { exists } from "../../tests/helpers/fs.ts";
import type { DeliveryRecipient, DeliveryRequest } from "../../lib/deliver/mod.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import { PasswdFile } from "../../lib/passwd/mod.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { fakeService, writeQueueFile } from "../../tests/helpers/fake_service.ts";
import { type CommandJob, deliverCommand } from "./command.ts";
import { deliverLocal } from "./local.ts";
import { inProcessWriter } from "./mailbox.ts";
import { commandEnvironment, rightsFor } from "./special.ts";

const enc = new TextEncoder();
const MESSAGE = "Subject: hi\r\n\r\nFrom me\r\nline two\r\n";

function job(command: string, over: Partial<CommandJob> = {}): CommandJob {
  return {
    command,
    shell: "",
    cwd: "",
    env: { PATH: "/usr/bin:/bin" },
    timeLimitMs: 10_000,
    as: null,
    sender: "a@x",
    originalRecipient: "o@y",
    delivered: "joe@y",
    content: async function* () {
      yield enc.encode(MESSAGE);
    },
    now: () => new Date(2026, 11, 2, 6, 8, 10),
    ...over,
  };
}

Deno.test("deliverCommand", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await t.step("the command reads the From line, headers and the message as is", async () => {
      const r = await deliverCommand(job(`cat > ${dir}/out`));
      assertEquals(r, {
        status: "sent",
        dsn: "2.0.0",
        reason: `delivered to command: cat > ${dir}/out`,
      });
      assertEquals(
        await Deno.readTextFile(`${dir}/out`),
        "From a@x  Wed Dec  2 06:08:10 2026\nReturn-Path: <a@x>\nX-Original-To: o@y\n" +
          "Delivered-To: joe@y\nSubject: hi\n\nFrom me\nline two\n",
      );
    });
    await t.step("sendmail exit statuses: soft ones defer, others bounce", async () => {
      assertEquals(await deliverCommand(job("exit 75")), {
        status: "deferred",
        dsn: "4.3.0",
        reason: "temporary failure",
      });
      assertEquals(await deliverCommand(job("echo no such user >&2; exit 67")), {
        status: "bounced",
        dsn: "5.1.1",
        reason: "user unknown. Command output: no such user ",
      });
      assertEquals(await deliverCommand(job("exit 71")), {
        status: "deferred",
        dsn: "4.3.0",
        reason: "system resource problem",
      });
    });
    await t.step("another status bounces; a signal defers", async () => {
      assertEquals(await deliverCommand(job("exit 3")), {
        status: "bounced",
        dsn: "5.3.0",
        reason: 'Command died with status 3: "exit 3"',
      });
      assertEquals(await deliverCommand(job("kill -9 $$")), {
        status: "deferred",
        dsn: "4.3.0",
        reason: 'Command died with signal 9: "kill -9 $$"',
      });
    });
    await t.step("command_time_limit kills and bounces", async () => {
      const r = await deliverCommand(job("exec sleep 30", { timeLimitMs: 300 }));
      assertEquals(r, {
        status: "bounced",
        dsn: "5.3.0",
        reason: 'Command time limit exceeded: "exec sleep 30"',
      });
    });
    await t.step(
      "children left holding the pipes do not hold the delivery past the limit",
      async () => {
        const t0 = Date.now();
        const out = await deliverCommand(job("exec 2>&-; sleep 3 &", { timeLimitMs: 500 }));
        assertEquals([out.status, out.reason], [
          "bounced",
          'Command time limit exceeded: "exec 2>&-; sleep 3 &"',
        ]);
        assert(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
      },
    );
    await t.step("a command that does not read its input still succeeds", async () => {
      const big = new Uint8Array(4 << 20).fill(0x61);
      const r = await deliverCommand(job("exit 0", {
        content: async function* () {
          yield enc.encode("Subject: big\r\n\r\n");
          yield big;
        },
      }));
      assertEquals(r.status, "sent");
    });
    await t.step(
      "output in the reason: at most 4096 bytes, newlines as spaces, controls masked",
      async () => {
        const r = await deliverCommand(
          job("printf 'a\\tb\\nc\\001d\\n'; head -c 9000 /dev/zero | tr '\\0' x; exit 1"),
        );
        assertMatch(r.reason, /^Command died with status 1: ".*". Command output: a b c_d x+$/);
        // Postfix keeps the output's last newline as a space ("busy "): live Postfix 3.7.
        assert(r.reason.length < 4095 + 200, String(r.reason.length));
      },
    );
    await t.step("a failed read of the message defers", async () => {
      const r = await deliverCommand(job("cat >/dev/null", {
        content: async function* () {
          yield enc.encode("Subject: x\r\n");
          throw new Error("queue file went away");
        },
      }));
      assertEquals(r.status, "deferred");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("command environment", async (t) => {
  const config = makeConfig(
    "/etc/x",
    "recipient_delimiter = +\nexport_environment = TZ LANG=C.UTF-8\n",
  );
  await t.step("Postfix's variables, hostile bytes filtered", () => {
    const env = commandEnvironment({ config, getenv: (n) => (n === "TZ" ? "UTC" : undefined) }, {
      address: "joe+$(touch x);`id`'\"@Example.COM",
      sender: "evil\n@x",
      delivered: "joe+a@example.com",
      account: "joe",
    }, { name: "joe", uid: 1, gid: 1, home: "/home/joe", shell: "/bin/sh" });
    assertEquals(env, {
      TZ: "UTC",
      LANG: "C.UTF-8",
      PATH: "/usr/bin:/bin",
      HOME: "/home/joe",
      LOGNAME: "joe",
      USER: "joe",
      SENDER: "evil_@x",
      RECIPIENT: "joe+__touch_x___id___@Example.COM",
      LOCAL: "joe+__touch_x___id___",
      SHELL: "/bin/sh",
      DOMAIN: "Example.COM",
      EXTENSION: "__touch_x___id___",
      ORIGINAL_RECIPIENT: "joe+a@example.com",
    });
  });
  await t.step("as the mail owner, commands and files are refused", () => {
    const dir = Deno.makeTempDirSync();
    try {
      Deno.writeTextFileSync(`${dir}/passwd`, "postfix:x:4242:4242::/:/bin/false\n");
      const r = rightsFor({
        config: makeConfig("/etc/x", ""),
        passwd: new PasswdFile(`${dir}/passwd`),
        root: false,
        writer: inProcessWriter,
        content: () => (async function* () {})(),
        now: Date.now,
        warn: () => {},
        uid: 4242,
      }, "joe");
      assert("status" in r && r.status === "deferred", JSON.stringify(r));
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
});

async function run(root: string, mainCf: string, rcpts: string[], passwd?: PasswdFile) {
  const svc = await fakeService("local", root, { mainCf });
  const recipients = rcpts.map((address) => ({ address }));
  const q = await writeQueueFile(
    svc.ctx.queue.dir("active"),
    { sender: "a@example.org" },
    recipients,
    MESSAGE,
  );
  const req: DeliveryRequest = {
    op: "deliver",
    queueId: q.queueId,
    path: q.path,
    sender: "a@example.org",
    transport: "local",
    nexthop: "mx.example.com",
    recipients: recipients.map((r, index): DeliveryRecipient => ({ index, address: r.address })),
    arrival: Date.now(),
    activeAt: Date.now(),
  };
  const file = await QueueFile.open(q.path);
  try {
    return { st: await deliverLocal(req, file, svc.ctx, { passwd }), lines: svc.lines };
  } finally {
    file.close();
  }
}

Deno.test("commands and files through the local service", async (t) => {
  const root = await Deno.makeTempDir();
  const home = `${root}/home/joe`;
  await Deno.mkdir(home, { recursive: true });
  await Deno.writeTextFile(`${root}/passwd`, `joe:x:1000:1000::${home}:/bin/sh\n`);
  const passwd = new PasswdFile(`${root}/passwd`);
  const base =
    `mail_spool_directory = ${root}/mail/\nlocal_recipient_maps =\nrecipient_delimiter = +\n` +
    "mailbox_delivery_lock = flock, dotlock\n";
  try {
    await t.step("an alias command gets the address in its environment only", async () => {
      const cf = base + `alias_maps = inline:{{list="|env > ${root}/env.txt"}}\n`;
      const hostile = "list+$(touch${IFS}pwned);`touch${IFS}pwned2`@mx.example.com";
      const r = await run(`${root}/a`, cf, [hostile]);
      assertEquals(r.st[0].status, "sent", JSON.stringify(r.st));
      assertEquals(r.st[0].reason, `delivered to command: env > ${root}/env.txt`);
      const env = await Deno.readTextFile(`${root}/env.txt`);
      assertMatch(env, /^EXTENSION=__touch__IFS_pwned___touch__IFS_pwned2_$/m);
      assertMatch(env, /^USER=list$/m);
      for (const f of ["pwned", "pwned2", `${root}/a/pwned`]) {
        assert(!(await exists(f)), `${f} created`);
      }
      assert(
        r.lines.some((l) =>
          l.includes(`status=sent (delivered to command: env > ${root}/env.txt)`)
        ),
        r.lines.join("\n"),
      );
    });
    await t.step("mailbox_command runs for the user, with HOME; not $name-expanded", async () => {
      const cf = base + 'alias_maps =\nmailbox_command = cat > "$HOME/delivered.$EXTENSION"\n';
      const r = await run(`${root}/m`, cf, ["joe+box@mx.example.com"], passwd);
      assertEquals(r.st[0].status, "sent", JSON.stringify(r.st));
      const text = await Deno.readTextFile(`${home}/delivered.box`);
      assertMatch(text, /^From a@example\.org {2}/);
      assert(text.includes("Delivered-To: joe+box@mx.example.com\n"));
    });
    await t.step("command_execution_directory: expanded, filtered; a bad one defers", async () => {
      await Deno.mkdir(`${home}/work+box`, { recursive: true });
      const cf = base + "alias_maps =\nmailbox_command = pwd > ../cwd.txt\n" +
        "command_execution_directory = $home/work${recipient_delimiter}${extension}\n";
      const r = await run(`${root}/w`, cf, ["joe+box@mx.example.com"], passwd);
      assertEquals(r.st[0].status, "sent", JSON.stringify(r.st));
      assertEquals((await Deno.readTextFile(`${home}/cwd.txt`)).trim(), `${home}/work+box`);
      const bad = await run(
        `${root}/w2`,
        base + "alias_maps =\nmailbox_command = true\ncommand_execution_directory = ${home\n",
        ["joe@mx.example.com"],
        passwd,
      );
      assertEquals([bad.st[0].status, bad.st[0].dsn], ["deferred", "4.3.5"]);
    });
    await t.step("an alias file gets mbox format; /dev/null takes it without a write", async () => {
      const cf = base + `alias_maps = inline:{{log=${root}/log.mbox, /dev/null}}\n`;
      const r = await run(`${root}/f`, cf, ["log@mx.example.com"]);
      assertEquals(r.st[0].status, "sent", JSON.stringify(r.st));
      assert(r.lines.some((l) => l.includes(`status=sent (delivered to file: ${root}/log.mbox)`)));
      assert(r.lines.some((l) => l.includes("status=sent (delivered to file: /dev/null)")));
      const text = await Deno.readTextFile(`${root}/log.mbox`);
      assert(
        text.includes("Delivered-To: log@mx.example.com\n") &&
          text.endsWith("\n>From me\nline two\n\n"),
        text,
      );
    });
    await t.step("allow_mail_to_commands without alias still refuses", async () => {
      const cf = base + `alias_maps = inline:{{x="|true"}}\nallow_mail_to_commands = forward\n`;
      const r = await run(`${root}/r`, cf, ["x@mx.example.com"]);
      assertEquals([r.st[0].status, r.st[0].dsn, r.st[0].reason], [
        "bounced",
        "5.7.1",
        "mail to command is restricted",
      ]);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
