/**
 * Local submission by an ordinary user, end to end: sendmail run as
 * `nobody` against the queue layout master sets up (queue directory
 * root-owned 0755, maildrop/ the mail owner's 1733), then pickup, first
 * driven directly against a fake cleanup, then inside a whole instance.
 * pickup must log the uid the kernel reports, whatever the file says, and
 * must neither follow nor wait on what the user plants in maildrop/.
 */
import { submissionKitDir } from "../../lib/instance/mod.ts";
import { PasswdFile } from "../../lib/passwd/mod.ts";
import { encodeHead, encodeRecord, encodeTrailer, REC, TRAILER_SIZE } from "../../lib/queue/mod.ts";
import { concat } from "../../lib/bytes/mod.ts";
import { newMaildropName } from "../../daemons/pickup/maildrop.ts";
import { Pickup } from "../../daemons/pickup/pickup.ts";
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { AsUser, localUser } from "../helpers/as_user.ts";
import { fakeCleanup } from "../helpers/fake_cleanup.ts";
import { fakeService, writeQueueFile } from "../helpers/fake_service.ts";
import { maildirFiles, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { haveRoot } from "../helpers/peers.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const opts = { sanitizeOps: false, sanitizeResources: false };

/** The flags of `deno task sendmail`, so the user runs it with exactly those permissions. */
async function sendmailFlags(): Promise<string[]> {
  const cfg = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  return (cfg.tasks.sendmail as string).split(/\s+/).slice(2, -1);
}

/** A maildrop file whose envelope claims to come from root (uid 0, sender root). */
function forgedFile(): Uint8Array {
  const head = encodeHead(
    {
      queueId: "0000000000000AA",
      arrival: 0,
      sender: "root",
      attrs: { origin: "sendmail", uid: 0, user: "root", defaultSender: true } as never,
    },
    [{ address: "ann@example.com" }],
  );
  const body = encodeRecord(REC.content, new TextEncoder().encode("Subject: forged\r\n\r\nx\r\n"));
  const size = head.length + body.length + TRAILER_SIZE;
  return concat([head, body, encodeTrailer(size)]);
}

Deno.test({
  name: "an ordinary user's submission reaches cleanup with the kernel's uid",
  ...opts,
  fn: async (t) => {
    if (!haveRoot("running sendmail as another user")) return;
    const user = localUser("nobody");
    if (!user) return;
    const root = await Deno.makeTempDir({ prefix: "postwarden-submit-" });
    const as = await AsUser.create(`${root}/as`);
    const svc = await fakeService("pickup", root);
    const maildrop = svc.ctx.queue.dir("maildrop");
    await Deno.chmod(root, 0o755);
    await Deno.chmod(svc.ctx.queue.root, 0o755);
    await Deno.chown(maildrop, 4243, 4243); // the mail owner, not the user
    await Deno.chmod(maildrop, 0o1733);
    await Deno.mkdir(`${root}/conf`);
    await Deno.writeTextFile(
      `${root}/conf/main.cf`,
      `queue_directory = ${svc.ctx.queue.root}\nmyorigin = example.com\n`,
    );
    const cleanup = fakeCleanup(svc.ctx.queue.privateSocket("cleanup"), maildrop);
    const asUser = (args: string[], stdin = "") =>
      as.run(user, args, { cwd: as.code, stdin, env: { USER: "root", LOGNAME: "root" } });
    const secret = await writeQueueFile(
      `${root}/as`,
      { sender: "boss@example.com" },
      [{ address: "ann@example.com" }],
      "Subject: secret\r\n\r\nSECRET\r\n",
    );
    await Deno.chmod(secret.path, 0o600);
    try {
      await t.step("sendmail exits 0 and pickup logs the user's uid and login", async () => {
        const r = await asUser(
          [
            "run",
            ...(await sendmailFlags()),
            `${as.code}/commands/sendmail.ts`,
            "-c",
            `${root}/conf`,
            "ann",
          ],
          "Subject: hi\n\nhello\n",
        );
        assertEquals([r.code, r.stderr], [0, ""]);
        const res = await new Pickup(svc.ctx).scan();
        assertEquals(res.submitted.length, 1);
        assertEquals(svc.lines, [`CLEANUP1: uid=${user.uid} from=<${user.name}>`]);
        assertEquals(cleanup.got[0].envelope.sender, user.name);
        assertEquals(cleanup.got[0].content, "Subject: hi\r\n\r\nhello\r\n");
      });

      await t.step(
        "a file written by hand claiming uid 0 and root is still the user's",
        async () => {
          const path = `${maildrop}/${newMaildropName()}`;
          const code = `const text = await new Response(Deno.stdin.readable).text();
            const b = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
            Deno.writeFileSync(${JSON.stringify(path)}, b, { mode: 0o644 });`;
          const r = await as.run(user, ["eval", code], {
            cwd: root,
            stdin: btoa(String.fromCharCode(...forgedFile())),
          });
          assertEquals([r.code, r.stderr], [0, ""]);
          svc.lines.length = 0;
          assertEquals((await new Pickup(svc.ctx).scan()).submitted.length, 1);
          assertEquals(svc.lines, [`CLEANUP2: uid=${user.uid} from=<${user.name}>`]);
          assertEquals(cleanup.got[1].envelope.sender, user.name);
        },
      );

      await t.step("a symlink and a FIFO planted by the user are removed unread", async () => {
        const link = `${maildrop}/${newMaildropName()}`;
        const fifo = `${maildrop}/${newMaildropName()}`;
        const r = await as.run(
          user,
          [
            "eval",
            `Deno.symlinkSync(${JSON.stringify(secret.path)}, ${JSON.stringify(link)});
            new Deno.Command("mkfifo", { args: [${JSON.stringify(fifo)}] }).outputSync();`,
          ],
          { cwd: root },
        );
        assertEquals([r.code, r.stderr], [0, ""]);
        svc.lines.length = 0;
        const res = await new Pickup(svc.ctx).scan();
        assertEquals([res.removed.length, res.submitted.length], [2, 0]);
        assertEquals(cleanup.got.length, 2, "nothing more reached cleanup");
        for (const what of ["symbolic link", "FIFO"]) {
          assert(
            svc.lines.some((l) => l.includes(`uid=${user.uid}: ${what}`)),
            svc.lines.join("\n"),
          );
        }
        assertEquals([...Deno.readDirSync(maildrop)], []);
      });
    } finally {
      cleanup.server.close();
      await cleanup.server.done;
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "sendmail by an ordinary user is delivered by a running instance",
  ...opts,
  fn: async () => {
    if (!haveRoot("running sendmail as another user")) return;
    const user = localUser("nobody");
    if (!user) return;
    const inst = await startInstance();
    const as = await AsUser.create(`${inst.dir}/as`);
    try {
      // What postwarden start gives every local user: the submission kit
      // (the staged code and a readable copy of main.cf), and maildrop/ 1733.
      const kit = `${await submissionKitDir(inst.conf)}/sendmail`;
      const r = await as.run(user, ["alice@localhost"], {
        cwd: "/",
        program: kit,
        stdin: "Subject: from an ordinary user\n\nhi\n",
      });
      assertEquals([r.code, r.stderr], [0, ""]);
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "alice")).length === 1,
        20_000,
        "delivery",
      );
      const text = await Deno.readTextFile((await maildirFiles(inst.spool, "alice"))[0]);
      const login = new PasswdFile().byUid(user.uid)!.name;
      assertStringIncludes(text, `Return-Path: <${login}@mx.test.example>`);
      assertStringIncludes(text, "Subject: from an ordinary user");
      const submitted = `: uid=${user.uid} from=<${login}>`;
      assertStringIncludes(await waitForLog(inst, submitted, 10_000), submitted);
    } finally {
      await inst.stop();
    }
  },
});
