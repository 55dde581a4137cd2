/**
 * The probe `postwarden audit` runs inside each daemon's permission set.
 * It attempts each action named in its JSON argument and prints one JSON
 * result per action: "allowed", "denied" (by the Deno sandbox), "denied
 * (<why>)" when something below Deno stopped it (a read-only DENO_DIR, a
 * missing API), or "allowed (<OS error>)" when the sandbox let it through
 * but the operation itself failed. It never deletes, truncates or replaces
 * anything it did not create: a socket is "replaced" by renaming it onto
 * itself, which needs the same permission as removing it and changes
 * nothing; the log is opened for appending and closed unwritten.
 */

import { exitWorker, inWorker, workerOutput, workerStart } from "../lib/service/worker.ts";

export type Probe =
  | { kind: "read-dir"; path: string }
  | { kind: "write-dir"; path: string }
  | { kind: "read-file"; path: string }
  | { kind: "connect"; host: string; port: number }
  | { kind: "connect-unix"; path: string }
  | { kind: "listen-tcp"; host: string; port: number }
  | { kind: "listen-unix"; path: string }
  | { kind: "run"; program: string }
  /** Whether the sandbox lets it start a program it should not be made to run (pipe's argv=). */
  | { kind: "may-run"; program: string }
  | { kind: "append-file"; path: string }
  | { kind: "replace"; path: string }
  | { kind: "import"; specifier: string }
  | { kind: "local-storage" }
  | { kind: "cache-api" }
  | { kind: "kv-default" };

function why(e: unknown): string {
  return (e as Error).message.replace(/\s*\(os error \d+\)/, "").split("\n")[0].slice(0, 120);
}

function classify(e: unknown): string {
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    const msg = (e as Error).message;
    if (e instanceof Deno.errors.NotCapable || /Requires .* access/.test(msg)) return "denied";
    return `allowed (OS: ${msg.replace(/\s*\(os error \d+\)/, "")})`;
  }
  const name = (e as Error).name;
  return `allowed (${name})`;
}

async function attempt(p: Probe): Promise<string> {
  try {
    switch (p.kind) {
      case "read-dir":
        for await (const _ of Deno.readDir(p.path)) break;
        return "allowed";
      case "write-dir": {
        const f = `${p.path}/.audit-probe-${Deno.pid}`;
        await Deno.writeTextFile(f, "probe", { createNew: true });
        await Deno.remove(f);
        return "allowed";
      }
      case "read-file":
        await Deno.readFile(p.path);
        return "allowed";
      case "connect": {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const c = await Promise.race([
          Deno.connect({ hostname: p.host, port: p.port }),
          new Promise<never>((_, rej) => {
            timer = setTimeout(() => rej(new Error("timeout")), 2000);
          }),
        ]).finally(() => clearTimeout(timer));
        c.close();
        return "allowed";
      }
      case "connect-unix": {
        const c = await Deno.connect({ transport: "unix", path: p.path });
        c.close();
        return "allowed";
      }
      case "listen-tcp": {
        const l = Deno.listen({ hostname: p.host, port: p.port });
        l.close();
        return "allowed";
      }
      case "listen-unix": {
        let existed = true;
        try {
          Deno.lstatSync(p.path);
        } catch {
          existed = false;
        }
        const l = Deno.listen({ transport: "unix", path: p.path });
        l.close();
        if (!existed) await Deno.remove(p.path).catch(() => {});
        return "allowed";
      }
      case "append-file": {
        const f = await Deno.open(p.path, { append: true });
        f.close();
        return "allowed";
      }
      case "replace":
        await Deno.rename(p.path, p.path);
        return "allowed";
      case "import":
        try {
          await import(p.specifier);
          return "allowed";
        } catch (e) {
          const m = (e as Error).message;
          // --cached-only: not in the DENO_DIR; "not a dependency": no import map.
          const no =
            /--no-npm|--no-remote|--cached-only|not a dependency|Requires import access|NotCapable/;
          if (no.test(m)) return "denied";
          return `allowed (${why(e)})`;
        }
      case "local-storage":
        try {
          localStorage.setItem("postwarden-audit", "1");
          localStorage.removeItem("postwarden-audit");
          return "allowed";
        } catch (e) {
          return `denied (${why(e)})`;
        }
      case "cache-api":
        try {
          const c = await caches.open("postwarden-audit");
          await c.put("http://audit.invalid/", new Response("x"));
          await caches.delete("postwarden-audit");
          return "allowed";
        } catch (e) {
          return `denied (${why(e)})`;
        }
      case "kv-default": {
        const open = (Deno as unknown as { openKv?: () => Promise<{ close(): void }> }).openKv;
        if (typeof open !== "function") return "denied (no Deno KV API in this daemon)";
        try {
          (await open()).close();
          return "allowed";
        } catch (e) {
          return `denied (${why(e)})`;
        }
      }
      case "run": {
        const out = await new Deno.Command(p.program, {
          args: ["-c", "true"],
          stdout: "null",
          stderr: "null",
        })
          .output();
        return out.success ? "allowed" : "allowed (ran, failed)";
      }
      case "may-run": {
        const st = await Deno.permissions.query({ name: "run", command: p.program });
        return st.state === "granted" ? "allowed (permission query)" : "denied";
      }
    }
  } catch (e) {
    return classify(e);
  }
}

if (import.meta.main) {
  // In a worker host (worker hosting) the arguments come in the host's
  // first message and the results go back as output (lib/service/worker.ts).
  const worker = inWorker();
  const exit: (code: number) => never = worker ? exitWorker : Deno.exit;
  let probes: Probe[];
  try {
    const args = worker ? (await workerStart()).args : Deno.args;
    probes = JSON.parse(args[0] ?? "") as Probe[];
    if (!Array.isArray(probes)) throw new Error("not a list");
  } catch {
    // Not a command of its own: postwarden audit runs it inside each daemon's sandbox.
    console.error("usage: audit_probe.ts PROBES-JSON (run by postwarden audit, not by hand)");
    exit(64);
  }
  const results: string[] = [];
  for (const p of probes) results.push(await attempt(p));
  if (worker) {
    workerOutput(JSON.stringify(results));
    exit(0);
  }
  console.log(JSON.stringify(results));
}
