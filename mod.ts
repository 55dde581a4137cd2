/**
 * Postwarden's public API for embedding and tests: start an instance on a
 * configuration directory the way `deno task postwarden start-fg` does,
 * and the configuration and queue types to prepare one.
 *
 * @example
 * ```ts
 * import { start } from "./mod.ts";
 * const pw = start("/etc/postwarden");
 * // ... later
 * await pw.stop();
 * ```
 *
 * @module
 */

export {
  type Config,
  configPath,
  loadConfig,
  makeConfig,
  type MasterService,
  parseMainCf,
  parseMasterCf,
  validateConfig,
} from "./lib/config/mod.ts";
export { type Envelope, QueueDir, QueueFile, type Recipient } from "./lib/queue/mod.ts";

const ROOT = new URL("./", import.meta.url).pathname.replace(/\/$/, "");

/** `deno run` arguments for the postwarden admin command, as `deno task postwarden` runs it. */
export function postwardenArgs(configDir: string, ...cmd: string[]): string[] {
  return [
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-run",
    "--allow-env",
    "--allow-net",
    "--allow-sys=hostname,uid,gid",
    `${ROOT}/commands/postwarden.ts`,
    "-c",
    configDir,
    ...cmd,
  ];
}

/** Options for {@link start}. */
export interface StartOptions {
  /** Environment for master and the daemons (they inherit it). @default the caller's */
  env?: Record<string, string>;
  /** Where master's foreground log output goes. @default "null" */
  stderr?: "inherit" | "null";
}

/** A running instance. */
export interface Running {
  /** The `postwarden start-fg` process. */
  process: Deno.ChildProcess;
  /** Stops every process of the instance (SIGTERM, as Ctrl-C would). */
  stop(): Promise<void>;
}

/** Starts Postwarden in the foreground on `configDir`; resolves at once. */
export function start(configDir: string, opts: StartOptions = {}): Running {
  const process = new Deno.Command(Deno.execPath(), {
    args: postwardenArgs(configDir, "start-fg"),
    ...(opts.env ? { env: opts.env } : {}),
    stdin: "null",
    stdout: "null",
    stderr: opts.stderr ?? "null",
  }).spawn();
  return {
    process,
    async stop() {
      try {
        process.kill("SIGTERM");
      } catch {
        // already gone
      }
      await process.status;
    },
  };
}
