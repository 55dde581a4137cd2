/**
 * Starts a real Dovecot LMTP server (Debian's dovecot-core and
 * dovecot-lmtpd) for the lmtp client's interop tests, all in a temporary
 * folder: `protocols = lmtp`, listening on a UNIX-domain socket (mode
 * 0666, so daemons running as mail_owner reach it) and on a TCP port on
 * 127.0.0.1; users from a passwd-file userdb (the local part of the
 * recipient, `auth_username_format = %Ln`), each with a Maildir under
 * `${dir}/mail/<user>` owned by nobody and a storage quota (the quota
 * plugin), so a test can have one recipient over quota. `doveadm()` runs
 * doveadm against this instance (fetch, search). Needs root. Always
 * `stop()` it in a finally.
 */
import { run } from "./peers.ts";
import { freePort } from "./instance.ts";
import { DOVEADM, DOVECOT } from "./dovecot.ts";

/** Dovecot's LMTP server program (dovecot-lmtpd). */
export const DOVECOT_LMTP = "/usr/lib/dovecot/lmtp";

/** A running Dovecot LMTP server. */
export interface DovecotLmtp {
  dir: string;
  /** The LMTP UNIX-domain socket. */
  socket: string;
  /** The LMTP TCP port on 127.0.0.1. */
  port: number;
  /** doveadm with this instance's configuration. */
  doveadm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  log(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts Dovecot LMTP with `users` (name -> storage quota, e.g. "100M",
 * "1B"). `socket`: where the LMTP socket goes, e.g. the MTA's
 * `$queue_directory/private/dovecot-lmtp` as the Dovecot guides set it up.
 * @default `${dir}/lmtp`
 */
export async function startDovecotLmtp(
  users: Record<string, string>,
  opts: { socket?: string } = {},
): Promise<DovecotLmtp> {
  const dir = await Deno.makeTempDir({ prefix: "dovecot-lmtp-" });
  await Deno.chmod(dir, 0o755);
  const nobody = await run("id", ["-u", "nobody"]);
  const nogroup = await run("id", ["-g", "nobody"]);
  const uid = nobody.stdout.trim();
  const gid = nogroup.stdout.trim();
  await Deno.mkdir(`${dir}/mail`, { mode: 0o755 });
  await Deno.chown(`${dir}/mail`, Number(uid), Number(gid));
  const lines = Object.entries(users).map(([user, quota]) =>
    `${user}::${uid}:${gid}::${dir}/mail/${user}::userdb_quota_rule=*:storage=${quota}`
  );
  await Deno.writeTextFile(`${dir}/users`, lines.join("\n") + "\n", { mode: 0o644 });
  const port = freePort();
  const socket = opts.socket ?? `${dir}/lmtp`;
  const conf = `${dir}/dovecot.conf`;
  await Deno.writeTextFile(
    conf,
    `protocols = lmtp
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
ssl = no
first_valid_uid = 1
auth_username_format = %Ln
mail_location = maildir:${dir}/mail/%n
mail_plugins = quota
plugin {
  quota = maildir:User quota
}
passdb {
  driver = passwd-file
  args = ${dir}/users
}
userdb {
  driver = passwd-file
  args = ${dir}/users
}
service lmtp {
  unix_listener ${socket} {
    mode = 0666
  }
  inet_listener lmtp {
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
    args: ["-c", conf],
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
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      if (Date.now() > end) throw new Error(`dovecot's LMTP did not come up: ${await log()}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  return {
    dir,
    socket,
    port,
    doveadm: (args) => run(DOVEADM, ["-c", conf, ...args]),
    log,
    async stop() {
      await new Deno.Command(DOVEADM, {
        args: ["-c", conf, "stop"],
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
