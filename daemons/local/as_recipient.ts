/**
 * The local agent's mailbox writer with the recipient's rights: a
 * short-lived process that the local daemon, running as root, starts with
 * the recipient's uid and gid (Deno.Command uid/gid; no supplementary
 * groups) for one mailbox write, the way Postfix's local(8) switches its
 * effective uid with set_eugid() around each delivery (privilege.ts).
 * Its sandbox allows reading and writing that one mailbox (and its
 * dotlock, or its Maildir) and nothing else: no network, no programs, no
 * environment (lib/permissions/local.ts recipientWriterGrants).
 *
 * It also reads, with the same rights, a user's .forward file or an
 * :include: file (user_files.ts), so that what the kernel lets the user
 * read is what local reads.
 *
 * Protocol: stdin holds one line of JSON ({@link WriterJob}), then (for
 * writes) the message in canonical CRLF form to the end; stdout gets one line of
 * JSON ({@link WriterReply}). A job that cannot be parsed is answered
 * with an error; nothing is written for it.
 *
 * @module
 */
import { deliverMbox, errnoOf, MailboxError, type MboxOptions } from "../../lib/mailbox/mbox.ts";
import { writeMaildir } from "../../lib/maildir/mod.ts";
import { maildirMessage, maildirOptions } from "./mailbox.ts";
import { readForward, readInclude } from "./user_files.ts";

/** One write, as the local daemon asks for it. */
export type WriterJob =
  | {
    kind: "mbox";
    path: string;
    sender: string;
    originalRecipient?: string;
    delivered?: string;
    /** MboxOptions without functions; `now` in ms. */
    opts: Omit<MboxOptions, "now" | "sleep" | "warn"> & { now: number };
  }
  | {
    kind: "maildir";
    dir: string;
    sender: string;
    recipient: string;
    originalRecipient?: string;
    hostname: string;
    now: number;
    sizeLimit?: number;
  }
  /** Read the first .forward of `paths` for `uid` (user_files.ts). */
  | { kind: "forward"; paths: string[]; uid: number }
  /** Read an :include: file. */
  | { kind: "include"; path: string };

/** The outcome of one job. */
export type WriterReply =
  | {
    ok: true;
    warnings: string[];
    /** What a read job found: a .forward's path, the text, an :include: file's owner. */
    read?: { path: string; content: string; uid?: number };
  }
  | {
    ok: false;
    warnings: string[];
    /** The error text. */
    message: string;
    /** A MailboxError's DSN code. */
    dsn?: string;
    /** The errno name (EACCES, EDQUOT, ...) when the OS gave one. */
    code?: string;
  };

/** Longest job line accepted. */
const MAX_JOB = 64 * 1024;

/** Runs one job read from `input`; the reply. */
export async function runJob(input: ReadableStream<Uint8Array>): Promise<WriterReply> {
  const warnings: string[] = [];
  const reader = input.getReader();
  let head = new Uint8Array(0);
  let rest: Uint8Array | null = null;
  while (rest === null) {
    const r = await reader.read();
    if (r.done) return { ok: false, warnings, message: "writer: no job" };
    const joined = new Uint8Array(head.length + r.value.length);
    joined.set(head);
    joined.set(r.value, head.length);
    const nl = joined.indexOf(0x0a);
    if (nl >= 0) {
      head = joined.subarray(0, nl);
      rest = joined.subarray(nl + 1);
    } else if (joined.length > MAX_JOB) {
      return { ok: false, warnings, message: "writer: job line too long" };
    } else {
      head = joined;
    }
  }
  let job: WriterJob;
  try {
    job = JSON.parse(new TextDecoder().decode(head));
  } catch (e) {
    return { ok: false, warnings, message: `writer: bad job: ${(e as Error).message}` };
  }
  const first = rest;
  let used = false;
  const content = async function* () {
    if (used) throw new Error("message content read twice");
    used = true;
    if (first.length) yield first;
    while (true) {
      const r = await reader.read();
      if (r.done) return;
      yield r.value;
    }
  };
  try {
    if (job.kind === "mbox") {
      const now = job.opts.now;
      await deliverMbox(job.path, {
        sender: job.sender,
        originalRecipient: job.originalRecipient,
        delivered: job.delivered,
        content,
      }, { ...job.opts, now: () => new Date(now), warn: (w) => warnings.push(w) });
    } else if (job.kind === "maildir") {
      await writeMaildir(
        job.dir,
        maildirMessage({
          sender: job.sender,
          recipient: job.recipient,
          originalRecipient: job.originalRecipient,
          content,
        }),
        maildirOptions({ hostname: job.hostname, now: () => job.now, sizeLimit: job.sizeLimit }),
      );
    } else if (job.kind === "forward") {
      const r = await readForward(job.paths, job.uid);
      warnings.push(...r.warnings);
      return r.found ? { ok: true, warnings, read: { path: r.path, content: r.content } } : {
        ok: true,
        warnings,
      };
    } else if (job.kind === "include") {
      const r = await readInclude(job.path);
      return { ok: true, warnings, read: { path: job.path, content: r.content, uid: r.uid } };
    } else {
      return { ok: false, warnings, message: "writer: unknown job kind" };
    }
    return { ok: true, warnings };
  } catch (e) {
    return {
      ok: false,
      warnings,
      message: (e as Error).message,
      dsn: e instanceof MailboxError ? e.dsn : undefined,
      code: errnoOf(e),
    };
  }
}

if (import.meta.main) {
  const reply = await runJob(Deno.stdin.readable);
  await Deno.stdout.write(new TextEncoder().encode(JSON.stringify(reply) + "\n"));
  // An open that never returned (a FIFO swapped in) must not keep the process alive.
  Deno.exit(0);
}
