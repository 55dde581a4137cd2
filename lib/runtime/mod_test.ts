/**
 * cacheNpmModules: the table drivers land in a DENO_DIR from the checkout's
 * deno.json and deno.lock, a second run needs no network, and a failure
 * names what needs the package and what to do. The first step needs the
 * npm registry (as `deno install` does).
 */
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
} from "../../tests/helpers/assert.ts";
import { moduleFlags } from "../permissions/mod.ts";
import { cacheNpmModules, codeFiles, npmSpecifiers, type Runtime } from "./mod.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const NONE = { read: [], write: [], net: [], run: [], sys: [], env: [], npm: [] };
/** Where nothing listens: a registry that is down. */
const DEAD_PROXY = { HTTPS_PROXY: "http://127.0.0.1:1", HTTP_PROXY: "http://127.0.0.1:1" };

Deno.test("cacheNpmModules", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "pw-npm-cache-" });
  const runtime: Runtime = { deno: Deno.execPath(), code: ROOT, denoDir: dir };
  const env = Deno.env.toObject();
  try {
    await t.step("names come from deno.json imports, pinned there", async () => {
      const [pg, my] = await npmSpecifiers(ROOT, ["postgres", "mysql2/promise"]);
      assert(/^npm:postgres@\d+\.\d+\.\d+$/.test(pg), pg);
      assert(/^npm:mysql2@\d+\.\d+\.\d+\/promise$/.test(my), my);
      await assertRejects(
        () => npmSpecifiers(ROOT, ["left-pad"]),
        Error,
        "no npm: entry for left-pad",
      );
    });
    await t.step("registry down and nothing cached: an error that says what to do", async () => {
      const e = await assertRejects(
        () =>
          cacheNpmModules(runtime, ["postgres"], {
            env: { ...env, ...DEAD_PROXY },
            why: "pgsql:/x.cf",
          }),
        Error,
      );
      assertStringIncludes(e.message, "pgsql:/x.cf needs the npm package npm:postgres@");
      assertStringIncludes(e.message, `DENO_DIR ${dir}`);
      assertStringIncludes(e.message, "needs the npm registry");
      assertStringIncludes(e.message, `--lock=${ROOT}/deno.lock --frozen`);
    });
    await t.step("cached from the lock, then again without the network", async () => {
      await cacheNpmModules(runtime, ["postgres", "mysql2/promise"], { env });
      const t0 = performance.now();
      await cacheNpmModules(runtime, ["postgres", "mysql2/promise"], {
        env: { ...env, ...DEAD_PROXY },
      });
      console.log(`  already cached: ${(performance.now() - t0).toFixed(0)} ms`);
      for (const p of ["postgres", "mysql2"]) {
        const st = await Deno.stat(`${dir}/npm/registry.npmjs.org/${p}`);
        assert(st.isDirectory, p);
      }
    });
    await t.step("a package that does not match deno.lock's integrity is refused", async () => {
      const code = await Deno.makeTempDir({ prefix: "pw-npm-code-" });
      const fresh = await Deno.makeTempDir({ prefix: "pw-npm-cache-" });
      try {
        await Deno.copyFile(`${ROOT}/deno.json`, `${code}/deno.json`);
        const lock = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.lock`));
        const entry = Object.keys(lock.npm).find((k) => k.startsWith("postgres@"))!;
        // Another package's hash: what a tampered tarball would have.
        const other = Object.keys(lock.npm).find((k) => !k.startsWith("postgres@"))!;
        lock.npm[entry].integrity = lock.npm[other].integrity;
        await Deno.writeTextFile(`${code}/deno.lock`, JSON.stringify(lock, null, 2));
        const e = await assertRejects(
          () => cacheNpmModules({ ...runtime, code, denoDir: fresh }, ["postgres"], { env }),
          Error,
        );
        assertStringIncludes(e.message, "checksum did not match");
        assertStringIncludes(e.message, "does not match deno.lock");
      } finally {
        await Deno.remove(code, { recursive: true });
        await Deno.remove(fresh, { recursive: true });
      }
    });
    await t.step("proxymap's module flags load the cached driver and nothing else", async () => {
      const probe = `${ROOT}/lib/runtime/testdata/load_driver.ts`;
      const run = async (specifier: string) => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--no-prompt",
            ...moduleFlags({ ...NONE, npm: ["postgres"] }, ROOT),
            probe,
            specifier,
          ],
          clearEnv: true,
          env: { DENO_DIR: dir, NO_COLOR: "1" },
          stdout: "piped",
          stderr: "piped",
        }).output();
        return new TextDecoder().decode(out.stdout).trim();
      };
      assertEquals(await run("postgres"), "loaded function");
      assertEquals(await run("mysql2/promise"), "loaded object");
      assertStringIncludes(await run("npm:is-number@7.0.0"), "--cached-only");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the staged code tree holds deno.json and deno.lock (proxymap's import map and lock)", async () => {
  const files = await codeFiles(ROOT);
  assert(files.includes("deno.json") && files.includes("deno.lock"), files.slice(0, 5).join());
  assert(files.includes("daemons/proxymap/main.ts"));
  assertEquals(files.filter((f) => f.endsWith("_test.ts") || f.includes("testdata/")), []);
});
