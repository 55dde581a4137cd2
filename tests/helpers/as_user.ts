/**
 * Runs Postwarden commands as another local user, for tests (which run as
 * root) of what an ordinary user may and may not do: a deno binary that
 * user can execute (the test's own may sit under a private home), the code
 * as root stages it for the daemons (the checkout may sit under /root,
 * mode 0700, as on a fresh CI machine), a DENO_DIR of its own, and
 * `runuser`, which also sets its groups.
 */
import { type PasswdEntry, PasswdFile } from "../../lib/passwd/mod.ts";
import { prepareRuntime } from "../../lib/runtime/mod.ts";
import { run } from "./peers.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** The passwd entry of a user who exists here, or null (with a warning). */
export function localUser(name: string): PasswdEntry | null {
  const e = new PasswdFile().byName(name);
  if (!e) console.warn(`SKIPPED: no local user "${name}"`);
  return e;
}

/** Commands run as other users, with their files under `dir` (removed by the caller). */
export class AsUser {
  private constructor(
    readonly dir: string,
    readonly deno: string,
    /** The code tree every user can read (root's staged copy of the checkout). */
    readonly code: string,
  ) {}

  /** Prepares `dir` (created if needed, made world-searchable) with a deno binary. */
  static async create(dir: string): Promise<AsUser> {
    await Deno.mkdir(`${dir}/bin`, { recursive: true });
    await Deno.chmod(dir, 0o755);
    await Deno.chmod(`${dir}/bin`, 0o755);
    const deno = `${dir}/bin/deno`;
    try {
      await Deno.link(Deno.execPath(), deno);
    } catch {
      await Deno.copyFile(Deno.execPath(), deno);
    }
    await Deno.chmod(deno, 0o755);
    const { runtime } = await prepareRuntime({ source: ROOT, deno: Deno.execPath(), stage: true });
    return new AsUser(dir, deno, runtime.code);
  }

  /**
   * Runs `deno ARGS` (or `program ARGS`) as `user` in `cwd`, with only PATH,
   * DENO_DIR, HOME and `env` set.
   */
  async run(
    user: PasswdEntry,
    args: string[],
    opts: { cwd: string; stdin?: string; env?: Record<string, string>; program?: string },
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const home = `${this.dir}/home-${user.uid}`;
    await Deno.mkdir(home, { recursive: true, mode: 0o700 });
    await Deno.chown(home, user.uid, user.gid);
    const env: Record<string, string> = {
      PATH: "/usr/bin:/bin",
      HOME: home,
      DENO_DIR: `${home}/deno`,
      NO_COLOR: "1",
      ...opts.env,
    };
    const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    const [program, rest] = opts.program ? [opts.program, args] : [this.deno, args];
    // runuser keeps the caller's working directory; env -C sets it for the user.
    return await run(
      "runuser",
      ["-u", user.name, "--", "env", "-i", "-C", opts.cwd, ...vars, program, ...rest],
      { stdin: opts.stdin ?? "" },
    );
  }
}
