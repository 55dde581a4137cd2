/**
 * Real peers for interop tests (Debian packages installed by
 * scripts/install-peers.sh). A missing peer skips the test loudly, except
 * under CI=true, where it is a failure.
 */

/**
 * Something a test needs is missing: false, with a loud "SKIPPED: msg"
 * warning, locally; under CI=true it throws, as CI installs every peer.
 * Every peer check goes through it.
 */
export function missingPeer(msg: string): false {
  if (Deno.env.get("CI") === "true") throw new Error(`${msg}; CI=true makes this a failure`);
  console.warn(`SKIPPED: ${msg}`);
  return false;
}

/** True if the program exists; false (with a warning) if missing locally; throws under CI. */
export function havePeer(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return missingPeer(`peer ${path} is missing (run scripts/install-peers.sh)`);
  }
}

/** Runs a program and collects its output. */
export async function run(
  cmd: string,
  args: string[],
  opts: { stdin?: string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = new Deno.Command(cmd, {
    args,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const timer = setTimeout(() => {
    try {
      p.kill("SIGKILL");
    } catch {
      // exited
    }
  }, opts.timeoutMs ?? 120_000);
  const out = await p.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** True when running as root (a real Postfix needs it); otherwise skips loudly, or fails under CI. */
export function haveRoot(what: string): boolean {
  if (Deno.uid() === 0) return true;
  return missingPeer(`${what} needs root (CI runs as root)`);
}
