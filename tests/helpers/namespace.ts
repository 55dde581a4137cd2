/**
 * Runs a test file again inside a private mount namespace (`unshare -m`)
 * where a resolv.conf of the test's own is bind-mounted over
 * /etc/resolv.conf: the daemons resolve names with the machine's resolver
 * configuration, which a test must not change, so the test points them at
 * its name server this way. Needs root; the caller checks for it and for
 * {@link UNSHARE} (tests/helpers/peers.ts havePeer, haveRoot).
 *
 * The file tells the two runs apart by an environment variable set in
 * `env` (e.g. `MX_FANOUT_INNER=1`): outside it calls this, inside it runs
 * the real test.
 *
 * @module
 */

/** util-linux's unshare. */
export const UNSHARE = "/usr/bin/unshare";

/**
 * `deno test` of `file` (an import.meta.url) inside the namespace, with
 * `resolvConf` as /etc/resolv.conf there and `env` as its environment
 * (NO_COLOR added). Resolves when it has exited: its success and its
 * stdout and stderr together.
 */
export async function testInResolvNamespace(
  file: string,
  resolvConf: string,
  env: Record<string, string>,
): Promise<{ success: boolean; text: string }> {
  const dir = await Deno.makeTempDir({ prefix: "resolv-ns-" });
  try {
    const resolv = `${dir}/resolv.conf`;
    await Deno.writeTextFile(resolv, resolvConf, { mode: 0o644 });
    const out = await new Deno.Command(UNSHARE, {
      args: [
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount --bind "$0" /etc/resolv.conf && exec "$@"',
        resolv,
        Deno.execPath(),
        "test",
        "--allow-all",
        "--no-prompt",
        new URL(file).pathname,
      ],
      env: { ...env, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { success: out.success, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
