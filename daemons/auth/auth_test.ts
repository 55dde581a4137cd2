/**
 * The auth daemon's password store: verification of each scheme with
 * hashes made by `doveadm pw` (recorded here), {PLAIN} and malformed lines
 * refused with warnings, an unknown user, and what it does with a file it
 * cannot use (missing, unreadable, a symbolic link, a directory, replaced
 * by another file): warnings and temporary failures, never a crash, never
 * a hash in an answer. Also the request checks of a hostile client.
 */
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { parsePasswdFile } from "../../lib/sasl/passwd_file.ts";
import { npmVerifiers } from "./main.ts";
import { PasswdStore } from "./auth.ts";

/** `doveadm pw -s SCHEME -p secret` (Dovecot 2.3.19). */
const HASHES = {
  sha512:
    "{SHA512-CRYPT}$6$oXdODOp2KV11X0Re$cm9YorD.mThA8RilLvbhddNuG3fuGtaN/yxH.D1aB8nB.T0ByD9S07ZN1qrPvRVErBDaQVgPioR4U.9TAq92N0",
  blf: "{BLF-CRYPT}$2y$05$yCCNmM9uymXxmkAJLjY5nOM3zOIneS.oDfa.z/lcmBDr7GkdsYQ3i",
  argon:
    "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$5ncg3G9mIo4bNBB7hB6fFA$nefP5MpAvKi6lHCvqBG1zMBr9JqkvRUC41dVSfS5LbY",
  sha256: "{SHA256-CRYPT}$5$short$9/8SIv1phoCHJHx3/4TkS9i4lXOKaO0/Ns5nFzI9S59",
};

const b64 = (s: string) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));

async function store(text: string | null, opts: { mode?: number } = {}) {
  const dir = await Deno.makeTempDir({ prefix: "auth-store-" });
  const path = `${dir}/passwd`;
  if (text !== null) await Deno.writeTextFile(path, text, { mode: opts.mode ?? 0o600 });
  const warnings: string[] = [];
  const s = new PasswdStore(path, (m) => warnings.push(m), npmVerifiers);
  const ask = (user: string, password: string) =>
    s.answer({ op: "verify", user, password: b64(password), rip: "192.0.2.1" });
  return { dir, path, s, warnings, ask, done: () => Deno.remove(dir, { recursive: true }) };
}

Deno.test("auth daemon: passwd-file store", async (t) => {
  const file = [
    "# comment",
    "",
    `sha:${HASHES.sha512}:1000:1000::/home/sha::`,
    `blf:${HASHES.blf}`,
    `argon:${HASHES.argon}::::`,
    `sha256:${HASHES.sha256}`,
    "plain:{PLAIN}secret",
    "clear:{CLEAR}secret",
    "bare:$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/TsVArtr91iR1",
    "md5:{MD5-CRYPT}$1$abc$def",
    "badhash:{SHA512-CRYPT}nothash",
    "no colon here",
    `sha:${HASHES.blf}`,
  ].join("\n");

  await t.step("each scheme verifies; wrong passwords and unknown users fail", async () => {
    const st = await store(file);
    try {
      assertEquals(await st.ask("sha", "secret"), { status: "ok", user: "sha" });
      assertEquals(await st.ask("blf", "secret"), { status: "ok", user: "blf" });
      assertEquals(await st.ask("argon", "secret"), { status: "ok", user: "argon" });
      assertEquals(await st.ask("sha256", "pässwörd"), { status: "ok", user: "sha256" });
      // Lowercased as Dovecot's auth_username_format %Lu.
      assertEquals(await st.ask("SHA", "secret"), { status: "ok", user: "sha" });
      for (const u of ["sha", "blf", "argon", "sha256", "nobody"]) {
        assertEquals(await st.ask(u, "wrong"), { status: "fail" }, u);
      }
    } finally {
      await st.done();
    }
  });

  await t.step(
    "{PLAIN}, {CLEAR}, no scheme, other schemes, bad lines: refused, warned",
    async () => {
      const st = await store(file);
      try {
        for (const u of ["plain", "clear", "bare", "md5", "badhash"]) {
          assertEquals(await st.ask(u, "secret"), { status: "fail" }, u);
        }
        const w = st.warnings.join("\n");
        assertMatch(w, /line 7: user plain: scheme \{PLAIN\} stores the password itself; refused/);
        assertMatch(w, /line 8: user clear: scheme \{CLEAR\} stores/);
        assertMatch(w, /line 9: user bare: password without \{SCHEME\}; refused/);
        assertMatch(w, /line 10: user md5: scheme \{MD5-CRYPT\} is not supported/);
        assertMatch(w, /line 11: user badhash: malformed \{SHA512-CRYPT\} hash/);
        assertMatch(w, /line 12: malformed line/);
        assertMatch(w, /line 13: user sha is listed twice; the first line counts/);
        // Warnings are given once per reading of the file, not per request.
        const n = st.warnings.length;
        await st.ask("sha", "secret");
        assertEquals(st.warnings.length, n);
        assert(!w.includes("$6$oXd") && !w.includes("secret"), "no hash or password in warnings");
      } finally {
        await st.done();
      }
    },
  );

  await t.step("missing, a directory, a symlink: temporary failure, one warning", async () => {
    const st = await store(null);
    try {
      assertEquals(await st.ask("sha", "secret"), {
        status: "temp",
        text: "password file unavailable",
      });
      await st.ask("sha", "secret");
      assertEquals(st.warnings.length, 1);
      assertMatch(st.warnings[0], /cannot access passwd-file .*passwd/);
      await Deno.mkdir(st.path);
      assertEquals((await st.ask("sha", "secret")).status, "temp");
      assertMatch(st.warnings.at(-1)!, /is not a regular file/);
      await Deno.remove(st.path);
      await Deno.writeTextFile(`${st.dir}/other`, file);
      await Deno.symlink(`${st.dir}/other`, st.path);
      assertEquals((await st.ask("sha", "secret")).status, "temp");
      assertMatch(st.warnings.at(-1)!, /is a symbolic link; refused/);
      // The real file again: it works, and a swap for another file is read anew.
      await Deno.remove(st.path);
      await Deno.writeTextFile(st.path, file);
      assertEquals((await st.ask("sha", "secret")).status, "ok");
      await Deno.writeTextFile(`${st.dir}/new`, `sha:${HASHES.blf}\n`);
      await Deno.rename(`${st.dir}/new`, st.path);
      assertEquals((await st.ask("sha", "secret")).status, "ok");
      assertEquals((await st.ask("blf", "secret")).status, "fail");
    } finally {
      await st.done();
    }
  });

  await t.step("unreadable by the daemon: temporary failure with the reason", async () => {
    if (Deno.uid() === 0) {
      // root reads mode 000 files; use the real permission error of a denied open instead.
      const st = await store(file);
      const denied = new PasswdStore(st.path, (m) => st.warnings.push(m), npmVerifiers, {
        lstat: (p) => Deno.lstat(p),
        open: () => Promise.reject(new Deno.errors.PermissionDenied("Permission denied")),
      });
      try {
        const r = await denied.answer({ op: "verify", user: "sha", password: b64("secret") });
        assertEquals(r.status, "temp");
        assertMatch(st.warnings.at(-1)!, /cannot read passwd-file .*: Permission denied/);
      } finally {
        await st.done();
      }
      return;
    }
    const st = await store(file, { mode: 0o000 });
    try {
      assertEquals((await st.ask("sha", "secret")).status, "temp");
      assertMatch(st.warnings.at(-1)!, /cannot read passwd-file/);
    } finally {
      await st.done();
    }
  });

  await t.step("hostile requests are answered, not crashed on", async () => {
    const st = await store(file);
    try {
      for (
        const req of [
          {},
          { op: "lookup", user: "sha" },
          { op: "verify", user: 1, password: "x" },
          { op: "verify", user: "sha", password: "!!!" },
          { op: "verify", user: "x".repeat(300), password: b64("secret") },
          { op: "verify", user: "sha", password: "A".repeat(10_000) },
        ]
      ) {
        assertEquals((await st.s.answer(req as Record<string, unknown>)).status, "temp");
      }
    } finally {
      await st.done();
    }
  });
});

Deno.test("passwd-file parsing keeps no line without a supported scheme", () => {
  const p = parsePasswdFile("a:{plain}x\nb:{sha512-crypt}$6$a$b\r\n", "f");
  assertEquals([...p.entries.keys()], ["b"]);
  assertEquals(p.entries.get("b")!.scheme, "SHA512-CRYPT");
});
