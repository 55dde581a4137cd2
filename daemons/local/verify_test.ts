/**
 * Tests for address verification (sendmail -bv) through the local
 * service: aliases to a mailbox, a file, a command, a remote address and
 * an :include: list, an unknown user, a .forward with a Maildir under
 * home_mailbox, mailbox_command, failures reported as a delivery reports
 * them (restricted commands and files, Delivered-To loops), and
 * mailbox_transport's agent answering for the mailbox. Each destination
 * is one trace entry and one `status=deliverable` log line with Postfix
 * 3.7's text; nothing is written, run or sent to cleanup.
 */
import { exists } from "../../tests/helpers/fs.ts";
import {
  type DeliveryRecipient,
  type DeliveryRequest,
  type DeliveryResult,
  type RecipientStatus,
  serveDelivery,
  type TraceEntry,
} from "../../lib/deliver/mod.ts";
import { type IpcConn, ipcListen, ipcRequest } from "../../lib/ipc/mod.ts";
import { PasswdFile } from "../../lib/passwd/mod.ts";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { fakeCleanup } from "../../tests/helpers/fake_cleanup.ts";
import { fakeService, writeQueueFile } from "../../tests/helpers/fake_service.ts";
import { deliverLocal } from "./local.ts";

const MESSAGE = "Subject: hi\r\n\r\nbody\r\n";
const H = "mx.example.com";

/** A trace entry of local's. */
function entry(
  address: string,
  orcpt: string,
  status: TraceEntry["status"],
  dsn: string,
  reason: string,
): TraceEntry {
  return { address, orcpt, status, dsn, reason, relay: "local" };
}

/** A destination local would deliver to. */
function ok(address: string, orcpt: string, reason: string): TraceEntry {
  return entry(address, orcpt, "sent", "2.0.0", reason);
}

Deno.test("address verification through the local service", async (t) => {
  const root = await Deno.makeTempDir();
  await Deno.chmod(root, 0o755);
  const home = `${root}/home/joe`;
  await Deno.mkdir(home, { recursive: true });
  // joe is the user the test runs as, so that an unprivileged local reads his .forward.
  const uid = Deno.uid() ?? 0;
  await Deno.writeTextFile(`${root}/passwd`, `joe:x:${uid}:${uid}::${home}:/bin/sh\n`);
  const passwd = new PasswdFile(`${root}/passwd`);
  await Deno.writeTextFile(`${root}/list`, "joe\nnosuch\n");
  const spool = `${root}/mail`;
  const aliases = `inline:{{alias1=joe, ${root}/file}, {cmd="|touch ${root}/cmd.ran"}, ` +
    `fwd=someone@remote.example, list=:include:${root}/list}`;
  const base = `mail_spool_directory = ${spool}\nmailbox_delivery_lock = flock, dotlock\n` +
    `alias_maps = ${aliases}\nlocal_recipient_maps = inline:{joe=1}\n`;
  let n = 0;

  /**
   * Verifies `rcpts` (local part: the original recipient, as sendmail -bv
   * leaves it) over IPC, as master runs local; `agent` answers on
   * private/lmtp for mailbox_transport.
   */
  async function verify(
    mainCf: string,
    rcpts: string[],
    opts: { content?: string; agent?: (req: DeliveryRequest) => RecipientStatus } = {},
  ) {
    const dir = `${root}/q${++n}`;
    const svc = await fakeService("local", dir, { mainCf: base + mainCf });
    const recipients = rcpts.map((local) => ({ address: `${local}@${H}`, orcpt: local }));
    const q = await writeQueueFile(
      svc.ctx.queue.dir("active"),
      { sender: "a@example.org" },
      recipients,
      opts.content ?? MESSAGE,
    );
    const req: DeliveryRequest = {
      op: "deliver",
      queueId: q.queueId,
      path: q.path,
      sender: "a@example.org",
      transport: "local",
      nexthop: H,
      recipients: recipients.map((r, index): DeliveryRecipient => ({ index, ...r })),
      arrival: Date.now(),
      activeAt: Date.now(),
      verify: true,
    };
    const cleanup = fakeCleanup(
      svc.ctx.queue.privateSocket("cleanup"),
      svc.ctx.queue.dir("maildrop"),
    );
    const passed: DeliveryRequest[] = [];
    const agent = ipcListen(svc.ctx.queue.privateSocket("lmtp"), async (c: IpcConn) => {
      const p = await c.recvMsg<DeliveryRequest>();
      passed.push(p);
      await c.send({ recipients: [opts.agent!(p)] } satisfies DeliveryResult);
    });
    const sock = svc.ctx.queue.privateSocket("local");
    const server = ipcListen(
      sock,
      (c) =>
        serveDelivery(c, svc.ctx, (r, f, ctx) => deliverLocal(r, f, ctx, { passwd }), {
          verifies: true,
        }),
    );
    try {
      const res = await ipcRequest<DeliveryResult>(sock, req, { timeoutMs: 10_000 });
      // Delays vary; the rest of each line is Postfix's.
      const lines = svc.lines.map((l) =>
        l.replace(`${q.queueId}: `, "").replace(/delay=[^,]*, delays=[^,]*, /, "")
      );
      return { st: res.recipients, lines, got: cleanup.got, passed };
    } finally {
      server.close();
      await server.done;
      agent.close();
      await agent.done;
      cleanup.server.close();
      await cleanup.server.done;
    }
  }

  try {
    await t.step(
      "aliases: mailbox, file, command, forward, :include: list, unknown user",
      async () => {
        const r = await verify("", ["alias1", "cmd", "fwd", "list", "nosuch"]);
        assertEquals(r.lines, [
          `to=<joe@${H}>, orig_to=<alias1>, relay=local, dsn=2.0.0, status=deliverable (delivers to mailbox)`,
          `to=<alias1@${H}>, orig_to=<alias1>, relay=local, dsn=2.0.0, status=deliverable (delivers to file: ${root}/file)`,
          `to=<cmd@${H}>, orig_to=<cmd>, relay=local, dsn=2.0.0, status=deliverable (delivers to command: touch ${root}/cmd.ran)`,
          "to=<someone@remote.example>, orig_to=<fwd>, relay=local, dsn=2.0.0, status=deliverable (forwards to someone@remote.example)",
          `to=<joe@${H}>, orig_to=<list>, relay=local, dsn=2.0.0, status=deliverable (forwards to joe@${H})`,
          `to=<nosuch@${H}>, orig_to=<list>, relay=local, dsn=2.0.0, status=deliverable (forwards to nosuch@${H})`,
          `to=<nosuch@${H}>, orig_to=<nosuch>, relay=local, dsn=5.1.1, status=undeliverable (unknown user: "nosuch")`,
        ]);
        assertEquals(r.st, [
          {
            index: 0,
            relay: "local",
            status: "sent",
            dsn: "2.0.0",
            reason: "delivers to mailbox",
            trace: [
              ok(`joe@${H}`, "alias1", "delivers to mailbox"),
              ok(`alias1@${H}`, "alias1", `delivers to file: ${root}/file`),
            ],
          },
          {
            index: 1,
            relay: "local",
            status: "sent",
            dsn: "2.0.0",
            reason: `delivers to command: touch ${root}/cmd.ran`,
            trace: [ok(`cmd@${H}`, "cmd", `delivers to command: touch ${root}/cmd.ran`)],
          },
          {
            index: 2,
            relay: "local",
            status: "sent",
            dsn: "2.0.0",
            reason: "forwards to someone@remote.example",
            trace: [ok("someone@remote.example", "fwd", "forwards to someone@remote.example")],
          },
          {
            index: 3,
            relay: "local",
            status: "sent",
            dsn: "2.0.0",
            reason: `forwards to joe@${H}`,
            trace: [
              ok(`joe@${H}`, "list", `forwards to joe@${H}`),
              ok(`nosuch@${H}`, "list", `forwards to nosuch@${H}`),
            ],
          },
          {
            index: 4,
            relay: "local",
            status: "bounced",
            dsn: "5.1.1",
            reason: 'unknown user: "nosuch"',
            trace: [{
              address: `nosuch@${H}`,
              orcpt: "nosuch",
              status: "bounced",
              dsn: "5.1.1",
              reason: 'unknown user: "nosuch"',
              relay: "local",
            }],
          },
        ]);
        assertEquals(r.got, [], "nothing submitted to cleanup");
        for (const p of [spool, `${root}/file`, `${root}/cmd.ran`]) {
          assert(!(await exists(p)), `${p} not created`);
        }
      },
    );

    await t.step(".forward: command, the user's Maildir, a file, a remote address", async () => {
      await Deno.writeTextFile(
        `${home}/.forward`,
        `"|touch ${root}/fwd.ran", \\joe, bob@remote.example, ${root}/fwdfile\n`,
      );
      try {
        const r = await verify("home_mailbox = Maildir/\n", ["joe"]);
        assertEquals(r.st[0].trace, [
          ok(`joe@${H}`, "joe", `delivers to command: touch ${root}/fwd.ran`),
          ok(`joe@${H}`, "joe", "delivers to maildir"),
          ok("bob@remote.example", "joe", "forwards to bob@remote.example"),
          ok(`joe@${H}`, "joe", `delivers to file: ${root}/fwdfile`),
        ]);
        assertEquals(r.lines.length, 4, r.lines.join("\n"));
        assert(r.lines.every((l) => l.includes("status=deliverable")), r.lines.join("\n"));
        assertEquals(r.got, []);
        for (const p of [`${home}/Maildir`, `${root}/fwd.ran`, `${root}/fwdfile`]) {
          assert(!(await exists(p)), `${p} not created`);
        }
      } finally {
        await Deno.remove(`${home}/.forward`);
      }
    });

    await t.step("mailbox_command: delivers to command, not run", async () => {
      const r = await verify(`mailbox_command = touch ${root}/mbcmd.ran\n`, ["joe"]);
      assertEquals(r.st[0].trace, [
        ok(`joe@${H}`, "joe", `delivers to command: touch ${root}/mbcmd.ran`),
      ]);
      assert(!(await exists(`${root}/mbcmd.ran`)));
    });

    await t.step("restrictions and loops fail as a delivery fails", async () => {
      const r = await verify(
        "allow_mail_to_commands = forward\nallow_mail_to_files = forward\n",
        ["alias1", "cmd", "fwd"],
        { content: `Delivered-To: fwd@${H}\r\n${MESSAGE}` },
      );
      assertEquals(r.st.map((s) => [s.status, s.dsn, s.reason, s.trace]), [
        ["bounced", "5.7.1", "mail to file is restricted", [
          ok(`joe@${H}`, "alias1", "delivers to mailbox"),
          entry(`alias1@${H}`, "alias1", "bounced", "5.7.1", "mail to file is restricted"),
        ]],
        ["bounced", "5.7.1", "mail to command is restricted", [
          entry(`cmd@${H}`, "cmd", "bounced", "5.7.1", "mail to command is restricted"),
        ]],
        ["bounced", "5.4.6", `mail forwarding loop for fwd@${H}`, [
          entry(`fwd@${H}`, "fwd", "bounced", "5.4.6", `mail forwarding loop for fwd@${H}`),
        ]],
      ]);
      assert(
        r.lines.includes(
          `to=<cmd@${H}>, orig_to=<cmd>, relay=local, dsn=5.7.1, status=undeliverable (mail to command is restricted)`,
        ),
        r.lines.join("\n"),
      );
      assertEquals(r.got, []);
    });

    await t.step(
      "mailbox_transport: the agent verifies the mailbox and answers for it",
      async () => {
        const r = await verify("mailbox_transport = lmtp:unix:private/dovecot-lmtp\n", ["alias1"], {
          agent: (p) => ({
            index: p.recipients[0].index,
            status: "sent",
            dsn: "2.1.5",
            reason: "250 2.1.5 Ok",
            relay: "mail.example[private/dovecot-lmtp]",
            diagnostic: "lmtp; 250 2.1.5 Ok",
            remoteMta: "mail.example",
          }),
        });
        assertEquals(r.passed.length, 1);
        assertEquals(r.passed[0].verify, true, "the agent is asked to verify, not to deliver");
        assertEquals(r.passed[0].recipients, [{ index: 0, address: `joe@${H}`, orcpt: "alias1" }]);
        assertEquals(r.st[0].trace, [
          {
            address: `joe@${H}`,
            orcpt: "alias1",
            status: "sent",
            dsn: "2.1.5",
            reason: "250 2.1.5 Ok",
            relay: "mail.example[private/dovecot-lmtp]",
            diagnostic: "lmtp; 250 2.1.5 Ok",
            remoteMta: "mail.example",
          },
          ok(`alias1@${H}`, "alias1", `delivers to file: ${root}/file`),
        ]);
        // The agent logged the mailbox's line; local logs only its own.
        assertEquals(r.lines, [
          `to=<alias1@${H}>, orig_to=<alias1>, relay=local, dsn=2.0.0, status=deliverable (delivers to file: ${root}/file)`,
        ]);
        assert(!(await exists(`${root}/file`)));
      },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
