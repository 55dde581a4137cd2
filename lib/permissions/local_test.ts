/**
 * Tests for the local agent's own grants (local.ts): what it gets as root
 * and not, the recipient writer's one-mailbox sandbox, measured with a
 * real writer process where it matters, and which services master keeps
 * as root.
 */
import { PasswdFile } from "../passwd/mod.ts";
import { assert, assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { grantFlags, MODULE_FLAGS } from "./mod.ts";
import { addLocalGrants, recipientWriterGrants } from "./local.ts";

const none = () => ({ read: [], write: [], net: [], run: [], sys: [], env: [], npm: [] });
const params = (p: Record<string, string>) => (n: string) => p[n] ?? "";

Deno.test("local grants", async (t) => {
  await t.step("as root: its Deno and /etc/passwd; nothing else", () => {
    const g = none() as ReturnType<typeof none> & { read: string[]; run: string[]; sys: string[] };
    addLocalGrants(g, { param: params({}), root: { deno: "/opt/deno" } });
    assertEquals(g.run, ["/opt/deno"]);
    assertEquals(g.read, ["/etc/passwd"]);
    assertEquals(g.sys, ["uid"]);
  });
  await t.step("commands: the shell as root or for a one-user instance, not for mail_owner", () => {
    const p = params({ allow_mail_to_commands: "alias, forward", export_environment: "TZ LANG=C" });
    const root = none() as ReturnType<typeof none> & { run: string[]; env: string[] };
    addLocalGrants(root, { param: p, root: { deno: "/opt/deno" } });
    assertEquals([root.run, root.env], [["/bin/sh", "/opt/deno"], ["TZ"]]);
    const mailOwner = none() as ReturnType<typeof none> & { run: string[] };
    addLocalGrants(mailOwner, { param: p, uid: 0 });
    assertEquals(mailOwner.run, [], "master is root, local is mail_owner: no shell");
    const user = none() as ReturnType<typeof none> & { run: string[] };
    addLocalGrants(user, {
      param: params({
        ...{ allow_mail_to_commands: "alias" },
        local_command_shell: "/usr/bin/bash -c",
      }),
      uid: 1000,
    });
    assertEquals(user.run, ["/usr/bin/bash"]);
  });
  await t.step("not root, nothing configured: only /etc/passwd, runs nothing", () => {
    const g = none() as ReturnType<typeof none> & { read: string[]; run: string[] };
    addLocalGrants(g, { param: params({}), uid: 1000 });
    assertEquals([g.read, g.run], [["/etc/passwd"], []]);
  });
  await t.step("not root with home_mailbox: the instance user's own mailbox only", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/passwd`, "me:x:1234:1234::/home/me:/bin/sh\n");
      const g = none() as ReturnType<typeof none> & { read: string[]; write: string[] };
      addLocalGrants(g, {
        param: params({ home_mailbox: "Mailbox" }),
        passwd: new PasswdFile(`${dir}/passwd`),
        uid: 1234,
      });
      assertEquals(g.write, ["/home/me/Mailbox", "/home/me/Mailbox.lock"]);
      assert(g.read.includes("/etc/passwd"));
      const m = none() as ReturnType<typeof none> & { write: string[] };
      addLocalGrants(m, {
        param: params({ home_mailbox: "Maildir/" }),
        passwd: new PasswdFile(`${dir}/passwd`),
        uid: 1234,
      });
      assertEquals(m.write, ["/home/me/Maildir"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
  await t.step("the writer may touch its one mailbox; never a path with a comma", () => {
    const g = recipientWriterGrants({ kind: "mbox", path: "/var/mail/joe" });
    assertEquals(g.write, ["/var/mail/joe", "/var/mail/joe.lock"]);
    assertEquals([g.net, g.run, g.env, g.sys], [[], [], [], []]);
    const flags = grantFlags(g, "/code");
    for (const f of MODULE_FLAGS) assert(flags.includes(f), f);
    assertThrows(
      () => recipientWriterGrants({ kind: "mbox", path: "/var/mail/a,/etc/passwd" }),
      Error,
      "comma",
    );
    const m = recipientWriterGrants({ kind: "maildir", dir: "/home/joe/Maildir/" });
    assertEquals([m.read, m.write], [["/home/joe/Maildir", "/home/joe"], ["/home/joe/Maildir"]]);
  });
  await t.step("measured: the writer's flags stop it from writing beside its mailbox", async () => {
    const dir = await Deno.makeTempDir();
    try {
      const probe = `${dir}/probe.ts`;
      await Deno.writeTextFile(
        probe,
        `await Deno.writeTextFile(${JSON.stringify(`${dir}/box`)}, "ok");
try { await Deno.writeTextFile(${
          JSON.stringify(`${dir}/other`)
        }, "x"); console.log("wrote other"); } catch (e) { console.log((e as Error).name); }`,
      );
      const flags = grantFlags(recipientWriterGrants({ kind: "mbox", path: `${dir}/box` }), dir)
        .filter((f) => f !== "--deny-import");
      const out = await new Deno.Command(Deno.execPath(), { args: ["run", ...flags, probe] })
        .output();
      assertEquals(new TextDecoder().decode(out.stdout).trim(), "NotCapable");
      assertEquals(await Deno.readTextFile(`${dir}/box`), "ok");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
