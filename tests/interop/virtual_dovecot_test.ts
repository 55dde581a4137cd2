/**
 * Acceptance for issue 9's virtual agent: mail for a virtual_mailbox_domains
 * address is written by Postwarden's virtual(8) into a Maildir under
 * virtual_mailbox_base, owned by the virtual_uid_maps/virtual_gid_maps ids,
 * and a real Dovecot (doveadm fetch, mail_location pointing at the base)
 * reads it, and the same for an mbox file (virtual_mailbox_lock = dotlock).
 * Needs root (master runs virtual as root to give the files to
 * uid 5000) and Debian's dovecot-core.
 */
import { assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { DOVEADM, DOVECOT } from "../helpers/dovecot.ts";
import { smtpSend, startInstance } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { havePeer, haveRoot, run } from "../helpers/peers.ts";

Deno.test({
  name: "virtual: a Maildir delivery that Dovecot reads (doveadm fetch)",
  ignore: !(haveRoot("the virtual/Dovecot interop test") && havePeer(DOVEADM)),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "virtual-dovecot-" });
    await Deno.chmod(dir, 0o755);
    const base = `${dir}/vmail`;
    await Deno.mkdir(base, { mode: 0o755 });
    let dovecotConf = "";
    const inst = await startInstance({
      mainCf: [
        "virtual_mailbox_domains = v.example",
        `virtual_mailbox_base = ${base}`,
        "virtual_mailbox_maps = inline:{ joe@v.example=v.example/joe/, ann@v.example=v.example/ann }",
        "virtual_mailbox_lock = dotlock",
        "virtual_uid_maps = static:5000",
        "virtual_gid_maps = static:5000",
      ].join("\n"),
    });
    try {
      const r = await smtpSend(inst.port, {
        from: "sender@example.com",
        to: ["joe@v.example", "ann@v.example"],
        body: "Subject: for dovecot\r\nMessage-ID: <virt-1@example.com>\r\n\r\nhello virtual\r\n",
      });
      assertEquals(r.code, 250, r.replies.join("\n"));
      await waitForLog(inst, /to=<joe@v.example>.*status=sent \(delivered to maildir\)/, 30_000);
      await waitForLog(inst, /to=<ann@v.example>.*status=sent \(delivered to mailbox\)/, 30_000);
      assertMatch(
        await inst.log(),
        /postwarden\/virtual\[\d+\]: \w+: to=<joe@v.example>, relay=virtual/,
      );
      const maildir = `${base}/v.example/joe`;
      const st = await Deno.stat(maildir);
      assertEquals([st.uid, st.gid], [5000, 5000]);

      await Deno.writeTextFile(
        `${dir}/dovecot.conf`,
        `protocols =
base_dir = ${dir}/run
state_dir = ${dir}/state
default_internal_user = nobody
default_login_user = nobody
log_path = ${dir}/dovecot.log
ssl = no
mail_location = maildir:${base}/%d/%n
first_valid_uid = 5000
userdb {
  driver = static
  args = uid=5000 gid=5000 home=${base}/%d/%n
}
passdb {
  driver = static
  args = nopassword=y
}
`,
      );
      // doveadm asks Dovecot's auth service for the user: run Dovecot (no mail protocols).
      const started = await new Deno.Command(DOVECOT, {
        args: ["-c", `${dir}/dovecot.conf`],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).output();
      assertEquals(started.success, true, "dovecot started");
      dovecotConf = `${dir}/dovecot.conf`;
      const userdb = `${dir}/run/auth-userdb`;
      const end = Date.now() + 10_000;
      while (!(await Deno.stat(userdb).then(() => true, () => false))) {
        if (Date.now() > end) throw new Error("dovecot's auth-userdb socket did not come up");
        await new Promise((res) => setTimeout(res, 100));
      }
      const fetched = await run(DOVEADM, [
        "-c",
        `${dir}/dovecot.conf`,
        "fetch",
        "-u",
        "joe@v.example",
        "hdr.subject hdr.message-id body",
        "mailbox",
        "INBOX",
        "all",
      ]);
      assertEquals(fetched.code, 0, fetched.stderr);
      assertStringIncludes(fetched.stdout, "hdr.subject: for dovecot");
      assertStringIncludes(fetched.stdout, "<virt-1@example.com>");
      assertStringIncludes(fetched.stdout, "hello virtual");

      // The mbox file too: Dovecot's mbox driver finds the From_ line and the message.
      const mbox = `${base}/v.example/ann`;
      assertEquals((await Deno.stat(mbox)).uid, 5000);
      const fromMbox = await run(DOVEADM, [
        "-c",
        `${dir}/dovecot.conf`,
        "-o",
        `mail_location=mbox:${dir}/annroot:INBOX=${mbox}:INDEX=MEMORY`,
        "fetch",
        "-u",
        "ann@v.example",
        "hdr.subject body",
        "mailbox",
        "INBOX",
        "all",
      ]);
      assertEquals(fromMbox.code, 0, fromMbox.stderr);
      assertStringIncludes(fromMbox.stdout, "hdr.subject: for dovecot");
      assertStringIncludes(fromMbox.stdout, "hello virtual");
    } finally {
      if (dovecotConf) await run(DOVEADM, ["-c", dovecotConf, "stop"]).catch(() => {});
      await inst.stop();
    }
  },
});
