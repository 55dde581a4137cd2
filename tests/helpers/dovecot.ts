/**
 * Starts a real Dovecot (Debian's dovecot-core) for SASL interop tests:
 * no mail protocols (`protocols =`), only its auth service with a
 * passwd-file passdb, listening on a UNIX socket (mode 0666, so daemons
 * running as mail_owner reach it) and on a TCP port on 127.0.0.1, all in
 * a temporary folder. Needs root. Always `stop()` it in a finally.
 */
import { run } from "./peers.ts";
import { freePort } from "./instance.ts";

export const DOVECOT = "/usr/sbin/dovecot";
export const DOVEADM = "/usr/bin/doveadm";

/** A running Dovecot auth service. */
export interface DovecotInstance {
  dir: string;
  /** The auth-client UNIX socket. */
  socket: string;
  /** The auth-client TCP port on 127.0.0.1. */
  port: number;
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** Starts Dovecot with `users` (name -> password, hashed with SHA512-CRYPT by doveadm). */
export async function startDovecot(users: Record<string, string>): Promise<DovecotInstance> {
  const dir = await Deno.makeTempDir({ prefix: "dovecot-test-" });
  await Deno.chmod(dir, 0o755);
  const lines: string[] = [];
  for (const [user, password] of Object.entries(users)) {
    const h = await run(DOVEADM, ["pw", "-s", "SHA512-CRYPT", "-p", password]);
    if (h.code !== 0) throw new Error(`doveadm pw: ${h.stderr}`);
    lines.push(`${user}:${h.stdout.trim()}::::`);
  }
  await Deno.writeTextFile(`${dir}/passwd`, lines.join("\n") + "\n", { mode: 0o644 });
  const port = freePort();
  const socket = `${dir}/auth-client`;
  await Deno.writeTextFile(
    `${dir}/dovecot.conf`,
    `protocols =
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = ${dir}/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=${dir}/home
}
service auth {
  unix_listener ${socket} {
    mode = 0666
  }
  inet_listener {
    address = 127.0.0.1
    port = ${port}
  }
}
`,
  );
  await Deno.mkdir(`${dir}/state`);
  const log = () => Deno.readTextFile(`${dir}/dovecot.log`).catch(() => "");
  // Not run(): the daemon it forks keeps piped output open, so wait for the exit status only.
  const started = await new Deno.Command(DOVECOT, {
    args: ["-c", `${dir}/dovecot.conf`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  if (!started.success) {
    throw new Error(`dovecot did not start (exit ${started.code}): ${await log()}`);
  }
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      (await Deno.connect({ transport: "unix", path: socket })).close();
      break;
    } catch {
      if (Date.now() > end) throw new Error("dovecot's auth socket did not come up");
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  return {
    dir,
    socket,
    port,
    log,
    async stop() {
      await new Deno.Command(DOVEADM, {
        args: ["-c", `${dir}/dovecot.conf`, "stop"],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).output().catch(() => {});
      const pidFile = `${dir}/run/master.pid`;
      const end = Date.now() + 10_000;
      while (Date.now() < end) {
        try {
          await Deno.stat(pidFile);
          await new Promise((res) => setTimeout(res, 100));
        } catch {
          break;
        }
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
