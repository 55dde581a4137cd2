/**
 * Fault test: the disk under `incoming/` is full. An LD_PRELOAD shim
 * (enospc_shim.c, compiled here with gcc) makes open(O_CREAT), write,
 * fdatasync and fsync fail with ENOSPC for files in the instance's
 * incoming/ while a flag file exists; the flag's content picks which calls
 * fail, so each step of QueueWriter (create, write, data sync, directory
 * sync after the rename) is hit in turn.
 *
 * While the disk is full every client must get a 4xx (cleanup says 452
 * 4.3.1 "Insufficient system storage"), no daemon may die, nothing may be
 * left in incoming/ (no `.ID.tmp`, no queue file of a refused message) and
 * no refused message may be delivered. Once the flag is gone, new mail gets
 * 250 and every acknowledged message reaches the sink (DESIGN.md, "Queue
 * and durability", invariant 1).
 *
 * Without gcc the test skips loudly, and fails under CI=true.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { daemonPid, freePort, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { missingPeer } from "../helpers/peers.ts";
import { TestSink } from "../../lib/testrun/sink.ts";

const SHIM_SRC = new URL("./enospc_shim.c", import.meta.url).pathname;

/** Compiles the shim into `dir`; null (with a warning) if gcc is missing, throws under CI. */
async function buildShim(dir: string): Promise<string | null> {
  const out = `${dir}/shim.so`;
  let res: Deno.CommandOutput;
  try {
    res = await new Deno.Command("gcc", {
      args: ["-shared", "-fPIC", "-O2", "-o", out, SHIM_SRC, "-ldl"],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    missingPeer("enospc fault test: gcc not found (needed to build the LD_PRELOAD shim)");
    return null;
  }
  if (!res.success) {
    throw new Error(`gcc failed to build the shim:\n${new TextDecoder().decode(res.stderr)}`);
  }
  return out;
}

/** Injected failures recorded by the shim: lines "pid op path". */
async function shimLog(path: string): Promise<{ pid: number; op: string; path: string }[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter(Boolean).map((l) => {
    const [pid, op, ...rest] = l.split(" ");
    return { pid: Number(pid), op, path: rest.join(" ") };
  });
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test({
  name: "fault: full disk under incoming/ gives 4xx, leaves nothing behind, recovers",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "postwarden-enospc-" });
    // Started as root, the daemons run as mail_owner: they load the shim,
    // read the flag and append to the log from here.
    await Deno.chmod(tmp, 0o755);
    const shim = await buildShim(tmp);
    if (!shim) {
      await Deno.remove(tmp, { recursive: true });
      return;
    }
    const flag = `${tmp}/flag`;
    const log = `${tmp}/injected.log`;
    // The instance's folder is only known once it runs: ENOSPC_DIR is a
    // symlink made then (the shim resolves it on every call).
    const fullDir = `${tmp}/full`;
    const sinkPort = freePort();
    const sink = new TestSink(sinkPort);
    sink.start();
    await Deno.writeTextFile(log, "", { mode: 0o666 });
    await Deno.chmod(log, 0o666);
    const inst = await startInstance({
      // master passes the daemons only the variables import_environment names.
      mainCf: `relayhost = [127.0.0.1]:${sinkPort}\n` +
        "import_environment = TZ LANG=C ENOSPC_DIR ENOSPC_FLAG ENOSPC_LOG",
      env: {
        LD_PRELOAD: shim,
        ENOSPC_DIR: fullDir,
        ENOSPC_FLAG: flag,
        ENOSPC_LOG: log,
      },
    });
    const incoming = `${inst.queue}/incoming`;
    await Deno.symlink(incoming, fullDir);
    const refused = new Set<string>();
    const acked = new Set<string>();
    let seq = 0;
    const send = async (n: number) => {
      const results = await Promise.all(Array.from({ length: n }, async () => {
        const id = `m${++seq}`;
        const r = await smtpSend(inst.port, {
          from: "sender@example.com",
          to: ["rcpt@example.net"],
          body: `Subject: ${id}\r\n\r\nbody of ${id}\r\n${"x".repeat(200)}\r\n`,
        });
        return { id, ...r };
      }));
      for (const r of results) (r.code === 250 ? acked : refused).add(r.id);
      return results;
    };
    try {
      // cleanup starts on demand (lib/service/wake.ts): a first message wakes it.
      const [first] = await send(1);
      assertEquals(first.code, 250, first.text);
      const cleanupPid = await daemonPid(inst, "cleanup");
      assert(cleanupPid, "cleanup is running");

      // Each mode fails a later step of writing the queue file.
      const modes = [
        { flag: "", op: "open" }, // everything: the temp file cannot be created
        { flag: "write,writev,pwrite", op: "write" }, // created, content write fails
        // Renamed into place, then the data and directory syncs run together
        // (lib/queue QueueWriter.commit): either one failing.
        { flag: "fdatasync", op: "fdatasync" }, // the data sync fails
        { flag: "fsync", op: "fsync" }, // the directory sync fails
      ];
      for (const mode of modes) {
        await Deno.writeTextFile(flag, mode.flag);
        const before = (await shimLog(log)).length;
        const results = await send(4);
        for (const r of results) {
          assert(
            r.code >= 400 && r.code < 500,
            `disk full (${mode.op}): expected 4xx, got ${r.code} ${r.text}`,
          );
          // (smtpSend's reply text leaves out the enhanced code.)
          assert(
            r.code === 452 && r.text === "Insufficient system storage" ||
              r.code === 451 && r.text === "Error: queue file write error",
            `disk full (${mode.op}): unexpected reply ${r.code} ${r.text}`,
          );
        }
        const injected = (await shimLog(log)).slice(before);
        assert(
          injected.some((e) => e.op === mode.op && e.path.startsWith(incoming)),
          `the shim injected no ${mode.op} failure under ${incoming}: ${JSON.stringify(injected)}`,
        );
        assert(
          injected.every((e) => e.path === incoming || e.path.startsWith(`${incoming}/`)),
          `failures outside incoming/: ${JSON.stringify(injected)}`,
        );
        if (mode.op === "write") {
          // The temporary file existed when the call failed...
          assert(
            injected.some((e) => e.op === mode.op && /\/\.[^/]+\.tmp$/.test(e.path)),
            `${mode.op} failures were not on .ID.tmp files: ${JSON.stringify(injected)}`,
          );
        }
        if (mode.op === "fdatasync") {
          // ...the file was under its queue id, taken out again when its sync failed...
          assert(
            injected.some((e) => e.op === mode.op && /\/[0-9A-F]+$/.test(e.path)),
            `${mode.op} failures were not on queue files: ${JSON.stringify(injected)}`,
          );
        }
        // ...and nothing half-written (or refused) is left visible.
        assertEquals(await listDir(incoming), [], `incoming/ after ${mode.op} failures`);
        console.log(
          `  disk full at ${mode.op}: ${results.map((r) => r.code).join(",")} "${
            results[0].text
          }" (${injected.length} failures injected)`,
        );
      }
      // The failures were injected into the cleanup daemon itself.
      const pids = new Set((await shimLog(log)).map((e) => e.pid));
      assert(pids.has(cleanupPid), `no failure injected in cleanup (pid ${cleanupPid})`);
      assertEquals(await daemonPid(inst, "cleanup"), cleanupPid, "cleanup was not restarted");

      // Disk space is back.
      await Deno.remove(flag);
      const after = (await shimLog(log)).length;
      const ok = await send(6);
      for (const r of ok) assertEquals(`${r.code}`, "250", `after recovery: ${r.code} ${r.text}`);
      await waitUntil(
        () =>
          [...acked].every((id) =>
            sink.messages.some((m) => m.data.includes(`Subject: ${id}\r\n`))
          ),
        30_000,
        "acknowledged mail at the sink",
      );
      assertEquals((await shimLog(log)).length, after, "the shim stays quiet without the flag");

      // Nothing refused was delivered; nothing acknowledged was lost.
      const delivered = new Set(
        sink.messages.map((m) => /^Subject: (\S+)\r$/m.exec(m.data)?.[1]).filter(Boolean),
      );
      for (const id of refused) assert(!delivered.has(id), `refused message ${id} was delivered`);
      for (const id of acked) assert(delivered.has(id), `acknowledged message ${id} was lost`);
      assertEquals(refused.size, 16);
      assertEquals(acked.size, 7, "the first message and 6 after recovery");

      // No daemon died along the way.
      const maillog = await inst.log();
      const deaths = maillog.split("\n").filter((l) => /exit status|killed by signal/.test(l));
      assertEquals(deaths, [], "daemon exits in the master log");
      await waitUntil(
        async () => (await listDir(incoming)).length === 0,
        10_000,
        "incoming/ empty",
      );
    } finally {
      await inst.stop().catch((e) => console.error(e));
      sink.stop();
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
