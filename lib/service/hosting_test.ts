import { assert, assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { makeConfig, parseMasterCf, validateConfig } from "../config/mod.ts";
import { daemonGrants, type Grants, hostCommand } from "../permissions/mod.ts";
import { formatDaemonArgs } from "./args.ts";
import { hostGrants, hostingOf, WorkerHost, workerPermissions } from "./hosting.ts";

const CODE = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

function grants(g: Partial<Grants>): Grants {
  return { read: [], write: [], net: [], run: [], sys: [], env: [], npm: [], ...g };
}

const param = (v: string) => (n: string) => n === "postwarden_daemon_hosting" ? v : "";

Deno.test("hostingOf: process unless worker is asked for, and then unless the daemon cannot be one", () => {
  const plain = grants({ read: ["/q/active"], net: ["unix:/q/private/x"] });
  assertEquals(hostingOf({ param: param("process"), grants: plain, asRoot: false }), {
    hosting: "process",
  });
  assertEquals(hostingOf({ param: param("worker"), grants: plain, asRoot: false }), {
    hosting: "worker",
  });
  const root = hostingOf({ param: param("worker"), grants: plain, asRoot: true });
  assertEquals(root.hosting, "process");
  assertStringIncludes(root.reason!, "root");
  const npm = hostingOf({
    param: param("worker"),
    grants: grants({ npm: ["postgres"] }),
    asRoot: false,
  });
  assertEquals(npm.hosting, "process");
  assertStringIncludes(npm.reason!, "postgres");
  const range = hostingOf({
    param: param("worker"),
    grants: grants({ net: ["unix:/q/private/smtp", "0.0.0.0/0:25", "10.0.0.1:53"] }),
    asRoot: false,
  });
  assertEquals(range.hosting, "process");
  assertStringIncludes(range.reason!, "0.0.0.0/0:25");
});

Deno.test("workerPermissions: the same lists as the flags, false where the flag is absent, no ffi or imports", () => {
  const p = workerPermissions(grants({
    read: ["/a"],
    write: ["/b"],
    net: ["unix:/s", "127.0.0.1:25"],
    sys: ["hostname"],
  }));
  assertEquals(p, {
    read: ["/a"],
    write: ["/b"],
    net: ["unix:/s", "127.0.0.1:25"],
    run: false,
    sys: ["hostname"],
    env: false,
    ffi: false,
    import: false,
  });
  assertEquals(workerPermissions(grants({ env: ["*"] })).env, true);
  assertEquals(workerPermissions(grants({ env: ["TZ"] })).env, ["TZ"]);
});

Deno.test("hostGrants: the union of the Workers' grants plus the code tree, no npm", () => {
  const h = hostGrants([
    grants({ read: ["/a", "/b"], net: ["unix:/s"], env: ["TZ"] }),
    grants({ read: ["/b", "/c"], write: ["/c"], env: ["*"], npm: ["x"] }),
  ], "/code");
  assertEquals(h.read, ["/code", "/a", "/b", "/c"]);
  assertEquals(h.write, ["/c"]);
  assertEquals(h.net, ["unix:/s"]);
  assertEquals(h.env, ["*"]);
  assertEquals(h.npm, []);
});

/** Starts the worker host as master does, for Workers with `workers`' grants. */
function startHost(workers: Grants[]): WorkerHost {
  const cmd = hostCommand(workers.map((g) => ({ command: "pickup", grants: g })), {
    runtime: { deno: Deno.execPath(), code: CODE, denoDir: "" },
    hostArgs: ["-c", "/nonexistent"],
  });
  const proc = new Deno.Command(cmd.program, {
    args: cmd.args,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  return new WorkerHost(proc);
}

Deno.test({
  name:
    "worker host: a Worker gets exactly its own permissions, reports its exit, and the host exits when closed",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const mine = `${dir}/mine`;
    const theirs = `${dir}/theirs`;
    await Deno.writeTextFile(mine, "x");
    await Deno.writeTextFile(theirs, "y");
    const a = grants({ read: [mine] });
    const b = grants({ read: [theirs] });
    const host = startHost([a, b]);
    try {
      let out = "";
      const probes = [{ kind: "read-file", path: mine }, { kind: "read-file", path: theirs }, {
        kind: "read-file",
        path: `${CODE}/deno.json`,
      }];
      const w = host.start({
        script: "commands/audit_probe.ts",
        name: "a",
        permissions: workerPermissions(a),
        args: [JSON.stringify(probes)],
        handoff: null,
      }, (t) => out += t);
      const st = await w.status;
      assertEquals(st, { success: true, code: 0, signal: null });
      // Its own file only: not the other Worker's, not the code tree the host reads.
      assertEquals(JSON.parse(out), ["allowed", "denied", "denied"]);
      assertEquals(w.pid, host.pid);

      // An exit status other than 0 is passed on (the probe's usage error).
      const bad = host.start({
        script: "commands/audit_probe.ts",
        name: "bad",
        permissions: workerPermissions(a),
        args: ["not json"],
        handoff: null,
      });
      assertEquals((await bad.status).code, 64);

      // A script outside the daemons is refused.
      const evil = host.start({
        script: "../../etc/passwd",
        name: "evil",
        permissions: workerPermissions(a),
        args: [],
        handoff: null,
      });
      assertEquals((await evil.status).success, false);
      assertEquals(host.size, 0);
    } finally {
      host.close();
    }
    const st = await host.exited;
    assert(st.success, `host exit ${JSON.stringify(st)}`);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name:
    "worker host: a daemon runs as a Worker until master's SIGTERM; more than the host has is refused; SIGKILL and a dead host end Workers",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const q = await Deno.makeTempDir();
    for (const d of ["private", "peer", "pid"]) await Deno.mkdir(`${q}/${d}`);
    const { services } = parseMasterCf(
      "qmgr unix n - n 300 1 qmgr\ndiscard unix - - n - - discard\n",
    );
    const discard = services.find((s) => s.name === "discard")!;
    const g = daemonGrants(discard, {
      queueDir: q,
      nameservers: [],
      services,
      param: (n) => n === "queue_directory" ? q : "",
    });
    const host = startHost([g]);
    const daemon = (permissions = workerPermissions(g)) =>
      host.start({
        script: "daemons/discard/main.ts",
        name: "discard",
        permissions,
        args: formatDaemonArgs({
          configDir: q,
          service: "discard",
          type: "unix",
          overrides: {},
          publicService: false,
        }),
        handoff: {
          configDir: q,
          mainCf: `queue_directory = ${q}\nmaillog_file = ${q}/maillog\n`,
          overrides: {},
          hostname: "host.example",
          files: {},
          services,
        },
      });
    try {
      // More than the host was started with: the Worker cannot start.
      const greedy = daemon({ ...workerPermissions(g), read: [...g.read, "/etc"] });
      assertEquals((await greedy.status).success, false);

      const w = daemon();
      await waitFor(() => exists(`${q}/private/discard`));
      w.kill("SIGTERM");
      assertEquals(await w.status, { success: true, code: 0, signal: null });

      const killed = daemon();
      await waitFor(() => exists(`${q}/private/discard`));
      killed.kill("SIGKILL");
      assertEquals(await killed.status, { success: false, code: 137, signal: "SIGKILL" });

      const orphan = daemon();
      await waitFor(() => exists(`${q}/private/discard`));
      host.kill("SIGKILL");
      assertEquals((await orphan.status).success, false);
    } finally {
      host.close();
    }
    assertEquals((await host.exited).signal, "SIGKILL");
    await Deno.remove(q, { recursive: true });
  },
});

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

async function waitFor(pred: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("timed out");
}

Deno.test("postwarden_daemon_hosting: process or worker, anything else stops the start", () => {
  const problems = (value: string) =>
    validateConfig(makeConfig("/etc/postwarden", `postwarden_daemon_hosting = ${value}\n`, {
      hostname: "mx.example",
    })).filter((m) => m.includes("postwarden_daemon_hosting"));
  assertEquals(problems("process"), []);
  assertEquals(problems("worker"), []);
  assertEquals(problems("threads"), [
    "bad postwarden_daemon_hosting value: threads (specify process or worker)",
  ]);
});
