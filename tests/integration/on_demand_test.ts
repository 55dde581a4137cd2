/**
 * Daemons started on demand (lib/service/wake.ts), as Postfix's master
 * starts its services: an idle instance runs master, qmgr, pickup and
 * smtpd only; a message for a local user makes smtpd wake cleanup and qmgr
 * wake local, which deliver it and exit after max_idle seconds without a
 * connection; the next message wakes new ones. Nothing is lost on the
 * way, and the control socket that wakes daemons is closed to other users.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import {
  daemonId,
  daemonPid,
  type Instance,
  maildirFiles,
  processesOf,
  smtpSend,
  startInstance,
  testHosting,
  waitUntil,
} from "../helpers/instance.ts";
import { haveRoot, run } from "../helpers/peers.ts";

/**
 * The daemons (program names) of an instance that are running: as
 * processes, or, hosted as Workers, serving their sockets.
 */
async function running(inst: Instance, programs: string[]): Promise<string[]> {
  const out = new Set<string>();
  for (const pid of await processesOf(inst.conf)) {
    const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    for (const p of programs) if (cmd.includes(`/daemons/${p}/main.ts`)) out.add(p);
  }
  if (testHosting() === "worker") {
    for (const p of programs) {
      if (await Deno.lstat(`${inst.queue}/private/${p}`).then(() => true, () => false)) out.add(p);
    }
  }
  return [...out].sort();
}

/** Sends bob one more message over SMTP and waits until his Maildir holds `count`. */
async function deliverToBob(inst: Instance, subject: string, count: number): Promise<void> {
  const r = await smtpSend(inst.port, {
    from: "a@example.org",
    to: ["bob@mx.test.example"],
    body: `Subject: ${subject}\n\n${subject}\n`,
  });
  assertEquals(r.code, 250, r.replies.join("\n"));
  await waitUntil(
    async () => (await maildirFiles(inst.spool, "bob")).length === count,
    30_000,
    `delivery of "${subject}"`,
  );
}

const ON_DEMAND = [
  "anvil",
  "bounce",
  "cleanup",
  "discard",
  "error",
  "lmtp",
  "local",
  "smtp",
  "virtual",
];

Deno.test({
  name: "daemons started on demand: none at idle, woken by mail, gone after max_idle",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const inst = await startInstance({ mainCf: "max_idle = 3s" });
    try {
      await t.step("at idle only the daemons with work of their own run", async () => {
        assertEquals(await running(inst, ON_DEMAND), []);
        for (const p of ["master", "qmgr", "pickup", "smtpd"]) {
          assert(await daemonPid(inst, p) !== null, `${p} runs`);
        }
        const st = await Deno.stat(`${inst.queue}/pid/master.sock`);
        if (Deno.uid() === 0) {
          // root's, the daemons' group: they connect, none can remove or chmod it.
          assertEquals([st.uid, st.mode! & 0o777], [0, 0o660]);
          assert(st.gid !== 0, "the mail owner's group");
        } else assertEquals(st.mode! & 0o777, 0o600);
      });

      await t.step(
        "the control socket: daemons cannot remove or chmod it, users cannot connect",
        async () => {
          if (!haveRoot("the control socket's owners")) return;
          const path = `${inst.queue}/pid/master.sock`;
          const as = (user: string, script: string) =>
            run("runuser", ["-u", user, "--", "sh", "-c", script]);
          // The mail owner (every daemon's uid) with a sandbox that let it try.
          const rm = await as("postfix", `rm -f '${path}' || exit 1; chmod 666 '${path}'`);
          assert(rm.code !== 0, "the mail owner could not remove it");
          const ch = await as("postfix", `chmod 666 '${path}'`);
          assert(ch.code !== 0, "the mail owner could not chmod it");
          assertEquals((await Deno.stat(path)).mode! & 0o777, 0o660);
          const py = "import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])";
          const nobody = await as("nobody", `python3 -c '${py}' '${path}'`);
          assert(/PermissionError/.test(nobody.stderr), nobody.stderr);
        },
      );

      let first: string | null = null;
      await t.step("a message for a local user wakes local, which delivers it", async () => {
        await deliverToBob(inst, "one", 1);
        first = await daemonId(inst, "local");
        assert(first !== null, "local runs");
      });

      await t.step(
        "idle for max_idle, local and cleanup exit; master does not restart them",
        async () => {
          for (const p of ["local", "cleanup"]) {
            // cleanup after smtpd drops its idle connection to it (ipc_idle, 5 s).
            await waitUntil(async () => await daemonPid(inst, p) === null, 20_000, `${p} to exit`);
          }
          await new Promise((r) => setTimeout(r, 1500));
          assertEquals(await daemonPid(inst, "local"), null, "still down");
          assertEquals(await daemonPid(inst, "cleanup"), null, "still down");
          const log = await inst.log();
          assert(!/local.*(exit status|killed by signal)/.test(log), log);
        },
      );

      await t.step("the next message wakes a new local", async () => {
        await deliverToBob(inst, "two", 2);
        const again = await daemonId(inst, "local");
        assert(again !== null && again !== first, `a new local (${first} -> ${again})`);
      });

      await t.step("reload replaces a running local and leaves stopped ones down", async () => {
        const before = await daemonId(inst, "local");
        assert(before !== null, "local still runs from the last message");
        assertEquals(await daemonPid(inst, "smtp"), null);
        const st = await inst.command("postwarden.ts", ["reload"]);
        assertEquals(st.code, 0, st.stderr);
        await waitUntil(
          async () => {
            const p = await daemonId(inst, "local");
            return p !== null && p !== before;
          },
          20_000,
          "a new local",
        );
        assertEquals(await daemonPid(inst, "smtp"), null, "smtp was not running: not started");
        // The old smtpd stops accepting 2 s after the reload (pipeline_test waits too).
        await new Promise((r) => setTimeout(r, 2500));
        await deliverToBob(inst, "three", 3);
      });
    } finally {
      await inst.stop();
    }
  },
});

Deno.test({
  name: "master.cf wakeup: master wakes a service every N seconds; N? not before it ran",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const master = await Deno.readTextFile(new URL("../../conf/master.cf", import.meta.url));
    const withMtasts = (wakeup: string) =>
      startInstance({
        masterCf: master.replace(/^#(mtasts\s+unix\s+-\s+-\s+n\s+)3600/m, `$1${wakeup}`),
        // mtasts is started on demand: only the wake-ups can start it here.
        mainCf: "postwarden_mta_sts = yes\ndata_directory = $queue_directory/data",
      });
    await t.step("wakeup 1: mtasts is started without a client", async () => {
      const inst = await withMtasts("1");
      try {
        await waitUntil(
          async () => (await running(inst, ["mtasts"])).length === 1,
          20_000,
          "mtasts started by a wake-up",
        );
        assert(!/mtasts: wakeup:/.test(await inst.log()), await inst.log());
      } finally {
        await inst.stop();
      }
    });
    await t.step('wakeup "1?": not before mtasts has run once', async () => {
      const inst = await withMtasts("1?");
      try {
        await waitUntil(async () => await daemonPid(inst, "qmgr") !== null, 20_000, "qmgr");
        await new Promise((r) => setTimeout(r, 3000));
        assertEquals(await running(inst, ["mtasts"]), []);
      } finally {
        await inst.stop();
      }
    });
  },
});
