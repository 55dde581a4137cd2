/**
 * `postwarden audit`: for each service master runs, start the daemon's
 * exact command line (lib/permissions daemonCommand: same executable,
 * flags, environment, DENO_DIR and user) with the probe script in place
 * of the daemon, and print what it can and cannot do, measured live:
 * read and write each queue folder, read /etc/shadow and main.cf, write a
 * mailbox, write the log, remove or replace another daemon's socket,
 * connect to 127.0.0.1:25, connect to each server of proxymap's tables
 * (database, socketmap, tcp) and to each content filter's [host]:port, bind its own endpoint, run /bin/sh, import
 * code from npm (any package, the table drivers proxymap loads, and the
 * auth daemon's packages) or over HTTP (a local server counts the
 * attempts), read the auth daemon's password file, keep data in
 * localStorage, the Cache API or a path-less Deno KV, run each pipe
 * service's program (asked of the sandbox, not run), write
 * virtual_mailbox_base, and read smtpd's TLS
 * certificate and private key files (master reads them and hands them to
 * smtpd; no daemon should be able to read the key file).
 */
import { type Config, loadConfig, parseMasterCf, saslEndpoint } from "../lib/config/mod.ts";
import type { Prepared } from "../lib/instance/mod.ts";
import {
  AUTH_NPM,
  clientsOf,
  daemonCommand,
  daemonEnv,
  daemonGrants,
  daemonNameservers,
  hostCommand,
  peerSocket,
  peersOf,
  type PermissionContext,
  serviceContext,
  serviceSocket,
  servicesTableGrants,
} from "../lib/permissions/mod.ts";
import { contentFilterNexthops } from "../lib/permissions/filter.ts";
import { lmtpGrants } from "../lib/permissions/lmtp.ts";
import { paramLookup, planServices } from "../lib/service/catalog.ts";
import { pipePrograms } from "../lib/pipe/mod.ts";
import { rootDenoDir } from "../lib/runtime/mod.ts";
import { inetEndpoints } from "../lib/service/endpoints.ts";
import type { Probe } from "./audit_probe.ts";
import { smtpdTlsPolicy, tlsWanted } from "../lib/tls/policy.ts";
import { hostingOf, WorkerHost, workerPermissions } from "../lib/service/hosting.ts";

/** Inputs from the postwarden command. */
export interface AuditOptions {
  configDir: string;
  config: Config;
  prepared: Prepared;
}

/** Runs the audit; returns the exit status. */
export async function runAudit(o: AuditOptions): Promise<number> {
  const ov = o.prepared.overrides;
  const q = ov.queue_directory;
  const spool = (ov.mail_spool_directory ?? "").replace(/\/+$/, "");
  const mcf = parseMasterCf(await Deno.readTextFile(`${o.configDir}/master.cf`));
  const plan = planServices(mcf.services, paramLookup(o.config));
  const ns = await daemonNameservers(o.config.str("postwarden_dns_servers"));
  const folders = ["maildrop", "incoming", "active", "deferred", "hold", "corrupt"];
  const tables = await servicesTableGrants(
    plan.run,
    (svc) => loadConfig(o.configDir, { overrides: { ...ov, ...svc.overrides } }),
  );
  for (const p of tables.problems) console.log(`problem: ${p}`);
  // Every table file any daemon reads: each daemon shows which of them it can read.
  const tableFiles = [...new Set([...tables.grants.values()].flatMap((g) => g.read))];
  // The servers and npm drivers of proxymap's tables: each daemon shows whether it reaches them.
  const proxied = [...tables.grants.entries()]
    .filter(([name]) => plan.run.some((s) => s.name === name && s.command === "proxymap"))
    .map(([, g]) => g);
  const tableServers = [...new Set(proxied.flatMap((g) => g.net))].map(serverProbe);
  // Content filters' next hops ([host]:port): only the transport each names should reach it.
  const filterHops = [
    ...new Set(
      plan.run.filter((s) => s.command === "smtp").flatMap((s) =>
        contentFilterNexthops(s, plan.run, (n) => ov[n] ?? o.config.str(n))
      ),
    ),
  ].flatMap((hop): [string, Probe][] => {
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(hop);
    return m
      ? [[`connect to content filter ${hop}`, { kind: "connect", host: m[1], port: Number(m[2]) }]]
      : [];
  });
  // The LMTP servers the lmtp services are granted (Dovecot's socket): only they should reach them.
  const lmtpServers = [
    ...new Set(
      plan.run.filter((s) => s.command === "lmtp").flatMap((s) => {
        const g = lmtpGrants(s, {
          queueDir: q,
          nameservers: ns,
          services: plan.run,
          param: (n) => Object.hasOwn(s.overrides, n) ? s.overrides[n] : (ov[n] ?? o.config.str(n)),
        });
        return [
          ...g.sockets.map((p) => `unix:${p}`),
          ...g.net.filter((n) => !/^0\.0\.0\.0\/0:|:53$/.test(n)),
        ];
      }),
    ),
  ].map((item): [string, Probe] => {
    const [label, probe] = serverProbe(item);
    return [label.replace("table server", "LMTP server"), probe];
  });
  const drivers = [...new Set(proxied.flatMap((g) => g.npm))];
  // smtpd's certificate and key files: master reads them; each daemon shows whether it can.
  const tlsFiles = new Map<string, string>();
  for (const svc of plan.run.filter((s) => s.command === "smtpd")) {
    const c = await loadConfig(o.configDir, { overrides: { ...ov, ...svc.overrides } });
    const { policy } = smtpdTlsPolicy(c);
    if (!tlsWanted(policy)) continue;
    if (policy.chainFiles.length) {
      for (const f of policy.chainFiles) tlsFiles.set(f, "TLS key and chain file");
    } else {
      if (policy.certFile) tlsFiles.set(policy.certFile, "TLS certificate file");
      if (policy.keyFile) tlsFiles.set(policy.keyFile, "TLS private key file");
    }
  }
  // The auth daemon's password file: each daemon shows whether it can read it (auth alone may).
  const passwdFiles = plan.run.filter((s) => s.command === "auth").flatMap((s) => {
    const ep = saslEndpoint((n) =>
      Object.hasOwn(s.overrides, n) ? s.overrides[n] : (ov[n] ?? o.config.str(n))
    );
    return ep.type === "passwd-file" ? [ep.file] : [];
  });
  // Each pipe service's program and the virtual mailboxes: who may run, who may write.
  const pipeServicePrograms = [
    ...new Set(plan.run.filter((s) => s.command === "pipe").flatMap((s) => pipePrograms(s.args))),
  ];
  const virtualBase = plan.run.some((s) => s.command === "virtual")
    ? (ov.virtual_mailbox_base ?? o.config.str("virtual_mailbox_base")).replace(/\/+$/, "")
    : "";
  // ... and the npm packages it verifies hashes with: each daemon shows whether it can load them.
  const authModules = passwdFiles.length ? AUTH_NPM : [];

  // Imports over HTTP must never get this far; count the attempts that do.
  let importHits = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    importHits++;
    return new Response("export default 1;", {
      headers: { "content-type": "application/javascript" },
    });
  });
  const importUrl = `http://127.0.0.1:${server.addr.port}/probe.js`;

  // As master computes them: each service's sandbox, and how it is hosted.
  const owner = o.prepared.owner;
  const permCtx = (svc: (typeof plan.run)[number]): PermissionContext =>
    serviceContext(svc, {
      queueDir: q,
      nameservers: ns,
      services: plan.run,
      mainCf: (n) => ov[n] ?? o.config.str(n),
      tables: tables.grants,
      rootMaster: owner !== null,
      deno: o.prepared.runtime.deno,
    });
  const hosting = new Map(plan.run.map((svc) => {
    const ctx = permCtx(svc);
    const h = hostingOf({
      param: ctx.param,
      grants: daemonGrants(svc, ctx),
      asRoot: ctx.root !== undefined,
    });
    return [svc.name, h.hosting];
  }));
  const host = hostCommand(
    plan.run.filter((s) => hosting.get(s.name) === "worker")
      .map((s) => ({ command: s.command, grants: daemonGrants(s, permCtx(s)) })),
    { runtime: o.prepared.runtime, hostArgs: ["-c", o.configDir] },
  );

  let failed = false;
  try {
    for (const svc of plan.run) {
      const { param } = permCtx(svc);
      const probes: [string, Probe][] = [];
      for (const f of folders) {
        probes.push([`read ${f}/`, { kind: "read-dir", path: `${q}/${f}` }]);
        probes.push([`write ${f}/`, { kind: "write-dir", path: `${q}/${f}` }]);
      }
      probes.push(["read /etc/shadow", { kind: "read-file", path: "/etc/shadow" }]);
      for (const f of tableFiles) {
        probes.push([`read table file ${f}`, { kind: "read-file", path: f }]);
      }
      for (const f of passwdFiles) {
        probes.push([`read password file ${f}`, { kind: "read-file", path: f }]);
      }
      probes.push(["read main.cf", { kind: "read-file", path: `${o.configDir}/main.cf` }]);
      for (const [f, what] of tlsFiles) {
        probes.push([`read ${what} ${f}`, { kind: "read-file", path: f }]);
      }
      if (spool) probes.push(["write a mailbox", { kind: "write-dir", path: spool }]);
      if (ov.maillog_file) {
        probes.push(["write the maillog", { kind: "append-file", path: ov.maillog_file }]);
      }
      // A peer's socket, and the one another client of that peer uses:
      // where a hijacker would listen.
      const targetName = peersOf(svc, plan.run)[0];
      const target = plan.run.find((s) =>
        s.type === "unix" && (targetName ? s.name === targetName : s !== svc)
      );
      if (target) {
        const socks = [serviceSocket(q, target)];
        const rival = clientsOf(target, plan.run).find((c) => c !== svc);
        if (rival) socks.push(peerSocket(q, rival, target.name));
        for (const sock of socks) {
          const rel = sock.slice(q.length + 1);
          probes.push([`remove or replace ${rel}`, { kind: "replace", path: sock }]);
          probes.push([`listen on ${rel}`, { kind: "listen-unix", path: sock }]);
        }
      }
      probes.push(["connect 127.0.0.1:25", { kind: "connect", host: "127.0.0.1", port: 25 }]);
      probes.push(...tableServers, ...filterHops, ...lmtpServers);
      if (svc.type === "inet") {
        const ifaces = param("inet_interfaces").split(/[\s,]+/).filter(Boolean);
        for (const ep of inetEndpoints(svc.name, ifaces)) {
          probes.push([`bind ${ep.hostname}:${ep.port}`, {
            kind: "listen-tcp",
            host: ep.hostname,
            port: ep.port,
          }]);
        }
      } else {
        const sock = serviceSocket(q, svc);
        probes.push([`bind ${sock.slice(q.length + 1)}`, { kind: "listen-unix", path: sock }]);
      }
      probes.push(["run /bin/sh", { kind: "run", program: "/bin/sh" }]);
      // pipe services' programs: asked of the sandbox, not run (they deliver mail).
      for (const prog of pipeServicePrograms) {
        probes.push([`run ${prog}`, { kind: "may-run", program: prog }]);
      }
      if (virtualBase) {
        probes.push(["write virtual_mailbox_base", { kind: "write-dir", path: virtualBase }]);
      }
      probes.push(["import code from npm", { kind: "import", specifier: "npm:is-number@7.0.0" }]);
      for (const d of drivers) {
        probes.push([`load the table driver ${d}`, { kind: "import", specifier: d }]);
      }
      for (const m of authModules) {
        probes.push([`load the auth daemon's package ${m}`, { kind: "import", specifier: m }]);
      }
      probes.push([`import code over HTTP`, { kind: "import", specifier: importUrl }]);
      probes.push(["keep data in localStorage", { kind: "local-storage" }]);
      probes.push(["keep data in the Cache API", { kind: "cache-api" }]);
      probes.push(["open Deno KV without a path", { kind: "kv-default" }]);

      // As master starts it: local, pipe and virtual with unprivileged = n stay root.
      const asRoot = permCtx(svc).root !== undefined;
      const probeArg = JSON.stringify(probes.map((p) => p[1]));
      const as = owner ? ` as ${asRoot ? "root" : owner.name}` : "";
      let out: { success: boolean; stdout: string; stderr: string };
      if (hosting.get(svc.name) === "worker") {
        const grants = daemonGrants(svc, permCtx(svc));
        console.log(`${svc.name}/${svc.type} (${svc.command})${as}, a Worker in the worker host`);
        console.log(`  permissions: ${JSON.stringify(workerPermissions(grants))}`);
        console.log(`  host flags: ${host.args.slice(1, -3).join(" ")}`);
        out = await probeInWorker(host, owner, o.prepared, q, {
          name: svc.name,
          permissions: workerPermissions(grants),
          args: [probeArg],
        });
      } else {
        const cmd = daemonCommand(svc, {
          ...permCtx(svc),
          runtime: o.prepared.runtime,
          script: "commands/audit_probe.ts",
          daemonArgs: [probeArg],
        });
        const res = await new Deno.Command(cmd.program, {
          args: cmd.args,
          cwd: q,
          clearEnv: true,
          env: daemonEnv(
            asRoot
              ? { ...o.prepared.runtime, denoDir: rootDenoDir(o.prepared.runtime) }
              : o.prepared.runtime,
          ),
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          ...(owner && !asRoot ? { uid: owner.uid, gid: owner.gid } : {}),
        }).output();
        out = {
          success: res.success,
          stdout: new TextDecoder().decode(res.stdout),
          stderr: new TextDecoder().decode(res.stderr),
        };
        console.log(`${svc.name}/${svc.type} (${svc.command})${as}`);
        console.log(
          `  flags: ${
            cmd.args.slice(
              1,
              cmd.args.indexOf(`${o.prepared.runtime.code}/commands/audit_probe.ts`),
            ).join(" ")
          }`,
        );
      }
      if (!out.success) {
        console.log(`  probe failed: ${out.stderr.trim()}`);
        failed = true;
        continue;
      }
      const results = JSON.parse(out.stdout) as string[];
      probes.forEach(([label], i) => {
        const r = results[i];
        const mark = r === "denied" || r.startsWith("denied ") ? "cannot" : "can   ";
        const detail = r !== "allowed" && r !== "denied" ? `  [${r}]` : "";
        console.log(`  ${mark} ${label}${detail}`);
      });
    }
  } finally {
    await server.shutdown();
  }
  console.log(`HTTP import attempts that reached the test server: ${importHits}`);
  if (importHits > 0) failed = true;
  return failed ? 1 : 0;
}

/**
 * Runs the probe as a Worker in a worker host started as master starts one
 * (same flags, user and environment), with the daemon's permissions.
 */
async function probeInWorker(
  host: { program: string; args: string[] },
  owner: Prepared["owner"],
  prepared: Prepared,
  cwd: string,
  w: { name: string; permissions: ReturnType<typeof workerPermissions>; args: string[] },
): Promise<{ success: boolean; stdout: string; stderr: string }> {
  const proc = new Deno.Command(host.program, {
    args: host.args,
    cwd,
    clearEnv: true,
    env: daemonEnv(prepared.runtime),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
  }).spawn();
  const stderr = new Response(proc.stderr).text();
  const wh = new WorkerHost(proc);
  let stdout = "";
  const st = await wh.start(
    { script: "commands/audit_probe.ts", handoff: null, ...w },
    (text) => stdout += text,
  ).status;
  wh.close();
  await wh.exited;
  return { success: st.success, stdout, stderr: await stderr };
}

/** The probe of one table server (a DictGrants net item: `host:port` or `unix:path`). */
function serverProbe(item: string): [string, Probe] {
  if (item.startsWith("unix:")) {
    const path = item.slice("unix:".length);
    return [`connect to table server ${path}`, { kind: "connect-unix", path }];
  }
  const i = item.lastIndexOf(":");
  const host = item.slice(0, i).replace(/^\[(.*)\]$/, "$1");
  return [`connect to table server ${item}`, {
    kind: "connect",
    host,
    port: Number(item.slice(i + 1)),
  }];
}
