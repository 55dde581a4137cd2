/**
 * `postwarden audit`: for each master.cf service, start the daemon's exact
 * permission set (from lib/permissions) with a probe and print what it can
 * and cannot do, measured live: read and write each queue folder, read
 * /etc/shadow, write a mailbox, connect to 127.0.0.1:25, bind its own
 * endpoint, run /bin/sh.
 */
import { type Config, parseMasterCf } from "../lib/config/mod.ts";
import {
  daemonGrants,
  grantFlags,
  parseResolvConf,
  serviceSocket,
} from "../lib/permissions/mod.ts";
import { inetEndpoints } from "../lib/service/endpoints.ts";
import type { Probe } from "./audit_probe.ts";

/** Inputs from the postwarden command. */
export interface AuditOptions {
  configDir: string;
  config: Config;
  overrides: Record<string, string>;
  root: string;
}

/** Runs the audit; returns the exit status. */
export async function runAudit(o: AuditOptions): Promise<number> {
  const q = o.overrides.queue_directory;
  const spool = (o.overrides.mail_spool_directory ?? "").replace(/\/+$/, "");
  const mcf = parseMasterCf(await Deno.readTextFile(`${o.configDir}/master.cf`));
  const ns = parseResolvConf(await Deno.readTextFile("/etc/resolv.conf").catch(() => ""));
  if (spool) await Deno.mkdir(spool, { recursive: true });
  const folders = ["maildrop", "incoming", "active", "deferred", "hold", "corrupt"];
  let failed = false;
  for (const svc of mcf.services) {
    const param = (n: string) =>
      Object.hasOwn(svc.overrides, n) ? svc.overrides[n] : (o.overrides[n] ?? o.config.str(n));
    const grants = daemonGrants(svc, {
      configDir: o.configDir,
      queueDir: q,
      maillogFile: o.overrides.maillog_file ?? "",
      nameservers: ns,
      services: mcf.services,
      param,
    });
    const probes: [string, Probe][] = [];
    for (const f of folders) {
      probes.push([`read ${f}/`, { kind: "read-dir", path: `${q}/${f}` }]);
      probes.push([`write ${f}/`, { kind: "write-dir", path: `${q}/${f}` }]);
    }
    probes.push(["read /etc/shadow", { kind: "read-file", path: "/etc/shadow" }]);
    if (spool) probes.push(["write a mailbox", { kind: "write-dir", path: spool }]);
    probes.push(["connect 127.0.0.1:25", { kind: "connect", host: "127.0.0.1", port: 25 }]);
    if (svc.type === "inet") {
      for (
        const ep of inetEndpoints(
          svc.name,
          param("inet_interfaces").split(/[\s,]+/).filter(Boolean),
        )
      ) {
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
    const flags = grantFlags(grants);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        `--config=${o.root}/deno.json`,
        "--no-lock",
        ...flags,
        `${o.root}/commands/audit_probe.ts`,
        JSON.stringify(probes.map((p) => p[1])),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    console.log(`${svc.name}/${svc.type} (${svc.command})`);
    console.log(`  flags: ${flags.join(" ")}`);
    if (!out.success) {
      console.log(`  probe failed: ${new TextDecoder().decode(out.stderr).trim()}`);
      failed = true;
      continue;
    }
    const results = JSON.parse(new TextDecoder().decode(out.stdout)) as string[];
    probes.forEach(([label], i) => {
      const r = results[i];
      const mark = r === "denied" ? "cannot" : "can   ";
      console.log(`  ${mark} ${label}${r !== "allowed" && r !== "denied" ? `  [${r}]` : ""}`);
    });
  }
  return failed ? 1 : 0;
}
