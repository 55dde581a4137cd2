/**
 * The sandboxes of the pipe and virtual delivery agents.
 *
 * pipe: the queue file (active/), /etc/passwd and /etc/group (user=),
 * `--allow-run` for exactly the argv= program of its own master.cf entry
 * (lib/pipe; a plain name: its files in /usr/bin and /bin), `--allow-env` for the export_environment names it hands on
 * (Postfix's clean_env) and `--allow-sys=uid` (whether it may set user=).
 * A service whose attributes do not parse gets no program: the start
 * stops on the error (lib/service/catalog.ts).
 *
 * virtual: the queue file, read and write on virtual_mailbox_base and
 * nothing else on disk (its tables come from tables.ts), and
 * `--allow-sys=uid` (whether it may give files to the mapped owner).
 *
 * @module
 */
import type { MasterService } from "../config/mod.ts";
import { pipePrograms } from "../pipe/mod.ts";

/** What these grants need from the configuration. */
interface AgentContext {
  queueDir: string;
  param: (name: string) => string;
}

/** Grants a pipe or virtual service adds to its sockets. */
export interface AgentGrants {
  read: string[];
  write: string[];
  run: string[];
  env: string[];
  sys: string[];
}

/** The pipe service's grants. */
export function pipeGrants(svc: MasterService, ctx: AgentContext): AgentGrants {
  const env = (ctx.param("export_environment") ?? "").split(/[\s,]+/).filter((n) =>
    n !== "" && !n.includes("=")
  );
  return {
    read: [`${ctx.queueDir}/active`, "/etc/passwd", "/etc/group"],
    write: [],
    run: pipePrograms(svc.args),
    env,
    sys: ["uid"],
  };
}

/** The virtual service's grants. */
export function virtualGrants(ctx: AgentContext): AgentGrants {
  const base = (ctx.param("virtual_mailbox_base") ?? "").trim().replace(/\/+$/, "");
  const dirs = base.startsWith("/") ? [base] : [];
  return { read: [`${ctx.queueDir}/active`, ...dirs], write: dirs, run: [], env: [], sys: ["uid"] };
}
