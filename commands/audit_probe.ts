/**
 * The probe `postwarden audit` runs inside each daemon's permission set.
 * It attempts each action named in its JSON argument and prints one JSON
 * result per action: "allowed", "denied" (by the Deno sandbox), or
 * "allowed (<OS error>)" when the sandbox let it through but the operation
 * itself failed. It never deletes anything it did not create.
 */

export type Probe =
  | { kind: "read-dir"; path: string }
  | { kind: "write-dir"; path: string }
  | { kind: "read-file"; path: string }
  | { kind: "connect"; host: string; port: number }
  | { kind: "listen-tcp"; host: string; port: number }
  | { kind: "listen-unix"; path: string }
  | { kind: "run"; program: string };

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
      case "run": {
        const out = await new Deno.Command(p.program, {
          args: ["-c", "true"],
          stdout: "null",
          stderr: "null",
        })
          .output();
        return out.success ? "allowed" : "allowed (ran, failed)";
      }
    }
  } catch (e) {
    return classify(e);
  }
}

if (import.meta.main) {
  const probes = JSON.parse(Deno.args[0]) as Probe[];
  const results: string[] = [];
  for (const p of probes) results.push(await attempt(p));
  console.log(JSON.stringify(results));
}
