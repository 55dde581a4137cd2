/**
 * Tests for mbox delivery (mbox.ts): the From line and headers, >From
 * quoting across chunk boundaries, locks (dotlock, flock, stale dotlocks),
 * refusal of symlinks, hard links, directories and FIFOs, the size limit
 * and the truncation back to the old size on a failed write.
 */
import { exists } from "../../tests/helpers/fs.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/helpers/assert.ts";
import {
  asctime,
  deliverMbox,
  MailboxError,
  MboxBody,
  mboxHeaders,
  type MboxOptions,
  parseMailboxLocks,
} from "./mbox.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const DATE = new Date(2026, 11, 2, 6, 8, 10);

function content(...chunks: string[]) {
  return async function* () {
    for (const c of chunks) {
      await Promise.resolve();
      yield enc.encode(c);
    }
  };
}

function body(chunks: string[]): string {
  const b = new MboxBody();
  let out = "";
  for (const c of chunks) out += dec.decode(b.push(enc.encode(c)));
  return out + dec.decode(b.end());
}

const OPTS: MboxOptions = {
  locks: ["dotlock", "flock"],
  now: () => DATE,
  sleep: () => Promise.resolve(),
  lockAttempts: 3,
};

Deno.test("mbox format", async (t) => {
  await t.step("asctime pads the day with a space", () => {
    assertEquals(asctime(DATE), "Wed Dec  2 06:08:10 2026");
  });
  await t.step("From line and headers as Postfix's mail_copy()", () => {
    assertEquals(
      mboxHeaders({ sender: "a@x", originalRecipient: "o@y", delivered: "joe@y" }, DATE),
      "From a@x  Wed Dec  2 06:08:10 2026\nReturn-Path: <a@x>\n" +
        "X-Original-To: o@y\nDelivered-To: joe@y\n",
    );
    assertEquals(
      mboxHeaders({ sender: "", delivered: "joe@y" }, DATE),
      "From MAILER-DAEMON  Wed Dec  2 06:08:10 2026\nReturn-Path: <>\nDelivered-To: joe@y\n",
    );
  });
  await t.step("hostile addresses cannot add a header line", () => {
    const h = mboxHeaders({ sender: "a\nX-Evil: 1@x", delivered: "b\r\nFrom x@y" }, DATE);
    assertEquals(h.split("\n").length, 4, h);
    assert(!/\nX-Evil/.test(h) && !/\nFrom x/.test(h), h);
  });
  await t.step(">From quoting, CRLF to LF, final newline and blank line", () => {
    assertEquals(body(["a\r\nFrom me\r\nFromage\r\n"]), "a\n>From me\nFromage\n\n");
    assertEquals(body(["x\r\nFr", "om y\r\n"]), "x\n>From y\n\n", "split across chunks");
    assertEquals(body(["x\r\nFro"]), "x\nFro\n\n", "a short last line is not held back");
    assertEquals(body(["From "]), ">From \n\n");
    assertEquals(body(["no newline"]), "no newline\n\n");
    assertEquals(body([" From x\r\n"]), " From x\n\n", "only at the start of a line");
  });
  await t.step("mailbox_delivery_lock", () => {
    assertEquals(parseMailboxLocks("flock, dotlock"), ["flock", "dotlock"]);
    const e = assertThrows(() => parseMailboxLocks("fcntl, dotlock"), MailboxError, "fcntl");
    assertEquals(e.dsn, "4.3.0");
    assertThrows(() => parseMailboxLocks("posix"), MailboxError, "unknown lock style");
  });
});

Deno.test("deliverMbox", async (t) => {
  const dir = await Deno.makeTempDir();
  const box = `${dir}/joe`;
  const msg = {
    sender: "a@x",
    delivered: "joe@y",
    content: content("Subject: s\r\n\r\nFrom here\r\n"),
  };
  try {
    await t.step("creates the file 0600 and appends", async () => {
      await deliverMbox(box, msg, OPTS);
      await deliverMbox(box, msg, OPTS);
      const text = await Deno.readTextFile(box);
      const one = "From a@x  Wed Dec  2 06:08:10 2026\nReturn-Path: <a@x>\nDelivered-To: joe@y\n" +
        "Subject: s\n\n>From here\n\n";
      assertEquals(text, one + one);
      assertEquals((await Deno.stat(box)).mode! & 0o777, 0o600);
      assertEquals(await exists(`${box}.lock`), false, "dotlock removed");
    });
    await t.step("refuses a symbolic link a user owns", async () => {
      await Deno.writeTextFile(`${dir}/target`, "");
      await Deno.symlink(`${dir}/target`, `${dir}/link`);
      // Postfix trusts a link root owns (Solaris /dev); as root, give the link to nobody.
      if (Deno.uid() === 0) await chownLink(`${dir}/link`, 65534);
      const e = await assertRejects(() => deliverMbox(`${dir}/link`, msg, OPTS), MailboxError);
      assertEquals([e.message, e.dsn], ["file is a symbolic link", "5.2.0"]);
      assertEquals(await Deno.readTextFile(`${dir}/target`), "");
    });
    await t.step("refuses a dangling symbolic link (no create through it)", async () => {
      await Deno.symlink(`${dir}/nowhere`, `${dir}/dangling`);
      await assertRejects(() => deliverMbox(`${dir}/dangling`, msg, OPTS), MailboxError);
      assertEquals(await exists(`${dir}/nowhere`), false);
    });
    await t.step("refuses a file with two hard links", async () => {
      await Deno.writeTextFile(`${dir}/h1`, "");
      await Deno.link(`${dir}/h1`, `${dir}/h2`);
      await assertRejects(() => deliverMbox(`${dir}/h1`, msg, OPTS), MailboxError, "2 hard links");
      assertEquals(await Deno.readTextFile(`${dir}/h2`), "");
    });
    await t.step("refuses a directory and a FIFO without blocking", async () => {
      await Deno.mkdir(`${dir}/d`);
      const d = await assertRejects(() => deliverMbox(`${dir}/d`, msg, OPTS), MailboxError);
      assertEquals([d.message, d.dsn], ["file is a directory", "5.2.0"]);
      const mk = await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
      assert(mk.success);
      const f = await assertRejects(() => deliverMbox(`${dir}/fifo`, msg, OPTS), MailboxError);
      assertEquals(f.message, `destination ${dir}/fifo is not a regular file`);
    });
    await t.step("a held dotlock defers 4.2.0; a stale one is removed", async () => {
      await Deno.writeTextFile(`${box}.lock`, "");
      const e = await assertRejects(() => deliverMbox(box, msg, OPTS), MailboxError);
      assertEquals(e.dsn, "4.2.0");
      assertEquals(e.message, `unable to create lock file ${box}.lock: File exists`);
      const later = new Date(Date.now() + 600_000);
      await deliverMbox(box, msg, { ...OPTS, now: () => later, staleLockMs: 500_000 });
      assertEquals(await exists(`${box}.lock`), false);
    });
    await t.step("a held flock defers 4.2.0", async () => {
      const other = await Deno.open(box, { read: true, write: true });
      await other.lock(true);
      try {
        const before = (await Deno.stat(box)).size;
        const e = await assertRejects(() => deliverMbox(box, msg, OPTS), MailboxError);
        assertEquals(
          [e.message, e.dsn],
          ["unable to lock for exclusive access: Resource temporarily unavailable", "4.2.0"],
        );
        assertEquals((await Deno.stat(box)).size, before);
      } finally {
        other.close();
      }
    });
    await t.step("mailbox_size_limit: 5.2.2 and the file keeps its old size", async () => {
      const before = (await Deno.stat(box)).size;
      const e = await assertRejects(
        () => deliverMbox(box, msg, { ...OPTS, sizeLimit: before + 40 }),
        MailboxError,
      );
      assertEquals([e.message, e.dsn], ["error writing message: File too large", "5.2.2"]);
      assertEquals((await Deno.stat(box)).size, before);
    });
    await t.step("a failed read truncates back and defers", async () => {
      const before = (await Deno.stat(box)).size;
      const broken = {
        ...msg,
        content: async function* () {
          yield enc.encode("Subject: half\r\n");
          throw new Error("queue file went away");
        },
      };
      const e = await assertRejects(() => deliverMbox(box, broken, OPTS), MailboxError);
      assertEquals([e.message, e.dsn], ["error reading message: queue file went away", "4.3.0"]);
      assertEquals((await Deno.stat(box)).size, before);
      assertEquals(await exists(`${box}.lock`), false);
    });
    await t.step("strict_mailbox_ownership", async () => {
      const warnings: string[] = [];
      const e = await assertRejects(
        () =>
          deliverMbox(box, msg, {
            ...OPTS,
            owner: (Deno.uid() ?? 0) + 1,
            warn: (m) => warnings.push(m),
          }),
        MailboxError,
      );
      assertEquals([e.message, e.dsn], [`destination ${box} is not owned by recipient`, "4.2.0"]);
      assertEquals(warnings.length, 1);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function chownLink(path: string, uid: number): Promise<void> {
  const r = await new Deno.Command("chown", { args: ["-h", `${uid}:${uid}`, path] }).output();
  assert(r.success, new TextDecoder().decode(r.stderr));
}
