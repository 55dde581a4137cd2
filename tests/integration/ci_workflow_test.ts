/**
 * The CI job example docs/examples/ci-workflow.yml runs: its `run:` steps,
 * read from the YAML, run in order as GitHub Actions runs them (each a
 * script run by `bash -e`, or bash's -eo pipefail for `shell: bash`, in its
 * working-directory with `${{ runner.temp }}` and `${{ github.workspace }}`
 * substituted, with the workflow's env, GITHUB_WORKSPACE and RUNNER_TEMP),
 * in a workspace whose mail/ is the sample configuration
 * docs/examples/company. The report the job leaves,
 * $GITHUB_WORKSPACE/postwarden-test.xml, has a testcase per sample test
 * (30 when this was written), none failed, and validates against the
 * common JUnit schema (tests/testdata/junit/junit-10.xsd) with xmllint;
 * without xmllint that check is skipped loudly, and fails under CI=true.
 *
 * `uses:` steps are actions, not commands, and are skipped: the workspace
 * copy stands for actions/checkout, and actions/upload-artifact only keeps
 * the report.
 *
 * POSTWARDEN_REPO is this repository (a file:// URL) and POSTWARDEN_REF its
 * current branch (with a detached HEAD, a branch made in a throwaway clone),
 * so the job clones and tests the committed HEAD, and mail/ is the sample
 * as committed in HEAD too: uncommitted changes in the working tree are not
 * what this runs. Needs git, npx (Node.js) and the npm registry (Deno and
 * Postwarden's npm packages come from it), as the job itself does.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { havePeer, run } from "../helpers/peers.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const WORKFLOW = `${ROOT}/docs/examples/ci-workflow.yml`;
const SCHEMA = `${ROOT}/tests/testdata/junit/junit-10.xsd`;
const XMLLINT = "/usr/bin/xmllint";

/** A YAML node as the small parser below reads it; flow collections stay text. */
type Yaml = string | Yaml[] | { [key: string]: Yaml };

class WorkflowError extends Error {
  override readonly name = "WorkflowError";
}

/**
 * Block mappings and sequences, plain and quoted scalars (no escapes) and
 * literal block scalars (`|`, clipped): enough for a workflow file of this
 * shape. Anything else throws, so a changed workflow fails here rather than
 * running wrongly.
 */
function parseYaml(text: string): Yaml {
  const lines = text.split("\n").map((l) => l.trimEnd());
  let i = 0;
  const indent = (l: string) => l.length - l.trimStart().length;
  const skip = () => {
    while (i < lines.length && /^\s*(#.*)?$/.test(lines[i])) i++;
  };
  const fail = (why: string): never => {
    throw new WorkflowError(`line ${i + 1}: ${why}: ${lines[i]}`);
  };
  const scalar = (s: string): string => {
    const quoted = /^"(.*)"$/.exec(s) ?? /^'(.*)'$/.exec(s);
    if (quoted) return quoted[1];
    if (/^[|>]/.test(s)) fail("unsupported block scalar");
    return s.replace(/\s+#.*$/, "");
  };
  const KEY = /^([\w.-]+):(?:\s+(.*))?$/;

  function literal(n: number): string {
    const body: string[] = [];
    while (i < lines.length && (lines[i] === "" || indent(lines[i]) > n)) body.push(lines[i++]);
    while (body.length && body[body.length - 1] === "") body.pop();
    const strip = Math.min(...body.filter((l) => l !== "").map(indent));
    return body.map((l) => l.slice(strip)).join("\n") + "\n";
  }

  function node(n: number): Yaml {
    skip();
    if (lines[i].slice(n).startsWith("- ")) {
      const items: Yaml[] = [];
      for (; i < lines.length && indent(lines[i]) === n; skip()) {
        if (!lines[i].slice(n).startsWith("- ")) fail("expected a sequence item");
        const rest = lines[i].slice(n + 2);
        if (KEY.test(rest)) {
          lines[i] = " ".repeat(n + 2) + rest;
          items.push(node(n + 2));
        } else {
          items.push(scalar(rest));
          i++;
        }
      }
      return items;
    }
    const map: { [key: string]: Yaml } = {};
    for (; i < lines.length && indent(lines[i]) === n; skip()) {
      const m = KEY.exec(lines[i].slice(n)) ?? fail("expected key: value");
      i++;
      if (m[2] === "|") map[m[1]] = literal(n);
      else if (m[2] !== undefined) map[m[1]] = scalar(m[2]);
      else {
        skip();
        const next = lines[i] ?? "";
        const child = indent(next) > n || (indent(next) === n && next.slice(n).startsWith("- "));
        map[m[1]] = child ? node(indent(next)) : "";
      }
    }
    if (i < lines.length && indent(lines[i]) > n) fail("unexpected indentation");
    return map;
  }

  skip();
  const doc = node(0);
  skip();
  if (i < lines.length) fail("unexpected text");
  return doc;
}

function mapping(v: Yaml | undefined, what: string): { [key: string]: Yaml } {
  if (v === undefined) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new WorkflowError(`${what}: not a mapping`);
  return v;
}

function strings(v: Yaml | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, s] of Object.entries(mapping(v, what))) {
    if (typeof s !== "string") throw new WorkflowError(`${what}.${k}: not a string`);
    out[k] = s;
  }
  return out;
}

function optionalString(v: Yaml | undefined, what: string): string | undefined {
  if (v !== undefined && typeof v !== "string") throw new WorkflowError(`${what}: not a string`);
  return v;
}

/** One `run:` step as the runner would execute it. */
interface RunStep {
  name: string;
  script: string;
  workingDirectory?: string;
  shell?: string;
  env: Record<string, string>;
}

/** The workflow's env and its one job's `run:` steps, in order; `uses:` steps are left out. */
function runSteps(doc: Yaml): { env: Record<string, string>; steps: RunStep[] } {
  const top = mapping(doc, "workflow");
  const jobs = Object.entries(mapping(top.jobs, "jobs"));
  assertEquals(jobs.length, 1, "the example has one job");
  const [jobName, jobYaml] = jobs[0];
  const job = mapping(jobYaml, jobName);
  if (!Array.isArray(job.steps)) throw new WorkflowError(`${jobName}.steps: not a sequence`);
  const steps: RunStep[] = [];
  for (const [n, s] of job.steps.entries()) {
    const step = mapping(s, `step ${n + 1}`);
    if (step.uses !== undefined) continue;
    if (typeof step.run !== "string") throw new WorkflowError(`step ${n + 1}: no run: or uses:`);
    if (step.if !== undefined && step.if !== "always()" && step.if !== "success()") {
      throw new WorkflowError(`step ${n + 1}: if: ${step.if} is not emulated`);
    }
    steps.push({
      name: typeof step.name === "string" ? step.name : `step ${n + 1}`,
      script: step.run,
      workingDirectory: optionalString(
        step["working-directory"],
        `step ${n + 1}.working-directory`,
      ),
      shell: optionalString(step.shell, `step ${n + 1}.shell`),
      env: { ...strings(job.env, `${jobName}.env`), ...strings(step.env, `step ${n + 1}.env`) },
    });
  }
  return { env: strings(top.env, "env"), steps };
}

/** `${{ ... }}` expressions the runner would substitute; others throw. */
function expand(s: string, context: Record<string, string>): string {
  return s.replace(/\$\{\{\s*([^}]*?)\s*\}\}/g, (_, expr: string) => {
    const v = context[expr];
    if (v === undefined) throw new WorkflowError(`\${{ ${expr} }} is not emulated`);
    return v;
  });
}

/** bash's options for a step: GitHub's `bash -e {0}`, and for `shell: bash` its stricter form. */
function bashOptions(shell: string | undefined): string[] {
  if (shell === undefined) return ["-e"];
  if (shell === "bash") return ["--noprofile", "--norc", "-eo", "pipefail"];
  throw new WorkflowError(`shell: ${shell} is not emulated`);
}

async function git(args: string[]): Promise<string> {
  const r = await run("git", args);
  assertEquals(r.code, 0, `git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * Where the job clones Postwarden from: this repository and its branch, or,
 * with a detached HEAD, a throwaway clone with a branch at that commit (the
 * repository's own branches are not touched).
 */
async function postwardenSource(tmp: string): Promise<{ repo: string; ref: string }> {
  const branch = await git(["-C", ROOT, "rev-parse", "--abbrev-ref", "HEAD"]);
  if (branch !== "HEAD") return { repo: `file://${ROOT}`, ref: branch };
  const clone = `${tmp}/source`;
  await git(["clone", "--quiet", "--no-checkout", `file://${ROOT}`, clone]);
  await git(["-C", clone, "branch", "ci-workflow-test", "HEAD"]);
  return { repo: `file://${clone}`, ref: "ci-workflow-test" };
}

Deno.test({
  name: "docs/examples/ci-workflow.yml: its run steps test the sample configuration",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { env, steps } = runSteps(parseYaml(await Deno.readTextFile(WORKFLOW)));
    assertEquals(steps.map((s) => s.name), ["Postwarden", "Test the configuration"]);

    const tmp = await Deno.makeTempDir({ prefix: "ci-workflow-" });
    try {
      const workspace = `${tmp}/workspace`;
      const runnerTemp = `${tmp}/runner-temp`;
      await Deno.mkdir(runnerTemp);
      await Deno.mkdir(workspace);
      // The sample as committed, like the Postwarden the job clones.
      await Deno.mkdir(`${workspace}/mail`);
      const tar = await run("bash", [
        "-c",
        'git -C "$1" archive HEAD:docs/examples/company | tar -x -C "$2"',
        "-",
        ROOT,
        `${workspace}/mail`,
      ]);
      assertEquals(tar.code, 0, tar.stderr);
      const source = await postwardenSource(tmp);
      const context = { "runner.temp": runnerTemp, "github.workspace": workspace };

      for (const [n, step] of steps.entries()) {
        const script = `${runnerTemp}/step-${n + 1}.sh`;
        await Deno.writeTextFile(script, expand(step.script, context));
        const out = await new Deno.Command("bash", {
          args: [...bashOptions(step.shell), script],
          cwd: step.workingDirectory === undefined
            ? workspace
            : expand(step.workingDirectory, context),
          env: {
            ...env,
            ...step.env,
            POSTWARDEN_REPO: source.repo,
            POSTWARDEN_REF: source.ref,
            CI: "true",
            GITHUB_ACTIONS: "true",
            GITHUB_WORKSPACE: workspace,
            RUNNER_TEMP: runnerTemp,
          },
          stdin: "null",
          signal: AbortSignal.timeout(600_000),
        }).output();
        const text = (b: Uint8Array) => new TextDecoder().decode(b);
        assertEquals(
          out.code,
          0,
          `step "${step.name}" failed:\n${text(out.stdout)}\n${text(out.stderr)}`,
        );
      }

      const report = `${workspace}/postwarden-test.xml`;
      const xml = await Deno.readTextFile(report);
      const dialogs = [...Deno.readDirSync(`${workspace}/mail/tests`)]
        .filter((e) => e.isFile && e.name.endsWith(".dialog")).length;
      assert(dialogs >= 30, `${dialogs} tests in the sample`);
      assertEquals((xml.match(/<testcase /g) ?? []).length, dialogs, xml);
      assertEquals((xml.match(/<failure /g) ?? []).length, 0, xml);
      assert(/<testsuite [^>]*\bfailures="0"/.test(xml), xml);
      if (havePeer(XMLLINT)) {
        const v = await run(XMLLINT, ["--noout", "--schema", SCHEMA, report]);
        assertEquals(v.code, 0, v.stderr);
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
