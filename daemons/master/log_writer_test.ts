import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { LogWriter } from "./log_writer.ts";
import { importedEnvironment } from "./main.ts";

const me = { uid: Deno.uid()!, gid: Deno.gid()! };

function stream(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const x of chunks) c.enqueue(enc.encode(x));
      c.close();
    },
  });
}

Deno.test("master log writer", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "pw-logw-" });
  try {
    const file = `${dir}/maillog`;
    const w = new LogWriter({
      file,
      hostname: "mx.example",
      stderr: false,
      syslogClientDir: dir,
      owner: me,
    });
    w.open();
    const flushed = () => new Promise((r) => setTimeout(r, 10)); // writes are batched per turn
    await t.step("daemon lines are re-headed with the real pid, split lines joined", async () => {
      await w.pump(
        stream([
          "Dec  1 10:00:00 forged postwarden/smtpd[1]: connect from a[1.2.3.4]\nDec  1 10:00:0",
          "0 h postwarden/qmgr[999]: 1234: removed\n",
        ]),
        "postwarden/smtpd",
        4321,
      );
      await flushed();
      const lines = (await Deno.readTextFile(file)).trimEnd().split("\n");
      assertEquals(lines.length, 2);
      assertMatch(
        lines[0],
        / mx\.example postwarden\/smtpd\[4321\]: connect from a\[1\.2\.3\.4\]$/,
      );
      assertMatch(lines[1], / postwarden\/qmgr\[4321\]: 1234: removed$/, "no other pid");
    });
    await t.step("anything else a daemon prints is a warning of that daemon", async () => {
      await w.pump(stream(["error: Uncaught (in promise) Error: boom\n"]), "postwarden/qmgr", 7);
      await flushed();
      const last = (await Deno.readTextFile(file)).trimEnd().split("\n").pop()!;
      assertMatch(
        last,
        /postwarden\/qmgr\[7\]: warning: error: Uncaught \(in promise\) Error: boom$/,
      );
    });
    await t.step("control bytes cannot split or forge a line", async () => {
      await w.pump(
        stream(["Dec  1 10:00:00 h postwarden/smtpd[1]: helo=<a\r\x00b\x1b[31m>\n"]),
        "postwarden/smtpd",
        5,
      );
      await flushed();
      const last = (await Deno.readTextFile(file)).trimEnd().split("\n").pop()!;
      assert(last.endsWith("helo=<a??b?[31m>"), last);
    });
    await t.step("a clean line with the right pid is written as it came", async () => {
      const line = "Nov 30 23:59:59 mx.example postwarden/cleanup[77]: ABC: message-id=<x@y> é";
      await w.pump(stream([line + "\n"]), "postwarden/cleanup", 77);
      await flushed();
      const last = (await Deno.readTextFile(file)).trimEnd().split("\n").pop()!;
      assertEquals(last, line);
    });
    await t.step("the log is 0600", async () => {
      assertEquals((await Deno.stat(file)).mode! & 0o777, 0o600);
    });
    w.close();
    await t.step("a log replaced by a link is not opened", async () => {
      await Deno.remove(file);
      await Deno.writeTextFile(`${dir}/victim`, "keep\n");
      await Deno.symlink(`${dir}/victim`, file);
      let err = "";
      try {
        w.open();
      } catch (e) {
        err = (e as Error).message;
      }
      assertMatch(err, /symbolic link/);
      assertEquals(await Deno.readTextFile(`${dir}/victim`), "keep\n");
    });
    await t.step(
      "empty maillog_file: syslog lines go to the socket with mail facility",
      async () => {
        const devlog = `${dir}/devlog`;
        const sys = Deno.listenDatagram({ transport: "unixpacket", path: devlog });
        const s = new LogWriter({
          file: "",
          hostname: "mx.example",
          stderr: false,
          syslogPath: devlog,
          syslogClientDir: dir,
          owner: me,
        });
        s.open();
        s.daemonLines("postwarden/smtpd", 42, [
          "Dec  1 10:00:00 h postwarden/smtpd[42]: warning: non-SMTP command from x",
        ]);
        const [data] = await sys.receive();
        const text = new TextDecoder().decode(data);
        assertMatch(
          text,
          /^<20>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d postwarden\/smtpd\[42\]: warning: non-SMTP command from x$/,
        );
        s.close();
        sys.close();
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("import_environment: only the names listed, name=value sets", () => {
  const env: Record<string, string> = { TZ: "UTC", HOME: "/root", SECRET: "x" };
  assertEquals(importedEnvironment("TZ LANG=C MAIL_CONFIG", (n) => env[n]), {
    TZ: "UTC",
    LANG: "C",
  });
});
