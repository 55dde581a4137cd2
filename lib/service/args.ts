/**
 * The command line master passes to every daemon:
 * `-c CONFIG_DIR -n SERVICE -t TYPE [-o name=value ...] [-P]`.
 * Pure parse and format, shared by master and the service skeleton. The
 * configuration itself comes on stdin (lib/service DaemonHandoff); the
 * arguments name the daemon, so `ps` shows which service and instance a
 * process is.
 */

/** What a daemon is told at start. */
export interface DaemonArgs {
  configDir: string;
  service: string;
  type: string;
  overrides: Record<string, string>;
  /** A unix service with private=n: its socket lives in public/. */
  publicService: boolean;
}

/** Formats daemon arguments. */
export function formatDaemonArgs(a: DaemonArgs): string[] {
  const out = ["-c", a.configDir, "-n", a.service, "-t", a.type];
  for (const [k, v] of Object.entries(a.overrides)) out.push("-o", `${k}=${v}`);
  if (a.publicService) out.push("-P");
  return out;
}

/** Parses daemon arguments; throws on anything unexpected. */
export function parseDaemonArgs(argv: string[]): DaemonArgs {
  const a: DaemonArgs = {
    configDir: "",
    service: "",
    type: "unix",
    overrides: {},
    publicService: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value after ${flag}`);
      return argv[++i];
    };
    switch (flag) {
      case "-c":
        a.configDir = next();
        break;
      case "-n":
        a.service = next();
        break;
      case "-t":
        a.type = next();
        break;
      case "-o": {
        const kv = next();
        const eq = kv.indexOf("=");
        if (eq < 1) throw new Error(`bad -o value "${kv}": expected name=value`);
        a.overrides[kv.slice(0, eq).trim()] = kv.slice(eq + 1).trim();
        break;
      }
      case "-P":
        a.publicService = true;
        break;
      default:
        throw new Error(`unexpected argument "${flag}"`);
    }
  }
  if (!a.configDir || !a.service) throw new Error("usage: -c CONFIG_DIR -n SERVICE -t TYPE");
  return a;
}
