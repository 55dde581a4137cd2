/**
 * Writes with the recipient's rights for a local agent that runs as root:
 * the {@link Writer} that starts as_recipient.ts with the recipient's uid
 * and gid (Deno.Command uid/gid, which also drops every supplementary
 * group) for each mailbox write, streams the message to it and reads its
 * one-line reply. This is Postfix's set_eugid() around a delivery, done
 * with a process because Deno cannot change the uid of a running one.
 *
 * The writer's sandbox (lib/permissions/local.ts recipientWriterGrants)
 * allows that one mailbox only, so even a writer that misbehaves cannot
 * touch other files, and the kernel makes every access as the recipient:
 * a symlink a user planted cannot make root write anywhere.
 *
 * A writer that does not answer within `timeoutMs` is killed and the
 * delivery deferred; a writer that dies or answers nonsense defers too
 * (4.3.0). Writes asked with no identity run in this process.
 *
 * @module
 */
import { MailboxError } from "../../lib/mailbox/mbox.ts";
import { grantFlags } from "../../lib/permissions/mod.ts";
import { recipientWriterGrants, type WriterTarget } from "../../lib/permissions/local.ts";
import type { WriterJob, WriterReply } from "./as_recipient.ts";
import { type Identity, inProcessWriter, type Writer } from "./mailbox.ts";
import { IncludeError } from "./user_files.ts";

/** Where the writer's code and Deno are. */
export interface WriterRuntime {
  /** The Deno executable (this process's). */
  deno: string;
  /** The code tree holding daemons/local/as_recipient.ts. */
  code: string;
  /** Kill a writer after this long. @default 600000 */
  timeoutMs?: number;
}

/** The runtime of this process: its Deno and its code tree. */
export function ownRuntime(): WriterRuntime {
  return {
    deno: Deno.execPath(),
    code: new URL("../../", import.meta.url).pathname.replace(/\/$/, ""),
  };
}

/** A Writer that writes as the given identity through a recipient writer process. */
export function recipientWriter(rt: WriterRuntime): Writer {
  return {
    mbox: async (path, msg, opts, as) => {
      if (as === null) return await inProcessWriter.mbox(path, msg, opts, null);
      const job: WriterJob = {
        kind: "mbox",
        path,
        sender: msg.sender,
        originalRecipient: msg.originalRecipient,
        delivered: msg.delivered,
        opts: {
          locks: opts.locks,
          sizeLimit: opts.sizeLimit,
          lockAttempts: opts.lockAttempts,
          lockDelayMs: opts.lockDelayMs,
          staleLockMs: opts.staleLockMs,
          chown: opts.chown,
          owner: opts.owner,
          openTimeoutMs: opts.openTimeoutMs,
          now: (opts.now ?? (() => new Date()))().getTime(),
        },
      };
      const reply = await runWriter(rt, { kind: "mbox", path }, job, as, msg.content);
      for (const w of reply.warnings) opts.warn?.(w);
      if (!reply.ok) throw new MailboxError(reply.message, reply.dsn ?? "4.3.0");
    },
    maildir: async (dir, msg, opts, as) => {
      if (as === null) return await inProcessWriter.maildir(dir, msg, opts, null);
      const job: WriterJob = {
        kind: "maildir",
        dir,
        sender: msg.sender,
        recipient: msg.recipient,
        originalRecipient: msg.originalRecipient,
        hostname: opts.hostname,
        now: opts.now(),
        sizeLimit: opts.sizeLimit,
      };
      const reply = await runWriter(rt, { kind: "maildir", dir }, job, as, msg.content);
      if (!reply.ok) {
        throw Object.assign(new Error(reply.message), reply.code ? { code: reply.code } : {});
      }
    },
    readForward: async (paths, uid, as) => {
      if (as === null) return await inProcessWriter.readForward(paths, uid, null);
      if (paths.length === 0) return { found: false, warnings: [] };
      const job: WriterJob = { kind: "forward", paths, uid };
      const reply = await runWriter(rt, { kind: "read", paths }, job, as, noContent, READ_TIMEOUT);
      if (!reply.ok) throw new Error(reply.message);
      return reply.read
        ? {
          found: true,
          path: reply.read.path,
          content: reply.read.content,
          warnings: reply.warnings,
        }
        : { found: false, warnings: reply.warnings };
    },
    readInclude: async (path, as) => {
      if (as === null) return await inProcessWriter.readInclude(path, null);
      const job: WriterJob = { kind: "include", path };
      const reply = await runWriter(
        rt,
        { kind: "read", paths: [path] },
        job,
        as,
        noContent,
        READ_TIMEOUT,
      );
      if (!reply.ok) throw new IncludeError(reply.message);
      return { content: reply.read?.content ?? "", uid: reply.read?.uid ?? -1 };
    },
  };
}

async function* noContent(): AsyncIterable<Uint8Array> {}

/** A read of a .forward or :include: file (a FIFO swapped in would block it). */
const READ_TIMEOUT = 30_000;

const encoder = new TextEncoder();

async function runWriter(
  rt: WriterRuntime,
  target: WriterTarget,
  job: WriterJob,
  as: Identity,
  content: () => AsyncIterable<Uint8Array>,
  timeoutMs = rt.timeoutMs ?? 600_000,
): Promise<WriterReply> {
  let flags: string[];
  try {
    flags = grantFlags(recipientWriterGrants(target), rt.code);
  } catch (e) {
    return { ok: false, warnings: [], message: (e as Error).message, dsn: "4.3.0" };
  }
  const child = new Deno.Command(rt.deno, {
    args: ["run", ...flags, `${rt.code}/daemons/local/as_recipient.ts`],
    uid: as.uid,
    gid: as.gid,
    cwd: "/",
    clearEnv: true,
    env: { DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1", NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, timeoutMs);
  const feed = (async () => {
    const w = child.stdin.getWriter();
    try {
      await w.write(encoder.encode(JSON.stringify(job) + "\n"));
      for await (const chunk of content()) await w.write(chunk);
      await w.close();
    } catch (e) {
      // The writer died or stopped reading: its reply (or its absence) says why.
      await w.abort(e).catch(() => {});
      throw e;
    }
  })();
  const [fed, out] = await Promise.all([
    feed.then(() => null, (e: unknown) => e as Error),
    child.output(),
  ]);
  clearTimeout(timer);
  const text = new TextDecoder().decode(out.stdout).trim();
  try {
    const reply = JSON.parse(text) as WriterReply;
    if (typeof reply?.ok !== "boolean" || !Array.isArray(reply.warnings)) throw new Error("shape");
    if (reply.ok && fed) {
      // The writer finished without all of the message: never count that as delivered.
      return {
        ok: false,
        warnings: reply.warnings,
        message: `error reading message: ${fed.message}`,
        dsn: "4.3.0",
      };
    }
    return reply;
  } catch {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-1)[0] ?? "";
    return {
      ok: false,
      warnings: [],
      message: `mailbox writer for uid ${as.uid} failed (${
        out.signal ? `signal ${out.signal}` : `exit ${out.code}`
      })${err ? `: ${err}` : ""}`,
      dsn: "4.3.0",
    };
  }
}
