/**
 * Differential tests' one way to run the same thing against a real
 * Postfix 3.7 and a Postwarden instance with the same main.cf: Postfix is
 * started, used and stopped, then Postwarden; the two results come back
 * side by side. A failure on either side names the server (and what the
 * caller calls the case) and shows the tail of that server's log. Each
 * server is stopped before the next starts (unless `concurrent`), so the
 * two never share a moment.
 *
 * It does not check for Postfix or root: the test does that first, with
 * peers.ts's havePeer and haveRoot.
 */
import { type Instance, startInstance } from "./instance.ts";
import { type PostfixInstance, type PostfixOptions, startPostfix } from "./postfix.ts";

/** Either server: both have `port`, `maillog`, `log()` and `stop()`. */
export type Server = Instance | PostfixInstance;

/** Options for {@link onBoth}. */
export interface OnBothOptions {
  /** The case's name, for messages. */
  label?: string;
  /** More Postfix options. @default myhostname "mx.test.example" */
  postfix?: Omit<PostfixOptions, "mainCf">;
  /** Both servers at once (they listen on different ports), for speed. @default false */
  concurrent?: boolean;
  /** More startInstance options (env, confFiles, masterCf). */
  instance?: Omit<NonNullable<Parameters<typeof startInstance>[0]>, "mainCf">;
}

/** Runs `use` against Postfix, then against Postwarden, both with `mainCf`. */
export async function onBoth<T>(
  mainCf: string,
  use: (server: Server) => Promise<T>,
  opts: OnBothOptions = {},
): Promise<{ theirs: T; ours: T }> {
  const label = opts.label ? ` (${opts.label})` : "";
  const postfix = async () =>
    await within(
      await startPostfix({ myhostname: "mx.test.example", ...opts.postfix, mainCf }),
      `Postfix${label}`,
      use,
    );
  const postwarden = async () =>
    await within(await startInstance({ ...opts.instance, mainCf }), `Postwarden${label}`, use);
  if (opts.concurrent) {
    const [theirs, ours] = await Promise.all([postfix(), postwarden()]);
    return { theirs, ours };
  }
  const theirs = await postfix();
  return { theirs, ours: await postwarden() };
}

/** Uses the server and stops it; a failure says which server and shows its log's tail. */
async function within<T>(
  server: Server,
  name: string,
  use: (server: Server) => Promise<T>,
): Promise<T> {
  try {
    return await use(server);
  } catch (e) {
    const log = await server.log();
    throw new Error(`${name}: ${(e as Error).message}\n--- its log's tail\n${log.slice(-3000)}`, {
      cause: e,
    });
  } finally {
    await server.stop();
  }
}
