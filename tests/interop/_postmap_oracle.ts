/**
 * The postmap oracle: runs Postfix's real `postmap`/`postalias` and
 * Postwarden's (commands/postmap.ts, commands/postalias.ts) on the same
 * table and the same keys, and returns both results normalized for
 * comparison. Any test of a table type (texthash, hash, regexp, pcre,
 * cidr, ...) can use it: give a source text (or none, for inline:-like
 * types), the keys, and whether the type is compiled by postmap first.
 *
 * Each side works in its own directory with the same relative file name,
 * so messages that name the file are comparable, and Postfix builds its
 * own .db/.lmdb/.cdb while Postwarden builds its own index. Both read a
 * main.cf written into the work directory.
 *
 * Normalization of standard error: the program prefix stays ("postmap:"
 * for both), the place a duplicate is reported at (Postfix names the
 * database file, Postwarden the source line) is dropped, and for query
 * runs the lines are de-duplicated (Postfix reopens some tables per key
 * and repeats their warnings).
 *
 * @module
 */
import { havePeer } from "../helpers/peers.ts";

const OURS = {
  postmap: new URL("../../commands/postmap.ts", import.meta.url).pathname,
  postalias: new URL("../../commands/postalias.ts", import.meta.url).pathname,
};
const REAL = { postmap: "/usr/sbin/postmap", postalias: "/usr/sbin/postalias" };

/** One table to compare. */
export interface OracleCase {
  /** Label for assertion messages. */
  label: string;
  /** Table type ("hash", "texthash", "inline", ...). */
  type: string;
  /**
   * The text after "type:" when there is no source file (inline:{...},
   * unionmap:{...}). Use "@FILE" to name the source file written from
   * `source` (e.g. "{texthash:@FILE, inline:{a=b}}").
   */
  name?: string;
  /** Source file text, written to `table` in each side's directory. */
  source?: string | Uint8Array;
  /**
   * Build first with postmap (postalias): true builds `type:name`; a list
   * builds those specs ("@FILE" names the source file). @default false
   */
  build?: boolean | string[];
  /** Program: postmap or postalias. @default "postmap" */
  program?: "postmap" | "postalias";
  /** Extra options for build and query (e.g. ["-f"], ["-r"]). @default [] */
  flags?: string[];
  /** Keys for `-q -`, one per line. */
  keys: string[];
  /** main.cf text for both sides. @default "compatibility_level = 3.6\n" */
  mainCf?: string;
  /** Table files other than `table` (for unionmap of two files). */
  extraFiles?: Record<string, string>;
}

/** What one side printed. */
export interface SideResult {
  buildCode: number;
  buildStderr: string[];
  queryCode: number;
  queryStdout: string;
  queryStderr: string[];
}

/** True when the real postmap is installed (else the test skips; fails under CI). */
export function haveOracle(): boolean {
  return havePeer(REAL.postmap) && havePeer(REAL.postalias);
}

async function exec(
  cmd: string,
  args: string[],
  cwd: string,
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...Deno.env.toObject() };
  delete env.MAIL_CONFIG;
  const p = new Deno.Command(cmd, {
    args,
    cwd,
    env,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Write while reading: a large output fills the pipe before stdin ends.
  const writing = stdin === undefined ? Promise.resolve() : (async () => {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  })();
  const out = await p.output();
  await writing;
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function normalize(stderr: string, dedupe: boolean): string[] {
  const lines = stderr.split("\n").filter((l) => l !== "")
    .map((l) => l.replace(/^(\w+): warning: .*: (duplicate entry: )/, "$1: warning: $2"));
  return dedupe ? [...new Set(lines)] : lines;
}

async function side(c: OracleCase, dir: string, real: boolean): Promise<SideResult> {
  const program = c.program ?? "postmap";
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/main.cf`, c.mainCf ?? "compatibility_level = 3.6\n");
  if (c.source !== undefined) {
    if (typeof c.source === "string") await Deno.writeTextFile(`${dir}/table`, c.source);
    else await Deno.writeFile(`${dir}/table`, c.source);
  }
  for (const [f, text] of Object.entries(c.extraFiles ?? {})) {
    await Deno.writeTextFile(`${dir}/${f}`, text);
  }
  const spec = `${c.type}:${(c.name ?? "table").replaceAll("@FILE", "table")}`;
  const run = (args: string[], stdin?: string) =>
    real ? exec(REAL[program], ["-c", dir, ...args], dir, stdin) : exec(
      Deno.execPath(),
      [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-sys=hostname,uid",
        OURS[program],
        "-c",
        dir,
        ...args,
      ],
      dir,
      stdin,
    );
  const specs = c.build === true
    ? [spec]
    : (c.build || []).map((b) => b.replaceAll("@FILE", "table"));
  let build = { code: 0, stderr: "" };
  for (const b of specs) {
    const r = await run([...(c.flags ?? []), b]);
    build = { code: build.code || r.code, stderr: build.stderr + r.stderr };
  }
  const q = await run([...(c.flags ?? []), "-q", "-", spec], c.keys.join("\n") + "\n");
  return {
    buildCode: build.code,
    buildStderr: normalize(build.stderr, false),
    queryCode: q.code,
    queryStdout: q.stdout,
    queryStderr: normalize(q.stderr, true),
  };
}

/**
 * Runs the case through Postfix and Postwarden in fresh directories under
 * `workDir`, and returns both results.
 */
export async function compareWithPostfix(
  c: OracleCase,
  workDir: string,
): Promise<{ real: SideResult; ours: SideResult }> {
  const safe = c.label.replace(/[^A-Za-z0-9_-]/g, "_");
  const [real, ours] = await Promise.all([
    side(c, `${workDir}/${safe}/real`, true),
    side(c, `${workDir}/${safe}/ours`, false),
  ]);
  return { real, ours };
}
