/**
 * Tests for sendmail: the command line, input conversion, and the real
 * command run as a subprocess with the permissions of `deno task sendmail`
 * against a temporary queue, checking the maildrop file it leaves and its
 * exit status.
 */
import fc from "fast-check";
import { ipcListen } from "../lib/ipc/mod.ts";
import { type PasswdEntry, PasswdFile } from "../lib/passwd/mod.ts";
import { QueueDir, QueueFile } from "../lib/queue/mod.ts";
import type { MaildropAttrs } from "../daemons/pickup/maildrop.ts";
import {
  assert,
  assertEquals,
  assertStringIncludes,
  assertThrows,
} from "../tests/helpers/assert.ts";
import { AsUser, localUser } from "../tests/helpers/as_user.ts";
import { haveRoot } from "../tests/helpers/peers.ts";
import { InputConverter, parseSendmailArgs, UsageError } from "./sendmail.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("parseSendmailArgs", async (t) => {
  await t.step("flags, attached and separate values, recipients", () => {
    const o = parseSendmailArgs([
      "-t",
      "-oi",
      "-fjoe@x",
      "-F",
      "Joe User",
      "-N",
      "success,Delay",
      "-Rhdrs",
      "-V",
      "id1",
      "-c",
      "/etc/pw",
      "-oem",
      "-v",
      "ann@x",
      "-notanoption",
    ]);
    assertEquals(o, {
      extract: true,
      ignoreDots: true,
      sender: "joe@x",
      fullName: "Joe User",
      notify: ["SUCCESS", "DELAY"],
      ret: "HDRS",
      envid: "id1",
      configDir: "/etc/pw",
      mode: "m",
      recipients: ["ann@x", "-notanoption"],
    });
    assertEquals(parseSendmailArgs(["-i", "--", "-x@y"]).recipients, ["-x@y"]);
    assertEquals(parseSendmailArgs(["-f", "", "a"]).sender, "");
    assertEquals(parseSendmailArgs(["-Nnever", "a"]).notify, ["NEVER"]);
    assertEquals(parseSendmailArgs(["-bp"]).mode, "p");
  });
  await t.step("rejects what it cannot do", () => {
    assertThrows(() => parseSendmailArgs(["-N", "never,success"]), UsageError, "bad -N");
    assertThrows(() => parseSendmailArgs(["-R", "body"]), UsageError, "bad -R");
    assertThrows(() => parseSendmailArgs(["-f"]), UsageError, "requires an argument");
    assertThrows(() => parseSendmailArgs(["-Z"]), UsageError, "invalid option -- 'Z'");
    assertThrows(() => parseSendmailArgs(["-tk", "a"]), UsageError, "invalid option -- 'k'");
    assertThrows(() => parseSendmailArgs(["-XV"]), UsageError, "-XV is not supported");
    assertThrows(() => parseSendmailArgs(["-B", "9BIT"]), UsageError, "-B option needs");
  });
  await t.step("modes and their checks, in Postfix 3.7's words (live run)", () => {
    const fails = (args: string[], text: string) =>
      assertThrows(() => parseSendmailArgs(args), UsageError, text);
    fails(["-bx"], "unsupported: -bx");
    fails(["-n", "a"], "-n option not supported");
    fails(["-t", "-bp"], "-t can be used only in delivery mode");
    fails(["-qX"], "-qX is not implemented");
    fails(["-qR"], "specify: -qRsitename");
    fails(["-qI"], "specify: -qIqueueid");
    fails(["-qRsite", "-bp"], "-qR can be used only in delivery mode");
    fails(["-bv", "-t"], "-t option cannot be used with -bv");
    fails(["-bv", "-N", "success", "a"], "-N option cannot be used with -bv");
    fails(["-bv", "-R", "full", "a"], "-R option cannot be used with -bv");
    const mode = (args: string[]) => parseSendmailArgs(args).mode;
    assertEquals(
      [["-q"], ["-bp"], ["-bi"], ["-I"], ["-bs"], ["-bd"], ["-bl"], ["-bh"], ["-bH"]].map(mode),
      ["q", "p", "i", "i", "s", "d", "d", "h", "h"],
    );
    // A bare -q is found where an option may start, not as another option's value.
    assertEquals(parseSendmailArgs(["-f", "-q", "a"]).sender, "-q");
    assertEquals(parseSendmailArgs(["-f", "-q", "a"]).mode, "m");
    assertEquals(parseSendmailArgs(["-i", "-q"]).mode, "q");
    assertEquals(parseSendmailArgs(["a", "-q"]).recipients, ["a", "-q"]);
    assertEquals(parseSendmailArgs(["-qRrelay.example"]).flushSite, "relay.example");
    assertEquals(parseSendmailArgs(["-qIABC"]).flushId, "ABC");
    assertEquals(parseSendmailArgs(["-q30m"]).qtime, "30m");
    assertEquals(parseSendmailArgs(["-bv", "a"]).verify, true);
  });
  await t.step("single-letter flags combine as with getopt(3)", () => {
    for (const args of [["-ti"], ["-it"], ["-t", "-oi"], ["-t", "-i"], ["-oi", "-t"]]) {
      const o = parseSendmailArgs([...args, "ann@x"]);
      assertEquals(
        [o.extract, o.ignoreDots, o.recipients],
        [true, true, ["ann@x"]],
        args.join(" "),
      );
    }
    const o = parseSendmailArgs(["-tifjoe@x", "-vF", "Joe", "-o", "i", "ann@x"]);
    assertEquals([o.extract, o.ignoreDots, o.sender, o.fullName], [true, true, "joe@x", "Joe"]);
    assertEquals(o.recipients, ["ann@x"]);
    assertEquals(parseSendmailArgs(["-tbm", "a"]).mode, "m");
    assertEquals(parseSendmailArgs(["-oem", "-Am", "-G", "a"]).recipients, ["a"], "ignored");
  });
});

function convert(input: string, ignoreDots: boolean, chunk = Infinity): string {
  const c = new InputConverter(ignoreDots);
  const bytes = new TextEncoder().encode(input);
  const dec = new TextDecoder();
  let out = "";
  const step = Math.min(chunk, bytes.length || 1);
  for (let i = 0; i < bytes.length; i += step) {
    out += dec.decode(c.push(bytes.subarray(i, i + step)));
  }
  return out + dec.decode(c.end());
}

Deno.test("InputConverter", async (t) => {
  const cases: [string, boolean, string][] = [
    ["a\nb\n", false, "a\r\nb\r\n"],
    ["a\r\nb\r\n", false, "a\r\nb\r\n"],
    ["a\nb", false, "a\r\nb\r\n"],
    ["a\rb\n", false, "a\rb\r\n"],
    ["a\r", false, "a\r\n"],
    ["", false, ""],
    ["a\n.\nafter\n", false, "a\r\n"],
    ["a\r\n.\r\nafter\n", false, "a\r\n"],
    ["a\n.", false, "a\r\n"],
    ["a\n.\n", true, "a\r\n.\r\n"],
    ["a\n.", true, "a\r\n.\r\n"],
    ["a\n..\n.x\n", false, "a\r\n..\r\n.x\r\n"],
    ["x.\n", false, "x.\r\n"],
    ["a\n.\r", false, "a\r\n"],
  ];
  for (const [input, ignore, want] of cases) {
    await t.step(`${JSON.stringify(input)}${ignore ? " -i" : ""}`, () => {
      for (const chunk of [Infinity, 1, 2, 3]) {
        assertEquals(convert(input, ignore, chunk), want, `chunk size ${chunk}`);
      }
    });
  }
});

Deno.test("InputConverter: any chunking gives the same output", () => {
  const text = fc.stringOf(fc.constantFrom("a", ".", "\r", "\n"), { maxLength: 40 });
  fc.assert(
    fc.property(text, fc.boolean(), fc.integer({ min: 1, max: 5 }), (input, ignore, chunk) => {
      const whole = convert(input, ignore);
      assertEquals(convert(input, ignore, chunk), whole);
      assert(whole === "" || whole.endsWith("\r\n"), "ends with CRLF");
      assert(!/(^|[^\r])\n/.test(whole), "no bare LF");
      if (!ignore) assert(!whole.startsWith(".\r\n") && !whole.includes("\n.\r\n"));
    }),
    { numRuns: 2000 },
  );
});

/** The `deno run` flags of the sendmail task, so the test runs with exactly its permissions. */
async function taskFlags(): Promise<string[]> {
  const cfg = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const words = (cfg.tasks.sendmail as string).split(/\s+/);
  assertEquals(words.slice(0, 2), ["deno", "run"]);
  assertEquals(words[words.length - 1], "commands/sendmail.ts");
  return words.slice(2, -1);
}

interface Run {
  code: number;
  stderr: string;
}

async function runSendmail(
  args: string[],
  stdin: string,
  env: Record<string, string> = {},
): Promise<Run> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", ...(await taskFlags()), "commands/sendmail.ts", ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "", NO_COLOR: "1", ...env },
  });
  const child = cmd.spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin)).catch(() => {});
  await w.close().catch(() => {});
  const out = await child.output();
  lastStdout = new TextDecoder().decode(out.stdout);
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** Standard output of the last {@link runSendmail}. */
let lastStdout = "";

async function maildropFiles(q: QueueDir): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(q.dir("maildrop"))) out.push(e.name);
  return out.sort();
}

Deno.test("sendmail command", async (t) => {
  const root = await Deno.makeTempDir();
  const conf = `${root}/conf`;
  const q = new QueueDir(`${root}/queue`);
  try {
    await Deno.mkdir(conf);
    await Deno.writeTextFile(
      `${conf}/main.cf`,
      `queue_directory = ${q.root}\nmyorigin = example.com\nmessage_size_limit = 2000\n`,
    );
    await q.create();

    await t.step("writes a valid maildrop file and exits 0", async () => {
      const run = await runSendmail(
        [
          "-c",
          conf,
          "-f",
          "alice",
          "-N",
          "failure,delay",
          "-R",
          "full",
          "-V",
          "E1",
          "bob@x",
          "carol",
        ],
        "Subject: hi\nX: y\n\nbody\n.\nnot part of it\n",
        { USER: "alice" },
      );
      assertEquals(run, { code: 0, stderr: "" });
      const files = await maildropFiles(q);
      assertEquals(files.length, 1);
      assert(/^[0-9A-F]{15}\.[0-9a-f]{32}$/.test(files[0]), `named by queue id: ${files[0]}`);
      const st = await Deno.lstat(q.path("maildrop", files[0]));
      assertEquals(st.mode! & 0o7777, 0o644, "readable by the mail owner, whatever the umask");
      const qf = await QueueFile.open(q.path("maildrop", files[0]));
      try {
        const env = qf.envelope;
        assertEquals(env.queueId, files[0].slice(0, 15));
        assertEquals(env.sender, "alice@example.com");
        assert(Math.abs(env.arrival - Date.now()) < 60_000);
        const attrs = env.attrs as MaildropAttrs;
        assertEquals([attrs.user, attrs.defaultSender], [undefined, undefined], "-f given");
        assertEquals(attrs.uid, Deno.uid());
        assertEquals(attrs.extract, undefined);
        assertEquals([attrs.ret, attrs.envid], ["FULL", "E1"]);
        assertEquals(
          qf.head.recipients.map((r) => [r.address, r.notify]),
          [["bob@x", ["FAILURE", "DELAY"]], ["carol@example.com", ["FAILURE", "DELAY"]]],
        );
        assertEquals(
          new TextDecoder().decode(await qf.readContent()),
          "Subject: hi\r\nX: y\r\n\r\nbody\r\n",
        );
      } finally {
        qf.close();
      }
      await Deno.remove(q.path("maildrop", files[0]));
    });

    await t.step("-ti: recipients from headers, dot lines kept; sender from the uid", async () => {
      const run = await runSendmail(
        ["-ti", "-F", "Root User"],
        "To: bob@x\n\n.\nend",
        { MAIL_CONFIG: conf, LOGNAME: "ops", USER: "ops" },
      );
      assertEquals(run, { code: 0, stderr: "" });
      const [name] = await maildropFiles(q);
      const qf = await QueueFile.open(q.path("maildrop", name));
      try {
        const login = new PasswdFile().byUid(Deno.uid()!)!.name;
        assertEquals(qf.envelope.sender, login, "the login name, not $USER or $LOGNAME");
        const attrs = qf.envelope.attrs as MaildropAttrs;
        assertEquals([attrs.user, attrs.defaultSender], [login, true]);
        assertEquals([attrs.extract, attrs.fullName], [true, "Root User"]);
        assertEquals(qf.head.recipients, []);
        assertEquals(
          new TextDecoder().decode(await qf.readContent()),
          "To: bob@x\r\n\r\n.\r\nend\r\n",
        );
      } finally {
        qf.close();
      }
      await Deno.remove(q.path("maildrop", name));
    });

    await t.step("-f <> is the null sender; the default sender is the login name", async () => {
      const login = new PasswdFile().byUid(Deno.uid()!)!.name;
      for (const [args, want] of [[["-f", "<>"], ""], [[], login]] as const) {
        assertEquals((await runSendmail(["-c", conf, ...args, "bob@x"], "x\n")).code, 0);
        const [name] = await maildropFiles(q);
        const qf = await QueueFile.open(q.path("maildrop", name));
        assertEquals(qf.envelope.sender, want);
        qf.close();
        await Deno.remove(q.path("maildrop", name));
      }
    });

    await t.step("-bv queues a probe for verification and reads no input", async () => {
      const run = await runSendmail(
        ["-c", conf, "-f", "rep@x", "-bv", "bob@x", "carol"],
        "Subject: not read\n\nbody\n",
      );
      assertEquals(run, { code: 0, stderr: "" });
      assertEquals(lastStdout, "Mail Delivery Status Report will be mailed to <rep@x>.\n");
      const [name] = await maildropFiles(q);
      const qf = await QueueFile.open(q.path("maildrop", name));
      try {
        assertEquals(qf.envelope.attrs?.verify, true);
        assertEquals(qf.head.recipients.map((r) => r.address), ["bob@x", "carol@example.com"]);
        assertEquals(
          new TextDecoder().decode(await qf.readContent()),
          "From: rep@x\r\nSubject: probe\r\nTo: bob@x, carol@example.com\r\n",
        );
      } finally {
        qf.close();
      }
      await Deno.remove(q.path("maildrop", name));
    });

    await t.step("wakes pickup on public/pickup", async () => {
      const got: unknown[] = [];
      const server = ipcListen(q.publicSocket("pickup"), async (c) => {
        got.push(await c.recvMsg());
        await c.send({ ok: true });
      });
      try {
        assertEquals((await runSendmail(["-c", conf, "bob@x"], "x\n")).code, 0);
        assertEquals(got, [{ op: "wakeup" }]);
      } finally {
        server.close();
        await server.done;
      }
      for (const f of await maildropFiles(q)) await Deno.remove(q.path("maildrop", f));
    });

    await t.step("exit 75 (as Postfix's) without recipients or on a bad option", async () => {
      const run = await runSendmail(["-c", conf], "x\n");
      assertEquals(run, { code: 75, stderr: "sendmail: fatal: no recipients specified\n" });
      const bad = await runSendmail(["-c", conf, "-N", "sometimes", "bob@x"], "x\n");
      assertEquals(bad.code, 75);
      assertStringIncludes(bad.stderr, "sendmail: fatal: bad -N option value");
      for (
        const [args, text] of [
          [["-bp", "x@y"], "display queue mode requires no recipient"],
          [["-q", "x@y"], "flush queue mode requires no recipient"],
          [["-qRsite", "x@y"], "flush site requires no recipient"],
          [["-bi", "x@y"], "alias initialization mode requires no recipient"],
          [["-bs", "x@y"], "stand-alone mode requires no recipient"],
          [["-bd"], "-bd is not supported: start Postwarden with postwarden start"],
        ] as const
      ) {
        const r = await runSendmail(["-c", conf, ...args], "");
        assertEquals(r, { code: 75, stderr: `sendmail: fatal: ${text}\n` }, args.join(" "));
      }
      for (const args of [["-bh"], ["-q30m"], ["-q5m", "x@y"]]) {
        assertEquals(await runSendmail(["-c", conf, ...args], ""), { code: 0, stderr: "" });
      }
      assertEquals(await maildropFiles(q), []);
    });

    await t.step("exit 75 for a message over message_size_limit, nothing left", async () => {
      const run = await runSendmail(["-c", conf, "bob@x"], "x".repeat(3000) + "\n");
      assertEquals(run, { code: 75, stderr: "sendmail: fatal: message file too big\n" });
      assertEquals(await maildropFiles(q), []);
    });

    await t.step("exit 75 when the queue directory is missing", async () => {
      const other = `${root}/conf2`;
      await Deno.mkdir(other);
      await Deno.writeTextFile(`${other}/main.cf`, `queue_directory = ${root}/nowhere\n`);
      const run = await runSendmail(["-c", other, "bob@x"], "x\n");
      assertEquals(run.code, 75);
      assertStringIncludes(run.stderr, `sendmail: fatal: queue directory ${root}/nowhere/maildrop`);
    });

    await t.step("exit 75 when maildrop is not writable", async () => {
      const ro = `${root}/conf3`;
      await Deno.mkdir(ro);
      await Deno.writeTextFile(`${ro}/main.cf`, `queue_directory = ${root}/roq\n`);
      await Deno.mkdir(`${root}/roq`);
      // A file where the maildrop folder should be: refused even for root.
      await Deno.writeTextFile(`${root}/roq/maildrop`, "");
      const run = await runSendmail(["-c", ro, "bob@x"], "x\n");
      assertEquals(run.code, 75);
      assertStringIncludes(run.stderr, "sendmail: fatal: ");
    });

    await t.step("-bi and -I build alias_database, as newaliases", async () => {
      const dir = `${root}/aliases-conf`;
      await Deno.mkdir(dir);
      await Deno.writeTextFile(`${dir}/aliases`, "postmaster: root\n");
      await Deno.writeTextFile(
        `${dir}/main.cf`,
        `queue_directory = ${root}/spool\nalias_database = hash:${dir}/aliases\n`,
      );
      for (const mode of ["-bi", "-I"]) {
        await Deno.remove(`${dir}/aliases.hash.pwdb`).catch(() => {});
        assertEquals(await runSendmail(["-c", dir, mode], ""), { code: 0, stderr: "" }, mode);
        assert((await Deno.stat(`${dir}/aliases.hash.pwdb`)).isFile, mode);
      }
    });

    await t.step("exit 75 without main.cf", async () => {
      const run = await runSendmail(["-c", `${root}/missing`, "bob@x"], "x\n");
      assertEquals(run.code, 75);
      assertStringIncludes(run.stderr, "sendmail: fatal: open ");
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("sendmail as an ordinary user, into a maildrop/ it may not list", async (t) => {
  if (!haveRoot("running sendmail as other users")) return;
  const user = localUser("nobody");
  const other = localUser("daemon");
  if (!user || !other) return;
  const root = await Deno.makeTempDir({ prefix: "postwarden-sendmail-" });
  const as = await AsUser.create(root);
  const conf = `${root}/conf`;
  const q = new QueueDir(`${root}/queue`);
  /** Stands for mail_owner: neither the submitter nor the snooper. */
  const OWNER = 4243;
  const flags = await taskFlags();
  const sendmailAs = (who: PasswdEntry, args: string[], stdin: string) =>
    as.run(who, ["run", ...flags, `${as.code}/commands/sendmail.ts`, "-c", conf, ...args], {
      cwd: as.code,
      stdin,
      env: { USER: "root", LOGNAME: "root" },
    });
  /** What `who` gets when reading `path` (a directory is listed): "ok" or the error name. */
  const probe = async (who: PasswdEntry, path: string) => {
    const code = `try { const s = Deno.statSync(${JSON.stringify(path)});
      if (s.isDirectory) [...Deno.readDirSync(${JSON.stringify(path)})];
      else Deno.readFileSync(${JSON.stringify(path)}); console.log("ok") }
      catch (e) { console.log(e.name) }`;
    return (await as.run(who, ["eval", code], { cwd: root })).stdout.trim();
  };
  try {
    await Deno.mkdir(conf);
    await Deno.writeTextFile(
      `${conf}/main.cf`,
      `queue_directory = ${q.root}\nmyorigin = example.com\n`,
    );
    // The layout master sets up: queue root-owned 0755, maildrop the mail owner's 1733.
    await q.create();
    await Deno.chmod(q.root, 0o755);
    await Deno.chown(q.dir("maildrop"), OWNER, OWNER);
    await Deno.chmod(q.dir("maildrop"), 0o1733);
    const maildrop = q.dir("maildrop");

    await t.step("queues the message, owned by the user, readable by the mail owner", async () => {
      const r = await sendmailAs(user, ["bob@x"], "Subject: hi\n\nfrom nobody\n");
      assertEquals([r.code, r.stderr], [0, ""]);
      const [name, ...more] = await maildropFiles(q);
      assertEquals(more, []);
      assert(/^[0-9A-F]{15}\.[0-9a-f]{32}$/.test(name), name);
      const st = await Deno.lstat(`${maildrop}/${name}`);
      assertEquals([st.uid, st.mode! & 0o7777, st.nlink], [user.uid, 0o644, 1]);
      const qf = await QueueFile.open(`${maildrop}/${name}`);
      try {
        assertEquals(qf.envelope.sender, user.name, "the login name of the uid, not $USER");
        assertEquals((qf.envelope.attrs as MaildropAttrs).defaultSender, true);
        assertEquals(
          new TextDecoder().decode(await qf.readContent()),
          "Subject: hi\r\n\r\nfrom nobody\r\n",
        );
      } finally {
        qf.close();
      }

      // Another user can neither list maildrop/ nor find the file by its queue id.
      assertEquals(await probe(other, maildrop), "PermissionDenied");
      assertEquals(await probe(other, `${maildrop}/${name.slice(0, 15)}`), "NotFound");
      // Only the 128 random bits stand between them and the content (mode 0644).
      assertEquals(await probe(other, `${maildrop}/${name}`), "ok");
      await Deno.remove(`${maildrop}/${name}`);
    });

    await t.step("with a setgid maildrop/ the file is 0640: unreadable even by name", async () => {
      await Deno.chmod(maildrop, 0o3733);
      try {
        const r = await sendmailAs(user, ["-f", "list@example.com", "bob@x"], "x\n");
        assertEquals([r.code, r.stderr], [0, ""]);
        const [name] = await maildropFiles(q);
        const st = await Deno.lstat(`${maildrop}/${name}`);
        assertEquals([st.uid, st.gid, st.mode! & 0o7777], [user.uid, OWNER, 0o640]);
        assertEquals(await probe(other, `${maildrop}/${name}`), "PermissionDenied");
        await Deno.remove(`${maildrop}/${name}`);
      } finally {
        await Deno.chmod(maildrop, 0o1733);
      }
    });

    await t.step("asks pickup to fsync maildrop/, which it may not open itself", async () => {
      const got: unknown[] = [];
      const sock = q.publicSocket("pickup");
      const server = ipcListen(sock, async (c) => {
        got.push(await c.recvMsg());
        await c.send({ ok: true, synced: true });
      });
      try {
        // public/pickup reachable by everyone, as the pickup socket must be.
        await Deno.chmod(q.dir("public"), 0o711);
        await Deno.chmod(sock, 0o666);
        const r = await sendmailAs(user, ["bob@x"], "x\n");
        assertEquals([r.code, r.stderr], [0, ""]);
        assertEquals(got, [{ op: "wakeup", sync: true }]);
      } finally {
        server.close();
        await server.done;
      }
      // And when pickup says the fsync failed, the message is not queued.
      const failing = ipcListen(sock, async (c) => {
        await c.recvMsg();
        await c.send({ ok: false, error: "EIO" });
      });
      try {
        await Deno.chmod(sock, 0o666);
        for (const f of await maildropFiles(q)) await Deno.remove(`${maildrop}/${f}`);
        const r = await sendmailAs(user, ["bob@x"], "x\n");
        assertEquals(r.code, 75);
        assertStringIncludes(r.stderr, "EIO");
        assertEquals(await maildropFiles(q), []);
      } finally {
        failing.close();
        await failing.done;
      }
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
