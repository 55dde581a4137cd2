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
import { havePeer, haveRoot } from "./peers.ts";

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

/** What {@link resolvNamespaceTest} needs. */
export interface ResolvNamespaceTest {
  name: string;
  /** The test file's import.meta.url. */
  url: string;
  /** The checks, run inside the namespace. */
  inner: (t: Deno.TestContext) => Promise<void>;
  /** The variable that marks the inner run (e.g. "SPF_TEST_INNER"). */
  innerVar: string;
  /** The test's name server, and the variable that carries it into the inner run. */
  nameserver: string;
  nameserverVar: string;
  /** resolv.conf's options line. @default "timeout:1 attempts:1" */
  options?: string;
  /** Programs needed besides unshare (each a loud skip, a failure under CI=true). */
  peers?: string[];
  /** What root is needed for, for the skip message. @default "a private mount namespace" */
  rootFor?: string;
  /** Print the inner run's step lines after it passed. */
  showSteps?: boolean;
}

/**
 * A Deno.test whose checks run inside a private mount namespace where
 * /etc/resolv.conf names the test's own name server: outside, it runs its
 * file again there ({@link testInResolvNamespace}); inside, `inner`. The
 * rest of the environment (POSTWARDEN_TEST_HOSTING, CI) is inherited.
 */
export function resolvNamespaceTest(o: ResolvNamespaceTest): void {
  Deno.test({
    name: o.name,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async (t) => {
      if (Deno.env.get(o.innerVar) === "1") return await o.inner(t);
      for (const p of [UNSHARE, ...(o.peers ?? [])]) if (!havePeer(p)) return;
      if (!haveRoot(o.rootFor ?? "a private mount namespace")) return;
      const { success, text } = await testInResolvNamespace(
        o.url,
        `nameserver ${o.nameserver}\noptions ${o.options ?? "timeout:1 attempts:1"}\n`,
        { [o.innerVar]: "1", [o.nameserverVar]: o.nameserver },
      );
      await t.step("the checks inside the namespace passed", () => {
        if (!success) throw new Error(text.slice(-12_000));
      });
      if (o.showSteps) {
        console.log(text.split("\n").filter((l) => / \.\.\. ok| FAILED/.test(l)).join("\n"));
      }
    },
  });
}
