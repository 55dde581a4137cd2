/**
 * A daemon runs with `--no-npm --no-remote` and reads only its own files:
 * importing the table registry (which lists pgsql: and mysql:, whose
 * drivers are npm packages) must work there, and so must a table that
 * needs no npm package; a pgsql: table opened there fails with a clear
 * error, never a crash at import.
 */
import { assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

Deno.test("lib/maps under deno run --no-npm --no-remote", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/daemon.ts`;
    const cf = `${dir}/pg.cf`;
    await Deno.writeTextFile(
      cf,
      "hosts = 127.0.0.1:1\ndbname = d\nquery = SELECT v FROM t WHERE k='%s'\n",
    );
    await Deno.writeTextFile(
      script,
      `import { openDict, supportedTypes } from "${ROOT}/lib/maps/mod.ts";
const d = await openDict("inline:{a@example.com=b@example.net}");
console.log("types", supportedTypes().join(" "));
console.log("inline", await d.lookup("a@example.com"));
try {
  const pg = await openDict("pgsql:${cf}", { warn: () => {} });
  await pg.lookup("a@example.com");
  console.log("pgsql answered");
} catch (e) {
  console.log("pgsql", e.name, e.kind, e.message);
}
`,
    );
    for (const config of ["--no-config", `--config=${ROOT}/deno.json`]) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-npm",
          "--no-remote",
          "--no-prompt",
          config,
          `--allow-read=${ROOT},${dir}`,
          script,
        ],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      await check(t, config, out);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function check(t: Deno.TestContext, config: string, out: Deno.CommandOutput) {
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  await t.step(`${config}: the registry loads and an inline: table answers`, () => {
    assertEquals(out.code, 0, stderr);
    assertStringIncludes(stdout, "inline b@example.net\n");
    assertStringIncludes(stdout, "types ");
    for (const type of ["mysql", "pgsql", "socketmap", "sqlite", "tcp"]) {
      assertStringIncludes(stdout, ` ${type}`);
    }
  });
  await t.step(`${config}: a pgsql: table says its driver cannot be loaded`, () => {
    assertStringIncludes(stdout, "pgsql DictError config");
    assertStringIncludes(stdout, "npm:postgres");
  });
}
