/**
 * Tests for sendmail -bs (sendmail_bs.ts) in-process: a pipelined dialog on
 * stdin is answered on stdout and its message lands in maildrop/ with the
 * SMTP envelope (DSN parameters included); a message that an access table
 * puts on HOLD gets 451 and leaves nothing, since the maildrop cannot carry
 * the action.
 */
import { QueueDir, QueueFile } from "../lib/queue/mod.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "../tests/helpers/assert.ts";
import { parseSendmailArgs } from "./sendmail.ts";
import { standalone } from "./sendmail_bs.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function setup(extra = ""): Promise<{ conf: string; q: QueueDir }> {
  const dir = await Deno.makeTempDir({ prefix: "sendmail_bs_test" });
  const q = new QueueDir(`${dir}/queue`);
  await q.create();
  const conf = `${dir}/conf`;
  await Deno.mkdir(conf);
  const stock = await Deno.readTextFile(`${ROOT}conf/main.cf`);
  await Deno.writeTextFile(
    `${conf}/main.cf`,
    `${stock}\nqueue_directory = ${q.root}\nmyhostname = mx.test.example\nmaillog_file =\n${extra}`,
  );
  await Deno.copyFile(`${ROOT}conf/master.cf`, `${conf}/master.cf`);
  return { conf, q };
}

async function session(conf: string, lines: string[]): Promise<{ code: number; out: string }> {
  const input = new TextEncoder().encode(lines.join("\r\n") + "\r\n");
  let out = "";
  const dec = new TextDecoder();
  const code = await standalone(parseSendmailArgs(["-c", conf, "-bs"]), {
    stdin: new Blob([input]).stream(),
    stdout: new WritableStream({ write: (b) => void (out += dec.decode(b)) }),
    err: (l) => void (out += `ERR ${l}\n`),
    env: {},
    hostname: "mx.test.example",
  });
  return { code, out };
}

const maildrop = (q: QueueDir) => [...Deno.readDirSync(q.dir("maildrop"))].map((e) => e.name);

Deno.test("sendmail -bs", async (t) => {
  await t.step("a pipelined dialog: replies on stdout, the message in maildrop/", async () => {
    const { conf, q } = await setup();
    try {
      const r = await session(conf, [
        "EHLO client.example",
        "MAIL FROM:<a@example.com> ENVID=env1 RET=HDRS",
        "RCPT TO:<postmaster@localhost> NOTIFY=SUCCESS,FAILURE",
        "DATA",
        "Subject: bs",
        "",
        "body",
        ".",
        "QUIT",
      ]);
      assertEquals(r.code, 0);
      assertMatch(r.out, /^220 mx\.test\.example ESMTP/);
      const id = /250 2\.0\.0 Ok: queued as ([0-9A-F]{15})\r\n/.exec(r.out)?.[1];
      assert(id, r.out);
      assertStringIncludes(r.out, "221 2.0.0 Bye\r\n");
      const files = maildrop(q);
      assertEquals(files.length, 1);
      assert(files[0].startsWith(`${id}.`), "the reply names the maildrop file's queue id");
      const f = await QueueFile.open(q.path("maildrop", files[0]));
      try {
        assertEquals(f.envelope.sender, "a@example.com");
        assertEquals(f.envelope.attrs?.envid, "env1");
        assertEquals(f.envelope.attrs?.ret, "HDRS");
        assertEquals(f.head.recipients.map((x) => [x.address, x.notify]), [
          ["postmaster@localhost", ["SUCCESS", "FAILURE"]],
        ]);
        const text = new TextDecoder().decode(await f.readContent());
        assertMatch(text, /^Received: from client\.example \(localhost \[127\.0\.0\.1\]\)/);
        assertStringIncludes(text, "Subject: bs\r\n\r\nbody\r\n");
      } finally {
        f.close();
      }
    } finally {
      await Deno.remove(q.root.replace(/\/queue$/, ""), { recursive: true });
    }
  });

  await t.step("an access-table action the maildrop cannot carry: 451, nothing kept", async () => {
    const { conf, q } = await setup(
      "smtpd_recipient_restrictions = check_recipient_access inline:{ postmaster@localhost=HOLD }, permit_mynetworks, reject_unauth_destination\n",
    );
    try {
      const r = await session(conf, [
        "HELO client.example",
        "MAIL FROM:<a@example.com>",
        "RCPT TO:<postmaster@localhost>",
        "DATA",
        "Subject: held",
        "",
        ".",
        "QUIT",
      ]);
      assertStringIncludes(
        r.out,
        "451 4.3.0 Error: access table actions are not supported with sendmail -bs\r\n",
      );
      assertEquals(maildrop(q), []);
    } finally {
      await Deno.remove(q.root.replace(/\/queue$/, ""), { recursive: true });
    }
  });
});
